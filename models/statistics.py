"""Statistics of a period: what the dashboard (/desk/stats), the weekly/monthly reports and the
API show — one computation, raw keys only (states, stages, channels, category ids, department
and staff ids); labels are the caller's business.

    stats = await compute_statistics(
        StatsQuery(start, end, now=now, department_id=None), staff=viewer, profile=profile,
        calendar=calendar, tz=tz,
    )

`staff=None` means the system (the scheduled reports): every case. Otherwise the cases are the
viewer's `models.notifications.case_scope` — the one scope the chat's /cases and the desk list
use — so a department head counts their own department's cases only. `summarise` is pure: it
turns plain rows into a `Statistics`; `compute_statistics` reads the rows.

Figures, for a period [start, end) of submission instants unless said otherwise:

* counts of complaints filed by state, category, channel and lead department (None: 未分派);
* on-time rate per stage: a stage deadline is *settled* in the period when it was done in the
  period (on time when done by its due instant) or, not done, fell due in the period before
  `now` (late). Complainant-side stages (survey reminder, no-response close) are not counted;
* the overdue list at `now`: open cases, clock running, with a stage deadline past due and not
  done — never a complainant-side stage and never a case whose survey is answered;
* average handling time in working days: complaints resolved in the period, working days from
  the day after submission to the day of resolution (local dates, the holiday calendar);
* satisfaction: survey answers given in the period — averages, bands (profile's bands), and per
  department and handler; unanswered surveys counted apart;
* monthly trend: filed and resolved per calendar month, the twelve months ending with the
  period's last month;
* repeat complainants: the same person (complainant identity, or the same phone on any
  channel) with two or more complaints filed in the period;
* complaints per respondent staff member per calendar year (every year the period touches,
  counted over the whole year) with the profile's conduct consequence (models.conduct).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import Tortoise
from tortoise.expressions import Q

from config.profiles import Profile
from models.conduct import conduct_lines  # the profile's consequence rule
from models.entities import Complainant, Complaint, Department, Staff, SurveyResponse
from models.notifications import case_scope, scope_q
from models.workflow import CLOCK_RUNNING_STATES, OPEN_STATES, State
from scheduler.calendar import CalendarOutOfRange, WorkingCalendar

# Stages where the complainant, not the organisation, is to act: never late, never overdue.
COMPLAINANT_STAGES = frozenset({"survey_reminder", "auto_close"})
# A refused, withdrawn or not yet accepted complaint counts against nobody (models.conduct).
NOT_COUNTED_FOR_STAFF = frozenset({State.REFUSED, State.WITHDRAWN, State.SUBMITTED, State.DRAFT})
TREND_MONTHS = 12
# The longest period a viewer may ask for: three years of rows is what one page reads at once.
MAX_PERIOD_DAYS = 3 * 366


@dataclass(frozen=True)
class StatsQuery:
    start: datetime  # aware, inclusive
    end: datetime  # aware, exclusive
    now: datetime  # aware: "overdue" and "late" are judged at this instant
    department_id: int | None = None  # leading or co-handling


@dataclass(frozen=True)
class Count:
    key: str | None  # a state, category id, channel, stage; None: none (未分派, 未分类)
    count: int


@dataclass(frozen=True)
class IdCount:
    """Complaints of one department (by id; none: not assigned yet)."""

    id: int | None  # a department or staff id; None: none (未分派)
    name: str | None
    count: int


@dataclass(frozen=True)
class StageRate:
    stage: str
    settled: int
    on_time: int

    @property
    def rate(self) -> float | None:
        return self.on_time / self.settled if self.settled else None


@dataclass(frozen=True)
class OverdueCase:
    """An open case past a stage deadline now: the earliest such stage."""

    complaint_id: int
    number: str
    stage: str
    due: datetime
    state: str
    department_id: int | None
    department: str | None
    handler: str | None


@dataclass(frozen=True)
class Satisfaction:
    """Survey answers (0–10) of a department or handler (`key`, their id), or of all."""

    key: int | None  # a department or staff id (None: none), or None for the whole
    name: str | None
    answers: int
    average_result: float | None
    average_attitude: float | None


@dataclass(frozen=True)
class MonthPoint:
    month: str  # YYYY-MM
    filed: int
    resolved: int


@dataclass(frozen=True)
class RepeatComplainant:
    """A person with two or more complaints in the period, masked, and those complaints."""

    label: str  # masked: the first character of a name, or "#<id>"
    count: int
    numbers: tuple[str, ...]


@dataclass(frozen=True)
class RespondentLine:
    year: int
    staff_id: int
    staff_name: str
    count: int
    consequence: str | None  # the profile's words for that count (conduct), else None


@dataclass(frozen=True)
class PeriodComplaint:
    """One complaint of the period, for the report's full list (no identity)."""

    number: str
    submitted_at: datetime
    category: str | None
    channel: str
    state: str
    department: str | None
    handler: str | None
    resolved_at: datetime | None
    closed_at: datetime | None


