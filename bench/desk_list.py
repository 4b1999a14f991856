"""The desk's case list at scale: 100 000 complaints, the list page timed over HTTP.

Seeds SQLite (and PostgreSQL unless --pg ''), signs a supervisor in (who sees every case) and
times GET /desk/cases through aiohttp's test client — the whole page: session, filters, the
count, the keyset page, the unreachable marks and the template — for the default list, a deep
page (reached by following the cursor), full-text searches (3+ characters: FTS5 trigram /
pg_trgm; 2 characters: LIKE) and filters. Prints the median of --repeat runs; asserts nothing.

    python -m bench.desk_list [--complaints 100000] [--repeat 5] [--pg postgres://...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from aiohttp.test_utils import TestClient, TestServer
from tortoise import Tortoise

from bot.app import create_app
from config.settings import Settings
from models.db import close_db, init_db
from models.entities import Channel, Complaint, Department, Staff
from models.workflow import Role, State
from scheduler.calendar import WorkingCalendar
from tests.desk_support import PASSWORD, csrf_in, give_password

NOW = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Shanghai
BATCH = 5000
OPEN_SHARE = 0.3
PLACES = ("{b}栋{u}单元", "{b}号楼{u}层", "地下车库{b}区", "东门岗亭", "{b}栋大堂")
FACTS = (
    "楼道漏水严重，多次报修无人处理。",
    "物业人员态度恶劣，拒绝登记报修。",
    "电梯经常停运，老人上下楼困难。",
    "夜间施工噪音扰民，影响休息。",
    "垃圾清运不及时，气味很大。",
    "停车位被长期占用，保安不管。",
    "The heating in my flat has not worked for a week.",
)
CATEGORIES = ("building", "equipment", "security", "environment", "general_services", "developer")
STATES_OPEN = (State.SUBMITTED, State.ACCEPTED, State.ASSIGNED, State.IN_PROGRESS)


async def populate(count: int, rng: random.Random) -> None:
    root = await Department.create(code="centre", name="客服中心")
    departments = [
        await Department.create(code=f"d{i}", name=f"{i}号片区", parent=root) for i in range(8)
    ]
    handlers = [
        await Staff.create(name=f"承办人{i}", role=Role.HANDLER, department=departments[i % 8])
        for i in range(24)
    ]
    supervisor = await Staff.create(name="督办", role=Role.SUPERVISOR, department=root)
    await give_password(supervisor, "bench", now=NOW)
    rows: list[Complaint] = []
    for i in range(count):
        submitted = NOW - timedelta(minutes=rng.randint(0, 365 * 24 * 60))
        is_open = rng.random() < OPEN_SHARE
        department = rng.choice(departments)
        handler = rng.choice(handlers)
        due = NOW + timedelta(minutes=rng.randint(-5 * 1440, 20 * 1440)) if is_open else None
        rows.append(
            Complaint(
                number=f"{submitted:%Y%m}-{i:06d}",
                profile="property",
                category=rng.choice(CATEGORIES),
                channel=rng.choice(list(Channel)),
                state=rng.choice(STATES_OPEN) if is_open else State.CLOSED,
                next_due_at=due,
                next_due_stage="resolution" if due else None,
                deadline_provisional=bool(due and due.year >= 2027),
                deadlines={},
                alarm_state={},
                lead_department_id=department.id,
                handler_id=handler.id if rng.random() < 0.8 else None,
                submitted_at=submitted,
                target_text=rng.choice(("物业", "保安", "保洁", "工程部")),
                place_text=rng.choice(PLACES).format(b=rng.randint(1, 30), u=rng.randint(1, 6)),
                facts=rng.choice(FACTS) + f" #{i}",
            )
        )
        if len(rows) == BATCH:
            await Complaint.bulk_create(rows)
            rows = []
    if rows:
        await Complaint.bulk_create(rows)


QUERIES = (
    ("open cases, page 1", "/desk/cases"),
    ("all states, page 1", "/desk/cases?state=all"),
    ("search 3栋2单元 (trigram)", "/desk/cases?state=all&q=3栋2单元"),
    ("search 漏水 (2 chars, LIKE)", "/desk/cases?state=all&q=漏水"),
    ("search number", "/desk/cases?state=all&q=-004242"),
    ("overdue", "/desk/cases?due=overdue"),
    ("due within 1 working day", "/desk/cases?due=next_working_day"),
    ("category + department", "/desk/cases?state=all&category=building&department=3"),
    ("date range, one week", "/desk/cases?state=all&from=2026-06-01&to=2026-06-07"),
    ("unreachable complainant", "/desk/cases?unreachable=1"),
)
NEXT = re.compile(r'href="(/desk/cases\?[^"]*after=[^"]+)" rel="next"')


async def timed(client: TestClient, path: str, repeat: int) -> tuple[float, str]:
    times, body = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = await client.get(path)
        body = await response.text()
        times.append(time.perf_counter() - t0)
        assert response.status == 200, (path, response.status)
    return statistics.median(times), body


async def run(url: str, label: str, count: int, repeat: int, tmp: Path) -> None:
    await init_db(url)
    try:
        t0 = time.perf_counter()
        await populate(count, random.Random(7))
        loaded = time.perf_counter() - t0
        # Planner statistics, as a live database has them (PostgreSQL's autovacuum analyses on
        # its own; the daily retention job runs ANALYZE on SQLite).
        await Tortoise.get_connection("default").execute_script("ANALYZE")
        settings = Settings(database_url=url, data_dir=tmp / "data", profile="property")
        app = create_app(settings, now=lambda: NOW, calendar=WorkingCalendar(), manage_db=False)
        async with TestClient(TestServer(app)) as client:
            token = csrf_in(await (await client.get("/desk/signin")).text())
            await client.post(
                "/desk/signin", data={"csrf": token, "login": "bench", "password": PASSWORD}
            )
            print(f"\n== {label}: {count} complaints ({loaded:.1f} s to load) ==")
            for name, path in QUERIES:
                seconds, body = await timed(client, path, repeat)
                found = re.search(r'class="hint">([^<]*)</span></h1>', body)
                print(f"{name:32s} {seconds * 1000:8.1f} ms   {found.group(1) if found else ''}")
            # A deep page: follow the "next page" link 40 times (2000 rows in).
            path = "/desk/cases"
            for _ in range(40):
                _seconds, body = await timed(client, path, 1)
                link = NEXT.search(body)
                if not link:
                    break
                path = link.group(1).replace("&amp;", "&")
            seconds, _body = await timed(client, path, repeat)
            print(f"{'open cases, page 41 (keyset)':32s} {seconds * 1000:8.1f} ms")
    finally:
        await close_db()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--complaints", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--pg",
        default=os.environ.get("COMPLAINTDESK_TEST_DB", "postgres://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL server URL (a scratch database is created and dropped); '' to skip",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite://{Path(tmp) / 'bench.sqlite3'}"
        await run(sqlite, "SQLite", args.complaints, args.repeat, Path(tmp))
        if args.pg:
            import asyncpg

            admin = args.pg.replace("postgres://", "postgresql://", 1)
            name = f"cd_bench_{uuid.uuid4().hex[:8]}"
            conn = await asyncpg.connect(admin)
            await conn.execute(f'CREATE DATABASE "{name}"')
            try:
                parts = urlsplit(args.pg)
                url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
                await run(url, "PostgreSQL", args.complaints, args.repeat, Path(tmp))
            finally:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
