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
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.attachments import attachment_file_id, store_attachment
from config.profiles import Profile, pick
from handlers.messages import FileRef, Outgoing
from handlers.staff import channel_label, stage_label, state_label
from models.alarms import alarm_context
from models.entities import Channel, Department, Event, OutboxMessage, Staff
from models.outbox import enqueue
from models.statistics import (
    OverdueCase,
    Satisfaction,
    Statistics,
    StatsQuery,
    compute_statistics,
)
from models.workflow import Role
from scheduler.calendar import WorkingCalendar
from scheduler.jobs import staff_address
from scheduler.texts import lang_of, show_time

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
class UnheardEscalation:
    """An escalation made in the period that reached nobody (no one held any rung's role)."""

    number: str
    stage: str
    due: datetime
    department: str | None


@dataclass
class ReportData:
    """The period's report: its figures are models.statistics' (shared with /desk/stats)."""

    period: Period
    stats: Statistics
    now: datetime
    unheard: list[UnheardEscalation] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.stats.total

    @property
    def overdue(self) -> list[OverdueCase]:
        return self.stats.overdue


def mask_name(name: str | None, person_id: int) -> str:
    """First character only, so a manager recognises a repeat without reading a name."""
    if not name:
        return f"#{person_id}"
    return f"{name[0]}{'*' * max(1, len(name) - 1)} (#{person_id})"


async def gather_report(
    period: Period,
    now: datetime,
    profile: Profile,
    *,
    staff: Staff | None = None,
    calendar: WorkingCalendar | None = None,
    tz: ZoneInfo | None = None,
    lang: str = "zh_CN",
) -> ReportData:
    """Read the period's figures: every case (the scheduled report is the organisation's), or
    those `staff` may see (a download from the desk)."""
    context = alarm_context()
    stats = await compute_statistics(
        StatsQuery(period.start, period.end, now=now),
        staff=staff,
        profile=profile,
        calendar=calendar or context.calendar,
        tz=tz or context.tz,
        lang=lang_of(lang),
    )
    return ReportData(period, stats, now, await gather_unheard(period))


async def gather_unheard(period: Period) -> list[UnheardEscalation]:
    """Escalations made in the period that reached nobody (scheduler.jobs marks them)."""
    rows = await Event.filter(
        action="escalated", created_at__gte=period.start, created_at__lt=period.end
    ).prefetch_related("complaint")
    departments = dict(await Department.all().values_list("id", "name"))
    found = [
        UnheardEscalation(
            row.complaint.number,
            str(row.payload.get("stage") or ""),
            datetime.fromisoformat(row.payload["due"]),
            departments.get(row.complaint.lead_department_id),  # type: ignore[attr-defined]
        )
        for row in rows
        if (row.payload or {}).get("unheard") and (row.payload or {}).get("due")
    ]
    return sorted(found, key=lambda item: (item.due, item.number))


# -- words ---------------------------------------------------------------------------------

