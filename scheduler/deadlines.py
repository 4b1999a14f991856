"""Deadline arithmetic, as Chinese law counts time limits. Pure functions, no I/O.

Counting rules
--------------
* Day units: the day of receipt is not counted. N working days end at the close of the N-th
  working day after the local day of receipt; N calendar days at the close of the N-th day after.
  "Close of day" is represented as 23:59:59.999999 local time (`END_OF_DAY`); the CLI shows it
  to the second, e.g. 2026-10-10T23:59:59+08:00. Anything done before midnight is in time.
* Clock units (minutes, hours) run on the clock from the start instant, or — when `office_hours`
  is given — only inside office hours on working days.
* Amount 0 means immediately: the due instant is the start itself.
* Pauses (waiting for the complainant's material) stop the clock:
    - working days: a working day lying *wholly* inside a pause (local 00:00 to the next 00:00
      both within [pause.start, pause.end]) is not counted, so the count runs on past it —
      i.e. whole paused working days are added back. Partly paused days still count.
    - calendar days: likewise, a calendar day wholly inside a pause is not counted.
    - minutes/hours: the clock does not run during a pause, so the paused running time (on the
      clock, or inside office hours when those apply) is added.
  A pause lying after the deadline has no effect. An ongoing pause has no end: compute the
  deadline once it is resumed (or pass the current instant as its end for a preview).
* One extension adds its amount, in its own unit, counted from the original due instant (for day
  units the original due day is not counted again; pauses after the original due apply too).
* `roll_to_working_day` (a profile option, e.g. letters and visits): a calendar-day limit whose
  last day is a statutory holiday or rest day ends at the close of the next working day instead,
  as Chinese law counts periods ("期间届满的最后一日是节假日的，以节假日后的第一日为期间
  届满的日期").
* `provisional` is True when any day the count consulted lies in a year without official holiday
  data (see scheduler.calendar).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from scheduler.calendar import WorkingCalendar

Unit = Literal["minutes", "hours", "calendar_days", "working_days"]
UNITS: tuple[str, ...] = get_args(Unit)
DAY_UNITS = ("calendar_days", "working_days")
SHANGHAI = ZoneInfo("Asia/Shanghai")
END_OF_DAY = time.max  # 23:59:59.999999: the close of a day, local time

_MAX_LISTED_STEPS = 24  # keep explanations readable for long counts


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: Unit

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise ValueError(f"duration amount must be an integer, got {self.amount!r}")
        if self.amount < 0:
            raise ValueError(f"duration amount must not be negative, got {self.amount}")
        if self.unit not in UNITS:
            raise ValueError(f"unknown duration unit {self.unit!r}; use one of {', '.join(UNITS)}")

    def __str__(self) -> str:
        word = self.unit.replace("_", " ")
        return f"{self.amount} {word[:-1] if self.amount == 1 else word}"


@dataclass(frozen=True)
class OfficeHours:
    """Daily office hours (local wall-clock times) on working days."""

    start: time = time(9, 0)
    end: time = time(17, 0)

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("office hours are local wall-clock times without a time zone")
        if self.start >= self.end:
            raise ValueError(f"office hours must end after they start ({self})")

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class Pause:
    """An interval during which the clock stops (e.g. waiting for material, 补正)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, "pause start")
        _require_aware(self.end, "pause end")
        if self.end < self.start:
            raise ValueError(f"pause ends before it starts ({self.start} > {self.end})")


@dataclass(frozen=True)
class DueResult:
    due: datetime  # aware, UTC
    provisional: bool
    explanation: list[str] = field(default_factory=list)

    def local(self, tz: ZoneInfo = SHANGHAI) -> datetime:
        return self.due.astimezone(tz)


def format_local(instant: datetime, tz: ZoneInfo = SHANGHAI) -> str:
    """ISO 8601 to the second with the local UTC offset, e.g. 2026-10-10T23:59:59+08:00."""
    return instant.astimezone(tz).isoformat(timespec="seconds")


