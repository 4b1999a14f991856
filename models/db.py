"""Database set-up: one Tortoise config for SQLite and PostgreSQL, and migrations."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, TypeVar

from tortoise import Tortoise, connections
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError
from tortoise.migrations.api import migrate as tortoise_migrate
from tortoise.models import Model

T = TypeVar("T")
M = TypeVar("M", bound=Model)


def normalise_url(url: str) -> str:
    """Accept postgresql:// too; Tortoise names the asyncpg backend postgres://."""
    if url.startswith("postgresql://"):
        return "postgres://" + url.removeprefix("postgresql://")
    return url


# -- hand-written reads of whole rows ----------------------------------------------------------
# For the reads every filing and every first message make: Tortoise builds each query anew
# through pypika (measured: about half of the confirm step's CPU was query building), while
# these are a fixed text with parameters. The rows become models as Tortoise's own executor
# makes them (Model._init_from_db), so what the caller gets is the same.


@cache
def _select_list(model: type[Model]) -> str:
    columns = model._meta.fields_db_projection.values()
    return ", ".join(f'"{column}"' for column in columns)


_MARK = re.compile(r"\?")


@lru_cache(maxsize=512)
def in_dialect(sql: str, dialect: str) -> str:
    """`sql` written with `?` marks, numbered ($1, $2, …) for PostgreSQL. The texts are ours
    and hold no literal question mark."""
    if dialect != "postgres":
        return sql
    numbers = iter(range(1, 1000))
    return _MARK.sub(lambda _: f"${next(numbers)}", sql)


async def select_models(
    model: type[M],
    conn: Any | None,
    where: str,
    values: Sequence[Any],
    *,
    tail: str = "",
) -> list[M]:
    """The rows of `model`'s table matching `where` (SQL with `?` marks for `values`: strings,
    numbers, booleans), as models; `tail` follows the WHERE (ORDER BY, LIMIT, FOR UPDATE).
    `conn` None: the default connection."""
    conn = conn or connections.get("default")
    sql = f'SELECT {_select_list(model)} FROM "{model._meta.db_table}" WHERE {where}{tail}'
    _, rows = await conn.execute_query(in_dialect(sql, conn.capabilities.dialect), list(values))
    return [model._init_from_db(**dict(row)) for row in rows]


async def select_values(
    model: type[Model],
    conn: Any,
    columns: Sequence[str],
    where: str,
    values: Sequence[Any],
    *,
    tail: str = "",
) -> list[dict[str, Any]]:
    """`columns` of the rows of `model`'s table matching `where`, as dicts of Python values
    (each through its field, as Tortoise's `.values()` gives them). Datetimes among `values`
    must be in UTC: SQLite compares them as the text Tortoise stores."""
    fields = model._meta.fields_map
    listed = ", ".join(f'"{name}"' for name in columns)
    sql = f'SELECT {listed} FROM "{model._meta.db_table}" WHERE {where}{tail}'
    _, rows = await conn.execute_query(in_dialect(sql, conn.capabilities.dialect), list(values))
    return [{name: fields[name].to_python_value(row[name]) for name in columns} for row in rows]


# -- rows inserted together ------------------------------------------------------------------


@dataclass(frozen=True)
class NewRow:
    """A model instance to INSERT, with the relations (foreign-key fields, by name) that point
    at rows inserted before it in the same `insert_linked` call (by their index there)."""

    instance: Model
    links: tuple[tuple[str, int], ...] = ()


@cache
def _insert_fields(model: type[Model]) -> tuple[str, ...]:
    """The fields an INSERT of `model` gives, as Tortoise's executor does (no generated pk)."""
    meta = model._meta
    return tuple(name for name in meta.fields_db_projection if not meta.fields_map[name].generated)


@lru_cache(maxsize=64)
def _linked_insert_sql(shape: tuple[tuple[type[Model], tuple[tuple[str, int], ...]], ...]) -> str:
    """One PostgreSQL statement inserting rows of `shape` (each model with its links as source
    fields and the index of the row each names), the linked columns taken from the earlier
    rows' RETURNING."""
    parts: list[str] = []
    number = iter(range(1, 10_000))
    for index, (model, links) in enumerate(shape):
        meta = model._meta
        linked = dict(links)
        columns, values = [], []
        for name in _insert_fields(model):
            columns.append(f'"{meta.fields_db_projection[name]}"')
            if name in linked:
                values.append(f'(SELECT "id" FROM r{linked[name]})')
            else:
                values.append(f"${next(number)}")
        parts.append(
            f'r{index} AS (INSERT INTO "{meta.db_table}" ({", ".join(columns)}) '
            f'VALUES ({", ".join(values)}) RETURNING "{meta.db_pk_column}" AS "id")'
        )
    ids = ", ".join(f'(SELECT "id" FROM r{i}) AS r{i}' for i in range(len(shape)))
    return f"WITH {', '.join(parts)} SELECT {ids}"


