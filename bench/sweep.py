"""Deadline sweep at scale: 1 000 000 open complaints, 1 000 of them due, on PostgreSQL.

    PYTHONPATH=. python bench/sweep.py [--open 1000000] [--due 1000] [--runs 1]
        [--pg postgres://postgres@127.0.0.1:5432/test] [--sqlite]

In a scratch PostgreSQL database (created, then dropped) the complaints are seeded in one
`INSERT … SELECT FROM generate_series` (seconds, not minutes); the due ones are an hour past
their resolution deadline, so each gets escalation level 1: an outbox row to the department
head, an "overdue" row to the handler and an `escalated` event (each due row has a deadline
of its own, a minute apart, so no two plan alike). Then, in the same run and on
the same due set (restored between them):

* the product's `scheduler.jobs.sweep` — what `complaintdesk jobs sweep` runs;
* a minimal asyncpg reference doing the same writes per due row (claim with `FOR UPDATE SKIP
  LOCKED`, update the row, two outbox rows, one event) in batches of 500 with multi-row
  statements, one commit per batch — the floor for this work on this machine;
* the same reference with one transaction per due row (how the sweep worked before).

Prints wall time, ms per due complaint, and the product's time as a ratio to each reference;
an empty sweep (nothing due) and the claim query's plan. `--runs N` repeats the sweeps on the
same seeded database and prints min / median / max. `--sqlite` adds the product sweep on a
SQLite file (seeded through the ORM: use a smaller `--open`). Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tortoise import connections

from config.profiles import load_profile
from handlers.notify import install as install_notification_texts
from models.alarms import AlarmContext, iso, profile_loader, set_alarm_context
from models.db import close_db, init_db
from models.entities import Channel, Complaint, Department, Event, OutboxMessage, Staff
from models.workflow import Role, State
from scheduler.calendar import WorkingCalendar
from scheduler.deadlines import SHANGHAI
from scheduler.jobs import sweep

NOW = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Shanghai
BATCH = 5000
REFERENCE_BATCH = 500


async def staff() -> tuple[int, int]:
    unit = await Department.create(code="unit", name="Unit")
    handler = await Staff.create(
        name="handler", role=Role.HANDLER, department=unit, telegram_chat_id="h"
    )
    await Staff.create(
        name="head", role=Role.DEPARTMENT_HEAD, department=unit, telegram_chat_id="head"
    )
    return unit.id, handler.id


# The same rows as `populate_orm` below, in one statement: row i (1-based) is due when i <= due.
_SEED_SQL = """
INSERT INTO complaint (
    number, profile, category, channel, state, deadlines, next_due_at, next_due_stage,
    next_alarm_at, alarm_state, lead_department_id, handler_id, submitted_at, facts,
    anonymous, written, confidential, deadline_provisional, extensions_used, intake_extra,
    created_at, updated_at)
