"""One case at /desk/cases/<id>: every intake answer, the timeline, attachments and actions.

What the staff member sees is the chat's case card (models.notifications.build_card, masked
by models.confidentiality), and an unmasked view is audited as the chat audits it. Actions
are posted as forms carrying the case version; handlers.staff.form_acts checks the answers
against the same choices the chat offers and bot.staff_desk.carry_out runs them through
models.actions.act, refusing a stale form as a stale button is refused.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiMapping
from tortoise.transactions import in_transaction

from bot.attachments import AttachmentTooLarge, max_attachment_bytes, read_attachment
from bot.staff_desk import (
    ActOutcome,
    carry_out,
    department_options,
    handler_options,
)
from bot.storage import StorageError
from handlers.i18n import N_, Gettext
from handlers.messages import FileRef
from handlers.staff import (
    CaseCard,
    FormProblem,
    StaffContext,
    StaffMember,
    action_label,
    channel_label,
    extension_limit,
    form_acts,
    recall_line,
    render_done,
    render_refused,
    request_label,
    stage_label,
    state_label,
    unit_label,
)
from handlers.turn import file_record
from handlers.validators import small_int
from models.alarms import unheard_escalations
from models.confidentiality import MASK
from models.entities import Attachment, Channel, Complaint, Event, Staff
from models.matters import group_of, repeat_of
from models.notifications import (
    VIEWED_IDENTITY,
    build_card,
    co_department_ids,
    facts_for,
    record_identity_view,
    visible_attachments,
)
from models.numbering import example_number
from models.workflow import Action, Role, State, Transition, decide
from scheduler.time_left import time_left
from web.desk.cases import time_left_text
from web.desk.core import PREFIX, ROLE_NAMES, Me, desk_of, error_page, render, signed_in

# Why a form's answer is refused, in the desk's words (handlers.staff.FormProblem codes).
FORM_PROBLEMS = {
    "required": N_("Please fill in “{field}”."),
    "unknown": N_("“{field}” is not one of the choices offered."),
    "not_in_department": N_("The handler must belong to the chosen department."),
    "too_long": N_("“{field}” is too long."),
    "out_of_range": N_("“{field}” is outside the allowed range."),
    "too_many": N_("Too many files."),
    "too_large": N_("A file is too large."),
}
FIELD_NAMES = {
    "category": N_("Category"),
    "severity": N_("Severity"),
    "exclusion": N_("Reason"),
    "reason": N_("Reason"),
    "guidance": N_("Guidance"),
    "department_id": N_("Department"),
    "handler_id": N_("Handler"),
    "co_department_ids": N_("Co-handling departments"),
    "question": N_("Material requested"),
    "note": N_("Note"),
    "amount": N_("Extension"),
    "reply_text": N_("Reply"),
    "respondent": N_("Respondent (whose statement)"),
    "text": N_("The respondent's statement (their account and defence)"),
    "files": N_("Photos and files"),
    "recall": N_("Product recall"),
    "action": N_("Action"),
}
# Payload keys worth showing on the timeline (the case's own words, shown with the facts).
TIMELINE_TEXTS = ("reason", "guidance", "question", "note", "reply_text", "text", "comment")
UPLOAD = "desk-upload"
# Timeline entries for steps that are no staff button (the chat names only its buttons).
EVENT_LABELS = {
    "submit": N_("Filed"),
    "supplement": N_("Material supplied"),
    "start_revisit": N_("Return visit started"),
    "close": N_("Closed"),
    "reopen": N_("Reopened"),
    "dispute": N_("Result disputed"),
    "withdraw": N_("Withdrawn"),
    "archive": N_("Archived"),
    "record_recall_decision": N_("Recall decision recorded"),
    "delivery_failed": N_("A message could not be delivered"),
    "group_proposed": N_("Proposed as part of a mass matter"),
    "group_confirmed": N_("Mass matter confirmed"),
    "group_dismissed": N_("Mass matter dismissed"),
    "group_removed": N_("Taken out of the mass matter"),
}


def event_label(action: str, me: Me) -> str:
    if action in EVENT_LABELS:
        return me.gettext(EVENT_LABELS[action])
    return action_label(action, me.lang)


def _viewer(me: Me) -> Staff:
    """The staff row with the page's language, so labels on the card follow the page."""
    viewer = copy.copy(me.staff)
    viewer.language = me.lang
    return viewer


async def _context(me: Me, card: CaseCard, request: web.Request) -> StaffContext:
    desk = desk_of(request)
    return StaffContext(
        profile=desk.profile,
        now=desk.now(),
        me=StaffMember(
            me.staff.id,
            me.staff.name,
            Role(me.staff.role),
            me.staff.department_id,  # type: ignore[attr-defined]
            me.lang,
        ),
        tz=desk.settings.tz,
        case=card,
        departments=await department_options(),
        handlers=await handler_options(),
        max_files=desk.settings.max_photos,
        max_file_bytes=max_attachment_bytes(desk.settings.max_photo_mb),
    )


