"""The desk's case list: filters, full-text search, next-deadline order, keyset paging.

    page = await list_cases(staff, CaseFilter(...), now=..., calendar=..., tz=..., after=cursor)

Which cases a staff member sees is `models.notifications.case_scope` (the chat's /cases uses
the same scope); this module only turns it and the filters into SQL. The SQL is written by hand
because the search is dialect-specific (migration 0006_desk_case_search):
- SQLite: FTS5 with the trigram tokenizer (`complaint_fts MATCH`), for terms of 3+ characters;
- PostgreSQL: the pg_trgm GIN index on number/facts/target/place, queried with ILIKE;
- 1–2 character terms: LIKE on the four columns (no trigram to look up), on both.
Every term must match (AND).

Order: the next deadline first (the most urgent on top), then cases without a deadline, newest
first. Paging is by keyset: the cursor is the last row's (deadline, id), so page 2000 costs what
page 1 costs; the scan walks the next_due_at index (or the primary key for cases without a
deadline) and stops after one page.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient

from models.entities import Staff
from models.matters import LIVE_GROUP_STATUSES, marks_for
from models.notifications import INTAKE_STATES, CaseScope, case_scope
from models.numbering import normalise_number
from models.outbox import undeliverable_complaints
from models.workflow import OPEN_STATES, State
from scheduler.calendar import WorkingCalendar
from scheduler.time_left import due_window

PAGE_SIZE = 50
COUNT_CAP = 10_000
MAX_TERMS = 6
MAX_TERM_LENGTH = 100
DUE_FILTERS = ("overdue", "today", "next_working_day")
# The list's "open" default: what is still someone's business.
OPEN = tuple(sorted(str(s) for s in OPEN_STATES))
ALL = tuple(sorted(str(s) for s in State if s != State.DRAFT))
SEARCH_EXPRESSION = (
    "(c.number || ' ' || c.facts || ' ' || coalesce(c.target_text, '') || ' ' || "
    "coalesce(c.place_text, ''))"
)


@dataclass(frozen=True)
class CaseFilter:
    states: tuple[str, ...] = OPEN
    category: str | None = None
    department_id: int | None = None  # leading or co-handling
    handler_id: int | None = None
    channel: str | None = None
    due: str | None = None  # one of DUE_FILTERS
    provisional: bool = False
    unreachable: bool = False
    repeats: bool = False  # only cases linked as a repeat of an earlier one
    grouped: bool = False  # only cases in a proposed or confirmed mass-matter group
    submitted_from: date | None = None  # local days, inclusive
    submitted_to: date | None = None
    text: str = ""


@dataclass(frozen=True)
class Cursor:
    due: datetime | None
    id: int

    def encode(self) -> str:
        due = self.due.astimezone(UTC).isoformat() if self.due else ""
        return base64.urlsafe_b64encode(f"{due}|{self.id}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str | None) -> Cursor | None:
        """The cursor a link carries; None for a missing or mangled one (back to page 1)."""
        if not value or len(value) > 200:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            due, _, ident = raw.partition("|")
            when = datetime.fromisoformat(due) if due else None
            if when is not None and when.tzinfo is None:
                return None
            return cls(when, int(ident))
        except (ValueError, UnicodeDecodeError):
            return None


@dataclass(frozen=True)
class ListRow:
    id: int
    number: str
    category: str | None
    state: str
    channel: str
    next_due_at: datetime | None
    next_due_stage: str | None
    provisional: bool
    submitted_at: datetime | None
    unreachable: bool = False
    repeat_of: str | None = None  # the number of the earlier complaint it repeats
    group_id: int | None = None  # its live mass-matter group
    group_status: str | None = None


@dataclass(frozen=True)
class CasePage:
    rows: list[ListRow]
    total: int  # at most COUNT_CAP + 1
    next_cursor: str | None
    terms: tuple[str, ...] = field(default=())

    @property
    def total_capped(self) -> bool:
        return self.total > COUNT_CAP


def search_terms(text: str) -> tuple[str, ...]:
    """The words of a search box, at most MAX_TERMS, each cut to MAX_TERM_LENGTH."""
    words = [w[:MAX_TERM_LENGTH] for w in text.split() if w.strip()]
    return tuple(dict.fromkeys(words))[:MAX_TERMS]


class _Sql:
    """Builds one statement's WHERE clause and its parameters for the connection's dialect."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.params: list[Any] = []
        self.where: list[str] = []

    def p(self, value: Any) -> str:
        """A placeholder for `value` (use each once: SQLite's "?" are positional)."""
        if isinstance(value, datetime) and self.dialect == "sqlite":
            # As Tortoise stores it on SQLite: UTC text, so comparisons are text comparisons.
            value = value.astimezone(UTC).isoformat(" ")
        self.params.append(value)
        return f"${len(self.params)}" if self.dialect == "postgres" else "?"

    def copy(self) -> _Sql:
        other = _Sql(self.dialect)
        other.params, other.where = list(self.params), list(self.where)
        return other

    def add(self, clause: str) -> None:
        self.where.append(clause)

    def clause(self) -> str:
        return " AND ".join(self.where) if self.where else "1=1"


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _scope(sql: _Sql, scope: CaseScope) -> None:
    if scope.everything:
        return
    parts: list[str] = []
    if scope.handler_id is not None:
        parts.append(f"c.handler_id = {sql.p(scope.handler_id)}")
    if scope.department_id is not None:
        parts.append(f"c.lead_department_id = {sql.p(scope.department_id)}")
        parts.append(
            "c.id IN (SELECT complaint_id FROM complaint_co_department "
            f"WHERE department_id = {sql.p(scope.department_id)})"
        )
    if scope.intake:
        states = ", ".join(sql.p(str(s)) for s in INTAKE_STATES)
        parts.append(f"c.state IN ({states})")
        parts.append("c.lead_department_id IS NULL")
    sql.add("(" + " OR ".join(parts) + ")" if parts else "1=0")


