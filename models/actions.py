"""Workflow actions: every change of a complaint is one `do_*`/`act` call in one transaction.

As in Zulip's `zerver/actions/`: the rule book (`models.workflow.decide`) is asked first, then the
complaint row, its event and any outbox rows are written together, so the state stored on the
complaint is always the one its events prove.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from config.profiles import Profile
from models.entities import (
    Attachment,
    Channel,
    Complainant,
    Complaint,
    Event,
    RequestType,
    Staff,
    TargetKind,
)
from models.notifications import emit_notifications, written_reply_pending
from models.targets import link_target
from models.workflow import (
    Action,
    CaseFacts,
    Effect,
    Refusal,
    Role,
    State,
    Transition,
    decide,
)
from scheduler.calendar import WorkingCalendar
from scheduler.deadlines import Duration, Pause, compute_due

# Which stage deadlines run while a complaint is in a state. The first listed stage the profile
# defines is the one the sweep watches (`next_due_at`).
ACTIVE_STAGES: dict[State, tuple[str, ...]] = {
    State.SUBMITTED: ("acceptance", "dispatch"),
    State.ACCEPTED: ("dispatch", "resolution"),
    State.ASSIGNED: ("first_contact", "resolution"),
    State.IN_PROGRESS: ("resolution",),
    State.REOPENED: ("resolution",),
    State.RESOLVED: ("result_notice",),
    State.REPLIED: ("revisit",),
    State.REVISIT: ("survey_reminder", "auto_close"),
}
# Stages whose clock starts when the case enters the state. Dispatch counts from receipt (a
# 24-hour desk dispatches within minutes of the call, before any formal acceptance) and runs
# until the case is assigned.
STAGE_STARTS: dict[State, tuple[str, ...]] = {
    State.SUBMITTED: ("acceptance", "dispatch", "manager_notice"),
    State.ACCEPTED: ("resolution", "manager_notice"),
    State.ASSIGNED: ("first_contact",),
    State.REOPENED: ("resolution",),
    State.RESOLVED: ("result_notice",),
    State.REPLIED: ("revisit",),
    State.REVISIT: ("survey_reminder", "auto_close"),
}


class ActionRefused(Exception):
    """The rule book said no; nothing was written."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class ComplaintNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Clock:
    """What deadline arithmetic needs: the calendar, the display zone and the current instant."""

    calendar: WorkingCalendar
    tz: ZoneInfo
    now: datetime

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("Clock.now must be timezone-aware")


@dataclass(frozen=True)
class Actor:
    role: Role
    staff: Staff | None = None
    complainant: Complainant | None = None


@dataclass
class ActionResult:
    complaint: Complaint
    transition: Transition
    event: Event
    extra: dict[str, Any] = field(default_factory=dict)


# -- numbering ---------------------------------------------------------------------------


async def next_complaint_number(conn: BaseDBAsyncClient, month: str) -> str:
    """The next YYYYMM-NNNN for `month`, gap-free: call inside the submitting transaction.

    The upsert takes the month's row lock until commit, so concurrent submissions queue on it
    and a rolled-back submission gives its serial back.
    """
    dialect = conn.capabilities.dialect
    mark = "$1" if dialect == "postgres" else "?"
    rows = await conn.execute_query_dict(
        "INSERT INTO monthly_serial (month, last_serial) VALUES "
        f"({mark}, 1) ON CONFLICT (month) DO UPDATE "
        "SET last_serial = monthly_serial.last_serial + 1 RETURNING last_serial",
        [month],
    )
    serial = int(rows[0]["last_serial"])
    return f"{month}-{serial:04d}"


