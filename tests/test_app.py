"""create_app mounts each channel whose settings are present, beside the web chat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.app import OUTBOX_MAX_ATTEMPTS, create_app
from bot.outbox import DISPATCHER_KEY, TELEGRAM_LIMITS, Dispatcher, TransientFailure
from config.settings import Settings
from handlers.messages import Outgoing
from models.entities import Channel, DialogSession, OutboxMessage, OutboxStatus
from models.outbox import enqueue
from scheduler.runner import SCHEDULER_KEY
from tests.fakes.telegram_server import FakeTelegram
from tests.waiting import eventually


def app_for(db_url: str, tmp_path: Path, **channel_settings: Any) -> TestClient:
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data", **channel_settings)
    return TestClient(TestServer(create_app(settings, manage_db=False)))


async def test_only_the_web_chat_without_channel_settings(db_url: str, tmp_path: Path) -> None:
    async with app_for(db_url, tmp_path) as client:
        assert DISPATCHER_KEY not in client.app  # nothing to send through
        assert (await client.post("/telegram/webhook", json={})).status == 404
        assert (await client.get("/wechat")).status == 404
        assert (await client.get("/webchat")).status == 200


async def test_telegram_long_polling_beside_the_web_chat(db_url: str, tmp_path: Path) -> None:
    async with FakeTelegram() as telegram:
        client = app_for(
            db_url, tmp_path, telegram_token=telegram.token, telegram_api_base=telegram.base_url
        )
        async with client:
            telegram.push_message(chat_id=4242, user_id=4242, text="/start")
            await eventually(
                lambda: telegram.texts_to(4242), what="a reply to /start through long polling"
            )
            assert "欢迎使用政务服务窗口投诉服务" in telegram.texts_to(4242)[0]
            web = await client.post(
                "/webchat/api/message", json={"session_id": "web-beside-1", "text": "/start"}
            )
            assert web.status == 200
            # A notification queued by any worker goes out through this worker's dispatcher.
            assert DISPATCHER_KEY in client.app
            notice = Outgoing("您的投诉 202611-0001 已受理。")
            await enqueue(
                channel=Channel.TELEGRAM,
                chat_id="4242",
                message=notice,
                idempotency_key="test:accepted",
                now=datetime.now(UTC),
            )
            client.app[DISPATCHER_KEY].wake()
            await eventually(
                lambda: notice.text in telegram.texts_to(4242),
                what=lambda: f"the notice among {telegram.texts_to(4242)}",
            )

            async def marked_sent() -> bool:
                row = await OutboxMessage.get(idempotency_key="test:accepted")
                return row.status == OutboxStatus.SENT

            # Telegram has the message before the dispatcher records it as sent.
            await eventually(marked_sent, what="the outbox row marked sent")
    channels = await DialogSession.all().values_list("channel", flat=True)
    assert sorted(channels) == [Channel.TELEGRAM, Channel.WEB]


async def test_telegram_webhook_mode_checks_the_secret(db_url: str, tmp_path: Path) -> None:
    async with FakeTelegram() as telegram:
        client = app_for(
            db_url,
            tmp_path,
            telegram_token=telegram.token,
            telegram_api_base=telegram.base_url,
            public_url="https://complaints.example.org",
            telegram_webhook_secret="s3cret-token",
        )
        async with client:
            forged = await client.post(
                "/telegram/webhook",
                json={"update_id": 1},
                headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
            )
            assert forged.status == 403
        assert telegram.webhook is not None
        assert telegram.webhook["url"] == "https://complaints.example.org/telegram/webhook"


async def test_wechat_is_mounted_when_its_token_is_set(db_url: str, tmp_path: Path) -> None:
    async with app_for(db_url, tmp_path, wechat_token="wechat-token") as client:
        unsigned = await client.get("/wechat", params={"echostr": "hello"})
        assert unsigned.status != 404 and await unsigned.text() != "hello"


async def test_the_scheduler_runs_with_the_app_when_asked(db_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data")
    app = create_app(settings, manage_db=False, scheduler=True)
    async with TestClient(TestServer(app)):
        jobs = {job.id for job in app[SCHEDULER_KEY].get_jobs()}
        assert "deadline-sweep" in jobs and app[SCHEDULER_KEY].running
    assert SCHEDULER_KEY not in create_app(settings, manage_db=False)


class DownPlatform:
    """A channel whose API answers 5xx until `up_at` (virtual time)."""

    channel = Channel.TELEGRAM
    limits = TELEGRAM_LIMITS

    def __init__(self, clock: list[datetime], up_at: datetime) -> None:
        self.clock = clock
        self.up_at = up_at
        self.sent: list[str] = []

    async def send(self, chat_id: str, message: Outgoing) -> None:
        if self.clock[0] < self.up_at:
            raise TransientFailure("502 Bad Gateway")
        self.sent.append(message.text)


async def test_the_apps_dispatcher_keeps_a_reply_through_a_half_hour_outage(
    db_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=db_url, data_dir=tmp_path / "data", telegram_token="123456:outage-token"
    )
    assert create_app(settings, manage_db=False)[DISPATCHER_KEY].max_attempts == (
        OUTBOX_MAX_ATTEMPTS
    )
    start = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    clock = [start]
    platform = DownPlatform(clock, up_at=start + timedelta(minutes=30))
    await enqueue(
        channel=Channel.TELEGRAM,
        chat_id="4242",
        message=Outgoing("您的投诉已受理"),
        idempotency_key="reply:outage",
        now=start,
    )
    # The shortest backoff at every try (jitter 0): the soonest the row could be given up.
    dispatcher = Dispatcher(
        {Channel.TELEGRAM: platform},
        now=lambda: clock[0],
        max_attempts=OUTBOX_MAX_ATTEMPTS,
        rng=lambda: 0.0,
    )
    row = await OutboxMessage.get(idempotency_key="reply:outage")
    while row.status == OutboxStatus.PENDING:
        clock[0] = max(clock[0], row.next_attempt_at)
        await dispatcher.dispatch_once()
        row = await OutboxMessage.get(id=row.id)
    assert row.status == OutboxStatus.SENT and platform.sent == ["您的投诉已受理"]