_LABELS: dict[str, dict[str, str]] = {
    "unheard": {
        "zh_CN": "超期升级无人接收",
        "zh_TW": "超期升級無人接收",
        "en": "Escalations that reached nobody",
    },
    "weekly": {"zh_CN": "投诉处理周报", "zh_TW": "投訴處理週報", "en": "Weekly complaint report"},
    "monthly": {"zh_CN": "投诉处理月报", "zh_TW": "投訴處理月報", "en": "Monthly complaint report"},
    "period": {"zh_CN": "统计期间", "zh_TW": "統計期間", "en": "Period"},
    "from": {"zh_CN": "起", "zh_TW": "起", "en": "From"},
    "to": {"zh_CN": "止", "zh_TW": "止", "en": "To"},
    "made": {"zh_CN": "制表时间", "zh_TW": "製表時間", "en": "Made"},
    "total": {"zh_CN": "新收投诉", "zh_TW": "新收投訴", "en": "Complaints filed"},
    "category": {"zh_CN": "按类别", "zh_TW": "按類別", "en": "By category"},
    "channel": {"zh_CN": "按渠道", "zh_TW": "按渠道", "en": "By channel"},
    "department": {"zh_CN": "按承办部门", "zh_TW": "按承辦部門", "en": "By department"},
    "state": {"zh_CN": "按状态", "zh_TW": "按狀態", "en": "By status"},
    "on_time": {"zh_CN": "按时办结率", "zh_TW": "按時辦結率", "en": "Resolved on time"},
    "stages": {"zh_CN": "各环节按时率", "zh_TW": "各環節按時率", "en": "On time per stage"},
    "handling": {"zh_CN": "平均办理用时", "zh_TW": "平均辦理用時", "en": "Average handling time"},
    "working_days": {"zh_CN": "{n} 个工作日", "zh_TW": "{n} 個工作日", "en": "{n} working days"},
    "overdue": {"zh_CN": "超期未办", "zh_TW": "超期未辦", "en": "Overdue now"},
    "satisfaction": {"zh_CN": "满意度", "zh_TW": "滿意度", "en": "Satisfaction"},
    "result": {"zh_CN": "结果", "zh_TW": "結果", "en": "result"},
    "attitude": {"zh_CN": "态度", "zh_TW": "態度", "en": "attitude"},
    "points": {"zh_CN": "{n} 分", "zh_TW": "{n} 分", "en": "{n}/10"},
    "answers": {"zh_CN": "{n} 份评价", "zh_TW": "{n} 份評價", "en": "{n} answers"},
    "no_response": {"zh_CN": "{n} 份未回复", "zh_TW": "{n} 份未回覆", "en": "{n} unanswered"},
    "repeat": {"zh_CN": "重复投诉人", "zh_TW": "重複投訴人", "en": "Repeat complainants"},
    "respondent": {"zh_CN": "被投诉人员", "zh_TW": "被投訴人員", "en": "Complaints per staff"},
    "year": {"zh_CN": "年度", "zh_TW": "年度", "en": "Year"},
    "consequence": {"zh_CN": "后果", "zh_TW": "後果", "en": "Consequence"},
    "none": {"zh_CN": "无", "zh_TW": "無", "en": "none"},
    "unassigned": {"zh_CN": "未分派", "zh_TW": "未分派", "en": "not assigned"},
    "uncategorised": {"zh_CN": "未分类", "zh_TW": "未分類", "en": "no category"},
    "more": {
        "zh_CN": "另有 {n} 件，见附件。",
        "zh_TW": "另有 {n} 件，見附件。",
        "en": "{n} more in the workbook.",
    },
    "pieces": {"zh_CN": "{n} 件", "zh_TW": "{n} 件", "en": "{n}"},
    "number": {"zh_CN": "编号", "zh_TW": "編號", "en": "Number"},
    "stage": {"zh_CN": "环节", "zh_TW": "環節", "en": "Stage"},
    "due": {"zh_CN": "时限", "zh_TW": "時限", "en": "Due"},
    "due_at": {"zh_CN": "时限 {due}", "zh_TW": "時限 {due}", "en": "due {due}"},
    "count": {"zh_CN": "件数", "zh_TW": "件數", "en": "Count"},
    "rate": {"zh_CN": "按时率", "zh_TW": "按時率", "en": "On time"},
    "settled": {"zh_CN": "到期件数", "zh_TW": "到期件數", "en": "Settled"},
    "in_time": {"zh_CN": "按时件数", "zh_TW": "按時件數", "en": "On time"},
    "summary": {"zh_CN": "概况", "zh_TW": "概況", "en": "Summary"},
    "figure": {"zh_CN": "项目", "zh_TW": "項目", "en": "Figure"},
    "value": {"zh_CN": "数值", "zh_TW": "數值", "en": "Value"},
    "complaints": {"zh_CN": "投诉清单", "zh_TW": "投訴清單", "en": "Complaints"},
    "submitted": {"zh_CN": "提交时间", "zh_TW": "提交時間", "en": "Submitted"},
    "resolved_at": {"zh_CN": "办结时间", "zh_TW": "辦結時間", "en": "Resolved"},
    "closed_at": {"zh_CN": "结案时间", "zh_TW": "結案時間", "en": "Closed"},
    "state_col": {"zh_CN": "状态", "zh_TW": "狀態", "en": "Status"},
    "category_col": {"zh_CN": "类别", "zh_TW": "類別", "en": "Category"},
    "channel_col": {"zh_CN": "渠道", "zh_TW": "渠道", "en": "Channel"},
    "department_col": {"zh_CN": "承办部门", "zh_TW": "承辦部門", "en": "Department"},
    "handler_col": {"zh_CN": "承办人", "zh_TW": "承辦人", "en": "Handler"},
    "person": {"zh_CN": "投诉人", "zh_TW": "投訴人", "en": "Complainant"},
    "numbers": {"zh_CN": "投诉编号", "zh_TW": "投訴編號", "en": "Complaints"},
    "staff_col": {"zh_CN": "人员", "zh_TW": "人員", "en": "Staff member"},
    "trend": {"zh_CN": "月度趋势", "zh_TW": "月度趨勢", "en": "Monthly trend"},
    "month": {"zh_CN": "月份", "zh_TW": "月份", "en": "Month"},
    "filed": {"zh_CN": "新收", "zh_TW": "新收", "en": "Filed"},
    "resolved": {"zh_CN": "办结", "zh_TW": "辦結", "en": "Resolved"},
    "by_department_s": {
        "zh_CN": "满意度（按部门）",
        "zh_TW": "滿意度（按部門）",
        "en": "Satisfaction by department",
    },
    "by_handler_s": {
        "zh_CN": "满意度（按承办人）",
        "zh_TW": "滿意度（按承辦人）",
        "en": "Satisfaction by handler",
    },
    "avg_result": {"zh_CN": "结果平均分", "zh_TW": "結果平均分", "en": "Result (avg)"},
    "avg_attitude": {"zh_CN": "态度平均分", "zh_TW": "態度平均分", "en": "Attitude (avg)"},
    "answers_col": {"zh_CN": "评价份数", "zh_TW": "評價份數", "en": "Answers"},
    "unanswered_col": {"zh_CN": "未回复份数", "zh_TW": "未回覆份數", "en": "Unanswered"},
    "bands": {"zh_CN": "满意度分档", "zh_TW": "滿意度分檔", "en": "Satisfaction bands"},
    "satisfied": {"zh_CN": "满意", "zh_TW": "滿意", "en": "satisfied"},
    "neutral": {"zh_CN": "一般", "zh_TW": "一般", "en": "neutral"},
    "unsatisfied": {"zh_CN": "不满意", "zh_TW": "不滿意", "en": "unsatisfied"},
}

