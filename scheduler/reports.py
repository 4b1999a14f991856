"""Weekly and monthly summaries for managers: a message plus an XLSX workbook.

Figures for a period [start, end) in local time (the previous Monday–Sunday week, or the
previous calendar month):

* complaints filed in the period, counted by category, lead department and current state;
* on-time rate: of the resolutions completed in the period, the share completed by their due
  instant;
* overdue list: open complaints whose running deadline has passed at report time;
* average satisfaction (result and attitude, 0–10) of the survey answers given in the period,
  and how many surveys went unanswered;
* repeat complainants: people who filed two or more complaints in the period (names masked);
* complaints per respondent staff member (the person complained about).

`summarise` is pure; `gather_report` reads the rows; `write_workbook` renders the XLSX (with a
native Excel bar chart of the categories — no image library needed); `send_report` queues it to
every active supervisor and admin through the outbox, once per period.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference

from bot.attachments import attachment_file_id, store_attachment
from config.profiles import Profile
from handlers.messages import FileRef, Outgoing
from models.entities import (
    Channel,
    Complaint,
    Department,
    Event,
    OutboxMessage,
    Staff,
    SurveyResponse,
)
from models.outbox import enqueue
from models.workflow import OPEN_STATES, Role
from scheduler.jobs import staff_address
from scheduler.texts import lang_of, show_time, stage_name

Kind = Literal["weekly", "monthly"]
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_REPORT_BYTES = 50 * 1024 * 1024
OVERDUE_LINES_IN_MESSAGE = 10


@dataclass(frozen=True)
class Period:
    kind: Kind
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive
    label: str  # e.g. "2026-W44" or "2026-10"


def report_period(kind: Kind, now: datetime, tz: ZoneInfo) -> Period:
    """The last complete week (Monday to Sunday) or calendar month before `now`, local time."""
    today = now.astimezone(tz).date()
    if kind == "weekly":
        end_day = today - timedelta(days=today.weekday())
        start_day = end_day - timedelta(days=7)
        year, week, _ = start_day.isocalendar()
        label = f"{year}-W{week:02d}"
    else:
        end_day = today.replace(day=1)
        start_day = (end_day - timedelta(days=1)).replace(day=1)
        label = f"{start_day:%Y-%m}"

    def instant(day: date) -> datetime:
        return datetime.combine(day, time(0), tz).astimezone(UTC)

    return Period(kind, instant(start_day), instant(end_day), label)


# The scheduled sending time: Mondays (weekly) or the 1st (monthly) at 08:00, local time.
SEND_HOUR = 8


def last_send_time(kind: Kind, now: datetime, tz: ZoneInfo) -> datetime:
    """The most recent scheduled sending time at or before `now` (aware, local zone)."""
    local = now.astimezone(tz)
    today = local.date()
    day = today - timedelta(days=today.weekday()) if kind == "weekly" else today.replace(day=1)
    at = datetime.combine(day, time(SEND_HOUR), tz)
    if at > local:  # this week's (month's) time is still ahead: the previous one
        earlier = day - timedelta(days=7) if kind == "weekly" else (day - timedelta(days=1))
        at = datetime.combine(
            earlier if kind == "weekly" else earlier.replace(day=1), time(SEND_HOUR), tz
        )
    return at


def due_report_period(kind: Kind, now: datetime, tz: ZoneInfo) -> Period:
    """The period whose report should have gone out by `now`: a worker that was down over
    Monday 08:00 (or the 1st) sends it when it is back, not a week (a month) later."""
    return report_period(kind, last_send_time(kind, now, tz), tz)


@dataclass(frozen=True)
class OverdueItem:
    number: str
    stage: str
    due: datetime
    department: str


@dataclass
class ReportData:
    period: Period
    total: int = 0
    by_category: list[tuple[str, int]] = field(default_factory=list)
    by_department: list[tuple[str, int]] = field(default_factory=list)
    by_state: list[tuple[str, int]] = field(default_factory=list)
    resolved: int = 0
    resolved_on_time: int = 0
    overdue: list[OverdueItem] = field(default_factory=list)
    surveys: int = 0
    no_response: int = 0
    average_result: float | None = None
    average_attitude: float | None = None
    repeat_complainants: list[tuple[str, int]] = field(default_factory=list)
    per_respondent_staff: list[tuple[str, int]] = field(default_factory=list)
    # Escalations in the period that reached nobody (no one held any rung's role).
    unheard: list[OverdueItem] = field(default_factory=list)

    @property
    def on_time_rate(self) -> float | None:
        return self.resolved_on_time / self.resolved if self.resolved else None


def _ranked(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def _in(period: Period, value: datetime | str | None) -> bool:
    if value is None:
        return False
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    return period.start <= instant < period.end


def mask_name(name: str | None, person_id: int) -> str:
    """First character only, so a manager recognises a repeat without reading a name."""
    if not name:
        return f"#{person_id}"
    return f"{name[0]}{'*' * max(1, len(name) - 1)} (#{person_id})"


def _average(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def summarise(
    period: Period,
    filed: Iterable[Mapping[str, Any]],
    resolved: Iterable[Mapping[str, Any]],
    overdue: Iterable[OverdueItem],
    surveys: Iterable[Mapping[str, Any]],
    department_names: Mapping[int, str],
    staff_names: Mapping[int, str],
    complainant_names: Mapping[int, str | None],
    *,
    uncategorised: str = "-",
) -> ReportData:
    """The report's figures from plain rows (see the module docstring for each figure)."""
    filed = list(filed)
    data = ReportData(period, total=len(filed))
    data.by_category = _ranked(Counter(r["category"] or uncategorised for r in filed))
    data.by_department = _ranked(
        Counter(department_names.get(r["lead_department_id"], uncategorised) for r in filed)
    )
    data.by_state = _ranked(Counter(str(r["state"]) for r in filed))
    for row in resolved:
        entry = (row["deadlines"] or {}).get("resolution")
        if isinstance(entry, dict) and _in(period, entry.get("done")):
            data.resolved += 1
            if datetime.fromisoformat(entry["done"]) <= datetime.fromisoformat(entry["due"]):
                data.resolved_on_time += 1
    data.overdue = sorted(overdue, key=lambda item: item.due)
    answered = [s for s in surveys if not s["no_response"]]
    data.surveys = len(answered)
    data.no_response = sum(1 for s in surveys if s["no_response"])
    data.average_result = _average([s["result_score"] for s in answered])
    data.average_attitude = _average([s["attitude_score"] for s in answered])
    people = Counter(r["complainant_id"] for r in filed if r["complainant_id"] is not None)
    data.repeat_complainants = _ranked(
        Counter(
            {mask_name(complainant_names.get(pid), pid): n for pid, n in people.items() if n >= 2}
        )
    )
    data.per_respondent_staff = _ranked(
        Counter(
            staff_names.get(r["target_staff_id"], f"#{r['target_staff_id']}")
            for r in filed
            if r["target_staff_id"] is not None
        )
    )
    return data