SELECT 'B' || lpad(i::text, 7, '0'), 'gov-window', 'service_attitude', 'web', 'in_progress',
    jsonb_build_object('resolution', jsonb_build_object(
        'start', to_char((due - interval '14 days') AT TIME ZONE 'UTC',
                         'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
        'amount', 10, 'unit', 'working_days',
        'due', to_char(due AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
        'provisional', false)),
    due, 'resolution',
    CASE WHEN i <= $2 THEN due ELSE due - interval '1 day' END,
    '{}'::jsonb, $3, $4, due - interval '14 days', 'bench',
    false, false, true, false, 0, '{}'::jsonb, $1, $1
FROM (
    SELECT i, CASE WHEN i <= $2 THEN $1::timestamptz - make_interval(mins => 60 + i)
                   ELSE $1::timestamptz + make_interval(mins => 1440 + (i * 37) % (29 * 1440))
              END AS due
    FROM generate_series(1, $5) AS i
) AS rows
"""


async def populate_pg(open_count: int, due_count: int) -> None:
    unit, handler = await staff()
    conn = connections.get("default")
    await conn.execute_query(_SEED_SQL, [NOW, due_count, unit, handler, open_count])
    await conn.execute_script("ANALYZE complaint")


def _entry(start: datetime, due: datetime) -> dict[str, Any]:
    return {
        "start": iso(start),
        "amount": 10,
        "unit": "working_days",
        "due": iso(due),
        "provisional": False,
    }


async def populate_orm(open_count: int, due_count: int) -> None:
    unit, handler = await staff()
    rows = []
    for i in range(1, open_count + 1):
        if i <= due_count:  # overdue an hour or more ago, each its own instant: escalation due
            due = NOW - timedelta(minutes=60 + i)
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
                lead_department_id=unit,
                handler_id=handler,
                submitted_at=start,
                facts="bench",
            )
        )
        if len(rows) == BATCH:
            await Complaint.bulk_create(rows)
            rows = []
    if rows:
        await Complaint.bulk_create(rows)


async def restore_due(due_count: int) -> None:
    """Put the due set back as seeded: alarms due again, nothing written by a sweep."""
    conn = connections.get("default")
    await OutboxMessage.all().delete()
    await Event.all().delete()
    await conn.execute_script(
        "UPDATE complaint SET alarm_state = '{}', next_alarm_at = next_due_at "
        f"WHERE number <= 'B{due_count:07d}'"
    )
    if conn.capabilities.dialect == "postgres":
        await conn.execute_script("VACUUM ANALYZE complaint")
        await conn.execute_script("VACUUM ANALYZE outbox")


# ------------------------------------------------------------------ the asyncpg reference

_REF_CLAIM = """
SELECT id, number, alarm_state FROM complaint WHERE next_alarm_at <= $1
ORDER BY next_alarm_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
"""
_REF_UPDATE = """
UPDATE complaint AS c SET alarm_state = v.state::jsonb, next_alarm_at = $4, updated_at = $3
FROM unnest($1::int[], $2::text[]) AS v(id, state)
WHERE c.id = v.id
"""
_REF_OUTBOX = """
INSERT INTO outbox (idempotency_key, channel, chat_id, payload, status, attempts,
    next_attempt_at, complaint_id, created_at, in_response)
SELECT k, 'telegram', chat, p::jsonb, 'pending', 0, $4, cid, $4, false
FROM unnest($1::text[], $2::text[], $3::text[], $5::int[]) AS v(k, chat, p, cid)
ON CONFLICT (idempotency_key) DO NOTHING
"""
_REF_EVENT = """
INSERT INTO event (complaint_id, actor_role, action, from_state, to_state, payload, created_at)
SELECT cid, 'system', 'escalated', 'in_progress', 'in_progress', p::jsonb, $3
FROM unnest($1::int[], $2::text[]) AS v(cid, p)
"""


def _dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


async def reference_sweep(url: str, batched: bool) -> int:
    """The same writes as the product's sweep, with nothing but asyncpg and fixed texts."""
    import asyncpg

    conn = await asyncpg.connect(_dsn(url))
    handled = 0
    try:
        size = REFERENCE_BATCH if batched else 1
        while True:
            async with conn.transaction():
                rows = await conn.fetch(_REF_CLAIM, NOW, size)
                if not rows:
                    break
                ids = [r["id"] for r in rows]
                state = '{"resolution@x": {"escalated": 1, "exhausted": true}}'
                later = NOW + timedelta(days=1)
                await conn.execute(_REF_UPDATE, ids, [state] * len(ids), NOW, later)
                keys, chats, payloads, owners = [], [], [], []
                for r in rows:
                    for who in ("head", "h"):
                        keys.append(f"ref:{r['id']}:{who}")
                        chats.append(who)
                        payloads.append(f'{{"text": "complaint {r["number"]} is overdue"}}')
                        owners.append(r["id"])
                await conn.execute(_REF_OUTBOX, keys, chats, payloads, NOW, owners)
                await conn.execute(
                    _REF_EVENT, ids, ['{"stage": "resolution", "level": 1}'] * len(ids), NOW
                )
                handled += len(rows)
    finally:
        await conn.close()
    return handled


# ------------------------------------------------------------------ runs


async def query_plan() -> str:
    conn = connections.get("default")
    sql = (
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT * FROM complaint "
        "WHERE next_alarm_at <= $1 ORDER BY next_alarm_at, id LIMIT 500 FOR UPDATE SKIP LOCKED"
    )
    rows = await conn.execute_query_dict(sql, [NOW - timedelta(days=30)])
    return "\n".join(r["QUERY PLAN"] for r in rows)


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:8.3f}"
    return (
        f"{min(values):8.3f} / {statistics.median(values):8.3f} / {max(values):8.3f} "
        "(min / median / max)"
    )


async def run_pg(url: str, args: argparse.Namespace) -> None:
    await init_db(url)
    profile = load_profile("gov-window")
    context = AlarmContext(WorkingCalendar(), SHANGHAI, profile_loader(profile))
    set_alarm_context(context)
    install_notification_texts()
    product: list[float] = []
    batched: list[float] = []
    per_row: list[float] = []
    try:
        t0 = time.perf_counter()
        await populate_pg(args.open, args.due)
        seeded = time.perf_counter() - t0
        print(f"\n== PostgreSQL: {args.open} open complaints, {args.due} due ==")
        print(f"seed rows (generate_series): {seeded:8.2f} s")
        t0 = time.perf_counter()
        before_any = NOW - timedelta(minutes=120 + args.due)  # before every seeded alarm
        empty = await sweep(before_any, profile=profile, context=context)
        print(
            f"sweep, nothing due:          {(time.perf_counter() - t0) * 1000:8.1f} ms "
            f"({empty.complaints} handled)"
        )
        for run_no in range(1, args.runs + 1):
            await restore_due(args.due)
            t0 = time.perf_counter()
            report = await sweep(NOW, profile=profile, context=context)
            took = time.perf_counter() - t0
            product.append(took)
            outbox = await OutboxMessage.all().count()
            events = await Event.filter(action="escalated").count()
            print(
                f"run {run_no}: product sweep {took:7.3f} s — {report.complaints} handled, "
                f"{report.escalations} escalations, {outbox} outbox rows, {events} events, "
                f"{len(report.failed)} failed"
            )
            for label, is_batched, into in (
                ("batched", True, batched),
                ("per row", False, per_row),
            ):
                await restore_due(args.due)
                t0 = time.perf_counter()
                handled = await reference_sweep(url, is_batched)
                took = time.perf_counter() - t0
                into.append(took)
                print(f"run {run_no}: asyncpg reference, {label}: {took:7.3f} s ({handled} rows)")
        due = max(args.due, 1)
        print(f"\nproduct sweep, wall s:          {_spread(product)}")
        print(f"  ms per due complaint:         {_spread([t * 1000 / due for t in product])}")
        print(f"reference (batched), wall s:    {_spread(batched)}")
        print(f"  ms per due complaint:         {_spread([t * 1000 / due for t in batched])}")
        print(f"reference (per row), wall s:    {_spread(per_row)}")
        ratios = [p / b for p, b in zip(product, batched, strict=True)]
        print(f"ratio product / batched ref.:   {_spread(ratios)}")
        ratios = [p / r for p, r in zip(product, per_row, strict=True)]
        print(f"ratio product / per-row ref.:   {_spread(ratios)}")
        target = "met" if statistics.median(product) <= 2.0 else "NOT met"
        print(
            f"target <= 2 s for the due set:  {target} (median {statistics.median(product):.3f} s)"
        )
        print("claim query plan (nothing due):")
        print("  " + (await query_plan()).replace("\n", "\n  "))
    finally:
        set_alarm_context(None)
        await close_db()


async def run_sqlite(url: str, args: argparse.Namespace) -> None:
    await init_db(url)
    profile = load_profile("gov-window")
    context = AlarmContext(WorkingCalendar(), SHANGHAI, profile_loader(profile))
    set_alarm_context(context)
    try:
        t0 = time.perf_counter()
        await populate_orm(args.open, args.due)
        print(f"\n== SQLite: {args.open} open complaints, {args.due} due ==")
        print(f"seed rows (ORM):             {time.perf_counter() - t0:8.2f} s")
        t0 = time.perf_counter()
        report = await sweep(NOW, profile=profile, context=context)
        took = time.perf_counter() - t0
        print(
            f"product sweep:               {took:8.3f} s ({report.complaints} handled, "
            f"{took * 1000 / max(report.complaints, 1):.2f} ms each)"
        )
    finally:
        set_alarm_context(None)
        await close_db()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=1_000_000, help="open complaints")
    parser.add_argument("--due", type=int, default=1_000, help="of which due now")
    parser.add_argument("--runs", type=int, default=1, help="sweeps of the same due set")
    parser.add_argument("--sqlite", action="store_true", help="also sweep a SQLite file")
    parser.add_argument(
        "--pg",
        default=os.environ.get("COMPLAINTDESK_TEST_DB", "postgres://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL server URL (a scratch database is created and dropped); '' to skip",
    )
    args = parser.parse_args()
    if args.pg:
        import asyncpg

        name = f"cd_sweep_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(_dsn(args.pg))
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            parts = urlsplit(args.pg)
            url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
            await run_pg(url, args)
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            await run_sqlite(f"sqlite://{Path(tmp) / 'bench.sqlite3'}", args)


if __name__ == "__main__":
    asyncio.run(main())