def _require_aware(value: datetime, what: str) -> None:
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")


class _Trace:
    """Consults the calendar on behalf of one computation; remembers provisional answers."""

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar
        self.provisional = False
        self.steps: list[str] = []

    def working(self, day: date) -> bool:
        info = self.calendar.day_info(day)
        self.provisional = self.provisional or info.provisional
        return info.working

    def describe(self, day: date) -> str:
        return self.calendar.day_info(day).describe()


def compute_due(
    start: datetime,
    duration: Duration,
    calendar: WorkingCalendar,
    tz: ZoneInfo = SHANGHAI,
    office_hours: OfficeHours | None = None,
    pauses: Sequence[Pause] = (),
    extension: Duration | None = None,
    roll_to_working_day: bool = False,
) -> DueResult:
    """When a time limit of `duration` that starts at `start` runs out (see module docstring)."""
    _require_aware(start, "start")
    if not isinstance(duration, Duration):
        raise ValueError(f"duration must be a Duration, got {duration!r}")
    if extension is not None and not isinstance(extension, Duration):
        raise ValueError(f"extension must be a Duration, got {extension!r}")
    for pause in pauses:
        if not isinstance(pause, Pause):
            raise ValueError(f"pauses must be Pause objects, got {pause!r}")
    ordered = sorted(pauses, key=lambda p: p.start)
    trace = _Trace(calendar)
    trace.steps.append(f"Start: {format_local(start, tz)} ({tz.key}); counting {duration}.")
    due = _advance(start, duration, trace, tz, office_hours, ordered)
    if extension is not None:
        trace.steps.append(
            f"Extension: {extension} counted from the original due {format_local(due, tz)}."
        )
        due = _advance(due, extension, trace, tz, office_hours, ordered)
    if roll_to_working_day and duration.unit == "calendar_days" and duration.amount > 0:
        due = _roll_to_working_day(due, trace, tz)
    trace.steps.append(f"Due: {format_local(due, tz)}.")
    if trace.provisional:
        trace.steps.append(
            "Provisional: the count uses a year without official holiday data; "
            "recompute when the State Council notice is added."
        )
    return DueResult(due.astimezone(UTC), trace.provisional, trace.steps)


def due_for_starts(
    duration: Duration, calendar: WorkingCalendar, tz: ZoneInfo = SHANGHAI
) -> Callable[[datetime], datetime]:
    """`compute_due(start, duration, calendar, tz).due` for many starts (the earlier complaints
    a new one is compared with): a count of days depends on the local day of receipt alone, so
    it is made once per day, not once per start."""
    by_day: dict[date, datetime] = {}

    def due(start: datetime) -> datetime:
        if duration.unit not in DAY_UNITS or duration.amount == 0:
            return compute_due(start, duration, calendar, tz).due
        _require_aware(start, "start")
        day = start.astimezone(tz).date()
        if day not in by_day:
            by_day[day] = compute_due(start, duration, calendar, tz).due
        return by_day[day]

    return due


def _advance(
    frm: datetime,
    duration: Duration,
    trace: _Trace,
    tz: ZoneInfo,
    office_hours: OfficeHours | None,
    pauses: Sequence[Pause],
) -> datetime:
    if duration.amount == 0:
        trace.steps.append("Amount 0: due immediately.")
        return frm
    if duration.unit in DAY_UNITS:
        return _advance_days(frm, duration, trace, tz, pauses)
    return _advance_clock(frm, duration, trace, tz, office_hours, pauses)


# -- day units ------------------------------------------------------------------------------


def _wholly_paused(day: date, tz: ZoneInfo, pauses: Sequence[Pause]) -> Pause | None:
    day_start = datetime.combine(day, time(0), tz)
    day_end = datetime.combine(day + timedelta(days=1), time(0), tz)
    for pause in pauses:
        if pause.start <= day_start and pause.end >= day_end:
            return pause
    return None


