"""CPU of filing a complaint: the confirm step of the gov-window intake, in-process.

    python bench/filing.py [--db sqlite|postgres] [--users 60] [--own-phones] [--profile]

Runs the real `Conversation` (replies kept in the outbox, as the Telegram channel does) for
`--users` Telegram users, each through the whole intake, on a fresh database. Every user gives
the script's phone (unlike bench/inbound.py, where each gives their own), so each filing is
compared with up to 200 earlier ones of "its" person: the repeat check at its most costly
(`--own-phones`: each gives their own, as in bench/inbound.py, so the check finds no one).
Prints the process CPU (all threads: the access code's argon2 hash runs in one) of the confirm
step per filing, and as a multiple of an ordinary step's measured in the same run; the first
fifth of the users warm up. `--profile`: pyinstrument over the measured confirm steps (main
thread only). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _inbound_support import GOV_WINDOW_FILING, SCRIPT_PHONE, database, own_phone


def _fields(user: int, step: str, value: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"channel": "telegram", "user_id": str(5000 + user)}
    if step == "command":
        return fields | {"kind": "command", "command": value}
    if step == "choice":
        return fields | {"kind": "choice", "choice": value}
    return fields | {"kind": "text", "text": value}


async def main(kind: str, users: int, profile: bool, own_phones: bool) -> None:
    from bot.conversation import Conversation
    from bot.replies import mark_sent
    from config.profiles import load_profile
    from config.settings import Settings
    from handlers.messages import Incoming
    from models.db import close_db, init_db
    from scheduler.calendar import WorkingCalendar

    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
    warm = users // 5
    confirm: list[float] = []
    ordinary: list[float] = []
    async with database(kind) as url:
        await init_db(url, apply_migrations=False)
        settings = Settings(database_url=url, data_dir=Path(tempfile.mkdtemp()))
        conversation = Conversation(settings, load_profile("gov-window"), WorkingCalendar())
        keep = getattr(conversation, "keep_replies_in_outbox", None)
        if keep is not None:  # as bench/inbound_sql.py: absent before replies were kept
            keep("telegram")
        last = len(GOV_WINDOW_FILING) - 1
        for user in range(users):
            for index, (step, value) in enumerate(GOV_WINDOW_FILING):
                if own_phones and value == SCRIPT_PHONE:
                    value = own_phone(5000 + user)
                incoming = Incoming(message_id=f"tg:{user}:{index}", **_fields(user, step, value))
                measured = user >= warm and index == last
                if measured and profiler is not None:
                    profiler.start()
                cpu = time.process_time()
                replies = await conversation.handle(incoming)
                cpu = time.process_time() - cpu
                if measured and profiler is not None:
                    profiler.stop()
                for claim in getattr(replies, "claimed", ()):  # the channel, after a send
                    await mark_sent(claim, conversation.now())
                if user >= warm:
                    (confirm if index == last else ordinary).append(cpu)
        await close_db()
    per_filing = sum(confirm) / len(confirm) * 1000
    per_step = sum(ordinary) / len(ordinary) * 1000
    print(
        f"{kind}: confirm step {per_filing:.2f} ms CPU per filing ({len(confirm)} filings), "
        f"ordinary step {per_step:.2f} ms; confirm = {per_filing / per_step:.1f} x an ordinary step"
    )
    if profiler is not None:
        print(profiler.output_text(unicode=False, color=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--own-phones", action="store_true", help="a phone of each user's own")
    parser.add_argument("--profile", action="store_true", help="pyinstrument the confirm steps")
    options = parser.parse_args()
    asyncio.run(main(options.db, options.users, options.profile, options.own_phones))
