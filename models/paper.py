"""Paper: the 投诉登记表 of one case and its 书面答复 letter, as data for a print template.

The register carries the fields the seed registers list (REGIMES.md §4: 投诉人, 联系电话,
通讯地址, 投诉时间, 投诉方式, 被投诉对象, 事实、时间、地点, 请求, 证明材料/证人, 接单人/记录人,
承办部门/承办人, 处理情况, 处理结果, 回访结果) with signature lines. It is masked for its reader
exactly like the chat's case card (models.confidentiality via models.notifications): a reader who
may not see who complained gets a register without it, and a printed identity is audited as a
"viewed_identity" event (via "register" / "letter").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from tortoise.backends.base.client import BaseDBAsyncClient

from config.languages import pick_label
from models.confidentiality import MASK, Field, mask_complaint
from models.entities import (
    Attachment,
    CallbackTask,
    Complaint,
    Department,
    Event,
    Staff,
    SurveyResponse,
)
from models.notifications import (
    case_scope,
    co_department_ids,
    record_identity_view,
    relation_for,
    scope_q,
    written_reply_pending,
)
from models.workflow import OPEN_STATES, Action, Role, State

if TYPE_CHECKING:
    from config.profiles import Profile


@dataclass(frozen=True)
class HandlingStep:
    at: datetime
    action: str  # models.workflow.Action value or an event name
    staff: str | None
    role: str
    note: str | None = None  # reason, reply, question, ...


@dataclass(frozen=True)
class ReturnVisit:
    at: datetime
    result_score: int | None
    attitude_score: int | None
    comment: str | None
    no_response: bool
    by: str | None  # who called (a call-back task), None for a chat answer
    outcome: str | None  # reached / not_reached for a call


@dataclass
class Register:
    complaint: Complaint
    category: str | None
    subcategory: str | None
    severity: str | None
    complainant_name: str | None  # None: masked for this reader (or anonymous)
    complainant_phone: str | None
    complainant_address: str | None
    identity_masked: bool
    facts: str | None
    request: str | None  # the request type's label, and the request text
    recorded_by: str | None  # 接单人 / 记录人 / 首问责任人
    lead_department: str | None
    handler: str | None
    co_departments: list[str]
    attachments: int
    steps: list[HandlingStep] = field(default_factory=list)
    visits: list[ReturnVisit] = field(default_factory=list)
    calls: list[CallbackTask] = field(default_factory=list)
    written_reply_required: bool = False
    organisation: str = ""


def _label(profile: Profile, kind: str, item: str | None, lang: str) -> str | None:
    if not item:
        return None
    try:
        return profile.label(kind, item, lang)
    except KeyError:
        return item


def _subcategory(profile: Profile, complaint: Complaint, lang: str) -> str | None:
    if not complaint.subcategory or not complaint.category:
        return None
    try:
        category = profile.category(complaint.category)
    except KeyError:
        return complaint.subcategory
    for sub in category.subcategories:
        if sub.id == complaint.subcategory:
            return pick_label(sub.label, lang)
    return complaint.subcategory


def _request(
    profile: Profile, complaint: Complaint, lang: str, request_types: Mapping[str, str]
) -> str | None:
    """诉求 as the form offered it: the option's label (the profile's, else the built-in
    request type's from `request_types`), then what was written."""
    kind = str(complaint.request_type) if complaint.request_type else None
    label = None
    if kind:
        try:
            options = profile.field("request_type").options or []
        except KeyError:
            options = []
        label = next((pick_label(o.label, lang) for o in options if o.id == kind), None)
        if label is None:
            label = request_types.get(kind)
    parts = [p for p in (label, complaint.request_text) if p]
    return "：".join(parts) if parts else None


async def organisation_name(profile: Profile, lang: str, conn: BaseDBAsyncClient | None) -> str:
    """Who signs the letter: the root department (the organisation), else the profile's name."""
    root = await Department.filter(parent_id=None).using_db(conn).order_by("id").first()
    if root is not None:
        return root.name
    return pick_label(profile.name, lang)


# Event payload keys worth a line in 处理情况.
_NOTE_KEYS = ("reason", "reply_text", "question", "text", "note", "guidance")
# Events that are part of the handling record (state changes are always).
_RECORDED_EVENTS = frozenset(
    {
        str(Action.ADD_NOTE),
        str(Action.ADD_CO_HANDLER),
        str(Action.REQUEST_EXTENSION),
        str(Action.APPROVE_EXTENSION),
        str(Action.DENY_EXTENSION),
        str(Action.ISSUE_WRITTEN_REPLY),
        str(Action.SUPPLEMENT),
        "callback_done",
        "escalated",
        "supervisor_revisit_requested",  # rows from before the action
        str(Action.REQUEST_SUPERVISOR_REVISIT),
        "close_awaits_written_reply",
        "chat_linked",
    }
)


