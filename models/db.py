"""Database set-up: one Tortoise config for SQLite and PostgreSQL, and migrations."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from tortoise import Tortoise, connections
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError
from tortoise.migrations.api import migrate as tortoise_migrate

T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Accept postgresql:// too; Tortoise names the asyncpg backend postgres://."""
    if url.startswith("postgresql://"):
        return "postgres://" + url.removeprefix("postgresql://")
    return url


def is_postgres(url: str) -> bool:
    return normalise_url(url).startswith(("postgres://", "asyncpg://"))


# PostgreSQL pool per worker: a turn holds a connection for its short transaction; more than
# the cores' worth of concurrent turns only queue inside PostgreSQL. `?minsize=&maxsize=` in
# the URL override these.
POOL_MIN = 2
POOL_MAX = 20


async def _keep_session(conn: Any) -> None:
    """The pool's reset on release, without the reset query.

    asyncpg still rolls back a transaction left open and drops listeners (Connection._reset);
    what the query would add — unlocking session-level advisory locks, closing cursors,
    UNLISTEN, RESET ALL — has nothing to undo here: pool connections take only transaction-level
    locks (the outbox dispatcher's session lock has a connection of its own) and never SET a
    session setting. Measured: one round trip of four on every ordinary statement.
    """


def connection_config(database_url: str) -> dict[str, Any]:
    """Tortoise's connection settings for `database_url`, tuned for the inbound load."""
    config = expand_db_url(normalise_url(database_url))
    credentials = config["credentials"]
    if is_postgres(database_url):
        credentials.setdefault("minsize", POOL_MIN)
        credentials.setdefault("maxsize", POOL_MAX)
        credentials.setdefault("reset", _keep_session)
    elif config["engine"].endswith("sqlite"):
        # WAL with synchronous=NORMAL: a commit is durable against a crash of the process
        # (kill -9: the WAL is in the OS's hands); only an OS crash or power loss can lose the
        # last commits. FULL would fsync every turn.
        credentials.setdefault("synchronous", "NORMAL")
    return config


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": connection_config(database_url)},
        "apps": {
            "models": {
                "models": [
                    "models.entities",
                    "models.desk_auth",
                    "models.api_tokens",
                    "models.lookup",
                    "models.matters",
                ],
                "default_connection": "default",
                "migrations": "models.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def check_sqlite_path(database_url: str) -> None:
    """Refuse an SQLite file that cannot be created, before Tortoise tries: its migration
    runner waits forever on a connection that failed to open."""
    url = normalise_url(database_url)
    if not url.startswith("sqlite://"):
        return
    path = Path(url.removeprefix("sqlite://").split("?", 1)[0])
    if str(path) in ("", ":memory:") or path.exists():
        return
    folder = path.parent
    if not folder.is_dir():
        raise DBConnectionError(f"cannot create SQLite file {path}: no directory {folder}")
    if not os.access(folder, os.W_OK):
        raise DBConnectionError(f"cannot create SQLite file {path}: {folder} is not writable")


async def migrate(database_url: str) -> None:
    """Apply the committed migrations (creates the schema on an empty database)."""
    check_sqlite_path(database_url)
    await tortoise_migrate(config=tortoise_config(database_url))
    await Tortoise.close_connections()


async def init_db(database_url: str, *, apply_migrations: bool = True) -> None:
    if apply_migrations:
        await migrate(database_url)
    await Tortoise.init(config=tortoise_config(database_url))


async def close_db() -> None:
    await Tortoise.close_connections()
    await Tortoise._reset_apps()
    # Tortoise caches built INSERT statements per connection name, not per dialect; a process
    # that switches databases (the test suite runs SQLite then PostgreSQL) must drop them.
    EXECUTOR_CACHE.clear()


@asynccontextmanager
async def database(database_url: str) -> AsyncIterator[None]:
    await init_db(database_url)
    try:
        yield
    finally:
        await close_db()


async def refresh_planner_statistics() -> bool:
    """ANALYZE on SQLite (the daily retention job), so the desk's list queries pick the right
    index; PostgreSQL's autovacuum keeps its own statistics. True when it ran."""
    conn = Tortoise.get_connection("default")
    if conn.capabilities.dialect != "sqlite":
        return False
    await conn.execute_script("ANALYZE")
    return True


async def run_on_sqlite(work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` — plain synchronous sqlite3 calls — on the SQLite connection's own thread, in
    one hand-over to it and back, holding the connection as any Tortoise query does.

    Every aiosqlite call is such a hand-over (a queue put, the worker thread waking, the answer
    posted back to the event loop, each waiting for the GIL), so a step's several statements
    cost one instead of one each. aiosqlite has no public way to run a function on its thread:
    `Connection._execute(fn)` is what each of its public methods is built on (execute_fetchall
    is `_execute(self._execute_fetchall, ...)`); tests/test_turn_store.py pins it. sqlite3's
    errors come back as Tortoise's, like its own queries' (the turn's retry and duplicate
    handling look for those). `work` must leave no transaction open, whatever it raises.
    """
    client = connections.get("default")
    if isinstance(client, TransactionalDBClient):
        # Inside a Tortoise transaction `work` would run in it, not as its own transaction.
        raise RuntimeError("run_on_sqlite inside a transaction")
    async with client.acquire_connection() as connection:
        try:
            return await connection._execute(lambda: work(connection._conn))
        except sqlite3.IntegrityError as error:
            raise IntegrityError(error) from error
        except sqlite3.OperationalError as error:
            raise OperationalError(error) from error
