"""Shared by bench/inbound.py, bench/faults.py and bench/window.py: servers in subprocesses, a
fake Bot API in a subprocess, random PostgreSQL databases, and simulated Telegram users.

Every server runs in its own process (the product through `complaintdesk run`, the ceilings and
the fake Bot API through this module's `--serve` entry point), so the load generator's own CPU
is not counted against any of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.intake_script import GOV_WINDOW_FILING  # noqa: E402

PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres")
TOKEN = "123456:BENCH-token-for-the-fake-bot-api"
SECRET = "bench-webhook-secret"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "ComplaintDesk", "username": "cd_bot"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------- databases


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_SERVER)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    """A fresh, migrated database URL (random PostgreSQL database or SQLite file), dropped after."""
    from handlers.notify import install as install_notification_texts

    install_notification_texts()  # filings queue the intake desk's notifications
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="cd_bench_"))
        url = f"sqlite://{folder / 'bench.sqlite3'}"
        _migrate(url)
        try:
            yield url
        finally:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        return
    name = f"cd_bench_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = _with_database(PG_SERVER, name)
    try:
        _migrate(url)
        yield url
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str) -> None:
    env = {**os.environ, "COMPLAINTDESK_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


# ---------------------------------------------------------------- processes


@dataclass
class Server:
    """A server process listening on `port`; `kill()` is kill -9."""

    argv: list[str]
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=lambda: Path(tempfile.mktemp(prefix="cd_srv_")))

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    async def ready(self, path: str = "/healthz", within: float = 60.0) -> None:
        import aiohttp

        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"{self.argv} exited: {self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(f"http://127.0.0.1:{self.port}{path}") as response:
                        if response.status < 500:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.argv} not ready: {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """User + system CPU of the process so far (Linux /proc)."""
        if self.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(OSError):
            self.log_path.unlink()


def postgres_cpu_seconds() -> float:
    """User + system CPU of every PostgreSQL process on this machine so far (Linux /proc): its
    backends serve the product and the INSERT ceiling alike. Processes that ended meanwhile are
    missed, so a delta over a run is a lower bound."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].partition(")")
        if name.startswith("postgres"):
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def product(db_url: str, api_port: int, data_dir: Path, port: int | None = None) -> Server:
    port = port or free_port()
    env = {
        **os.environ,
        "COMPLAINTDESK_DATABASE_URL": db_url,
        "COMPLAINTDESK_TELEGRAM_TOKEN": TOKEN,
        "COMPLAINTDESK_TELEGRAM_API_BASE": f"http://127.0.0.1:{api_port}",
        "COMPLAINTDESK_TELEGRAM_WEBHOOK_SECRET": SECRET,
        "COMPLAINTDESK_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "COMPLAINTDESK_DATA_DIR": str(data_dir),
        "COMPLAINTDESK_PORT": str(port),
        "COMPLAINTDESK_HOST": "127.0.0.1",
        "COMPLAINTDESK_LOG_LEVEL": "WARNING",
    }
    return Server([sys.executable, "-m", "bot.cli", "run"], port, env)


def helper(role: str, port: int | None = None, *extra: str) -> Server:
    """A process of this module's `--serve` entry point: "fake-api", "bare" or "insert"."""
    port = port or free_port()
    argv = [sys.executable, str(Path(__file__)), "--serve", role, "--port", str(port), *extra]
    return Server(argv, port, dict(os.environ))


# ---------------------------------------------------------------- simulated Telegram users

_update_ids = itertools.count(1_000_001)
_message_ids = itertools.count(1)


def _user(uid: int) -> dict[str, Any]:
    return {"id": uid, "is_bot": False, "first_name": f"U{uid}", "language_code": "zh-hans"}


# The intake script's phone number. Each simulated person gives a phone of their own instead:
# one number shared by every "person" would make each filing a repeat of all the earlier ones
# (up to 200 candidates compared at every submission), which no real crowd of people is.
SCRIPT_PHONE = "138 1234 5678"


def own_phone(uid: int) -> str:
    """A mobile number of the person's own (139 and eight digits of their id)."""
    return f"139{uid % 100_000_000:08d}"


def update_for(uid: int, kind: str, value: str) -> dict[str, Any]:
    """The Telegram update for one step of the intake script (GOV_WINDOW_FILING)."""
    chat = {"id": uid, "type": "private", "first_name": f"U{uid}"}
    if kind == "choice":
        return {
            "update_id": next(_update_ids),
            "callback_query": {
                "id": f"cq{uuid.uuid4().hex[:12]}",
                "from": _user(uid),
                "chat_instance": str(uid),
                "data": value,
                "message": {
                    "message_id": next(_message_ids),
                    "from": BOT_USER,
                    "chat": chat,
                    "date": int(time.time()),
                    "text": "the question",
                },
            },
        }
    text = f"/{value}" if kind == "command" else value
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "from": _user(uid),
        "chat": chat,
        "date": int(time.time()),
        "text": text,
    }
    if kind == "command":
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"update_id": next(_update_ids), "message": message}


