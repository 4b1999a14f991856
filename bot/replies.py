"""A turn's replies as outbox rows: committed with the turn, sent at once by the worker that ran it.

    turn's transaction: dialog state + processed update id + one outbox row per reply
    after commit:       the same worker sends the rows one by one, marking each sent right after

The rows are written `sending`, claimed by the worker for `REPLY_CLAIM_SECONDS`, so the outbox
dispatcher leaves them alone while the worker sends them. What can go wrong after the commit:

- the send fails (429, 5xx, network) or the task is cancelled: the unsent rows are released to
  `pending` and the dispatcher sends them, in order, under the platform's limits;
- the process dies (kill -9): the claim expires and the dispatcher of any worker sends the rows;
- the platform delivers the update again: the turn is not re-run (the update id is recorded),
  and the redelivery claims and sends whatever of its replies is still unsent.

A platform that runs one method given in its request's response (Telegram's webhook) may carry
a turn's single reply there: the row is then written sent and `in_response` with the turn. No
response reaching the platform means it asks again, and the redelivery carries the same row
(`reclaim_unsent` returns it as `Replies.answer`); once the response is written the flag is
cleared (`answer_written`), so a duplicate delivery after that carries nothing.

Per-chat order: a reply row is claimed for the immediate send only when no older row to the same
chat is open; otherwise it stays `pending` behind them and the dispatcher sends the chat's rows
oldest first. The resend window of a crash is one HTTP call per chat: the row is marked sent by
the UPDATE that follows the platform's answer (sendMessage has no idempotency key).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.fields.data import JSON_DUMPS

from bot.outbox import PermanentFailure, RetryLater
from handlers.messages import Outgoing
from models.db import in_dialect, run_on_sqlite
from models.entities import Channel, OutboxMessage, OutboxStatus
from models.outbox import outgoing_from_json, outgoing_to_json

log = logging.getLogger(__name__)

# How long the worker that ran a turn holds its reply rows before the dispatcher may take them
# (a crash in between delays the reply by at most this much plus one dispatcher poll).
REPLY_CLAIM_SECONDS = 15.0
# WeChat retries a message it got no answer to three times, five seconds apart (the last retry
# ends about 20 s after the first delivery). Rows meant for a passive reply are claimed that long,
# so the dispatcher sends them through the API only once WeChat has stopped asking: a retry
# before then is answered with them (passively), never with nothing.
RESPONSE_CLAIM_SECONDS = 25.0
# Reply row keys are "reply:<channel>:<update key>:<index>"; a turn has a few replies, never
# more than this (a redelivery looks its rows up by these exact keys, through the unique index).
MAX_REPLIES = 32

_OPEN = (OutboxStatus.PENDING, OutboxStatus.SENDING)
_NO_MESSAGE = Outgoing(text="")  # the answer's mark needs only its row id
# Channels whose messages reach a person as a stream, in the order sent. The web chat's replies
# are the HTTP response to the person's own request; its notifications wait for the page to ask.
ORDERED = frozenset({Channel.TELEGRAM, Channel.WECHAT})


def wall_clock() -> datetime:
    """Claims are between processes, so they are in real time: a conversation's clock may be
    a business clock (tests, replays), while every dispatcher judges claims by the wall clock."""
    return datetime.now(UTC)


def reply_key(channel: Channel | str, update_key: str, index: int) -> str:
    return f"reply:{Channel(channel)}:{update_key}:{index}"


@dataclass(frozen=True, slots=True)
class ClaimedReply:
    """A reply row this worker may send now; `until` is the claim's token."""

    id: int
    message: Outgoing
    until: datetime
    # Meant for the answer to the platform's own request (WeChat's passive reply), not an API
    # call: a retry of that request is answered with it again (see `answer_again`).
    in_response: bool = False


