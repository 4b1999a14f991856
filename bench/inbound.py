"""Inbound throughput: simulated Telegram users filing complaints through POST /telegram/webhook.

    python bench/inbound.py            # 50 and 200 users; SQLite, PostgreSQL, 1 and 2 workers
    python bench/inbound.py --quick    # 20 users, one round: a smoke run in well under a minute
    python bench/inbound.py --users 50 --db postgres --workers 1 --runs 3

Each round starts, in subprocesses: a fake Bot API (tests/fakes/telegram_server.py), the real
server (`complaintdesk run`, webhook mode) against a fresh database (SQLite file, or a random
PostgreSQL database dropped afterwards), and — as ceilings measured in the same run with the same
load generator — a bare aiohttp endpoint and an aiohttp endpoint doing one asyncpg INSERT per
request. Every user does the whole gov-window intake (tests/intake_script.py), each step waiting
for the previous answer. Prints updates/s, p50/p95 per update, server CPU per update, and the
ratios to the INSERT ceiling. It asserts nothing. PostgreSQL: BENCH_PG (default
postgres://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _inbound_support import (
    LoadResult,
    database,
    helper,
    postgres_cpu_seconds,
    product,
    run_users,
    running,
    summary,
)


@dataclass
class Row:
    target: str
    users: int
    result: LoadResult

    def line(self, ceiling: LoadResult | None) -> str:
        r = self.result
        cpu = r.cpu_seconds / r.updates * 1000 if r.updates else 0.0
        ratio = ""
        if ceiling is not None and ceiling.rate:
            ratio = (
                f"  {r.rate / ceiling.rate:6.1%} of INSERT"
                f"  p95 {r.pct(0.95) / ceiling.pct(0.95):5.1f}x"
            )
        per = 1000 / r.updates if r.updates else 0.0
        client, api, db = (
            x * per for x in (r.client_cpu_seconds, r.api_cpu_seconds, r.db_cpu_seconds)
        )
        rest = f"  [load gen {client:4.2f}  fake API {api:4.2f}  PostgreSQL {db:4.2f} ms/upd]"
        return (
            f"{self.target:<22} {self.users:>4} users {r.rate:8.1f} upd/s"
            f"  p50 {r.pct(0.5):7.1f} ms  p95 {r.pct(0.95):7.1f} ms"
            f"  cpu {cpu:5.2f} ms/upd  errors {r.errors}{ratio}{rest}"
        )

    def steps_line(self) -> str:
        """Where the tail comes from: the first message and the last step (the confirm, which
        files the complaint) apart from the others, p50/p95 in ms."""
        r = self.result
        if len(r.by_step) < 3:
            return ""
        last = max(r.by_step)
        return (
            f"{'':<22} by step: /start {r.step_pct(0, 0.5):.0f}/{r.step_pct(0, 0.95):.0f}"
            f"  last (confirm) {r.step_pct(last, 0.5):.0f}/{r.step_pct(last, 0.95):.0f}"
            f"  the others {r.pct_without({0, last}, 0.5):.0f}/{r.pct_without({0, last}, 0.95):.0f}"
        )


async def ceiling(role: str, users: int, pg_url: str | None, steps: int) -> LoadResult:
    extra = ("--db", pg_url) if pg_url else ()
    server = helper(role, None, *extra)
    server.start()
    with running(server):
        await server.ready()
        url = f"http://127.0.0.1:{server.port}/telegram/webhook"
        cpu0, client0, db0 = server.cpu_seconds(), time.process_time(), postgres_cpu_seconds()
        result = await run_users([url], users, steps=_steps(steps))
        result.cpu_seconds = server.cpu_seconds() - cpu0
        result.client_cpu_seconds = time.process_time() - client0
        result.db_cpu_seconds = postgres_cpu_seconds() - db0
    return result


def _steps(limit: int) -> list[tuple[str, str]]:
    from _inbound_support import GOV_WINDOW_FILING

    return GOV_WINDOW_FILING[:limit] if limit else GOV_WINDOW_FILING


async def product_round(kind: str, users: int, workers: int, steps: int) -> LoadResult:
    api = helper("fake-api")
    api.start()
    with running(api):
        await api.ready()
        async with database(kind) as url:
            data = Path(tempfile.mkdtemp(prefix="cd_bench_data_"))
            servers = [product(url, api.port, data) for _ in range(workers)]
            with running(*servers):
                for server in servers:  # one after the other: each sets the webhook on start
                    server.start()
                    await server.ready()
                urls = [f"http://127.0.0.1:{s.port}/telegram/webhook" for s in servers]
                cpu0 = sum(s.cpu_seconds() for s in servers)
                client0, api0, db0 = time.process_time(), api.cpu_seconds(), postgres_cpu_seconds()
                result = await run_users(urls, users, steps=_steps(steps))
                result.cpu_seconds = sum(s.cpu_seconds() for s in servers) - cpu0
                result.client_cpu_seconds = time.process_time() - client0
                result.api_cpu_seconds = api.cpu_seconds() - api0
                result.db_cpu_seconds = postgres_cpu_seconds() - db0
            import shutil

            shutil.rmtree(data, ignore_errors=True)
    return result


async def main(args: argparse.Namespace) -> None:
    users_list = args.users or ([20] if args.quick else [50, 200])
    kinds = args.db or ["sqlite", "postgres"]
    runs = 1 if args.quick else args.runs
    print(f"inbound bench: users {users_list}, databases {kinds}, runs {runs}", flush=True)
    usable, online = len(os.sched_getaffinity(0)), os.cpu_count() or 0
    print(f"vCPUs: {usable} usable of {online}", flush=True)
    if usable < online:
        # Every process of the bench inherits this: its figures would be those of fewer vCPUs
        # (7 December: a shell left pinned by `taskset` halved the ceiling unnoticed).
        print(f"WARNING: this process may run on {usable} of {online} vCPUs (taskset?)", flush=True)
    rates: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    p95s: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    machine: dict[str, list[float]] = {}  # every process's CPU per update (see Row.line)
    scaling: dict[str, list[float]] = {}
    for run in range(runs):
        async with database("postgres") as ceiling_db:
            for users in users_list:
                bare = await ceiling("bare", users, None, args.steps)
                insert = await ceiling("insert", users, ceiling_db, args.steps)
                rows = [Row("bare aiohttp", users, bare), Row("aiohttp + INSERT", users, insert)]
                for kind in kinds:
                    for workers in args.workers or ([1, 2] if kind == "postgres" else [1]):
                        if args.quick and workers > 1:
                            continue
                        result = await product_round(kind, users, workers, args.steps)
                        rows.append(Row(f"product {kind} x{workers}", users, result))
                print(f"-- run {run + 1}, {users} users", flush=True)
                for row in rows:
                    print(row.line(insert), flush=True)
                    if row.target.startswith("product") and row.steps_line():
                        print(row.steps_line(), flush=True)
                    key = f"{row.target} @{users}"
                    rates.setdefault(key, []).append(row.result.rate)
                    if insert.rate:
                        ratios.setdefault(key, []).append(100 * row.result.rate / insert.rate)
                        p95s.setdefault(key, []).append(row.result.pct(0.95) / insert.pct(0.95))
                for row in rows:
                    r = row.result
                    per = 1000 / r.updates if r.updates else 0.0
                    cpus.setdefault(f"{row.target} @{users}", []).append(r.cpu_seconds * per)
                    everything = r.cpu_seconds + r.client_cpu_seconds
                    everything += r.api_cpu_seconds + r.db_cpu_seconds
                    machine.setdefault(f"{row.target} @{users}", []).append(everything * per)
                one = next((r for r in rows if r.target == "product postgres x1"), None)
                two = next((r for r in rows if r.target == "product postgres x2"), None)
                if one and two and one.result.rate:
                    scale = two.result.rate / one.result.rate
                    scaling.setdefault(f"@{users}", []).append(scale)
                    print(f"two workers / one (PG): {scale:.2f}x")
    print(f"\nsummary over {runs} run(s) (min/median/max):")
    for key in rates:
        print(
            f"{key:<30} upd/s {summary(rates[key]):<20} "
            f"% of INSERT {summary(ratios.get(key, [])):<18} "
            f"p95 vs INSERT {summary(p95s.get(key, [])):<16} "
            f"cpu ms/upd {summary(cpus.get(key, []), 2):<16} "
            f"machine cpu ms/upd {summary(machine.get(key, []), 2)}"
        )
    for key, values in scaling.items():
        print(f"two workers / one (PG) {key:<8} {summary(values, 2)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 users, one run, one worker")
    parser.add_argument("--users", type=int, action="append", help="simulated users (repeat)")
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--workers", type=int, action="append", help="PostgreSQL workers")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=0, help="only the first N steps")
    asyncio.run(main(parser.parse_args()))
