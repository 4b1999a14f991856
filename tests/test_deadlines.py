"""Deadline arithmetic across the 2026 holidays, 调休 days, pauses, office hours, extensions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.calendar import CalendarOutOfRange, WorkingCalendar
from scheduler.deadlines import (
    END_OF_DAY,
    Duration,
    OfficeHours,
    Pause,
    before_due,
    compute_due,
    due_for_starts,
    format_local,
    notify_at,
)

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar(today=date(2026, 11, 25))
OFFICE = OfficeHours(time(9), time(17))
needs_provisional_2027 = pytest.mark.skipif(
    CAL.is_official_year(2027), reason="chinesecalendar now ships official 2027 data"
)


def at(text: str) -> datetime:
    """Local Shanghai time from 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def close_of(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), END_OF_DAY, SH)


def due(start: datetime, amount: int, unit: str, **kwargs: object) -> datetime:
    result = compute_due(start, Duration(amount, unit), CAL, SH, **kwargs)  # type: ignore[arg-type]
    assert result.due.tzinfo is UTC
    return result.due


# -- working days ----------------------------------------------------------------------------


def test_national_day_received_wednesday_ends_on_the_adjusted_saturday() -> None:
    result = compute_due(at("2026-09-30 10:00"), Duration(3, "working_days"), CAL, SH)
    assert result.due == close_of("2026-10-10")
    assert format_local(result.due, SH) == "2026-10-10T23:59:59+08:00"
    assert not result.provisional
    text = "\n".join(result.explanation)
    assert "not counted" in text
    assert "National Day" in text
    assert "调休" in text


def test_national_day_received_on_the_holiday_also_ends_on_10_october() -> None:
    assert due(at("2026-10-03 15:00"), 3, "working_days") == close_of("2026-10-10")


@pytest.mark.parametrize(
    ("received", "amount", "expected"),
    [
        ("2026-09-30 23:59", 1, "2026-10-08"),
        ("2026-09-29 09:00", 1, "2026-09-30"),
        ("2026-09-29 09:00", 2, "2026-10-08"),
        ("2026-09-19 12:00", 1, "2026-09-20"),  # Sunday 20 Sep is a 调休 working day
        ("2026-10-10 08:00", 1, "2026-10-12"),
        ("2026-10-08 08:00", 10, "2026-10-21"),
    ],
)
def test_national_day_period(received: str, amount: int, expected: str) -> None:
    assert due(at(received), amount, "working_days") == close_of(expected)


@pytest.mark.parametrize(
    ("received", "amount", "expected"),
    [
        ("2026-02-13 10:00", 1, "2026-02-14"),  # Saturday 14 Feb is a 调休 working day
        ("2026-02-13 10:00", 2, "2026-02-24"),
        ("2026-02-13 10:00", 10, "2026-03-05"),
        ("2026-02-14 10:00", 3, "2026-02-26"),
        ("2026-02-17 10:00", 5, "2026-02-28"),  # on the holiday; Saturday 28 Feb works
        ("2026-02-17 10:00", 6, "2026-03-02"),
        ("2026-02-12 10:00", 3, "2026-02-24"),
    ],
)
def test_spring_festival_2026(received: str, amount: int, expected: str) -> None:
    assert due(at(received), amount, "working_days") == close_of(expected)


def test_day_of_receipt_is_the_local_day_not_the_utc_day() -> None:
    received = datetime(2026, 10, 9, 16, 30, tzinfo=UTC)  # 00:30 Saturday 10 Oct in Shanghai
    assert due(received, 1, "working_days") == close_of("2026-10-12")


@needs_provisional_2027
def test_year_end_reaches_into_provisional_2027() -> None:
    result = compute_due(at("2026-12-30 10:00"), Duration(3, "working_days"), CAL, SH)
    # 31 Dec, then the rule-based New Year holiday (Fri 1 Jan) and the weekend, then 4 and 5 Jan
    assert result.due == close_of("2027-01-05")
    assert result.provisional
    assert "Provisional" in result.explanation[-1]
    assert not compute_due(at("2026-12-01 10:00"), Duration(3, "working_days"), CAL, SH).provisional


def test_out_of_range_raises() -> None:
    with pytest.raises(CalendarOutOfRange):
        due(at("2028-12-20 10:00"), 30, "working_days")


# -- calendar days ---------------------------------------------------------------------------


