"""Recording a complaint for someone (代录), the "to call back" list, and paper.

- /desk/record: the profile's intake form on one page (handlers.desk_form: the chat's steps,
  validators and screening), filed by models.actions.submit_complaint on the complainant's
  behalf with the channel it came by (phone, window, letter, e-mail).
- /desk/callbacks: the calls owed to complainants without a chat (models.callbacks), each with
  the script to read; the outcome goes to scheduler.callbacks.complete_callback, which runs a
  return-visit answer through the chat's own survey code.
- /desk/cases/<id>/register(.pdf): the printable 投诉登记表 (models.paper);
  /desk/cases/<id>/letter(.pdf): the 书面答复 from the resolution, and the form that issues it
  (workflow action issue_written_reply, via scheduler.survey.issue_written_reply).

No rule lives here: who may record, call or print, and what a call's outcome does, are decided
in models/ and scheduler/.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from tortoise.transactions import in_transaction

from bot.attachments import attachment_ref, max_attachment_bytes, store_attachment
from handlers.desk_form import (
    CHANNELS,
    NOT_EXCLUDED,
    SCREENING,
    desk_inputs,
    screening_options,
    validate_desk_form,
)
from handlers.i18n import N_, translator
from handlers.intake import request_type_labels
from handlers.messages import FileRef
from handlers.staff import channel_label, render_refused, state_label
from handlers.survey import PhoneScript, closing_key, phone_script
from handlers.turn import DialogContext
from handlers.validators import small_int
from models.actions import ActionRefused, Actor, ComplaintNotFound, submit_complaint
from models.callbacks import SURVEY_KINDS, CallbackRow, callback_list, may_record
from models.desk_auth import DeskCredential
from models.entities import CallbackOutcome, CallbackStatus, Channel, Complaint, Staff
from models.notifications import record_identity_view
from models.numbering import normalise_number
from models.paper import case_for, letter_ready, register_of
from models.workflow import Action, Role
from scheduler.callbacks import complete_callback
from scheduler.survey import issue_written_reply
from web.desk.core import JINJA, PREFIX, Me, desk_of, error_page, render, signed_in

PAPER_CSS = Path(__file__).parent / "static" / "paper.css"
KIND_NAMES = {
    str(Action.ACCEPT): N_("Tell: accepted"),
    str(Action.REFUSE): N_("Tell: not accepted"),
    str(Action.ASSIGN): N_("Tell: passed on for handling"),
    str(Action.REQUEST_MATERIAL): N_("Ask for material"),
    str(Action.APPROVE_EXTENSION): N_("Tell: time limit extended"),
    str(Action.NOTIFY_RESULT): N_("Tell the result"),
    "progress": N_("Tell: still in progress"),
    "survey": N_("Return visit"),
    "survey_reminder": N_("Return visit (second call)"),
    "revisit_visit": N_("Return visit in person"),
    "closed_no_response": N_("Tell: closed without an answer"),
}
# Steps of the handling record that are no staff button (the register names them too).
STEP_NAMES = {
    str(Action.SUBMIT): N_("Filed"),
    str(Action.START_REVISIT): N_("Return visit started"),
    str(Action.CLOSE): N_("Closed"),
    str(Action.REOPEN): N_("Reopened"),
    str(Action.DISPUTE): N_("Disputed by the complainant"),
    str(Action.WITHDRAW): N_("Withdrawn"),
    str(Action.ARCHIVE): N_("Archived"),
    str(Action.SUPPLEMENT): N_("Material supplied"),
    "callback_done": N_("Call made"),
    "escalated": N_("Escalated"),
    "supervisor_revisit_requested": N_("Supervisor revisit requested"),
    str(Action.REQUEST_SUPERVISOR_REVISIT): N_("Supervisor revisit requested"),
    "close_awaits_written_reply": N_("Close waits for the written reply"),
    "chat_linked": N_("Complainant linked a chat"),
}
CALLBACK_REFUSALS: dict[str, tuple[int, str]] = {
    "not_found": (404, N_("There is no such call-back task.")),
    "not_allowed": (403, N_("You may not call this complainant.")),
    "already_done": (409, N_("Someone has already entered the outcome of this call.")),
    "scores_needed": (400, N_("A reached return visit needs both scores (0 to 10).")),
    "survey_closed": (409, N_("The return visit of this case has ended meanwhile.")),
}


def _dialog_context(request: web.Request) -> DialogContext:
    desk = desk_of(request)
    return DialogContext.from_settings(desk.settings, desk.profile, desk.now())


def _channel_name(channel: str, me: Me) -> str:
    return channel_label(channel, me.lang)  # the chat desk's words (messages catalog)


# -- recording ---------------------------------------------------------------------------------


def _record_page(
    request: web.Request,
    me: Me,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    out_of_scope: str | None = None,
    recorded: Complaint | None = None,
    status: int = 200,
) -> web.Response:
    ctx = _dialog_context(request)
    chat_ = translator(me.lang)
    return render(
        request,
        me,
        "record.html",
        {
            "inputs": desk_inputs(ctx, me.lang),
            "screening": screening_options(ctx, me.lang),
            "screening_name": SCREENING,
            "not_excluded": NOT_EXCLUDED,
            "channels": [(key, chat_(label)) for key, label in CHANNELS.items()],
            "values": values,
            "errors": errors,
            "out_of_scope": out_of_scope,
            "recorded": recorded,
        },
        status=status,
    )


@signed_in(allowed=may_record)
async def record_form(request: web.Request, me: Me) -> web.StreamResponse:
    recorded = None
    number = normalise_number(request.query.get("recorded"))
    if number:
        recorded = await Complaint.filter(number=number).first()
    return _record_page(request, me, values={}, errors={}, recorded=recorded)


async def _uploads(form: Any, limit: int) -> list[tuple[FileRef, bytes]]:
    files = []
    for item in form.getall("photos", []):
        if not isinstance(item, web.FileField) or not item.filename:
            continue
        data = item.file.read(limit + 1)  # enough to know it is too large
        files.append((FileRef("upload", item.filename, item.content_type, len(data)), data))
    return files


@signed_in(allowed=may_record)
async def record_post(request: web.Request, me: Me) -> web.StreamResponse:
    desk = desk_of(request)
    form = await request.post()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    ctx = _dialog_context(request)
    limit = max_attachment_bytes(desk.settings.max_photo_mb)
    uploads = await _uploads(form, limit)
    records = [
        {
            "file_id": f"upload:{i}",
            "file_name": f.file_name,
            "mime_type": f.mime_type,
            "size": f.size,
        }
        for i, (f, _data) in enumerate(uploads)
    ]
    result = validate_desk_form(ctx, me.lang, values, records)
    if result.excluded is not None:
        return _record_page(request, me, values=values, errors={}, out_of_scope=result.out_of_scope)
    if not result.ok:
        return _record_page(request, me, values=values, errors=result.errors, status=400)
    assert result.channel is not None
    channel = Channel(result.channel)
    answers = dict(result.answers)
    # The same caller on the same channel is one complainant (their phone is the key).
    external_id = f"desk:{answers.get('phone') or secrets.token_urlsafe(12)}"
    clock = desk.clock()
    async with in_transaction() as conn:
        ids = []
        for ref, data in uploads:
            stored = await store_attachment(
                channel,
                FileRef(ref.file_id, ref.file_name, ref.mime_type, ref.size, data),
                max_bytes=limit,
                conn=conn,
            )
            ids.append(stored.id)
        answers["photos"] = [
            {"file_id": attachment_ref(a).file_id, "size": a.size}
            for a in [await _attachment(i, conn) for i in ids]
        ]
        complaint = await submit_complaint(
            profile=desk.profile,
            channel=channel,
            external_id=external_id,
            answers=answers,
            clock=clock,
            language=me.lang,
            attachment_ids=ids,
            recorded_by=me.staff,
            conn=conn,
        )
    raise web.HTTPSeeOther(f"{PREFIX}/record?recorded={complaint.number}")


async def _attachment(attachment_id: int, conn: Any) -> Any:
    from models.entities import Attachment

    return await Attachment.get(id=attachment_id).using_db(conn)


# -- call-backs ---------------------------------------------------------------------------------


@signed_in()
async def callbacks(request: web.Request, me: Me) -> web.StreamResponse:
    desk = desk_of(request)
    now = desk.now()
    show_done = request.query.get("show") == "done"
    status = CallbackStatus.DONE if show_done else CallbackStatus.OPEN
    rows = await callback_list(me.staff, now, status=status, limit=100)
    for row in rows if not show_done else []:
        contact = row.complaint
        pairs = (
            ("complainant_name", contact.contact_name),
            ("complainant_phone", contact.contact_phone),
        )
        shown = [field for field, value in pairs if value]
        await record_identity_view(
            row.complaint, me.staff, shown, via="callbacks", now=now, conn=None
        )
    gettext = me.gettext
    assigned = sorted({r.task.assignee_id for r in rows if r.task.assignee_id is not None})  # type: ignore[attr-defined]
    assignees = dict(await Staff.filter(id__in=assigned).values_list("id", "name"))
    script = desk.profile.revisit.call_script if desk.profile.revisit else None
    staff_number = await _staff_number(me)

    def call_script(row: CallbackRow) -> PhoneScript | None:
        """The profile's phone script for a return-visit call (R19), filled in for this call."""
        if script is None or row.task.kind not in SURVEY_KINDS:
            return None
        filled = phone_script(
            script,
            me.lang,
            staff_number=staff_number,
            name=row.complaint.contact_name,
            number=row.complaint.number,
        )
        category = next(
            (c for c in desk.profile.categories if c.id == row.complaint.category), None
        )
        if category is not None and category.no_supervisor_revisit:
            # R19: no supervisor revisit is promised to an SP complaint's caller.
            closings = {**filled.closings, "unsatisfied": filled.closings["unsatisfied_final"]}
            filled = replace(filled, closings=closings)
        return filled

    saved = request.query.get("saved")
    closing = None
    key = closing_key(saved or "", request.query.get("band"))
    if script is not None and key is not None:
        # The words that end the call just recorded, as the survey's outcome decided.
        closing = phone_script(script, me.lang, staff_number=staff_number, name=None, number="")
        closing = closing.closings[key]
    return render(
        request,
        me,
        "callbacks.html",
        {
            "rows": rows,
            "assignees": assignees,
            "show_done": show_done,
            "survey_kinds": SURVEY_KINDS,
            "kind_name": lambda kind: gettext(KIND_NAMES[kind]) if kind in KIND_NAMES else kind,
            "state_label": lambda state: state_label(str(state), me.lang),
            "channel_name": lambda channel: _channel_name(str(channel), me),
            "scores": range(0, 11),
            "saved": saved,
            "call_script": call_script,
            "closing": closing,
        },
    )