def _advance_days(
    frm: datetime, duration: Duration, trace: _Trace, tz: ZoneInfo, pauses: Sequence[Pause]
) -> datetime:
    working = duration.unit == "working_days"
    base = frm.astimezone(tz).date()
    trace.steps.append(f"{base:%Y-%m-%d %a} is the day counting starts from; it is not counted.")
    listed: list[str] = []
    skipped: list[tuple[date, date, str]] = []  # runs of uncounted days with one reason

    def skip(day: date, reason: str) -> None:
        if skipped and skipped[-1][2] == reason and skipped[-1][1] == day - timedelta(days=1):
            skipped[-1] = (skipped[-1][0], day, reason)
        else:
            _flush_skips(skipped, listed)
            skipped.append((day, day, reason))

    day, counted = base, 0
    while counted < duration.amount:
        day += timedelta(days=1)
        if working and not trace.working(day):
            skip(day, trace.describe(day))
            continue
        pause = _wholly_paused(day, tz, pauses)
        if pause is not None:
            skip(day, f"paused {format_local(pause.start, tz)} – {format_local(pause.end, tz)}")
            continue
        counted += 1
        _flush_skips(skipped, listed)
        kind = trace.describe(day) if working else "calendar day"
        listed.append(f"{day:%Y-%m-%d %a}: day {counted} of {duration.amount} ({kind}).")
    if len(listed) > _MAX_LISTED_STEPS:
        hidden = len(listed) - _MAX_LISTED_STEPS
        listed = [*listed[: _MAX_LISTED_STEPS - 1], f"… {hidden} more steps …", listed[-1]]
    trace.steps.extend(listed)
    trace.steps.append(f"Due at the close of {day:%Y-%m-%d} (local time).")
    return datetime.combine(day, END_OF_DAY, tz)


def _roll_to_working_day(due: datetime, trace: _Trace, tz: ZoneInfo) -> datetime:
    day = due.astimezone(tz).date()
    if trace.working(day):
        return due
    last = day
    while not trace.working(day):
        day += timedelta(days=1)
    trace.steps.append(
        f"{last:%Y-%m-%d %a} is not a working day ({trace.describe(last)}): the period ends on "
        f"the next working day, {day:%Y-%m-%d %a}."
    )
    return datetime.combine(day, END_OF_DAY, tz)


def _flush_skips(skipped: list[tuple[date, date, str]], listed: list[str]) -> None:
    for first, last, reason in skipped:
        span = (
            f"{first:%Y-%m-%d %a}" if first == last else f"{first:%Y-%m-%d %a} – {last:%Y-%m-%d %a}"
        )
        listed.append(f"{span}: not counted ({reason}).")
    skipped.clear()


# -- clock units ----------------------------------------------------------------------------


def _office_windows(
    frm: datetime, office_hours: OfficeHours | None, trace: _Trace, tz: ZoneInfo
) -> Iterator[tuple[datetime, datetime | None]]:
    """Intervals in which the clock may run, from `frm` on; None as an end means open-ended.

    Instants are in UTC: Python adds timedeltas to aware datetimes on the wall clock of their
    zone, which would be wrong across a DST change in zones that have one.
    """
    frm = frm.astimezone(UTC)
    if office_hours is None:
        yield frm, None
        return
    day = frm.astimezone(tz).date()
    while True:  # ends at the latest when the calendar runs out of data (CalendarOutOfRange)
        if trace.working(day):
            opens = max(datetime.combine(day, office_hours.start, tz).astimezone(UTC), frm)
            closes = datetime.combine(day, office_hours.end, tz).astimezone(UTC)
            if opens < closes:
                yield opens, closes
        day += timedelta(days=1)


def _minus_pauses(
    windows: Iterator[tuple[datetime, datetime | None]], pauses: Sequence[Pause]
) -> Iterator[tuple[datetime, datetime | None]]:
    for opens, closes in windows:
        cursor = opens
        for pause in pauses:
            if closes is not None and pause.start >= closes:
                break
            if pause.end <= cursor:
                continue
            if pause.start > cursor:
                yield cursor, pause.start if closes is None else min(pause.start, closes)
            cursor = max(cursor, pause.end)
            if closes is not None and cursor >= closes:
                break
        if closes is None or cursor < closes:
            yield cursor, closes