@dataclass(frozen=True)
class TimelineEntry:
    when: Any
    who: str
    what: str
    change: str
    texts: list[str]


async def _timeline(complaint: Complaint, card: CaseCard, me: Me) -> list[TimelineEntry]:
    events = (
        await Event.filter(complaint_id=complaint.id)
        .exclude(action=VIEWED_IDENTITY)
        .order_by("id")
        .prefetch_related("actor_staff")
    )
    show_texts = card.facts not in (None, MASK)
    entries = []
    for event in events:
        if event.actor_staff is not None:
            who = event.actor_staff.name
        else:
            who = me.gettext(ROLE_NAMES.get(str(event.actor_role), str(event.actor_role)))
        change = ""
        if event.from_state and event.to_state and event.from_state != event.to_state:
            change = (
                f"{state_label(event.from_state, me.lang)} → {state_label(event.to_state, me.lang)}"
            )
        payload = event.payload or {}
        texts = (
            [str(payload[k]) for k in TIMELINE_TEXTS if isinstance(payload.get(k), str)]
            if show_texts
            else []
        )
        entries.append(
            TimelineEntry(event.created_at, who, event_label(event.action, me), change, texts)
        )
    return entries


async def _page(
    request: web.Request,
    me: Me,
    complaint: Complaint,
    *,
    message: str | None = None,
    problem: str | None = None,
    status: int = 200,
    values: MultiMapping[str] | None = None,
) -> web.Response:
    desk = desk_of(request)
    clock = desk.clock()
    card, identity = await build_card(complaint, _viewer(me), desk.profile, None)
    await record_identity_view(
        complaint, me.staff, identity, via="desk_case_page", now=clock.now, conn=None
    )
    ctx = await _context(me, card, request)
    left = time_left(card.due, clock.now, clock.calendar, clock.tz) if card.due else None
    attachments = await visible_attachments(complaint, me.staff)
    limit, unit = extension_limit(desk.profile)
    profile = desk.profile
    facts = facts_for(complaint, me.staff, profile, await co_department_ids(complaint, None))

    def may(action: Action) -> bool:
        decision = decide(State(complaint.state), action, Role(me.staff.role), facts)
        return me.staff.active and isinstance(decision, Transition)

    repeat = await repeat_of(complaint.id)
    context = {
        "repeat": repeat,
        "group": await group_of(complaint.id),
        "may_link": may(Action.LINK_REPEAT),
        "may_unlink": repeat is not None and may(Action.UNLINK_REPEAT),
        "state_label": lambda state: state_label(state, me.lang),
        "card": card,
        "complaint": complaint,
        "state": state_label(card.state, me.lang),
        "stage": stage_label(card.due_stage, me.lang) if card.due_stage else "",
        "left": time_left_text(left, me.gettext) if left else "",
        "overdue": bool(left and left.overdue),
        "unheard": [
            (stage_label(stage, me.lang), due)
            for stage, due in unheard_escalations(complaint.alarm_state)
        ],
        "channel": channel_label(card.channel, me.lang),
        "request_text": request_label(card.request_type, card.request_text, me.lang),
        "timeline": await _timeline(complaint, card, me),
        "attachments": attachments,
        "actions": [(a, action_label(a, me.lang)) for a in card.actions],
        "categories": [
            (c.id, profile.label("category", c.id, me.lang)) for c in profile.categories
        ],
        "severities": [
            (s.id, profile.label("severity", s.id, me.lang)) for s in profile.severities
        ],
        "exclusions": [
            (e.id, profile.label("exclusion", e.id, me.lang)) for e in profile.exclusions
        ],
        "departments": ctx.departments,
        "handlers": ctx.handlers,
        "extension_limit": limit,
        "extension_unit": unit_label(unit, me.lang),
        "unit_label": lambda u: unit_label(str(u), me.lang),
        "max_files": ctx.max_files,
        "recall": recall_line(card, me.lang),
        "number_example": example_number(profile.numbering.format),
        "message": message,
        "problem": problem,
        "values": values or {},
    }
    return render(request, me, "case.html", context, status=status)


async def _complaint(request: web.Request) -> Complaint | None:
    raw = request.match_info["case_id"]
    row_id = small_int(raw)  # "²", or 30 digits, name no row (and must not reach the database)
    return await Complaint.filter(id=row_id).first() if row_id is not None else None


@signed_in()
async def case_page(request: web.Request, me: Me) -> web.StreamResponse:
    complaint = await _complaint(request)
    if complaint is None:
        return error_page(request, 404, N_("There is no such case."), me=me)
    done = request.query.get("done")
    message = None
    if done in {str(a) for a in Action}:
        desk = desk_of(request)
        card, _shown = await build_card(complaint, _viewer(me), desk.profile, None)
        message = render_done(done, card, complaint.number, me.lang, desk.settings.tz).text
    return await _page(request, me, complaint, message=message)


