"""Cold start figures: `complaintdesk --help`, and `complaintdesk run` until /healthz answers.

    python bench/cold_start.py [--runs 3] [--root PATH] [--postgres URL]

`--root` points at another checkout (e.g. the main branch) to compare; its code runs with this
interpreter. `run` is started on a fresh SQLite file (the first start migrates it) and again on
the migrated file; with `--postgres postgres://user@host:5432/any` (a server URL) the same on a
new PostgreSQL database made for each run and dropped after it. Prints the min, median and max
of each with the load average beside them; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

LIMIT_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def env_for(root: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env.update(PYTHONPATH=str(root), **settings)
    return env


def time_help(root: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "--help"],
        env=env_for(root),
        cwd=root,  # `-m` looks in the working directory first
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=LIMIT_SECONDS,
    )
    return time.perf_counter() - started


def time_run(root: Path, database_url: str, folder: Path) -> float:
    port = free_port()
    env = env_for(
        root,
        COMPLAINTDESK_DATABASE_URL=database_url,
        COMPLAINTDESK_PORT=str(port),
        COMPLAINTDESK_DATA_DIR=str(folder / "data"),
    )
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < LIMIT_SECONDS:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("no answer from /healthz")
    finally:
        process.terminate()
        process.wait(timeout=LIMIT_SECONDS)


def _admin(server_url: str, sql: str) -> None:
    import asyncio

    import asyncpg

    async def execute() -> None:
        conn = await asyncpg.connect(server_url.replace("postgres://", "postgresql://", 1))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute())


@contextmanager
def new_postgres_database(server_url: str) -> Iterator[str]:
    name = f"bench_cold_{uuid.uuid4().hex[:12]}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    finally:
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def show(name: str, values: list[float], loads: list[float]) -> None:
    # The machine is shared: the 1-minute load average beside each figure says how busy it was.
    print(
        f"{name:<34} min {min(values):5.2f}  median {statistics.median(values):5.2f}  "
        f"max {max(values):5.2f} s  n={len(values)}  "
        f"load {min(loads):.1f}–{max(loads):.1f}"
    )


def measured(timings: list[float], loads: list[float], seconds: float) -> None:
    timings.append(seconds)
    loads.append(os.getloadavg()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--postgres", help="a PostgreSQL server URL to make databases on")
    args = parser.parse_args()
    root = args.root.resolve()
    print(f"code: {root}; python {sys.version.split()[0]}; cores {os.cpu_count()}")
    kinds = ["sqlite"] + (["postgres"] if args.postgres else [])
    results: dict[str, tuple[list[float], list[float]]] = {}

    def record(name: str, seconds: float) -> None:
        measured(*results.setdefault(name, ([], [])), seconds)

    for _ in range(args.runs):
        record("complaintdesk --help", time_help(root))
    for kind in kinds:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                if kind == "sqlite":
                    url = f"sqlite://{folder / 'bench.sqlite3'}"
                    record("run → /healthz (new SQLite)", time_run(root, url, folder))
                    record("run → /healthz (migrated SQLite)", time_run(root, url, folder))
                else:
                    with new_postgres_database(args.postgres) as url:
                        record("run → /healthz (new PostgreSQL)", time_run(root, url, folder))
                        record("run → /healthz (migrated PostgreSQL)", time_run(root, url, folder))
    for name, (timings, loads) in results.items():
        show(name, timings, loads)


if __name__ == "__main__":
    main()
