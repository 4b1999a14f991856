"""The case list (/desk/cases) and one case (/desk/cases/<id>)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping

from handlers.i18n import N_, Gettext
from handlers.staff import STATE_LABELS, channel_label, stage_label, state_label
from models.caselist import (
    ALL,
    COUNT_CAP,
    DUE_FILTERS,
    OPEN,
    CaseFilter,
    Cursor,
    ListRow,
    list_cases,
)
from models.entities import Channel, Department, Staff
from models.workflow import Role
from scheduler.time_left import TimeLeft, time_left
from web.desk.core import PREFIX, Desk, Me, desk_of, render, signed_in

DUE_LABELS = {
    "overdue": N_("Overdue"),
    "today": N_("Due today"),
    "next_working_day": N_("Due within 1 working day"),
}


def time_left_text(left: TimeLeft, gettext: Gettext) -> str:
    if left.overdue:
        return gettext("overdue by {h} h {m} min").format(h=left.hours, m=left.minutes)
    if left.working_days is not None:
        return gettext("{n} working days left").format(n=left.working_days)
    return gettext("{h} h {m} min left").format(h=left.hours, m=left.minutes)


def category_label(desk: Desk, category: str | None, lang: str) -> str:
    if not category:
        return ""
    try:
        return desk.profile.label("category", category, lang)
    except KeyError:
        return category


@dataclass(frozen=True)
class ParsedFilter:
    filter: CaseFilter
    problems: list[str]
    values: dict[str, Any]  # what the form shows back


def _int(value: str | None, name: str, problems: list[str]) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        problems.append(name)
        return None


def query_day(value: str | None, name: str, problems: list[str]) -> date | None:
    """A day from a query parameter (YYYY-MM-DD); a wrong one is named in `problems`."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(name)
        return None


def parse_filter(query: MultiMapping[str], desk: Desk) -> ParsedFilter:
    """The list's filters from the query string; values it cannot use are named as problems."""
    problems: list[str] = []
    state = query.get("state", "open")
    if state == "open":
        states = OPEN
    elif state == "all":
        states = ALL
    elif state in ALL:
        states = (state,)
    else:
        problems.append("state")
        state, states = "open", OPEN
    category = query.get("category") or None
    if category and category not in {c.id for c in desk.profile.categories}:
        problems.append("category")
        category = None
    channel = query.get("channel") or None
    if channel and channel not in {str(c) for c in Channel}:
        problems.append("channel")
        channel = None
    due = query.get("due") or None
    if due and due not in DUE_FILTERS:
        problems.append("due")
        due = None
    text = (query.get("q") or "").strip()[:200]
    flt = CaseFilter(
        states=states,
        category=category,
        department_id=_int(query.get("department"), "department", problems),
        handler_id=_int(query.get("handler"), "handler", problems),
        channel=channel,
        due=due,
        provisional=query.get("provisional") == "1",
        unreachable=query.get("unreachable") == "1",
        repeats=query.get("repeats") == "1",
        grouped=query.get("grouped") == "1",
        submitted_from=query_day(query.get("from"), "from", problems),
        submitted_to=query_day(query.get("to"), "to", problems),
        text=text,
    )
    values = {
        "state": state,
        "category": category or "",
        "department": str(flt.department_id or ""),
        "handler": str(flt.handler_id or ""),
        "channel": channel or "",
        "due": due or "",
        "provisional": flt.provisional,
        "unreachable": flt.unreachable,
        "repeats": flt.repeats,
        "grouped": flt.grouped,
        "from": flt.submitted_from.isoformat() if flt.submitted_from else "",
        "to": flt.submitted_to.isoformat() if flt.submitted_to else "",
        "q": text,
    }
    return ParsedFilter(flt, problems, values)


def _query_string(values: dict[str, Any], **extra: str) -> str:
    pairs = [
        (key, "1" if value is True else value)
        for key, value in values.items()
        if value not in ("", False, None)
    ]
    return urlencode(pairs + list(extra.items()))


@dataclass(frozen=True)
class RowView:
    row: ListRow
    category: str
    state: str
    stage: str
    left: str
    overdue: bool
    soon: bool


@signed_in()
async def case_list(request: web.Request, me: Me) -> web.StreamResponse:
    desk = desk_of(request)
    parsed = parse_filter(request.query, desk)
    clock = desk.clock()
    page = await list_cases(
        me.staff,
        parsed.filter,
        now=clock.now,
        calendar=clock.calendar,
        tz=clock.tz,
        after=Cursor.decode(request.query.get("after")),
    )
    gettext = me.gettext
    views = []
    for row in page.rows:
        left = (
            time_left(row.next_due_at, clock.now, clock.calendar, clock.tz)
            if row.next_due_at
            else None
        )
        views.append(
            RowView(
                row=row,
                category=category_label(desk, row.category, me.lang),
                state=state_label(row.state, me.lang),
                stage=stage_label(row.next_due_stage, me.lang) if row.next_due_stage else "",
                left=time_left_text(left, gettext) if left else "",
                overdue=bool(left and left.overdue),
                soon=bool(left and not left.overdue and left.working_days is None),
            )
        )
    departments = await Department.all().order_by("name")
    handlers = (
        await Staff.filter(role__in=(Role.HANDLER, Role.DEPARTMENT_HEAD))
        .order_by("name")
        .only("id", "name")
    )
    context = {
        "rows": views,
        "total": f"{COUNT_CAP:,}+" if page.total_capped else page.total,
        "next_link": (
            f"{PREFIX}/cases?{_query_string(parsed.values, after=page.next_cursor)}"
            if page.next_cursor
            else None
        ),
        "first_link": f"{PREFIX}/cases?{_query_string(parsed.values)}",
        "export_query": _query_string(parsed.values),
        "paged": "after" in request.query,
        "values": parsed.values,
        "problems": parsed.problems,
        "state_options": [
            (str(s), state_label(str(s), me.lang)) for s in STATE_LABELS if str(s) in ALL
        ],
        "category_options": [
            (c.id, category_label(desk, c.id, me.lang)) for c in desk.profile.categories
        ],
        "department_options": [(d.id, d.name) for d in departments],
        "handler_options": [(s.id, s.name) for s in handlers],
        "channel_options": [(str(c), channel_label(str(c), me.lang)) for c in Channel],
        "due_options": [(key, gettext(label)) for key, label in DUE_LABELS.items()],
        "channel_label": lambda c: channel_label(c, me.lang),
    }
    return render(request, me, "cases.html", context, status=400 if parsed.problems else 200)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PREFIX + "/cases", case_list)
