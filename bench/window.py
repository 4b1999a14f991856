"""The resend window: how long a message the platform has taken stays unmarked in the outbox.

    python bench/window.py [--messages 200] [--db sqlite --db postgres]

A kill -9 inside that window sends the message again after restart (Telegram's sendMessage has
no idempotency key, so nothing on our side can tell). Measured per message, from the instant
the fake Bot API handled the sendMessage to the instant the UPDATE marking the row sent has
returned, for both send paths:

- "dispatcher": notifications through `bot.outbox.Dispatcher` (production `TelegramSender`);
- "reply": a turn's replies through `bot.replies.deliver` and the channel's `BotApi` (the
  worker that ran the turn).

Prints min/median/max in ms per database, with the bare HTTP round trip to the fake API in the
same run as the reference. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _inbound_support import database


def _stats(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"min {min(ms):6.2f}  median {statistics.median(ms):6.2f}  max {max(ms):6.2f} ms"


async def measure(kind: str, messages: int) -> None:
    from telegram import Bot

    import bot.outbox as outbox
    from bot.outbox import Dispatcher
    from bot.replies import ClaimedReply, deliver, write_replies
    from bot.telegram import BotApi, TelegramSender
    from handlers.messages import Outgoing
    from models.db import close_db, init_db
    from models.entities import Channel, OutboxMessage
    from models.outbox import enqueue
    from tests.fakes import FakeTelegram

    loop = asyncio.get_running_loop()
    async with database(kind) as url, FakeTelegram() as tg:
        await init_db(url, apply_migrations=False)
        bot = Bot(tg.token, base_url=f"{tg.base_url}/bot", base_file_url=f"{tg.base_url}/file/bot")
        await bot.initialize()
        sender = TelegramSender(bot)
        # Reference: the HTTP round trip alone.
        rtt = []
        for i in range(min(messages, 100)):
            started = time.perf_counter()
            await bot.send_message(10_000 + i, "ping")
            rtt.append(time.perf_counter() - started)

        # Dispatcher path: rows to distinct chats, sent without pacing (the limits are not
        # what is measured), marked sent by _settle.
        now = datetime.now(UTC)
        for i in range(messages):
            await enqueue(
                channel=Channel.TELEGRAM,
                chat_id=str(20_000 + i),
                message=Outgoing(f"notice {i}"),
                idempotency_key=f"window-{i}",
                now=now,
            )
        settled: dict[str, float] = {}
        original = Dispatcher._settle

        async def timed_settle(self: Dispatcher, claim: object, **changes: object) -> bool:
            done = await original(self, claim, **changes)  # type: ignore[arg-type]
            if changes.get("status") == "sent":
                settled[claim.chat_id] = loop.time()  # type: ignore[attr-defined]
            return done

        outbox.Dispatcher._settle = timed_settle  # type: ignore[method-assign]
        sender.limits = outbox.RateLimits()
        dispatcher = Dispatcher({Channel.TELEGRAM: sender}, batch=1)
        sent = 0
        while sent < messages:
            sent += await dispatcher.dispatch_once()
        outbox.Dispatcher._settle = original  # type: ignore[method-assign]
        accepted = {str(c.chat_id): c.at for c in tg.calls if c.method == "sendMessage" and c.ok}
        dispatcher_window = [settled[chat] - accepted[chat] for chat in settled]

        # Reply path: rows written as a turn writes them, then deliver() through the channel's
        # own Bot API client (bot.telegram.BotApi), as TelegramChannel sends a turn's replies.
        api = BotApi(tg.token, tg.base_url, 5.0)
        reply_window: list[float] = []
        for i in range(messages):
            chat = str(40_000 + i)
            from tortoise.transactions import in_transaction

            async with in_transaction() as conn:
                replies = await write_replies(
                    conn,
                    channel=Channel.TELEGRAM,
                    chat_id=chat,
                    update_key=f"window:{i}",
                    replies=[Outgoing(f"reply {i}")],
                    now=datetime.now(UTC),
                )
            claims: list[ClaimedReply] = replies.claimed
            await deliver(
                claims,
                lambda message, chat=chat: api.send(chat, message, "zh_CN"),
                now=lambda: datetime.now(UTC),
            )
            done = loop.time()
            call = next(c for c in reversed(tg.calls) if str(c.chat_id) == chat)
            reply_window.append(done - call.at)
        left = await OutboxMessage.filter(status__in=["pending", "sending"]).count()
        await api.close()
        await bot.shutdown()
        await close_db()
    print(f"{kind:<9} HTTP round trip  {_stats(rtt)}")
    print(f"{kind:<9} dispatcher window {_stats(dispatcher_window)}  ({len(dispatcher_window)})")
    print(f"{kind:<9} reply window      {_stats(reply_window)}  ({len(reply_window)})")
    if left:
        print(f"{kind:<9} rows left unsent: {left}")


async def main(args: argparse.Namespace) -> None:
    for kind in args.db or ["sqlite", "postgres"]:
        await measure(kind, args.messages)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    asyncio.run(main(parser.parse_args()))
