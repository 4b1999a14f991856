"""An ordinary dialog step in the fewest statements: one read, the engine, one atomic write.

    read    one SELECT, no transaction, no lock: the person's dialog session (state, version),
            their complainant row (id, language), and whether the update id was seen
    engine  handlers.dialog runs with nothing held in the database
    write   PostgreSQL: ONE statement (a CTE) — the state stored only if its version is still
            the one read, the update id recorded, the replies inserted as outbox rows (claimed
            for the immediate send unless the chat has older open rows); SQLite: the same four
            writes in one short transaction (it has no writing CTEs), run by one synchronous
            function on the connection's thread — one hand-over to it and one COMMIT, shared
            with the writes waiting meanwhile (models.db.run_on_sqlite, each in a savepoint of
            its own) — the write lock held only for them, never while the engine runs

One statement is one transaction on PostgreSQL, so a crash commits all of it or nothing: the
state, the update id and the replies go together, as in the full turn (bot.conversation).
Another worker that saved the session in between makes the version check fail: nothing is
written and the caller runs the turn again (optimistic, where the full turn takes a row lock).
A concurrent delivery of the same update that committed first makes the update id's unique key
fail: IntegrityError, which the caller answers as a redelivery.

Only what this module writes takes this path; a step that files, changes or looks up anything
else (the engine's commands, the survey) runs as the full turn.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.fields.data import JSON_DUMPS, JSON_LOADS

import bot.replies
from bot.replies import (
    MAX_REPLIES,
    ORDERED,
    ClaimedReply,
    Replies,
    StaleSession,
    reply_key,
    wall_clock,
)
from handlers.messages import Outgoing
from models.db import run_on_sqlite
from models.entities import Channel, OutboxStatus
from models.outbox import outgoing_to_json

_PENDING, _SENDING = OutboxStatus.PENDING.value, OutboxStatus.SENDING.value
_SENT = OutboxStatus.SENT.value


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the step reads. `session_id` None: the person has no session yet (a full turn)."""

    seen: bool  # the update id is recorded: a redelivery
    session_id: int | None
    version: int
    state: dict[str, Any]
    person_id: int | None
    person_language: str | None


def _dialect() -> str:
    return str(connections.get("default").capabilities.dialect)


_PG_LOAD = """
SELECT s.id AS session_id, s.version, s.state::text AS state,
       c.id AS person_id, c.language AS person_language,
       EXISTS (SELECT 1 FROM processed_update WHERE channel = $1 AND update_key = $3) AS seen
FROM (SELECT 1) AS one
LEFT JOIN dialog_session AS s ON s.channel = $1 AND s.external_id = $2
LEFT JOIN complainant AS c ON c.channel = $1 AND c.external_id = $2
"""

_SQLITE_LOAD = """
SELECT s.id AS session_id, s.version, s.state AS state,
       c.id AS person_id, c.language AS person_language,
       EXISTS (SELECT 1 FROM processed_update WHERE channel = ?1 AND update_key = ?3) AS seen
FROM (SELECT 1) AS one
LEFT JOIN dialog_session AS s ON s.channel = ?1 AND s.external_id = ?2
LEFT JOIN complainant AS c ON c.channel = ?1 AND c.external_id = ?2
"""


async def load(channel: Channel, user_id: str, key: str) -> Snapshot:
    client = connections.get("default")
    if _dialect() == "postgres":
        async with client.acquire_connection() as conn:
            row: Any = await conn.fetchrow(_PG_LOAD, channel.value, user_id, key)
    else:  # through the same hand-over as the writes waiting meanwhile
        args = (channel.value, user_id, key)
        row = await run_on_sqlite(lambda conn: conn.execute(_SQLITE_LOAD, args).fetchone())
    return Snapshot(
        seen=bool(row["seen"]),
        session_id=row["session_id"],
        version=int(row["version"] or 0),
        state=_state_of(row["state"]),
        person_id=row["person_id"],
        person_language=row["person_language"],
    )


_PG_OPEN = """
INSERT INTO dialog_session (channel, external_id, state, version, updated_at)
VALUES ($1, $2, '{}'::jsonb, 0, $3)
ON CONFLICT (channel, external_id) DO UPDATE SET channel = EXCLUDED.channel
RETURNING id, version, state::text AS state
"""