# -- deadlines ---------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def stage_deadline(
    profile: Profile,
    stage: str,
    complaint: Complaint,
    start: datetime,
    clock: Clock,
    *,
    pauses: list[Pause] | None = None,
    extension: Duration | None = None,
) -> dict[str, Any] | None:
    """The stored form of one stage deadline, or None when the profile sets none for it."""
    try:
        duration = profile.deadline_for(stage, complaint.category, complaint.severity)
    except (LookupError, ValueError):
        return None
    result = compute_due(
        start,
        duration,
        clock.calendar,
        clock.tz,
        office_hours=profile.clock_office_hours(),
        pauses=pauses or (),
        extension=extension,
    )
    entry: dict[str, Any] = {
        "start": _iso(start),
        "amount": duration.amount,
        "unit": duration.unit,
        "due": _iso(result.due),
        "provisional": result.provisional,
    }
    if pauses:
        entry["pauses"] = [[_iso(p.start), _iso(p.end)] for p in pauses]
    if extension is not None:
        entry["extension"] = {"amount": extension.amount, "unit": extension.unit}
    return entry


def recompute_stage(profile: Profile, complaint: Complaint, stage: str, clock: Clock) -> None:
    """Recount a stored stage deadline from its start, pauses and extension (e.g. after a
    resume, an approved extension, or official holiday data replacing a provisional year)."""
    entry = complaint.deadlines.get(stage)
    if not entry:
        return
    pauses = [Pause(_parse(a), _parse(b)) for a, b in entry.get("pauses", [])]
    ext = entry.get("extension")
    new = stage_deadline(
        profile,
        stage,
        complaint,
        _parse(entry["start"]),
        clock,
        pauses=pauses,
        extension=Duration(ext["amount"], ext["unit"]) if ext else None,
    )
    if new is not None:
        new["reminded"] = entry.get("reminded", [])
        complaint.deadlines[stage] = new


def refresh_next_due(complaint: Complaint) -> None:
    """Copy the nearest running stage deadline to the indexed columns the sweep scans."""
    state = State(complaint.state)
    candidates = []
    for stage in ACTIVE_STAGES.get(state, ()):
        entry = complaint.deadlines.get(stage)
        if entry and not entry.get("done"):
            candidates.append((_parse(entry["due"]), stage, bool(entry.get("provisional"))))
    if complaint.paused_at is not None or not candidates:
        complaint.next_due_at = None
        complaint.next_due_stage = None
    else:
        due, stage, _ = min(candidates)
        complaint.next_due_at = due
        complaint.next_due_stage = stage
    complaint.deadline_provisional = any(
        bool(e.get("provisional")) for e in complaint.deadlines.values() if isinstance(e, dict)
    )


# Stages owed once per complaint, never restarted: a major complaint's manager notice runs from
# its submission, or from the acceptance that rated it major (the profile sets the deadline for
# the major severity only, so a minor complaint starts none). The scheduler watches it in every
# open state (scheduler/alarms.py), so it is not in ACTIVE_STAGES.
ONCE_STAGES = frozenset({"manager_notice"})


def start_stages(profile: Profile, complaint: Complaint, state: State, clock: Clock) -> None:
    for stage in STAGE_STARTS.get(state, ()):
        if stage in ONCE_STAGES and stage in complaint.deadlines:
            continue
        entry = stage_deadline(profile, stage, complaint, clock.now, clock)
        if entry is not None:
            complaint.deadlines[stage] = entry


# -- submission --------------------------------------------------------------------------


def _enum_or_none(enum: type[Any], value: Any) -> Any:
    if value in (None, ""):
        return None
    try:
        return enum(value)
    except ValueError:
        return enum("other")


