"""Notifications: a transition's notify_* effects become outbox rows, in its transaction.

`emit_notifications` is called by models.actions right after the event row is written. It
works out who stands in each relation the effects name, renders each recipient's message in
their language, and queues it with the idempotency key "<event id>:<recipient>", so re-running
the same event can never queue a message twice. The words are the conversations' (staff:
handlers.staff, with the buttons the rule book allows *them*; complainant: handlers.notices):
this module builds the plain values (models.cards) and renders them with the
`NotificationTexts` the shell installs once per process (`use_notification_texts`, done by
handlers.notify.install); the models never import handlers/.

Recipients:
- notify_intake: active intake clerks; when there are none, the heads of the root departments.
- notify_department: the department the case was transferred to / joined (payload
  department_id), else its lead department: the department's head and handlers.
- notify_handlers: the lead handler (or, with none named, the lead department) and the staff of
  co-handling departments.
- notify_case_staff: the handlers once the case is assigned, else the intake desk.
- notify_approver: the lead department's head, unless they made the request or there is none:
  then the supervisors (or admins).
- notify_supervisor: supervisors, or admins when there are none.
- notify_respondent: the staff member whose statement is asked for (models.statement), when
  the respondent is linked to one; a respondent named in free text is nobody's chat.
The acting staff member is never notified of their own action. Staff messages wait for office
hours on a working day (scheduler.deadlines.notify_at) unless the profile keeps 24-hour duty;
the complainant is told at once. Staff are reached at their
Telegram chat, else their WeChat openid; a staff member bound to neither is skipped.

Confidentiality: each staff card is masked for its reader (models.confidentiality), and every
card that shows the complainant's identity unmasked is recorded as a "viewed_identity" event.
Those audit events carry from_state = to_state = the current state and do not count towards
the case version that makes old buttons stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from config.languages import pick_label, supported
from models import statement as statement_rules
from models.actions_rules import recall_decision_pending, severity_raisable
from models.callbacks import is_chatless, open_callback
from models.cards import MILESTONE_ACTIONS, CaseCard, Milestone, button_actions
from models.confidentiality import (
    MASK,
    Field,
    Relation,
    can_see,
    mask_complaint,
    relation_of,
    unmasked_identity,
)
from models.db import select_models
from models.entities import (
    Attachment,
    Channel,
    Complainant,
    Complaint,
    Department,
    Event,
    Staff,
    TargetKind,
)
from models.matters import group_of, repeat_of
from models.messages import Outgoing
from models.outbox import enqueue, undeliverable_complaints
from models.workflow import (
    OPEN_STATES,
    Action,
    CaseFacts,
    Effect,
    Role,
    State,
    Transition,
    allowed_actions,
)
from scheduler.deadlines import notify_at

if TYPE_CHECKING:
    from config.profiles import Profile
    from models.actions import Actor, Clock

VIEWED_IDENTITY = "viewed_identity"
# Events that do not move the case: they leave its buttons valid.
UNVERSIONED_ACTIONS = (VIEWED_IDENTITY, str(Action.ADD_NOTE))
# States in which a case is on someone's desk (replied/revisit wait for the complainant; a
# supervisor revisit is on the supervisors' and admins' desks only).
DESK_STATES = OPEN_STATES - {State.REPLIED, State.REVISIT, State.SUPERVISOR_REVISIT}
_DEPARTMENT_ROLES = (Role.DEPARTMENT_HEAD, Role.HANDLER)


# -- the words, installed by the shell ---------------------------------------------------------


@dataclass(frozen=True)
class NotificationTexts:
    """How a notification is worded: injected, because the words belong to the conversations
    (handlers/) and the models must not import them.

    staff(action, card, lang, tz, payload): the staff member's message (headline, case card,
    buttons); milestone(milestone, lang, tz): the complainant's message, or None when the
    action tells them nothing.
    """

    staff: Callable[[str, CaseCard, str, ZoneInfo, Mapping[str, Any]], Outgoing]
    milestone: Callable[[Milestone, str, ZoneInfo], Outgoing | None]


_texts: NotificationTexts | None = None


def use_notification_texts(texts: NotificationTexts | None) -> None:
    """Word every notification of this process with `texts` (the shell's set-up; None
    uninstalls them, for tests)."""
    global _texts
    _texts = texts


def notification_texts() -> NotificationTexts:
    """The installed texts. None installed is a set-up error: loud, never a silently dropped
    message (the action's transaction is rolled back)."""
    if _texts is None:
        raise RuntimeError(
            "no notification texts installed: the process must call handlers.notify.install() "
            "(or models.notifications.use_notification_texts) before acting on complaints"
        )
    return _texts


# -- the case as one staff member sees it ----------------------------------------------------


async def case_version(complaint_id: int, conn: BaseDBAsyncClient | None = None) -> int:
    """How many workflow events the case has had: the version its buttons carry."""
    return (
        await Event.filter(complaint_id=complaint_id)
        .exclude(action__in=UNVERSIONED_ACTIONS)
        .using_db(conn)
        .count()
    )


async def co_department_ids(complaint: Complaint, conn: BaseDBAsyncClient | None) -> set[int]:
    rows = await complaint.co_departments.all().using_db(conn).values_list("id", flat=True)
    return {int(r) for r in rows}  # type: ignore[arg-type]


def written_reply_pending(complaint: Complaint, profile: Profile) -> bool:
    """The profile requires a written reply to this written complaint, and none was issued."""
    return (
        profile.reply.written_reply_for_written_complaint
        and complaint.written
        and complaint.written_reply_at is None
    )


def facts_for(complaint: Complaint, staff: Staff, profile: Profile, co_ids: set[int]) -> CaseFacts:
    """The rule book's facts for `staff` on this case (as models.actions.case_facts)."""
    is_lead = complaint.handler_id == staff.id  # type: ignore[attr-defined]
    is_co = not is_lead and staff.department_id in co_ids  # type: ignore[attr-defined]
    pending = complaint.extension_pending or None
    statement = statement_rules.statement_facts(profile, complaint, staff.id)
    return CaseFacts(
        actor_is_assignee=is_lead or is_co,
        actor_is_lead=is_lead,
        extension_pending=pending is not None,
        actor_is_extension_requester=pending is not None and pending.get("staff_id") == staff.id,
        extensions_used=complaint.extensions_used,
        max_extensions=profile.extension.max_count if profile.extension is not None else 0,
        written_reply_pending=written_reply_pending(complaint, profile),
        severity_raisable=severity_raisable(profile, complaint),
        settle_as_decided_enabled=profile.acceptance.settle_as_decided,
        recall_decision_enabled=profile.resolution.requires_recall_decision,
        recall_decision_pending=recall_decision_pending(profile, complaint),
        statement_required=statement.statement_required,
        statement_open=statement.statement_open,
        statement_settled=statement.statement_settled,
        actor_is_respondent=statement.actor_is_respondent,
    )


def _same_name(typed: str | None, name: str | None) -> bool:
    if not typed or not name:
        return False
    return typed.strip().casefold() == name.strip().casefold()


def relation_for(
    staff: Staff, complaint: Complaint, co_ids: set[int], department_name: str | None = None
) -> Relation:
    """`staff`'s relation to the case. Besides the linked target, a target the complainant
    typed that names the viewer or the viewer's department exactly counts as targeting them:
    masking on a plain name match fails closed while nobody has linked the target yet."""
    target_staff_id = complaint.target_staff_id  # type: ignore[attr-defined]
    target_department_id = complaint.target_department_id  # type: ignore[attr-defined]
    if target_staff_id is None and complaint.target_kind == TargetKind.STAFF:
        if _same_name(complaint.target_text, staff.name):
            target_staff_id = staff.id
    if target_department_id is None and complaint.target_kind == TargetKind.DEPARTMENT:
        if _same_name(complaint.target_text, department_name):
            target_department_id = staff.department_id  # type: ignore[attr-defined]
    return relation_of(
        role=Role(staff.role),
        staff_id=staff.id,
        department_id=staff.department_id,  # type: ignore[attr-defined]
        target_staff_id=target_staff_id,
        target_department_id=target_department_id,
        handler_id=complaint.handler_id,  # type: ignore[attr-defined]
        lead_department_id=complaint.lead_department_id,  # type: ignore[attr-defined]
        co_department_ids=co_ids,
    )


def _label(profile: Profile, kind: str, item: str | None, lang: str) -> str | None:
    if not item:
        return None
    try:
        return profile.label(kind, item, lang)
    except KeyError:
        return item


async def viewer_relation(
    complaint: Complaint,
    staff: Staff,
    conn: BaseDBAsyncClient | None,
    co_ids: set[int] | None = None,
) -> Relation:
    """`staff`'s relation to the case, looked up (see relation_for)."""
    if co_ids is None:
        co_ids = await co_department_ids(complaint, conn)
    own_department = (
        await Department.filter(id=staff.department_id).using_db(conn).first()  # type: ignore[attr-defined]
        if staff.department_id  # type: ignore[attr-defined]
        else None
    )
    return relation_for(staff, complaint, co_ids, own_department.name if own_department else None)


async def visible_attachments(
    complaint: Complaint, staff: Staff, conn: BaseDBAsyncClient | None = None
) -> list[Attachment]:
    """The case's photos and files, when `staff` may see them (can_see ATTACHMENTS)."""
    relation = await viewer_relation(complaint, staff, conn)
    if not can_see(Field.ATTACHMENTS, Role(staff.role), relation):
        return []
    return await Attachment.filter(complaint_id=complaint.id).using_db(conn).order_by("id")


def _subcategory_label(profile: Profile, complaint: Complaint, lang: str) -> str | None:
    if not complaint.subcategory or not complaint.category:
        return None
    try:
        return profile.label(
            "subcategory", complaint.subcategory, lang, category=complaint.category
        )
    except KeyError:
        return complaint.subcategory


async def build_card(
    complaint: Complaint,
    staff: Staff,
    profile: Profile,
    conn: BaseDBAsyncClient | None,
    *,
    version: int | None = None,
) -> tuple[CaseCard, list[str]]:
    """The case card for `staff`, masked for them, and the identity fields it shows."""
    lang = supported(staff.language)
    co_ids = await co_department_ids(complaint, conn)
    relation = await viewer_relation(complaint, staff, conn, co_ids)
    state = State(complaint.state)
    view = mask_complaint(
        {
            Field.COMPLAINANT_NAME: complaint.contact_name,
            Field.COMPLAINANT_PHONE: complaint.contact_phone,
            Field.FACTS: complaint.facts,
        },
        Role(staff.role),
        relation,
    )
    # Place, request and witnesses are part of the complainant's account: shown with the facts.
    details = can_see(Field.FACTS, Role(staff.role), relation)

    def detail(value: str | None) -> str | None:
        return value if details or not value else MASK

    photos = (
        await Attachment.filter(complaint_id=complaint.id).using_db(conn).count()
        if can_see(Field.ATTACHMENTS, Role(staff.role), relation)
        else 0
    )
    if state not in OPEN_STATES:  # a closed matter needs nobody's identity
        view[Field.COMPLAINANT_NAME] = view[Field.COMPLAINANT_PHONE] = None
    shown = unmasked_identity(view, Role(staff.role), relation)
    lead = (
        await Department.filter(id=complaint.lead_department_id).using_db(conn).first()  # type: ignore[attr-defined]
        if complaint.lead_department_id  # type: ignore[attr-defined]
        else None
    )
    handler = (
        await Staff.filter(id=complaint.handler_id).using_db(conn).first()  # type: ignore[attr-defined]
        if complaint.handler_id  # type: ignore[attr-defined]
        else None
    )
    co_names = (
        await Department.filter(id__in=sorted(co_ids))
        .using_db(conn)
        .order_by("id")
        .values_list("name", flat=True)
        if co_ids
        else []
    )
    facts = facts_for(complaint, staff, profile, co_ids)
    repeated = await repeat_of(complaint.id, conn)
    group = await group_of(complaint.id, conn)
    actions = (
        button_actions(allowed_actions(state, Role(staff.role), facts)) if staff.active else ()
    )
    card = CaseCard(
        id=complaint.id,
        number=complaint.number,
        state=str(state),
        version=version if version is not None else await case_version(complaint.id, conn),
        category=complaint.category,
        category_label=_label(profile, "category", complaint.category, lang),
        severity=complaint.severity,
        severity_label=_label(profile, "severity", complaint.severity, lang),
        target=complaint.target_text,
        facts=view.get(Field.FACTS),
        complainant_name=view.get(Field.COMPLAINANT_NAME),
        complainant_phone=view.get(Field.COMPLAINANT_PHONE),
        anonymous=complaint.anonymous,
        lead_department_id=lead.id if lead else None,
        lead_department=lead.name if lead else None,
        co_departments=tuple(str(n) for n in co_names),
        handler=handler.name if handler else None,
        due=complaint.next_due_at,
        due_stage=complaint.next_due_stage,
        provisional=complaint.deadline_provisional,
        extension_request=complaint.extension_pending,
        actions=actions,
        complainant_unreachable=bool(await undeliverable_complaints([complaint.id], conn=conn)),
        subcategory=complaint.subcategory,
        subcategory_label=_subcategory_label(profile, complaint, lang),
        channel=str(complaint.channel),
        incident_at=complaint.incident_at if details else None,
        place=detail(complaint.place_text),
        request_type=str(complaint.request_type) if complaint.request_type and details else None,
        request_text=detail(complaint.request_text),
        witnesses=detail(complaint.witnesses),
        photos=photos,
        written=complaint.written,
        incident_precision=(complaint.intake_extra or {}).get("incident_time_precision")
        if details
        else None,
        screening=(complaint.intake_extra or {}).get("screening"),
        recall_asked=profile.resolution.requires_recall_decision,
        recall_decision=complaint.recall_decision,
        recall_reason=detail(complaint.recall_reason),
        **_statement_fields(complaint, details),
        repeat_of=repeated.number if repeated else None,
        group_id=group.id if group else None,
        group_status=group.status if group else None,
        group_size=len(group.members) if group else 0,
    )
    return card, shown


def _statement_fields(complaint: Complaint, details: bool) -> dict[str, Any]:
    """The respondent's statement on the card: who, by when, and (for whoever may read the
    complainant's account) what they said."""
    entry = complaint.statement if isinstance(complaint.statement, dict) else None
    if entry is None:
        return {}
    text = entry.get("text")
    return {
        "statement_status": entry.get("status"),
        "statement_respondent": entry.get("respondent") if details else MASK,
        "statement_due": datetime.fromisoformat(entry["due"]) if entry.get("due") else None,
        "statement_text": (text if details else MASK) if text else None,
        "statement_on_behalf": bool(entry.get("on_behalf")),
    }


async def record_identity_view(
    complaint: Complaint,
    staff: Staff,
    fields: list[str],
    *,
    via: str,
    now: datetime,
    conn: BaseDBAsyncClient | None,
) -> None:
    """Audit: `staff` was shown the complainant's `fields` unmasked (no-op when none)."""
    if not fields:
        return
    await Event.create(
        complaint=complaint,
        actor_role=Role(staff.role),
        actor_staff=staff,
        action=VIEWED_IDENTITY,
        from_state=str(complaint.state),
        to_state=str(complaint.state),
        payload={"fields": fields, "via": via},
        created_at=now,
        using_db=conn,
    )


@dataclass(frozen=True)
class CaseScope:
    """Which cases a staff member's lists show (the chat's /cases and the browser desk's list).

    everything: supervisors and admins. Otherwise a case is in scope when its lead handler is
    `handler_id`, its lead or a co-handling department is `department_id`, or (`intake`) it
    is still at the intake desk: submitted or accepted, or with no department yet.
    """

    everything: bool = False
    handler_id: int | None = None
    department_id: int | None = None
    intake: bool = False


INTAKE_STATES: tuple[State, ...] = (State.SUBMITTED, State.ACCEPTED)


def case_scope(staff: Staff) -> CaseScope:
    role = Role(staff.role)
    if role in (Role.HANDLER, Role.DEPARTMENT_HEAD):
        return CaseScope(handler_id=staff.id, department_id=staff.department_id)  # type: ignore[attr-defined]
    if role == Role.INTAKE_CLERK:
        return CaseScope(intake=True)
    if role in (Role.SUPERVISOR, Role.ADMIN):
        return CaseScope(everything=True)
    return CaseScope()


def scope_q(scope: CaseScope) -> Q | None:
    """The scope as a Tortoise filter (None: no restriction)."""
    if scope.everything:
        return None
    parts: list[Q] = []
    if scope.handler_id is not None:
        parts.append(Q(handler_id=scope.handler_id))
    if scope.department_id is not None:
        parts += [
            Q(lead_department_id=scope.department_id),
            Q(co_departments__id=scope.department_id),
        ]
    if scope.intake:
        parts += [Q(state__in=[str(s) for s in INTAKE_STATES]), Q(lead_department_id=None)]
    if not parts:
        return Q(id__in=[])
    combined = parts[0]
    for part in parts[1:]:
        combined |= part
    return combined


async def desk_cases(
    staff: Staff, conn: BaseDBAsyncClient | None = None, limit: int = 500
) -> list[CaseCard]:
    """The staff member's open cases, most urgent first (no deadline last), for /cases."""
    role = Role(staff.role)
    query = Complaint.filter(state__in=[str(s) for s in DESK_STATES])
    scope = scope_q(case_scope(staff))
    if scope is not None:
        query = query.filter(scope)
    rows = await query.distinct().using_db(conn).limit(limit)
    if role in (Role.SUPERVISOR, Role.ADMIN):
        # An unsatisfied survey leaves a supervisor revisit owed: the case is theirs to close or
        # reopen, so it is on their list although it is in revisit.
        revisits = await (
            Complaint.filter(state__in=[str(State.SUPERVISOR_REVISIT), str(State.REVISIT)])
            .using_db(conn)
            .limit(limit)
        )
        rows += [c for c in revisits if (c.alarm_state or {}).get("supervisor_revisit")]
    rows.sort(key=lambda c: (c.next_due_at is None, c.next_due_at or datetime.max, c.id))
    unreachable = await undeliverable_complaints([c.id for c in rows], conn=conn)
    return [
        CaseCard(
            id=c.id,
            number=c.number,
            state=str(c.state),
            version=0,
            due=c.next_due_at,
            due_stage=c.next_due_stage,
            provisional=c.deadline_provisional,
            complainant_unreachable=c.id in unreachable,
        )
        for c in rows
    ]


# -- recipients --------------------------------------------------------------------------------


async def _department_staff(department_id: int | None, conn: BaseDBAsyncClient) -> list[Staff]:
    if department_id is None:
        return []
    return (
        await Staff.filter(department_id=department_id, active=True, role__in=_DEPARTMENT_ROLES)
        .using_db(conn)
        .order_by("id")
    )


# Written out (models.db.select_models): read on every filing.
_INTAKE_DESK = (
    '"active" AND ("role" = ? OR ("role" = ? AND "department_id" IN '
    '(SELECT "id" FROM "department" WHERE "parent_id" IS NULL)))'
)


async def intake_desk(conn: BaseDBAsyncClient | None) -> list[Staff]:
    """The active intake clerks; where there is none, the heads of the top-level departments.
    One query for both (told on every filing): the heads are dropped when a clerk is found."""
    desk = await select_models(
        Staff,
        conn,
        _INTAKE_DESK,
        [Role.INTAKE_CLERK.value, Role.DEPARTMENT_HEAD.value],
        tail=' ORDER BY "id"',
    )
    clerks = [person for person in desk if person.role == Role.INTAKE_CLERK]
    return clerks or desk


async def _supervisors(conn: BaseDBAsyncClient) -> list[Staff]:
    for role in (Role.SUPERVISOR, Role.ADMIN):
        found = await Staff.filter(role=role, active=True).using_db(conn).order_by("id")
        if found:
            return found
    return []


async def supervisors(conn: BaseDBAsyncClient) -> list[Staff]:
    """The active supervisors (the admins where there is none): who reviews a mass matter."""
    return await _supervisors(conn)


async def _handlers(complaint: Complaint, conn: BaseDBAsyncClient) -> list[Staff]:
    people: list[Staff] = []
    handler_id = complaint.handler_id  # type: ignore[attr-defined]
    if handler_id is not None:
        people += await Staff.filter(id=handler_id, active=True).using_db(conn)
    else:
        people += await _department_staff(complaint.lead_department_id, conn)  # type: ignore[attr-defined]
    for department_id in sorted(await co_department_ids(complaint, conn)):
        people += await _department_staff(department_id, conn)
    return people


async def _approvers(complaint: Complaint, conn: BaseDBAsyncClient) -> list[Staff]:
    requester = (complaint.extension_pending or {}).get("staff_id")
    lead_id = complaint.lead_department_id  # type: ignore[attr-defined]
    if lead_id is not None:
        heads = (
            await Staff.filter(department_id=lead_id, role=Role.DEPARTMENT_HEAD, active=True)
            .using_db(conn)
            .order_by("id")
        )
        heads = [h for h in heads if h.id != requester]
        if heads:
            return heads[:1]
    return [s for s in await _supervisors(conn) if s.id != requester]


async def recipients(
    effects: Iterable[str], complaint: Complaint, payload: dict[str, Any], conn: BaseDBAsyncClient
) -> list[Staff]:
    """The staff the effects address, each once, in a stable order."""
    found: dict[int, Staff] = {}
    for effect in effects:
        people: list[Staff] = []
        if effect == Effect.NOTIFY_INTAKE:
            people = await intake_desk(conn)
        elif effect == Effect.NOTIFY_DEPARTMENT:
            department_id = payload.get("department_id") or complaint.lead_department_id  # type: ignore[attr-defined]
            people = await _department_staff(
                int(department_id) if department_id is not None else None, conn
            )
        elif effect == Effect.NOTIFY_HANDLERS:
            people = await _handlers(complaint, conn)
        elif effect == Effect.NOTIFY_CASE_STAFF:
            assigned = complaint.handler_id or complaint.lead_department_id  # type: ignore[attr-defined]
            people = await (_handlers(complaint, conn) if assigned else intake_desk(conn))
        elif effect == Effect.NOTIFY_APPROVER:
            people = await _approvers(complaint, conn)
        elif effect == Effect.NOTIFY_SUPERVISOR:
            people = await _supervisors(conn)
        elif effect == Effect.NOTIFY_RESPONDENT:
            staff_id = statement_rules.respondent_staff_id(complaint)
            people = await Staff.filter(id=staff_id, active=True).using_db(conn) if staff_id else []
        for person in people:
            found.setdefault(person.id, person)
    return list(found.values())


async def transferring_heads(complaint: Complaint, conn: BaseDBAsyncClient) -> list[Staff]:
    """The heads of the departments that transferred `complaint` on (its 转办部门), oldest first;
    the current lead department is not one of them."""
    transfers = (
        await Event.filter(complaint_id=complaint.id, action=str(Action.TRANSFER))
        .using_db(conn)
        .order_by("id")
        .values_list("payload", flat=True)
    )
    lead = complaint.lead_department_id  # type: ignore[attr-defined]
    departments: list[int] = []
    for payload in transfers:
        source = (payload or {}).get("from_department_id")
        if isinstance(source, int) and source != lead and source not in departments:
            departments.append(source)
    heads = (
        await Staff.filter(department_id__in=departments, role=Role.DEPARTMENT_HEAD, active=True)
        .using_db(conn)
        .order_by("id")
    )
    return sorted(heads, key=lambda h: departments.index(h.department_id))  # type: ignore[attr-defined]


def reach(staff: Staff) -> tuple[Channel, str] | None:
    """Where a staff member is notified: their Telegram chat, else their WeChat openid."""
    if staff.telegram_chat_id:
        return Channel.TELEGRAM, staff.telegram_chat_id
    if staff.wechat_openid:
        return Channel.WECHAT, staff.wechat_openid
    return None


# -- the complainant ---------------------------------------------------------------------------


def _stage_due(complaint: Complaint, stage: str) -> tuple[datetime | None, bool]:
    entry = (complaint.deadlines or {}).get(stage)
    if not entry:
        return None, False
    return datetime.fromisoformat(entry["due"]), bool(entry.get("provisional"))


async def _milestone(
    complaint: Complaint,
    action: str,
    payload: dict[str, Any],
    profile: Profile,
    lang: str,
    conn: BaseDBAsyncClient,
) -> Milestone:
    due, provisional = _stage_due(complaint, "resolution")
    contact = (complaint.deadlines or {}).get("first_contact") or {}
    contact_due = (
        datetime.fromisoformat(contact["due"]) if contact and not contact.get("done") else None
    )
    try:
        result = profile.deadline_for(
            "result_notice", complaint.category, complaint.severity, complaint.complexity
        )
        result_term: tuple[int, str] | None = (result.amount, result.unit)
    except (LookupError, ValueError):
        result_term = None
    milestone = Milestone(
        action=action,
        number=complaint.number,
        due=due,
        provisional=provisional,
        contact_due=contact_due,
        result_term=result_term,
    )
    if action == Action.ASSIGN and complaint.lead_department_id:  # type: ignore[attr-defined]
        department = await Department.filter(id=complaint.lead_department_id).using_db(conn).first()  # type: ignore[attr-defined]
        return Milestone(
            action,
            complaint.number,
            department=department.name if department else None,
            # the department complained about handles it: not "由X办理" (D13)
            department_is_target=(
                complaint.lead_department_id == complaint.target_department_id  # type: ignore[attr-defined]
            ),
        )
    if action == Action.REQUEST_MATERIAL:
        return Milestone(action, complaint.number, question=payload.get("question"))
    if action == Action.NOTIFY_RESULT:
        # Files the handler attached to the resolution (payload attachment_ids) go along.
        resolution = (
            await Event.filter(complaint_id=complaint.id, action=str(Action.RESOLVE))
            .using_db(conn)
            .order_by("-id")
            .first()
        )
        files = (resolution.payload or {}).get("attachment_ids", []) if resolution else []
        return Milestone(
            action,
            complaint.number,
            reply_text=complaint.reply_text,
            attachments=tuple(str(f) for f in files),
        )
    if action == Action.REFUSE:
        reason, guidance = payload.get("reason"), payload.get("guidance")
        for exclusion in profile.exclusions:
            if exclusion.id == payload.get("exclusion"):
                reason = pick_label(exclusion.reason, lang)
                guidance = pick_label(exclusion.guidance, lang)
        return Milestone(action, complaint.number, reason=reason, guidance=guidance)
    if action == Action.APPROVE_EXTENSION:
        request = (
            await Event.filter(complaint_id=complaint.id, action=str(Action.REQUEST_EXTENSION))
            .using_db(conn)
            .order_by("-id")
            .first()
        )
        reason = (request.payload or {}).get("reason") if request else None
        return Milestone(action, complaint.number, due=due, provisional=provisional, reason=reason)
    return milestone


async def _notify_complainant(
    complaint: Complaint,
    action: str,
    event: Event,
    profile: Profile,
    clock: Clock,
    conn: BaseDBAsyncClient,
) -> None:
    person = (
        await Complainant.filter(id=complaint.complainant_id).using_db(conn).first()  # type: ignore[attr-defined]
        if complaint.complainant_id  # type: ignore[attr-defined]
        else None
    )
    if person is None or not (person.chat_id or is_chatless(person)):
        return
    lang = supported(person.language)
    milestone = await _milestone(complaint, action, dict(event.payload or {}), profile, lang, conn)
    message = notification_texts().milestone(milestone, lang, clock.tz)
    if message is None:
        return
    if is_chatless(person):  # recorded on the desk: staff call them and read this out
        await open_callback(
            complaint,
            kind=action,
            script=message.text,
            idempotency_key=f"{event.id}:complainant:{person.id}",
            profile=profile,
            clock=clock,
            conn=conn,
        )
        return
    assert person.chat_id is not None
    await enqueue(
        channel=person.channel,
        chat_id=person.chat_id,
        message=message,
        idempotency_key=f"{event.id}:complainant:{person.id}",
        now=clock.now,
        complaint=complaint,
        conn=conn,
    )


# -- the entry point ---------------------------------------------------------------------------


async def emit_notifications(
    complaint: Complaint,
    transition: Transition,
    actor: Actor,
    clock: Clock,
    profile: Profile,
    conn: BaseDBAsyncClient,
    *,
    event: Event | None = None,
    people: list[Staff] | None = None,
    version: int | None = None,
) -> None:
    """Queue the messages `transition`'s effects call for (call inside its transaction).

    `event` is the row just written for the transition (default: the complaint's latest).
    `people`: the effects' `recipients`, when the caller read them beforehand (a filing does,
    ahead of its number's lock); `version`: the case's `case_version`, when known.
    """
    if event is None:
        event = (
            await Event.filter(complaint_id=complaint.id)
            .exclude(action=VIEWED_IDENTITY)
            .using_db(conn)
            .order_by("-id")
            .first()
        )
        if event is None:
            raise LookupError(f"complaint {complaint.number} has no event to notify about")
    action = str(transition.action)
    effects = set(transition.effects)
    payload = dict(event.payload or {})
    # The complainant hears of the milestones (handlers.notices): the submission is answered in
    # the intake dialog, closing and reopening by the survey; assignment is a milestone although
    # the rule book names no complainant effect for it.
    if transition.action in MILESTONE_ACTIONS:
        await _notify_complainant(complaint, action, event, profile, clock, conn)
    actor_id = actor.staff.id if actor.staff is not None else None
    if people is None:
        people = await recipients(effects, complaint, payload, conn)
    if (
        transition.action == Action.APPROVE_EXTENSION
        and profile.extension is not None
        and profile.extension.tell_transferring_departments
    ):
        known = {p.id for p in people}
        people += [p for p in await transferring_heads(complaint, conn) if p.id not in known]
    people = [p for p in people if p.id != actor_id]
    if not people:
        return
    texts = notification_texts()
    if version is None:
        version = await case_version(complaint.id, conn)
    # Staff hear of it in office hours on working days (unless the profile keeps 24-hour duty);
    # the deadlines already count from `clock.now`.
    send_at = notify_at(
        clock.now,
        profile.office_hours.to_office_hours(),
        profile.duty_24h,
        clock.calendar,
        clock.tz,
    )
    for person in people:
        address = reach(person)
        if address is None:
            continue
        card, shown = await build_card(complaint, person, profile, conn, version=version)
        message = texts.staff(action, card, supported(person.language), clock.tz, payload)
        queued = await enqueue(
            channel=address[0],
            chat_id=address[1],
            message=message,
            idempotency_key=f"{event.id}:staff:{person.id}",
            now=send_at,
            complaint=complaint,
            conn=conn,
        )
        if queued is not None and action != Action.WITHDRAW:
            await record_identity_view(
                complaint, person, shown, via="notification", now=clock.now, conn=conn
            )
