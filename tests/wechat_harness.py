"""A running `/wechat` endpoint wired to a real Conversation and a FakeWeChat, for test_wechat_*.

Everything talks over real HTTP on loopback: the fake pushes signed (and in safe mode encrypted)
messages to the app, and wechatpy's client in the app calls the fake's API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.conversation import Conversation
from bot.wechat import (
    WECHAT_ENDPOINT,
    WECHAT_SENDER,
    ConversationPort,
    WeChatEndpoint,
    WeChatSender,
    setup_wechat,
)
from config.profiles import load_profile
from config.settings import Settings
from handlers.messages import FileRef, Incoming, Outgoing
from models.entities import Channel
from scheduler.calendar import WorkingCalendar
from tests.fakes.wechat_server import FakeWeChat

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai
PROFILE = load_profile("gov-window")
CALENDAR = WorkingCalendar()


class FixedClock:
    """The one clock shared by the app, the conversation and the fake WeChat."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def timestamp(self) -> float:
        return self.now.timestamp()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Desk:
    fake: FakeWeChat
    url: str  # the app's /wechat URL
    app: web.Application
    conversation: Conversation
    clock: FixedClock

    @property
    def endpoint(self) -> WeChatEndpoint:
        return self.app[WECHAT_ENDPOINT]

    @property
    def sender(self) -> WeChatSender:
        return self.app[WECHAT_SENDER]


def wechat_settings(db_url: str, tmp_path: Path, fake: FakeWeChat, **extra: object) -> Settings:
    return Settings(  # type: ignore[arg-type]
        database_url=db_url,
        data_dir=tmp_path / "data",
        wechat_appid=fake.appid,
        wechat_secret=fake.secret,
        wechat_token=fake.token,
        wechat_aes_key=fake.aes_key,
        wechat_api_base=fake.base_url,
        **extra,
    )


@asynccontextmanager
async def running_desk(
    db_url: str,
    tmp_path: Path,
    *,
    wrap: Callable[[Conversation], ConversationPort] | None = None,
    # Generous, so a loaded test machine never turns a passive reply into "success"; the
    # five-second path is tested with a turn that waits for the test, not with timing.
    reply_deadline: float = 30.0,
    templates: tuple[str, ...] = (),
    # The account runs in WeChat's compatibility mode (plaintext and safe mode side by side),
    # so the plain and the safe variants of a test share one desk; safe-only is tested apart.
    accept_plaintext: bool = True,
) -> AsyncIterator[Desk]:
    clock = FixedClock()
    async with FakeWeChat(clock=clock.timestamp, templates=templates) as fake:
        settings = wechat_settings(db_url, tmp_path, fake, wechat_accept_plaintext=accept_plaintext)
        conversation = Conversation(settings, PROFILE, CALENDAR, now=clock)
        app = web.Application()
        port = wrap(conversation) if wrap else conversation
        setup_wechat(app, port, settings, clock=clock, reply_deadline=reply_deadline)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            yield Desk(fake, str(server.make_url("/wechat")), app, conversation, clock)
        finally:
            await server.close()


class SlowConversation:
    """A real Conversation whose turns wait until the test lets them finish (past the passive
    deadline, without timing)."""

    def __init__(self, inner: Conversation) -> None:
        self.inner = inner
        self.release = asyncio.Event()
        self.turns = 0

    async def handle(self, incoming: Incoming) -> list[Outgoing]:
        self.turns += 1
        await self.release.wait()
        return await self.inner.handle(incoming)

    async def store_file(self, channel: Channel, file: FileRef) -> FileRef:
        return await self.inner.store_file(channel, file)

    def failure_reply(self, lang: str | None = None) -> list[Outgoing]:
        return self.inner.failure_reply(lang)


class SlowConversationInOutbox(SlowConversation):
    """The same, keeping its replies in the outbox like the Conversation it wraps."""

    def keep_replies_in_outbox(self, channel: Channel, **how: Any) -> None:
        self.inner.keep_replies_in_outbox(channel, **how)


def slow_turns(
    kind: type[SlowConversation] = SlowConversation,
) -> tuple[list[SlowConversation], Callable[[Conversation], ConversationPort]]:
    """`running_desk(..., wrap=wrap)`'s wrapper and the slow conversations it made."""
    made: list[SlowConversation] = []

    def wrap(conversation: Conversation) -> ConversationPort:
        made.append(kind(conversation))
        return made[-1]

    return made, wrap
