"""End-to-end harness: complaintdesk's whole app serving FakeTelegram, people in their chats.

`Deployment` runs `bot.app.create_app` (long polling, the outbox dispatcher, the conversation)
against a FakeTelegram on a simulated clock; a `Chat` is one person typing and pressing buttons
in their private chat. Input goes only through the fake Bot API; what each person received is
read back from it (`Chat.received`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

import bot.replies
from bot.app import create_app
from bot.outbox import DISPATCHER_KEY, Dispatcher, Sender
from bot.telegram import TELEGRAM_CHANNEL, TelegramChannel
from config.settings import Settings
from handlers.messages import Outgoing
from models.entities import Channel, OutboxMessage, OutboxStatus
from tests.fakes.telegram_server import FakeTelegram, JSONDict
from tests.waiting import WITHIN_SECONDS, eventually

SHANGHAI = ZoneInfo("Asia/Shanghai")
_OPEN = (OutboxStatus.PENDING, OutboxStatus.SENDING)
APP_DISPATCHER_TASK = "outbox-dispatcher"  # the task name bot.outbox.setup_dispatcher gives


class SimClock:
    """The app's `now`: a simulated instant that only the test moves."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def set_local(self, year: int, month: int, day: int, hour: int, minute: int = 0) -> None:
        """Move to a wall-clock time in Shanghai (forward only, like time itself)."""
        moved = datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)
        assert moved >= self.now, "the simulated clock only moves forward"
        self.now = moved


async def until(condition: Callable[[], bool], within: float = WITHIN_SECONDS) -> None:
    """Wait for background work (polling, dispatching) to make `condition` true."""
    # The bot's tasks offer no event to wait on; poll the observable state.
    await eventually(condition, within=within, what="background work (polling, dispatching)")


class WatchedSender:
    """A restarted dispatcher's sender that counts the sends under way (request made, answer
    not yet back), so a test can crash the dispatcher when nothing is on the wire."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self.channel = inner.channel
        self.limits = inner.limits
        self.under_way = 0

    async def send(self, chat_id: str, message: Outgoing) -> None:
        self.under_way += 1
        try:
            await self.inner.send(chat_id, message)
        finally:
            self.under_way -= 1


class Deployment:
    """The product as deployed: one worker with Telegram long polling and the dispatcher."""

    def __init__(
        self, tg: FakeTelegram, db_url: str, data_dir: Path, clock: SimClock, profile: str
    ) -> None:
        self.tg = tg
        self.clock = clock
        self.settings = Settings(
            database_url=db_url,
            data_dir=data_dir,
            profile=profile,
            telegram_token=tg.token,
            telegram_api_base=tg.base_url,
        )
        self.app = create_app(self.settings, now=clock, manage_db=False)
        self._runner: web.AppRunner | None = None
        # After a simulated crash: the dispatcher started in the dead one's place.
        self._restarted: Dispatcher | None = None
        self._restarted_task: asyncio.Task[None] | None = None
        self._stop_restarted = asyncio.Event()
        self._skew = timedelta()  # how far the restarted dispatcher's clock runs ahead
        self._reply_claim = bot.replies.REPLY_CLAIM_SECONDS
        self._restarted_sender: WatchedSender | None = None

    @property
    def channel(self) -> TelegramChannel:
        return self.app[TELEGRAM_CHANNEL]

    @property
    def dispatcher(self) -> Dispatcher:
        """The dispatcher sending now: the app's own, or the one started after a crash."""
        return self._restarted or self.app[DISPATCHER_KEY]

    @property
    def sends_under_way(self) -> int:
        """Sends the restarted dispatcher has started and not yet seen answered."""
        return self._restarted_sender.under_way if self._restarted_sender else 0

    async def crash_dispatcher(self) -> int:
        """Kill the running dispatcher the way a crash would (its task cancelled mid-run:
        nothing more is recorded); returns how many claimed rows it left behind."""
        task = self._restarted_task or next(
            t for t in asyncio.all_tasks() if t.get_name() == APP_DISPATCHER_TASK
        )
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._restarted, self._restarted_task = None, None
        return await OutboxMessage.filter(status=OutboxStatus.SENDING).count()

    def restart_dispatcher(self) -> None:
        """A new dispatcher process, started once the dead one's claims have expired (its
        clock runs a claim's length ahead, instead of the test waiting that long)."""
        # Each restart jumps past the claims of the process before (itself maybe skewed).
        self._skew += timedelta(seconds=self.app[DISPATCHER_KEY].claim_seconds + 1)
        skew = self._skew
        # The live worker's chat replies are claimed in real time (bot.replies); judged by the
        # skewed clock they would look abandoned at once, so they last the skew longer here.
        bot.replies.REPLY_CLAIM_SECONDS = self._reply_claim + skew.total_seconds()
        self._restarted_sender = WatchedSender(self.channel.sender())
        self._restarted = Dispatcher(
            {Channel.TELEGRAM: self._restarted_sender}, now=lambda: datetime.now(UTC) + skew
        )
        self._restarted_task = asyncio.create_task(
            self._restarted.run_forever(self._stop_restarted), name="outbox-dispatcher-restarted"
        )

    async def start(self) -> None:
        # No listening site is needed: long polling starts on the app's startup.
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()

    async def stop(self) -> None:
        bot.replies.REPLY_CLAIM_SECONDS = self._reply_claim
        self._stop_restarted.set()
        if self._restarted_task is not None:
            await self._restarted_task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def delivered(self, within: float = 2 * WITHIN_SECONDS) -> None:
        """Wait until the outbox holds nothing unsent (every notification went out)."""
        self.dispatcher.wake()

        async def settled() -> bool:
            return not await OutboxMessage.filter(status__in=_OPEN).exists()

        async def unsent() -> str:
            rows = await OutboxMessage.filter(status__in=_OPEN).values_list("chat_id", "status")
            return f"outbox rows still unsent (chat, status): {rows}"

        # Rows settle in the dispatcher's tasks; nothing to await but the table.
        await eventually(settled, within=within, what=unsent, poll=0.05)


