"""No WeChat answer lost to a crash: a turn's replies are committed with it (bot.replies), the
passive reply is rendered from those rows, a retry of the MsgId is answered with them, and what
one passive reply cannot carry goes through the customer-service API once.

The crash is simulated as tests/test_crash_safety.py does for Telegram: the answer path raises
right after the commit (the rows committed, nothing answered, nothing marked), then WeChat
delivers the same MsgId again, to a restarted worker. Everything runs over real HTTP: the fake
WeChat pushes signed (in safe mode encrypted) messages and wechatpy's client calls its API.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import bot.replies
from bot.outbox import Dispatcher
from bot.wechat import PASSIVE_TEXT_BYTES, WeChatEndpoint, fit_passive, render_text
from handlers.messages import Outgoing
from models.entities import Channel, DialogSession, OutboxMessage, OutboxStatus, ProcessedUpdate
from models.outbox import outgoing_from_json
from tests.fakes.wechat_server import FakeWeChat
from tests.waiting import eventually
from tests.wechat_harness import Desk, SlowConversationInOutbox, running_desk, slow_turns

OPENID = "oCitizenCrash000000000000001"
CUSTOM_SEND = "/cgi-bin/message/custom/send"
# Two long messages after the turn's own: more than one passive reply carries.
LONG = ("第一段说明。" * 120, "第二段说明。" * 120)


class Killed(Exception):
    """What the answer path meets instead of writing the response: the process "died"."""


async def crashed_passive(*args: Any, **kwargs: Any) -> Any:
    raise Killed("the worker died after its commit, before answering")


@pytest.fixture(params=[True, False], ids=["safe", "plain"])
def safe(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def reply_rows() -> list[OutboxMessage]:
    return await OutboxMessage.filter(idempotency_key__startswith="reply:wechat:").order_by("id")


def api_texts(fake: FakeWeChat) -> list[str]:
    return fake.texts_to(OPENID)


def with_long_messages(desk: Desk) -> None:
    """Turns answer with two long messages more (a multi-message turn), through the public
    hook that shapes a turn's replies into rows."""
    desk.conversation.keep_replies_in_outbox(
        Channel.WECHAT,
        in_response=True,
        shape=lambda replies: fit_passive([*replies, *(Outgoing(text) for text in LONG)]),
    )


def rendered(rows: list[OutboxMessage]) -> str:
    """The rows as one passive reply shows them."""
    return render_text([outgoing_from_json(row.payload) for row in rows])


async def all_sent() -> bool:
    rows = await reply_rows()
    return bool(rows) and all(row.status == OutboxStatus.SENT for row in rows)


async def test_a_reply_lost_between_commit_and_answer_comes_with_the_retry(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, safe: bool
) -> None:
    msg_id = 7_000_000_000_000_000_001
    async with running_desk(db_url, tmp_path, accept_plaintext=not safe) as desk:
        xml = desk.fake.text_xml(OPENID, "/start", msg_id=msg_id)
        with monkeypatch.context() as crash:
            crash.setattr(WeChatEndpoint, "_passive", crashed_passive)
            died = await desk.fake.deliver(desk.url, xml, safe=safe)
        assert died.status == 500 and died.reply is None
    rows = await reply_rows()
    assert rows and all(r.status == OutboxStatus.SENDING and r.in_response for r in rows)
    committed = rendered(rows)

    # WeChat retries five seconds later, here to a restarted worker; the dead worker's claim
    # is still running, and the retry takes it over.
    async with running_desk(db_url, tmp_path, accept_plaintext=not safe) as restarted:
        retried = await restarted.fake.deliver(restarted.url, xml, safe=safe)
        assert retried.status == 200 and retried.text == committed
        await eventually(all_sent, what="the reply rows marked sent")
        # Asked once more (its answer came too late for WeChat): the same answer, not nothing.
        again = await restarted.fake.deliver(restarted.url, xml, safe=safe)
        assert again.status == 200 and again.text == committed
        assert restarted.fake.calls_to(CUSTOM_SEND) == []
    session = await DialogSession.get(channel=Channel.WECHAT, external_id=OPENID)
    assert session.version == 1  # the turn ran once
    assert await ProcessedUpdate.filter(channel=Channel.WECHAT).count() == 1


async def test_duplicate_deliveries_at_once_run_one_turn_and_get_one_answer(
    db_url: str, tmp_path: Path, safe: bool
) -> None:
    msg_id = 7_000_000_000_000_000_002
    async with (
        running_desk(db_url, tmp_path, accept_plaintext=not safe) as worker_a,
        running_desk(db_url, tmp_path, accept_plaintext=not safe) as worker_b,
    ):
        xml = worker_a.fake.text_xml(OPENID, "/start", msg_id=msg_id)
        answers = await asyncio.gather(
            worker_a.fake.deliver(worker_a.url, xml, safe=safe),
            worker_a.fake.deliver(worker_a.url, xml, safe=safe),
            worker_b.fake.deliver(worker_b.url, xml, safe=safe),
        )
        assert all(a.status == 200 for a in answers)
        assert answers[0].text and {a.text for a in answers} == {answers[0].text}
        await eventually(all_sent, what="the reply rows marked sent")
        assert worker_a.fake.calls_to(CUSTOM_SEND) == worker_b.fake.calls_to(CUSTOM_SEND) == []
    session = await DialogSession.get(channel=Channel.WECHAT, external_id=OPENID)
    assert session.version == 1


