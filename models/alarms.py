"""What the scheduler owes a complaint, and when: pure planning of its alarms.

The plan is part of the complaint row (`next_alarm_at`, kept by a pre-save hook), so it lives with
the models: the save hook needs it in every process, and scheduler/ (the sweep that fires the
alarms) depends on it, never the reverse.

Every open complaint has a small set of *watches* — the running stage deadlines the organisation
must keep (acceptance answer, dispatch, acknowledgement, resolution, result notice, a supervisor
revisit) — and, after the reply, the return-visit steps (send the survey, remind once, close as
"no response"). From the stored deadlines and `Complaint.alarm_state` (what was already done)
`pending_alarms` lists every alarm still to fire; the earliest is stored in the indexed
`Complaint.next_alarm_at`, so a sweep reads due rows only.

Alarms per watch (stage deadline `due`, started at `start`):

* a reminder to the responsible person at each `profile.reminders.before` point
  (`scheduler.deadlines.before_due`, working-day aware). For a deadline at the close of a day the
  points count back from the office closing time of that day — "2 hours before" a midnight
  deadline would otherwise fall after everyone has gone home. Points at or before the start
  are skipped;
* at `due`, escalation level 1; each `profile.reminders.escalation_interval` later one level
  further, until the chain of people is exhausted (`exhausted` in the slot).

The manager notice (`manager_notice`, property: a major complaint reported to the manager
within 10 minutes) is a watch of its own: it runs in every open state, paused or not (it does not
wait for the complainant), from the moment the complaint was filed or rated major. Its first alarm
is at the start itself — the sweep sends the notice at once and the deadline is the promise;
only when nobody could be told does the watch go on to escalate at the deadline.

Where the profile asks (`[progress] every`), the complainant gets a periodic "still being
handled, due on …" message while the case is handled (`PROGRESS_STATES`, not while waiting for
them): one interval after the resolution clock started, after the last such message, or after
the last pause ended, whichever is latest, as long as that is before the resolution deadline (an
extension moves it; past it the case is the escalation's business). Day intervals land on the
office opening of the day the count ends, so nobody is messaged at midnight.

The respondent's statement (models/statement.py, R13 陈述和申辩) is a watch of its own while
it is asked for and the case is open: a reminder *to the respondent* (or, for one named in free
text, to the handler who records it for them) at each reminder point, and at its due instant
the lapse, recorded as the waiver (`waive_statement`) — never an escalation: the period is the
respondent's, not a deadline the organisation can miss.

A call-back task (models/callbacks.py: a message to a complainant without a chat, made a call
the desk owes) is a watch of its own in every state, paused or not: reminders before its due
instant and escalation after it, keyed by the task id.

`alarm_state` layout: {"<stage>@<due ISO>": {"reminded": [ISO...], "escalated": n,
"exhausted": bool, "attempted": ISO}, "survey": {...}, "supervisor_revisit": {"start": ISO,
"due": ISO}, "progress": {"anchor": ISO, "last": ISO}, "callbacks": {"<task id>": {"start":
ISO, "due": ISO}}, "callback#<task id>@<due ISO>": {...}}. The slot key carries the due instant, so
a recomputed deadline (extension, resume) starts afresh; the progress slot carries the resolution
clock's start, so a reopened case counts its periods afresh.

`refresh_alarm(complaint)` is called from a pre-save hook on `Complaint` (models/entities.py),
so every action that changes a complaint keeps its alarm right without knowing about it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from config.profiles import Profile, load_profile
from models.actions import ACTIVE_STAGES
from models.callbacks import CALLBACK_STAGE, CALLBACKS
from models.statement import REQUESTED, STATEMENT_STAGE
from models.workflow import OPEN_STATES, State
from scheduler.calendar import WorkingCalendar
from scheduler.deadlines import DAY_UNITS, Duration, before_due
from scheduler.deadlines import compute_due as _compute_due

log = logging.getLogger(__name__)

# compute_due writes a human-readable trace of every counted day; planning needs only the
# instant, and asks for the same one several times per complaint (every step of a sweep, the
# save hook): remembered per calendar object (a reloaded calendar starts afresh).
_DUE_CACHE: dict[tuple[Any, ...], tuple[WorkingCalendar, Any]] = {}
_DUE_CACHE_SIZE = 20_000


class _Due:
    __slots__ = ("due",)

    def __init__(self, due: datetime) -> None:
        self.due = due


def compute_due(
    start: datetime, duration: Duration, calendar: WorkingCalendar, tz: ZoneInfo
) -> _Due:
    """`scheduler.deadlines.compute_due(...).due`, remembered (see `_DUE_CACHE`)."""
    key = (start, duration, id(calendar), tz)
    hit = _DUE_CACHE.get(key)
    if hit is not None and hit[0] is calendar:
        return hit[1]
    if len(_DUE_CACHE) >= _DUE_CACHE_SIZE:
        _DUE_CACHE.clear()
    result = _Due(_compute_due(start, duration, calendar, tz).due)
    _DUE_CACHE[key] = (calendar, result)
    return result


# Stage deadlines the scheduler watches in each state: the running stages of
# models.actions.ACTIVE_STAGES less the return-visit ones, which are handled as survey steps,
# not as staff deadlines.
RETURN_VISIT_STAGES = frozenset({"revisit", "survey_reminder", "auto_close"})
WATCHED_STAGES: dict[State, tuple[str, ...]] = {
    state: watched
    for state, stages in ACTIVE_STAGES.items()
    if (watched := tuple(s for s in stages if s not in RETURN_VISIT_STAGES))
}
# A derived watch: an assignment not acknowledged within the profile's dispatch time limit,
# used when the profile sets no first_contact deadline (e.g. property: minutes).
ACKNOWLEDGEMENT = "acknowledgement"
SUPERVISOR_REVISIT = "supervisor_revisit"
SURVEY = "survey"
MANAGER_NOTICE = "manager_notice"
PROGRESS = "progress"
# States in which the case is being handled for the complainant: periodic progress messages run.
PROGRESS_STATES: frozenset[State] = frozenset(
    {State.ACCEPTED, State.ASSIGNED, State.IN_PROGRESS, State.REOPENED}
)


class AlarmKind(StrEnum):
    REMIND = "remind"
    ESCALATE = "escalate"
    SEND_SURVEY = "send_survey"
    SURVEY_REMINDER = "survey_reminder"
    NO_RESPONSE_CLOSE = "no_response_close"
    NOTIFY_MANAGER = "notify_manager"
    PROGRESS = "progress"
    REMIND_RESPONDENT = "remind_respondent"
    LAPSE_STATEMENT = "lapse_statement"


@dataclass(frozen=True)
class Watch:
    stage: str
    start: datetime
    due: datetime
    ref: str | None = None  # which one, where a stage has several at once (call-back tasks)

    @property
    def key(self) -> str:
        if self.ref is not None:
            return f"{self.stage}#{self.ref}@{iso(self.due)}"
        return f"{self.stage}@{iso(self.due)}"


@dataclass(frozen=True, order=True)
class Alarm:
    at: datetime
    kind: AlarmKind = field(compare=False)
    stage: str = field(compare=False)
    slot: str = field(compare=False)  # key in alarm_state
    level: int = field(default=0, compare=False)  # escalation level
    due: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CaseView:
    """The parts of a complaint that alarms depend on (a plain copy: pure functions only)."""

    state: State
    deadlines: Mapping[str, Any]
    alarm_state: Mapping[str, Any]
    paused: bool = False
    statement: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, complaint: Any) -> CaseView:
        statement = getattr(complaint, "statement", None)
        return cls(
            state=State(complaint.state),
            deadlines=complaint.deadlines or {},
            alarm_state=complaint.alarm_state or {},
            paused=complaint.paused_at is not None,
            statement=statement if isinstance(statement, dict) else None,
        )


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


# -- watches -----------------------------------------------------------------------------


def _entry_watch(stage: str, entry: Any) -> Watch | None:
    if not isinstance(entry, dict) or entry.get("done") or "due" not in entry:
        return None
    return Watch(stage, parse(entry["start"]), parse(entry["due"]))


def acknowledgement_watch(
    deadlines: Mapping[str, Any], calendar: WorkingCalendar, tz: ZoneInfo
) -> Watch | None:
    """The acknowledgement deadline of an assignment: the dispatch time limit again, counted
    from the moment of assignment (when the dispatch stage was completed).

    A dispatch completed before the current resolution clock started belongs to an earlier
    round (the case was reopened since), so it does not count.
    """
    dispatch = deadlines.get("dispatch")
    if not isinstance(dispatch, dict) or not dispatch.get("done"):
        return None
    assigned = parse(dispatch["done"])
    resolution = deadlines.get("resolution")
    if isinstance(resolution, dict) and parse(resolution["start"]) > assigned:
        return None
    duration = Duration(int(dispatch["amount"]), dispatch["unit"])
    return Watch(ACKNOWLEDGEMENT, assigned, compute_due(assigned, duration, calendar, tz).due)


def manager_notice_watch(view: CaseView) -> Watch | None:
    """The manager notice owed on an open complaint (see module docstring)."""
    if view.state not in OPEN_STATES:
        return None
    return _entry_watch(MANAGER_NOTICE, view.deadlines.get(MANAGER_NOTICE))


def callback_watches(view: CaseView) -> list[Watch]:
    """The open call-back tasks of the complaint, whatever its state."""
    tasks = view.alarm_state.get(CALLBACKS)
    if not isinstance(tasks, dict):
        return []
    return [
        Watch(CALLBACK_STAGE, parse(entry["start"]), parse(entry["due"]), ref=str(ref))
        for ref, entry in sorted(tasks.items())
        if isinstance(entry, dict) and "due" in entry
    ]


def watches(view: CaseView, calendar: WorkingCalendar, tz: ZoneInfo) -> list[Watch]:
    """The staff deadlines running now; while the clock is paused only the manager notice
    and the call-backs owed."""
    found: list[Watch] = []
    notice = manager_notice_watch(view)
    if notice is not None:
        found.append(notice)
    found.extend(callback_watches(view))
    if view.paused:
        return found
    for stage in WATCHED_STAGES.get(view.state, ()):
        watch = _entry_watch(stage, view.deadlines.get(stage))
        if watch is not None:
            found.append(watch)
    if view.state == State.ASSIGNED and "first_contact" not in view.deadlines:
        ack = acknowledgement_watch(view.deadlines, calendar, tz)
        if ack is not None:
            found.append(ack)
    if view.state in (State.SUPERVISOR_REVISIT, State.REVISIT):  # REVISIT: rows from before
        revisit = view.alarm_state.get(SUPERVISOR_REVISIT)
        if isinstance(revisit, dict) and not revisit.get("done"):
            found.append(Watch(SUPERVISOR_REVISIT, parse(revisit["start"]), parse(revisit["due"])))
    return found


# -- alarm instants ----------------------------------------------------------------------


def reminder_points(
    watch: Watch, profile: Profile, calendar: WorkingCalendar, tz: ZoneInfo
) -> list[datetime]:
    """The reminder instants of a watch, earliest first (see module docstring)."""
    reference = watch.due
    local_due = watch.due.astimezone(tz)
    if local_due.time() == time.max and not profile.duty_24h:
        reference = datetime.combine(local_due.date(), profile.office_hours.end, tz)
    points = set()
    for lead in profile.reminders.before:
        point = before_due(reference, lead.to_duration(), calendar, tz)
        if watch.start < point < watch.due:
            points.add(point)
    return sorted(points)


def escalation_instant(
    watch: Watch, level: int, profile: Profile, calendar: WorkingCalendar, tz: ZoneInfo
) -> datetime | None:
    """When escalation `level` (1 = at the deadline) is due; None when the profile sets no
    interval for further levels."""
    instant = watch.due
    if level == 1:
        return instant
    interval = profile.reminders.escalation_interval
    if interval is None:
        return None
    step = interval.to_duration()
    for _ in range(level - 1):
        instant = compute_due(instant, step, calendar, tz).due
    return instant


def _slot(view: CaseView, key: str) -> Mapping[str, Any]:
    value = view.alarm_state.get(key)
    return value if isinstance(value, dict) else {}


def watch_alarms(
    view: CaseView, watch: Watch, profile: Profile, calendar: WorkingCalendar, tz: ZoneInfo
) -> list[Alarm]:
    slot = _slot(view, watch.key)
    alarms: list[Alarm] = []
    escalated = int(slot.get("escalated", 0))
    if escalated == 0:  # reminders are moot once the deadline has passed
        done = set(slot.get("reminded", ()))
        for point in reminder_points(watch, profile, calendar, tz):
            if iso(point) not in done:
                alarms.append(Alarm(point, AlarmKind.REMIND, watch.stage, watch.key, 0, watch.due))
    if not slot.get("exhausted"):
        at = escalation_instant(watch, escalated + 1, profile, calendar, tz)
        if at is not None:
            alarms.append(
                Alarm(at, AlarmKind.ESCALATE, watch.stage, watch.key, escalated + 1, watch.due)
            )
    return alarms


def notice_alarms(view: CaseView, watch: Watch) -> list[Alarm]:
    """The manager notice is sent at the start of its watch (once attempted, the watch's own
    escalation covers a notice nobody could receive)."""
    if watch.stage != MANAGER_NOTICE or _slot(view, watch.key).get("attempted"):
        return []
    return [Alarm(watch.start, AlarmKind.NOTIFY_MANAGER, watch.stage, watch.key, 0, watch.due)]


def progress_point(
    after: datetime, profile: Profile, calendar: WorkingCalendar, tz: ZoneInfo
) -> datetime:
    """The progress message instant one `profile.progress` interval after `after`; for day
    intervals the office opening of the day the count ends."""
    assert profile.progress is not None
    interval = profile.progress.interval
    end = compute_due(after, interval, calendar, tz).due
    if interval.unit in DAY_UNITS:
        opening = datetime.combine(end.astimezone(tz).date(), profile.office_hours.start, tz)
        return opening.astimezone(UTC)  # stored instants are UTC (SQLite compares text)
    return end


def progress_alarms(
    view: CaseView, profile: Profile, calendar: WorkingCalendar, tz: ZoneInfo
) -> list[Alarm]:
    """The next periodic progress message, while the case is handled and has a resolution
    deadline to tell (see module docstring)."""
    if profile.progress is None or view.paused or view.state not in PROGRESS_STATES:
        return []
    entry = view.deadlines.get("resolution")
    if not isinstance(entry, dict) or entry.get("done") or "due" not in entry:
        return []
    base = parse(entry["start"])
    slot = _slot(view, PROGRESS)
    if slot.get("anchor") == entry["start"] and slot.get("last"):
        base = max(base, parse(slot["last"]))
    for _, resumed in entry.get("pauses", ()):
        base = max(base, parse(resumed))
    at, due = progress_point(base, profile, calendar, tz), parse(entry["due"])
    if at >= due:  # past the deadline "due on …" no longer holds: escalation takes over
        return []
    return [Alarm(at, AlarmKind.PROGRESS, PROGRESS, PROGRESS, 0, due)]


def survey_alarms(
    view: CaseView, profile: Profile, calendar: WorkingCalendar, tz: ZoneInfo
) -> list[Alarm]:
    """Return-visit steps: send after the reply + delay, remind once, close on no answer."""
    if profile.revisit is None:
        return []
    if view.state == State.REPLIED:
        entry = view.deadlines.get("revisit")
        if not isinstance(entry, dict) or entry.get("done"):
            return []
        start = parse(entry["start"])
        at = compute_due(start, profile.revisit.delay.to_duration(), calendar, tz).due
        return [Alarm(at, AlarmKind.SEND_SURVEY, "revisit", SURVEY)]
    if view.state != State.REVISIT:
        return []
    survey = _slot(view, SURVEY)
    if survey.get("answered"):
        return []
    alarms = []
    reminder = _entry_watch("survey_reminder", view.deadlines.get("survey_reminder"))
    if reminder is not None and not survey.get("reminded"):
        alarms.append(Alarm(reminder.due, AlarmKind.SURVEY_REMINDER, "survey_reminder", SURVEY))
    close = _entry_watch("auto_close", view.deadlines.get("auto_close"))
    if close is not None:
        alarms.append(Alarm(close.due, AlarmKind.NO_RESPONSE_CLOSE, "auto_close", SURVEY))
    return alarms


def statement_watch(view: CaseView) -> Watch | None:
    """The respondent's statement period, while asked for on an open case."""
    entry = view.statement
    if entry is None or entry.get("status") != REQUESTED or view.state not in OPEN_STATES:
        return None
    return Watch(STATEMENT_STAGE, parse(entry["start"]), parse(entry["due"]))


