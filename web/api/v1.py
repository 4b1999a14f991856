"""The REST API's endpoints and their route table (mounted at /api/v1 by web.api.setup_api).

No rule lives here. Which cases a token sees is the case list's scope (models.caselist,
models.paper.case_for), what it sees of one is the desk's masked case card
(models.notifications.build_card, identity views audited), an action is the desk's form
(handlers.staff.form_acts) carried out by the chat's and the desk's own
bot.staff_desk.carry_out → models.actions.act → models.workflow.decide, and a new complaint is
the desk's record form (handlers.desk_form.validate_desk_form →
models.actions.submit_complaint).
"""

from __future__ import annotations

import base64
import copy
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from aiohttp import web
from tortoise.transactions import in_transaction

from bot.attachments import max_attachment_bytes, read_attachment
from bot.staff_desk import ActOutcome, carry_out, department_options, handler_options
from bot.storage import StorageError
from handlers.desk_form import CHANNELS, desk_inputs, screening_options, validate_desk_form
from handlers.staff import (
    CaseCard,
    FormProblem,
    StaffAct,
    StaffContext,
    StaffMember,
    form_acts,
    render_refused,
)
from handlers.turn import DialogContext
from models import statistics as st
from models.actions import ActionRefused, Actor, ComplaintNotFound, submit_complaint
from models.api_tokens import Scope, may_manage_tokens_of, tokens_of
from models.callbacks import may_record
from models.caselist import ALL, OPEN, CaseFilter, Cursor, list_cases
from models.confidentiality import MASK
from models.entities import Attachment, Channel, Complaint, Department, Event, Staff
from models.notifications import (
    VIEWED_IDENTITY,
    build_card,
    record_identity_view,
    visible_attachments,
)
from models.paper import case_for
from models.staffing import may_manage_staff, may_read_statistics
from models.workflow import OPEN_STATES, Action, Role
from scheduler.reports import Labels
from scheduler.survey import issue_written_reply
from web.api import schemas as s
from web.api.core import PREFIX, Answer, ApiProblem, Call, Route
from web.desk.core import Desk

# Payload keys shown as an event's texts (the desk's timeline shows the same ones).
EVENT_TEXTS = ("reason", "guidance", "question", "note", "reply_text", "text", "comment")


def _lang(call: Call) -> str:
    wanted = call.request.headers.get("Accept-Language", "").lower()
    if wanted.startswith(("zh-tw", "zh-hk", "zh-hant")):
        return "zh_TW"
    if wanted.startswith("zh"):
        return "zh_CN"
    return "en"


def _viewer(staff: Staff, lang: str) -> Staff:
    viewer = copy.copy(staff)
    viewer.language = lang
    return viewer


def complaint_out(card: CaseCard) -> s.Complaint:
    statement = (
        s.Statement(
            status=card.statement_status,  # type: ignore[arg-type]
            respondent=card.statement_respondent,
            due=card.statement_due,
            text=card.statement_text,
            on_behalf=card.statement_on_behalf,
        )
        if card.statement_status
        else None
    )
    group = (
        s.GroupRef(id=card.group_id, status=card.group_status, size=card.group_size)  # type: ignore[arg-type]
        if card.group_id is not None and card.group_status in ("proposed", "confirmed")
        else None
    )
    return s.Complaint.model_validate(card).model_copy(
        update={"statement": statement, "group": group}
    )


async def _case(call: Call) -> Complaint:
    complaint = await case_for(call.auth.staff, call.path_int("complaint_id"))
    if complaint is None:
        raise ApiProblem(404, "not_found", "No such complaint among this staff member's cases.")
    return complaint


async def _card(call: Call, complaint: Complaint, *, audit: bool) -> CaseCard:
    desk = call.desk
    staff = call.auth.staff
    card, shown = await build_card(complaint, _viewer(staff, _lang(call)), desk.profile, None)
    if audit:
        await record_identity_view(complaint, staff, shown, via="api", now=desk.now(), conn=None)
    return card


