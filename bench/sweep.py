"""Deadline sweep cost at scale: 100 000 open complaints, a few hundred of them due.

Prints, for SQLite and PostgreSQL: the time to load the rows, an empty sweep (nothing due), a
sweep over the due rows (reminders/escalations written to the outbox), and the query plan of the
sweep's claim query — an index range scan on `complaint.next_alarm_at`, so the cost follows
the due rows, not the open ones. Figures, not pass/fail.

    python -m bench.sweep [--open 100000] [--due 200] [--pg postgres://postgres@127.0.0.1:5432/x]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tortoise import connections

from config.profiles import load_profile
from models.db import close_db, init_db, is_postgres
from models.entities import Channel, Complaint, Department, OutboxMessage, Staff
from models.workflow import Role, State
from scheduler.alarms import AlarmContext, iso, profile_loader, set_alarm_context
from scheduler.calendar import WorkingCalendar
from scheduler.deadlines import SHANGHAI
from scheduler.jobs import sweep

NOW = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Shanghai
BATCH = 5000


def _entry(start: datetime, due: datetime) -> dict[str, Any]:
    return {
        "start": iso(start),
        "amount": 10,
        "unit": "working_days",
        "due": iso(due),
        "provisional": False,
    }


async def populate(open_count: int, due_count: int) -> None:
    unit = await Department.create(code="unit", name="Unit")
    handler = await Staff.create(
        name="handler", role=Role.HANDLER, department=unit, telegram_chat_id="h"
    )
    await Staff.create(
        name="head", role=Role.DEPARTMENT_HEAD, department=unit, telegram_chat_id="head"
    )
    rows = []
    for i in range(open_count):
        if i < due_count:  # overdue an hour ago: escalation due now
            due = NOW - timedelta(hours=1)
            alarm = due
        else:  # due between 1 and 30 days from now; first reminder a day before
            due = NOW + timedelta(minutes=1440 + (i * 37) % (29 * 1440))
            alarm = due - timedelta(days=1)
        start = due - timedelta(days=14)
        rows.append(
            Complaint(
                number=f"B{i:07d}",
                profile="gov-window",
                category="service_attitude",
                channel=Channel.WEB,
                state=State.IN_PROGRESS,
                deadlines={"resolution": _entry(start, due)},
                next_due_at=due,
                next_due_stage="resolution",
                next_alarm_at=alarm,
                alarm_state={},
                lead_department_id=unit.id,
                handler_id=handler.id,
                submitted_at=start,
                facts="bench",
            )
        )
        if len(rows) == BATCH:
            await Complaint.bulk_create(rows)
            rows = []
    if rows:
        await Complaint.bulk_create(rows)


async def query_plan(url: str) -> str:
    conn = connections.get("default")
    if is_postgres(url):
        await conn.execute_script("ANALYZE complaint")
        sql = (
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT * FROM complaint "
            "WHERE next_alarm_at <= $1 ORDER BY next_alarm_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
        rows = await conn.execute_query_dict(sql, [NOW])
        return "\n".join(r["QUERY PLAN"] for r in rows)
    await conn.execute_script("ANALYZE")
    sql = (
        "EXPLAIN QUERY PLAN SELECT * FROM complaint WHERE next_alarm_at <= ? "
        "ORDER BY next_alarm_at LIMIT 1"
    )
    rows = await conn.execute_query_dict(sql, [NOW.isoformat(sep=" ")])
    return "\n".join(str(r.get("detail")) for r in rows)


async def run(url: str, label: str, open_count: int, due_count: int) -> None:
    await init_db(url)
    profile = load_profile("gov-window")
    context = AlarmContext(WorkingCalendar(), SHANGHAI, profile_loader(profile))
    set_alarm_context(context)
    try:
        t0 = time.perf_counter()
        await populate(open_count, due_count)
        loaded = time.perf_counter() - t0
        t0 = time.perf_counter()
        empty = await sweep(NOW - timedelta(hours=2), profile=profile, context=context)
        empty_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = await sweep(NOW, profile=profile, context=context)
        busy_s = time.perf_counter() - t0
        outbox = await OutboxMessage.all().count()
        print(f"\n== {label}: {open_count} open complaints, {due_count} due ==")
        print(f"load rows:            {loaded:8.2f} s")
        print(f"sweep, nothing due:   {empty_s * 1000:8.1f} ms ({empty.complaints} handled)")
        print(
            f"sweep, {due_count} due:      {busy_s * 1000:8.1f} ms "
            f"({report.complaints} handled, {report.escalations} escalations, "
            f"{outbox} outbox rows, {busy_s / max(report.complaints, 1) * 1000:.1f} ms each)"
        )
        print("claim query plan:")
        print("  " + (await query_plan(url)).replace("\n", "\n  "))
    finally:
        set_alarm_context(None)
        await close_db()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=100_000, help="open complaints")
    parser.add_argument("--due", type=int, default=200, help="of which due now")
    parser.add_argument(
        "--pg",
        default=os.environ.get("COMPLAINTDESK_TEST_DB", "postgres://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL server URL (a scratch database is created and dropped); '' to skip",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await run(f"sqlite://{Path(tmp) / 'bench.sqlite3'}", "SQLite", args.open, args.due)
    if args.pg:
        import asyncpg

        admin = args.pg.replace("postgres://", "postgresql://", 1)
        name = f"cd_bench_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            parts = urlsplit(args.pg)
            url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
            await run(url, "PostgreSQL", args.open, args.due)
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