async def register_of(
    complaint: Complaint,
    reader: Staff,
    profile: Profile,
    lang: str,
    now: datetime,
    *,
    request_types: Mapping[str, str],
    via: str = "register",
    conn: BaseDBAsyncClient | None = None,
) -> Register:
    """The register of `complaint` as `reader` may see it (see module docstring).

    `request_types`: the built-in request types' labels in `lang` (the intake form's words,
    handlers.intake.request_type_labels), for a form whose request field lists no options."""
    co_ids = await co_department_ids(complaint, conn)
    own = (
        await Department.filter(id=reader.department_id).using_db(conn).first()  # type: ignore[attr-defined]
        if reader.department_id  # type: ignore[attr-defined]
        else None
    )
    relation = relation_for(reader, complaint, co_ids, own.name if own else None)
    view = mask_complaint(
        {
            Field.COMPLAINANT_NAME: complaint.contact_name,
            Field.COMPLAINANT_PHONE: complaint.contact_phone,
            Field.FACTS: complaint.facts,
        },
        Role(reader.role),
        relation,
    )
    name, phone = view.get(Field.COMPLAINANT_NAME), view.get(Field.COMPLAINANT_PHONE)
    name = None if name == MASK else name
    phone = None if phone == MASK else phone
    facts = view.get(Field.FACTS)
    masked = (complaint.contact_name is not None and name is None) or (
        complaint.contact_phone is not None and phone is None
    )
    # The address identifies as much as the phone: it goes with it.
    address = complaint.contact_address if phone is not None else None
    shown = [f for f, v in ((Field.COMPLAINANT_NAME, name), (Field.COMPLAINANT_PHONE, phone)) if v]
    if shown and State(complaint.state) in OPEN_STATES | {State.CLOSED}:
        await record_identity_view(complaint, reader, shown, via=via, now=now, conn=conn)
    events = await Event.filter(complaint_id=complaint.id).using_db(conn).order_by("id")
    staff_ids = {e.actor_staff_id for e in events if e.actor_staff_id}  # type: ignore[attr-defined]
    if complaint.handler_id:  # type: ignore[attr-defined]
        staff_ids.add(complaint.handler_id)  # type: ignore[attr-defined]
    names = {s.id: s.name for s in await Staff.filter(id__in=sorted(staff_ids)).using_db(conn)}
    recorded_by = None
    steps: list[HandlingStep] = []
    for event in events:
        staff_name = names.get(event.actor_staff_id)  # type: ignore[attr-defined]
        if event.action == str(Action.SUBMIT):
            recorded_by = staff_name
            continue
        moved = event.from_state != event.to_state and event.to_state is not None
        if not moved and event.action not in _RECORDED_EVENTS:
            continue
        payload = event.payload or {}
        note = next((str(payload[k]) for k in _NOTE_KEYS if payload.get(k)), None)
        steps.append(
            HandlingStep(event.created_at, event.action, staff_name, str(event.actor_role), note)
        )
    lead = (
        await Department.filter(id=complaint.lead_department_id).using_db(conn).first()  # type: ignore[attr-defined]
        if complaint.lead_department_id  # type: ignore[attr-defined]
        else None
    )
    co_names = [
        str(n)
        for n in await Department.filter(id__in=sorted(co_ids))
        .using_db(conn)
        .order_by("id")
        .values_list("name", flat=True)
    ]
    calls = await CallbackTask.filter(complaint_id=complaint.id).using_db(conn).order_by("id")
    callers = {c.survey_response_id: c for c in calls if c.survey_response_id}  # type: ignore[attr-defined]
    caller_names = {
        s.id: s.name
        for s in await Staff.filter(
            id__in=sorted({c.done_by_id for c in calls if c.done_by_id})  # type: ignore[attr-defined]
        ).using_db(conn)
    }
    visits = []
    for response in (
        await SurveyResponse.filter(complaint_id=complaint.id).using_db(conn).order_by("id")
    ):
        call = callers.get(response.id)
        visits.append(
            ReturnVisit(
                response.created_at,
                response.result_score,
                response.attitude_score,
                response.comment,
                response.no_response,
                caller_names.get(call.done_by_id) if call else None,  # type: ignore[attr-defined]
                str(call.outcome) if call and call.outcome else None,
            )
        )
    return Register(
        complaint=complaint,
        category=_label(profile, "category", complaint.category, lang),
        subcategory=_subcategory(profile, complaint, lang),
        severity=_label(profile, "severity", complaint.severity, lang),
        complainant_name=name,
        complainant_phone=phone,
        complainant_address=address,
        identity_masked=masked,
        facts=None if facts == MASK else facts,
        request=_request(profile, complaint, lang, request_types),
        recorded_by=recorded_by,
        lead_department=lead.name if lead else None,
        handler=names.get(complaint.handler_id),  # type: ignore[attr-defined]
        co_departments=co_names,
        attachments=await Attachment.filter(complaint_id=complaint.id).using_db(conn).count(),
        steps=steps,
        visits=visits,
        calls=[c for c in calls if c.outcome is not None],
        written_reply_required=(
            profile.reply.written_reply_for_written_complaint and complaint.written
        ),
        organisation=await organisation_name(profile, lang, conn),
    )


async def case_for(
    staff: Staff, complaint_id: int, conn: BaseDBAsyncClient | None = None
) -> Complaint | None:
    """The complaint when it is on `staff`'s desk (the chat's /cases scope), else None."""
    query = Complaint.filter(id=complaint_id)
    scope = scope_q(case_scope(staff))
    if scope is not None:
        query = query.filter(scope)
    return await query.distinct().using_db(conn).first() if staff.active else None


def letter_ready(complaint: Complaint) -> bool:
    """A 书面答复 can be written once the case has its resolution (the reply text)."""
    return bool(complaint.reply_text) and State(complaint.state) not in (
        State.DRAFT,
        State.SUBMITTED,
        State.REFUSED,
        State.WITHDRAWN,
    )


def written_reply_owed(complaint: Complaint, profile: Profile) -> bool:
    return written_reply_pending(complaint, profile)