# -- complaints -----------------------------------------------------------------------------------


async def list_complaints(call: Call) -> Answer:
    q: s.ComplaintListQuery = call.query
    desk = call.desk
    profile = desk.profile
    if q.category and q.category not in {c.id for c in profile.categories}:
        raise ApiProblem(400, "invalid_parameter", errors={"category": "unknown category"})
    if q.channel and q.channel not in {str(c) for c in Channel}:
        raise ApiProblem(400, "invalid_parameter", errors={"channel": "unknown channel"})
    after = None
    if q.cursor:
        after = Cursor.decode(q.cursor)
        if after is None:
            raise ApiProblem(400, "invalid_parameter", errors={"cursor": "not a cursor"})
    states = OPEN if q.state == "open" else ALL if q.state == "all" else (q.state,)
    flt = CaseFilter(
        states=states,
        category=q.category,
        department_id=q.department,
        handler_id=q.handler,
        channel=q.channel,
        due=q.due,
        provisional=q.provisional,
        unreachable=q.unreachable,
        submitted_from=q.submitted_from,
        submitted_to=q.submitted_to,
        text=q.q,
    )
    clock = desk.clock()
    page = await list_cases(
        call.auth.staff,
        flt,
        now=clock.now,
        calendar=clock.calendar,
        tz=clock.tz,
        after=after,
        page_size=q.limit,
    )
    items = [
        s.ComplaintSummary(
            id=r.id,
            number=r.number,
            state=r.state,
            category=r.category,
            channel=r.channel,
            next_due_at=r.next_due_at,
            next_due_stage=r.next_due_stage,
            deadline_provisional=r.provisional,
            submitted_at=r.submitted_at,
            complainant_unreachable=r.unreachable,
            repeat_of=r.repeat_of,
            group_id=r.group_id,
        )
        for r in page.rows
    ]
    return Answer(
        200,
        s.ComplaintPage(
            items=items,
            next_cursor=page.next_cursor,
            total=page.total,
            total_capped=page.total_capped,
        ),
    )


async def get_complaint(call: Call) -> Answer:
    complaint = await _case(call)
    return Answer(200, complaint_out(await _card(call, complaint, audit=True)))


def _dialog_context(desk: Desk) -> DialogContext:
    return DialogContext.from_settings(desk.settings, desk.profile, desk.now())


async def intake_form(call: Call) -> Answer:
    ctx = _dialog_context(call.desk)
    lang = _lang(call)
    return Answer(
        200,
        s.IntakeForm(
            channels=list(CHANNELS),
            screening=[[k, v] for k, v in screening_options(ctx, lang)],
            inputs=[
                s.FormInput(
                    name=i.name,
                    kind=i.kind,
                    label=i.label,
                    question=i.question,
                    required=i.required,
                    options=[[v, label] for v, label in i.options]
                    + [[v, label] for _group, subs in i.groups for v, label in subs],
                )
                for i in desk_inputs(ctx, lang)
                if i.kind != "file"
            ],
        ),
    )


async def file_for(
    desk: Desk,
    staff: Staff,
    lang: str,
    values: dict[str, str],
    position: tuple[float, float] | None = None,
) -> Complaint:
    """File a complaint as the desk's record form does; ApiProblem when the form is wrong.
    Open311's POST requests.json comes through here too."""
    if not may_record(staff):
        raise ApiProblem(403, "role_not_permitted", "This staff member may not record complaints.")
    result = validate_desk_form(_dialog_context(desk), lang, values, [])
    if result.excluded is not None:
        raise ApiProblem(
            422, "out_of_scope", result.out_of_scope, errors={"screening": result.excluded}
        )
    if not result.ok:
        raise ApiProblem(422, "invalid", "The form is not complete.", errors=result.errors)
    assert result.channel is not None
    answers = dict(result.answers)
    if position is not None:  # Open311's lat/long: where it happened
        answers["latitude"], answers["longitude"] = position
    # As on the desk: the same caller on the same channel is one complainant (phone as key).
    external_id = f"desk:{answers.get('phone') or secrets.token_urlsafe(12)}"
    try:
        return await submit_complaint(
            profile=desk.profile,
            channel=Channel(result.channel),
            external_id=external_id,
            answers=answers,
            clock=desk.clock(),
            language=lang,
            recorded_by=staff,
        )
    except ActionRefused as refused:
        raise ApiProblem(403, refused.refusal.reason_code, refused.refusal.message) from refused