def test_calendar_days_end_at_the_close_of_the_nth_day_after() -> None:
    assert due(at("2026-09-30 10:00"), 7, "calendar_days") == close_of("2026-10-07")
    assert due(at("2026-12-31 23:00"), 1, "calendar_days") == close_of("2027-01-01")
    # calendar days never consult the holiday calendar, so they are never provisional
    result = compute_due(at("2026-12-31 23:00"), Duration(5, "calendar_days"), CAL, SH)
    assert not result.provisional


# -- clock units ------------------------------------------------------------------------------


def test_hours_and_minutes_run_on_the_clock_through_holidays() -> None:
    assert due(at("2026-10-01 20:00"), 12, "hours") == at("2026-10-02 08:00")
    assert due(at("2026-10-01 23:58"), 5, "minutes") == at("2026-10-02 00:03")
    assert not compute_due(at("2026-12-31 20:00"), Duration(48, "hours"), CAL, SH).provisional


@pytest.mark.parametrize(
    ("start", "amount", "unit", "expected"),
    [
        ("2026-10-09 16:00", 2, "hours", "2026-10-10 10:00"),  # Friday → 调休 Saturday
        ("2026-09-30 16:30", 8, "hours", "2026-10-08 16:30"),  # across National Day
        ("2026-10-12 09:00", 8, "hours", "2026-10-12 17:00"),  # exactly one office day
        ("2026-10-12 07:00", 30, "minutes", "2026-10-12 09:30"),  # before opening
        ("2026-10-12 18:00", 30, "minutes", "2026-10-13 09:30"),  # after closing
        ("2026-10-17 11:00", 1, "hours", "2026-10-19 10:00"),  # ordinary Saturday
        ("2026-02-13 15:00", 4, "hours", "2026-02-14 11:00"),  # 调休 Saturday before Spring Fest.
        ("2026-02-14 15:00", 4, "hours", "2026-02-24 11:00"),
    ],
)
def test_office_hours_counting(start: str, amount: int, unit: str, expected: str) -> None:
    assert due(at(start), amount, unit, office_hours=OFFICE) == at(expected)


def test_clock_units_count_elapsed_time_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # Chinese calendar, but a zone with summer time
    start = datetime(2026, 3, 29, 1, 0, tzinfo=berlin)  # clocks jump 02:00 → 03:00
    result = compute_due(start, Duration(2, "hours"), CAL, berlin)
    assert result.due.astimezone(berlin) == datetime(2026, 3, 29, 4, 0, tzinfo=berlin)
    assert result.due - start == timedelta(hours=2)
    back = before_due(result.due, Duration(2, "hours"), CAL, berlin)
    assert back == start


# -- zero amount --------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["minutes", "hours", "calendar_days", "working_days"])
def test_zero_amount_is_immediate(unit: str) -> None:
    start = at("2026-10-03 22:15")
    assert due(start, 0, unit) == start
    assert due(start, 0, unit, office_hours=OFFICE) == start


# -- pauses ---------------------------------------------------------------------------------


def test_whole_paused_working_days_are_added_back() -> None:
    start = at("2026-10-12 10:00")  # Monday
    assert due(start, 5, "working_days") == close_of("2026-10-19")
    pause = Pause(at("2026-10-13 15:00"), at("2026-10-16 10:00"))  # wholly covers 14 and 15
    assert due(start, 5, "working_days", pauses=[pause]) == close_of("2026-10-21")


def test_pause_across_national_day_adds_back_only_working_days() -> None:
    start = at("2026-09-28 10:00")
    assert due(start, 5, "working_days") == close_of("2026-10-10")
    # wholly paused: 30 Sep and 1–8 Oct; of these only 30 Sep and 8 Oct are working days
    pause = Pause(at("2026-09-29 12:00"), at("2026-10-09 09:00"))
    result = compute_due(start, Duration(5, "working_days"), CAL, SH, pauses=[pause])
    assert result.due == close_of("2026-10-13")
    assert any("paused" in line for line in result.explanation)


def test_pause_boundaries_at_midnight() -> None:
    start = at("2026-10-12 10:00")
    exact = Pause(at("2026-10-13 00:00"), at("2026-10-14 00:00"))  # exactly Tuesday
    assert due(start, 1, "working_days", pauses=[exact]) == close_of("2026-10-14")
    short = Pause(at("2026-10-13 00:00"), at("2026-10-13 23:59"))  # not the whole day
    assert due(start, 1, "working_days", pauses=[short]) == close_of("2026-10-13")