class Replies(list[Outgoing]):
    """The answer to one update. `claimed`: the rows (same order as the replies) this worker
    sends now; `queued`: rows left to the dispatcher (the chat had older unsent messages).
    `in_outbox` False: the replies are not in the outbox (the caller sends them as it likes).
    `answer`: the reply committed as carried by the response to the platform's own request
    (Telegram's webhook response), already recorded as sent: the caller puts it there, and a
    redelivery of the request — the platform got no response — gets it again."""

    def __init__(
        self,
        replies: Iterable[Outgoing] = (),
        *,
        claimed: Sequence[ClaimedReply] = (),
        queued: bool = False,
        in_outbox: bool = False,
        answer: Outgoing | None = None,
        answer_id: int | None = None,
    ) -> None:
        super().__init__(replies)
        self.claimed = list(claimed)
        self.queued = queued
        self.in_outbox = in_outbox
        self.answer = answer
        self.answer_id = answer_id  # its outbox row, for `answer_written`


def _renumbered_message(message: Outgoing, old: str, new: str) -> Outgoing:
    if old not in message.text and not any(old in c.id or old in c.label for c in message.choices):
        return message
    return replace(
        message,
        text=message.text.replace(old, new),
        choices=tuple(
            replace(c, id=c.id.replace(old, new), label=c.label.replace(old, new))
            for c in message.choices
        ),
    )


def renumbered(replies: Replies, old: str, new: str) -> Replies:
    """`replies` with the text `old` (a filing's provisional number) made `new` (its number)
    wherever a message carries it, as models.actions.number_complaint rewrote their rows."""
    return Replies(
        (_renumbered_message(m, old, new) for m in replies),
        claimed=[
            replace(c, message=_renumbered_message(c.message, old, new)) for c in replies.claimed
        ],
        queued=replies.queued,
        in_outbox=replies.in_outbox,
        answer=_renumbered_message(replies.answer, old, new) if replies.answer else None,
        answer_id=replies.answer_id,
    )


async def _claim(row: OutboxMessage, now: datetime, wall: datetime, until: datetime) -> bool:
    """Claim one reply row for sending until `until`: False when it is held by a live claim,
    not yet due, or was sent meanwhile (its status changed since it was read)."""
    free = Q(status=OutboxStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=OutboxStatus.SENDING, claimed_until__lt=wall
    )
    taken = (
        await OutboxMessage.filter(free, id=row.id)
        .filter(status=row.status)
        .update(status=OutboxStatus.SENDING, claimed_until=until, attempts=F("attempts") + 1)
    )
    return bool(taken)


# The open statuses written into the SQL, not bound: the partial index of a chat's open rows
# (migration 0019) serves a query only where its planner can prove the predicate, which it
# cannot for bound values in a prepared (generic) plan.
OPEN_STATUSES = f"('{OutboxStatus.PENDING.value}', '{OutboxStatus.SENDING.value}')"
CHAT_HAS_OPEN_ROWS = (
    f"SELECT 1 FROM outbox WHERE channel = ? AND chat_id = ? AND status IN {OPEN_STATUSES}"
)


async def _chat_has_open_rows(
    conn: BaseDBAsyncClient | None, channel: Channel, chat_id: str, before: int | None = None
) -> bool:
    conn = conn or connections.get("default")
    sql, values = CHAT_HAS_OPEN_ROWS, [channel.value, chat_id]
    if before is not None:
        sql, values = sql + " AND id < ?", [*values, before]
    _, rows = await conn.execute_query(
        in_dialect(sql + " LIMIT 1", conn.capabilities.dialect), values
    )
    return bool(rows)