_CLI: dict[str, dict[str, str]] = {
    "written": {
        "zh_CN": "{label}：报表已写入 {path}（{size} 字节）",
        "zh_TW": "{label}：報表已寫入 {path}（{size} 位元組）",
        "en": "{label}: workbook written to {path} ({size} bytes)",
    },
    "already": {
        "zh_CN": "本期报表此前已发送给管理人员，不再重复发送",
        "zh_TW": "本期報表此前已發送給管理人員，不再重複發送",
        "en": "already sent to the managers for this period: not sent again",
    },
    "nobody": {
        "zh_CN": "{label}：没有可发送的对象——没有已绑定聊天的在职督办员或管理员"
        "（`complaintdesk staff invite --role supervisor ...`）",
        "zh_TW": "{label}：沒有可發送的對象——沒有已綁定聊天的在職督辦員或管理員"
        "（`complaintdesk staff invite --role supervisor ...`）",
        "en": "{label}: nobody to send it to — no active supervisor or admin has a linked chat "
        "(`complaintdesk staff invite --role supervisor ...`)",
    },
    "use_out": {
        "zh_CN": "用 --out 文件名 仍可写出报表",
        "zh_TW": "用 --out 檔名 仍可寫出報表",
        "en": "--out FILE writes the workbook anyway",
    },
    "sent": {
        "zh_CN": "{label}：已发送给 {n} 位管理人员",
        "zh_TW": "{label}：已發送給 {n} 位管理人員",
        "en": "{label}: sent to {n} manager(s)",
    },
}


def cli_text(key: str, lang: str, **values: object) -> str:
    """What `complaintdesk jobs report` prints, in the report's language."""
    return _CLI[key][lang_of(lang)].format(**values)


# Punctuation: full-width in Chinese, ASCII with spaces in English.
_PUNCT = {
    "zh": {"colon": "：", "comma": "，", "open": "（", "close": "）", "semi": "；", "dash": "至"},
    "en": {"colon": ": ", "comma": ", ", "open": " (", "close": ")", "semi": "; ", "dash": " – "},
}