@lru_cache(maxsize=64)
def _sqlite_insert_sql(model: type[Model]) -> str:
    meta = model._meta
    columns = [f'"{meta.fields_db_projection[name]}"' for name in _insert_fields(model)]
    marks = ", ".join("?" * len(columns))
    return (
        f'INSERT INTO "{meta.db_table}" ({", ".join(columns)}) VALUES ({marks}) '
        f'RETURNING "{meta.db_pk_column}"'
    )


def _insert_on_sqlite(
    conn: sqlite3.Connection,
    shape: Sequence[tuple[type[Model], tuple[tuple[str, int], ...]]],
    values: Sequence[Any],
) -> list[int]:
    """On the connection's thread, inside the caller's transaction: `shape`'s rows inserted in
    order (`values` as for the PostgreSQL statement, without the linked columns); their ids.
    sqlite3's errors come out as Tortoise's."""
    ids: list[int] = []
    given = iter(values)
    try:
        for model, links in shape:
            linked = dict(links)
            row = [
                ids[linked[name]] if name in linked else next(given)
                for name in _insert_fields(model)
            ]
            ids.append(int(conn.execute(_sqlite_insert_sql(model), row).fetchone()[0]))
    except sqlite3.Error as error:
        raise _as_tortoise(error) from error
    return ids


async def insert_linked(conn: Any, rows: Sequence[NewRow]) -> None:
    """INSERT `rows` in order, each link set to the row it names; the instances get their ids
    and relations, and Tortoise's save signals run as `Model.save` runs them. On PostgreSQL
    one statement (a CTE), where `save` takes one round trip per row and builds each INSERT's
    values through the model again (measured: the filing's three INSERTs were a fifth of the
    confirm step's CPU); on SQLite, which has no writing CTEs, the INSERTs one after the other in
    one hand-over to the connection's thread (inside the caller's transaction; outside one, one
    `save` per row)."""
    postgres = conn.capabilities.dialect == "postgres"
    if not postgres and not isinstance(conn, TransactionalDBClient):
        # Outside a transaction the rows would not go together: as Model.save does it.
        for row in rows:
            for relation, index in row.links:
                setattr(row.instance, relation, rows[index].instance)
            await row.instance.save(using_db=conn, force_create=True)
        return
    shape: list[tuple[type[Model], tuple[tuple[str, int], ...]]] = []
    values: list[Any] = []
    for row in rows:
        instance = row.instance
        fields = instance._meta.fields_map
        links = tuple((fields[relation].source_field, i) for relation, i in row.links)
        shape.append((type(instance), links))
        await instance._set_async_default_field()
        await instance._pre_save(conn, None)
        sources = dict(links)
        for name in _insert_fields(type(instance)):
            if name not in sources:
                values.append(fields[name].to_db_value(getattr(instance, name), instance))
    if postgres:
        _, result = await conn.execute_query(_linked_insert_sql(tuple(shape)), values)
        ids = list(result[0].values())
    else:  # the rows one after the other in ONE hand-over to the connection's thread
        async with conn.acquire_connection() as connection:
            ids = await connection._execute(_insert_on_sqlite, connection._conn, shape, values)
    for row, pk in zip(rows, ids, strict=True):
        row.instance.pk = pk
        row.instance._saved_in_db = True
    for row in rows:
        for relation, index in row.links:
            setattr(row.instance, relation, rows[index].instance)
        await row.instance._post_save(conn, True, None)