async def write_replies(
    conn: BaseDBAsyncClient,
    *,
    channel: Channel,
    chat_id: str,
    update_key: str,
    replies: Sequence[Outgoing],
    now: datetime,
    in_response: bool = False,
    answer_first: bool = False,
    session: SessionSave | None = None,
) -> Replies:
    """Insert the turn's replies as outbox rows inside the turn's transaction `conn`.

    `session` (PostgreSQL, at least one reply): the turn's dialog state, stored in the same
    statement; StaleSession (nothing written) when its version changed.

    `in_response`: the platform takes the answer in its request's HTTP response (WeChat's
    passive reply). The rows are then claimed for as long as the platform may ask again
    (`RESPONSE_CLAIM_SECONDS`), and are never queued behind older messages to the chat: the
    answer to the person's own message cannot wait for a notification's API send.

    `answer_first`: the first reply goes in the response to the platform's request (Telegram
    runs one method given there), unless the chat has older unsent messages: it is written as
    sent, with `in_response`, and comes back as `Replies.answer` (see `reclaim_unsent`)."""
    if not replies:
        return Replies(in_outbox=True)
    if len(replies) > MAX_REPLIES:
        raise ValueError(f"a turn answered with {len(replies)} messages (at most {MAX_REPLIES})")
    ordered = channel in ORDERED and not in_response
    claim = RESPONSE_CLAIM_SECONDS if in_response else REPLY_CLAIM_SECONDS
    until = wall_clock() + timedelta(seconds=claim)
    rows = _ReplyRows(
        channel, chat_id, update_key, replies, now, until, ordered, in_response, answer_first,
        session,
    )  # fmt: skip
    if session is not None and conn.capabilities.dialect != "postgres":
        raise ValueError("the session is stored with the replies on PostgreSQL only")
    insert = (
        _insert_replies_postgres if conn.capabilities.dialect == "postgres" else _insert_replies
    )
    behind, ids = await insert(conn, rows)
    answered = answer_first and not behind  # the first row rides in the response
    if behind:
        return Replies(replies, queued=True, in_outbox=True)
    claimed = [
        ClaimedReply(i, reply, until, in_response) for i, reply in zip(ids, replies, strict=True)
    ]
    if answered:
        answer, answer_id = replies[0], ids[0]
        return Replies(
            replies, claimed=claimed[1:], in_outbox=True, answer=answer, answer_id=answer_id
        )
    return Replies(replies, claimed=claimed, in_outbox=True)


# The reply rows' statement on PostgreSQL: the check for older open rows of the chat and the
# rows' INSERT, in one statement (write_replies' rules). Its parameters:
#   $1 ordered  $2 channel  $3 chat_id  $4 'pending'  $5 'sending'  $6 answer_first  $7 'sent'
#   $8 now  $9 the claim's end  $10 the wall clock  $11 in_response  $12 keys  $13 payloads
# With `session`, the turn's dialog state is stored in the same statement, only if its version
# is still the one read, and the rows are written only if it was:
#   $14 the state (JSON)  $15 the session's id  $16 the version read
# With `update` too (a dialog step's one statement, bot.turn_store), the update id is recorded,
# and the rows written only if it was new (its unique key fails the statement otherwise):
#   $17 the update id
_SAVED_CTE = """saved AS (
    UPDATE dialog_session SET state = $14::jsonb, version = version + 1, updated_at = $8
    WHERE id = $15 AND version = $16
    RETURNING id
), """
_SEEN_CTE = """seen AS (
    INSERT INTO processed_update (channel, update_key, created_at)
    SELECT $2, $17, $10 FROM saved
    RETURNING id
), """


def reply_statement(*, session: bool = False, update: bool = False) -> str:
    """The reply rows' statement (see above), storing the session first with `session`, and
    recording the update id with `update`."""
    assert session or not update, "an update id is recorded with the state it led to"
    gate = "seen, " if update else "saved, " if session else ""
    saved = "(SELECT count(*) FROM saved)" if session else "1"
    return f"""
WITH {_SAVED_CTE if session else ""}{_SEEN_CTE if update else ""}behind AS (
    SELECT $1::boolean AND EXISTS (
        SELECT 1 FROM outbox WHERE channel = $2 AND chat_id = $3 AND status IN {OPEN_STATUSES}
    ) AS yes
), queued AS (
    INSERT INTO outbox (idempotency_key, channel, chat_id, payload, status, attempts,
                        next_attempt_at, claimed_until, created_at, in_response, sent_at)
    SELECT r.key, $2, $3, r.payload::jsonb,
           CASE WHEN behind.yes THEN $4 WHEN $6::boolean AND r.n = 1 THEN $7 ELSE $5 END,
           CASE WHEN behind.yes THEN 0 ELSE 1 END,
           $8,
           CASE WHEN behind.yes OR ($6::boolean AND r.n = 1) THEN NULL
                ELSE $9::timestamptz END,
           $10, $11::boolean OR (NOT behind.yes AND $6::boolean AND r.n = 1),
           CASE WHEN NOT behind.yes AND $6::boolean AND r.n = 1 THEN $8::timestamptz END
    FROM {gate}behind, unnest($12::text[], $13::text[]) WITH ORDINALITY AS r(key, payload, n)
    ORDER BY r.n
    RETURNING id
)
SELECT {saved} AS saved, (SELECT yes FROM behind) AS behind,
       ARRAY(SELECT id FROM queued ORDER BY id) AS ids
"""


