"""The statistics page (/desk/stats) and the weekly/monthly report downloads.

The figures are models.statistics' (the reports and the API read the same); who sees which
cases is the viewer's case scope (models.notifications.case_scope), and who may open the page
is models.staffing.may_read_statistics. This module only parses the filters, labels the raw
keys and draws the charts (web/desk/charts.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping

from handlers.i18n import N_
from models.entities import Department
from models.exports import start_export
from models.notifications import case_scope
from models.staffing import may_read_statistics
from models.statistics import (
    Statistics,
    StatsQuery,
    asked_period,
    compute_statistics,
    local_period,
)
from scheduler.reports import XLSX_MIME, Labels, gather_report, report_period, write_workbook
from web.desk.cases import query_day
from web.desk.charts import bar_chart, line_chart
from web.desk.core import PREFIX, Desk, Me, desk_of, render, signed_in

BANDS = {
    "satisfied": N_("satisfied"),
    "neutral": N_("neutral"),
    "unsatisfied": N_("unsatisfied"),
}


@dataclass(frozen=True)
class StatsFilter:
    first: date
    last: date
    department_id: int | None
    problems: list[str]

    def query_string(self, **extra: str) -> str:
        pairs = [("from", self.first.isoformat()), ("to", self.last.isoformat())]
        if self.department_id is not None:
            pairs.append(("department", str(self.department_id)))
        return urlencode(pairs + list(extra.items()))


def parse_stats_filter(query: MultiMapping[str], today: date) -> StatsFilter:
    """Period (local days, inclusive; default: this month so far) and department."""
    problems: list[str] = []
    period = asked_period(
        query_day(query.get("from"), "from", problems),
        query_day(query.get("to"), "to", problems),
        today,
    )
    problems += [name for name in period.problems if name not in problems]
    department = query.get("department") or None
    department_id = None
    if department:
        if department.isdigit():
            department_id = int(department)
        else:
            problems.append("department")
    return StatsFilter(period.first, period.last, department_id, problems)


def _presets(today: date) -> list[tuple[str, date, date]]:
    this_week = today - timedelta(days=today.weekday())
    this_month = today.replace(day=1)
    last_month_end = this_month - timedelta(days=1)
    return [
        (N_("This month"), this_month, today),
        (N_("Last month"), last_month_end.replace(day=1), last_month_end),
        (N_("Last week"), this_week - timedelta(days=7), this_week - timedelta(days=1)),
        (N_("Last 12 months"), (this_month - timedelta(days=335)).replace(day=1), today),
        (N_("This year"), today.replace(month=1, day=1), today),
    ]


async def _department_options(me: Me) -> list[tuple[int, str]]:
    """The departments a viewer can filter by: all of them for everyone who sees everything,
    else their own (the scope would show nothing of the others anyway)."""
    scope = case_scope(me.staff)
    query = Department.all().order_by("name")
    if not scope.everything:
        query = query.filter(id=scope.department_id or 0)
    return [(d.id, d.name) for d in await query]


def _rate(on_time: int, settled: int) -> float | None:
    return on_time / settled if settled else None


def _view(stats: Statistics, words: Labels, gettext: Any) -> dict[str, Any]:
    """The page's tables and charts from the statistics (labels, no raw keys)."""
    states = [(words.state(c.key), c.count) for c in stats.by_state]
    categories = [(words.category(c.key), c.count) for c in stats.by_category]
    channels = [(words.channel(c.key), c.count) for c in stats.by_channel]
    departments = [(words.department(c.name), c.count) for c in stats.by_department]
    stages = [(words.stage(s.stage), s.settled, s.on_time, s.rate) for s in stats.stages]
    bands = [
        (gettext(BANDS[r.key or "neutral"]), r.count, a.count)
        for r, a in zip(stats.result_bands, stats.attitude_bands, strict=True)
    ]
    months = [m.month for m in stats.trend]

    def pct(rate: float | None) -> str:
        return "—" if rate is None else f"{rate:.0%}"

    def num(value: float | None) -> str:
        return "—" if value is None else f"{value:g}"

    return {
        "stages_rows": [(label, n, ok, pct(rate)) for label, n, ok, rate in stages],
        "trend_rows": [(m.month, m.filed, m.resolved) for m in stats.trend],
        "satisfaction_departments": [
            (words.department(s.name), s.answers, num(s.average_result), num(s.average_attitude))
            for s in stats.satisfaction_by_department
        ],
        "satisfaction_handlers": [
            (words.person(s.name), s.answers, num(s.average_result), num(s.average_attitude))
            for s in stats.satisfaction_by_handler
        ],
        "repeat_rows": [
            (r.label, r.count, "、".join(r.numbers)) for r in stats.repeat_complainants
        ],
        "respondent_rows": [
            (r.year, r.staff_name, r.count, words.consequence(r.count) or "—")
            for r in stats.respondents
        ],
        "states": states,
        "categories": categories,
        "channels": channels,
        "departments": departments,
        "stages": stages,
        "bands": bands,
        "charts": {
            "states": bar_chart(states, title=gettext("By state")),
            "categories": bar_chart(categories, title=gettext("By category")),
            "channels": bar_chart(channels, title=gettext("By channel")),
            "departments": bar_chart(departments, title=gettext("By department")),
            "stages": bar_chart(
                [(label, rate or 0.0) for label, _, _, rate in stages],
                title=gettext("On time per stage"),
                maximum=1.0,
                percent=True,
            ),
            "bands": bar_chart(
                [(label, result) for label, result, _ in bands],
                title=gettext("Result score by band"),
            ),
            "trend": line_chart(
                months,
                [
                    (gettext("New complaints"), [m.filed for m in stats.trend]),
                    (gettext("Resolved"), [m.resolved for m in stats.trend]),
                ],
                title=gettext("Monthly trend"),
            ),
        },
    }