async def test_what_one_passive_reply_cannot_carry_goes_through_the_api_once(
    db_url: str, tmp_path: Path, safe: bool
) -> None:
    msg_id = 7_000_000_000_000_000_003
    async with running_desk(db_url, tmp_path, accept_plaintext=not safe) as desk:
        with_long_messages(desk)
        xml = desk.fake.text_xml(OPENID, "/start", msg_id=msg_id)
        first = await desk.fake.deliver(desk.url, xml, safe=safe)
        assert first.status == 200 and first.text
        assert len(first.text.encode()) <= PASSIVE_TEXT_BYTES
        await eventually(all_sent, what="every reply row sent")
        rows = await reply_rows()
        passive = [r for r in rows if r.in_response]
        by_api = [r for r in rows if not r.in_response]
        # The passive reply is the leading rows; the rest followed as customer-service texts,
        # in order, each once.
        assert passive and by_api and rows == passive + by_api
        assert first.text == rendered(passive)
        expected = [r.payload["text"] for r in by_api]
        assert api_texts(desk.fake) == expected
        assert "".join(expected) == "".join(LONG)
        # A retry gets the passive share again; the API's share is not sent twice.
        again = await desk.fake.deliver(desk.url, xml, safe=safe)
        assert again.text == first.text
        assert api_texts(desk.fake) == expected


async def test_a_multi_message_turn_killed_before_answering_is_told_once_on_retry(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    msg_id = 7_000_000_000_000_000_004
    async with running_desk(db_url, tmp_path) as desk:
        with_long_messages(desk)
        xml = desk.fake.text_xml(OPENID, "/start", msg_id=msg_id)
        with monkeypatch.context() as crash:
            crash.setattr(WeChatEndpoint, "_passive", crashed_passive)
            assert (await desk.fake.deliver(desk.url, xml)).status == 500
    assert all(r.status == OutboxStatus.SENDING for r in await reply_rows())
    async with running_desk(db_url, tmp_path) as restarted:
        retried = await restarted.fake.deliver(restarted.url, xml)
        assert retried.status == 200 and retried.text
        await eventually(all_sent, what="every reply row sent")
        rows = await reply_rows()
        by_api = [r.payload["text"] for r in rows if not r.in_response]
        assert by_api and api_texts(restarted.fake) == by_api
        for _ in range(2):  # WeChat's further retries
            assert (await restarted.fake.deliver(restarted.url, xml)).text == retried.text
        assert api_texts(restarted.fake) == by_api
    session = await DialogSession.get(channel=Channel.WECHAT, external_id=OPENID)
    assert session.version == 1


async def test_a_crash_past_the_passive_window_is_answered_by_the_api_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WeChat stopped retrying before the worker came back: the dispatcher sends the committed
    replies as customer-service messages once the claim (WeChat's retry window) has passed."""
    monkeypatch.setattr(bot.replies, "RESPONSE_CLAIM_SECONDS", 0.0)
    msg_id = 7_000_000_000_000_000_005
    async with running_desk(db_url, tmp_path) as desk:
        xml = desk.fake.text_xml(OPENID, "/start", msg_id=msg_id)
        with monkeypatch.context() as crash:
            crash.setattr(WeChatEndpoint, "_passive", crashed_passive)
            assert (await desk.fake.deliver(desk.url, xml)).status == 500
    rows = await reply_rows()
    async with running_desk(db_url, tmp_path) as restarted:
        # The same platform as before the restart: the person's message opened the window.
        restarted.fake.user_interacted(OPENID)
        # On the wall clock, as every dispatcher judges claims (bot.replies.wall_clock).
        dispatcher = Dispatcher({Channel.WECHAT: restarted.sender})
        assert await dispatcher.dispatch_once() == len(rows)
        assert await dispatcher.dispatch_once() == 0
        texts = [rendered([r]) for r in rows]
        assert api_texts(restarted.fake) == texts
    assert await all_sent()


async def test_a_turn_past_the_deadline_is_sent_by_the_api_once_and_retries_get_success(
    db_url: str, tmp_path: Path
) -> None:
    slow, wrap = slow_turns(SlowConversationInOutbox)
    async with (
        running_desk(db_url, tmp_path, wrap=wrap, reply_deadline=0.05) as desk,
        running_desk(db_url, tmp_path) as other,
    ):
        xml = desk.fake.text_xml(OPENID, "/start", msg_id=7_000_000_000_000_000_006)
        first = await desk.fake.deliver(desk.url, xml)
        assert first.body == "success"
        slow[0].release.set()
        await desk.endpoint.drain()
        rows = await reply_rows()
        assert rows and all(r.status == OutboxStatus.SENT and not r.in_response for r in rows)
        texts = [rendered([r]) for r in rows]
        assert api_texts(desk.fake) == texts
        # A retry anyway (the "success" was lost), here and on another worker: not told again.
        assert (await desk.fake.deliver(desk.url, xml)).body == "success"
        assert (await other.fake.deliver(other.url, xml)).body == "success"
        assert api_texts(desk.fake) == texts and api_texts(other.fake) == []
    assert slow[0].turns == 1