_PG_INSERT_REPLIES = reply_statement()
_PG_INSERT_REPLIES_SAVING = reply_statement(session=True)


@dataclass(frozen=True, slots=True)
class SessionSave:
    """The turn's dialog state, stored with its reply rows (one statement on PostgreSQL)."""

    session_id: int
    version: int  # as read: the row is stored only if it still has it
    state: str  # JSON


class StaleSession(Exception):
    """The session's version is no longer the one read: nothing of the statement was written."""


@dataclass(frozen=True, slots=True)
class _ReplyRows:
    """A turn's reply rows as `write_replies` decided them, for either backend's INSERT."""

    channel: Channel
    chat_id: str
    update_key: str
    replies: Sequence[Outgoing]
    now: datetime
    until: datetime  # the rows' claim
    ordered: bool  # they queue behind an older open row of the chat
    in_response: bool
    answer_first: bool
    session: SessionSave | None = None


async def _insert_replies_postgres(
    conn: BaseDBAsyncClient, w: _ReplyRows
) -> tuple[bool, list[int]]:
    keys = [reply_key(w.channel, w.update_key, index) for index in range(len(w.replies))]
    payloads = [JSON_DUMPS(outgoing_to_json(reply)) for reply in w.replies]
    async with conn.acquire_connection() as raw:
        try:
            saving = () if w.session is None else (
                w.session.state, w.session.session_id, w.session.version
            )  # fmt: skip
            row: Any = await raw.fetchrow(
                _PG_INSERT_REPLIES if w.session is None else _PG_INSERT_REPLIES_SAVING,
                w.ordered,
                w.channel.value,
                w.chat_id,
                OutboxStatus.PENDING.value,
                OutboxStatus.SENDING.value,
                w.answer_first,
                OutboxStatus.SENT.value,
                w.now.astimezone(UTC),
                w.until,
                wall_clock(),
                w.in_response,
                keys,
                payloads,
                *saving,
            )
        except asyncpg.IntegrityConstraintViolationError as error:
            raise IntegrityError(error) from error
    if not row["saved"]:
        raise StaleSession(f"dialog session {w.session and w.session.session_id} changed under us")
    return bool(row["behind"]), list(row["ids"])


async def _insert_replies(conn: BaseDBAsyncClient, w: _ReplyRows) -> tuple[bool, list[int]]:
    behind = w.ordered and await _chat_has_open_rows(conn, w.channel, w.chat_id)
    answered = w.answer_first and not behind
    rows = []
    for index, reply in enumerate(w.replies):
        carried = answered and index == 0
        status = OutboxStatus.PENDING if behind else OutboxStatus.SENDING
        rows.append(
            OutboxMessage(
                idempotency_key=reply_key(w.channel, w.update_key, index),
                channel=w.channel,
                chat_id=w.chat_id,
                payload=outgoing_to_json(reply),
                status=OutboxStatus.SENT if carried else status,
                attempts=0 if behind else 1,
                next_attempt_at=w.now,
                claimed_until=None if behind or carried else w.until,
                sent_at=w.now if carried else None,
                in_response=w.in_response or carried,
            )
        )
    for row in rows:  # INSERT ... RETURNING id; a turn has one reply as a rule
        await row.save(using_db=conn)
    return behind, [row.id for row in rows]