def _l(key: str, lang: str) -> str:
    return _LABELS[key][lang_of(lang)]


def _p(lang: str) -> dict[str, str]:
    return _PUNCT["en" if lang_of(lang) == "en" else "zh"]


@dataclass(frozen=True)
class Labels:
    """Turns the statistics' raw keys into words for one language."""

    profile: Profile
    lang: str

    def category(self, key: str | None) -> str:
        if not key:
            return _l("uncategorised", self.lang)
        try:
            return self.profile.label("category", key, self.lang)
        except KeyError:
            return key

    def state(self, key: str | None) -> str:
        return state_label(key or "", self.lang)

    def stage(self, key: str | None) -> str:
        return stage_label(key, self.lang)

    def channel(self, key: str | None) -> str:
        return channel_label(key, self.lang)

    def department(self, name: str | None) -> str:
        return name or _l("unassigned", self.lang)

    def person(self, name: str | None) -> str:
        return name or _l("unassigned", self.lang)

    def consequence(self, count: int) -> str | None:
        """The profile's consequence for `count` complaints a year (models.conduct's rule),
        in this language."""
        found = self.profile.conduct_consequence(count)
        return pick(found.label, self.lang) if found else None

    def band(self, key: str | None) -> str:
        return _l(key or "neutral", self.lang)


def _pairs(pairs: list[tuple[str, int]], lang: str) -> str:
    if not pairs:
        return _l("none", lang)
    return _p(lang)["comma"].join(
        f"{k}{'' if k.endswith('）') else ' '}{_l('pieces', lang).format(n=v)}" for k, v in pairs
    )


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _period_text(period: Period, lang: str, tz: ZoneInfo) -> str:
    last = (period.end - timedelta(seconds=1)).astimezone(tz)
    return f"{period.start.astimezone(tz):%Y-%m-%d}{_p(lang)['dash']}{last:%Y-%m-%d}"


def render_text(data: ReportData, profile: Profile, lang: str, tz: ZoneInfo) -> str:
    """The report as a chat message, in words (labels, never raw ids)."""
    lang = lang_of(lang)
    stats, words, p = data.stats, Labels(profile, lang), _p(lang)

    def line(key: str, value: str) -> str:
        return f"{_l(key, lang)}{p['colon']}{value}"

    resolution = stats.resolution_rate
    on_time = (
        f"{_percent(resolution.rate)}{p['open']}{resolution.on_time}/{resolution.settled}"
        f"{p['close']}"
        if resolution
        else "-"
    )
    stage_rates = p["comma"].join(
        f"{words.stage(s.stage)} {_percent(s.rate)}{p['open']}{s.on_time}/{s.settled}{p['close']}"
        for s in stats.stages
    )
    answers = stats.satisfaction
    result = _l("points", lang).format(n=answers.average_result) if answers.answers else "-"
    attitude = _l("points", lang).format(n=answers.average_attitude) if answers.answers else "-"
    satisfaction = (
        f"{_l('result', lang)} {result}{p['comma']}{_l('attitude', lang)} {attitude}"
        f"{p['open']}{_l('answers', lang).format(n=answers.answers)}{p['comma']}"
        f"{_l('no_response', lang).format(n=stats.no_response)}{p['close']}"
    )
    handling = (
        _l("working_days", lang).format(n=stats.average_working_days)
        if stats.average_working_days is not None
        else "-"
    )
    years = sorted({r.year for r in stats.respondents}, reverse=True)
    respondents = p["semi"].join(
        f"{year}{p['colon'] if lang == 'en' else '年：'}"
        + _pairs(
            [
                (
                    r.staff_name
                    + (
                        f"{p['open']}{words.consequence(r.count)}{p['close']}"
                        if words.consequence(r.count)
                        else ""
                    ),
                    r.count,
                )
                for r in stats.respondents
                if r.year == year
            ],
            lang,
        )
        for year in years
    )
    lines = [
        f"📊 {_l(data.period.kind, lang)} {data.period.label}"
        f"{p['open']}{_period_text(data.period, lang, tz)}{p['close']}",
        line("total", _l("pieces", lang).format(n=stats.total)),
        line("state", _pairs([(words.state(c.key), c.count) for c in stats.by_state], lang)),
        line(
            "category", _pairs([(words.category(c.key), c.count) for c in stats.by_category], lang)
        ),
        line("channel", _pairs([(words.channel(c.key), c.count) for c in stats.by_channel], lang)),
        line(
            "department",
            _pairs([(words.department(c.name), c.count) for c in stats.by_department], lang),
        ),
        line("on_time", on_time),
        line("stages", stage_rates or _l("none", lang)),
        line("handling", handling),
        line("satisfaction", satisfaction),
        line("repeat", _pairs([(r.label, r.count) for r in stats.repeat_complainants], lang)),
        line("respondent", respondents or _l("none", lang)),
        line("overdue", _l("pieces", lang).format(n=len(stats.overdue))),
    ]
    for item in stats.overdue[:OVERDUE_LINES_IN_MESSAGE]:
        due = _l("due_at", lang).format(due=show_time(item.due, tz, lang))
        lines.append(
            f"  · {item.number} {words.stage(item.stage)}{p['comma']}{due}{p['comma']}"
            f"{words.department(item.department)}"
        )
    if len(stats.overdue) > OVERDUE_LINES_IN_MESSAGE:
        rest = len(stats.overdue) - OVERDUE_LINES_IN_MESSAGE
        lines.append("  " + _l("more", lang).format(n=rest))
    if data.unheard:  # only when there were any: nobody was told of these
        lines.append("⚠️ " + line("unheard", _l("pieces", lang).format(n=len(data.unheard))))
        for unheard in data.unheard[:OVERDUE_LINES_IN_MESSAGE]:
            due = _l("due_at", lang).format(due=show_time(unheard.due, tz, lang))
            lines.append(
                f"  · {unheard.number} {words.stage(unheard.stage)}{p['comma']}{due}"
                f"{p['comma']}{words.department(unheard.department)}"
            )
    return "\n".join(lines)