def _problem_text(problem: FormProblem, gettext: Gettext) -> str:
    field = gettext(FIELD_NAMES.get(problem.field, problem.field))
    return gettext(FORM_PROBLEMS.get(problem.code, FORM_PROBLEMS["unknown"])).format(field=field)


async def _store_files(
    request: web.Request, form: MultiMapping[Any]
) -> list[dict[str, Any]] | FormProblem:
    """The reply's uploaded photos and files, stored as the chat stores its uploads."""
    desk = desk_of(request)
    records = []
    uploads = [f for f in form.getall("files", []) if isinstance(f, web.FileField)]
    uploads = [f for f in uploads if f.filename]
    if len(uploads) > desk.settings.max_photos:
        return FormProblem("files", "too_many")
    for upload in uploads:
        data = upload.file.read()
        if not data:
            continue
        try:
            stored = await desk.conversation.store_file(
                Channel.WEB,
                FileRef(
                    file_id=UPLOAD,
                    file_name=(upload.filename or "")[:255] or None,
                    mime_type=(upload.content_type or "")[:100] or None,
                    size=len(data),
                    data=data,
                ),
            )
        except AttachmentTooLarge:
            return FormProblem("files", "too_large")
        records.append(file_record(stored, len(data)))
    return records


@signed_in()
async def case_act(request: web.Request, me: Me) -> web.StreamResponse:
    complaint = await _complaint(request)
    if complaint is None:
        return error_page(request, 404, N_("There is no such case."), me=me)
    desk = desk_of(request)
    form = await request.post()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    action = values.get("action", "")
    raw_version = values.get("version", "")
    if small_int(raw_version) is None:
        return await _page(
            request, me, complaint, problem=me.gettext(N_("The form lacks the case version.")),
            status=400,
        )  # fmt: skip
    card, _shown = await build_card(complaint, _viewer(me), desk.profile, None)
    # The version the form was shown with: an older one is refused as stale by carry_out.
    card = replace(card, version=int(raw_version))
    files: list[dict[str, Any]] | FormProblem = []
    if action == Action.RESOLVE:
        files = await _store_files(request, form)
    if isinstance(files, FormProblem):
        acts: Any = files
    else:
        ctx = await _context(me, card, request)
        co = [v for v in form.getall("co_department_ids", []) if isinstance(v, str) and v]
        acts = form_acts(action, card, ctx, values, co, files)
    if isinstance(acts, FormProblem):
        text = _problem_text(acts, me.gettext)
        return await _page(request, me, complaint, problem=text, status=400, values=form)
    outcome: ActOutcome | None = None
    async with in_transaction() as conn:
        for command in acts:
            outcome = await carry_out(command, me.staff, desk.profile, desk.clock(), conn, "web")
            if not outcome.done:
                break
    assert outcome is not None
    if not outcome.done:
        await complaint.refresh_from_db()
        refusal = render_refused(
            outcome.refusal or "invalid",
            complaint.number,
            complaint.state,
            me.lang,
            detail=outcome.detail,
        ).text
        return await _page(request, me, complaint, problem=refusal, status=409, values=form)
    raise web.HTTPSeeOther(f"{PREFIX}/cases/{complaint.id}?done={acts[0].action}")


@signed_in()
async def attachment(request: web.Request, me: Me) -> web.StreamResponse:
    """A photo or file of a case, for those who may see the case's attachments."""
    raw = request.match_info["attachment_id"]
    row_id = small_int(raw)
    found = await Attachment.filter(id=row_id).first() if row_id is not None else None
    complaint = (
        await Complaint.filter(id=found.complaint_id).first()  # type: ignore[attr-defined]
        if found is not None and found.complaint_id  # type: ignore[attr-defined]
        else None
    )
    visible = await visible_attachments(complaint, me.staff) if complaint else []
    if found is None or all(a.id != found.id for a in visible):
        return error_page(request, 404, N_("There is no such file."), me=me)
    try:
        data = await read_attachment(found)
    except StorageError:
        return error_page(request, 404, N_("There is no such file."), me=me)
    inline = request.query.get("inline") == "1" and (found.mime_type or "").startswith("image/")
    name = found.file_name or f"attachment-{found.id}"
    disposition = "inline" if inline else "attachment"
    headers = {
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    content_type = found.mime_type if inline and found.mime_type else "application/octet-stream"
    return web.Response(body=data, content_type=content_type, headers=headers)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PREFIX + "/cases/{case_id}", case_page)
    router.add_post(PREFIX + "/cases/{case_id}/act", case_act)
    router.add_get(PREFIX + "/attachments/{attachment_id}", attachment)