def test_pause_after_the_deadline_changes_nothing() -> None:
    start = at("2026-10-12 10:00")
    late = Pause(at("2026-10-26 00:00"), at("2026-10-30 00:00"))
    assert due(start, 5, "working_days", pauses=[late]) == close_of("2026-10-19")
    assert due(start, 2, "hours", pauses=[late]) == at("2026-10-12 12:00")


def test_several_pauses_in_any_order() -> None:
    start = at("2026-10-12 10:00")
    pauses = [
        Pause(at("2026-10-19 00:00"), at("2026-10-20 00:00")),
        Pause(at("2026-10-14 00:00"), at("2026-10-15 00:00")),
    ]
    # counted: 13, 15, 16, 20, 21
    assert due(start, 5, "working_days", pauses=pauses) == close_of("2026-10-21")


def test_pause_on_calendar_days() -> None:
    start = at("2026-10-12 10:00")
    pause = Pause(at("2026-10-13 00:00"), at("2026-10-15 00:00"))
    assert due(start, 7, "calendar_days", pauses=[pause]) == close_of("2026-10-21")


def test_pause_adds_paused_time_to_clock_units() -> None:
    start = at("2026-10-01 08:00")
    pause = Pause(at("2026-10-01 10:00"), at("2026-10-01 13:00"))
    assert due(start, 12, "hours", pauses=[pause]) == at("2026-10-01 23:00")
    overlapping = [pause, Pause(at("2026-10-01 12:00"), at("2026-10-01 14:00"))]
    assert due(start, 12, "hours", pauses=overlapping) == at("2026-10-02 00:00")


def test_pause_inside_office_hours_adds_office_time_only() -> None:
    start = at("2026-10-12 09:00")
    # 7 office hours run on Monday before the pause; the last hour runs from Tuesday 10:00
    pause = Pause(at("2026-10-12 16:00"), at("2026-10-13 10:00"))
    assert due(start, 8, "hours", office_hours=OFFICE, pauses=[pause]) == at("2026-10-13 11:00")


def test_pause_starting_before_the_start() -> None:
    pause = Pause(at("2026-10-12 08:00"), at("2026-10-12 11:00"))
    assert due(at("2026-10-12 10:00"), 30, "minutes", pauses=[pause]) == at("2026-10-12 11:30")


# -- extension ------------------------------------------------------------------------------


def test_extension_counts_from_the_original_due() -> None:
    start = at("2026-10-12 10:00")
    assert due(start, 10, "working_days") == close_of("2026-10-26")
    extended = due(start, 10, "working_days", extension=Duration(10, "working_days"))
    assert extended == close_of("2026-11-09")
    assert extended == due(start, 20, "working_days")


def test_extension_in_another_unit() -> None:
    start = at("2026-10-12 10:00")
    result = compute_due(
        start, Duration(3, "hours"), CAL, SH, extension=Duration(1, "working_days")
    )
    assert result.due == close_of("2026-10-13")
    assert any(line.startswith("Extension: 1 working day") for line in result.explanation)
    assert due(start, 1, "working_days", extension=Duration(12, "hours")) == datetime.combine(
        date(2026, 10, 14), time(11, 59, 59, 999999), SH
    )


@needs_provisional_2027
def test_extension_across_year_end_is_provisional() -> None:
    result = compute_due(
        at("2026-12-10 10:00"),
        Duration(10, "working_days"),
        CAL,
        SH,
        extension=Duration(10, "working_days"),
    )
    assert result.provisional
    assert result.due == close_of("2027-01-08")  # 24 Dec, then 25, 28–31 Dec and 4–8 Jan


# -- invalid inputs ------------------------------------------------------------------------


def test_naive_start_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_due(datetime(2026, 10, 1, 10), Duration(1, "hours"), CAL, SH)


@pytest.mark.parametrize(
    ("amount", "unit"),
    [(-1, "hours"), (1, "weeks"), (1.5, "hours"), (True, "hours"), ("3", "working_days")],
)
def test_bad_durations_are_rejected(amount: object, unit: str) -> None:
    with pytest.raises(ValueError):
        Duration(amount, unit)  # type: ignore[arg-type]


def test_bad_pauses_and_office_hours_are_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        Pause(datetime(2026, 10, 1), at("2026-10-02 00:00"))
    with pytest.raises(ValueError, match="before"):
        Pause(at("2026-10-02 00:00"), at("2026-10-01 00:00"))
    with pytest.raises(ValueError):
        OfficeHours(time(17), time(9))
    with pytest.raises(ValueError):
        compute_due(at("2026-10-01 10:00"), (1, "hours"), CAL, SH)  # type: ignore[arg-type]