async def reclaim_unsent(
    *, channel: Channel, chat_id: str, update_key: str, now: datetime
) -> Replies:
    """For a redelivered update: claim its committed replies not sent yet (pending, or left
    `sending` by a worker whose claim has expired). Rows another worker holds right now stay
    with it; rows behind an older open message of the chat stay with the dispatcher."""
    keys = [reply_key(channel, update_key, index) for index in range(MAX_REPLIES)]
    rows = await OutboxMessage.filter(idempotency_key__in=keys).order_by("id")
    unsent = [row for row in rows if row.status in _OPEN]
    if not rows:
        return Replies()  # handled before replies were kept in the outbox, or said nothing
    # Still marked `in_response`: the response that carried it may not have gone out, and the
    # platform asks again only when it got none, so the answer never ran.
    carrier = next((r for r in rows if r.in_response), None)
    answer = outgoing_from_json(carrier.payload) if carrier is not None else None
    answer_id = carrier.id if carrier is not None else None
    if not unsent:
        return Replies(in_outbox=True, answer=answer, answer_id=answer_id)
    if channel in ORDERED and await _chat_has_open_rows(
        None, channel, chat_id, before=unsent[0].id
    ):
        return Replies(queued=True, in_outbox=True, answer=answer, answer_id=answer_id)
    wall = wall_clock()
    until = wall + timedelta(seconds=REPLY_CLAIM_SECONDS)
    claimed: list[ClaimedReply] = []
    for row in unsent:
        if not await _claim(row, now, wall, until):
            break  # held by a live claim (or sent meanwhile): what follows waits for it
        claimed.append(ClaimedReply(row.id, outgoing_from_json(row.payload), until))
    messages = [c.message for c in claimed]
    queued = len(claimed) < len(unsent)
    return Replies(
        messages, claimed=claimed, queued=queued, in_outbox=True, answer=answer, answer_id=answer_id
    )


def _finish(step: Awaitable[Any]) -> Awaitable[Any]:
    """Let a bookkeeping UPDATE finish even when the caller is cancelled (an aborted SQLite
    statement could leave the connection's lock held)."""
    return asyncio.shield(asyncio.ensure_future(step))


_MarkWrite = Callable[[Sequence[tuple[ClaimedReply, datetime]]], Awaitable[set[int]]]