async def open_pool(statements: Sequence[str] = ()) -> int:
    """Open the PostgreSQL pool to its full size now, each connection having prepared
    `statements` once (so their column and parameter types are looked up), instead of during
    the first burst of traffic: a worker started into a busy hour opened its connections one
    by one while its first turns waited (at 200 people writing at once, their first messages
    took about twice as long as the rest). Returns the connections opened; 0 on SQLite. Idle
    ones beyond the pool's minimum close again after asyncpg's idle lifetime."""
    client: Any = connections.get("default")
    if client.capabilities.dialect != "postgres":
        return 0
    size = int(getattr(client, "pool_maxsize", POOL_MAX))
    gate = asyncio.Barrier(size)

    async def hold_one() -> None:
        async with client.acquire_connection() as conn:
            for sql in statements:
                await conn.prepare(sql)  # the types' codecs stay with the connection
            await gate.wait()  # all held at once, so the pool must open every one

    await asyncio.wait_for(asyncio.gather(*(hold_one() for _ in range(size))), 30)
    return size


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
    """Run `work` — plain synchronous sqlite3 calls — on the SQLite connection's own thread,
    holding the connection as any Tortoise query does; its result, or its error as Tortoise's.

    Every aiosqlite call is a hand-over to that thread and back (a queue put, the thread waking,
    the answer posted back to the event loop, each side waiting for the GIL): a step's several
    statements in one `work` cost one. Works submitted while one hand-over is in flight go
    together in the next, in order, in ONE transaction (group commit: one hand-over and one
    COMMIT for all of them), each in a savepoint of its own: a work that raises has its own
    writes undone and the others' kept. Nobody hears of a result before that COMMIT, so a crash
    in between loses only writes whose callers were never answered. A work waits for at most one
    hand-over in flight before its own. `work` runs inside the transaction: it must not BEGIN,
    COMMIT or ROLLBACK itself (raising is how it undoes its writes).
    """
    client = connections.get("default")
    if isinstance(client, TransactionalDBClient):
        # Inside a Tortoise transaction `work` would run in it, not as its own transaction.
        raise RuntimeError("run_on_sqlite inside a transaction")
    return await _SQLITE_WORK.run(client, work)


# A work waiting for the connection's thread: the client it is for, the work, its answer.
_Waiting = tuple[Any, Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]


class _SqliteWork:
    """The works waiting for the connection's thread, handed over together (see run_on_sqlite)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[_Waiting] = []
        self._task: asyncio.Task[None] | None = None  # the running flush, kept from the GC

    async def run(self, client: Any, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests run one per test)
            self._loop, self._waiting, self._task = loop, [], None
        done: asyncio.Future[T] = loop.create_future()
        self._waiting.append((client, work, done))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        while self._waiting:
            client = self._waiting[0][0]
            batch = [w for w in self._waiting if w[0] is client and not w[2].done()]
            self._waiting = [w for w in self._waiting if w[0] is not client]
            if not batch:
                continue  # all cancelled before their turn: nothing to run
            try:
                async with client.acquire_connection() as connection:
                    works = [work for _, work, _ in batch]
                    outcomes = await connection._execute(_run_works, connection, works)
            except BaseException as error:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            for (_, _, done), (ok, value) in zip(batch, outcomes, strict=True):
                if done.done():
                    continue  # the caller was cancelled meanwhile; the work ran all the same
                if ok:
                    done.set_result(value)
                else:
                    done.set_exception(value)


def _run_works(
    connection: Any, works: list[Callable[[sqlite3.Connection], Any]]
) -> list[tuple[bool, Any]]:
    """On the connection's thread: the works in one transaction, each in a savepoint; each one's
    result or error (as Tortoise's), or, when the transaction itself fails, its error for all.

    `connection._execute` (the caller) is aiosqlite's private queueing of a function on that
    thread — what each of its public methods is built on (execute_fetchall is
    `_execute(self._execute_fetchall, ...)`); aiosqlite has no public way to run one. Pinned by
    tests/test_sqlite_work.py."""
    conn: sqlite3.Connection = connection._conn
    outcomes: list[tuple[bool, Any]] = []
    try:
        # IMMEDIATE: the write lock first, queuing on it (busy timeout) instead of failing the
        # way a read-then-write transaction does when another process committed in between.
        conn.execute("BEGIN IMMEDIATE")
        if len(works) == 1:  # the transaction is the work's own: no savepoint needed
            outcomes.append((True, works[0](conn)))
            conn.commit()
            return outcomes
        for work in works:
            conn.execute("SAVEPOINT work")
            try:
                outcomes.append((True, work(conn)))
            except Exception as error:
                conn.execute("ROLLBACK TO work")  # fails too if SQLite undid the transaction
                outcomes.append((False, _as_tortoise(error)))
            conn.execute("RELEASE work")
        conn.commit()
    except Exception as error:
        if conn.in_transaction:
            conn.rollback()
        return [(False, _as_tortoise(error))] * len(works)
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return outcomes


def _as_tortoise(error: Exception) -> Exception:
    """sqlite3's errors as Tortoise's own queries raise them (what callers look for)."""
    if isinstance(error, sqlite3.IntegrityError):
        return IntegrityError(error)
    if isinstance(error, sqlite3.OperationalError):
        return OperationalError(error)
    return error


_SQLITE_WORK = _SqliteWork()