# -- the workbook ----------------------------------------------------------------------------

_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=14)
_HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
_DATE = "yyyy-mm-dd"
_DATETIME = "yyyy-mm-dd hh:mm"
CHART_WIDTH_CM = 22.0  # fits a landscape A4 page (27.7 cm inside the margins)
CHART_HEIGHT_CM = 9.0


def _text_width(value: Any) -> float:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 16
    if isinstance(value, date):
        return 10
    text = str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _local(instant: datetime | None, tz: ZoneInfo) -> datetime | None:
    """An instant as an Excel date-time cell: local wall time, no zone (Excel has none)."""
    if instant is None:
        return None
    # To the minute: a deadline at 23:59:59.999 would otherwise show as the next day's 00:00.
    return instant.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)


def _sheet(
    book: Workbook, title: str, header: list[str], rows: Iterable[list[Any]], *,
    first: bool = False, heading: str | None = None,
) -> Worksheet:  # fmt: skip
    """A sheet that prints: an optional title line, a bold frozen header repeated on every
    page, columns as wide as their content, landscape A4 fitted to the page width."""
    sheet = book.active if first else book.create_sheet()
    sheet.title = title[:31]
    header_row = 1
    if heading:
        sheet.append([heading])
        sheet.cell(row=1, column=1).font = _TITLE
        header_row = 2
    sheet.append(header)
    for cell in sheet[header_row]:
        cell.font = _BOLD
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(vertical="center", wrap_text=False)
    widths = [_text_width(h) for h in header]
    count = 0
    for row in rows:
        sheet.append(row)
        count += 1
        for index, value in enumerate(row):
            widths[index] = max(widths[index], _text_width(value))
            cell = sheet.cell(row=header_row + count, column=index + 1)
            if isinstance(value, datetime):
                cell.number_format = _DATETIME
            elif isinstance(value, date):
                cell.number_format = _DATE
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(60, max(8, width + 2))
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    sheet.print_title_rows = f"{header_row}:{header_row}"
    last = get_column_letter(len(header))
    sheet.print_area = f"A1:{last}{header_row + max(count, 1)}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    edge = Side(style="thin", color="999999")
    box = Border(left=edge, right=edge, top=edge, bottom=edge)
    for line in sheet.iter_rows(min_row=header_row, max_row=header_row + count):
        for cell in line:
            cell.border = box
    sheet.page_margins.left = sheet.page_margins.right = 0.5
    return sheet