async def gather_report(period: Period, now: datetime) -> ReportData:
    """Read the period's rows and summarise them."""
    columns = ("category", "lead_department_id", "state", "complainant_id", "target_staff_id")
    filed = await Complaint.filter(
        submitted_at__gte=period.start, submitted_at__lt=period.end
    ).values(*columns)
    # A resolution completed in the period belongs to a complaint resolved in it (or later,
    # when it was reopened and resolved again: its stored entry is then the newer one).
    resolved = await Complaint.filter(resolved_at__gte=period.start).values("deadlines")
    departments = dict(await Department.all().values_list("id", "name"))
    overdue_rows = await Complaint.filter(
        state__in=list(OPEN_STATES), next_due_at__lt=now, paused_at__isnull=True
    ).values("number", "next_due_stage", "next_due_at", "lead_department_id")
    overdue = [
        OverdueItem(
            r["number"],
            r["next_due_stage"] or "",
            r["next_due_at"],
            departments.get(r["lead_department_id"], "-"),
        )
        for r in overdue_rows
    ]
    surveys = await SurveyResponse.filter(
        created_at__gte=period.start, created_at__lt=period.end
    ).values("no_response", "result_score", "attitude_score")
    staff_names = dict(await Staff.all().values_list("id", "name"))
    from models.entities import Complainant

    complainant_names = dict(await Complainant.all().values_list("id", "name"))
    data = summarise(
        period, filed, resolved, overdue, surveys, departments, staff_names, complainant_names
    )
    data.unheard = await gather_unheard(period, departments)
    return data


