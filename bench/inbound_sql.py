"""SQL statements per dialog step: one Telegram user through the whole gov-window intake.

    python bench/inbound_sql.py [--db sqlite|postgres]

Runs the real `Conversation` (replies kept in the outbox, as the Telegram channel does) and
marks each reply sent as the channel's immediate send does, counting every statement per step:
on PostgreSQL each one asyncpg is given (including BEGIN/COMMIT and the pool's reset on release),
one round trip each; on SQLite each one SQLite itself executes (its trace callback: BEGIN and
COMMIT included), and apart from them the hand-overs to aiosqlite's thread (one per aiosqlite
call; one can carry several statements). Prints the counts per step and the totals per filing.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosqlite
import asyncpg
from _inbound_support import GOV_WINDOW_FILING, database

COUNT: Counter[str] = Counter()
SEEN: list[str] = []
HANDOVERS: list[int] = [0]  # SQLite: calls run on aiosqlite's thread


def _kind(query: str) -> str:
    word = query.lstrip().split(None, 1)[0].upper() if query.strip() else "?"
    return word


def _wrap(cls: type, name: str, *, only_without_args: bool = False) -> None:
    original = getattr(cls, name)

    async def counted(self: Any, query: Any = "", *args: Any, **kwargs: Any) -> Any:
        if not (only_without_args and args):
            COUNT[_kind(str(query))] += 1
            SEEN.append(" ".join(str(query).split())[:150])
        return await original(self, query, *args, **kwargs)

    setattr(cls, name, counted)


def instrument() -> None:
    # asyncpg: execute() without arguments is the simple-query protocol (BEGIN, COMMIT, the
    # reset); with arguments it goes through _execute, like fetch*, counted there.
    _wrap(asyncpg.Connection, "execute", only_without_args=True)
    _wrap(asyncpg.Connection, "_execute")
    _wrap(asyncpg.Connection, "_executemany")
    # aiosqlite: every public call is one `_execute` (a hand-over to its thread).
    handover = aiosqlite.Connection._execute

    async def counted_handover(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        HANDOVERS[0] += 1
        return await handover(self, fn, *args, **kwargs)

    aiosqlite.Connection._execute = counted_handover  # type: ignore[method-assign]


async def trace_sqlite() -> None:
    """Count what SQLite executes, on the one connection Tortoise keeps per process."""
    from tortoise import connections

    client: Any = connections.get("default")
    async with client.acquire_connection() as conn:

        def traced(statement: str) -> None:
            COUNT[_kind(statement)] += 1
            SEEN.append(" ".join(statement.split())[:150])

        await conn.set_trace_callback(traced)


async def main(kind: str) -> None:
    from bot.conversation import Conversation
    from config.profiles import load_profile
    from config.settings import Settings
    from handlers.messages import Incoming
    from models.db import close_db, init_db
    from scheduler.calendar import WorkingCalendar

    async with database(kind) as url:
        await init_db(url, apply_migrations=False)
        settings = Settings(database_url=url, data_dir=Path(tempfile.mkdtemp()))
        conversation = Conversation(settings, load_profile("gov-window"), WorkingCalendar())
        keep = getattr(conversation, "keep_replies_in_outbox", None)
        if keep is not None:  # absent before replies were kept in the outbox
            keep("telegram")
        instrument()
        if kind == "sqlite":
            await trace_sqlite()
        totals: list[int] = []
        handovers: list[int] = []
        for index, (step, value) in enumerate(GOV_WINDOW_FILING):
            fields: dict[str, Any] = {"channel": "telegram", "user_id": "4242"}
            if step == "command":
                fields |= {"kind": "command", "command": value}
            elif step == "choice":
                fields |= {"kind": "choice", "choice": value}
            else:
                fields |= {"kind": "text", "text": value}
            COUNT.clear()
            SEEN.clear()
            HANDOVERS[0] = 0
            replies = await conversation.handle(Incoming(message_id=f"tg:{index}", **fields))
            for claim in getattr(replies, "claimed", ()):  # what the channel does after a send
                from bot.replies import mark_sent

                await mark_sent(claim, conversation.now())
            total = sum(COUNT.values())
            totals.append(total)
            handovers.append(HANDOVERS[0])
            detail = ", ".join(f"{k} {v}" for k, v in sorted(COUNT.items()))
            trips = f", {HANDOVERS[0]:2} hand-overs" if kind == "sqlite" else ""
            print(
                f"step {index:2} {step:<7} {value[:18]:<18} {total:3} statements{trips}  ({detail})"
            )
            if VERBOSE:
                print("    " + "\n    ".join(SEEN))
        await close_db()
    ordinary = sorted(totals[1:-1])
    print(
        f"{kind}: {sum(totals)} statements per filing; /start {totals[0]}, "
        f"ordinary step median {ordinary[len(ordinary) // 2]}, confirm {totals[-1]}"
    )
    if kind == "sqlite":
        trips = sorted(handovers[1:-1])
        print(
            f"{kind}: {sum(handovers)} hand-overs to aiosqlite's thread per filing; "
            f"/start {handovers[0]}, ordinary step median {trips[len(trips) // 2]}, "
            f"confirm {handovers[-1]}"
        )


VERBOSE = False

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--verbose", action="store_true", help="print each statement")
    options = parser.parse_args()
    VERBOSE = options.verbose
    asyncio.run(main(options.db))