async def get_or_create_complainant(
    channel: Channel,
    external_id: str,
    *,
    chat_id: str | None = None,
    language: str | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> Complainant:
    person = (
        await Complainant.filter(channel=channel, external_id=external_id).using_db(conn).first()
    )
    if person is None:
        person = await Complainant.create(
            channel=channel,
            external_id=external_id,
            chat_id=chat_id or external_id,
            language=language or "zh_CN",
            using_db=conn,
        )
    return person


async def submit_complaint(
    *,
    profile: Profile,
    channel: Channel,
    external_id: str,
    answers: dict[str, Any],
    clock: Clock,
    chat_id: str | None = None,
    language: str = "zh_CN",
    attachment_ids: list[int] | None = None,
    recorded_by: Staff | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> Complaint:
    """File a complaint: number, row, acceptance deadline and the submit event, atomically.

    `recorded_by`: the staff member who records it for the complainant (代录: phone, window,
    letter, e-mail); the complainant then has no chat (`chat_id` stays empty) and the address
    they gave is kept (`answers["address"]`). The profile decides whether the channel makes
    it a written complaint.
    """
    if conn is None:
        async with in_transaction() as tx:
            return await submit_complaint(
                profile=profile,
                channel=channel,
                external_id=external_id,
                answers=answers,
                clock=clock,
                chat_id=chat_id,
                language=language,
                attachment_ids=attachment_ids,
                recorded_by=recorded_by,
                conn=tx,
            )
    if recorded_by is not None:
        actor = Actor(Role(recorded_by.role), staff=recorded_by)
        transition = decide(State.DRAFT, Action.SUBMIT, actor.role)
    else:
        actor = Actor(Role.COMPLAINANT)
        transition = decide(State.DRAFT, Action.SUBMIT, Role.COMPLAINANT, CaseFacts(True))
    if isinstance(transition, Refusal):
        raise ActionRefused(transition)
    if recorded_by is not None:
        person = await Complainant.filter(channel=channel, external_id=external_id).using_db(
            conn
        ).first() or await Complainant.create(
            channel=channel, external_id=external_id, chat_id=None, language=language, using_db=conn
        )
    else:
        person = await get_or_create_complainant(
            channel, external_id, chat_id=chat_id, language=language, conn=conn
        )
        actor = Actor(Role.COMPLAINANT, complainant=person)
    anonymous = bool(answers.get("anonymous"))
    if not anonymous:
        changed = False
        if answers.get("name"):
            person.name, changed = answers["name"], True
        if answers.get("phone"):
            person.phone, changed = answers["phone"], True
        if changed:
            await person.save(using_db=conn)
    month = clock.now.astimezone(clock.tz).strftime("%Y%m")
    number = await next_complaint_number(conn, month)
    incident = answers.get("incident_time")
    complaint = Complaint(
        number=number,
        profile=profile.id,
        category=answers.get("category"),
        subcategory=answers.get("subcategory"),
        severity=None,
        channel=channel,
        complainant=person,
        anonymous=anonymous,
        contact_name=None if anonymous else answers.get("name"),
        contact_phone=None if anonymous else answers.get("phone"),
        contact_address=None if anonymous else answers.get("address"),
        written=str(channel) in profile.reply.written_channels,
        target_kind=_enum_or_none(TargetKind, answers.get("target_kind")),
        target_text=answers.get("target_text"),
        incident_at=datetime.fromisoformat(incident) if incident else None,
        place_text=answers.get("place_text"),
        latitude=answers.get("latitude"),
        longitude=answers.get("longitude"),
        facts=answers.get("facts") or "",
        request_type=_enum_or_none(RequestType, answers.get("request_type")),
        request_text=answers.get("request_text"),
        witnesses=answers.get("witnesses"),
        state=State.SUBMITTED,
        submitted_at=clock.now,
        deadlines={},
    )
    if complaint.category is not None:
        try:
            complaint.severity = profile.category(complaint.category).default_severity
        except KeyError:
            complaint.category = None
    start_stages(profile, complaint, State.SUBMITTED, clock)
    refresh_next_due(complaint)
    await link_target(complaint, conn)  # before notifications, so the cards mask for the target
    await complaint.save(using_db=conn)
    if attachment_ids:
        await (
            Attachment.filter(id__in=attachment_ids)
            .using_db(conn)
            .update(complaint_id=complaint.id)
        )
    payload: dict[str, Any] = {"channel": str(channel), "effects": list(transition.effects)}
    if recorded_by is not None:
        payload["recorded_for"] = True
    event = await Event.create(
        complaint=complaint,
        actor_role=actor.role,
        actor_staff=actor.staff,
        action=Action.SUBMIT,
        from_state=State.DRAFT,
        to_state=State.SUBMITTED,
        payload=payload,
        created_at=clock.now,
        using_db=conn,
    )
    await emit_notifications(complaint, transition, actor, clock, profile, conn, event=event)
    return complaint


# -- transitions -------------------------------------------------------------------------


async def _lock_complaint(conn: BaseDBAsyncClient, ref: int | str) -> Complaint:
    query = Complaint.filter(number=ref) if isinstance(ref, str) else Complaint.filter(id=ref)
    query = query.using_db(conn)
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update()
    complaint = await query.first()
    if complaint is None:
        raise ComplaintNotFound(f"no complaint {ref!r}")
    return complaint


async def case_facts(complaint: Complaint, actor: Actor, profile: Profile) -> CaseFacts:
    staff = actor.staff
    is_lead = staff is not None and complaint.handler_id == staff.id  # type: ignore[attr-defined]
    is_co = False
    if staff is not None and staff.department_id is not None and not is_lead:  # type: ignore[attr-defined]
        co_ids = await complaint.co_departments.all().values_list("id", flat=True)
        is_co = staff.department_id in co_ids  # type: ignore[attr-defined]
    pending = complaint.extension_pending or None
    max_ext = profile.extension.max_count if profile.extension is not None else 0
    return CaseFacts(
        actor_is_complainant_owner=(
            actor.complainant is not None and complaint.complainant_id == actor.complainant.id  # type: ignore[attr-defined]
        ),
        actor_is_assignee=is_lead or is_co,
        actor_is_lead=is_lead,
        extension_pending=pending is not None,
        actor_is_extension_requester=(
            pending is not None and staff is not None and pending.get("staff_id") == staff.id
        ),
        extensions_used=complaint.extensions_used,
        max_extensions=max_ext,
        written_reply_pending=written_reply_pending(complaint, profile),
    )


async def act(
    ref: int | str,
    action: Action,
    actor: Actor,
    *,
    profile: Profile,
    clock: Clock,
    payload: dict[str, Any] | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> ActionResult:
    """Apply one workflow action to a complaint (by id or number) in one transaction.

    Raises `ActionRefused` (nothing written) when the rule book refuses, `ComplaintNotFound`
    for an unknown reference. `payload` carries the action's data: reason, reply text,
    department ids, extension amount, severity, ...
    """
    if conn is None:
        async with in_transaction() as tx:
            return await act(
                ref, action, actor, profile=profile, clock=clock, payload=payload, conn=tx
            )
    payload = dict(payload or {})
    complaint = await _lock_complaint(conn, ref)
    facts = await case_facts(complaint, actor, profile)
    decision = decide(State(complaint.state), action, actor.role, facts)
    if isinstance(decision, Refusal):
        raise ActionRefused(decision)
    extra = await _apply_effects(complaint, decision, actor, payload, profile, clock, conn)
    complaint.state = decision.to_state
    refresh_next_due(complaint)
    await complaint.save(using_db=conn)
    event = await Event.create(
        complaint=complaint,
        actor_role=actor.role,
        actor_staff=actor.staff,
        action=str(action),
        from_state=decision.from_state,
        to_state=decision.to_state,
        payload={**payload, "effects": list(decision.effects)},
        created_at=clock.now,
        using_db=conn,
    )
    await emit_notifications(complaint, decision, actor, clock, profile, conn, event=event)
    return ActionResult(complaint, decision, event, extra)


async def _apply_effects(
    complaint: Complaint,
    transition: Transition,
    actor: Actor,
    payload: dict[str, Any],
    profile: Profile,
    clock: Clock,
    conn: BaseDBAsyncClient,
) -> dict[str, Any]:
    """Write what the transition's effects mean for the complaint row (not notifications)."""
    effects = set(transition.effects)
    extra: dict[str, Any] = {}
    action = transition.action
    if action == Action.ACCEPT:
        if payload.get("category"):
            profile.category(payload["category"])  # KeyError names an unknown category
            complaint.category = payload["category"]
            complaint.subcategory = payload.get("subcategory")
        if payload.get("severity"):
            if payload["severity"] not in profile.severity_ids():
                raise KeyError(f"profile {profile.id!r} has no severity {payload['severity']!r}")
            complaint.severity = payload["severity"]
    if action in (Action.ASSIGN, Action.TRANSFER) and payload.get("department_id") is not None:
        complaint.lead_department_id = int(payload["department_id"])  # type: ignore[attr-defined]
        complaint.handler_id = payload.get("handler_id")  # type: ignore[attr-defined]
    if action == Action.ADD_CO_HANDLER and payload.get("department_id") is not None:
        from models.entities import Department

        department = await Department.get(id=int(payload["department_id"])).using_db(conn)
        await complaint.co_departments.add(department, using_db=conn)
    if action == Action.HAND_BACK:
        complaint.handler_id = None  # type: ignore[attr-defined]
    if action == Action.RESOLVE:
        complaint.reply_text = payload.get("reply_text")
        complaint.resolved_at = clock.now
    if action == Action.ISSUE_WRITTEN_REPLY:
        complaint.written_reply_at = clock.now
    if action == Action.REQUEST_EXTENSION:
        complaint.extension_pending = {
            "staff_id": actor.staff.id if actor.staff else None,
            "amount": int(payload["amount"]),
            "unit": payload.get("unit") or _extension_unit(profile),
            "reason": payload.get("reason", ""),
            "requested_at": _iso(clock.now),
        }
        _check_extension_amount(profile, complaint.extension_pending)
    if Effect.CANCEL_EXTENSION_REQUEST in effects or action == Action.DENY_EXTENSION:
        extra["extension_request"] = complaint.extension_pending
        complaint.extension_pending = None
    if action == Action.APPROVE_EXTENSION:
        pending = complaint.extension_pending or {}
        extra["extension_request"] = pending
        entry = complaint.deadlines.get("resolution")
        if entry is not None:
            entry["extension"] = {"amount": pending["amount"], "unit": pending["unit"]}
            recompute_stage(profile, complaint, "resolution", clock)
            extra["new_due"] = complaint.deadlines["resolution"]["due"]
        complaint.extensions_used += 1
        complaint.extension_pending = None
    if Effect.PAUSE_CLOCK in effects:
        complaint.paused_at = clock.now
    if Effect.RESUME_CLOCK in effects and complaint.paused_at is not None:
        pause = Pause(complaint.paused_at, clock.now)
        for stage in ACTIVE_STAGES.get(transition.to_state, ()):
            entry = complaint.deadlines.get(stage)
            if entry is not None:
                entry.setdefault("pauses", []).append([_iso(pause.start), _iso(pause.end)])
                recompute_stage(profile, complaint, stage, clock)
        complaint.paused_at = None
    if Effect.COMPUTE_DEADLINES in effects or transition.changes_state:
        for stage in ACTIVE_STAGES.get(transition.from_state, ()):
            if stage not in ACTIVE_STAGES.get(transition.to_state, ()):
                entry = complaint.deadlines.get(stage)
                if entry is not None:
                    entry["done"] = _iso(clock.now)
        if transition.to_state == State.REOPENED:
            complaint.deadlines.pop("resolution", None)
        start_stages(profile, complaint, transition.to_state, clock)
    if transition.to_state == State.CLOSED:
        complaint.closed_at = clock.now
    return extra


def _extension_unit(profile: Profile) -> str:
    if profile.extension is None:
        return "working_days"
    return profile.extension.max.unit


def _check_extension_amount(profile: Profile, pending: dict[str, Any]) -> None:
    if profile.extension is None:
        raise ValueError(f"profile {profile.id!r} provides for no extension")
    limit = profile.extension.max
    if pending["unit"] != limit.unit:
        raise ValueError(f"extension must be counted in {limit.unit}")
    if not 0 < pending["amount"] <= limit.amount:
        raise ValueError(f"an extension may add 1 to {limit.amount} {limit.unit}")


async def complaint_history(complaint: Complaint) -> list[tuple[str, str]]:
    """The state changes among the complaint's events, oldest first, as (from, to) pairs.

    Events that record something without moving the case (notes, identity views, delivery
    failures, a supplement nobody asked for) are not part of the chain `derive_state` checks.
    """
    rows = (
        await Event.filter(complaint=complaint).order_by("id").values_list("from_state", "to_state")
    )
    return [(a, b) for a, b in rows if a is not None and b is not None and a != b]
