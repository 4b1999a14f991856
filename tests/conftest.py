"""Test databases: every DB test runs on SQLite and on PostgreSQL.

PostgreSQL comes from `COMPLAINTDESK_TEST_DB` (a server URL, e.g. postgres://postgres@127.0.0.1:5432/test)
or, when unset, 127.0.0.1:5432 if it answers. Each test gets its own database with a random name,
created and dropped here. Unreachable PostgreSQL skips those tests with the reason, except under
CI=true, where it fails them.

Migrating a database costs about a second on PostgreSQL, so each test process migrates one
template per kind once (a PostgreSQL template database, an SQLite file) and every test gets a
copy: `CREATE DATABASE … TEMPLATE …` or a file copy. The template is dropped when the process
ends; its name is random like the others, so concurrent runs never share one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from handlers.notify import install as install_notification_texts
from models.db import close_db, init_db, migrate

# As the shell does at start-up (bot.app.create_app, `complaintdesk jobs`): the models queue
# notifications in the words of handlers/, which they do not import.
install_notification_texts()

DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"


def _pg_server_url() -> str:
    return os.environ.get("COMPLAINTDESK_TEST_DB") or DEFAULT_PG


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


_pg_state: dict[str, str | None] = {}
_templates: dict[str, str] = {}  # kind -> migrated template (database name or file path)


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


async def _migrated_template(kind: str) -> str:
    """This process's migrated template of `kind`, made on first use."""
    if kind in _templates:
        return _templates[kind]
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="cd_tmpl_"))
        path = folder / "template.sqlite3"
        await migrate(f"sqlite://{path}")
        await close_db()
        _templates[kind] = str(path)
    else:
        name = f"cd_tmpl_{uuid.uuid4().hex[:12]}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        _templates[kind] = name  # recorded first, so a failed migration is still dropped
        await migrate(_with_database(_pg_server_url(), name))
        await close_db()
    return _templates[kind]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop this process's templates (each xdist worker ends its own session)."""
    if "sqlite" in _templates:
        shutil.rmtree(Path(_templates.pop("sqlite")).parent, ignore_errors=True)
    if "postgres" in _templates:
        name = _templates.pop("postgres")
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def db_url(db_kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database of the given kind (a copy of the template), initialised
    for Tortoise."""
    if db_kind == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(await _migrated_template("sqlite"), path)
        url = f"sqlite://{path}"
        await init_db(url, apply_migrations=False)
        try:
            yield url
        finally:
            await close_db()
        return
    await _skip_or_fail_without_postgres()
    template = await _migrated_template("postgres")
    name = f"cd_test_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = _with_database(_pg_server_url(), name)
    try:
        await init_db(url, apply_migrations=False)
        try:
            yield url
        finally:
            await close_db()
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
