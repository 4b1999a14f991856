"""Working-day calendar: official data, 调休, provisional years, overrides, range errors."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from scheduler.calendar import (
    DEFAULT_OVERRIDE_FILE,
    CalendarOutOfRange,
    HolidayOverrideError,
    HolidayOverrides,
    WorkingCalendar,
)

TODAY = date(2026, 11, 25)
# These tests were written while chinesecalendar's data ended with 2026; once an update ships 2027
# the provisional-2027 expectations no longer apply.
needs_provisional_2027 = pytest.mark.skipif(
    WorkingCalendar(today=TODAY).is_official_year(2027),
    reason="chinesecalendar now ships official 2027 data",
)


@pytest.fixture
def cal() -> WorkingCalendar:
    return WorkingCalendar(today=TODAY)


def test_agrees_with_chinesecalendar_for_every_official_day(cal: WorkingCalendar) -> None:
    day = date(2004, 1, 1)
    while day.year <= 2026:
        assert cal.is_working_day(day) == chinese_calendar.is_workday(day), day
        assert not cal.is_provisional(day)
        day += timedelta(days=1)


def test_spring_festival_2026(cal: WorkingCalendar) -> None:
    holiday = [date(2026, 2, 15) + timedelta(days=i) for i in range(9)]  # 15–23 Feb
    assert [cal.is_working_day(d) for d in holiday] == [False] * 9
    assert cal.day_info(date(2026, 2, 17)).name == "Spring Festival"
    # 调休: Saturday 14 Feb and Saturday 28 Feb are working days
    for d in (date(2026, 2, 14), date(2026, 2, 28)):
        assert d.weekday() == 5
        assert cal.is_working_day(d)
        assert cal.day_info(d).kind == "adjusted_workday"
    assert cal.next_working_day(date(2026, 2, 13)) == date(2026, 2, 14)
    assert cal.next_working_day(date(2026, 2, 14)) == date(2026, 2, 24)


def test_national_day_2026(cal: WorkingCalendar) -> None:
    assert not any(cal.is_working_day(date(2026, 10, d)) for d in range(1, 8))
    assert cal.is_working_day(date(2026, 10, 10))  # Saturday 调休
    assert cal.is_working_day(date(2026, 9, 20))  # Sunday 调休
    assert not cal.is_working_day(date(2026, 10, 11))  # ordinary Sunday
    assert cal.day_info(date(2026, 10, 11)).kind == "weekend"


def test_add_working_days_skips_the_day_of_receipt(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
    assert cal.add_working_days(date(2026, 10, 3), 3) == date(2026, 10, 10)
    assert cal.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert cal.add_working_days(date(2026, 9, 30), 0) == date(2026, 9, 30)
    assert cal.add_working_days(date(2026, 10, 8), -1) == date(2026, 9, 30)
    assert cal.add_working_days(date(2026, 10, 12), -2) == date(2026, 10, 9)


def test_next_working_day_inclusive(cal: WorkingCalendar) -> None:
    assert cal.next_working_day(date(2026, 10, 9), inclusive=True) == date(2026, 10, 9)
    assert cal.next_working_day(date(2026, 10, 9)) == date(2026, 10, 10)
    assert cal.next_working_day(date(2026, 10, 1), inclusive=True) == date(2026, 10, 8)


def test_count_working_days(cal: WorkingCalendar) -> None:
    assert cal.count_working_days(date(2026, 10, 1), date(2026, 10, 11)) == 3  # 8, 9 and 调休 10
    assert cal.count_working_days(date(2026, 10, 5), date(2026, 10, 4)) == 0
    assert cal.count_working_days(date(2026, 10, 12), date(2026, 10, 16)) == 5


@needs_provisional_2027
def test_provisional_years_use_rule_based_holidays(cal: WorkingCalendar) -> None:
    assert not cal.is_official_year(2027)
    new_year = date(2027, 1, 1)
    assert cal.is_provisional(new_year)
    assert not cal.is_working_day(new_year)
    assert cal.day_info(new_year).provisional
    assert "provisional" in cal.day_info(new_year).describe()
    assert not cal.is_working_day(date(2027, 10, 1))  # National Day by rule
    assert cal.is_working_day(date(2027, 1, 4))  # ordinary Monday
    assert not cal.is_working_day(date(2027, 1, 9))  # ordinary Saturday
    assert cal.any_provisional(date(2026, 12, 30), date(2027, 1, 2))
    assert not cal.any_provisional(date(2026, 12, 1), date(2026, 12, 31))
    # the year end: the next working day after 31 Dec 2026 is provisional 4 Jan 2027
    assert cal.add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 4)


def test_out_of_range_fails_loudly(cal: WorkingCalendar) -> None:
    with pytest.raises(CalendarOutOfRange, match="2003"):
        cal.is_working_day(date(2003, 12, 31))
    assert cal.last_year == 2028
    cal.is_working_day(date(2028, 12, 31))
    with pytest.raises(CalendarOutOfRange, match="2029"):
        cal.is_working_day(date(2029, 1, 1))
    with pytest.raises(CalendarOutOfRange):
        cal.add_working_days(date(2028, 12, 20), 30)


def test_horizon_follows_today() -> None:
    assert WorkingCalendar(today=date(2030, 1, 1)).last_year == 2032
    assert WorkingCalendar(today=date(2030, 1, 1), provisional_years_ahead=0).last_year == 2030


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.toml"
    path.write_text(text, encoding="utf-8")
    return path


@needs_provisional_2027
def test_override_file_adds_days_to_provisional_year(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'holidays = [2027-03-03, "2027-03-10..2027-03-11", {date = 2027-03-17, name = "Test"}]\n'
        "working_days = [2027-03-06]\n",
    )
    cal = WorkingCalendar.from_file(path, today=TODAY)
    assert not cal.is_working_day(date(2027, 3, 3))
    assert not cal.is_working_day(date(2027, 3, 10))
    assert not cal.is_working_day(date(2027, 3, 11))
    assert cal.day_info(date(2027, 3, 17)).name == "Test"
    assert cal.is_working_day(date(2027, 3, 6))  # Saturday made a working day
    assert cal.day_info(date(2027, 3, 6)).kind == "adjusted_workday"
    assert cal.is_provisional(date(2027, 3, 6))  # one override does not make the year official


def test_official_year_from_override_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "official_years = [2027, 2031]\n"
        'holidays = [{start = 2027-10-01, end = 2027-10-07, name = "国庆节"}]\n'
        "working_days = [2027-10-09]\n",
    )
    cal = WorkingCalendar.from_file(path, today=TODAY)
    assert cal.is_official_year(2027)
    assert not cal.is_provisional(date(2027, 5, 1))
    # official: only weekends and the file's holidays — the rule-based 1 May holiday is gone
    assert cal.is_working_day(date(2027, 1, 1))  # a Friday, not listed in the file
    assert not cal.is_working_day(date(2027, 10, 4))
    assert cal.is_working_day(date(2027, 10, 9))
    assert cal.add_working_days(date(2027, 9, 30), 1) == date(2027, 10, 8)
    # an official year stretches the horizon; the gap years are provisional
    assert cal.last_year == 2031
    assert cal.is_provisional(date(2030, 6, 1))


def test_override_can_correct_library_year(tmp_path: Path) -> None:
    path = _write(tmp_path, "holidays = [2026-12-31]\nworking_days = [2026-10-11]\n")
    cal = WorkingCalendar.from_file(path, today=TODAY)
    assert not cal.is_working_day(date(2026, 12, 31))
    assert cal.is_working_day(date(2026, 10, 11))
    assert not cal.is_provisional(date(2026, 12, 31))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("holidays = [2027-13-01]\n", "not valid TOML"),
        ('holidays = ["tomorrow"]\n', "holidays\\[0\\]"),
        ('working_days = ["2027-03-05..2027-03-01"]\n', "ends before it starts"),
        ("holidays = [2027-03-05]\nworking_days = [2027-03-05]\n", "both"),
        ("officialyears = [2027]\n", "unknown key"),
        ('official_years = ["2027"]\n', "official_years"),
        ("holidays = [{day = 2027-03-05}]\n", "unknown key"),
    ],
)
def test_bad_override_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(HolidayOverrideError, match=message) as info:
        HolidayOverrides.load(path)
    assert str(path) in str(info.value)


def test_missing_override_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(HolidayOverrideError, match="not found"):
        WorkingCalendar.from_file(tmp_path / "nope.toml")


def test_shipped_override_file_loads() -> None:
    assert DEFAULT_OVERRIDE_FILE.exists()
    overrides = HolidayOverrides.load(DEFAULT_OVERRIDE_FILE)
    assert isinstance(overrides.official_years, frozenset)


def test_from_settings_uses_configured_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "holidays = [2026-12-31]\n")

    class FakeSettings:
        holiday_override_file = path

    cal = WorkingCalendar.from_settings(FakeSettings(), today=TODAY)
    assert not cal.is_working_day(date(2026, 12, 31))
