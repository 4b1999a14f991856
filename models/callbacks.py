"""Call-back tasks: what the chat would tell a complainant who has no chat becomes desk work.

A complaint recorded on the desk (phone, window, letter, e-mail: `RECORDED_CHANNELS`) belongs to
a complainant without a chat. Wherever a message would be queued for them — a milestone
(models/notifications.py), a progress message, the return-visit survey and its reminder, the
no-response close (scheduler/jobs.py) — `open_callback` writes a `CallbackTask` instead: the
script to read is the very text the chat message would carry, its idempotency key is the one the
outbox row would have had, so a re-run never writes two.

Each open task is mirrored in `Complaint.alarm_state["callbacks"]` ({task id: {start, due}}), so
the scheduler watches it like any stage deadline (models/alarms.py): reminders before its due
instant, escalation up the chain after it, with the profile's `[reminders]`. A task is due
`profile.callbacks.due` after it was opened (default: 1 working day).

The outcome (reached / not reached, and for the survey the two 0–10 scores and the comment) is
entered by `scheduler.callbacks.complete_callback`, which puts a survey answer through the same
`record_survey_answer` the chat's buttons use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tortoise.backends.base.client import BaseDBAsyncClient

from models.confidentiality import Field, can_see
from models.entities import (
    RECORDED_CHANNELS,
    CallbackStatus,
    CallbackTask,
    Complainant,
    Complaint,
    Department,
    Event,
    Staff,
)
from models.staffing import escalation_heads
from models.workflow import Action, Role, State, Transition, decide
from scheduler.deadlines import Duration, compute_due

if TYPE_CHECKING:
    from config.profiles import Profile
    from models.actions import Clock

CALLBACKS = "callbacks"  # the alarm_state key of the open tasks
CALLBACK_STAGE = "callback"  # the stage name its reminders and escalations carry
DEFAULT_DUE = Duration(1, "working_days")
# Task kinds that ask the return-visit survey (their outcome carries the scores).
SURVEY_KINDS = frozenset({"survey", "survey_reminder", "revisit_visit"})
REVISIT_VISIT = "revisit_visit"  # the return visit in person (profile `[revisit] by`)


def is_chatless(person: Complainant | None) -> bool:
    """A complainant recorded on the desk who has not linked a chat since."""
    return person is not None and person.channel in RECORDED_CHANNELS and not person.chat_id


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def callback_due(profile: Profile, clock: Clock) -> datetime:
    spec = getattr(getattr(profile, "callbacks", None), "due", None)
    duration = spec.to_duration() if spec is not None else DEFAULT_DUE
    return compute_due(clock.now, duration, clock.calendar, clock.tz).due


def _watch(complaint: Complaint, task: CallbackTask) -> None:
    state = dict(complaint.alarm_state or {})
    open_tasks = dict(state.get(CALLBACKS) or {})
    entry = {"start": _iso(task.created_at), "due": _iso(task.due_at)}
    if task.assignee_id is not None:  # type: ignore[attr-defined]
        entry["assignee"] = task.assignee_id  # type: ignore[attr-defined]  # reminded first
    open_tasks[str(task.id)] = entry
    state[CALLBACKS] = open_tasks
    complaint.alarm_state = state


def unwatch(complaint: Complaint, task_ids: list[int]) -> None:
    """Stop the scheduler watching these tasks (the caller saves the complaint)."""
    state = dict(complaint.alarm_state or {})
    open_tasks = {
        k: v for k, v in (state.get(CALLBACKS) or {}).items() if k not in {str(i) for i in task_ids}
    }
    if open_tasks:
        state[CALLBACKS] = open_tasks
    else:
        state.pop(CALLBACKS, None)
    complaint.alarm_state = state


async def open_callback(
    complaint: Complaint,
    *,
    kind: str,
    script: str,
    idempotency_key: str,
    profile: Profile,
    clock: Clock,
    conn: BaseDBAsyncClient | None,
    save: bool = True,
    assignee_id: int | None = None,
    due_at: datetime | None = None,
) -> CallbackTask | None:
    """Write the call-back task for a message to a chat-less complainant (or a return visit in
    person, `assignee_id`); None when this key was written before. `save=False` leaves saving
    the complaint's alarm state to the caller (the sweep saves after every step). `due_at`
    defaults to the profile's call-back limit."""
    existing = await CallbackTask.filter(idempotency_key=idempotency_key).using_db(conn).exists()
    if existing:
        return None
    task = await CallbackTask.create(
        idempotency_key=idempotency_key,
        complaint=complaint,
        kind=kind,
        script=script,
        created_at=clock.now,
        due_at=due_at or callback_due(profile, clock),
        assignee_id=assignee_id,
        using_db=conn,
    )
    _watch(complaint, task)
    if save:
        await complaint.save(update_fields=["alarm_state", "next_alarm_at"], using_db=conn)
    return task


