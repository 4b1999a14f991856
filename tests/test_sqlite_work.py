"""models.db.run_on_sqlite: plain sqlite3 work on aiosqlite's connection thread, one hand-over
and one transaction for all the works waiting, each in its own savepoint, sqlite3's errors as
Tortoise's.

It rests on aiosqlite's private `Connection._execute`: these tests are what notices an aiosqlite
upgrade that changes it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import aiosqlite
import pytest
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.transactions import in_transaction

from models.db import run_on_sqlite
from models.entities import Channel, ProcessedUpdate


def _sqlite_only(db_kind: str) -> None:
    if db_kind != "sqlite":
        pytest.skip("the connection thread is aiosqlite's; PostgreSQL has no such hand-over")


def _record(key: str):
    def work(conn: sqlite3.Connection) -> int:
        row = conn.execute(
            "INSERT INTO processed_update (channel, update_key, created_at) "
            "VALUES ('telegram', ?, '2026-12-02 10:00:00+00:00') RETURNING id",
            (key,),
        ).fetchone()
        return int(row[0])

    return work


async def test_work_runs_on_the_connection_thread_and_its_result_comes_back(
    db_url: str, db_kind: str
) -> None:
    _sqlite_only(db_kind)
    loop_thread = threading.get_ident()
    ran_on, value = await run_on_sqlite(
        lambda conn: (threading.get_ident(), conn.execute("SELECT 41 + 1").fetchone()[0])
    )
    assert ran_on != loop_thread and value == 42


async def test_works_waiting_together_share_one_hand_over_and_commit_each_its_own_savepoint(
    db_url: str, db_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sqlite_only(db_kind)
    await ProcessedUpdate.exists()  # the connection opened (its PRAGMAs are hand-overs too)
    handovers = 0
    real = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn, *args, **kwargs):
        nonlocal handovers
        handovers += 1
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    commits = 0

    def traced(statement: str) -> None:
        nonlocal commits
        commits += statement.strip().upper() == "COMMIT"

    await run_on_sqlite(lambda conn: conn.set_trace_callback(traced))
    handovers = commits = 0

    def undone(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM processed_update")
        raise ValueError("changed its mind")

    outcomes = await asyncio.gather(
        run_on_sqlite(_record("first")),
        run_on_sqlite(_record("first")),  # taken: this one alone fails
        run_on_sqlite(undone),
        run_on_sqlite(_record("second")),
        return_exceptions=True,
    )
    assert handovers == 1
    assert commits == 1
    first, taken, broken, second = outcomes
    assert isinstance(first, int) and isinstance(second, int) and second > first
    assert isinstance(taken, IntegrityError)
    assert isinstance(broken, ValueError)
    # Each failed work's writes undone, the others' kept: nothing deleted, two recorded.
    keys = await ProcessedUpdate.filter(channel=Channel.TELEGRAM).values_list(
        "update_key", flat=True
    )
    assert sorted(keys) == ["first", "second"]


async def test_sqlite_errors_come_back_as_tortoise_errors_and_the_connection_goes_on(
    db_url: str, db_kind: str
) -> None:
    _sqlite_only(db_kind)
    with pytest.raises(OperationalError):
        await run_on_sqlite(lambda conn: conn.execute("SELECT * FROM no_such_table"))
    await run_on_sqlite(_record("after"))
    assert await ProcessedUpdate.filter(update_key="after").exists()


async def test_a_cancelled_caller_does_not_stop_the_others(db_url: str, db_kind: str) -> None:
    _sqlite_only(db_kind)
    cancelled = asyncio.ensure_future(run_on_sqlite(_record("cancelled")))
    kept = asyncio.ensure_future(run_on_sqlite(_record("kept")))
    await asyncio.sleep(0)
    cancelled.cancel()
    assert isinstance(await kept, int)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await ProcessedUpdate.filter(update_key="kept").exists()


async def test_refused_inside_a_tortoise_transaction(db_url: str, db_kind: str) -> None:
    _sqlite_only(db_kind)
    async with in_transaction():
        with pytest.raises(RuntimeError):
            await run_on_sqlite(lambda conn: conn.execute("SELECT 1").fetchone())