async def gather_unheard(period: Period, departments: Mapping[int, str]) -> list[OverdueItem]:
    """Escalations made in the period that reached nobody (scheduler.jobs marks them)."""
    rows = await Event.filter(
        action="escalated", created_at__gte=period.start, created_at__lt=period.end
    ).prefetch_related("complaint")
    found = [
        OverdueItem(
            row.complaint.number,
            str(row.payload.get("stage") or ""),
            datetime.fromisoformat(row.payload["due"]),
            departments.get(row.complaint.lead_department_id, "-"),  # type: ignore[attr-defined]
        )
        for row in rows
        if (row.payload or {}).get("unheard") and (row.payload or {}).get("due")
    ]
    return sorted(found, key=lambda item: (item.due, item.number))


# -- rendering ---------------------------------------------------------------------------

_LABELS: dict[str, dict[str, str]] = {
    "weekly": {"zh_CN": "投诉处理周报", "zh_TW": "投訴處理週報", "en": "Weekly complaint report"},
    "monthly": {"zh_CN": "投诉处理月报", "zh_TW": "投訴處理月報", "en": "Monthly complaint report"},
    "total": {"zh_CN": "新收投诉", "zh_TW": "新收投訴", "en": "Complaints filed"},
    "category": {"zh_CN": "按类别", "zh_TW": "按類別", "en": "By category"},
    "department": {"zh_CN": "按承办部门", "zh_TW": "按承辦部門", "en": "By department"},
    "state": {"zh_CN": "按状态", "zh_TW": "按狀態", "en": "By state"},
    "on_time": {"zh_CN": "按时办结率", "zh_TW": "按時辦結率", "en": "Resolved on time"},
    "overdue": {"zh_CN": "超期未办", "zh_TW": "超期未辦", "en": "Overdue now"},
    "satisfaction": {"zh_CN": "满意度", "zh_TW": "滿意度", "en": "Satisfaction"},
    "result": {"zh_CN": "结果", "zh_TW": "結果", "en": "result"},
    "attitude": {"zh_CN": "态度", "zh_TW": "態度", "en": "attitude"},
    "answers": {"zh_CN": "份评价", "zh_TW": "份評價", "en": "answers"},
    "no_response": {"zh_CN": "未回复", "zh_TW": "未回覆", "en": "no response"},
    "repeat": {"zh_CN": "重复投诉人", "zh_TW": "重複投訴人", "en": "Repeat complainants"},
    "respondent": {"zh_CN": "被投诉人员", "zh_TW": "被投訴人員", "en": "Complaints per staff"},
    "none": {"zh_CN": "无", "zh_TW": "無", "en": "none"},
    "more": {"zh_CN": "另有 {n} 件，见附件", "zh_TW": "另有 {n} 件，見附件", "en": "{n} more"},
    "number": {"zh_CN": "编号", "zh_TW": "編號", "en": "Number"},
    "stage": {"zh_CN": "环节", "zh_TW": "環節", "en": "Stage"},
    "due": {"zh_CN": "时限", "zh_TW": "時限", "en": "Due"},
    "count": {"zh_CN": "件数", "zh_TW": "件數", "en": "Count"},
    "summary": {"zh_CN": "概况", "zh_TW": "概況", "en": "Summary"},
    "unheard": {
        "zh_CN": "超期升级无人接收",
        "zh_TW": "超期升級無人接收",
        "en": "Escalations that reached nobody",
    },
}