async def cancel_callbacks(
    complaint: Complaint,
    *,
    kinds: frozenset[str] | None,
    reason: str,
    now: datetime,
    conn: BaseDBAsyncClient | None,
) -> list[CallbackTask]:
    """Cancel the complaint's open tasks (of `kinds`, or all): the call became moot. The caller
    saves the complaint (its alarm state changed)."""
    query = CallbackTask.filter(complaint_id=complaint.id, status=CallbackStatus.OPEN)
    if kinds is not None:
        query = query.filter(kind__in=sorted(kinds))
    tasks = await query.using_db(conn).order_by("id")
    for task in tasks:
        task.status = CallbackStatus.CANCELLED
        task.done_at = now
        task.note = reason
        await task.save(using_db=conn)
    unwatch(complaint, [t.id for t in tasks])
    return tasks


async def open_survey_task(complaint_id: int, conn: BaseDBAsyncClient | None) -> bool:
    return (
        await CallbackTask.filter(
            complaint_id=complaint_id, status=CallbackStatus.OPEN, kind__in=sorted(SURVEY_KINDS)
        )
        .using_db(conn)
        .exists()
    )


# -- who visits in person ---------------------------------------------------------------------


async def revisit_visitor(
    complaint: Complaint, who: str, conn: BaseDBAsyncClient | None
) -> Staff | None:
    """The person a profile's `[revisit] by` names for this case, if active: the order-taker
    (接单员: whoever recorded the complaint on the desk, else whoever accepted it), or the
    station chief (站长: the head of the top department above the lead department)."""

    if who == "order_taker":
        takers = (
            await Event.filter(
                complaint_id=complaint.id,
                action__in=[str(Action.SUBMIT), str(Action.ACCEPT)],
                actor_staff_id__isnull=False,
            )
            .using_db(conn)
            .order_by("id")
            .values_list("actor_staff_id", flat=True)
        )
        active = {s.id: s for s in await Staff.filter(id__in=takers, active=True).using_db(conn)}
        return next((active[i] for i in takers if i in active), None)
    lead = complaint.lead_department_id  # type: ignore[attr-defined]
    heads = await escalation_heads(lead, conn) if lead is not None else []
    return heads[-1] if heads else None


# -- who may record, who may call -------------------------------------------------------------


def may_record(staff: Staff) -> bool:
    """Staff who may record a complaint for someone (the rule book's submit by staff)."""
    return staff.active and isinstance(
        decide(State.DRAFT, Action.SUBMIT, Role(staff.role)), Transition
    )


async def may_call_back(
    staff: Staff, complaint: Complaint, conn: BaseDBAsyncClient | None = None
) -> bool:
    """Whoever may see the complainant's phone number on this case may call them back (the
    chat's masking rule, models.confidentiality.can_see): never the person complained about."""
    from models.notifications import co_department_ids, relation_for  # notifications → us

    if not staff.active:
        return False
    own = (
        await Department.filter(id=staff.department_id).using_db(conn).first()  # type: ignore[attr-defined]
        if staff.department_id  # type: ignore[attr-defined]
        else None
    )
    co_ids = await co_department_ids(complaint, conn)
    relation = relation_for(staff, complaint, co_ids, own.name if own else None)
    return can_see(Field.COMPLAINANT_PHONE, Role(staff.role), relation)


# -- the list ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallbackRow:
    task: CallbackTask
    complaint: Complaint
    overdue: bool


async def callback_list(
    staff: Staff,
    now: datetime,
    *,
    status: CallbackStatus = CallbackStatus.OPEN,
    limit: int = 200,
    conn: BaseDBAsyncClient | None = None,
) -> list[CallbackRow]:
    """The call-back tasks `staff` may make, earliest due first (done ones: latest first)."""
    query = CallbackTask.filter(status=status).using_db(conn)
    if status == CallbackStatus.OPEN:
        query = query.order_by("due_at", "id")
    else:
        query = query.order_by("-done_at", "-id")
    rows: list[CallbackRow] = []
    # Scan in pages: tasks of cases the staff member may not call are skipped.
    offset, page = 0, 200
    while len(rows) < limit:
        tasks = await query.offset(offset).limit(page)
        if not tasks:
            break
        offset += page
        ids = sorted({t.complaint_id for t in tasks})  # type: ignore[attr-defined]
        complaints = {c.id: c for c in await Complaint.filter(id__in=ids).using_db(conn)}
        for task in tasks:
            complaint = complaints[task.complaint_id]  # type: ignore[attr-defined]
            if await may_call_back(staff, complaint, conn):
                rows.append(CallbackRow(task, complaint, task.due_at < now))
            if len(rows) >= limit:
                break
    return rows
