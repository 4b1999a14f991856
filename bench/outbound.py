"""Outbound at Telegram's real limits: 10 000 messages to 1 000 chats through the dispatcher.

    PYTHONPATH=. python bench/outbound.py [--messages 10000] [--chats 1000] [--runs 1]
        [--groups 0] [--speed 1] [--inject-429 0] [--sender bot-api|ptb] [--sqlite]
        [--pg postgres://...]

The production path end to end: outbox rows in a scratch PostgreSQL database (created and
dropped; `--sqlite` for a temporary SQLite file), the `Dispatcher` with its default settings,
the production `TelegramSender` (text through `BotApi`, the raw aiohttp client; `--sender ptb`
for python-telegram-bot's stack, as before), and the fake Bot API server over
loopback HTTP — in a child process, so this process's CPU time is the dispatcher's alone — with
its flood control on: Telegram's limits (30/s overall, 1/s per chat, 20/min per group) checked
as strict sliding windows at the instant each request arrives.

Prints per run: the achieved rate as a percentage of the 30/s global limit (from the
dispatcher's start to the last message accepted, and sustained between the first and the last
one), 429 answers from the fake's flood control, lost, duplicated, chats whose messages came out
of order, the peak counts in any sliding window, the mean time the limiter counted from a send's
start to its answer (the rate is bounded by 30 / (1 + that)), and CPU ms per message — beside
the CPU ms of a bare aiohttp POST per message to the same fake, measured in the same run as the
reference.
`--inject-429 N` makes the fake answer N extra 429s (retry_after 1 s) spread over the run, to
show they are honoured (those are counted apart from flood-control 429s). Figures, no asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import statistics
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

GLOBAL_LIMIT = 30.0


# ------------------------------------------------------------------ the fake, in a child


def _serve(pipe: Connection, limits: dict[str, float | None]) -> None:
    asyncio.run(_serve_async(pipe, limits))


async def _serve_async(pipe: Connection, limits: dict[str, float | None]) -> None:
    from tests.fakes import FakeTelegram

    loop = asyncio.get_running_loop()
    async with FakeTelegram() as limited, FakeTelegram() as free:
        limited.set_flood_limits(**limits)  # type: ignore[arg-type]
        pipe.send((limited.token, limited.api_url, limited.file_url, free.api_url))
        while True:
            command = await loop.run_in_executor(None, pipe.recv)
            if command[0] == "inject-429":
                limited.fail_next("sendMessage", 429, retry_after=1)
            elif command[0] == "calls":
                calls = [
                    (str(c.chat_id), c.params.get("text"), c.status, c.error, c.at)
                    for c in limited.calls_of("sendMessage")
                ]
                pipe.send((calls, time.process_time()))
            elif command[0] == "stop":
                return


# ------------------------------------------------------------------ one run


async def _reference_cpu(api_url: str, token: str, count: int) -> float:
    """CPU ms per bare aiohttp sendMessage POST to the fake (no flood control, no database)."""
    import aiohttp

    url = f"{api_url}{token}/sendMessage"
    async with aiohttp.ClientSession() as session:
        started = time.process_time()
        for n in range(count):
            async with session.post(url, json={"chat_id": 5000 + n, "text": f"ref {n}"}) as r:
                await r.read()
        return (time.process_time() - started) * 1000 / count


async def one_run(url: str, args: argparse.Namespace, run_no: int) -> dict[str, Any]:
    from telegram import Bot

    from bot.outbox import Dispatcher, RateLimits, Send, is_group_chat
    from bot.telegram import BotApi, TelegramSender
    from models.db import close_db, init_db
    from models.entities import Channel, OutboxMessage, OutboxStatus
    from tests.outbox_support import chat_ids, check_delivery, peak_in_window, queue_round_robin

    speed = args.speed
    limits = RateLimits(
        per_chat_per_second=1 * speed,
        global_per_second=GLOBAL_LIMIT * speed,
        per_group_per_minute=20 * speed,
    )
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    fake = ctx.Process(
        target=_serve,
        args=(
            child,
            {
                "per_chat_per_second": limits.per_chat_per_second,
                "global_per_second": limits.global_per_second,
                "per_group_per_minute": limits.per_group_per_minute,
            },
        ),
        daemon=True,
    )
    fake.start()
    loop = asyncio.get_running_loop()
    token, api_url, file_url, free_url = await loop.run_in_executor(None, parent.recv)
    await init_db(url)
    try:
        chats = chat_ids(args.chats, args.groups)
        expected = await queue_round_robin(
            chats, args.messages, now=datetime.now(UTC), key_prefix="bench"
        )
        reference_ms = await _reference_cpu(free_url, token, args.reference_calls)
        api = (
            BotApi(token, api_url.removesuffix("/bot"), 15.0) if args.sender == "bot-api" else None
        )
        async with Bot(token, base_url=api_url, base_file_url=file_url) as bot:
            sender = TelegramSender(bot, api=api)
            sender.limits = limits
            dispatcher = Dispatcher({Channel.TELEGRAM: sender})
            counted: list[float] = []  # each send's start to its answer, as the limiter saw it
            finish = dispatcher.limiter.finish

            def finish_and_note(send: Send) -> None:
                finish(send)
                if send.end is not None:
                    counted.append(send.end - send.start)

            dispatcher.limiter.finish = finish_and_note  # type: ignore[method-assign]
            stop = asyncio.Event()
            cpu0, wall0 = time.process_time(), time.monotonic()
            task = asyncio.create_task(dispatcher.run_forever(stop))
            injected = 0
            next_injection = wall0 + 5.0
            while True:
                await asyncio.sleep(0.25)
                now = time.monotonic()
                if injected < args.inject_429 and now >= next_injection:
                    parent.send(("inject-429",))
                    injected += 1
                    next_injection = now + 10.0
                left = await OutboxMessage.filter(
                    status__in=(OutboxStatus.PENDING, OutboxStatus.SENDING)
                ).count()
                if left == 0 or now - wall0 > args.timeout:
                    break
            stop.set()
            await task
            cpu_ms = (time.process_time() - cpu0) * 1000
            if api is not None:
                await api.close()
        statuses = Counter(
            str(s) for s in await OutboxMessage.all().values_list("status", flat=True)
        )
    finally:
        await close_db()
        parent.send(("calls",))
        calls, fake_cpu = await loop.run_in_executor(None, parent.recv)
        parent.send(("stop",))
        fake.join(timeout=10)
    accepted = [c for c in calls if c[2] == 200]
    delivery = check_delivery(expected, ((chat, text) for chat, text, *_ in accepted))
    flood_429 = sum(1 for c in calls if c[2] == 429 and c[3] and "retry after" in c[3]) - injected
    times = [c[4] for c in accepted]
    first, last = min(times), max(times)
    # The dispatcher started on this process's monotonic clock, the fake stamps its loop's
    # monotonic clock: the same clock on Linux.
    overall = len(accepted) / (last - wall0)
    sustained = (len(accepted) - 1) / (last - first) if last > first else 0.0
    by_chat: dict[str, list[float]] = {}
    for chat, _, _, _, at in accepted:
        by_chat.setdefault(chat, []).append(at)
    chat_peak = max(
        (peak_in_window(t, 1.0) for chat, t in by_chat.items() if not is_group_chat(chat)),
        default=0,
    )
    group_peak = max(
        (peak_in_window(t, 60.0) for chat, t in by_chat.items() if is_group_chat(chat)),
        default=0,
    )
    return {
        "run": run_no,
        "elapsed": last - wall0,
        "overall_pct": overall / limits.global_per_second * 100,
        "sustained_pct": sustained / limits.global_per_second * 100,
        "calls": len(calls),
        "flood_429": flood_429,
        "injected_429": injected,
        "lost": delivery.lost,
        "duplicated": delivery.duplicated,
        "out_of_order": delivery.out_of_order,
        "peak_global": peak_in_window(times, 1.0),
        "peak_chat": chat_peak,
        "peak_group": group_peak,
        "counted_ms": statistics.fmean(counted) * 1000 if counted else 0.0,
        "cpu_ms": cpu_ms / max(len(accepted), 1),
        "reference_cpu_ms": reference_ms,
        "fake_cpu_ms": fake_cpu * 1000 / max(len(calls), 1),
        "statuses": dict(statuses),
    }


def _print_run(r: dict[str, Any], args: argparse.Namespace) -> None:
    limit = GLOBAL_LIMIT * args.speed
    print(
        f"run {r['run']}: {args.messages} messages to {args.chats} chats ({args.groups} groups), "
        f"limits x{args.speed:g} ({limit:g}/s global)"
    )
    print(f"  elapsed to last accepted   {r['elapsed']:.1f} s")
    print(f"  rate, whole run            {r['overall_pct']:.1f} % of {limit:g}/s")
    print(f"  rate, first to last send   {r['sustained_pct']:.1f} % of {limit:g}/s")
    print(
        f"  429 from flood control     {r['flood_429']} (injected 429s honoured: "
        f"{r['injected_429']}; sendMessage calls {r['calls']})"
    )
    print(
        f"  lost {r['lost']}, duplicated {r['duplicated']}, chats out of order "
        f"{r['out_of_order']}; rows {r['statuses']}"
    )
    print(
        f"  peak in any sliding window: {r['peak_global']} per 1 s (limit {limit:g}), "
        f"{r['peak_chat']} per chat per 1 s, {r['peak_group']} per group per 60 s"
    )
    print(
        f"  start to answer, counted   {r['counted_ms']:.1f} ms on average (sender {args.sender})"
    )
    print(
        f"  CPU per message            {r['cpu_ms']:.2f} ms (bare aiohttp POST "
        f"{r['reference_cpu_ms']:.2f} ms: ratio {r['cpu_ms'] / r['reference_cpu_ms']:.1f}; "
        f"the fake's own {r['fake_cpu_ms']:.2f} ms)"
    )


async def main_async(args: argparse.Namespace) -> None:
    results = []
    for run_no in range(1, args.runs + 1):
        if args.sqlite:
            with tempfile.TemporaryDirectory() as tmp:
                result = await one_run(f"sqlite://{Path(tmp) / 'bench.sqlite3'}", args, run_no)
        else:
            import asyncpg

            admin = args.pg.replace("postgres://", "postgresql://", 1)
            name = f"cd_outbound_{uuid.uuid4().hex[:8]}"
            conn = await asyncpg.connect(admin)
            await conn.execute(f'CREATE DATABASE "{name}"')
            try:
                parts = urlsplit(args.pg)
                url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
                result = await one_run(url, args, run_no)
            finally:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.close()
        _print_run(result, args)
        results.append(result)
    if len(results) > 1:
        print(f"\nover {len(results)} runs (min / median / max):")
        for key, label in (
            ("overall_pct", "rate % of limit, whole run"),
            ("sustained_pct", "rate % of limit, sustained"),
            ("flood_429", "429 from flood control"),
            ("lost", "lost"),
            ("duplicated", "duplicated"),
            ("out_of_order", "chats out of order"),
            ("counted_ms", "start to answer, ms"),
            ("cpu_ms", "CPU ms per message"),
            ("reference_cpu_ms", "reference CPU ms per POST"),
        ):
            values = [r[key] for r in results]
            print(
                f"  {label:30} {min(values):8.2f} / {statistics.median(values):8.2f} / "
                f"{max(values):8.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--chats", type=int, default=1_000)
    parser.add_argument("--groups", type=int, default=0, help="of the chats, group chats")
    parser.add_argument("--speed", type=float, default=1.0, help="multiply Telegram's limits")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--inject-429", type=int, default=0)
    parser.add_argument("--sender", choices=("bot-api", "ptb"), default="bot-api")
    parser.add_argument("--reference-calls", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=1200.0)
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead")
    parser.add_argument(
        "--pg",
        default=os.environ.get("COMPLAINTDESK_TEST_DB", "postgres://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL server URL (a scratch database is created and dropped)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("telegram").setLevel(logging.CRITICAL)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