# -- notification and reminders --------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        ("2026-10-12 10:00", "2026-10-12 10:00"),  # inside office hours
        ("2026-10-12 07:30", "2026-10-12 09:00"),  # before opening
        ("2026-10-09 20:00", "2026-10-10 09:00"),  # Friday night → 调休 Saturday
        ("2026-10-01 10:00", "2026-10-08 09:00"),  # holiday
        ("2026-10-12 17:00", "2026-10-13 09:00"),  # closing time is outside
        ("2026-12-31 18:00", "2027-01-04 09:00"),  # into the provisional year
    ],
)
def test_notify_at_waits_for_office_hours(received: str, expected: str) -> None:
    notified = notify_at(at(received), OFFICE, False, CAL, SH)
    assert notified == at(expected)
    assert notified.tzinfo is UTC


def test_notify_at_with_24_hour_duty_is_immediate() -> None:
    assert notify_at(at("2026-10-01 03:00"), OFFICE, True, CAL, SH) == at("2026-10-01 03:00")
    assert notify_at(at("2026-10-01 03:00"), None, False, CAL, SH) == at("2026-10-01 03:00")
    with pytest.raises(ValueError):
        notify_at(datetime(2026, 10, 1, 3), OFFICE, False, CAL, SH)


def test_notification_delay_does_not_change_the_day_count() -> None:
    received = at("2026-09-30 22:00")
    assert notify_at(received, OFFICE, False, CAL, SH) == at("2026-10-08 09:00")
    assert due(received, 3, "working_days") == close_of("2026-10-10")


def test_before_due() -> None:
    deadline = close_of("2026-10-10")
    assert before_due(deadline, Duration(1, "working_days"), CAL, SH) == close_of("2026-10-09")
    assert before_due(deadline, Duration(2, "working_days"), CAL, SH) == close_of("2026-10-08")
    assert before_due(deadline, Duration(2, "hours"), CAL, SH) == deadline - timedelta(hours=2)
    assert before_due(deadline, Duration(3, "calendar_days"), CAL, SH) == close_of("2026-10-07")


# -- properties ------------------------------------------------------------------------------

starts = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 6, 30), timezones=st.just(SH)
)
units = st.sampled_from(["minutes", "hours", "calendar_days", "working_days"])


@settings(max_examples=150, deadline=None)
@given(start=starts, amount=st.integers(0, 60), unit=units, office=st.booleans())
def test_due_is_never_before_start(start: datetime, amount: int, unit: str, office: bool) -> None:
    office_hours = OFFICE if office else None
    assert due(start, amount, unit, office_hours=office_hours) >= start


@settings(max_examples=150, deadline=None)
@given(start=starts, a=st.integers(0, 40), b=st.integers(0, 40), unit=units, office=st.booleans())
def test_due_is_monotonic_in_amount(
    start: datetime, a: int, b: int, unit: str, office: bool
) -> None:
    low, high = sorted((a, b))
    office_hours = OFFICE if office else None
    assert due(start, low, unit, office_hours=office_hours) <= due(
        start, high, unit, office_hours=office_hours
    )


@settings(max_examples=100, deadline=None)
@given(start=starts, n=st.integers(0, 20), m=st.integers(0, 20))
def test_working_day_extension_equals_longer_count(start: datetime, n: int, m: int) -> None:
    if n == 0:
        return  # a zero count is "immediate", not the close of a day
    extended = due(start, n, "working_days", extension=Duration(m, "working_days"))
    assert extended == due(start, n + m, "working_days")


@settings(max_examples=100, deadline=None)
@given(
    first=starts,
    hours=st.lists(st.integers(0, 24 * 20), min_size=1, max_size=12),
    amount=st.integers(0, 30),
    unit=units,
)
def test_due_for_starts_is_compute_due_for_each_start(
    first: datetime, hours: list[int], amount: int, unit: str
) -> None:
    """Many starts, some on one local day: each answer is the one compute_due gives it."""
    duration = Duration(amount, unit)  # type: ignore[arg-type]
    reach = due_for_starts(duration, CAL, SH)
    for offset in hours:
        start = first + timedelta(hours=offset)
        assert reach(start) == compute_due(start, duration, CAL, SH).due