@dataclass
class Statistics:
    query: StatsQuery
    total: int = 0
    by_state: list[Count] = field(default_factory=list)
    by_category: list[Count] = field(default_factory=list)
    by_channel: list[Count] = field(default_factory=list)
    by_department: list[IdCount] = field(default_factory=list)
    stages: list[StageRate] = field(default_factory=list)
    overdue: list[OverdueCase] = field(default_factory=list)
    resolved: int = 0
    average_working_days: float | None = None
    satisfaction: Satisfaction = field(
        default_factory=lambda: Satisfaction(None, None, 0, None, None)
    )
    no_response: int = 0
    result_bands: list[Count] = field(default_factory=list)  # unsatisfied / neutral / satisfied
    attitude_bands: list[Count] = field(default_factory=list)
    satisfaction_by_department: list[Satisfaction] = field(default_factory=list)
    satisfaction_by_handler: list[Satisfaction] = field(default_factory=list)
    trend: list[MonthPoint] = field(default_factory=list)
    repeat_complainants: list[RepeatComplainant] = field(default_factory=list)
    respondents: list[RespondentLine] = field(default_factory=list)
    complaints: list[PeriodComplaint] = field(default_factory=list)

    @property
    def resolution_rate(self) -> StageRate | None:
        return next((s for s in self.stages if s.stage == "resolution"), None)

    @property
    def settled(self) -> int:
        return sum(s.settled for s in self.stages)

    @property
    def on_time(self) -> int:
        return sum(s.on_time for s in self.stages)

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.settled if self.settled else None


# -- pure helpers ------------------------------------------------------------------------------


def when(value: Any) -> datetime | None:
    """A stored instant as an aware datetime (ISO text in JSON, naive UTC on some backends)."""
    if value is None or value == "":
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ranked(counter: Mapping[Any, int]) -> list[tuple[Any, int]]:
    return sorted(
        counter.items(), key=lambda item: (-item[1], "" if item[0] is None else str(item[0]))
    )


def _counts(values: Iterable[str | None]) -> list[Count]:
    return [Count(k, n) for k, n in _ranked(Counter(values))]


def _average(values: Sequence[int]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def mask_label(name: str | None, person_id: int | None, *, reveal: bool) -> str:
    """A repeat complainant as a manager may see them: the first character of the name and the
    person's number for supervisors (`reveal`), the number only for everyone else."""
    ident = f"#{person_id}" if person_id is not None else "#?"
    if not reveal or not name:
        return ident
    return f"{name[0]}{'*' * max(1, len(name) - 1)}（{ident}）"


def _digits(phone: str | None) -> str | None:
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    if len(digits) < 5:
        return None
    return digits[-11:]  # +86 138… and 138… are one person


def stage_entries(deadlines: Mapping[str, Any] | None) -> Iterable[tuple[str, dict[str, Any]]]:
    for stage, entry in (deadlines or {}).items():
        if isinstance(entry, dict) and "due" in entry and stage not in COMPLAINANT_STAGES:
            yield stage, entry


def working_days_taken(
    submitted: datetime, resolved: datetime, calendar: WorkingCalendar, tz: ZoneInfo
) -> int | None:
    """Working days from the day after submission to the day of resolution (same day: 0)."""
    first = submitted.astimezone(tz).date() + timedelta(days=1)
    last = resolved.astimezone(tz).date()
    try:
        return calendar.count_working_days(first, last)
    except CalendarOutOfRange:
        return None


def _month(instant: datetime, tz: ZoneInfo) -> str:
    return f"{instant.astimezone(tz):%Y-%m}"


def trend_months(end: datetime, tz: ZoneInfo, months: int = TREND_MONTHS) -> list[str]:
    """The `months` calendar months ending with the one holding the instant before `end`."""
    last = (end - timedelta(microseconds=1)).astimezone(tz).date().replace(day=1)
    found = []
    year, month = last.year, last.month
    for _ in range(months):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(found))