def _search(sql: _Sql, terms: Sequence[str]) -> None:
    for term in terms:
        number = normalise_number(term)
        if number is not None:
            # A complaint number (any shipped format) finds that case: a substring search would
            # also find 2612-010 … 2612-019 for 2612-01.
            sql.add(f"c.number = {sql.p(number)}")
        elif len(term) >= 3 and sql.dialect == "sqlite":
            phrase = '"' + term.replace('"', '""') + '"'
            match = sql.p(phrase)
            sql.add(f"c.id IN (SELECT rowid FROM complaint_fts WHERE complaint_fts MATCH {match})")
        elif len(term) >= 3:
            # A subquery of its own, so the planner looks the term up in the trigram index
            # instead of walking the deadline index and testing every row.
            sql.add(
                f"c.id IN (SELECT s.id FROM complaint s WHERE "
                f"{SEARCH_EXPRESSION.replace('c.', 's.')} ILIKE {sql.p(_like(term))} "
                "ESCAPE '\\' OFFSET 0)"
            )
        else:
            op = "ILIKE" if sql.dialect == "postgres" else "LIKE"
            columns = ("c.number", "c.facts", "c.target_text", "c.place_text")
            matches = [f"{col} {op} {sql.p(_like(term))} ESCAPE '\\'" for col in columns]
            sql.add("(" + " OR ".join(matches) + ")")


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


async def _where(
    sql: _Sql,
    staff: Staff,
    flt: CaseFilter,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    tz: ZoneInfo,
    conn: BaseDBAsyncClient,
) -> bool:
    """Fill `sql` with the filters; False when no case can match (skip the query)."""
    states = [s for s in flt.states if s in ALL] or list(OPEN)
    sql.add("c.state IN (" + ", ".join(sql.p(s) for s in states) + ")")
    _scope(sql, case_scope(staff))
    if flt.category:
        sql.add(f"c.category = {sql.p(flt.category)}")
    if flt.department_id is not None:
        sql.add(
            f"(c.lead_department_id = {sql.p(flt.department_id)} OR c.id IN (SELECT "
            f"complaint_id FROM complaint_co_department WHERE department_id = "
            f"{sql.p(flt.department_id)}))"
        )
    if flt.handler_id is not None:
        sql.add(f"c.handler_id = {sql.p(flt.handler_id)}")
    if flt.channel:
        sql.add(f"c.channel = {sql.p(flt.channel)}")
    if flt.due in DUE_FILTERS:
        after, until = due_window(flt.due, now, calendar, tz)
        sql.add("c.next_due_at IS NOT NULL")
        if after is not None:
            sql.add(f"c.next_due_at > {sql.p(after)}")
        if until is not None:
            sql.add(f"c.next_due_at <= {sql.p(until)}")
    if flt.repeats:
        sql.add("c.id IN (SELECT r.complaint_id FROM repeat_link r)")
    if flt.grouped:
        live = ", ".join(sql.p(str(s)) for s in LIVE_GROUP_STATUSES)
        sql.add(
            "c.id IN (SELECT m.complaint_id FROM matter_group_member m JOIN matter_group g "
            f"ON g.id = m.group_id WHERE m.removed_at IS NULL AND g.status IN ({live}))"
        )
    if flt.provisional:
        sql.add("c.deadline_provisional = " + ("TRUE" if sql.dialect == "postgres" else "1"))
    if flt.submitted_from is not None:
        sql.add(f"c.submitted_at >= {sql.p(_local_midnight(flt.submitted_from, tz))}")
    if flt.submitted_to is not None:
        end = _local_midnight(flt.submitted_to + timedelta(days=1), tz)
        sql.add(f"c.submitted_at < {sql.p(end)}")
    if flt.unreachable:
        # Failures are few (a blocked bot, a deleted chat): ask the outbox which, then filter.
        ids = sorted(await undeliverable_complaints(conn=conn))
        if not ids:
            return False
        sql.add("c.id IN (" + ", ".join(sql.p(i) for i in ids) + ")")
    _search(sql, search_terms(flt.text))
    return True


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_COLUMNS = (
    "c.id, c.number, c.category, c.state, c.channel, c.next_due_at, c.next_due_stage, "
    "c.deadline_provisional, c.submitted_at"
)