class Chat:
    """One person in a private chat with the bot (chat id == user id)."""

    def __init__(
        self, tg: FakeTelegram, deployment: Deployment, chat_id: int, language_code: str
    ) -> None:
        self.tg = tg
        self.deployment = deployment
        self.chat_id = chat_id
        self.language_code = language_code
        self._read = 0

    # -- what the person does -----------------------------------------------------------

    async def deliver(self, update: JSONDict) -> list[str]:
        """Hand `update` to the bot and wait until it has answered; returns the new texts."""
        self.tg.push_update(update)
        channel = self.deployment.channel
        await until(lambda: channel.has_processed(update["update_id"]))
        return self.unread()

    async def text(self, text: str) -> list[str]:
        return await self.deliver(self._message(text=text))

    async def command(self, name: str, args: str = "") -> list[str]:
        return await self.text(f"/{name} {args}".strip())

    async def photo(self, content: bytes, caption: str | None = None) -> list[str]:
        return await self.deliver(self._message(photo=content, caption=caption))

    async def press(self, label: str) -> list[str]:
        """Press the button labelled `label` on the latest message that shows it."""
        return await self.deliver(self.button(label))

    async def act(self, kind: str, value: str | bytes) -> list[str]:
        """One step of a script: ("press", label), ("text", typed), ("command", name) or
        ("photo", bytes)."""
        if kind == "press":
            return await self.press(str(value))
        if kind == "text":
            return await self.text(str(value))
        if kind == "command":
            return await self.command(str(value))
        if kind == "photo":
            assert isinstance(value, bytes)
            return await self.photo(value)
        raise ValueError(f"unknown step kind {kind!r}")

    async def press_data(self, data: str) -> list[str]:
        """Press the button carrying `data` on the latest message that shows it."""
        return await self.deliver(self.button_with_data(data))

    def button(self, label: str) -> JSONDict:
        return self.tg.press(
            self.chat_id, self.chat_id, label, language_code=self.language_code, enqueue=False
        )

    def button_with_data(self, data: str) -> JSONDict:
        """A press of the button carrying `data` on the latest message *sent* with it — even
        if that keyboard was taken away since (an old notification, a quick double tap)."""
        for call in reversed(self.tg.calls_of("sendMessage")):
            if not call.ok or call.chat_id != self.chat_id:
                continue
            rows = (call.params.get("reply_markup") or {}).get("inline_keyboard", [])
            if any(b.get("callback_data") == data for row in rows for b in row):
                return self.tg.push_callback(
                    self.chat_id,
                    self.chat_id,
                    data,
                    call.result["message_id"],
                    language_code=self.language_code,
                    enqueue=False,
                )
        raise LookupError(f"no button {data!r} was sent to chat {self.chat_id}")

    async def deliver_all(self, updates: list[JSONDict]) -> list[str]:
        """Hand several updates to the bot at once (a double tap) and wait for all answers."""
        for update in updates:
            self.tg.push_update(update)
        channel = self.deployment.channel
        await until(lambda: all(channel.has_processed(u["update_id"]) for u in updates))
        return self.unread()

    def _message(self, **fields: Any) -> JSONDict:
        return self.tg.push_message(
            self.chat_id, self.chat_id, language_code=self.language_code, enqueue=False, **fields
        )

    # -- what the person received ---------------------------------------------------------

    @property
    def received(self) -> list[str]:
        """Every text the person received, in order."""
        return self.tg.texts_to(self.chat_id)

    def unread(self) -> list[str]:
        """The texts received since the last call."""
        texts = self.received
        new, self._read = texts[self._read :], len(texts)
        return new

    def buttons(self, text_start: str) -> list[tuple[str, str]]:
        """(label, callback_data) of the latest received message starting with `text_start`."""
        for call in reversed(self.tg.sent_to(self.chat_id)):
            params = call["params"]
            if str(params.get("text", "")).startswith(text_start):
                rows = (params.get("reply_markup") or {}).get("inline_keyboard", [])
                return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]
        raise LookupError(f"no message starting {text_start!r} in chat {self.chat_id}")
