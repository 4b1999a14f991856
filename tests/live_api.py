"""A live API server in a child process, for clients that speak plain blocking HTTP
(schemathesis, Open311 client libraries): its own SQLite database, a small organisation, and
API tokens for its staff, printed as one JSON line when it is listening.

    with live_api(tmp_path) as server:
        requests.get(server.url + "/api/v1/me", headers=server.auth("admin"))

Run directly: `python -m tests.live_api DB_PATH DATA_DIR`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Who gets a token, and with which scopes.
TOKENS = {
    "admin": ("read", "act", "file", "admin"),
    "clerk": ("read", "act", "file"),
    "handler": ("read", "act"),
    "reader": ("read",),
}


@dataclass(frozen=True)
class LiveServer:
    url: str
    tokens: dict[str, str]
    complaint_number: str

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@contextmanager
def live_api(tmp_path: Path) -> Iterator[LiveServer]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.live_api", str(tmp_path / "live.sqlite3"), str(tmp_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the live API server ended (exit {child.wait()})")
        ready = json.loads(line)
        yield LiveServer(ready["url"], ready["tokens"], ready["complaint"])
    finally:
        child.terminate()
        child.wait(timeout=30)


async def _serve(db_path: str, data_dir: str) -> None:
    from aiohttp import web

    from bot.app import create_app
    from config.settings import Settings
    from handlers.notify import install as install_notification_texts
    from models.api_tokens import create_token
    from models.db import init_db
    from models.entities import Staff
    from models.workflow import Role
    from tests.staff_world import CALENDAR, file_complaint, make_world

    url = f"sqlite://{db_path}"
    install_notification_texts()  # the complaint below is filed before create_app installs them
    await init_db(url)
    world = await make_world("tax-service")
    admin = await Staff.create(name="Admin Ma", role=Role.ADMIN, department=world.office)
    complaint = await file_complaint(world)
    people = {"admin": admin, "clerk": world.clerk, "handler": world.handler, "reader": admin}
    now = datetime.now(UTC)
    tokens = {}
    for who, scopes in TOKENS.items():
        tokens[who] = (await create_token(people[who], f"live {who}", scopes, now=now)).secret
    app = create_app(
        Settings(database_url=url, data_dir=Path(data_dir) / "data", profile="tax-service"),
        calendar=CALENDAR,
        manage_db=False,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    ready = {"url": f"http://{host}:{port}", "tokens": tokens, "complaint": complaint.number}
    print(json.dumps(ready), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], sys.argv[2]))
