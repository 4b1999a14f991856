"""`complaintdesk migrate` creates the schema on an empty database and is idempotent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiosqlite
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
TABLES = {"complaint", "event", "outbox", "dialog_session", "monthly_serial", "staff"}


def _migrate(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "migrate", "--db", url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


async def _tables(url: str) -> set[str]:
    if url.startswith("sqlite://"):
        async with aiosqlite.connect(url.removeprefix("sqlite://")) as db:
            rows = await db.execute_fetchall("SELECT name FROM sqlite_master WHERE type='table'")
            return {r[0] for r in rows}
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_migrate_creates_the_schema_then_changes_nothing(empty_db_url: str) -> None:
    first = _migrate(empty_db_url)
    assert first.returncode == 0, first.stderr
    assert "migrations applied" in first.stdout
    assert TABLES <= await _tables(empty_db_url)
    again = _migrate(empty_db_url)
    assert again.returncode == 0, again.stderr
    assert TABLES <= await _tables(empty_db_url)


def test_migrate_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "migrate", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0
    assert "--db" in result.stdout