async def create_complaint(call: Call) -> Answer:
    body: s.ComplaintCreate = call.body
    values = {**body.fields, "channel": body.channel, "screening": body.screening}
    if body.address is not None:
        values["address"] = body.address
    lang = _lang(call)
    complaint = await file_for(call.desk, call.auth.staff, lang, values)
    card, _shown = await build_card(
        complaint, _viewer(call.auth.staff, lang), call.desk.profile, None
    )
    return Answer(
        201,
        complaint_out(card),
        headers={"Location": f"{PREFIX}/complaints/{complaint.id}"},
    )


def _form_values(body: s.ActionRequest) -> tuple[dict[str, str], list[str]]:
    values: dict[str, str] = {}
    for name in (
        "category", "severity", "exclusion", "reason", "guidance", "department_id",
        "handler_id", "question", "note", "amount", "reply_text", "respondent", "text",
    ):  # fmt: skip
        value = getattr(body, name)
        if value is not None:
            values[name] = str(value)
    if body.recall is not None:
        values["recall"] = "yes" if body.recall else "no"
    return values, [str(i) for i in body.co_department_ids]


def _refused(code: str, detail: str, complaint: Complaint | None, lang: str) -> ApiProblem:
    text = render_refused(
        code,
        complaint.number if complaint else None,
        str(complaint.state) if complaint else None,
        lang,
        detail=detail,
    ).text
    status = {"not_found": 404, "invalid": 422, "stale": 409}.get(code, 409)
    return ApiProblem(status, code, text)


async def act_on_complaint(call: Call) -> Answer:
    body: s.ActionRequest = call.body
    desk = call.desk
    staff = call.auth.staff
    lang = _lang(call)
    complaint = await _case(call)
    if body.action == Action.ISSUE_WRITTEN_REPLY:
        actor = Actor(Role(staff.role), staff=staff)
        try:
            await issue_written_reply(complaint.id, actor, profile=desk.profile, clock=desk.clock())
        except ActionRefused as refused:
            raise _refused(refused.refusal.reason_code, "", complaint, lang) from refused
        except ComplaintNotFound as missing:
            raise ApiProblem(404, "not_found", "No such complaint.") from missing
        await complaint.refresh_from_db()
        card = await _card(call, complaint, audit=False)
        return Answer(200, s.ActionDone(done=[body.action], complaint=complaint_out(card)))
    card, _shown = await build_card(complaint, _viewer(staff, lang), desk.profile, None)
    seen_version = body.version
    if seen_version is not None:
        card = replace(card, version=seen_version)
    ctx = StaffContext(
        profile=desk.profile,
        now=desk.now(),
        me=StaffMember(staff.id, staff.name, Role(staff.role), staff.department_id, lang),  # type: ignore[attr-defined]
        tz=desk.settings.tz,
        case=card,
        departments=await department_options(),
        handlers=await handler_options(),
        max_files=desk.settings.max_photos,
        max_file_bytes=max_attachment_bytes(desk.settings.max_photo_mb),
    )
    values, co = _form_values(body)
    acts = form_acts(body.action, card, ctx, values, co, [])
    if isinstance(acts, FormProblem):
        raise ApiProblem(
            422, "invalid", f"{acts.field}: {acts.code}", errors={acts.field: acts.code}
        )
    if body.action == Action.SET_SEVERITY and body.action in card.actions:
        # The chat asks for the new severity before it acts; here the body carries it.
        if body.severity not in {x.id for x in desk.profile.severities}:
            raise ApiProblem(422, "invalid", "severity: unknown", errors={"severity": "unknown"})
        acts = [replace(acts[0], payload={"severity": body.severity})]
    if seen_version is None:
        acts = [StaffAct(a.complaint_id, a.action, a.payload, None) for a in acts]
    outcome: ActOutcome | None = None
    done: list[str] = []
    async with in_transaction() as conn:
        for command in acts:
            outcome = await carry_out(command, staff, desk.profile, desk.clock(), conn, "web")
            if not outcome.done:
                break
            done.append(command.action)
    assert outcome is not None
    if not outcome.done:
        await complaint.refresh_from_db()
        raise _refused(outcome.refusal or "invalid", outcome.detail, complaint, lang)
    await complaint.refresh_from_db()
    card = await _card(call, complaint, audit=False)
    return Answer(200, s.ActionDone(done=done, complaint=complaint_out(card)))