async def _staff_number(me: Me) -> str:
    """The caller's 工号 in the script: their desk sign-in (the staff id where none is set)."""
    login = await DeskCredential.filter(staff_id=me.staff.id).values_list("login", flat=True)
    return str(login[0]) if login else str(me.staff.id)


def _score(value: Any) -> int | None:
    return small_int(value.strip(), 3) if isinstance(value, str) else None


@signed_in()
async def callback_post(request: web.Request, me: Me) -> web.StreamResponse:
    desk = desk_of(request)
    task_id = small_int(request.match_info["task_id"])
    if task_id is None:
        return error_page(request, 404, N_("There is no such call-back task."), me=me)
    form = await request.post()
    raw_outcome = form.get("outcome")
    if raw_outcome not in (CallbackOutcome.REACHED, CallbackOutcome.NOT_REACHED):
        return error_page(request, 400, N_("Say whether the complainant was reached."), me=me)
    comment = form.get("comment")
    result = await complete_callback(
        task_id,
        me.staff,
        outcome=CallbackOutcome(str(raw_outcome)),
        profile=desk.profile,
        clock=desk.clock(),
        result_score=_score(form.get("result_score")),
        attitude_score=_score(form.get("attitude_score")),
        comment=comment if isinstance(comment, str) else None,
    )
    if result.status != "done":
        status, message = CALLBACK_REFUSALS[result.status]
        return error_page(request, status, message, me=me)
    saved = result.survey.status if result.survey is not None else "done"
    band = result.survey.band if result.survey is not None else None
    raise web.HTTPSeeOther(f"{PREFIX}/callbacks?saved={saved}" + (f"&band={band}" if band else ""))


