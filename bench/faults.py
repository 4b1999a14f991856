"""Fault drill: random kill -9 of the server under load, restart, then count what was lost.

    python bench/faults.py [--users 50] [--kills 4] [--db sqlite --db postgres] [--seed 1]

The real server (`complaintdesk run`, webhook mode) against a fresh database and a fake Bot API,
both in subprocesses; simulated Telegram users file complaints through POST /telegram/webhook.
Every few seconds (random) the server is killed with SIGKILL and started again on the same
port. Users behave as Telegram does: an update that got no 200 (500, connection refused or cut)
is delivered again, same update_id, until it is taken. After the load the drill waits for the
outbox to drain and checks:

- every complaint whose number a person was told exists, once; numbers have no gaps;
- every dialog is resumable (its stored state loads, and each person finished the filing);
- every reply committed was delivered (no reply row left unsent) and none twice: sendMessage
  calls per chat against the reply rows for that chat (a duplicate is a resend after a kill
  inside the one-HTTP-call window, see bench/window.py).

Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _inbound_support import (
    GOV_WINDOW_FILING,
    SECRET,
    database,
    helper,
    product,
    running,
    update_for,
)

from models.numbering import NUMBER_IN_TEXT as NUMBER


async def users_under_fire(
    url: str, users: int, kills: int, server: Any, rng: random.Random
) -> dict[str, int]:
    import aiohttp

    counts: Counter[str] = Counter()
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    done = asyncio.Event()

    async def person(session: aiohttp.ClientSession, uid: int) -> None:
        for kind, value in GOV_WINDOW_FILING:
            body = json.dumps(update_for(uid, kind, value))
            while True:  # Telegram redelivers until it gets a 200
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError, OSError):
                    status = 0
                counts[f"http {status}"] += 1
                if status == 200:
                    break
                counts["redeliveries"] += 1
                await asyncio.sleep(0.3)

    async def killer() -> None:
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(2.0, 6.0))
            if done.is_set():
                return
            server.kill()
            counts["kills"] += 1
            server.start()
            await server.ready()

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        chaos = asyncio.create_task(killer())
        started = time.perf_counter()
        await asyncio.gather(*(person(session, 700_000 + i) for i in range(users)))
        counts["seconds"] = int(time.perf_counter() - started)
        done.set()
        await chaos
    return dict(counts)


async def check(db_url: str, api_port: int, users: int) -> dict[str, Any]:
    import aiohttp

    from handlers.dialog import DialogState
    from models.db import close_db, init_db
    from models.entities import Complaint, DialogSession, OutboxMessage, OutboxStatus

    await init_db(db_url, apply_migrations=False)
    try:
        # The outbox drains: rows a kill left `sending` go out once their claim expires.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            unsent = await OutboxMessage.filter(
                status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING]
            ).count()
            if not unsent:
                break
            await asyncio.sleep(1)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{api_port}/stats") as response,
        ):
            told: dict[str, list[str]] = (await response.json())["told"]
        numbers_told = {
            m.group(0) for texts in told.values() for t in texts for m in NUMBER.finditer(t)
        }
        complaints = await Complaint.all().values_list("number", flat=True)
        stored = Counter(complaints)
        sequence = sorted(int(n.split("-")[1]) for n in stored)
        gaps = sorted(set(range(1, len(sequence) + 1)) - set(sequence))
        sessions = await DialogSession.all()
        unreadable = 0
        for row in sessions:
            try:
                DialogState.from_json(row.state) if row.state else None
            except Exception:
                unreadable += 1
        replies = await OutboxMessage.filter(idempotency_key__startswith="reply:")
        rows_per_chat = Counter(row.chat_id for row in replies)
        unsent_rows = sum(row.status != OutboxStatus.SENT for row in replies)
        duplicates = 0
        missing = 0
        worst = 0
        for chat, expected in rows_per_chat.items():
            got = len(told.get(chat, []))
            duplicates += max(0, got - expected)
            worst = max(worst, got - expected)
            missing += max(0, expected - got)
        finished = sum(
            1
            for chat in {str(700_000 + i) for i in range(users)}
            if NUMBER.search(" ".join(told.get(chat, [])))
        )
    finally:
        await close_db()
    return {
        "numbers told": len(numbers_told),
        "told but not stored": len(numbers_told - set(stored)),
        "stored twice": sum(1 for c in stored.values() if c > 1),
        "complaints stored": len(stored),
        "stored but never told": len(set(stored) - numbers_told),
        "number gaps": len(gaps),
        "dialogs": len(sessions),
        "dialogs unreadable": unreadable,
        "people who finished": f"{finished}/{users}",
        "reply rows": len(replies),
        "reply rows unsent": unsent_rows,
        "replies missing at the API": missing,
        "replies sent twice": duplicates,
        "most resends in one chat": worst,
    }


async def drill(kind: str, args: argparse.Namespace, rng: random.Random) -> None:
    api = helper("fake-api")
    api.start()
    with running(api):
        await api.ready()
        async with database(kind) as url:
            data = Path(tempfile.mkdtemp(prefix="cd_faults_"))
            server = product(url, api.port, data)
            with running(server):
                server.start()
                await server.ready()
                load = await users_under_fire(
                    f"http://127.0.0.1:{server.port}/telegram/webhook",
                    args.users,
                    args.kills,
                    server,
                    rng,
                )
                figures = await check(url, api.port, args.users)
    print(f"-- {kind}: {args.users} users, {load.get('kills', 0)} kills -9")
    for key, value in {**load, **figures}.items():
        print(f"   {key:<28} {value}")


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    for kind in args.db or ["sqlite", "postgres"]:
        await drill(kind, args, rng)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
