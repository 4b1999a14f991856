"""Working-day calendar: Chinese statutory holidays and 调休 working weekends.

Sources, in order of authority for a given year:

1. the override file (config/holiday_overrides.toml): extra holidays and working days for any
   year, and `official_years` — years whose State Council notice the file holds in full;
2. the `chinesecalendar` package (official data for the years it ships, 2004–2026 at 1.11);
3. for later years with no official data, a *provisional* calendar: the `holidays` package's
   rule-based China calendar plus Saturdays/Sundays. Every answer for such a year is flagged
   provisional so deadlines built on it can be shown as such and recomputed later.

Dates before the first official year, or beyond the provisional horizon (the current year plus
`provisional_years_ahead`, or the last official year if later) raise `CalendarOutOfRange`: we
never silently guess.

A year is official or provisional as a whole: a few override dates for a year do not make the
rest of that year official — only `official_years` (or library data) does.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import chinese_calendar
import holidays as holidays_lib
from chinese_calendar import constants as cc_constants

DEFAULT_OVERRIDE_FILE = Path(__file__).resolve().parent.parent / "config" / "holiday_overrides.toml"

DayKind = Literal["workday", "weekend", "holiday", "adjusted_workday"]

_SATURDAY = 5


class CalendarOutOfRange(LookupError):
    """A date lies outside every source of holiday data the calendar has."""


class HolidayOverrideError(ValueError):
    """The override file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class DayInfo:
    day: date
    working: bool
    kind: DayKind
    name: str | None
    provisional: bool

    def describe(self) -> str:
        """Short English description used in deadline explanations."""
        text = {
            "workday": "working day",
            "weekend": "weekend",
            "holiday": "holiday",
            "adjusted_workday": "adjusted working day (调休)",
        }[self.kind]
        if self.name and self.kind == "holiday":
            text = f"{text} ({self.name})"
        if self.provisional:
            text += ", provisional"
        return text


