"""The deadline sweep: reminders, escalations and the return-visit steps, from the database.

The decisions are pure (`next_step`, `build_rungs`, `models.alarms`); the shell around them
reads due rows only (`next_alarm_at <= now`, an index range scan), one complaint per
transaction, locked with `FOR UPDATE SKIP LOCKED` on PostgreSQL so any number of sweepers can
run side by side without waiting for or repeating each other. It writes outbox rows (with
deterministic idempotency keys) and events, and changes state only through
`models.actions.act` as the system actor. It never calls a platform.

Besides the staff deadlines it sends a major complaint's manager notice (to the department
heads up the lead department's chain — the root departments' heads while none leads it — and the
supervisors) and the complainant's periodic progress messages (`models.alarms`).

Catch-up: after downtime every alarm that fell due is handled once — of several reminder points
for the same deadline only the latest is sent, every escalation level that fell due is sent
(each to different people), a survey that should have been sent and already timed out is
sent and closed in the same sweep, and of several progress periods that passed only the latest
is told.

`prune_processed_updates` is a daily maintenance job: it forgets old platform update ids.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from config.profiles import Profile
from handlers import survey as survey_dialog
from handlers.messages import Outgoing
from models.actions import ActionRefused, Actor, Clock, act, recompute_stage, refresh_next_due
from models.alarms import (
    MANAGER_NOTICE,
    PROGRESS,
    SUPERVISOR_REVISIT,
    SURVEY,
    Alarm,
    AlarmContext,
    AlarmKind,
    CaseView,
    alarm_context,
    iso,
    parse,
    pending_alarms,
    progress_point,
    refresh_alarm,
    statement_watch,
    watches,
)
from models.callbacks import (
    CALLBACK_STAGE,
    CALLBACKS,
    REVISIT_VISIT,
    SURVEY_KINDS,
    cancel_callbacks,
    is_chatless,
    open_callback,
    open_survey_task,
    revisit_visitor,
)
from models.entities import (
    Channel,
    Complainant,
    Complaint,
    Department,
    Event,
    OutboxMessage,
    OutboxStatus,
    ProcessedUpdate,
    Staff,
    SurveyResponse,
    log_created_event,
)
from models.outbox import DELIVERY_FAILED, enqueue, outgoing_to_json
from models.workflow import OPEN_STATES, Action, Role
from scheduler.deadlines import notify_at
from scheduler.texts import lang_of, show_due, show_time, stage_name, text

log = logging.getLogger(__name__)

# Enough for every escalation level plus the survey steps; a guard against a planning bug.
MAX_STEPS_PER_COMPLAINT = 64
CLOSING_GRACE = timedelta(minutes=1)
# Platforms re-deliver an update for at most a day (Telegram) or seconds (WeChat); a week of
# update ids is ample to recognise any re-delivery.
PROCESSED_UPDATE_RETENTION = timedelta(days=7)
SENT_OUTBOX_RETENTION = timedelta(days=30)
# Catch-up walks at most this many missed progress periods before telling the latest.
MAX_PROGRESS_PERIODS = 1000


# -- pure decisions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    fire: Alarm
    superseded: tuple[Alarm, ...] = ()  # marked done without a message (catch-up)


_ORDER = {
    AlarmKind.NO_RESPONSE_CLOSE: 0,
    AlarmKind.SEND_SURVEY: 1,
    AlarmKind.SURVEY_REMINDER: 2,
    AlarmKind.NOTIFY_MANAGER: 3,
    AlarmKind.ESCALATE: 4,
    AlarmKind.REMIND: 5,
    AlarmKind.PROGRESS: 6,
    # The statement's lapse after its reminders' (a lapse makes them moot: see next_step).
    AlarmKind.LAPSE_STATEMENT: 3,
    AlarmKind.REMIND_RESPONDENT: 5,
}
_REMINDERS = (AlarmKind.REMIND, AlarmKind.REMIND_RESPONDENT)


def next_step(due: Sequence[Alarm]) -> Step | None:
    """Which of the due alarms to handle next.

    The survey steps first (closing makes a pending survey reminder moot), then the manager
    notice (sending it ends its watch, so its escalation is moot), then escalations (an
    escalation makes the reminders of its deadline moot), then reminders: of several reminder
    points of one deadline that all fell due, only the latest is sent. Progress messages last.
    """
    if not due:
        return None
    first = min(due, key=lambda a: (_ORDER[a.kind], a.at, a.level))
    if first.kind == AlarmKind.NO_RESPONSE_CLOSE:
        moot = tuple(a for a in due if a.kind == AlarmKind.SURVEY_REMINDER)
        return Step(first, moot)
    if first.kind == AlarmKind.LAPSE_STATEMENT:
        moot = tuple(a for a in due if a.kind == AlarmKind.REMIND_RESPONDENT)
        return Step(first, moot)
    if first.kind in _REMINDERS:
        same = sorted(a for a in due if a.kind == first.kind and a.slot == first.slot)
        return Step(same[-1], tuple(same[:-1]))
    return Step(first)


def build_rungs(
    responsible: Sequence[int],
    chain_heads: Sequence[int],
    supervisors: Sequence[int],
    admins: Sequence[int] = (),
) -> list[list[int]]:
    """The escalation ladder as staff ids: rung 0 is whoever is responsible now; each further
    rung is the next head up the department chain, then the supervisors, then the admins (an
    escalation must reach someone other than the people it is about: when the only head is the
    respondent, or no one holds a role, it goes on up). Nobody is on two rungs, and empty rungs
    are dropped."""
    rungs: list[list[int]] = [list(dict.fromkeys(responsible))]
    seen = set(rungs[0])
    for head in chain_heads:
        if head not in seen:
            rungs.append([head])
            seen.add(head)
    for group in (supervisors, admins):
        rest = [s for s in dict.fromkeys(group) if s not in seen]
        if rest:
            rungs.append(rest)
            seen.update(rest)
    return rungs


def staff_address(staff: Staff) -> tuple[Channel, str] | None:
    if staff.telegram_chat_id:
        return Channel.TELEGRAM, staff.telegram_chat_id
    if staff.wechat_openid:
        return Channel.WECHAT, staff.wechat_openid
    return None


def complainant_address(person: Complainant | None) -> tuple[Channel, str] | None:
    if person is None or person.unsubscribed or not person.chat_id:
        return None
    return Channel(person.channel), person.chat_id


# -- the shell ---------------------------------------------------------------------------


@dataclass
class SweepReport:
    complaints: int = 0
    reminders: int = 0
    escalations: int = 0
    surveys_sent: int = 0
    survey_reminders: int = 0
    closed_no_response: int = 0
    manager_notices: int = 0
    progress_messages: int = 0
    outbox_rows: int = 0
    failed: list[int] = field(default_factory=list)

    def add(self, other: SweepReport) -> None:
        for name in (
            "complaints",
            "reminders",
            "escalations",
            "surveys_sent",
            "survey_reminders",
            "closed_no_response",
            "manager_notices",
            "progress_messages",
            "outbox_rows",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed.extend(other.failed)


@dataclass(frozen=True)
class Directory:
    """Staff and departments as the escalation sees them, read once per batch of complaints
    (two queries) instead of a dozen queries per complaint."""

    staff: Mapping[int, Staff]  # every staff row, active or not, by id
    parents: Mapping[int, int | None]  # department id -> parent department id
    roots: tuple[int, ...]  # departments without a parent, by id
    heads: Mapping[int, int]  # department id -> its active head (the lowest id)
    by_role: Mapping[Role, tuple[int, ...]]  # active staff ids per role, by id

    @classmethod
    async def load(cls, conn: BaseDBAsyncClient) -> Directory:
        staff = await Staff.all().using_db(conn).order_by("id")
        departments = (
            await Department.all().using_db(conn).order_by("id").values_list("id", "parent_id")
        )
        return cls.of(staff, departments)

    @classmethod
    def of(cls, staff: Iterable[Staff], departments: Iterable[tuple[int, int | None]]) -> Directory:
        people = sorted(staff, key=lambda s: s.id)
        parents = dict(departments)
        heads: dict[int, int] = {}
        by_role: dict[Role, list[int]] = {}
        for person in people:
            if not person.active:
                continue
            role = Role(person.role)
            by_role.setdefault(role, []).append(person.id)
            department = person.department_id  # type: ignore[attr-defined]
            if role == Role.DEPARTMENT_HEAD and department is not None:
                heads.setdefault(department, person.id)
        return cls(
            staff={p.id: p for p in people},
            parents=parents,
            roots=tuple(sorted(d for d, parent in parents.items() if parent is None)),
            heads=heads,
            by_role={role: tuple(ids) for role, ids in by_role.items()},
        )

    def active(self, role: Role) -> list[int]:
        return list(self.by_role.get(role, ()))

    def people(self, ids: Sequence[int]) -> list[Staff]:
        """The staff rows of `ids` (active or not), in that order."""
        return [self.staff[i] for i in ids if i in self.staff]

    def chain_heads(self, department_id: int) -> list[int]:
        """The active heads up the department chain, nearest first (models.staffing's
        `escalation_heads`)."""
        found: list[int] = []
        seen: set[int] = set()
        current: int | None = department_id
        while current is not None and current in self.parents and current not in seen:
            seen.add(current)
            if current in self.heads:
                found.append(self.heads[current])
            current = self.parents[current]
        return found

    def active_staff(self, staff_id: int) -> Staff | None:
        person = self.staff.get(staff_id)
        return person if person is not None and person.active else None


class _NeedsShell(Exception):
    """A step the batch cannot plan in memory (it runs a workflow action or opens a call-back
    task): the complaint is handled on its own, in a transaction of its own."""


@dataclass(frozen=True, slots=True)
class _OutboxRow:
    """An outbox row to write (plain: building ORM objects cost a fifth of a batch's time)."""

    idempotency_key: str
    channel: Channel
    chat_id: str
    payload: dict[str, Any]
    next_attempt_at: datetime
    complaint_id: int

    def model(self) -> OutboxMessage:
        return OutboxMessage(
            idempotency_key=self.idempotency_key,
            channel=self.channel,
            chat_id=self.chat_id,
            payload=self.payload,
            next_attempt_at=self.next_attempt_at,
            complaint_id=self.complaint_id,
        )


@dataclass(frozen=True)
class _EventRow:
    """A system event to write; `_complaint` lets the event log line name the complaint."""

    _complaint: Complaint
    action: str
    from_state: str
    to_state: str
    payload: dict[str, Any]
    created_at: datetime
    actor_role: Role = Role.SYSTEM

    @property
    def complaint_id(self) -> int:
        return self._complaint.id

    def model(self) -> Event:
        return Event(
            complaint=self._complaint,
            actor_role=self.actor_role,
            action=self.action,
            from_state=self.from_state,
            to_state=self.to_state,
            payload=self.payload,
            created_at=self.created_at,
        )


@dataclass
class _Writes:
    """What handling complaints in a batch writes, collected to be written in bulk."""

    outbox: list[_OutboxRow] = field(default_factory=list)
    events: list[_EventRow] = field(default_factory=list)

    def extend(self, other: _Writes) -> None:
        self.outbox.extend(other.outbox)
        self.events.extend(other.events)


@dataclass
class _Run:
    """One complaint's processing: inside its own transaction (`writes` None: every write goes
    to the database at once), or planned in memory for a batch (`writes` collects them)."""

    complaint: Complaint
    profile: Profile
    context: AlarmContext
    now: datetime
    conn: BaseDBAsyncClient
    report: SweepReport
    directory: Directory
    writes: _Writes | None = None
    complainants: Mapping[int, Complainant] | None = None
    _deliver_at: datetime | None = None

    @property
    def clock(self) -> Clock:
        return Clock(self.context.calendar, self.context.tz, self.now)

    def deliver_at(self) -> datetime:
        """Messages written at night wait for office hours (unless on 24-hour duty). One
        written at closing time itself (a reminder counted back from the close) goes now."""
        if self._deliver_at is None:
            opening = notify_at(
                self.now - CLOSING_GRACE,
                self.profile.office_hours.to_office_hours(),
                self.profile.duty_24h,
                self.context.calendar,
                self.context.tz,
            )
            self._deliver_at = self.now if opening <= self.now else opening
        return self._deliver_at

    async def send(
        self, address: tuple[Channel, str] | None, message: Outgoing, key: str, at: datetime
    ) -> bool:
        if address is None:
            return False
        if self.writes is not None:  # counted once written (a key queued before is skipped)
            self.writes.outbox.append(
                _OutboxRow(
                    key,
                    Channel(address[0]),
                    address[1],
                    outgoing_to_json(message),
                    at,
                    self.complaint.id,
                )
            )
            return True
        row = await enqueue(
            channel=address[0],
            chat_id=address[1],
            message=message,
            idempotency_key=key,
            now=at,
            complaint=self.complaint,
            conn=self.conn,
        )
        if row is not None:
            self.report.outbox_rows += 1
        return row is not None

    async def tell(
        self, person: Complainant | None, message: Outgoing, key: str, kind: str, script: str
    ) -> bool:
        """A message to the complainant: to their chat, or, for one recorded on the desk, a
        call-back task with `script` to read (the alarm state is saved with the step)."""
        if is_chatless(person):
            if self.writes is not None:
                raise _NeedsShell(kind)
            task = await open_callback(
                self.complaint,
                kind=kind,
                script=script,
                idempotency_key=key,
                profile=self.profile,
                clock=self.clock,
                conn=self.conn,
                save=False,
            )
            return task is not None
        return await self.send(complainant_address(person), message, key, self.deliver_at())

    async def complainant(self) -> Complainant | None:
        complainant_id = self.complaint.complainant_id  # type: ignore[attr-defined]
        if self.complainants is not None:
            return self.complainants.get(complainant_id) if complainant_id else None
        return await Complainant.filter(id=complainant_id).using_db(self.conn).first()

    async def event(self, action: str, payload: dict[str, Any]) -> None:
        state = str(self.complaint.state)
        if self.writes is not None:
            self.writes.events.append(
                _EventRow(self.complaint, action, state, state, payload, self.now)
            )
            return
        fields: dict[str, Any] = {
            "complaint": self.complaint,
            "actor_role": Role.SYSTEM,
            "action": action,
            "from_state": state,
            "to_state": state,
            "payload": payload,
            "created_at": self.now,
        }
        await Event.create(**fields, using_db=self.conn)

    def slot(self, key: str) -> dict[str, Any]:
        state = dict(self.complaint.alarm_state or {})
        value = dict(state.get(key) or {})
        state[key] = value
        self.complaint.alarm_state = state
        return value

    async def store(self) -> None:
        """After a step: saved and read back; in a batch the save hook's planning is all that
        matters, and it runs once at the end (`_plan_batch`)."""
        if self.writes is not None:
            return
        await self.complaint.save(using_db=self.conn)
        await self.reload()

    async def reload(self) -> None:
        if self.writes is not None:
            raise _NeedsShell("reload")
        self.complaint = await Complaint.get(id=self.complaint.id).using_db(self.conn)


def escalation_rungs(
    complaint: Complaint, stage: str, directory: Directory, slot: str = ""
) -> list[list[int]]:
    """Rungs of staff ids for a deadline of `complaint` (see `build_rungs`); `slot` names the
    call-back task of a callback alarm ("callback#<task id>@…"), whose assignee comes first."""
    supervisors = directory.active(Role.SUPERVISOR)
    if stage == SUPERVISOR_REVISIT:
        return build_rungs(supervisors, [], directory.active(Role.ADMIN))
    lead = complaint.lead_department_id  # type: ignore[attr-defined]
    heads = directory.chain_heads(lead) if lead else []
    assignee = _callback_assignee(complaint, slot) if stage == CALLBACK_STAGE else None
    if assignee is not None and directory.active_staff(assignee) is not None:
        return build_rungs([assignee], heads, supervisors, directory.active(Role.ADMIN))
    if complaint.handler_id is not None:  # type: ignore[attr-defined]
        handler = directory.active_staff(complaint.handler_id)  # type: ignore[attr-defined]
        responsible = [handler.id] if handler else heads[:1]
    elif heads:
        responsible = heads[:1]
    else:
        responsible = directory.active(Role.INTAKE_CLERK)
    return build_rungs(responsible, heads, supervisors, directory.active(Role.ADMIN))


def _callback_assignee(complaint: Complaint, slot: str) -> int | None:
    task_ref = slot.partition("#")[2].partition("@")[0]
    entry = ((complaint.alarm_state or {}).get(CALLBACKS) or {}).get(task_ref) or {}
    assignee = entry.get("assignee") if isinstance(entry, dict) else None
    return assignee if isinstance(assignee, int) else None


def _mark_reminded(run: _Run, step: Step) -> None:
    """The reminder points this step covers (its own and those it superseded) as done."""
    slot = run.slot(step.fire.slot)
    done = set(slot.get("reminded", ()))
    done.update(iso(a.at) for a in (step.fire, *step.superseded))
    slot["reminded"] = sorted(done)


async def _reminder_sent(run: _Run, step: Step, staff_ids: list[int]) -> None:
    alarm = step.fire
    assert alarm.due is not None
    run.report.reminders += 1
    await run.event(
        "reminder_sent",
        {
            "stage": alarm.stage,
            "due": iso(alarm.due),
            "point": iso(alarm.at),
            "skipped": [iso(a.at) for a in step.superseded],
            "staff_ids": staff_ids,
        },
    )


async def _remind(run: _Run, step: Step) -> None:
    alarm = step.fire
    _mark_reminded(run, step)
    rungs = escalation_rungs(run.complaint, alarm.stage, run.directory, alarm.slot)
    people = run.directory.people(rungs[0])
    assert alarm.due is not None
    for person in people:
        lang = lang_of(person.language)
        message = Outgoing(
            text(
                "remind",
                lang,
                number=run.complaint.number,
                stage=stage_name(alarm.stage, lang),
                due=show_time(alarm.due, run.context.tz, lang),
            )
        )
        key = f"remind:{run.complaint.id}:{alarm.stage}:{iso(alarm.at)}:{person.id}"
        await run.send(staff_address(person), message, key, run.deliver_at())
    await _reminder_sent(run, step, [p.id for p in people])


async def _remind_respondent(run: _Run, step: Step) -> None:
    """The respondent is reminded of their statement's date; one named in free text has no
    chat, so the handler who records it for them is reminded instead."""
    alarm = step.fire
    _mark_reminded(run, step)
    entry = run.complaint.statement or {}
    respondent_id = entry.get("respondent_staff_id")
    handler_id = run.complaint.handler_id  # type: ignore[attr-defined]
    person_id = respondent_id if respondent_id is not None else handler_id
    person = run.directory.active_staff(int(person_id)) if person_id is not None else None
    assert alarm.due is not None
    if person is not None:
        lang = lang_of(person.language)
        key = "statement_remind" if respondent_id is not None else "statement_remind_on_behalf"
        message = Outgoing(
            text(
                key,
                lang,
                number=run.complaint.number,
                respondent=entry.get("respondent") or "",
                due=show_time(alarm.due, run.context.tz, lang),
            )
        )
        address = staff_address(person)
        await run.send(
            address,
            message,
            f"statement-remind:{run.complaint.id}:{iso(alarm.at)}:{person.id}",
            run.deliver_at(),
        )
    await _reminder_sent(run, step, [person.id] if person is not None else [])


async def _lapse_statement(run: _Run) -> None:
    """The period ended unanswered: the waiver goes on record (an event, never silent)."""
    if run.writes is not None:
        raise _NeedsShell("lapse_statement")
    result = await act(
        run.complaint.id,
        Action.WAIVE_STATEMENT,
        Actor(Role.SYSTEM),
        profile=run.profile,
        clock=run.clock,
        payload={"cause": "lapsed"},
        conn=run.conn,
    )
    run.complaint = result.complaint


async def _escalate(run: _Run, alarm: Alarm) -> None:
    rungs = escalation_rungs(run.complaint, alarm.stage, run.directory, alarm.slot)
    slot = run.slot(alarm.slot)
    slot["escalated"] = alarm.level
    if alarm.level + 1 >= len(rungs):
        slot["exhausted"] = True  # nobody further up: no more levels
    assert alarm.due is not None
    notified: list[int] = []
    responsible = run.directory.people(rungs[0]) if rungs else []
    if alarm.level < len(rungs):
        who = "、".join(p.name for p in responsible)
        for person in run.directory.people(rungs[alarm.level]):
            lang = lang_of(person.language)
            message = Outgoing(
                text(
                    "escalate",
                    lang,
                    level=alarm.level,
                    number=run.complaint.number,
                    stage=stage_name(alarm.stage, lang),
                    due=show_time(alarm.due, run.context.tz, lang),
                    who=who or text("nobody", lang),
                )
            )
            key = (
                f"escalate:{run.complaint.id}:{alarm.stage}:{iso(alarm.due)}:"
                f"{alarm.level}:{person.id}"
            )
            await run.send(staff_address(person), message, key, run.deliver_at())
            notified.append(person.id)
    # The responsible people hear that it is now overdue, even when nobody further up can be
    # told (the escalation is then marked unheard below).
    if alarm.level == 1:
        for person in responsible:
            lang = lang_of(person.language)
            message = Outgoing(
                text(
                    "overdue",
                    lang,
                    number=run.complaint.number,
                    stage=stage_name(alarm.stage, lang),
                    due=show_time(alarm.due, run.context.tz, lang),
                    level=alarm.level,
                )
            )
            key = f"overdue:{run.complaint.id}:{alarm.stage}:{iso(alarm.due)}:{person.id}"
            await run.send(staff_address(person), message, key, run.deliver_at())
    run.report.escalations += 1
    if not notified:
        # Truly nobody to tell: never recorded as done with no one told. The slot and the event
        # say so, for the case card and the reports.
        slot["unheard"] = True
    await run.event(
        "escalated",
        {
            "stage": alarm.stage,
            "due": iso(alarm.due),
            "level": alarm.level,
            "staff_ids": notified,
            "exhausted": bool(slot.get("exhausted")),
            "unheard": not notified,
        },
    )


async def _send_survey(run: _Run) -> None:
    if run.writes is not None:
        raise _NeedsShell("send_survey")
    reply_instant = run.complaint.deadlines["revisit"]["start"]
    result = await act(
        run.complaint.id,
        Action.START_REVISIT,
        Actor(Role.SYSTEM),
        profile=run.profile,
        clock=run.clock,
        conn=run.conn,
    )
    run.complaint = result.complaint
    person = await Complainant.filter(id=run.complaint.complainant_id).using_db(run.conn).first()  # type: ignore[attr-defined]
    lang = lang_of(person.language if person else None)
    message = survey_dialog.survey_invitation(run.complaint.id, run.complaint.number, lang)
    script = survey_dialog.survey_call_script(message, lang)
    visited = await _open_revisit_visit(run, script, reply_instant)
    # A complainant without a chat is asked in that visit, not in a second call.
    sent = visited and is_chatless(person)
    if not sent:
        sent = await run.tell(
            person, message, f"survey:{run.complaint.id}:{reply_instant}", "survey", script
        )
    slot = run.slot(SURVEY)
    reachable = complainant_address(person) is not None or is_chatless(person)
    slot.update({"started": iso(run.now), "reachable": reachable})
    run.report.surveys_sent += 1
    if not sent:
        log.info("complaint %s: survey started, complainant unreachable", run.complaint.number)


async def _open_revisit_visit(run: _Run, script: str, reply_instant: str) -> bool:
    """The return visit in person the profile names for this case's rating (`[revisit] by`:
    R7g 接单员 for minor, 站长 for major): a call-back task assigned to that person, due when
    the revisit stage is, and a message telling them. False when the profile names no one.
    Nobody to name (no active order-taker or station chief) leaves the task to whoever may
    call back, and says so on the event."""
    assert run.profile.revisit is not None
    who = run.profile.revisit.visitor_for(run.complaint.severity)
    if who is None:
        return False
    visitor = await revisit_visitor(run.complaint, who, run.conn)
    entry = run.complaint.deadlines.get("revisit") or {}
    due = parse(entry["due"]) if entry.get("due") else None
    task = await open_callback(
        run.complaint,
        kind=REVISIT_VISIT,
        script=script,
        idempotency_key=f"revisit-visit:{run.complaint.id}:{reply_instant}",
        profile=run.profile,
        clock=run.clock,
        conn=run.conn,
        save=False,
        assignee_id=visitor.id if visitor else None,
        due_at=due if due is not None and due > run.now else None,
    )
    if task is None:
        return True  # written before (a re-run)
    if visitor is not None:
        lang = lang_of(visitor.language)
        notice = Outgoing(
            text(
                "revisit_visit",
                lang,
                who=text(who, lang),
                number=run.complaint.number,
                due=show_time(task.due_at, run.context.tz, lang),
            )
        )
        key = f"revisit-visit:{run.complaint.id}:{reply_instant}:{visitor.id}"
        await run.send(staff_address(visitor), notice, key, run.deliver_at())
    await run.event(
        "revisit_visit_opened",
        {"who": who, "staff_id": visitor.id if visitor else None, "task_id": task.id},
    )
    return True


async def _survey_reminder(run: _Run) -> None:
    if run.writes is not None:
        raise _NeedsShell("survey_reminder")
    started = run.complaint.deadlines["survey_reminder"]["start"]
    person = await Complainant.filter(id=run.complaint.complainant_id).using_db(run.conn).first()  # type: ignore[attr-defined]
    lang = lang_of(person.language if person else None)
    message = survey_dialog.survey_reminder(run.complaint.id, run.complaint.number, lang)
    # A survey call still to make is the reminder's business already: no second task.
    if not (is_chatless(person) and await open_survey_task(run.complaint.id, run.conn)):
        await run.tell(
            person,
            message,
            f"survey-remind:{run.complaint.id}:{started}",
            "survey_reminder",
            survey_dialog.survey_call_script(message, lang),
        )
    run.slot(SURVEY)["reminded"] = True
    run.report.survey_reminders += 1
    await run.event("survey_reminded", {"started": started})


async def _close_no_response(run: _Run, step: Step) -> None:
    if run.writes is not None:
        raise _NeedsShell("no_response_close")
    complaint = run.complaint
    started = complaint.deadlines["auto_close"]["start"]
    await SurveyResponse.create(
        complaint=complaint,
        handler_id=complaint.handler_id,  # type: ignore[attr-defined]
        department_id=complaint.lead_department_id,  # type: ignore[attr-defined]
        no_response=True,
        created_at=run.now,
        using_db=run.conn,
    )
    slot = run.slot(SURVEY)
    slot.update({"answered": True, "no_response": True})
    # The survey calls not made are moot now.
    await cancel_callbacks(
        complaint, kinds=SURVEY_KINDS, reason="no_response", now=run.now, conn=run.conn
    )
    await complaint.save(using_db=run.conn)
    payload = {"reason": "no_response"}
    try:
        result = await act(
            complaint.id,
            Action.CLOSE,
            Actor(Role.SYSTEM),
            profile=run.profile,
            clock=run.clock,
            payload=payload,
            conn=run.conn,
        )
    except ActionRefused as refused:
        # A written complaint waits for its written reply; issuing it closes the case.
        await hold_close(run.complaint, refused, payload, run.now, run.conn)
        await run.reload()
        run.report.closed_no_response += 1
        return
    run.complaint = result.complaint
    person = await Complainant.filter(id=complaint.complainant_id).using_db(run.conn).first()  # type: ignore[attr-defined]
    lang = lang_of(person.language if person else None)
    message = Outgoing(text("closed_no_response", lang, number=complaint.number))
    await run.tell(
        person,
        message,
        f"closed-no-response:{complaint.id}:{started}",
        "closed_no_response",
        message.text,
    )
    run.report.closed_no_response += 1


CLOSE_HELD = "close_held"  # survey slot: the close the survey decided, awaiting a written reply


async def hold_close(
    complaint: Complaint,
    refused: ActionRefused,
    payload: dict[str, Any],
    now: datetime,
    conn: BaseDBAsyncClient,
) -> None:
    """The close was refused for a missing written reply: remember it (the survey's answer
    stands) so that issuing the reply closes the case; any other refusal is a bug, re-raised."""
    from models.workflow import RefusalReason

    if refused.refusal.reason_code != RefusalReason.WRITTEN_REPLY_MISSING:
        raise refused
    fresh = await Complaint.get(id=complaint.id).using_db(conn)
    state = dict(fresh.alarm_state or {})
    survey = dict(state.get(SURVEY) or {})
    survey[CLOSE_HELD] = payload
    state[SURVEY] = survey
    fresh.alarm_state = state
    await fresh.save(using_db=conn)
    await Event.create(
        complaint=fresh,
        actor_role=Role.SYSTEM,
        action="close_awaits_written_reply",
        from_state=fresh.state,
        to_state=fresh.state,
        payload=payload,
        created_at=now,
        using_db=conn,
    )


def manager_recipients(complaint: Complaint, directory: Directory) -> list[Staff]:
    """Whom a major complaint's manager notice goes to: the heads up the lead department's
    chain (while no department leads the case: the root departments' heads, the managers of
    the whole desk) and the supervisors; the admins when nobody else is there."""
    lead = complaint.lead_department_id  # type: ignore[attr-defined]
    if lead:
        heads = directory.chain_heads(lead)
    else:
        heads = [directory.heads[root] for root in directory.roots if root in directory.heads]
    ids = heads + directory.active(Role.SUPERVISOR)
    if not ids:
        ids = directory.active(Role.ADMIN)
    return directory.people(list(dict.fromkeys(ids)))


def _resolution_due(complaint: Complaint) -> tuple[datetime | None, bool]:
    entry = (complaint.deadlines or {}).get("resolution")
    if not isinstance(entry, dict) or entry.get("done") or "due" not in entry:
        return None, False
    return parse(entry["due"]), bool(entry.get("provisional"))


async def _notify_manager(run: _Run, alarm: Alarm) -> None:
    """Tell the managers of a major complaint; the stage is done once anyone could be told."""
    complaint = run.complaint
    assert alarm.due is not None
    slot = run.slot(alarm.slot)
    slot["attempted"] = iso(run.now)
    solution_due, provisional = _resolution_due(complaint)
    told: list[int] = []
    for person in manager_recipients(complaint, run.directory):
        address = staff_address(person)
        if address is None:
            continue
        lang = lang_of(person.language)
        label = None
        if complaint.category:
            try:
                label = run.profile.label("category", complaint.category, lang)
            except KeyError:
                label = complaint.category
        solution = (
            text(
                "solution_due",
                lang,
                due=show_due(solution_due, lang, run.context.tz, provisional),
            )
            if solution_due is not None
            else ""
        )
        message = Outgoing(
            text(
                "manager_notice",
                lang,
                number=complaint.number,
                category=text("manager_notice_category", lang, label=label) if label else "",
                solution=solution,
            )
        )
        key = f"manager-notice:{complaint.id}:{iso(alarm.due)}:{person.id}"
        await run.send(address, message, key, run.deliver_at())
        told.append(person.id)
    if told:
        deadlines = dict(complaint.deadlines)
        deadlines[MANAGER_NOTICE] = {**deadlines[MANAGER_NOTICE], "done": iso(run.now)}
        complaint.deadlines = deadlines
        run.report.manager_notices += 1
    else:
        log.warning("complaint %s: no manager could be told; escalating", complaint.number)
    await run.event(
        "manager_notified" if told else "manager_notice_failed",
        {
            "stage": MANAGER_NOTICE,
            "due": iso(alarm.due),
            "staff_ids": told,
            "late": run.now > alarm.due,
        },
    )


def latest_progress_point(alarm: Alarm, run: _Run) -> tuple[datetime, int]:
    """The latest progress period begun by `run.now` (and before the deadline), and how many
    earlier ones a catch-up passes over untold."""
    point, skipped = alarm.at, 0
    calendar, tz = run.context.calendar, run.context.tz
    assert alarm.due is not None
    for _ in range(MAX_PROGRESS_PERIODS):
        following = progress_point(point, run.profile, calendar, tz)
        if following > run.now or following >= alarm.due:
            break
        point, skipped = following, skipped + 1
    return point, skipped


async def _progress(run: _Run, alarm: Alarm) -> None:
    """The periodic "still being handled, due on …" message to the complainant."""
    complaint = run.complaint
    point, skipped = latest_progress_point(alarm, run)
    run.slot(PROGRESS).update(
        {"anchor": complaint.deadlines["resolution"]["start"], "last": iso(point)}
    )
    due, provisional = _resolution_due(complaint)
    assert due is not None
    person = await run.complainant()
    lang = lang_of(person.language if person else None)
    template = "progress_overdue" if due < run.now else "progress"
    message = Outgoing(
        text(
            template,
            lang,
            number=complaint.number,
            due=show_due(due, lang, run.context.tz, provisional),
        )
    )
    address = complainant_address(person)
    await run.tell(
        person, message, f"progress:{complaint.id}:{iso(point)}", "progress", message.text
    )
    run.report.progress_messages += 1
    await run.event(
        "progress_sent",
        {
            "period": iso(point),
            "due": iso(due),
            "skipped": skipped,
            "reachable": address is not None or is_chatless(person),
        },
    )


async def _fire(run: _Run, step: Step) -> None:
    kind = step.fire.kind
    if kind == AlarmKind.REMIND:
        await _remind(run, step)
    elif kind == AlarmKind.ESCALATE:
        await _escalate(run, step.fire)
    elif kind == AlarmKind.SEND_SURVEY:
        await _send_survey(run)
    elif kind == AlarmKind.SURVEY_REMINDER:
        await _survey_reminder(run)
    elif kind == AlarmKind.NO_RESPONSE_CLOSE:
        await _close_no_response(run, step)
    elif kind == AlarmKind.NOTIFY_MANAGER:
        await _notify_manager(run, step.fire)
    elif kind == AlarmKind.PROGRESS:
        await _progress(run, step.fire)
    elif kind == AlarmKind.REMIND_RESPONDENT:
        await _remind_respondent(run, step)
    elif kind == AlarmKind.LAPSE_STATEMENT:
        await _lapse_statement(run)


def _prune(complaint: Complaint, keep: set[str]) -> None:
    """Forget the progress of deadlines that no longer run (keeps the JSON small)."""
    state = complaint.alarm_state or {}
    complaint.alarm_state = {
        k: v
        for k, v in state.items()
        if k in keep or k in (SURVEY, SUPERVISOR_REVISIT, PROGRESS, CALLBACKS)
    }


async def _handle(run: _Run) -> None:
    """Every alarm of the run's complaint that is due at `run.now`, in `next_step` order."""
    context = run.context
    for _ in range(MAX_STEPS_PER_COMPLAINT):
        view = CaseView.of(run.complaint)
        alarms = pending_alarms(view, run.profile, context.calendar, context.tz)
        step = next_step([a for a in alarms if a.at <= run.now])
        if step is None:
            break
        await _fire(run, step)
        await run.store()
    else:
        log.error("complaint %s: alarms still due after many steps", run.complaint.number)
    view = CaseView.of(run.complaint)
    running = watches(view, context.calendar, context.tz)
    statement = statement_watch(view)
    _prune(run.complaint, {w.key for w in (*running, *([statement] if statement else []))})


async def process_complaint(
    complaint: Complaint,
    now: datetime,
    profile: Profile,
    context: AlarmContext,
    conn: BaseDBAsyncClient,
    directory: Directory | None = None,
) -> SweepReport:
    """Handle every alarm of one (locked) complaint that is due at `now`, writing as it goes."""
    report = SweepReport(complaints=1)
    directory = directory or await Directory.load(conn)
    run = _Run(complaint, profile, context, now, conn, report, directory)
    await _handle(run)
    await run.complaint.save(using_db=conn)
    return report


# How many due complaints one sweep transaction claims and writes together.
SWEEP_BATCH = 500
# Statement parameters per chunk: well under SQLite's and asyncpg's limits.
_CHUNK = 500


def _profile_for(complaint: Complaint, profile: Profile | None, context: AlarmContext) -> Profile:
    chosen = profile if profile and profile.id == complaint.profile else None
    chosen = chosen or context.profiles(complaint.profile) or profile
    if chosen is None:
        raise LookupError(f"no profile {complaint.profile!r}")
    return chosen


async def _claim_batch(
    conn: BaseDBAsyncClient, now: datetime, skip: Sequence[int], size: int
) -> list[Complaint]:
    """Up to `size` due complaints, earliest alarm first; on PostgreSQL locked, and rows other
    sweepers hold skipped (SQLite: its single writer is the lock)."""
    query = Complaint.filter(next_alarm_at__lte=now)
    if skip:
        query = query.exclude(id__in=list(skip))
    query = query.order_by("next_alarm_at", "id").limit(size).using_db(conn)
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update(skip_locked=True)
    return list(await query)


@dataclass
class _Batch:
    """One claimed batch: the complaints planned in memory, and those left for the shell."""

    planned: list[Complaint] = field(default_factory=list)
    writes: _Writes = field(default_factory=_Writes)
    report: SweepReport = field(default_factory=SweepReport)
    shell: list[int] = field(default_factory=list)  # ids handled one by one afterwards
    failed: list[int] = field(default_factory=list)


async def _plan_batch(
    complaints: Sequence[Complaint],
    now: datetime,
    profile: Profile | None,
    context: AlarmContext,
    conn: BaseDBAsyncClient,
    handled: set[int],
) -> _Batch:
    """Plan every complaint of the batch in memory: staff, departments and complainants read
    once, then pure code per complaint; what it would write is collected."""
    batch = _Batch()
    directory = await Directory.load(conn)
    complainant_ids = [c.complainant_id for c in complaints if c.complainant_id]  # type: ignore[attr-defined]
    complainants: dict[int, Complainant] = {}
    for start in range(0, len(complainant_ids), _CHUNK):
        chunk = complainant_ids[start : start + _CHUNK]
        for person in await Complainant.filter(id__in=chunk).using_db(conn):
            complainants[person.id] = person
    for complaint in complaints:
        if complaint.id in handled:  # still due after handling: a planning bug, not a loop
            log.error("sweep: complaint %s is still due after a pass", complaint.number)
            batch.failed.append(complaint.id)
            continue
        handled.add(complaint.id)
        report = SweepReport(complaints=1)
        writes = _Writes()
        try:
            chosen = _profile_for(complaint, profile, context)
            run = _Run(
                complaint, chosen, context, now, conn, report, directory, writes, complainants
            )
            await _handle(run)
            refresh_alarm(run.complaint)  # what the save hook does
        except _NeedsShell:
            handled.discard(complaint.id)
            batch.shell.append(complaint.id)
            continue
        except Exception:
            log.exception("sweep: complaint id %s failed; retried next sweep", complaint.id)
            batch.failed.append(complaint.id)
            continue
        batch.planned.append(run.complaint)
        batch.writes.extend(writes)
        batch.report.add(report)
    return batch


# PostgreSQL: each kind of row in one statement whatever the batch size (arrays unnested).
_PG_OUTBOX = """
INSERT INTO outbox (idempotency_key, channel, chat_id, payload, status, attempts,
    next_attempt_at, complaint_id, created_at, in_response)
SELECT k, ch, chat, p::jsonb, 'pending', 0, at, cid, $7, false
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::int[])
    AS v(k, ch, chat, p, at, cid)
ON CONFLICT (idempotency_key) DO NOTHING
"""
_PG_EVENT = """
INSERT INTO event (complaint_id, actor_role, action, from_state, to_state, payload, created_at)
SELECT cid, 'system', a, st, st, p::jsonb, at
FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
    AS v(cid, a, st, p, at)
"""
_PG_COMPLAINT = """
UPDATE complaint AS c SET alarm_state = v.alarm::jsonb, deadlines = v.dl::jsonb,
    next_alarm_at = v.next, updated_at = $5
FROM unnest($1::int[], $2::text[], $3::text[], $4::timestamptz[]) AS v(id, alarm, dl, next)
WHERE c.id = v.id
"""


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def _write_batch(batch: _Batch, conn: BaseDBAsyncClient) -> None:
    """The batch's outbox rows (a key queued before is skipped, as `enqueue` does), events
    and complaint changes, each in a few multi-row statements."""
    rows: dict[str, _OutboxRow] = {}
    for row in batch.writes.outbox:
        rows.setdefault(row.idempotency_key, row)
    changed_at = datetime.now(UTC)  # auto_now, as a save would set it
    if conn.capabilities.dialect == "postgres":
        await _write_batch_pg(batch, list(rows.values()), changed_at, conn)
    else:
        await _write_batch_orm(batch, rows, changed_at, conn)
    for event in batch.writes.events:
        log_created_event(event)  # type: ignore[arg-type]


async def _write_batch_pg(
    batch: _Batch, rows: list[_OutboxRow], changed_at: datetime, conn: BaseDBAsyncClient
) -> None:
    if rows:
        # Rows back, not a count: Tortoise reads an INSERT's status "INSERT 0 n" as 0.
        inserted = await conn.execute_query_dict(
            _PG_OUTBOX + " RETURNING id",
            [
                [r.idempotency_key for r in rows],
                [str(r.channel) for r in rows],
                [r.chat_id for r in rows],
                [_json(r.payload) for r in rows],
                [r.next_attempt_at for r in rows],
                [r.complaint_id for r in rows],
                changed_at,
            ],
        )
        batch.report.outbox_rows += len(inserted)
    events = batch.writes.events
    if events:
        await conn.execute_query(
            _PG_EVENT,
            [
                [e.complaint_id for e in events],
                [e.action for e in events],
                [e.from_state for e in events],
                [_json(e.payload) for e in events],
                [e.created_at for e in events],
            ],
        )
    planned = batch.planned
    if planned:
        await conn.execute_query(
            _PG_COMPLAINT,
            [
                [c.id for c in planned],
                [_json(c.alarm_state) for c in planned],
                [_json(c.deadlines) for c in planned],
                [c.next_alarm_at for c in planned],
                changed_at,
            ],
        )


async def _write_batch_orm(
    batch: _Batch,
    rows: dict[str, _OutboxRow],
    changed_at: datetime,
    conn: BaseDBAsyncClient,
) -> None:
    keys = list(rows)
    for start in range(0, len(keys), _CHUNK):
        queued = await (
            OutboxMessage.filter(idempotency_key__in=keys[start : start + _CHUNK])
            .using_db(conn)
            .values_list("idempotency_key", flat=True)
        )
        for key in queued:
            rows.pop(key, None)
    if rows:
        await OutboxMessage.bulk_create(
            [row.model() for row in rows.values()], batch_size=_CHUNK, using_db=conn
        )
    batch.report.outbox_rows += len(rows)
    if batch.writes.events:
        await Event.bulk_create(
            [event.model() for event in batch.writes.events], batch_size=_CHUNK, using_db=conn
        )
    if batch.planned:
        for complaint in batch.planned:
            complaint.updated_at = changed_at
        await Complaint.bulk_update(
            batch.planned,
            fields=["alarm_state", "deadlines", "next_alarm_at", "updated_at"],
            batch_size=_CHUNK,
            using_db=conn,
        )


async def _sweep_one(
    complaint_id: int,
    now: datetime,
    profile: Profile | None,
    context: AlarmContext,
    directory: Directory | None,
) -> SweepReport | None:
    """One complaint in a transaction of its own, if it is still due and nobody holds it."""
    async with in_transaction() as conn:
        query = Complaint.filter(id=complaint_id, next_alarm_at__lte=now).using_db(conn)
        if conn.capabilities.dialect == "postgres":
            query = query.select_for_update(skip_locked=True)
        complaint = await query.first()
        if complaint is None:  # handled by another sweeper meanwhile
            return None
        chosen = _profile_for(complaint, profile, context)
        return await process_complaint(complaint, now, chosen, context, conn, directory)


async def sweep(
    now: datetime,
    *,
    profile: Profile | None = None,
    context: AlarmContext | None = None,
    limit: int | None = None,
    batch_size: int = SWEEP_BATCH,
) -> SweepReport:
    """Handle every complaint whose next alarm is due at `now`.

    Due rows are claimed `batch_size` at a time in one transaction (PostgreSQL: `FOR UPDATE
    SKIP LOCKED`, so several sweepers split the work), planned in memory and written in bulk
    with the claim's commit. A complaint whose step runs a workflow action (the survey steps)
    or opens a call-back task is handled afterwards in a transaction of its own, as is every
    complaint of a batch whose bulk write failed. `profile` is used for complaints filed under
    it; others load theirs by id. A complaint that fails is logged, left as it was and retried
    next sweep.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    context = context or alarm_context()
    report = SweepReport()
    failed: list[int] = []
    handled: set[int] = set()
    while limit is None or report.complaints < limit:
        size = batch_size if limit is None else min(batch_size, limit - report.complaints)
        shell: list[int] = []
        directory: Directory | None = None
        claimed: list[Complaint] = []
        batch: _Batch | None = None
        try:
            async with in_transaction() as conn:
                claimed = await _claim_batch(conn, now, failed, size)
                if not claimed:
                    break
                batch = await _plan_batch(claimed, now, profile, context, conn, handled)
                directory = await Directory.load(conn) if batch.shell else None
                await _write_batch(batch, conn)
        except Exception:
            if not claimed:
                raise
            log.exception("sweep: writing a batch of %d failed; one by one", len(claimed))
            bad = batch.failed if batch is not None else []
            for complaint in claimed:
                handled.discard(complaint.id)
            shell = [c.id for c in claimed if c.id not in bad]
            failed.extend(bad)
        else:
            report.add(batch.report)
            failed.extend(batch.failed)
            shell = batch.shell
        for complaint_id in shell:
            if limit is not None and report.complaints >= limit:
                break
            try:
                one = await _sweep_one(complaint_id, now, profile, context, directory)
            except Exception:
                log.exception("sweep: complaint id %s failed; retried next sweep", complaint_id)
                failed.append(complaint_id)
                continue
            if one is not None:
                handled.add(complaint_id)
                report.add(one)
    report.failed = failed
    return report


# -- maintenance jobs --------------------------------------------------------------------


async def rebuild_alarms(context: AlarmContext | None = None) -> int:
    """Plan alarms for rows saved before the scheduler columns existed (alarm_state NULL)."""
    from models.alarms import refresh_alarm

    context = context or alarm_context()
    count = 0
    for complaint in await Complaint.filter(alarm_state__isnull=True):
        complaint.alarm_state = {}
        refresh_alarm(complaint, context)
        await complaint.save(update_fields=["alarm_state", "next_alarm_at"])
        count += 1
    return count


async def recompute_provisional(
    now: datetime, *, profile: Profile | None = None, context: AlarmContext | None = None
) -> list[str]:
    """Recount deadlines computed on a provisional calendar year once that year is official.

    Returns the numbers of the complaints whose deadlines changed. The calendar in `context`
    must be the updated one (the override file lists the year under `official_years`).
    """
    context = context or alarm_context()
    calendar = context.calendar
    changed: list[str] = []
    open_ids = await Complaint.filter(
        deadline_provisional=True, state__in=list(OPEN_STATES)
    ).values_list("id", flat=True)
    for complaint_id in open_ids:
        async with in_transaction() as conn:
            query = Complaint.filter(id=complaint_id).using_db(conn)
            if conn.capabilities.dialect == "postgres":
                query = query.select_for_update()
            complaint = await query.first()
            if complaint is None:
                continue
            chosen = profile if profile and profile.id == complaint.profile else None
            chosen = chosen or context.profiles(complaint.profile)
            if chosen is None:
                continue
            clock = Clock(calendar, context.tz, now)
            before = {
                stage: entry.get("due")
                for stage, entry in complaint.deadlines.items()
                if isinstance(entry, dict)
            }
            for stage, entry in list(complaint.deadlines.items()):
                if not isinstance(entry, dict) or not entry.get("provisional"):
                    continue
                due_year = datetime.fromisoformat(entry["due"]).astimezone(context.tz).year
                start_year = datetime.fromisoformat(entry["start"]).astimezone(context.tz).year
                if all(calendar.is_official_year(y) for y in range(start_year, due_year + 1)):
                    recompute_stage(chosen, complaint, stage, clock)
            refresh_next_due(complaint)
            after = {
                stage: entry.get("due")
                for stage, entry in complaint.deadlines.items()
                if isinstance(entry, dict)
            }
            await complaint.save(using_db=conn)
            if before != after:
                await Event.create(
                    complaint=complaint,
                    actor_role=Role.SYSTEM,
                    action="deadlines_recomputed",
                    from_state=complaint.state,
                    to_state=complaint.state,
                    payload={"before": before, "after": after},
                    created_at=now,
                    using_db=conn,
                )
                changed.append(complaint.number)
    return changed


async def prune_processed_updates(
    now: datetime, keep: timedelta = PROCESSED_UPDATE_RETENTION
) -> int:
    """Forget platform update ids older than `keep` (one indexed range delete); returns how
    many were removed. A re-delivery comes long before that, so de-duplication holds."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return await ProcessedUpdate.filter(created_at__lt=now - keep).delete()


async def prune_sent_outbox(now: datetime, keep: timedelta = SENT_OUTBOX_RETENTION) -> int:
    """Delete outbox rows sent more than `keep` ago (one delete); returns how many.

    Failed rows stay: they are the record of messages that never arrived. So do the sent rows
    of complaints with a delivery failure, because a later delivery to the same chat is what
    shows staff the complainant is reachable again (models.outbox.undeliverable_complaints).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cutoff = now - keep
    failed_cases = Subquery(Event.filter(action=DELIVERY_FAILED).values("complaint_id"))
    return await OutboxMessage.filter(
        # The (status, next_attempt_at) index finds the range: a row is sent only once due, so
        # its next_attempt_at is before its sent_at (a row claimed just before the cutoff
        # and sent just after it goes tomorrow).
        Q(status=OutboxStatus.SENT, next_attempt_at__lt=cutoff, sent_at__lt=cutoff),
        Q(complaint_id=None) | ~Q(complaint_id__in=failed_cases),
    ).delete()


def utc_now() -> datetime:
    return datetime.now(UTC)
