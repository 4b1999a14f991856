"""Outbound WeChat: the shared access_token, the customer-service window and its fallbacks, and
`complaintdesk wechat menu` — wechatpy's client against the fake WeChat API over HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.outbox import PermanentFailure, RetryLater, TransientFailure
from bot.wechat import TEMPLATE_NOTICE_ENV, WeChatApi, WeChatSender, menu_definition
from config.settings import Settings, get_settings
from handlers.messages import Choice, Outgoing
from models.entities import KeyValue
from tests.fakes.wechat_server import FakeWeChat
from tests.wechat_harness import FixedClock

OPENID = "oCitizenHanMeimei000000001"
NOTICE = "TPL_complaint_progress_notice"


def api_for(fake: FakeWeChat, clock: FixedClock | None = None) -> WeChatApi:
    clock = clock or FixedClock()
    return WeChatApi(fake.appid, fake.secret, api_base=fake.base_url, clock=clock)


def tokens_used(fake: FakeWeChat) -> list[str]:
    return [c.params["access_token"] for c in fake.calls_to("/cgi-bin/message/custom/send")]


# ------------------------------------------------------------------ the access token


async def test_two_workers_fetch_the_access_token_once(db_url: str) -> None:
    clock = FixedClock()
    async with FakeWeChat(clock=clock.timestamp) as fake:
        fake.user_interacted(OPENID)
        worker_a, worker_b = api_for(fake, clock), api_for(fake, clock)
        await asyncio.gather(
            worker_a.send_text(OPENID, "一"),
            worker_b.send_text(OPENID, "二"),
            worker_a.send_text(OPENID, "三"),
            worker_b.send_text(OPENID, "四"),
        )
        assert fake.token_fetches == 1
        assert sorted(fake.texts_to(OPENID)) == sorted(["一", "二", "三", "四"])
        row = await KeyValue.get(key=worker_a.tokens.key)
        assert set(tokens_used(fake)) == {row.value["access_token"]}
        assert row.expires_at == clock.now + timedelta(seconds=7200)


async def test_the_token_is_refreshed_before_it_expires(db_url: str) -> None:
    clock = FixedClock()
    async with FakeWeChat(clock=clock.timestamp) as fake:
        fake.user_interacted(OPENID)
        api = api_for(fake, clock)
        await api.send_text(OPENID, "早上好")
        clock.advance(seconds=7200 - 299)  # inside the five-minute margin, still valid at WeChat
        await api.send_text(OPENID, "下午好")
        assert fake.token_fetches == 2
        first, second = tokens_used(fake)
        assert first != second
        assert fake.texts_to(OPENID) == ["早上好", "下午好"]


async def test_a_token_wechat_calls_expired_is_replaced_once_for_all_workers(
    db_url: str,
) -> None:
    clock = FixedClock()
    async with FakeWeChat(clock=clock.timestamp) as fake:
        fake.user_interacted(OPENID)
        worker_a, worker_b = api_for(fake, clock), api_for(fake, clock)
        await worker_a.send_text(OPENID, "一")
        fake.expire_tokens()  # WeChat now answers 42001 to the cached token
        await asyncio.gather(worker_a.send_text(OPENID, "二"), worker_b.send_text(OPENID, "三"))
        assert fake.token_fetches == 2
        assert sorted(fake.texts_to(OPENID)) == sorted(["一", "二", "三"])
        stale, *rest = tokens_used(fake)
        fresh = (await KeyValue.get(key=worker_a.tokens.key)).value["access_token"]
        # Each worker's send went out with the one fresh token (a worker that read the cache
        # after the other's refresh never tried the stale one at all).
        assert fresh != stale and set(rest) <= {stale, fresh} and rest.count(fresh) == 2


async def test_an_unknown_token_40001_is_refreshed_and_the_call_retried(db_url: str) -> None:
    async with FakeWeChat() as fake:
        fake.user_interacted(OPENID)
        api = api_for(fake)
        await KeyValue.create(
            key=api.tokens.key,
            value={"access_token": "TOKEN_FROM_ANOTHER_APP"},
            expires_at=FixedClock().now + timedelta(hours=1),
        )
        await api.send_text(OPENID, "你好")
        assert fake.token_fetches == 1
        assert tokens_used(fake)[0] == "TOKEN_FROM_ANOTHER_APP"
        assert fake.texts_to(OPENID) == ["你好"]


# ------------------------------------------------------------------ the sender


def sender_for(fake: FakeWeChat, template: str | None = None) -> WeChatSender:
    return WeChatSender(api_for(fake), notice_template=template)


async def test_choices_are_sent_as_numbered_lines(db_url: str) -> None:
    async with FakeWeChat() as fake:
        fake.user_interacted(OPENID)
        message = Outgoing("您对处理结果满意吗？", (Choice("s:1", "满意"), Choice("s:0", "不满意")))
        await sender_for(fake).send(OPENID, message)
        assert fake.texts_to(OPENID) == ["您对处理结果满意吗？\n1. 满意\n2. 不满意"]


async def test_window_closed_without_a_template_is_a_permanent_failure(db_url: str) -> None:
    async with FakeWeChat() as fake:
        fake.user_interacted(OPENID)
        fake.close_window(OPENID)  # 48 hours without a word from the person
        with pytest.raises(PermanentFailure, match="45015"):
            await sender_for(fake).send(OPENID, Outgoing("您的投诉已受理"))
        assert fake.sent == []


async def test_window_closed_falls_back_to_the_template_message(db_url: str) -> None:
    async with FakeWeChat(templates=(NOTICE,)) as fake:
        await sender_for(fake, NOTICE).send(OPENID, Outgoing("您的投诉已受理"))
        [sent] = fake.sent_to(OPENID)
        assert sent["msgtype"] == "template" and sent["template_id"] == NOTICE
        assert sent["data"] == {"content": {"value": "您的投诉已受理"}}


async def test_over_the_per_message_quota_the_template_takes_over(db_url: str) -> None:
    async with FakeWeChat(templates=(NOTICE,), messages_per_interaction=2) as fake:
        fake.user_interacted(OPENID)
        sender = sender_for(fake, NOTICE)
        for text in ("一", "二", "三"):
            await sender.send(OPENID, Outgoing(text))
        assert [m["msgtype"] for m in fake.sent_to(OPENID)] == ["text", "text", "template"]
        # The third customer-service attempt was refused (45047) before the template went out.
        assert len(fake.calls_to("/cgi-bin/message/custom/send")) == 3


async def test_the_template_id_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TEMPLATE_NOTICE_ENV, NOTICE)
    async with FakeWeChat() as fake:
        settings = Settings(
            wechat_appid=fake.appid, wechat_secret=fake.secret, wechat_api_base=fake.base_url
        )
        assert WeChatSender.from_settings(settings).notice_template == NOTICE
    monkeypatch.delenv(TEMPLATE_NOTICE_ENV)
    assert WeChatSender.from_settings(settings).notice_template is None


async def test_an_unknown_template_is_a_permanent_failure(db_url: str) -> None:
    async with FakeWeChat() as fake:
        with pytest.raises(PermanentFailure, match="40037"):
            await sender_for(fake, "TPL_deleted").send(OPENID, Outgoing("您的投诉已受理"))


async def test_wechat_errors_become_the_dispatchers_failures(db_url: str) -> None:
    async with FakeWeChat() as fake:
        fake.user_interacted(OPENID)
        sender = sender_for(fake)
        fake.fail_next("/cgi-bin/message/custom/send", -1)
        with pytest.raises(TransientFailure):
            await sender.send(OPENID, Outgoing("一"))
        fake.fail_next("/cgi-bin/message/custom/send", 45009, "reach max api daily quota limit")
        with pytest.raises(RetryLater):
            await sender.send(OPENID, Outgoing("二"))
        with pytest.raises(PermanentFailure, match="45015"):
            await sender.send("oSomeoneWhoNeverWrote", Outgoing("三"))
        assert fake.texts_to(OPENID) == []
        await sender.send(OPENID, Outgoing("四"))
        assert fake.texts_to(OPENID) == ["四"]


async def test_an_unreachable_api_is_a_transient_failure(db_url: str) -> None:
    async with FakeWeChat() as fake:
        base = fake.base_url
    api = WeChatApi("wx5823bf96d3bd56c7", "secret", api_base=base, timeout=2)
    with pytest.raises(TransientFailure):
        await WeChatSender(api).send(OPENID, Outgoing("你好"))


async def test_media_is_downloaded_with_its_type_and_name(db_url: str) -> None:
    async with FakeWeChat() as fake:
        media_id = fake.register_media(b"\xff\xd8jpeg", "image/jpeg", "evidence.jpg")
        media = await api_for(fake).download_media(media_id)
        assert (media.data, media.content_type, media.filename) == (
            b"\xff\xd8jpeg",
            "image/jpeg",
            "evidence.jpg",
        )


# ------------------------------------------------------------------ complaintdesk wechat menu


@pytest.fixture
def fake_in_thread() -> Iterator[FakeWeChat]:
    """A FakeWeChat on its own event loop, for the synchronous CLI (it runs asyncio.run)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = FakeWeChat()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def wechat_env(
    fake_in_thread: FakeWeChat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeWeChat]:
    monkeypatch.setenv("COMPLAINTDESK_DATABASE_URL", f"sqlite://{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("COMPLAINTDESK_WECHAT_APPID", fake_in_thread.appid)
    monkeypatch.setenv("COMPLAINTDESK_WECHAT_SECRET", fake_in_thread.secret)
    monkeypatch.setenv("COMPLAINTDESK_WECHAT_API_BASE", fake_in_thread.base_url)
    get_settings.cache_clear()
    yield fake_in_thread
    get_settings.cache_clear()


def test_wechat_menu_creates_the_custom_menu(
    wechat_env: FakeWeChat, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["wechat", "menu"]) == 0
    assert wechat_env.menu == menu_definition("zh_CN")
    assert [b["key"] for b in wechat_env.menu["button"]] == ["file", "status", "help"]
    assert "我要投诉 / 我的投诉 / 帮助" in capsys.readouterr().out
    wechat_env.fail_next("/cgi-bin/menu/create", 40018)
    assert main(["wechat", "menu", "--language", "en"]) == 1
    assert "40018" in capsys.readouterr().out
    assert wechat_env.token_fetches == 1  # the second run used the token cached in the database


def test_wechat_menu_dry_run_prints_the_menu(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wechat", "menu", "--dry-run", "--language", "en"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in printed["button"]] == ["File a complaint", "My complaints", "Help"]