@signed_in(may_read_statistics)
async def stats_page(request: web.Request, me: Me) -> web.StreamResponse:
    desk = desk_of(request)
    clock = desk.clock()
    today = clock.now.astimezone(clock.tz).date()
    flt = parse_stats_filter(request.query, today)
    start, end = local_period(flt.first, flt.last, clock.tz)
    stats = await compute_statistics(
        StatsQuery(start, end, now=clock.now, department_id=flt.department_id),
        staff=me.staff,
        profile=desk.profile,
        calendar=clock.calendar,
        tz=clock.tz,
        lang=me.lang,
    )
    words = Labels(desk.profile, me.lang)
    context = {
        "stats": stats,
        "words": words,
        "flt": flt,
        "problems": flt.problems,
        "presets": [
            (me.gettext(label), f"{PREFIX}/stats?{_preset_query(flt, a, b)}")
            for label, a, b in _presets(today)
        ],
        "department_options": await _department_options(me),
        "pct": lambda rate: "—" if rate is None else f"{rate:.0%}",
        "num": lambda value: "—" if value is None else f"{value:g}",
        **_view(stats, words, me.gettext),
    }
    return render(request, me, "stats.html", context, status=400 if flt.problems else 200)


def _preset_query(flt: StatsFilter, first: date, last: date) -> str:
    return StatsFilter(first, last, flt.department_id, []).query_string()


@signed_in(may_read_statistics)
async def report_download(request: web.Request, me: Me) -> web.StreamResponse:
    """The last complete week's or month's report workbook, as the viewer may see it."""
    kind = request.match_info["kind"]
    if kind not in ("weekly", "monthly"):
        raise web.HTTPNotFound()
    desk: Desk = desk_of(request)
    clock = desk.clock()
    period = report_period(kind, clock.now, clock.tz)  # type: ignore[arg-type]
    data = await gather_report(
        period,
        clock.now,
        desk.profile,
        staff=me.staff,
        calendar=clock.calendar,
        tz=clock.tz,
        lang=me.lang,
    )
    content = write_workbook(data, desk.profile, me.lang, clock.tz)
    audit = await start_export(
        me.staff, "report", {"kind": kind, "period": period.label}, clock.now
    )
    audit.rows, audit.finished = data.stats.total, True
    await audit.save(update_fields=["rows", "finished"])
    name = f"complaints-{kind}-{period.label}-{me.lang}.xlsx"
    return web.Response(
        body=content,
        content_type=XLSX_MIME,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PREFIX + "/stats", stats_page)
    router.add_get(PREFIX + "/stats/report/{kind}.xlsx", report_download)