def statement_alarms(
    view: CaseView, profile: Profile, calendar: WorkingCalendar, tz: ZoneInfo
) -> list[Alarm]:
    """Reminders to the respondent at the profile's reminder points, then the lapse."""
    watch = statement_watch(view)
    if watch is None:
        return []
    done = set(_slot(view, watch.key).get("reminded", ()))
    alarms = [
        Alarm(point, AlarmKind.REMIND_RESPONDENT, watch.stage, watch.key, 0, watch.due)
        for point in reminder_points(watch, profile, calendar, tz)
        if iso(point) not in done
    ]
    alarms.append(Alarm(watch.due, AlarmKind.LAPSE_STATEMENT, watch.stage, watch.key, 0, watch.due))
    return alarms


def pending_alarms(
    view: CaseView, profile: Profile, calendar: WorkingCalendar, tz: ZoneInfo
) -> list[Alarm]:
    """Every alarm of the complaint not yet handled, earliest first."""
    alarms: list[Alarm] = []
    for watch in watches(view, calendar, tz):
        alarms.extend(notice_alarms(view, watch))
        alarms.extend(watch_alarms(view, watch, profile, calendar, tz))
    alarms.extend(survey_alarms(view, profile, calendar, tz))
    alarms.extend(progress_alarms(view, profile, calendar, tz))
    alarms.extend(statement_alarms(view, profile, calendar, tz))
    return sorted(alarms)


