"""No answer lost to a crash: a turn's replies are committed with it (bot.replies).

The crash is simulated between the commit and the send: the send path raises (as a kill -9
would leave it: the rows committed, nothing sent, nothing released), then the platform delivers
the same update again to a restarted worker. The reply must arrive exactly once, and the turn
must not run twice. The same for the web chat, whose "send" is the HTTP response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import bot.replies
import bot.telegram
from bot.app import create_app
from bot.conversation import Conversation
from bot.outbox import DISPATCHER_KEY, setup_dispatcher
from bot.telegram import TELEGRAM_CHANNEL, setup_telegram
from config.settings import Settings
from handlers.messages import Outgoing
from models.entities import Channel, DialogSession, OutboxMessage, OutboxStatus, ProcessedUpdate
from models.outbox import enqueue
from tests.fakes import FakeTelegram
from tests.test_telegram_channel import CALENDAR, CITIZEN, PROFILE, Citizen, Desk
from tests.waiting import eventually

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class Killed(Exception):
    """What the send path meets in these tests instead of the platform: the process "died"."""


async def crashed_deliver(*args: Any, **kwargs: Any) -> int:
    raise Killed("the worker died after its commit, before sending")


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
def expired_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead worker's claims have run out by the time the update comes again (in production
    REPLY_CLAIM_SECONDS later; here at once)."""
    monkeypatch.setattr(bot.replies, "REPLY_CLAIM_SECONDS", 0.0)


async def reply_rows() -> list[OutboxMessage]:
    return await OutboxMessage.filter(idempotency_key__startswith="reply:").order_by("id")


@pytest.fixture
async def crashed(
    tg: FakeTelegram,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    expired_claims: None,
) -> tuple[Desk, dict[str, Any]]:
    """A worker takes /start, commits its turn and "dies" before sending: nothing told. The
    stopped desk (its settings) and the update, for Telegram to deliver again."""
    desk = Desk(tg, db_url, tmp_path / "data", webhook=True, telegram_reply_in_response=False)
    await desk.start()
    start = Citizen(tg, desk)._message(text="/start")
    with monkeypatch.context() as crash:
        crash.setattr(bot.telegram, "deliver", crashed_deliver)
        assert await tg.deliver_webhook(None, start) == 500  # Telegram will deliver it again
    await desk.stop()
    assert tg.texts_to(CITIZEN) == []
    return desk, start


async def test_a_reply_lost_between_commit_and_send_arrives_once_on_redelivery(
    tg: FakeTelegram, db_url: str, tmp_path: Path, crashed: tuple[Desk, dict[str, Any]]
) -> None:
    _stopped, start = crashed
    rows = await reply_rows()
    assert rows and all(row.status == OutboxStatus.SENDING for row in rows)

    restarted = Desk(tg, db_url, tmp_path / "data", webhook=True, telegram_reply_in_response=False)
    await restarted.start()
    try:
        assert await tg.deliver_webhook(None, start) == 200
        told = tg.texts_to(CITIZEN)
        assert told == [row.payload["text"] for row in rows]
        # Delivered once more (Telegram retries when a response is lost): nothing again.
        assert await tg.deliver_webhook(None, start) == 200
        assert tg.texts_to(CITIZEN) == told
    finally:
        await restarted.stop()
    assert all(row.status == OutboxStatus.SENT for row in await reply_rows())
    session = await DialogSession.get(channel=Channel.TELEGRAM, external_id=str(CITIZEN))
    assert session.version == 1  # the turn ran once
    assert await ProcessedUpdate.filter(channel=Channel.TELEGRAM).count() == 1