@dataclass
class LoadResult:
    updates: int
    seconds: float
    latencies: list[float]
    errors: int
    cpu_seconds: float = 0.0  # the server's (all workers')
    # The rest of the machine's CPU over the run: the load generator (this process), the fake
    # Bot API, PostgreSQL's processes.
    client_cpu_seconds: float = 0.0
    api_cpu_seconds: float = 0.0
    db_cpu_seconds: float = 0.0
    # Latencies by the step's index in the script: where the tail comes from.
    by_step: dict[int, list[float]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return percentile(self.latencies, q)

    def step_pct(self, step: int, q: float) -> float:
        return percentile(self.by_step.get(step, []), q)

    def pct_without(self, steps: set[int], q: float) -> float:
        """The percentile over every step but `steps`."""
        rest = [x for i, xs in self.by_step.items() if i not in steps for x in xs]
        return percentile(rest, q)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of `values` (seconds), in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run_users(
    urls: list[str],
    users: int,
    *,
    steps: list[tuple[str, str]] = GOV_WINDOW_FILING,
    first_uid: int = 500_000,
    request_seconds: float = 120.0,
) -> LoadResult:
    """`users` people, each doing `steps` one after the other (the next when the webhook has
    answered, as a person who waits for the reply); users spread over `urls` round-robin."""
    import aiohttp

    latencies: list[float] = []
    by_step: dict[int, list[float]] = {}
    errors = 0
    connector = aiohttp.TCPConnector(limit=users + 10)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=request_seconds)
    ) as session:

        async def person(index: int) -> None:
            nonlocal errors
            url = urls[index % len(urls)]
            uid = first_uid + index
            for step, (kind, value) in enumerate(steps):
                if kind == "text" and value == SCRIPT_PHONE:
                    value = own_phone(uid)
                body = json.dumps(update_for(uid, kind, value))
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        ok = response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                took = time.perf_counter() - started
                latencies.append(took)
                by_step.setdefault(step, []).append(took)
                if not ok:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(person(i) for i in range(users)))
        seconds = time.perf_counter() - started
    return LoadResult(len(latencies), seconds, latencies, errors, by_step=by_step)


def summary(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{low:.{digits}f}/{mid:.{digits}f}/{high:.{digits}f}"


# ---------------------------------------------------------------- the --serve entry point


def _serve_fake_api(port: int) -> None:
    from aiohttp import web

    from tests.fakes import FakeTelegram

    async def main() -> None:
        tg = FakeTelegram(TOKEN)
        app = tg.build_app()

        async def stats(request: web.Request) -> web.Response:
            told: dict[str, list[str]] = {}
            # The same with each call's time (the event loop's clock is time.monotonic, one
            # clock for every process on the host): bench/faults.py orders them per chat.
            told_at: dict[str, list[tuple[float, str]]] = {}
            for call in tg.calls:
                if call.method == "sendMessage" and call.ok:
                    told.setdefault(str(call.chat_id), []).append(call.params.get("text", ""))
                    told_at.setdefault(str(call.chat_id), []).append(
                        (call.at, call.params.get("text", ""))
                    )
            calls: dict[str, int] = {}
            for call in tg.calls:
                calls[call.method] = calls.get(call.method, 0) + 1
            return web.json_response({"told": told, "told_at": told_at, "calls": calls})

        async def reset(request: web.Request) -> web.Response:
            tg.calls.clear()
            return web.json_response({"ok": True})

        async def fail(request: web.Request) -> web.Response:
            """Answer every Bot API call with 502 while `down` is true (the API is down)."""
            down = (await request.json()).get("down", False)
            tg._failures.clear()
            if down:
                tg.fail_next("*", 502, count=10**9)
            return web.json_response({"ok": True})

        app.router.add_get("/stats", stats)
        app.router.add_post("/reset", reset)
        app.router.add_post("/down", fail)
        app.router.add_get("/healthz", lambda request: web.Response(text="ok"))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


def _serve_ceiling(port: int, role: str, db_url: str | None) -> None:
    from aiohttp import web

    async def main() -> None:
        pool = None
        if role == "insert":
            import asyncpg

            assert db_url is not None
            dsn = db_url.replace("postgres://", "postgresql://", 1)
            pool = await asyncpg.create_pool(dsn, min_size=4, max_size=20)
            async with pool.acquire() as conn:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS bench_ceiling "
                    "(id bigserial primary key, update_id bigint, body jsonb)"
                )

        async def webhook(request: web.Request) -> web.Response:
            data = await request.json()
            if pool is not None:
                async with pool.acquire() as conn:
                    await conn.execute(
                        "INSERT INTO bench_ceiling (update_id, body) VALUES ($1, $2)",
                        data["update_id"],
                        json.dumps(data),
                    )
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/telegram/webhook", webhook)
        app.router.add_get("/healthz", lambda request: web.Response(text="ok"))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", choices=["fake-api", "bare", "insert"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db")
    options = parser.parse_args()
    if options.serve == "fake-api":
        _serve_fake_api(options.port)
    else:
        _serve_ceiling(options.port, options.serve, options.db)
