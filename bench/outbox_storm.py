"""Outbox storm: many messages through the dispatcher while Telegram answers 429s and 5xx.

    PYTHONPATH=. python bench/outbox_storm.py [--messages 2000] [--db URL] [--crash-at 3]

The production path end to end: outbox rows in a real database (a fresh SQLite file, or the
PostgreSQL database given with --db, whose outbox table is emptied first), the `Dispatcher`,
the production `TelegramSender` (text through `BotApi`, uploads through python-telegram-bot),
and the fake Bot API server over
loopback HTTP with its flood control on. A storm task injects 5xx answers and 429s with
retry_after while the run lasts; `--crash-at` kills the dispatcher mid-run (task cancelled, as
abrupt as it gets in-process, possibly mid-request) and starts a fresh one. The rows the dead
one had claimed go out once their claim expires (`--claim-seconds`), which then dominates the
elapsed time; a request cut off after Telegram took it would show as a duplicate.

Telegram's limits (30/s overall, 1/s per chat, 20/min per group) are multiplied by `--speed`
on both sides, so 2000 messages finish in seconds rather than minutes; the pacing logic is the
same. Prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from telegram import Bot

from bot.outbox import Dispatcher, RateLimits, is_group_chat
from bot.telegram import BotApi, TelegramSender
from models.db import close_db, init_db
from models.entities import Channel, OutboxMessage, OutboxStatus
from tests.fakes import FakeTelegram
from tests.outbox_support import chat_ids, check_delivery, peak_in_window, queue_round_robin


@dataclass
class Storm:
    """What the storm task injected."""

    errors_5xx: int = 0
    errors_429: int = 0


async def storm(tg: FakeTelegram, stop: asyncio.Event, args: argparse.Namespace) -> Storm:
    """Inject failures at the given rates until `stop` is set."""
    injected = Storm()
    rng = random.Random(args.seed)
    started = time.monotonic()
    next_429 = started + 1 / args.rate_429 if args.rate_429 > 0 else float("inf")
    while not stop.is_set() and time.monotonic() - started < args.storm_seconds:
        await asyncio.sleep(1 / args.rate_5xx if args.rate_5xx > 0 else 0.1)
        if args.rate_5xx > 0:
            count = rng.randint(1, 3)
            tg.fail_next("sendMessage", rng.choice((500, 502, 504)), count=count)
            injected.errors_5xx += count
        if time.monotonic() >= next_429:
            tg.fail_next("sendMessage", 429, retry_after=args.retry_after)
            injected.errors_429 += 1
            next_429 += 1 / args.rate_429
    return injected


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite://{Path(tmp) / 'bench.sqlite3'}"
        await init_db(url)
        try:
            await OutboxMessage.all().delete()
            await bench(args)
        finally:
            await close_db()


async def bench(args: argparse.Namespace) -> None:
    speed = args.speed
    limits = RateLimits(
        per_chat_per_second=1 * speed,
        global_per_second=30 * speed,
        per_group_per_minute=20 * speed,
    )
    chats = chat_ids(args.chats, args.groups)
    expected = await queue_round_robin(
        chats, args.messages, now=datetime.now(UTC), key_prefix="bench"
    )
    async with FakeTelegram() as tg:
        tg.set_flood_limits(
            per_chat_per_second=limits.per_chat_per_second,
            global_per_second=limits.global_per_second,
            per_group_per_minute=limits.per_group_per_minute,
        )
        api = BotApi(tg.token, tg.base_url, 15.0)
        async with Bot(tg.token, base_url=tg.api_url, base_file_url=tg.file_url) as bot:
            sender = TelegramSender(bot, api=api)
            sender.limits = limits

            def dispatcher() -> Dispatcher:
                return Dispatcher(
                    {Channel.TELEGRAM: sender},
                    batch=args.batch,
                    claim_seconds=args.claim_seconds,
                    backoff_base=0.5,
                    backoff_cap=5.0,
                    poll_seconds=0.2,
                )

            stop_storm = asyncio.Event()
            storm_task = asyncio.create_task(storm(tg, stop_storm, args))
            started = time.monotonic()
            stop = asyncio.Event()
            task = asyncio.create_task(dispatcher().run_forever(stop))
            crashes = 0
            sending_at_crash = 0
            deadline = started + args.timeout
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                if args.crash_at and not crashes and time.monotonic() - started >= args.crash_at:
                    task.cancel()  # the process dies: nothing of it runs any more
                    await asyncio.gather(task, return_exceptions=True)
                    crashes += 1
                    sending_at_crash = await OutboxMessage.filter(
                        status=OutboxStatus.SENDING
                    ).count()
                    stop = asyncio.Event()
                    task = asyncio.create_task(dispatcher().run_forever(stop))
                open_rows = await OutboxMessage.filter(
                    status__in=(OutboxStatus.PENDING, OutboxStatus.SENDING)
                ).count()
                if open_rows == 0:
                    break
            elapsed = time.monotonic() - started
            stop.set()
            stop_storm.set()
            await task
            injected = await storm_task
            await api.close()

    report(args, limits, tg, expected, injected, elapsed, crashes, sending_at_crash)
    rows = Counter(str(s) for s in await OutboxMessage.all().values_list("status", flat=True))
    failed = await OutboxMessage.filter(status=OutboxStatus.FAILED).values_list(
        "chat_id", "last_error"
    )
    print(f"rows by status        {dict(rows)}")
    for chat_id, error in failed[:5]:
        print(f"  failed row to {chat_id}: {error}")


def report(
    args: argparse.Namespace,
    limits: RateLimits,
    tg: FakeTelegram,
    expected: dict[str, list[str]],
    injected: Storm,
    elapsed: float,
    crashes: int,
    sending_at_crash: int,
) -> None:
    calls = tg.calls_of("sendMessage")
    delivered = [c for c in calls if c.ok]
    delivery = check_delivery(expected, ((str(c.chat_id), c.params["text"]) for c in delivered))
    messages_delivered = len({(str(c.chat_id), c.params["text"]) for c in delivered})
    statuses = Counter(c.status for c in calls if not c.ok)
    flood_429 = statuses[429] - injected.errors_429
    times = [c.at for c in delivered]
    group_times: dict[str, list[float]] = {}
    chat_times: dict[str, list[float]] = {}
    for call in delivered:
        target = group_times if is_group_chat(str(call.chat_id)) else chat_times
        target.setdefault(str(call.chat_id), []).append(call.at)
    print(
        f"outbox storm: {args.messages} messages to {args.chats} chats "
        f"({args.groups} groups), limits x{args.speed}, database "
        f"{'PostgreSQL' if args.db else 'SQLite'}"
    )
    print(f"elapsed               {elapsed:.2f} s")
    print(f"throughput            {messages_delivered / elapsed:.1f} messages/s delivered")
    print(f"sendMessage calls     {len(calls)} ({len(delivered)} accepted)")
    print(
        f"failed calls          {dict(sorted(statuses.items()))} — injected 5xx "
        f"{injected.errors_5xx}, injected 429 {injected.errors_429} (retry_after "
        f"{args.retry_after} s), flood-control 429 {max(flood_429, 0)}"
    )
    print(
        f"peak rate             {peak_in_window(times, 1.0)} in any 1 s "
        f"(limit {limits.global_per_second:g}); per chat "
        f"{max((peak_in_window(t, 1.0) for t in chat_times.values()), default=0)} in 1 s "
        f"(limit {limits.per_chat_per_second:g}); per group "
        f"{max((peak_in_window(t, 60.0) for t in group_times.values()), default=0)} in 60 s "
        f"(limit {limits.per_group_per_minute:g})"
    )
    print(f"crashes               {crashes} (rows claimed at the crash: {sending_at_crash})")
    print(f"duplicates            {delivery.duplicated}")
    print(f"lost                  {delivery.lost}")
    print(f"chats out of order    {delivery.out_of_order}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--chats", type=int, default=400)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--speed", type=float, default=10.0, help="multiply Telegram's limits")
    parser.add_argument("--db", help="PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--batch", type=int, default=60)
    parser.add_argument("--claim-seconds", type=float, default=8.0)
    parser.add_argument("--storm-seconds", type=float, default=6.0)
    parser.add_argument("--rate-5xx", type=float, default=10.0, help="5xx injections a second")
    parser.add_argument("--rate-429", type=float, default=0.5, help="429 injections a second")
    parser.add_argument("--retry-after", type=int, default=1)
    parser.add_argument("--crash-at", type=float, default=3.0, help="seconds; 0 for no crash")
    parser.add_argument("--timeout", type=float, default=55.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    # PTB logs every HTML 5xx page it cannot parse; the figures count them instead.
    logging.getLogger("telegram").setLevel(logging.CRITICAL)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