async def test_a_reply_whose_send_failed_goes_out_once_when_the_update_comes_again(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    desk = Desk(tg, db_url, tmp_path / "data", webhook=True, telegram_reply_in_response=False)
    await desk.start()
    person = Citizen(tg, desk)
    try:
        await person.command("start")
        update = person.button_update("screen:none")
        tg.fail_next("sendMessage", 502)
        # The update was taken (committed): 200, the reply handed back to the outbox.
        assert await tg.deliver_webhook(None, update) == 200
        before = tg.texts_to(CITIZEN)
        [row] = [r for r in await reply_rows() if r.status != OutboxStatus.SENT]
        assert row.status == OutboxStatus.PENDING
        assert await tg.deliver_webhook(None, update) == 200
        assert tg.texts_to(CITIZEN) == [*before, row.payload["text"]]
        assert await tg.deliver_webhook(None, update) == 200
        assert tg.texts_to(CITIZEN) == [*before, row.payload["text"]]
    finally:
        await desk.stop()


async def test_a_restart_sends_what_was_committed(
    tg: FakeTelegram, crashed: tuple[Desk, dict[str, Any]]
) -> None:
    """No redelivery at all: the restarted worker's outbox dispatcher sends the replies."""
    desk, _start = crashed
    expected = [row.payload["text"] for row in await reply_rows()]
    assert expected

    app = web.Application()
    settings: Settings = desk.settings
    conversation = Conversation(settings, PROFILE, CALENDAR)
    setup_telegram(app, conversation, settings, poll_timeout=1)
    setup_dispatcher(app, {Channel.TELEGRAM: app[TELEGRAM_CHANNEL].sender()}, poll_seconds=0.05)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await eventually(lambda: tg.texts_to(CITIZEN) == expected, what="the committed replies")
        assert app[DISPATCHER_KEY] is not None
    finally:
        await runner.cleanup()
    assert tg.texts_to(CITIZEN) == expected


async def test_a_single_reply_rides_in_the_webhook_response(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    """A turn's one plain reply is the webhook's response (Telegram runs it): no sendMessage
    call of ours, the row committed as sent with the turn, and a duplicate delivery after the
    response went out carries nothing."""
    desk = Desk(tg, db_url, tmp_path / "data", webhook=True)
    await desk.start()
    person = Citizen(tg, desk)
    try:
        await person.command("start")
        update = person.button_update("screen:none")
        calls = len(tg.calls)
        told = await person.deliver(update)
        assert len(told) == 1
        new_calls = [c for c in tg.calls[calls:] if c.method == "sendMessage"]
        assert [c.params.get("text") for c in new_calls] == told  # the response's method
        last = (await reply_rows())[-1]
        assert last.status == OutboxStatus.SENT

        async def response_written() -> bool:
            return not (await OutboxMessage.get(id=last.id)).in_response

        await eventually(response_written, what="the row marked: its response went out")
        assert await tg.deliver_webhook(None, update) == 200  # a duplicate, to this worker
        await desk.stop()
        desk = Desk(tg, db_url, tmp_path / "data", webhook=True)  # and to another one
        await desk.start()
        assert await tg.deliver_webhook(None, update) == 200
        assert tg.texts_to(CITIZEN)[-1] == told[0]
        assert tg.texts_to(CITIZEN).count(told[0]) == 1
    finally:
        await desk.stop()


async def test_an_answer_whose_response_was_lost_is_carried_again(
    tg: FakeTelegram, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Committed, then the worker died before its response went out (Telegram saw no 200 and
    ran nothing): the redelivery, to a restarted worker, carries the same answer, once."""
    desk = Desk(tg, db_url, tmp_path / "data", webhook=True)
    await desk.start()
    person = Citizen(tg, desk)
    await person.command("start")
    update = person.button_update("screen:none")
    before = list(tg.texts_to(CITIZEN))
    process = bot.telegram.TelegramChannel.process

    async def dies_after_commit(self: Any, *args: Any, **kwargs: Any) -> Any:
        await process(self, *args, **kwargs)
        raise Killed("the worker died after its commit, before its response")

    with monkeypatch.context() as crash:
        crash.setattr(bot.telegram.TelegramChannel, "process", dies_after_commit)
        assert await tg.deliver_webhook(None, update) == 500
    await desk.stop()
    assert tg.texts_to(CITIZEN) == before  # nothing told
    [row] = [r for r in await reply_rows() if r.in_response]
    assert row.status == OutboxStatus.SENT  # committed as carried by the response

    restarted = Desk(tg, db_url, tmp_path / "data", webhook=True)
    await restarted.start()
    try:
        assert await tg.deliver_webhook(None, update) == 200
        assert tg.texts_to(CITIZEN) == [*before, row.payload["text"]]
        assert await tg.deliver_webhook(None, update) == 200  # its response went out this time
        assert tg.texts_to(CITIZEN) == [*before, row.payload["text"]]
    finally:
        await restarted.stop()
    session = await DialogSession.get(channel=Channel.TELEGRAM, external_id=str(CITIZEN))
    assert session.version == 2  # /start and the press, each once


async def test_a_reply_waits_behind_an_older_message_to_the_same_chat(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    """Per-chat order: a notification queued before the turn goes out before its reply."""
    app = web.Application()
    desk = Desk(tg, db_url, tmp_path / "data", webhook=True)
    conversation = Conversation(desk.settings, PROFILE, CALENDAR)
    setup_telegram(app, conversation, desk.settings, poll_timeout=1)
    dispatcher = setup_dispatcher(app, {Channel.TELEGRAM: app[TELEGRAM_CHANNEL].sender()})
    await enqueue(
        channel=Channel.TELEGRAM,
        chat_id=str(CITIZEN),
        message=Outgoing("an earlier notice"),
        idempotency_key="notice-1",
        # Not due yet when the turn runs, so the dispatcher cannot have sent it before.
        now=conversation.now().replace(year=conversation.now().year + 1),
    )
    person = Citizen(tg, desk)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", desk.port).start()
    try:
        assert await tg.deliver_webhook(desk.url, person._message(text="/start")) == 200
        assert tg.texts_to(CITIZEN) == []  # the reply waits behind the notice
        await OutboxMessage.filter(idempotency_key="notice-1").update(
            next_attempt_at=conversation.now()
        )
        dispatcher.wake()
        await eventually(lambda: len(tg.texts_to(CITIZEN)) >= 2, what="the notice, then the reply")
        assert tg.texts_to(CITIZEN)[0] == "an earlier notice"
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------- the web chat

SESSION = "crash-safety-session-0001"


@pytest.fixture
async def web_client(db_url: str, tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data")
    app = create_app(settings, manage_db=False)
    async with TestClient(TestServer(app)) as client:
        yield client


async def post(client: TestClient, **body: Any) -> tuple[int, list[str]]:
    response = await client.post("/webchat/api/message", json={"session_id": SESSION, **body})
    data = await response.json()
    return response.status, [m["text"] for m in data["messages"]]


async def test_a_web_reply_lost_between_commit_and_response_is_answered_on_retry(
    web_client: TestClient, monkeypatch: pytest.MonkeyPatch, expired_claims: None
) -> None:
    original = Conversation.handle

    async def commit_then_die(self: Conversation, *args: Any, **kwargs: Any) -> Any:
        await original(self, *args, **kwargs)
        raise Killed("died after the commit, before the response")

    with monkeypatch.context() as crash:
        crash.setattr(Conversation, "handle", commit_then_die)
        status, _ = await post(web_client, text="/start", message_id="m-1")
        assert status == 500
    rows = await reply_rows()
    assert rows and all(row.status == OutboxStatus.SENDING for row in rows)
    status, told = await post(web_client, text="/start", message_id="m-1")
    assert status == 200
    assert told == [row.payload["text"] for row in rows]
    status, again = await post(web_client, text="/start", message_id="m-1")
    assert (status, again) == (200, [])
    # Nor does the page's poll hand the replies over a second time.
    response = await web_client.post("/webchat/api/updates", json={"session_id": SESSION})
    assert (await response.json())["messages"] == []
    session = await DialogSession.get(channel=Channel.WEB, external_id=SESSION)
    assert session.version == 1


async def test_a_web_reply_nobody_asked_for_again_comes_with_the_next_poll(
    web_client: TestClient, monkeypatch: pytest.MonkeyPatch, expired_claims: None
) -> None:
    original = Conversation.handle

    async def commit_then_die(self: Conversation, *args: Any, **kwargs: Any) -> Any:
        await original(self, *args, **kwargs)
        raise Killed("died after the commit, before the response")

    with monkeypatch.context() as crash:
        crash.setattr(Conversation, "handle", commit_then_die)
        await post(web_client, text="/start", message_id="m-1")
    expected = [row.payload["text"] for row in await reply_rows()]
    response = await web_client.post("/webchat/api/updates", json={"session_id": SESSION})
    assert [m["text"] for m in (await response.json())["messages"]] == expected
    status, again = await post(web_client, text="/start", message_id="m-1")
    assert (status, again) == (200, [])
