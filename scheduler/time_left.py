"""How much time a deadline leaves, as a desk shows it next to the case (pure).

Over a day away it is counted in working days, like the deadlines themselves: the working days
after today up to and including the due day. Within a day it is the clock's hours and minutes;
past the due instant it is how long it is overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.calendar import WorkingCalendar


@dataclass(frozen=True)
class TimeLeft:
    overdue: bool
    working_days: int | None  # set when the due day is more than a day away
    hours: int
    minutes: int


def time_left(due: datetime, now: datetime, calendar: WorkingCalendar, tz: ZoneInfo) -> TimeLeft:
    gap = due - now
    if gap < timedelta(0):
        late = -gap
        return TimeLeft(True, None, int(late.total_seconds() // 3600), late.seconds % 3600 // 60)
    if gap < timedelta(days=1):
        return TimeLeft(False, None, int(gap.total_seconds() // 3600), gap.seconds % 3600 // 60)
    today, due_day = now.astimezone(tz).date(), due.astimezone(tz).date()
    days = calendar.count_working_days(today + timedelta(days=1), due_day)
    return TimeLeft(False, days, 0, 0)


def end_of_day(day_instant: datetime, tz: ZoneInfo) -> datetime:
    """The last instant of `day_instant`'s local day."""
    local = day_instant.astimezone(tz)
    return local.replace(hour=23, minute=59, second=59, microsecond=999999)


def due_window(
    kind: str, now: datetime, calendar: WorkingCalendar, tz: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """The due instants (after, up to] a list filter means: "overdue" (up to now), "today"
    (from now to the end of today), "next_working_day" (from now to the end of the next
    working day after today)."""
    if kind == "overdue":
        return None, now
    if kind == "today":
        return now, end_of_day(now, tz)
    if kind == "next_working_day":
        day = calendar.next_working_day(now.astimezone(tz).date())
        return now, datetime.combine(day, datetime.max.time(), tzinfo=tz)
    raise ValueError(f"unknown due filter {kind!r}")
