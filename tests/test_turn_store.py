"""The ordinary dialog step's short path (bot.turn_store), on SQLite and PostgreSQL: one read,
one atomic write of state + update id + reply rows; duplicates, other workers, per-chat order
and the batched mark-sent kept as the full turn keeps them."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import bot.replies
import bot.turn_store
from bot.conversation import AlreadyHandled, Conversation
from bot.replies import REPLY_CLAIM_SECONDS, ClaimedReply, Replies, mark_sent, wall_clock
from config.settings import Settings
from handlers.messages import Incoming, Outgoing
from models.entities import Channel, DialogSession, OutboxMessage, OutboxStatus, ProcessedUpdate
from models.outbox import enqueue
from tests.intake_script import GOV_WINDOW_FILING
from tests.test_conversation import CALENDAR, NOW, PROFILE

USER = "4242"
_ids = itertools.count(1)


def worker(tmp_path: Path, db_url: str) -> Conversation:
    """A worker's conversation with Telegram's replies kept in the outbox, as the channel does."""
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data")
    talk = Conversation(settings, PROFILE, CALENDAR, now=lambda: NOW)
    talk.keep_replies_in_outbox(Channel.TELEGRAM)
    return talk


def step(index: int, message_id: str | None = None, user: str = USER) -> Incoming:
    """Step `index` of the gov-window filing as a Telegram message."""
    kind, value = GOV_WINDOW_FILING[index]
    fields = {kind: value}  # command / choice / text, as Incoming names them
    return Incoming(
        channel="telegram",
        user_id=user,
        kind=kind,  # type: ignore[arg-type]
        message_id=message_id or f"tg:{next(_ids)}",
        **fields,  # type: ignore[arg-type]
    )


async def session(user: str = USER) -> DialogSession:
    return await DialogSession.get(channel=Channel.TELEGRAM, external_id=user)


async def reply_rows() -> list[OutboxMessage]:
    return await OutboxMessage.filter(channel=Channel.TELEGRAM).order_by("id")


async def send_all(replies: Replies) -> None:
    for claim in replies.claimed:
        assert await mark_sent(claim, NOW)


async def test_an_ordinary_step_stores_state_update_id_and_claimed_replies_at_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    talk = worker(tmp_path, db_url)
    await send_all(await talk.handle(step(0)))  # /start: the full turn creates the session
    before = await session()
    saves = []
    real_save = bot.turn_store.save

    async def counted(**kwargs: object) -> object:
        saves.append(kwargs)
        return await real_save(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bot.turn_store, "save", counted)
    replies = await talk.handle(step(1, "tg:step-1"))
    assert len(saves) == 1  # the short path took it
    after = await session()
    assert after.version == before.version + 1
    assert after.state != before.state
    assert await ProcessedUpdate.filter(channel=Channel.TELEGRAM, update_key="tg:step-1").exists()
    rows = [r for r in await reply_rows() if ":tg:step-1:" in r.idempotency_key]
    assert [r.idempotency_key for r in rows] == [
        f"reply:telegram:tg:step-1:{i}" for i in range(len(replies))
    ]
    assert all(r.status == OutboxStatus.SENDING and r.attempts == 1 for r in rows)
    assert [c.id for c in replies.claimed] == [r.id for r in rows]
    assert all(r.claimed_until == c.until for r, c in zip(rows, replies.claimed, strict=True))
    assert rows[0].payload["text"] == replies[0].text
    await send_all(replies)
    assert {r.status for r in await reply_rows()} == {OutboxStatus.SENT}


async def test_a_redelivered_step_is_not_run_again_on_any_worker(
    db_url: str, tmp_path: Path
) -> None:
    first, second = worker(tmp_path, db_url), worker(tmp_path, db_url)
    await send_all(await first.handle(step(0)))
    replies = await first.handle(step(1, "tg:twice"))
    await send_all(replies)
    version = (await session()).version
    rows = len(await reply_rows())
    for talk in (first, second):  # the worker that remembers the session, and one that does not
        again = await talk.handle(step(1, "tg:twice"))
        assert isinstance(again, AlreadyHandled) and list(again) == []
    assert (await session()).version == version
    assert len(await reply_rows()) == rows
    assert await ProcessedUpdate.filter(update_key="tg:twice").count() == 1


async def test_an_unsent_reply_of_a_redelivered_step_is_handed_back(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    talk = worker(tmp_path, db_url)
    await send_all(await talk.handle(step(0)))
    monkeypatch.setattr(bot.replies, "REPLY_CLAIM_SECONDS", -1.0)  # the claim has run out
    lost = await talk.handle(step(1, "tg:lost"))  # committed, never sent (the worker "died")
    again = await talk.handle(step(1, "tg:lost"))
    assert isinstance(again, AlreadyHandled)
    assert [m.text for m in again] == [m.text for m in lost]
    await send_all(again)
    rows = [r for r in await reply_rows() if ":tg:lost:" in r.idempotency_key]
    assert {r.status for r in rows} == {OutboxStatus.SENT}


async def test_workers_taking_turns_on_one_person_continue_each_other(
    db_url: str, tmp_path: Path
) -> None:
    """Each worker remembers the session it stored; the other's steps in between make that
    stale, and the version check sends the step back to the database, never losing a step."""
    a, b = worker(tmp_path, db_url), worker(tmp_path, db_url)
    await send_all(await a.handle(step(0)))
    alone = worker(tmp_path, db_url)
    for index in range(1, 8):
        talk = a if index % 2 else b
        await send_all(await talk.handle(step(index)))
    shared = await session()
    assert shared.version == 8
    # The same steps by one worker reach the same state.
    await send_all(await alone.handle(step(0, user="4343")))
    for index in range(1, 8):
        await send_all(await alone.handle(step(index, user="4343")))
    own = await session("4343")
    assert own.state["answers"] == shared.state["answers"]
    assert own.state["step"] == shared.state["step"]


async def test_concurrent_steps_of_one_person_on_two_workers_both_count(
    db_url: str, tmp_path: Path
) -> None:
    a, b = worker(tmp_path, db_url), worker(tmp_path, db_url)
    await send_all(await a.handle(step(0)))
    await send_all(await a.handle(step(1)))
    version = (await session()).version
    await asyncio.gather(a.handle(step(2)), b.handle(step(2)))
    assert (await session()).version == version + 2  # one ran again after the other's commit


async def test_a_reply_behind_an_older_open_message_waits_for_the_dispatcher(
    db_url: str, tmp_path: Path
) -> None:
    talk = worker(tmp_path, db_url)
    await send_all(await talk.handle(step(0)))
    await enqueue(
        channel=Channel.TELEGRAM,
        chat_id=USER,
        message=Outgoing("an older notification"),
        idempotency_key="older",
        now=NOW,
    )
    replies = await talk.handle(step(1, "tg:behind"))
    assert replies.queued and not replies.claimed and list(replies)
    rows = [r for r in await reply_rows() if ":tg:behind:" in r.idempotency_key]
    assert rows and all(r.status == OutboxStatus.PENDING and r.claimed_until is None for r in rows)
    assert all(r.attempts == 0 for r in rows)


async def test_an_update_id_taken_meanwhile_writes_nothing_and_answers_as_a_duplicate(
    db_url: str, tmp_path: Path
) -> None:
    """A concurrent delivery of the same update committed after our read: the write's unique
    key fails and the whole write is undone (state, update id and replies together)."""
    talk = worker(tmp_path, db_url)
    await send_all(await talk.handle(step(0)))
    await send_all(await talk.handle(step(1)))  # the worker now remembers the session
    before = await session()
    rows = len(await reply_rows())
    await ProcessedUpdate.create(channel=Channel.TELEGRAM, update_key="tg:raced")
    again = await talk.handle(step(2, "tg:raced"))
    assert isinstance(again, AlreadyHandled)
    after = await session()
    assert (after.version, after.state) == (before.version, before.state)
    assert len(await reply_rows()) == rows


async def test_marks_sent_together_check_each_claim(db_url: str, tmp_path: Path) -> None:
    until = wall_clock() + timedelta(seconds=REPLY_CLAIM_SECONDS)
    claims = []
    for index in range(6):
        row = await OutboxMessage.create(
            idempotency_key=f"reply:telegram:batch:{index}",
            channel=Channel.TELEGRAM,
            chat_id=str(index),
            payload={"text": "hi"},
            status=OutboxStatus.SENDING,
            attempts=1,
            next_attempt_at=NOW,
            claimed_until=until,
        )
        claims.append(ClaimedReply(row.id, Outgoing("hi"), until))
    wrong = ClaimedReply(claims[5].id, Outgoing("hi"), until + timedelta(seconds=1))
    done = await asyncio.gather(*(mark_sent(c, NOW) for c in [*claims[:5], wrong]))
    assert done == [True] * 5 + [False]  # another worker's claim on the last row stands
    rows = await OutboxMessage.filter(idempotency_key__startswith="reply:telegram:batch:")
    status = {r.chat_id: r.status for r in rows}
    assert [status[str(i)] for i in range(6)] == [OutboxStatus.SENT] * 5 + [OutboxStatus.SENDING]
    sent = [r for r in rows if r.status == OutboxStatus.SENT]
    assert all(r.sent_at == NOW and r.claimed_until is None for r in sent)


async def test_stored_times_read_back_as_the_full_turn_writes_them(
    db_url: str, tmp_path: Path
) -> None:
    talk = worker(tmp_path, db_url)
    await send_all(await talk.handle(step(0)))
    await talk.handle(step(1, "tg:times"))
    row = (await session()).updated_at
    assert row == NOW and row.tzinfo is not None
    reply = await OutboxMessage.get(idempotency_key="reply:telegram:tg:times:0")
    assert reply.next_attempt_at == NOW
    assert abs(reply.created_at - datetime.now(UTC)) < timedelta(minutes=5)


async def test_a_worker_opens_its_whole_pool_before_serving(db_url: str) -> None:
    """bot.cli_serve opens the pool at start (models.db.open_pool): every connection is open
    and has looked up the step statements, so the first burst waits for none of it."""
    from tortoise import connections

    from bot.turn_store import STEP_STATEMENTS
    from models.db import POOL_MAX, open_pool

    opened = await open_pool(STEP_STATEMENTS)
    client = connections.get("default")
    if client.capabilities.dialect != "postgres":
        assert opened == 0  # SQLite has one connection, always open
        return
    assert opened == POOL_MAX
    assert client._pool.get_size() == POOL_MAX  # type: ignore[attr-defined]
    assert client._pool.get_idle_size() == POOL_MAX  # type: ignore[attr-defined]


def test_replies_written_under_a_provisional_number_are_renumbered_in_memory_too() -> None:
    from models.messages import Choice

    mark = "~00ff00ff00ff00ff00"
    receipt = Outgoing(f"编号 {mark}", (Choice(f"status:{mark}", f"查 {mark}"),))
    other = Outgoing("别的")
    now = datetime(2026, 12, 3, tzinfo=UTC)
    replies = Replies(
        [receipt, other],
        claimed=[ClaimedReply(7, receipt, now), ClaimedReply(8, other, now)],
        in_outbox=True,
        answer=receipt,
        answer_id=9,
    )
    again = bot.replies.renumbered(replies, mark, "202612-0001")
    expected = Outgoing("编号 202612-0001", (Choice("status:202612-0001", "查 202612-0001"),))
    assert list(again) == [expected, other]
    assert [c.message for c in again.claimed] == [expected, other]
    assert [c.id for c in again.claimed] == [7, 8]
    assert (again.answer, again.answer_id, again.in_outbox) == (expected, 9, True)
    assert again[1] is other  # untouched messages are not rebuilt


async def test_a_chats_open_rows_are_found_by_their_own_index_whatever_else_waits(
    db_url: str,
) -> None:
    """Per-chat order asks, at every step, whether the chat has older open rows: answered by
    the partial index of open rows (migration 0019) — also from a prepared, generic plan on
    PostgreSQL — not by reading every open row of every chat (a backlog to other chats)."""
    from tortoise import connections

    from bot.replies import CHAT_HAS_OPEN_ROWS, _chat_has_open_rows
    from models.db import in_dialect

    later = NOW + timedelta(hours=1)
    for index in range(30):  # a backlog to staff chats
        await enqueue(
            channel=Channel.TELEGRAM,
            chat_id=f"staff-{index % 3}",
            message=Outgoing(f"n{index}"),
            idempotency_key=f"b{index}",
            now=later,
        )
    assert not await _chat_has_open_rows(None, Channel.TELEGRAM, "citizen")
    assert await _chat_has_open_rows(None, Channel.TELEGRAM, "staff-1")
    conn = connections.get("default")
    if conn.capabilities.dialect == "sqlite":
        _, rows = await conn.execute_query(
            "EXPLAIN QUERY PLAN " + CHAT_HAS_OPEN_ROWS, ["telegram", "citizen"]
        )
        plan = " ".join(str(value) for row in rows for value in dict(row).values())
    else:
        async with conn.acquire_connection() as raw, raw.transaction():
            await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await raw.execute("SET LOCAL enable_seqscan = off")
            statement = await raw.prepare("EXPLAIN " + in_dialect(CHAT_HAS_OPEN_ROWS, "postgres"))
            plan = " ".join(row[0] for row in await statement.fetch("telegram", "citizen"))
    assert "outbox_open_by_chat" in plan, plan