_SQLITE_OPEN = """
INSERT INTO dialog_session (channel, external_id, state, version, updated_at)
VALUES (?, ?, '{}', 0, ?)
ON CONFLICT (channel, external_id) DO UPDATE SET channel = excluded.channel
RETURNING id, version, state
"""


async def open_session(
    channel: Channel, user_id: str, snapshot: Snapshot, now: datetime
) -> Snapshot:
    """`snapshot` with a session row for a person who had none: an empty one is created (its
    own short statement: an empty session is what the full turn would create too), or the one
    another delivery created meanwhile is taken as it is."""
    client = connections.get("default")
    when = now.astimezone(UTC)
    if _dialect() == "postgres":
        async with client.acquire_connection() as conn:
            row: Any = await conn.fetchrow(_PG_OPEN, channel.value, user_id, when)
    else:  # through the same hand-over as the reads and writes waiting meanwhile
        args = (channel.value, user_id, when)
        row = await run_on_sqlite(lambda conn: conn.execute(_SQLITE_OPEN, args).fetchone())
    return replace(
        snapshot,
        session_id=int(row["id"]),
        version=int(row["version"] or 0),
        state=_state_of(row["state"]),
    )


def _state_of(raw: Any) -> dict[str, Any]:
    """A stored dialog state as read: JSON text (SQLite, or PostgreSQL's ::text), or nothing."""
    state = JSON_LOADS(raw) if isinstance(raw, str | bytes) else (raw or {})
    return state if isinstance(state, dict) else {}


# The state stored, the update id recorded and the replies inserted: bot.replies' statement.
_PG_SAVE = bot.replies.reply_statement(session=True, update=True)


# A step's own writes with `?` marks (SQLite here; bot.conversation's full turn on both, through
# models.db.in_dialect): the update id — a unique key, so a concurrent delivery that committed
# first fails it — and the session, stored only if its version is still the one read.
RECORD_UPDATE = "INSERT INTO processed_update (channel, update_key, created_at) VALUES (?, ?, ?)"
SAVE_SESSION = (
    "UPDATE dialog_session SET state = ?, version = version + 1, updated_at = ? "
    "WHERE id = ? AND version = ?"
)
SAVE_SESSION_PG = SAVE_SESSION.replace("state = ?", "state = ?::jsonb")

# What every dialog step runs on PostgreSQL: a worker prepares them on each pool connection
# as it starts (bot.cli_serve).
STEP_STATEMENTS = (_PG_LOAD, _PG_SAVE)


@dataclass(frozen=True)
class _Write:
    """What one step writes, as both backends take it."""

    channel: Channel
    chat_id: str
    snapshot: Snapshot
    state: str  # the new dialog state, as JSON text
    key: str  # the update id
    keys: list[str]  # the reply rows' idempotency keys
    payloads: list[str]  # the reply rows' payloads, as JSON text
    now: datetime
    wall: datetime
    until: datetime  # the reply rows' claim
    ordered: bool  # per-chat order: rows queue behind an older open one
    answer_first: bool  # the first reply goes in the response (written sent, `in_response`)