def next_alarm(
    view: CaseView, profile: Profile, calendar: WorkingCalendar, tz: ZoneInfo
) -> datetime | None:
    alarms = pending_alarms(view, profile, calendar, tz)
    return alarms[0].at if alarms else None


# -- the context the save hook uses ----------------------------------------------------------


@dataclass(frozen=True)
class AlarmContext:
    calendar: WorkingCalendar
    tz: ZoneInfo
    profiles: Callable[[str], Profile | None]


@lru_cache(maxsize=32)
def _load_named_profile(name: str) -> Profile | None:
    from config.settings import get_settings

    try:
        return load_profile(name, get_settings().profiles_dir)
    except ValueError:
        log.warning("profile %r cannot be loaded; alarms fall back to due instants", name)
        return None


def profile_loader(*known: Profile) -> Callable[[str], Profile | None]:
    """Profiles by id: the given ones first, then the configured profile directories."""
    by_id = {p.id: p for p in known}

    def load(name: str) -> Profile | None:
        return by_id.get(name) or _load_named_profile(name)

    return load


_context: AlarmContext | None = None


def alarm_context() -> AlarmContext:
    global _context
    if _context is None:
        from config.settings import get_settings

        settings = get_settings()
        _context = AlarmContext(
            WorkingCalendar.from_settings(settings), settings.tz, profile_loader()
        )
    return _context