def _row(record: dict[str, Any]) -> ListRow:
    return ListRow(
        id=int(record["id"]),
        number=str(record["number"]),
        category=record["category"],
        state=str(record["state"]),
        channel=str(record["channel"]),
        next_due_at=_when(record["next_due_at"]),
        next_due_stage=record["next_due_stage"],
        provisional=bool(record["deadline_provisional"]),
        submitted_at=_when(record["submitted_at"]),
    )


async def list_cases(
    staff: Staff,
    flt: CaseFilter,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    tz: ZoneInfo,
    after: Cursor | None = None,
    page_size: int = PAGE_SIZE,
    conn: BaseDBAsyncClient | None = None,
) -> CasePage:
    """One page of the cases `staff` may list that pass `flt`, after `after`."""
    conn = conn or Tortoise.get_connection("default")
    dialect = conn.capabilities.dialect
    base = _Sql(dialect)
    terms = search_terms(flt.text)
    if not await _where(base, staff, flt, now=now, calendar=calendar, tz=tz, conn=conn):
        return CasePage([], 0, None, terms)
    # Counting every match of a broad filter would cost a scan of the table; past COUNT_CAP
    # the page says "more than" instead.
    counted = await conn.execute_query_dict(
        f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM complaint c WHERE {base.clause()} "
        f"LIMIT {COUNT_CAP + 1}) AS matches",
        base.params,
    )
    total = int(counted[0]["n"])
    rows: list[ListRow] = []
    # Part 1: cases with a deadline, by (next_due_at, id).
    if after is None or after.due is not None:
        sql = base.copy()
        sql.add("c.next_due_at IS NOT NULL")
        if after is not None and after.due is not None:
            sql.add(
                f"(c.next_due_at > {sql.p(after.due)} OR (c.next_due_at = {sql.p(after.due)} "
                f"AND c.id > {sql.p(after.id)}))"
            )
        found = await conn.execute_query_dict(
            f"SELECT {_COLUMNS} FROM complaint c WHERE {sql.clause()} "
            f"ORDER BY c.next_due_at, c.id LIMIT {int(page_size) + 1}",
            sql.params,
        )
        rows = [_row(r) for r in found]
    # Part 2: cases without a deadline, newest first.
    if len(rows) <= page_size:
        sql = base.copy()
        sql.add("c.next_due_at IS NULL")
        if after is not None and after.due is None:
            sql.add(f"c.id < {sql.p(after.id)}")
        found = await conn.execute_query_dict(
            f"SELECT {_COLUMNS} FROM complaint c WHERE {sql.clause()} "
            f"ORDER BY c.id DESC LIMIT {int(page_size) + 1 - len(rows)}",
            sql.params,
        )
        rows += [_row(r) for r in found]
    more = len(rows) > page_size
    rows = rows[:page_size]
    ids = [r.id for r in rows]
    unreachable = await undeliverable_complaints(ids, conn=conn) if rows else {}
    repeats, groups = await marks_for(ids, conn)
    rows = [
        ListRow(
            **{
                **r.__dict__,
                "unreachable": r.id in unreachable,
                "repeat_of": repeats.get(r.id),
                "group_id": groups[r.id][0] if r.id in groups else None,
                "group_status": groups[r.id][1] if r.id in groups else None,
            }
        )
        for r in rows
    ]
    next_cursor = Cursor(rows[-1].next_due_at, rows[-1].id).encode() if more and rows else None
    return CasePage(rows, total, next_cursor, terms)


EXPORT_CHUNK = 1000
EXPORT_COLUMNS = (
    "c.id, c.number, c.submitted_at, c.channel, c.category, c.subcategory, c.state, "
    "c.lead_department_id, c.handler_id, c.target_kind, c.target_text, c.target_staff_id, "
    "c.target_department_id, c.contact_name, c.contact_phone, c.place_text, c.facts, "
    "c.next_due_at, c.next_due_stage, c.resolved_at, c.closed_at, c.recall_decision, "
    "c.recall_reason"
)


async def iter_cases(
    staff: Staff,
    flt: CaseFilter,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    tz: ZoneInfo,
    chunk: int = EXPORT_CHUNK,
    conn: BaseDBAsyncClient | None = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every case of the list `staff` sees with `flt` (what `list_cases` pages through), in
    chunks of `chunk` rows by id (keyset: each chunk is one indexed range query, so an export
    of 100 000 cases never holds more than one chunk)."""
    conn = conn or Tortoise.get_connection("default")
    base = _Sql(conn.capabilities.dialect)
    if not await _where(base, staff, flt, now=now, calendar=calendar, tz=tz, conn=conn):
        return
    last = 0
    while True:
        sql = base.copy()
        sql.add(f"c.id > {sql.p(last)}")
        found = await conn.execute_query_dict(
            f"SELECT {EXPORT_COLUMNS} FROM complaint c WHERE {sql.clause()} "
            f"ORDER BY c.id LIMIT {int(chunk)}",
            sql.params,
        )
        if not found:
            return
        for record in found:
            for column in ("submitted_at", "next_due_at", "resolved_at", "closed_at"):
                record[column] = _when(record[column])
        yield found
        if len(found) < chunk:
            return
        last = int(found[-1]["id"])