def _l(key: str, lang: str) -> str:
    return _LABELS[key][lang_of(lang)]


def _category_label(profile: Profile, category: str, lang: str) -> str:
    try:
        return profile.label("category", category, lang)
    except KeyError:
        return category


def _pairs(pairs: list[tuple[str, int]], lang: str) -> str:
    return "，".join(f"{k} {v}" for k, v in pairs) if pairs else _l("none", lang)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def render_text(data: ReportData, profile: Profile, lang: str, tz: ZoneInfo) -> str:
    categories = [(_category_label(profile, k, lang), v) for k, v in data.by_category]
    end = data.period.end - timedelta(seconds=1)
    lines = [
        f"📊 {_l(data.period.kind, lang)} {data.period.label} "
        f"({data.period.start.astimezone(tz):%Y-%m-%d} – {end.astimezone(tz):%Y-%m-%d})",
        f"{_l('total', lang)}: {data.total}",
        f"{_l('category', lang)}: {_pairs(categories, lang)}",
        f"{_l('department', lang)}: {_pairs(data.by_department, lang)}",
        f"{_l('state', lang)}: {_pairs(data.by_state, lang)}",
        f"{_l('on_time', lang)}: {_percent(data.on_time_rate)} "
        f"({data.resolved_on_time}/{data.resolved})",
        f"{_l('satisfaction', lang)}: {_l('result', lang)} {data.average_result or '-'}, "
        f"{_l('attitude', lang)} {data.average_attitude or '-'} "
        f"({data.surveys} {_l('answers', lang)}, {data.no_response} {_l('no_response', lang)})",
        f"{_l('repeat', lang)}: {_pairs(data.repeat_complainants, lang)}",
        f"{_l('respondent', lang)}: {_pairs(data.per_respondent_staff, lang)}",
        f"{_l('overdue', lang)}: {len(data.overdue)}",
    ]
    for item in data.overdue[:OVERDUE_LINES_IN_MESSAGE]:
        lines.append(
            f"  · {item.number} {stage_name(item.stage, lang)} {show_time(item.due, tz)} "
            f"{item.department}"
        )
    if len(data.overdue) > OVERDUE_LINES_IN_MESSAGE:
        rest = len(data.overdue) - OVERDUE_LINES_IN_MESSAGE
        lines.append("  " + _l("more", lang).format(n=rest))
    return "\n".join(lines + _unheard_lines(data, lang, tz))


def _unheard_lines(data: ReportData, lang: str, tz: ZoneInfo) -> list[str]:
    """Escalations that reached nobody: only when there were any."""
    if not data.unheard:
        return []
    return [f"⚠️ {_l('unheard', lang)}: {len(data.unheard)}"] + [
        f"  · {item.number} {stage_name(item.stage, lang)} {show_time(item.due, tz)} "
        f"{item.department}"
        for item in data.unheard[:OVERDUE_LINES_IN_MESSAGE]
    ]