def set_alarm_context(context: AlarmContext | None) -> None:
    """Use this calendar, zone and profiles for the alarms of every saved complaint
    (the scheduler's set-up and tests; None returns to the settings' defaults)."""
    global _context
    _context = context


def refresh_alarm(complaint: Any, context: AlarmContext | None = None) -> None:
    """Set `complaint.next_alarm_at` from its state (called before every save)."""
    context = context or alarm_context()
    try:
        profile = context.profiles(complaint.profile)
        if profile is None:
            complaint.next_alarm_at = complaint.next_due_at
            return
        complaint.next_alarm_at = next_alarm(
            CaseView.of(complaint), profile, context.calendar, context.tz
        )
    except Exception:  # never block an action over planning (e.g. a date outside the
        # calendar's data): wake at the due instant, where the sweep logs and retries
        log.exception("cannot plan alarms of complaint %s", getattr(complaint, "number", "?"))
        complaint.next_alarm_at = complaint.next_due_at


def unheard_escalations(alarm_state: Mapping[str, Any] | None) -> list[tuple[str, datetime]]:
    """The deadlines whose escalation reached nobody (no one held any rung's role), as
    (stage, due) pairs, earliest first: shown on the case and in the reports, never silent."""
    found = []
    for key, slot in (alarm_state or {}).items():
        if isinstance(slot, dict) and slot.get("unheard") and "@" in key:
            stage, _, due = key.partition("@")
            found.append((stage, datetime.fromisoformat(due)))
    return sorted(found, key=lambda pair: pair[1])
