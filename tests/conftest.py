"""Test databases: every DB test runs on SQLite and on PostgreSQL.

PostgreSQL comes from `COMPLAINTDESK_TEST_DB` (a server URL, e.g. postgres://postgres@127.0.0.1:5432/test)
or, when unset, 127.0.0.1:5432 if it answers. Each test gets its own database with a random name,
created and dropped here. Unreachable PostgreSQL skips those tests with the reason, except under
CI=true, where it fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from models.db import close_db, init_db

DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"


def _pg_server_url() -> str:
    return os.environ.get("COMPLAINTDESK_TEST_DB") or DEFAULT_PG


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


_pg_state: dict[str, str | None] = {}


async def _pg_admin(sql: str) -> None:
    import asyncpg

    url = _pg_server_url().replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_unreachable_reason() -> str | None:
    if "reason" not in _pg_state:
        try:
            await _pg_admin("SELECT 1")
            _pg_state["reason"] = None
        except Exception as exc:  # any failure to reach the server is the reason to report
            _pg_state["reason"] = f"PostgreSQL at {_pg_server_url()} unreachable: {exc!r}"
    return _pg_state["reason"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"db_url", "empty_db_url"} & set(metafunc.fixturenames):
        metafunc.parametrize("db_kind", ["sqlite", "postgres"], indirect=False)


async def _skip_or_fail_without_postgres() -> None:
    reason = await _pg_unreachable_reason()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)


@pytest.fixture
async def empty_db_url(db_kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database of the given kind with no schema and Tortoise not initialised."""
    if db_kind == "sqlite":
        yield f"sqlite://{tmp_path / 'empty.sqlite3'}"
        return
    await _skip_or_fail_without_postgres()
    name = f"cd_test_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(_pg_server_url(), name)
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def db_url(db_kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database of the given kind, initialised for Tortoise."""
    if db_kind == "sqlite":
        url = f"sqlite://{tmp_path / 'test.sqlite3'}"
        await init_db(url)
        try:
            yield url
        finally:
            await close_db()
        return
    await _skip_or_fail_without_postgres()
    name = f"cd_test_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = _with_database(_pg_server_url(), name)
    try:
        await init_db(url)
        try:
            yield url
        finally:
            await close_db()
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