class _SentMarks:
    """Rows marked sent in batches (group commit): a mark that finds no UPDATE running starts
    one for itself; marks arriving while it runs are written together by the next one. So a
    mark waits for at most one UPDATE in flight before its own (the resend window of a crash
    grows by that much at most), and under load one statement marks many replies."""

    def __init__(self, write: _MarkWrite) -> None:
        self._write = write  # marks the batch's rows; the ids it marked
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[tuple[ClaimedReply, datetime, asyncio.Future[bool]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None  # the running flush, kept from the GC

    async def mark(self, claim: ClaimedReply, now: datetime) -> bool:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests run one per test)
            self._loop, self._waiting, self._running = loop, [], False
        done: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((claim, now, done))
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    ours = await self._write([(c, n) for c, n, _ in batch])
                except Exception as error:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(error)
                    continue
                for claim, _, done in batch:
                    if not done.done():
                        done.set_result(claim.id in ours)
        finally:
            self._running = False


_PG_MARK_SENT = """
UPDATE outbox AS o SET status = $1, sent_at = $2, claimed_until = NULL, last_error = NULL
FROM unnest($3::bigint[], $4::timestamptz[]) AS m(id, until)
WHERE o.id = m.id AND o.status = $5 AND o.claimed_until = m.until
RETURNING o.id
"""


async def _mark_batch(marks: Sequence[tuple[ClaimedReply, datetime]]) -> set[int]:
    """Mark the rows still claimed by their token sent; the ids that were."""
    now = max(at for _, at in marks)
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        # One statement text whatever the batch's size: asyncpg prepares it once per connection.
        async with client.acquire_connection() as conn:
            rows = await conn.fetch(
                _PG_MARK_SENT,
                OutboxStatus.SENT.value,
                now,
                [c.id for c, _ in marks],
                [c.until for c, _ in marks],
                OutboxStatus.SENDING.value,
            )
        return {row["id"] for row in rows}
    return await run_on_sqlite(lambda conn: _mark_batch_sqlite(conn, marks, now))


# Claims per SQLite statement (two bound values each, well under SQLite's limit of 32 766).
_SQLITE_MARKS_PER_STATEMENT = 500


def _mark_batch_sqlite(
    conn: sqlite3.Connection, marks: Sequence[tuple[ClaimedReply, datetime]], now: datetime
) -> set[int]:
    """On the connection's thread (models.db.run_on_sqlite, committed with the writes waiting
    meanwhile): the rows still held by their claim token marked sent, their ids."""
    ours: set[int] = set()
    for start in range(0, len(marks), _SQLITE_MARKS_PER_STATEMENT):
        chunk = marks[start : start + _SQLITE_MARKS_PER_STATEMENT]
        held = " OR ".join(["(id = ? AND claimed_until = ?)"] * len(chunk))
        tokens = [value for claim, _ in chunk for value in (claim.id, claim.until)]
        rows = conn.execute(
            "UPDATE outbox SET status = ?, sent_at = ?, claimed_until = NULL, last_error = NULL "
            f"WHERE status = ? AND ({held}) RETURNING id",
            [OutboxStatus.SENT.value, now, OutboxStatus.SENDING.value, *tokens],
        ).fetchall()
        ours.update(int(row[0]) for row in rows)
    return ours


_SENT_MARKS = _SentMarks(_mark_batch)


async def _mark_written(marks: Sequence[tuple[ClaimedReply, datetime]]) -> set[int]:
    ids = [claim.id for claim, _ in marks]
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        async with client.acquire_connection() as conn:
            await conn.execute(_PG_MARK_WRITTEN, ids)
    else:
        await OutboxMessage.filter(id__in=ids, in_response=True).update(in_response=False)
    return set(ids)


_PG_MARK_WRITTEN = "UPDATE outbox SET in_response = false WHERE id = ANY($1::bigint[])"


_WRITTEN_MARKS = _SentMarks(_mark_written)


async def answer_written(answer_id: int, now: datetime) -> None:
    """The response carrying the answer in row `answer_id` went out: a later delivery of the
    same request (a duplicate, not a retry) no longer carries it. Batched like `mark_sent`."""
    await _finish(_WRITTEN_MARKS.mark(ClaimedReply(answer_id, _NO_MESSAGE, now), now))


async def mark_sent(claim: ClaimedReply, now: datetime) -> bool:
    """Mark one claimed row sent (batched with concurrent marks); False: not ours any more."""
    return await _SENT_MARKS.mark(claim, now)


async def mark_all_sent(claims: Sequence[ClaimedReply], now: datetime) -> None:
    """Several rows handed over at once (the web chat's HTTP response carries them all)."""
    if not claims:
        return
    until = claims[0].until
    await _finish(
        OutboxMessage.filter(
            id__in=[c.id for c in claims], status=OutboxStatus.SENDING, claimed_until=until
        ).update(status=OutboxStatus.SENT, sent_at=now, claimed_until=None, last_error=None)
    )


async def release(
    claims: Sequence[ClaimedReply], at: datetime, error: str, *, failed: bool = False
) -> None:
    """Hand unsent rows to the dispatcher (due at `at`), or give the first up (`failed`)."""
    for index, claim in enumerate(claims):
        mine = OutboxMessage.filter(
            id=claim.id, status=OutboxStatus.SENDING, claimed_until=claim.until
        )
        if failed and index == 0:
            await mine.update(status=OutboxStatus.FAILED, claimed_until=None, last_error=error)
        else:
            await mine.update(
                status=OutboxStatus.PENDING,
                claimed_until=None,
                next_attempt_at=at,
                attempts=F("attempts") - 1 if not failed else F("attempts"),
                last_error=error,
            )


async def deliver(
    claims: Sequence[ClaimedReply],
    send: Callable[[Outgoing], Awaitable[None]],
    *,
    now: Callable[[], datetime],
    wake: Callable[[], None] | None = None,
) -> int:
    """Send the claimed rows in order, each marked sent right after the platform took it.

    `send` raises the outbox's exceptions (RetryLater, TransientFailure, PermanentFailure). On
    a failure — or a cancellation — the rest goes back to the outbox for the dispatcher (a
    permanent failure gives that message up and still hands the later ones over: they may be
    refused as well, the dispatcher finds out). Returns how many were sent."""
    sent = 0
    for index, claim in enumerate(claims):
        try:
            await send(claim.message)
        except asyncio.CancelledError:
            await _finish(release(claims[index:], now(), "cancelled before sending"))
            if wake is not None:
                wake()
            raise
        except Exception as error:
            # Due at once: the dispatcher's next try (or a redelivery) counts as the retry, and
            # the dispatcher's own backoff paces any further ones; a 429 is honoured exactly.
            at = now()
            if isinstance(error, RetryLater):
                at = now() + timedelta(seconds=error.seconds)
            permanent = isinstance(error, PermanentFailure)
            log.warning("reply %s not sent now (%s): handed to the outbox", claim.id, error)
            await _finish(release(claims[index:], at, str(error), failed=permanent))
            if wake is not None:
                wake()
            return sent
        await _finish(mark_sent(claim, now()))
        sent += 1
    return sent


# ------------------------------------------------------------ answers carried by the response


async def answer_again(
    *, channel: Channel, chat_id: str, update_key: str, now: datetime
) -> Replies:
    """For a platform that asks again when it got no answer (WeChat's retries of a MsgId):
    the turn's committed replies meant for the response, sent or not — a platform that asks
    again has dropped the earlier answer, and shows one answer per request, so giving it
    again tells nobody twice — then the rows on the API path that nobody sends right now.

    The response's share is claimed whoever held it (the worker that wrote it died, or its
    answer came too late); the API's share only when free, as `reclaim_unsent` does."""
    keys = [reply_key(channel, update_key, index) for index in range(MAX_REPLIES)]
    rows = await OutboxMessage.filter(idempotency_key__in=keys).order_by("id")
    if not rows:
        return Replies()
    wall = wall_clock()
    until = wall + timedelta(seconds=RESPONSE_CLAIM_SECONDS)
    carried = (OutboxStatus.SENDING, OutboxStatus.SENT)
    answer = [r for r in rows if r.in_response and r.status in carried]
    unsent = [r.id for r in answer if r.status == OutboxStatus.SENDING]
    if unsent:
        await OutboxMessage.filter(
            id__in=unsent, status=OutboxStatus.SENDING, in_response=True
        ).update(claimed_until=until)
    claimed = [ClaimedReply(r.id, outgoing_from_json(r.payload), until, True) for r in answer]
    for row in rows:
        if row.in_response or row.status not in _OPEN:
            continue
        if not await _claim(row, now, wall, until):
            break  # held by a live API send (or sent meanwhile): what follows waits for it
        claimed.append(ClaimedReply(row.id, outgoing_from_json(row.payload), until))
    messages = [c.message for c in claimed if c.in_response]
    return Replies(messages, claimed=claimed, in_outbox=True)


async def leave_response(claims: Sequence[ClaimedReply]) -> list[ClaimedReply]:
    """Move rows meant for the response to the API path (they do not fit in it, or the
    response went out without them): a retry of the request no longer carries them. One
    UPDATE; returns the claims as the API path holds them."""
    if not claims:
        return []
    moved = await _finish(
        OutboxMessage.filter(
            id__in=[c.id for c in claims],
            status=OutboxStatus.SENDING,
            in_response=True,
            claimed_until=claims[0].until,
        ).update(in_response=False)
    )
    if not moved:
        return []  # a retry of the request took them over: they go in its answer
    return [ClaimedReply(c.id, c.message, c.until) for c in claims]