def write_workbook(data: ReportData, profile: Profile, lang: str, tz: ZoneInfo) -> bytes:
    """The report as an XLSX workbook, one sheet per figure, with a category bar chart."""
    book = Workbook()
    summary = book.active
    summary.title = _l("summary", lang)[:31]
    summary.append([_l(data.period.kind, lang), data.period.label])
    summary.append([_l("total", lang), data.total])
    summary.append([_l("on_time", lang), data.on_time_rate])
    summary.cell(row=3, column=2).number_format = "0%"
    summary.append([f"{_l('satisfaction', lang)} ({_l('result', lang)})", data.average_result])
    summary.append([f"{_l('satisfaction', lang)} ({_l('attitude', lang)})", data.average_attitude])
    summary.append([_l("answers", lang), data.surveys])
    summary.append([_l("no_response", lang), data.no_response])
    summary.append([_l("overdue", lang), len(data.overdue)])

    def table(key: str, rows: list[tuple[str, int]]) -> Any:
        sheet = book.create_sheet(_l(key, lang)[:31])
        sheet.append([_l(key, lang), _l("count", lang)])
        for row in rows:
            sheet.append(list(row))
        return sheet

    categories = [(_category_label(profile, k, lang), v) for k, v in data.by_category]
    sheet = table("category", categories)
    if categories:
        chart = BarChart()
        chart.title = _l("category", lang)
        chart.legend = None
        values = Reference(sheet, min_col=2, min_row=1, max_row=len(categories) + 1)
        labels = Reference(sheet, min_col=1, min_row=2, max_row=len(categories) + 1)
        chart.add_data(values, titles_from_data=True)
        chart.set_categories(labels)
        sheet.add_chart(chart, "D2")
    table("department", data.by_department)
    table("state", data.by_state)
    table("repeat", data.repeat_complainants)
    table("respondent", data.per_respondent_staff)
    overdue = book.create_sheet(_l("overdue", lang)[:31])
    overdue.append([_l("number", lang), _l("stage", lang), _l("due", lang), _l("department", lang)])
    for item in data.overdue:
        overdue.append(
            [item.number, stage_name(item.stage, lang), show_time(item.due, tz), item.department]
        )
    if data.unheard:
        unheard = book.create_sheet(_l("unheard", lang)[:31])
        unheard.append(
            [_l("number", lang), _l("stage", lang), _l("due", lang), _l("department", lang)]
        )
        for item in data.unheard:
            unheard.append(
                [
                    item.number,
                    stage_name(item.stage, lang),
                    show_time(item.due, tz),
                    item.department,
                ]
            )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@dataclass
class ReportResult:
    period: Period
    data: ReportData
    recipients: list[int]
    attachment_id: int | None


async def send_report(
    kind: Kind, now: datetime, profile: Profile, tz: ZoneInfo, *, period: Period | None = None
) -> ReportResult | None:
    """Queue the period's report to every active supervisor and admin; None when already sent.

    `period` defaults to the last complete one before `now`. The report's language is each
    manager's own; the workbook is built per language used.
    """
    period = period or report_period(kind, now, tz)
    key_prefix = f"report:{kind}:{period.label}:"
    if await OutboxMessage.filter(idempotency_key__startswith=key_prefix).exists():
        return None
    data = await gather_report(period, now)
    managers = await Staff.filter(active=True, role__in=[Role.SUPERVISOR, Role.ADMIN]).order_by(
        "id"
    )
    files: dict[str, str] = {}
    attachment_id = None
    recipients = []
    for person in managers:
        address = staff_address(person)
        if address is None:
            continue
        lang = lang_of(person.language)
        if lang not in files:
            content = write_workbook(data, profile, lang, tz)
            name = f"complaints-{kind}-{period.label}-{lang}.xlsx"
            stored = await store_attachment(
                Channel.WEB,  # generated here, not received from a platform
                FileRef(file_id="", file_name=name, mime_type=XLSX_MIME, data=content),
                max_bytes=MAX_REPORT_BYTES,
            )
            files[lang] = attachment_file_id(stored.id)
            attachment_id = stored.id
        message = Outgoing(render_text(data, profile, lang, tz), attachments=(files[lang],))
        await enqueue(
            channel=address[0],
            chat_id=address[1],
            message=message,
            idempotency_key=f"{key_prefix}{person.id}",
            now=now,
        )
        recipients.append(person.id)
    return ReportResult(period, data, recipients, attachment_id)