# -- events and attachments ---------------------------------------------------------------------


def _id_cursor(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        kind, _, ident = raw.partition(":")
        if kind != "e" or not ident.isdigit():
            raise ValueError(value)
        return int(ident)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiProblem(400, "invalid_parameter", errors={"cursor": "not a cursor"}) from error


def _encode_id_cursor(ident: int) -> str:
    return base64.urlsafe_b64encode(f"e:{ident}".encode()).decode().rstrip("=")


async def list_events(call: Call) -> Answer:
    q: s.PageQuery = call.query
    complaint = await _case(call)
    card = await _card(call, complaint, audit=False)
    show_texts = card.facts not in (None, MASK)
    after = _id_cursor(q.cursor)
    query = Event.filter(complaint_id=complaint.id).exclude(action=VIEWED_IDENTITY)
    if after is not None:
        query = query.filter(id__gt=after)
    events = await query.order_by("id").limit(q.limit + 1).prefetch_related("actor_staff")
    more = len(events) > q.limit
    events = events[: q.limit]
    items = []
    for e in events:
        payload = e.payload or {}
        texts = (
            {k: str(payload[k]) for k in EVENT_TEXTS if isinstance(payload.get(k), str)}
            if show_texts
            else {}
        )
        items.append(
            s.EventOut(
                id=e.id,
                action=e.action,
                from_state=e.from_state,
                to_state=e.to_state,
                actor_role=str(e.actor_role),
                actor_staff_id=e.actor_staff.id if e.actor_staff else None,
                actor_name=e.actor_staff.name if e.actor_staff else None,
                created_at=e.created_at,
                texts=texts,
            )
        )
    cursor = _encode_id_cursor(events[-1].id) if more and events else None
    return Answer(200, s.EventPage(items=items, next_cursor=cursor))


def _attachment_out(a: Attachment) -> s.AttachmentOut:
    return s.AttachmentOut(
        id=a.id,
        file_name=a.file_name,
        mime_type=a.mime_type,
        size=a.size,
        created_at=a.created_at,
        download=f"{PREFIX}/attachments/{a.id}",
    )


async def list_attachments(call: Call) -> Answer:
    complaint = await _case(call)
    found = await visible_attachments(complaint, call.auth.staff)
    return Answer(200, s.AttachmentList(items=[_attachment_out(a) for a in found]))


async def download_attachment(call: Call) -> web.StreamResponse:
    found = await Attachment.filter(id=call.path_int("attachment_id")).first()
    complaint = None
    if found is not None and found.complaint_id:  # type: ignore[attr-defined]
        complaint = await case_for(call.auth.staff, found.complaint_id)  # type: ignore[attr-defined]
    visible = await visible_attachments(complaint, call.auth.staff) if complaint else []
    if found is None or all(a.id != found.id for a in visible):
        raise ApiProblem(404, "not_found", "No such file among this staff member's cases.")
    try:
        data = await read_attachment(found)
    except StorageError as error:
        raise ApiProblem(404, "not_found", "The file's bytes are gone.") from error
    name = found.file_name or f"attachment-{found.id}"
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
        },
    )