# -- paper ---------------------------------------------------------------------------------------


async def _case(request: web.Request, me: Me) -> Complaint | None:
    complaint_id = small_int(request.match_info["complaint_id"])
    if complaint_id is None:
        return None
    return await case_for(me.staff, complaint_id)


async def _paper_context(
    request: web.Request, me: Me, complaint: Complaint, via: str
) -> dict[str, Any]:
    desk = desk_of(request)
    register = await register_of(
        complaint,
        me.staff,
        desk.profile,
        me.lang,
        desk.now(),
        request_types=request_type_labels(me.lang),
        via=via,
    )
    gettext = me.gettext
    return {
        "r": register,
        "c": complaint,
        "channel_name": _channel_name(str(complaint.channel), me),
        "state_name": state_label(str(complaint.state), me.lang),
        "action_name": lambda action: _action_name(action, me),
        "printed_at": desk.now(),
        "kind_name": lambda kind: gettext(KIND_NAMES[kind]) if kind in KIND_NAMES else kind,
        "pdf": False,
    }


def _action_name(action: str, me: Me) -> str:
    from handlers.staff import ACTION_LABELS, action_label

    if action in STEP_NAMES and action not in ACTION_LABELS:
        return me.gettext(STEP_NAMES[action])
    return action_label(action, me.lang)