def month_start(month: str, tz: ZoneInfo) -> datetime:
    year, mon = (int(part) for part in month.split("-"))
    return datetime(year, mon, 1, tzinfo=tz)


def _satisfaction(
    key: int | None, name: str | None, answers: Sequence[Mapping[str, Any]]
) -> Satisfaction:
    return Satisfaction(
        key,
        name,
        len(answers),
        _average([a["result_score"] for a in answers if a["result_score"] is not None]),
        _average([a["attitude_score"] for a in answers if a["attitude_score"] is not None]),
    )


def _grouped_satisfaction(
    answers: Sequence[Mapping[str, Any]], column: str, names: Mapping[int, str]
) -> list[Satisfaction]:
    groups: dict[int | None, list[Mapping[str, Any]]] = defaultdict(list)
    for answer in answers:
        groups[answer[column]].append(answer)
    found = [_satisfaction(k, names.get(k) if k else None, v) for k, v in groups.items()]
    return sorted(found, key=lambda s: (-s.answers, s.name or ""))


def _repeats(
    filed: Sequence[Mapping[str, Any]], names: Mapping[int, str | None], *, reveal: bool
) -> list[RepeatComplainant]:
    """People with two or more complaints: linked by complainant identity or by phone."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    for row in filed:
        keys = [f"c{row['id']}"]
        if row["complainant_id"] is not None:
            keys.append(f"p{row['complainant_id']}")
        phone = _digits(row.get("contact_phone"))
        if phone:
            keys.append(f"t{phone}")
        for key in keys[1:]:
            union(keys[0], key)
        find(keys[0])
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in filed:
        groups[find(f"c{row['id']}")].append(row)
    found = []
    for rows in groups.values():
        if len(rows) < 2:
            continue
        people = sorted({r["complainant_id"] for r in rows if r["complainant_id"] is not None})
        person = people[0] if people else None
        name = next((names.get(p) for p in people if names.get(p)), None) or next(
            (r.get("contact_name") for r in rows if r.get("contact_name")), None
        )
        numbers = tuple(sorted(str(r["number"]) for r in rows))
        found.append(RepeatComplainant(mask_label(name, person, reveal=reveal), len(rows), numbers))
    return sorted(found, key=lambda r: (-r.count, r.numbers))


def summarise(
    query: StatsQuery,
    *,
    filed: Sequence[Mapping[str, Any]],
    active: Sequence[Mapping[str, Any]],
    open_rows: Sequence[Mapping[str, Any]],
    answered_ids: set[int],
    surveys: Sequence[Mapping[str, Any]],
    trend_rows: Sequence[Mapping[str, Any]],
    year_rows: Sequence[Mapping[str, Any]],
    department_names: Mapping[int, str],
    staff_names: Mapping[int, str],
    complainant_names: Mapping[int, str | None],
    profile: Profile,
    calendar: WorkingCalendar,
    tz: ZoneInfo,
    reveal_people: bool,
    lang: str = "zh_CN",
) -> Statistics:
    """The figures from plain rows (see the module docstring):

    filed: complaints submitted in the period (id, number, state, category, channel,
      lead_department_id, handler_id, complainant_id, contact_name, contact_phone,
      submitted_at, resolved_at, closed_at); active: complaints with a deadline possibly
      settled or a resolution in the period (id, deadlines, submitted_at, resolved_at);
    open_rows: open complaints with a deadline past `now` (id, number, state, deadlines,
      paused_at, lead_department_id, handler_id); answered_ids: complaints with an answered
      survey; surveys: answers given in the period (no_response, result_score, attitude_score,
      department_id, handler_id); trend_rows: submitted_at and resolved_at of the trend months;
      year_rows: target_staff_id, submitted_at, state of the calendar years the period touches.
    """
    start, end, now = query.start, query.end, query.now
    stats = Statistics(query, total=len(filed))
    stats.by_state = _counts(str(r["state"]) for r in filed)
    stats.by_category = _counts(r["category"] for r in filed)
    stats.by_channel = _counts(str(r["channel"]) for r in filed)
    stats.by_department = [
        IdCount(k, department_names.get(k) if k is not None else None, n)
        for k, n in _ranked(Counter(r["lead_department_id"] for r in filed))
    ]
    stats.complaints = sorted(
        (
            PeriodComplaint(
                str(r["number"]),
                when(r["submitted_at"]),  # type: ignore[arg-type]
                r["category"],
                str(r["channel"]),
                str(r["state"]),
                department_names.get(r["lead_department_id"]) if r["lead_department_id"] else None,
                staff_names.get(r["handler_id"]) if r["handler_id"] else None,
                when(r["resolved_at"]),
                when(r["closed_at"]),
            )
            for r in filed
        ),
        key=lambda c: (c.submitted_at, c.number),
    )

    settled: Counter[str] = Counter()
    on_time: Counter[str] = Counter()
    days: list[int] = []
    for row in active:
        for stage, entry in stage_entries(row["deadlines"]):
            due, done = when(entry["due"]), when(entry.get("done"))
            if due is None:
                continue
            if done is not None and start <= done < end:
                settled[stage] += 1
                on_time[stage] += done <= due
            elif done is None and start <= due < end and due < now:
                settled[stage] += 1
        resolved_at, submitted_at = when(row["resolved_at"]), when(row["submitted_at"])
        if resolved_at and submitted_at and start <= resolved_at < end:
            stats.resolved += 1
            taken = working_days_taken(submitted_at, resolved_at, calendar, tz)
            if taken is not None:
                days.append(taken)
    order = {stage: i for i, stage in enumerate(profile_stage_order(profile))}
    stats.stages = sorted(
        (StageRate(s, n, on_time[s]) for s, n in settled.items()),
        key=lambda r: (order.get(r.stage, len(order)), r.stage),
    )
    stats.average_working_days = round(sum(days) / len(days), 1) if days else None

    overdue = []
    for row in open_rows:
        state = State(row["state"])
        if state not in OPEN_STATES or state not in CLOCK_RUNNING_STATES:
            continue
        if row["paused_at"] is not None or row["id"] in answered_ids:
            continue
        late = [
            (when(entry["due"]), stage)
            for stage, entry in stage_entries(row["deadlines"])
            if not entry.get("done") and when(entry["due"]) < now  # type: ignore[operator]
        ]
        if not late:
            continue
        due, stage = min(late)  # type: ignore[type-var]
        department_id = row["lead_department_id"]
        overdue.append(
            OverdueCase(
                int(row["id"]),
                str(row["number"]),
                stage,
                due,  # type: ignore[arg-type]
                str(row["state"]),
                department_id,
                department_names.get(department_id) if department_id else None,
                staff_names.get(row["handler_id"]) if row["handler_id"] else None,
            )
        )
    stats.overdue = sorted(overdue, key=lambda o: (o.due, o.number))

    answers = [s for s in surveys if not s["no_response"]]
    stats.no_response = len(surveys) - len(answers)
    stats.satisfaction = _satisfaction(None, None, answers)
    bands = profile.revisit.satisfaction
    for column, target in (("result_score", "result_bands"), ("attitude_score", "attitude_bands")):
        counted = Counter(bands.band(a[column]) for a in answers if a[column] is not None)
        setattr(
            stats,
            target,
            [Count(b, counted.get(b, 0)) for b in ("satisfied", "neutral", "unsatisfied")],
        )
    stats.satisfaction_by_department = _grouped_satisfaction(
        answers, "department_id", department_names
    )
    stats.satisfaction_by_handler = _grouped_satisfaction(answers, "handler_id", staff_names)

    months = trend_months(end, tz)
    filed_per: Counter[str] = Counter()
    resolved_per: Counter[str] = Counter()
    for row in trend_rows:
        submitted_at, resolved_at = when(row["submitted_at"]), when(row["resolved_at"])
        if submitted_at:
            filed_per[_month(submitted_at, tz)] += 1
        if resolved_at:
            resolved_per[_month(resolved_at, tz)] += 1
    stats.trend = [MonthPoint(m, filed_per.get(m, 0), resolved_per.get(m, 0)) for m in months]

    stats.repeat_complainants = _repeats(filed, complainant_names, reveal=reveal_people)

    per_year: dict[int, dict[tuple[int, str], int]] = defaultdict(dict)
    for row in year_rows:
        if row["target_staff_id"] is None or State(row["state"]) in NOT_COUNTED_FOR_STAFF:
            continue
        submitted_at = when(row["submitted_at"])
        if submitted_at is None:
            continue
        year = submitted_at.astimezone(tz).year
        staff_id = int(row["target_staff_id"])
        key = (staff_id, staff_names.get(staff_id, f"#{staff_id}"))
        per_year[year][key] = per_year[year].get(key, 0) + 1
    stats.respondents = [
        RespondentLine(year, line.staff_id, line.staff_name, line.count, line.consequence)
        for year in sorted(per_year, reverse=True)
        for line in conduct_lines(profile, per_year[year], lang)
    ]
    return stats


def profile_stage_order(profile: Profile) -> list[str]:
    """The stages in the order a case meets them (the profile's deadline order)."""
    return [str(name) for name in type(profile.deadlines).model_fields]


# -- reading the rows --------------------------------------------------------------------------

_FILED_COLUMNS = (
    "id",
    "number",
    "state",
    "category",
    "channel",
    "lead_department_id",
    "handler_id",
    "complainant_id",
    "contact_name",
    "contact_phone",
    "submitted_at",
    "resolved_at",
    "closed_at",
)


async def _co_handled(department_id: int) -> list[int]:
    conn = Tortoise.get_connection("default")
    placeholder = "$1" if conn.capabilities.dialect == "postgres" else "?"
    rows = await conn.execute_query_dict(
        "SELECT complaint_id FROM complaint_co_department WHERE department_id = " + placeholder,
        [department_id],
    )
    return [int(r["complaint_id"]) for r in rows]


async def _base(staff: Staff | None, department_id: int | None) -> Any:
    """The complaints the viewer may count — their case scope (models.notifications, the one
    the lists use) — within the department filter. Rows may repeat (the scope joins the
    co-handling departments): every read takes the id and `_unique` keeps one of each."""
    query = Complaint.exclude(state=str(State.DRAFT))
    scope = scope_q(case_scope(staff)) if staff is not None else None
    if scope is not None:
        query = query.filter(scope)
    if department_id is not None:
        ids = await _co_handled(department_id)
        query = query.filter(Q(lead_department_id=department_id) | Q(id__in=ids))
    return query


async def compute_statistics(
    query: StatsQuery,
    *,
    staff: Staff | None,
    profile: Profile,
    calendar: WorkingCalendar,
    tz: ZoneInfo,
    lang: str = "zh_CN",
) -> Statistics:
    """The period's statistics as `staff` may see them (None: everything, for the reports)."""
    # In UTC: SQLite compares the stored instants as text, written in UTC.
    start, end, now = (t.astimezone(UTC) for t in (query.start, query.end, query.now))

    async def rows(*columns: str | Q, **where: Any) -> list[dict[str, Any]]:
        base = await _base(staff, query.department_id)
        names = [c for c in columns if isinstance(c, str)]
        conditions = [c for c in columns if isinstance(c, Q)]
        return _unique(await base.filter(*conditions, **where).values("id", *names))

    filed = await rows(*_FILED_COLUMNS[1:], submitted_at__gte=start, submitted_at__lt=end)
    # A deadline settled in the period belongs to a case not closed before the period began.
    active = await rows(
        "deadlines",
        "submitted_at",
        "resolved_at",
        Q(closed_at__isnull=True) | Q(closed_at__gte=start),
        submitted_at__lt=end,
    )
    open_rows = await rows(
        "number",
        "state",
        "deadlines",
        "paused_at",
        "lead_department_id",
        "handler_id",
        state__in=[str(s) for s in OPEN_STATES],
        next_due_at__lt=now,
    )
    answered_ids: set[int] = set()
    if open_rows:
        answered_ids = set(
            await SurveyResponse.filter(
                complaint_id__in=[r["id"] for r in open_rows], no_response=False
            ).values_list("complaint_id", flat=True)
        )
    surveys = await SurveyResponse.filter(created_at__gte=start, created_at__lt=end).values(
        "complaint_id", "no_response", "result_score", "attitude_score", "department_id",
        "handler_id",
    )  # fmt: skip
    if surveys:
        visible = {r["id"] for r in await rows(id__in={s["complaint_id"] for s in surveys})}
        surveys = [s for s in surveys if s["complaint_id"] in visible]
    first_month = month_start(trend_months(end, tz)[0], tz).astimezone(UTC)
    trend_rows = []
    in_window = Q(submitted_at__gte=first_month, submitted_at__lt=end) | Q(
        resolved_at__gte=first_month, resolved_at__lt=end
    )
    for row in await rows("submitted_at", "resolved_at", in_window):
        submitted_at, resolved_at = when(row["submitted_at"]), when(row["resolved_at"])
        trend_rows.append(
            {
                "submitted_at": submitted_at
                if submitted_at and first_month <= submitted_at < end
                else None,
                "resolved_at": resolved_at
                if resolved_at and first_month <= resolved_at < end
                else None,
            }
        )
    first_year = start.astimezone(tz).year
    last_year = (end - timedelta(microseconds=1)).astimezone(tz).year
    year_rows = await rows(
        "target_staff_id",
        "submitted_at",
        "state",
        profile=profile.id,
        target_staff_id__not_isnull=True,
        submitted_at__gte=datetime(first_year, 1, 1, tzinfo=tz).astimezone(UTC),
        submitted_at__lt=datetime(last_year + 1, 1, 1, tzinfo=tz).astimezone(UTC),
    )
    departments = dict(await Department.all().values_list("id", "name"))
    staff_names = dict(await Staff.all().values_list("id", "name"))
    people = {r["complainant_id"] for r in filed if r["complainant_id"] is not None}
    complainant_names = (
        dict(await Complainant.filter(id__in=people).values_list("id", "name")) if people else {}
    )
    reveal = staff is None or case_scope(staff).everything
    return summarise(
        query,
        filed=filed,
        active=active,
        open_rows=open_rows,
        answered_ids=answered_ids,
        surveys=surveys,
        trend_rows=trend_rows,
        year_rows=year_rows,
        department_names=departments,
        staff_names=staff_names,
        complainant_names=complainant_names,
        profile=profile,
        calendar=calendar,
        tz=tz,
        reveal_people=reveal,
        lang=lang,
    )


def _unique(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[int] = set()
    found = []
    for row in rows:
        if row["id"] not in seen:
            seen.add(row["id"])
            found.append(row)
    return found


# The days a period may touch: every instant, month and year the figures reach from them
# (the trend's first month, the next year's first day) stays within what datetime holds.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(9998, 12, 31)


@dataclass(frozen=True)
class Period:
    """The local days [first, last] a viewer asked for, and what was wrong with the asking, by
    parameter: "out_of_range" (the default day taken instead), "before_from" ("to" came before
    "from": swapped), "too_long" (more than MAX_PERIOD_DAYS: shortened to end on "to")."""

    first: date
    last: date
    problems: dict[str, str] = field(default_factory=dict)


def asked_period(first: date | None, last: date | None, today: date) -> Period:
    """The period of a statistics view (the desk page and the API): local days, inclusive;
    by default this month so far."""
    problems: dict[str, str] = {}
    for name, day in (("from", first), ("to", last)):
        if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
            problems[name] = "out_of_range"
    first = first if first is not None and "from" not in problems else today.replace(day=1)
    last = last if last is not None and "to" not in problems else today
    if last < first:
        problems.setdefault("to", "before_from")
        first, last = last, first
    if (last - first).days > MAX_PERIOD_DAYS:
        problems.setdefault("from", "too_long")
        first = last - timedelta(days=MAX_PERIOD_DAYS)
    return Period(first, last, problems)


def local_period(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Local days [first, last] (inclusive) as aware instants [start, end)."""
    return (
        datetime(first.year, first.month, first.day, tzinfo=tz),
        datetime(last.year, last.month, last.day, tzinfo=tz) + timedelta(days=1),
    )