# -- the organisation -----------------------------------------------------------------------------


def staff_out(person: Staff) -> s.StaffOut:
    return s.StaffOut(
        id=person.id,
        name=person.name,
        role=str(person.role),
        department_id=person.department_id,  # type: ignore[attr-defined]
        active=person.active,
    )


async def list_departments(call: Call) -> Answer:
    rows = await Department.all().order_by("id")
    return Answer(
        200,
        s.DepartmentList(
            items=[
                s.DepartmentOut(id=d.id, code=d.code, name=d.name, parent_id=d.parent_id)  # type: ignore[attr-defined]
                for d in rows
            ]
        ),
    )


async def list_staff(call: Call) -> Answer:
    rows = await Staff.all().order_by("id")
    return Answer(200, s.StaffList(items=[staff_out(p) for p in rows]))


async def me(call: Call) -> Answer:
    return Answer(
        200,
        s.Me(
            staff=staff_out(call.auth.staff),
            token_id=call.auth.token.id,
            scopes=list(call.auth.token.scopes),
        ),
    )


def _key_counts(counts: list[st.Count], label: Callable[[str | None], str]) -> list[s.KeyCount]:
    return [s.KeyCount(key=c.key, label=label(c.key), count=c.count) for c in counts]


def statistics_out(stats: st.Statistics, period: st.Period, words: Labels) -> s.Statistics:
    """The figures with the keys' labels; the rows that need none as the module has them."""
    open_states = {str(state) for state in OPEN_STATES}
    return s.Statistics(
        first=period.first,
        last=period.last,
        department=stats.query.department_id,
        total=stats.total,
        open=sum(c.count for c in stats.by_state if c.key in open_states),
        by_state=_key_counts(stats.by_state, words.state),
        by_category=_key_counts(stats.by_category, words.category),
        by_channel=_key_counts(stats.by_channel, words.channel),
        by_department=stats.by_department,
        stages=[
            s.StageRate(
                stage=r.stage,
                label=words.stage(r.stage),
                settled=r.settled,
                on_time=r.on_time,
                rate=r.rate,
            )
            for r in stats.stages
        ],
        on_time_rate=stats.on_time_rate,
        overdue=stats.overdue,
        resolved=stats.resolved,
        average_working_days=stats.average_working_days,
        satisfaction=stats.satisfaction,
        no_response=stats.no_response,
        result_bands=_key_counts(stats.result_bands, words.band),
        attitude_bands=_key_counts(stats.attitude_bands, words.band),
        satisfaction_by_department=stats.satisfaction_by_department,
        satisfaction_by_handler=stats.satisfaction_by_handler,
        trend=stats.trend,
        repeat_complainants=stats.repeat_complainants,
        respondents=stats.respondents,
    )


async def statistics(call: Call) -> Answer:
    """The desk's statistics page's figures (models.statistics, the one computation), for those
    who may open that page (models.staffing.may_read_statistics), over their case scope."""
    q: s.StatisticsQuery = call.query
    staff = call.auth.staff
    if not may_read_statistics(staff):
        raise ApiProblem(
            403, "role_not_permitted", "This staff member may not read the statistics."
        )
    clock = call.desk.clock()
    period = st.asked_period(q.first, q.last, clock.now.astimezone(clock.tz).date())
    if period.problems:
        raise ApiProblem(400, "invalid_parameter", "The period is wrong.", errors=period.problems)
    start, end = st.local_period(period.first, period.last, clock.tz)
    lang = _lang(call)
    stats = await st.compute_statistics(
        st.StatsQuery(start, end, now=clock.now, department_id=q.department),
        staff=staff,
        profile=call.desk.profile,
        calendar=clock.calendar,
        tz=clock.tz,
        lang=lang,
    )
    return Answer(200, statistics_out(stats, period, Labels(call.desk.profile, lang)))