async def save(
    *,
    channel: Channel,
    chat_id: str,
    snapshot: Snapshot,
    state: dict[str, Any],
    key: str,
    replies: Sequence[Outgoing],
    now: datetime,
    answer_first: bool = False,
) -> tuple[Replies, Snapshot]:
    """Store the step: the new state, the update id, the replies as outbox rows, atomically;
    the replies and the session as now stored. Raises StaleSession (nothing written) or
    IntegrityError (the update id is taken). `answer_first`: as in bot.replies.write_replies."""
    if len(replies) > MAX_REPLIES:
        raise ValueError(f"a turn answered with {len(replies)} messages (at most {MAX_REPLIES})")
    assert snapshot.session_id is not None
    now = now.astimezone(UTC)
    wall = wall_clock()
    until = wall + timedelta(seconds=bot.replies.REPLY_CLAIM_SECONDS)  # read late: one setting
    keys = [reply_key(channel, key, index) for index in range(len(replies))]
    payloads = [JSON_DUMPS(outgoing_to_json(reply)) for reply in replies]
    ordered = channel in ORDERED
    text = JSON_DUMPS(state)
    answer_first = answer_first and bool(replies)
    write = _Write(
        channel, chat_id, snapshot, text, key, keys, payloads, now, wall, until, ordered,
        answer_first,
    )  # fmt: skip
    save_rows = _save_postgres if _dialect() == "postgres" else _save_sqlite
    behind, ids = await save_rows(write)
    # As a later read would find it (JSON in, JSON out: lists, not tuples).
    stored = replace(snapshot, seen=False, version=snapshot.version + 1, state=JSON_LOADS(text))
    if not replies:
        return Replies(in_outbox=True), stored
    if behind:
        return Replies(replies, queued=True, in_outbox=True), stored
    claimed = [ClaimedReply(i, reply, until) for i, reply in zip(ids, replies, strict=True)]
    if answer_first:
        answered = Replies(
            replies, claimed=claimed[1:], in_outbox=True, answer=replies[0], answer_id=ids[0]
        )
        return answered, stored
    return Replies(replies, claimed=claimed, in_outbox=True), stored


async def _save_postgres(w: _Write) -> tuple[bool, list[int]]:
    client = connections.get("default")
    try:
        async with client.acquire_connection() as conn:
            row: Any = await conn.fetchrow(
                _PG_SAVE,
                w.ordered,
                w.channel.value,
                w.chat_id,
                _PENDING,
                _SENDING,
                w.answer_first,
                _SENT,
                w.now,
                w.until,
                w.wall,
                False,  # not the platform's passive reply
                w.keys,
                w.payloads,
                w.state,
                w.snapshot.session_id,
                w.snapshot.version,
                w.key,
            )
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(error) from error
    if not row["saved"]:
        raise StaleSession(f"dialog session {w.snapshot.session_id} changed under us")
    return bool(row["behind"]), list(row["ids"])


async def _save_sqlite(w: _Write) -> tuple[bool, list[int]]:
    return await run_on_sqlite(lambda conn: _write_sqlite(conn, w))


def _write_sqlite(conn: sqlite3.Connection, w: _Write) -> tuple[bool, list[int]]:
    """The step's writes, run on the connection's thread inside the transaction
    models.db.run_on_sqlite gives them (one hand-over, one COMMIT with the writes waiting
    meanwhile): (behind, reply row ids). Raises StaleSession when the version check failed and
    sqlite3.IntegrityError when the update id is taken; either way nothing of it stays."""
    changed = conn.execute(
        SAVE_SESSION, (w.state, w.now, w.snapshot.session_id, w.snapshot.version)
    ).rowcount
    if changed != 1:
        raise StaleSession(f"dialog session {w.snapshot.session_id} changed under us")
    conn.execute(RECORD_UPDATE, (w.channel.value, w.key, w.wall))
    behind = False
    if w.ordered and w.keys:
        found = conn.execute(
            bot.replies.CHAT_HAS_OPEN_ROWS + " LIMIT 1", (w.channel.value, w.chat_id)
        ).fetchone()
        behind = found is not None
    if not w.keys:
        return behind, []
    values: list[Any] = []
    for index, (reply_key_, payload) in enumerate(zip(w.keys, w.payloads, strict=True)):
        answered = w.answer_first and index == 0 and not behind  # goes in the response
        status = _PENDING if behind else _SENT if answered else _SENDING
        until = None if behind or answered else w.until
        values += [reply_key_, w.channel.value, w.chat_id, payload, status, 0 if behind else 1]
        values += [w.now, until, w.wall, 1 if answered else 0, w.now if answered else None]
    rows = conn.execute(
        "INSERT INTO outbox (idempotency_key, channel, chat_id, payload, status, attempts, "
        "next_attempt_at, claimed_until, created_at, in_response, sent_at) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(w.keys))
        + " RETURNING id",
        values,
    ).fetchall()
    # One statement's rows get ascending ids in VALUES order; RETURNING's own order is
    # unspecified.
    return behind, sorted(int(row[0]) for row in rows)
