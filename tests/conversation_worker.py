"""A worker process for tests/test_conversation.py: N messages from one person, then exit.

python tests/conversation_worker.py DATABASE_URL WORKER_NAME COUNT
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bot.conversation import Conversation
from config.profiles import load_profile
from config.settings import Settings
from handlers.messages import Incoming
from models.db import close_db, init_db
from scheduler.calendar import WorkingCalendar


async def main(url: str, name: str, count: int) -> None:
    await init_db(url, apply_migrations=False)
    try:
        settings = Settings(database_url=url, data_dir=Path("unused"))
        talk = Conversation(settings, load_profile("gov-window"), WorkingCalendar())
        for index in range(count):
            message = Incoming(
                "web", "shared-person", "command", command="help", message_id=f"{name}-{index}"
            )
            if not await talk.handle(message):
                raise SystemExit(f"{name}: message {index} got no reply")
    finally:
        await close_db()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