@dataclass(frozen=True)
class HolidayOverrides:
    """Contents of the override file."""

    holidays: dict[date, str] = field(default_factory=dict)
    working_days: frozenset[date] = frozenset()
    official_years: frozenset[int] = frozenset()

    @classmethod
    def load(cls, path: Path) -> HolidayOverrides:
        """Read an override file.

        Format (TOML)::

            official_years = [2027]
            holidays = [2027-01-01, "2027-02-06..2027-02-13", {date = 2027-10-01, name = "国庆节"}]
            working_days = [2027-02-20]

        Entries are TOML dates, ISO strings, inclusive ranges "A..B", or tables with
        `date` (or `start`/`end`) and an optional `name`.
        """
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise HolidayOverrideError(f"{path}: holiday override file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise HolidayOverrideError(f"{path}: not valid TOML: {exc}") from exc
        unknown = set(data) - {"official_years", "holidays", "working_days"}
        if unknown:
            raise HolidayOverrideError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
        hols: dict[date, str] = {}
        for index, entry in enumerate(data.get("holidays", [])):
            for day, name in _expand_entry(entry, f"{path}: holidays[{index}]"):
                hols[day] = name or "holiday (override)"
        work: set[date] = set()
        for index, entry in enumerate(data.get("working_days", [])):
            work.update(day for day, _ in _expand_entry(entry, f"{path}: working_days[{index}]"))
        clash = sorted(set(hols) & work)
        if clash:
            raise HolidayOverrideError(
                f"{path}: {clash[0].isoformat()} is listed both as a holiday and a working day"
            )
        years = data.get("official_years", [])
        if not isinstance(years, list) or not all(isinstance(y, int) for y in years):
            raise HolidayOverrideError(f"{path}: official_years must be a list of integers")
        return cls(holidays=hols, working_days=frozenset(work), official_years=frozenset(years))


def _parse_day(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise HolidayOverrideError(f"{where}: {value!r} is not a date (use YYYY-MM-DD)")


def _expand_entry(entry: Any, where: str) -> list[tuple[date, str | None]]:
    name: str | None = None
    if isinstance(entry, dict):
        unknown = set(entry) - {"date", "start", "end", "name"}
        if unknown:
            raise HolidayOverrideError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        name = entry.get("name")
        if "date" in entry:
            first = last = _parse_day(entry["date"], f"{where}.date")
        elif "start" in entry and "end" in entry:
            first = _parse_day(entry["start"], f"{where}.start")
            last = _parse_day(entry["end"], f"{where}.end")
        else:
            raise HolidayOverrideError(f"{where}: needs `date` or both `start` and `end`")
    elif isinstance(entry, str) and ".." in entry:
        left, right = entry.split("..", 1)
        first, last = _parse_day(left, where), _parse_day(right, where)
    else:
        first = last = _parse_day(entry, where)
    if last < first:
        raise HolidayOverrideError(f"{where}: range ends before it starts")
    return [(first + timedelta(days=i), name) for i in range((last - first).days + 1)]


def _library_years() -> frozenset[int]:
    """Years for which chinesecalendar ships official data (grows when the package is updated)."""
    return frozenset(d.year for d in cc_constants.holidays) | frozenset(
        d.year for d in cc_constants.workdays
    )


@dataclass(frozen=True)
class _Year:
    days: dict[date, DayInfo]
    provisional: bool


class WorkingCalendar:
    """Answers "is this a working day?" for mainland China, with per-year caching.

    Pure once built: the horizon is fixed from `today` at construction, and the override file is
    read once.
    """

    def __init__(
        self,
        overrides: HolidayOverrides | None = None,
        *,
        today: date | None = None,
        provisional_years_ahead: int = 2,
    ) -> None:
        self._overrides = overrides or HolidayOverrides()
        self._library_years = _library_years()
        self._official_years = self._library_years | self._overrides.official_years
        self.first_year = min(self._official_years)
        current = (today or date.today()).year
        self.last_year = max(max(self._official_years), current + provisional_years_ahead)
        self._years: dict[int, _Year] = {}

    @classmethod
    def from_file(cls, path: Path | None = None, **kwargs: Any) -> WorkingCalendar:
        """Calendar with the override file at `path` (default: the shipped one, if present)."""
        if path is None:
            path = DEFAULT_OVERRIDE_FILE
            if not path.exists():
                return cls(**kwargs)
        return cls(HolidayOverrides.load(path), **kwargs)

    @classmethod
    def from_settings(cls, settings: Any = None, **kwargs: Any) -> WorkingCalendar:
        """Calendar using `holiday_override_file` from config.settings (or the shipped file)."""
        if settings is None:
            from config.settings import get_settings

            settings = get_settings()
        return cls.from_file(getattr(settings, "holiday_override_file", None), **kwargs)

    # -- queries ---------------------------------------------------------------------------

    def day_info(self, d: date) -> DayInfo:
        return self._year(d.year).days[d]

    def is_working_day(self, d: date) -> bool:
        return self._year(d.year).days[d].working

    def is_provisional(self, d: date) -> bool:
        return self._year(d.year).provisional

    def any_provisional(self, first: date, last: date) -> bool:
        """True if any date in [first, last] comes from the provisional calendar."""
        lo, hi = min(first, last), max(first, last)
        return any(self._year(y).provisional for y in range(lo.year, hi.year + 1))

    def is_official_year(self, year: int) -> bool:
        return year in self._official_years

    def next_working_day(self, d: date, *, inclusive: bool = False) -> date:
        """First working day after `d` (or `d` itself when `inclusive` and `d` is working)."""
        day = d if inclusive else d + timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, d: date, n: int) -> date:
        """The n-th working day after `d`; `d` itself is not counted (n=0 returns `d`).

        A negative n counts backwards: the |n|-th working day before `d`.
        """
        step = timedelta(days=1 if n >= 0 else -1)
        day, remaining = d, abs(n)
        while remaining:
            day += step
            if self.is_working_day(day):
                remaining -= 1
        return day

    def count_working_days(self, first: date, last: date) -> int:
        """Number of working days in the inclusive range [first, last] (0 if last < first)."""
        count, day = 0, first
        while day <= last:
            count += self.is_working_day(day)
            day += timedelta(days=1)
        return count

    # -- construction of one year ------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        if year < self.first_year or year > self.last_year:
            raise CalendarOutOfRange(
                f"no holiday data for {year}: official data covers "
                f"{min(self._official_years)}–{max(self._official_years)}, provisional counting "
                f"reaches {self.last_year}; add the year to the holiday override file"
            )
        built = self._build_year(year)
        self._years[year] = built
        return built

    def _build_year(self, year: int) -> _Year:
        overrides = self._overrides
        if year in overrides.official_years:
            base = self._weekend_only_year(year)  # the override file holds every exception
            provisional = False
        elif year in self._library_years:
            base = self._library_year(year)
            provisional = False
        else:
            base = self._provisional_year(year)
            provisional = True
        days: dict[date, DayInfo] = {}
        for d, (kind, name) in base.items():
            if d in overrides.holidays:
                kind, name = "holiday", overrides.holidays[d]
            elif d in overrides.working_days:
                kind = "adjusted_workday" if d.weekday() >= _SATURDAY else "workday"
                name = None
            working = kind in ("workday", "adjusted_workday")
            days[d] = DayInfo(d, working, kind, name, provisional)
        return _Year(days, provisional)

    @staticmethod
    def _all_days(year: int) -> list[date]:
        first = date(year, 1, 1)
        return [first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days)]

    def _weekend_only_year(self, year: int) -> dict[date, tuple[DayKind, str | None]]:
        return {
            d: ("weekend" if d.weekday() >= _SATURDAY else "workday", None)
            for d in self._all_days(year)
        }

    def _library_year(self, year: int) -> dict[date, tuple[DayKind, str | None]]:
        result: dict[date, tuple[DayKind, str | None]] = {}
        for d in self._all_days(year):
            on_holiday, name = chinese_calendar.get_holiday_detail(d)
            weekend = d.weekday() >= _SATURDAY
            kind: DayKind
            if d in cc_constants.workdays:
                kind = "adjusted_workday" if weekend else "workday"
            elif d in cc_constants.holidays:
                kind = "holiday"
            else:
                kind = "weekend" if weekend else "workday"
            result[d] = (kind, name if on_holiday and kind == "holiday" else None)
        return result

    def _provisional_year(self, year: int) -> dict[date, tuple[DayKind, str | None]]:
        # Rule-based holidays; substituted working weekends are known to the `holidays` package
        # only for years it has official data for, which we still treat as provisional.
        cn = holidays_lib.country_holidays("CN", years=year)
        working_weekends = {d for d in getattr(cn, "weekend_workdays", set()) if d.year == year}
        result: dict[date, tuple[DayKind, str | None]] = {}
        for d in self._all_days(year):
            kind: DayKind
            name = None
            if d in cn:
                kind, name = "holiday", cn.get(d)
            elif d in working_weekends:
                kind = "adjusted_workday"
            else:
                kind = "weekend" if d.weekday() >= _SATURDAY else "workday"
            result[d] = (kind, name)
        return result
