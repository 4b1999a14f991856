"""Exports of the desk's case list at scale: 100 000 complaints as CSV and XLSX over HTTP.

Seeds SQLite (bench.desk_list's world), signs a supervisor in (who sees every case, unmasked)
and downloads GET /desk/cases.csv?state=all and /desk/cases.xlsx?state=all through aiohttp's
test client, reading the body in pieces as a browser does. Each is timed (median of --repeat)
and, in a separate run, its peak Python memory measured with tracemalloc (server and client
share this process, so the peak covers both).

Reference, measured in the same run: one SELECT of the same columns fetched whole into a list
and written with the csv module directly — no scope, no masking, no labels, no streaming.
Figures are printed as ratios to it. Asserts nothing.

    python -m bench.export [--complaints 100000] [--repeat 3] [--formats csv,xlsx]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from tortoise import Tortoise

from bench.desk_list import NOW, populate
from bot.app import create_app
from config.settings import Settings
from models.caselist import EXPORT_COLUMNS
from models.db import close_db, init_db
from scheduler.calendar import WorkingCalendar
from tests.desk_support import PASSWORD, csrf_in


async def reference(out: Path) -> int:
    """The same columns in one query, materialised, written by the csv module."""
    conn = Tortoise.get_connection("default")
    rows = await conn.execute_query_dict(f"SELECT {EXPORT_COLUMNS} FROM complaint c ORDER BY c.id")
    with out.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(rows[0]) if rows else [])
        writer.writerows(list(row.values()) for row in rows)
    return len(rows)


def download(client: TestClient, path: str) -> Callable[[], Awaitable[int]]:
    async def fetch() -> int:
        response = await client.get(path)
        assert response.status == 200, (path, response.status)
        size = 0
        async for piece in response.content.iter_chunked(64 * 1024):
            size += len(piece)
        return size

    return fetch


async def measure(step: Callable[[], Awaitable[int]], repeat: int) -> tuple[float, int, int]:
    """(median seconds, peak traced bytes of one more run, the step's result)."""
    times = []
    result = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await step()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    await step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak, result


async def run(url: str, count: int, repeat: int, tmp: Path, formats: tuple[str, ...]) -> None:
    await init_db(url)
    try:
        t0 = time.perf_counter()
        await populate(count, random.Random(7))
        print(f"== SQLite: {count} complaints ({time.perf_counter() - t0:.1f} s to load) ==")
        ref_seconds, ref_peak, rows = await measure(lambda: reference(tmp / "ref.csv"), repeat)
        print(
            f"{'reference: SELECT all + csv module':36s} {ref_seconds:7.2f} s "
            f"{ref_peak / 2**20:8.1f} MiB peak   {rows} rows   (1.00× / 1.00×)"
        )
        settings = Settings(database_url=url, data_dir=tmp / "data", profile="property")
        app = create_app(settings, now=lambda: NOW, calendar=WorkingCalendar(), manage_db=False)
        async with TestClient(TestServer(app)) as client:
            token = csrf_in(await (await client.get("/desk/signin")).text())
            await client.post(
                "/desk/signin", data={"csrf": token, "login": "bench", "password": PASSWORD}
            )
            for name, path in (
                ("GET /desk/cases.csv (streamed)", "/desk/cases.csv?state=all"),
                ("GET /desk/cases.xlsx (write-only)", "/desk/cases.xlsx?state=all"),
            ):
                if path.split("?")[0].rsplit(".", 1)[1] not in formats:
                    continue
                seconds, peak, size = await measure(download(client, path), repeat)
                print(
                    f"{name:36s} {seconds:7.2f} s {peak / 2**20:8.1f} MiB peak   "
                    f"{size / 2**20:.1f} MiB file   "
                    f"({seconds / ref_seconds:.2f}× time / {peak / ref_peak:.2f}× memory)"
                )
    finally:
        await close_db()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--complaints", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default="csv,xlsx", help="which downloads to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite://{Path(tmp) / 'bench.sqlite3'}"
        await run(sqlite, args.complaints, args.repeat, Path(tmp), tuple(args.formats.split(",")))


if __name__ == "__main__":
    asyncio.run(main())