async def _pdf(
    request: web.Request, template: str, context: dict[str, Any], name: str
) -> web.Response:
    """The print page as PDF (WeasyPrint with the system's CJK fonts), rendered off the loop."""
    environment = aiohttp_jinja2.get_env(request.app, app_key=JINJA)  # type: ignore[arg-type]
    from web.desk.core import template_context

    me = context["me"]
    html = environment.get_template(template).render(
        {**template_context(request, me), **context, "pdf": True}
    )
    data = await asyncio.to_thread(_render_pdf, html)
    return web.Response(
        body=data,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


def _render_pdf(html: str) -> bytes:
    from weasyprint import CSS, HTML

    return HTML(string=html).write_pdf(stylesheets=[CSS(filename=str(PAPER_CSS))])  # type: ignore[no-any-return]


@signed_in()
async def register_page(request: web.Request, me: Me) -> web.StreamResponse:
    complaint = await _case(request, me)
    if complaint is None:
        return error_page(request, 404, N_("There is no such case on your desk."), me=me)
    context = await _paper_context(request, me, complaint, "register")
    if request.path.endswith(".pdf"):
        return await _pdf(
            request, "register.html", {**context, "me": me}, f"{complaint.number}.pdf"
        )
    return render(request, me, "register.html", context)


@signed_in()
async def letter_page(request: web.Request, me: Me) -> web.StreamResponse:
    complaint = await _case(request, me)
    if complaint is None:
        return error_page(request, 404, N_("There is no such case on your desk."), me=me)
    if not letter_ready(complaint):
        return error_page(
            request, 409, N_("The written reply can be drawn up once the case is resolved."), me=me
        )
    context = await _paper_context(request, me, complaint, "letter")
    if request.path.endswith(".pdf"):
        name = f"{complaint.number}-reply.pdf"
        return await _pdf(request, "letter.html", {**context, "me": me}, name)
    return render(request, me, "letter.html", context)


@signed_in()
async def letter_issue(request: web.Request, me: Me) -> web.StreamResponse:
    desk = desk_of(request)
    complaint = await _case(request, me)
    if complaint is None:
        return error_page(request, 404, N_("There is no such case on your desk."), me=me)
    if not letter_ready(complaint):
        return error_page(
            request, 409, N_("The written reply can be drawn up once the case is resolved."), me=me
        )
    actor = Actor(Role(me.staff.role), staff=me.staff)
    try:
        await issue_written_reply(complaint.id, actor, profile=desk.profile, clock=desk.clock())
    except ActionRefused as refused:
        message = render_refused(
            refused.refusal.reason_code, complaint.number, str(complaint.state), me.lang
        ).text
        return render(request, me, "error.html", {"status": 409, "message": message}, status=409)
    except ComplaintNotFound:
        return error_page(request, 404, N_("There is no such case on your desk."), me=me)
    raise web.HTTPSeeOther(f"{PREFIX}/cases/{complaint.id}/letter")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PREFIX + "/record", record_form)
    router.add_post(PREFIX + "/record", record_post)
    router.add_get(PREFIX + "/callbacks", callbacks)
    router.add_post(PREFIX + r"/callbacks/{task_id}", callback_post)
    router.add_get(PREFIX + r"/cases/{complaint_id:\d+}/register", register_page)
    router.add_get(PREFIX + r"/cases/{complaint_id:\d+}/register.pdf", register_page)
    router.add_get(PREFIX + r"/cases/{complaint_id:\d+}/letter", letter_page)
    router.add_get(PREFIX + r"/cases/{complaint_id:\d+}/letter.pdf", letter_page)
    router.add_post(PREFIX + r"/cases/{complaint_id:\d+}/letter/issue", letter_issue)