def _add_chart(sheet: Worksheet, chart: BarChart | LineChart, rows: int, columns: int) -> None:
    """Place `chart` beside the table (one column apart) and stretch the print area over both:
    fitted to the page width, the chart never runs onto a second page."""
    chart.width, chart.height = CHART_WIDTH_CM, CHART_HEIGHT_CM
    first = columns + 2
    sheet.column_dimensions[get_column_letter(columns + 1)].width = 3
    sheet.add_chart(chart, f"{get_column_letter(first)}2")
    # Columns past the table get an explicit width (about 0.2·w cm each) and rows are
    # 0.45–0.53 cm by default, so the area covers the chart in every spreadsheet program.
    covered, index = 0.0, first - 1
    while covered < CHART_WIDTH_CM:
        index += 1
        sheet.column_dimensions[get_column_letter(index)].width = 10
        covered += 10 * 0.2
    last_row = max(rows, 2 + int(CHART_HEIGHT_CM / 0.45) + 2)
    sheet.print_area = f"A1:{get_column_letter(index)}{last_row}"


def write_workbook(data: ReportData, profile: Profile, lang: str, tz: ZoneInfo) -> bytes:
    """The report as an XLSX workbook that opens and prints well: a summary, one sheet per
    breakdown (with a native bar chart of the categories and a line chart of the trend), the
    overdue list and every complaint of the period."""
    lang = lang_of(lang)
    stats, words = data.stats, Labels(profile, lang)
    book = Workbook()
    last_day = (data.period.end - timedelta(seconds=1)).astimezone(tz).date()
    resolution = stats.resolution_rate
    summary_rows: list[list[Any]] = [
        [_l("from", lang), data.period.start.astimezone(tz).date()],
        [_l("to", lang), last_day],
        [_l("made", lang), _local(data.now, tz)],
        [_l("total", lang), stats.total],
        [_l("on_time", lang), resolution.rate if resolution else None],
        [_l("handling", lang), stats.average_working_days],
        [f"{_l('satisfaction', lang)} · {_l('result', lang)}", stats.satisfaction.average_result],
        [
            f"{_l('satisfaction', lang)} · {_l('attitude', lang)}",
            stats.satisfaction.average_attitude,
        ],
        [_l("answers_col", lang), stats.satisfaction.answers],
        [_l("unanswered_col", lang), stats.no_response],
        [_l("overdue", lang), len(stats.overdue)],
    ]
    heading = f"{_l(data.period.kind, lang)} {data.period.label}"
    summary = _sheet(
        book,
        _l("summary", lang),
        [_l("figure", lang), _l("value", lang)],
        summary_rows,
        first=True,
        heading=heading,
    )
    summary.cell(row=7, column=2).number_format = "0%"
    summary.column_dimensions["B"].width = max(summary.column_dimensions["B"].width, 18)

    def table(key: str, header: str, pairs: list[tuple[str, int]], chart: bool = False) -> None:
        sheet = _sheet(book, _l(key, lang), [header, _l("count", lang)], [list(p) for p in pairs])
        if chart and pairs:
            bar = BarChart()
            bar.type = "bar"  # horizontal: long Chinese labels stay readable
            bar.title = _l(key, lang)
            bar.legend = None
            bar.add_data(
                Reference(sheet, min_col=2, min_row=1, max_row=len(pairs) + 1),
                titles_from_data=True,
            )
            bar.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=len(pairs) + 1))
            bar.x_axis.scaling.orientation = "maxMin"  # the largest first, at the top
            bar.y_axis.number_format = "0"
            bar.y_axis.majorUnit = max(1, -(-max(v for _, v in pairs) // 5))
            bar.x_axis.delete = bar.y_axis.delete = False
            _add_chart(sheet, bar, len(pairs) + 1, 2)

    table(
        "category",
        _l("category_col", lang),
        [(words.category(c.key), c.count) for c in stats.by_category],
        chart=True,
    )
    table("state", _l("state_col", lang), [(words.state(c.key), c.count) for c in stats.by_state])
    table(
        "channel",
        _l("channel_col", lang),
        [(words.channel(c.key), c.count) for c in stats.by_channel],
    )
    table(
        "department",
        _l("department_col", lang),
        [(words.department(c.name), c.count) for c in stats.by_department],
    )
    stages = _sheet(
        book,
        _l("stages", lang),
        [_l("stage", lang), _l("settled", lang), _l("in_time", lang), _l("rate", lang)],
        [[words.stage(s.stage), s.settled, s.on_time, s.rate] for s in stats.stages],
    )
    for row in stages.iter_rows(min_row=2, min_col=4, max_col=4):
        row[0].number_format = "0%"
    trend = _sheet(
        book,
        _l("trend", lang),
        [_l("month", lang), _l("filed", lang), _l("resolved", lang)],
        [[m.month, m.filed, m.resolved] for m in stats.trend],
    )
    line = LineChart()
    line.title = _l("trend", lang)
    line.add_data(
        Reference(trend, min_col=2, max_col=3, min_row=1, max_row=len(stats.trend) + 1),
        titles_from_data=True,
    )
    line.set_categories(Reference(trend, min_col=1, min_row=2, max_row=len(stats.trend) + 1))
    for series in line.series:
        series.smooth = False  # months are steps, not a curve
    _add_chart(trend, line, len(stats.trend) + 1, 3)
    satisfaction_header = [
        _l("answers_col", lang),
        _l("avg_result", lang),
        _l("avg_attitude", lang),
    ]
    satisfaction_sheets: list[tuple[str, str, Callable[[str | None], str], list[Satisfaction]]] = [
        ("by_department_s", "department_col", words.department, stats.satisfaction_by_department),
        ("by_handler_s", "handler_col", words.person, stats.satisfaction_by_handler),
    ]
    for sheet_key, column, name_of, groups in satisfaction_sheets:
        _sheet(
            book,
            _l(sheet_key, lang),
            [_l(column, lang), *satisfaction_header],
            [[name_of(s.name), s.answers, s.average_result, s.average_attitude] for s in groups],
        )
    _sheet(
        book,
        _l("bands", lang),
        [_l("bands", lang), _l("result", lang), _l("attitude", lang)],
        [
            [words.band(r.key), r.count, a.count]
            for r, a in zip(stats.result_bands, stats.attitude_bands, strict=True)
        ],
    )
    _sheet(
        book,
        _l("repeat", lang),
        [_l("person", lang), _l("count", lang), _l("numbers", lang)],
        [[r.label, r.count, "、".join(r.numbers)] for r in stats.repeat_complainants],
    )
    _sheet(
        book,
        _l("respondent", lang),
        [_l("year", lang), _l("staff_col", lang), _l("count", lang), _l("consequence", lang)],
        [
            [r.year, r.staff_name, r.count, words.consequence(r.count) or ""]
            for r in stats.respondents
        ],
    )
    _sheet(
        book,
        _l("overdue", lang),
        [
            _l("number", lang),
            _l("stage", lang),
            _l("due", lang),
            _l("state_col", lang),
            _l("department_col", lang),
            _l("handler_col", lang),
        ],
        [
            [
                item.number,
                words.stage(item.stage),
                _local(item.due, tz),
                words.state(item.state),
                words.department(item.department),
                words.person(item.handler),
            ]
            for item in stats.overdue
        ],
    )
    _sheet(
        book,
        _l("complaints", lang),
        [
            _l("number", lang),
            _l("submitted", lang),
            _l("category_col", lang),
            _l("channel_col", lang),
            _l("state_col", lang),
            _l("department_col", lang),
            _l("handler_col", lang),
            _l("resolved_at", lang),
            _l("closed_at", lang),
        ],
        [
            [
                c.number,
                _local(c.submitted_at, tz),
                words.category(c.category),
                words.channel(c.channel),
                words.state(c.state),
                words.department(c.department),
                words.person(c.handler) if c.handler else "",
                _local(c.resolved_at, tz),
                _local(c.closed_at, tz),
            ]
            for c in stats.complaints
        ],
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
                    words.stage(item.stage),
                    _local(item.due, tz),
                    words.department(item.department),
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
    data = await gather_report(period, now, profile, tz=tz)
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