async def list_tokens(call: Call) -> Answer:
    q: s.TokenQuery = call.query
    staff = call.auth.staff
    if q.all and not (call.auth.allows(Scope.ADMIN) and may_manage_staff(staff)):
        raise ApiProblem(403, "scope", "Every staff member's tokens need the admin scope.")
    rows = await tokens_of(staff, everyone=q.all)
    items: list[Any] = [
        s.TokenOut(
            id=t.id,
            name=t.name,
            prefix=t.prefix,
            staff_id=t.staff.id,
            staff_name=t.staff.name,
            scopes=list(t.scopes),
            created_at=t.created_at,
            last_used_at=t.last_used_at,
            revoked_at=t.revoked_at,
        )
        for t in rows
        if may_manage_tokens_of(staff, t.staff.id)
    ]
    return Answer(200, s.TokenList(items=items))


ROUTES: list[Route] = [
    Route("GET", "/complaints", list_complaints, "listComplaints",
          "The complaints on this staff member's desk, most urgent first", Scope.READ,
          {200: s.ComplaintPage}, query=s.ComplaintListQuery, errors=(400,)),
    Route("POST", "/complaints", create_complaint, "createComplaint",
          "Record a complaint for a complainant (as the desk's record form)", Scope.FILE,
          {201: s.Complaint}, body=s.ComplaintCreate, errors=(400, 409, 413, 415, 422)),
    Route("GET", "/complaints/{complaint_id}", get_complaint, "getComplaint",
          "One complaint, masked as on the desk", Scope.READ, {200: s.Complaint},
          errors=(404,)),
    Route("POST", "/complaints/{complaint_id}/actions", act_on_complaint, "actOnComplaint",
          "Take a workflow action (accept, refuse, assign, transfer, …)", Scope.ACT,
          {200: s.ActionDone}, body=s.ActionRequest, errors=(400, 404, 409, 413, 415, 422)),
    Route("GET", "/complaints/{complaint_id}/events", list_events, "listEvents",
          "The complaint's timeline, oldest first", Scope.READ, {200: s.EventPage},
          query=s.PageQuery, errors=(400, 404)),
    Route("GET", "/complaints/{complaint_id}/attachments", list_attachments,
          "listAttachments", "The complaint's photos and files this staff member may see",
          Scope.READ, {200: s.AttachmentList}, errors=(404,), tag="attachments"),
    Route("GET", "/attachments/{attachment_id}", download_attachment, "downloadAttachment",
          "A file's bytes", Scope.READ, {200: "application/octet-stream"}, errors=(404,),
          tag="attachments"),
    Route("GET", "/form", intake_form, "getIntakeForm",
          "The record form's inputs under the profile in force", Scope.READ,
          {200: s.IntakeForm}, errors=(), tag="complaints"),
    Route("GET", "/departments", list_departments, "listDepartments", "Departments",
          Scope.READ, {200: s.DepartmentList}, errors=(), tag="organisation"),
    Route("GET", "/staff", list_staff, "listStaff", "Staff members", Scope.READ,
          {200: s.StaffList}, errors=(), tag="organisation"),
    Route("GET", "/me", me, "getMe", "The token's staff member and scopes", Scope.READ,
          {200: s.Me}, errors=(), tag="organisation"),
    Route("GET", "/statistics", statistics, "getStatistics",
          "The statistics page's figures for a period, over this staff member's cases",
          Scope.READ, {200: s.Statistics}, query=s.StatisticsQuery, errors=(400,),
          tag="statistics"),
    Route("GET", "/tokens", list_tokens, "listTokens",
          "API tokens: one's own, or everyone's (admin scope)", Scope.READ,
          {200: s.TokenList}, query=s.TokenQuery, errors=(400,), tag="organisation"),
]  # fmt: skip