def _advance_clock(
    frm: datetime,
    duration: Duration,
    trace: _Trace,
    tz: ZoneInfo,
    office_hours: OfficeHours | None,
    pauses: Sequence[Pause],
) -> datetime:
    per_unit = timedelta(hours=1) if duration.unit == "hours" else timedelta(minutes=1)
    remaining = per_unit * duration.amount
    if office_hours is None:
        trace.steps.append(f"{duration} run on the clock.")
    else:
        trace.steps.append(
            f"{duration} run only inside office hours {office_hours} on working days."
        )
    for pause in pauses:
        if pause.end > frm:
            trace.steps.append(
                f"The clock stops while paused {format_local(pause.start, tz)} – "
                f"{format_local(pause.end, tz)}."
            )
    used: list[str] = []
    for opens, closes in _minus_pauses(_office_windows(frm, office_hours, trace, tz), pauses):
        if closes is None or closes - opens >= remaining:
            due = opens + remaining
            used.append(f"{format_local(opens, tz)} – {format_local(due, tz)} ({remaining}).")
            break
        remaining -= closes - opens
        used.append(f"{format_local(opens, tz)} – {format_local(closes, tz)} ({closes - opens}).")
    if len(used) > 1 or office_hours is not None:
        if len(used) > _MAX_LISTED_STEPS:
            hidden = len(used) - _MAX_LISTED_STEPS
            used = [*used[: _MAX_LISTED_STEPS - 1], f"… {hidden} more intervals …", used[-1]]
        trace.steps.extend(f"Clock runs {line}" for line in used)
    return due


# -- helpers for notifications and reminders -----------------------------------------------


def notify_at(
    received: datetime,
    office_hours: OfficeHours | None,
    duty_24h: bool,
    calendar: WorkingCalendar,
    tz: ZoneInfo = SHANGHAI,
) -> datetime:
    """When staff are told of a complaint received at `received` (aware; result in UTC).

    Intake outside office hours, or on a non-working day, waits for the next office opening on a
    working day — unless the profile runs 24-hour duty (or has no office hours). This only moves
    the notification; it never changes how deadlines are counted.
    """
    _require_aware(received, "received")
    if duty_24h or office_hours is None:
        return received.astimezone(UTC)
    local = received.astimezone(tz)
    day = local.date()
    if calendar.is_working_day(day):
        if office_hours.start <= local.time() < office_hours.end:
            return received.astimezone(UTC)
        if local.time() < office_hours.start:
            return datetime.combine(day, office_hours.start, tz).astimezone(UTC)
    opening = calendar.next_working_day(day)
    return datetime.combine(opening, office_hours.start, tz).astimezone(UTC)


def before_due(
    due: datetime,
    lead: Duration,
    calendar: WorkingCalendar,
    tz: ZoneInfo = SHANGHAI,
) -> datetime:
    """The instant `lead` before `due` (for reminders), in UTC.

    Working days step back to the same local time on the N-th working day before the due day;
    calendar days step back N local days; minutes and hours on the clock.
    """
    _require_aware(due, "due")
    local = due.astimezone(tz)
    if lead.unit == "working_days":
        day = calendar.add_working_days(local.date(), -lead.amount)
        return datetime.combine(day, local.timetz().replace(tzinfo=None), tz).astimezone(UTC)
    if lead.unit == "calendar_days":
        day = local.date() - timedelta(days=lead.amount)
        return datetime.combine(day, local.timetz().replace(tzinfo=None), tz).astimezone(UTC)
    per_unit = timedelta(hours=1) if lead.unit == "hours" else timedelta(minutes=1)
    return due.astimezone(UTC) - per_unit * lead.amount  # in UTC: elapsed time, not wall clock
