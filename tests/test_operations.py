"""Running it as a service: /metrics after a filing, /healthz, /readyz and its failures, logs."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer
from tortoise import Tortoise

from bot.app import create_app
from bot.health import HEARTBEAT, Heartbeat, heartbeat_problem
from bot.logs import NOISY_LOGGERS, QuietPlatformRetries, log_context, setup_logging
from config.settings import Settings
from handlers.messages import Outgoing
from models.entities import Complaint, OutboxMessage
from models.outbox import enqueue
from scheduler.runner import SCHEDULER_KEY
from tests.intake_script import GOV_WINDOW_FILING
from tests.waiting import eventually

SESSION = "7c1d1e0c-41a1-4a8f-9a51-ops000000001"
_ids = iter(range(1, 10_000))


def settings_for(db_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(database_url=db_url, data_dir=tmp_path / "data", **extra)


async def file_complaint(client: TestClient) -> None:
    for kind, value in GOV_WINDOW_FILING:
        body: dict[str, Any] = {"session_id": SESSION, "message_id": f"ops-{next(_ids)}"}
        if kind == "command":
            body["text"] = f"/{value}"
        elif kind == "choice":
            body["choice"] = value
        else:
            body["text"] = value
        response = await client.post("/webchat/api/message", json=body)
        assert response.status == 200, await response.text()


def samples(text: str, name: str) -> dict[str, float]:
    """`{labels: value}` of one metric in Prometheus text format."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(\{{.*\}})? (\S+)", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


async def test_metrics_after_a_filing_have_the_names_and_labels(
    db_url: str, tmp_path: Path
) -> None:
    app = create_app(settings_for(db_url, tmp_path), manage_db=False)
    async with TestClient(TestServer(app)) as client:
        await file_complaint(client)
        # A duplicate delivery (same message id) is counted as such.
        repeat = {"session_id": SESSION, "message_id": "ops-dup", "text": "/status"}
        for _ in range(2):
            assert (await client.post("/webchat/api/message", json=repeat)).status == 200
        await enqueue(
            channel="telegram",
            chat_id="42",
            message=Outgoing("hi"),
            idempotency_key="ops-metrics-1",
            now=datetime.now(UTC) - timedelta(minutes=5),
        )
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    inbound = samples(text, "complaintdesk_inbound_updates_total")
    assert inbound['{channel="web",outcome="answered"}'] >= len(GOV_WINDOW_FILING)
    assert inbound['{channel="web",outcome="duplicate"}'] >= 1
    assert any('channel="web"' in k for k in samples(text, "complaintdesk_reply_seconds_count"))
    assert samples(text, "complaintdesk_open_complaints")['{state="submitted"}'] >= 1
    assert samples(text, "complaintdesk_outbox_pending")['{channel="telegram"}'] == 1
    oldest = samples(text, "complaintdesk_outbox_oldest_pending_age_seconds")
    assert oldest['{channel="telegram"}'] >= 240
    assert samples(text, "complaintdesk_dialog_sessions_active")[""] >= 1
    for name in (
        "complaintdesk_outbox_sends_total",
        "complaintdesk_sweep_duration_seconds",
        "complaintdesk_sweep_items_total",
        "complaintdesk_overdue_complaints",
        "complaintdesk_wechat_token_refreshes_total",
        "complaintdesk_scheduler_job_runs_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


def documented_metrics() -> set[str]:
    """The metric names in docs/operations.md's table (a `…_suffix` shares the row's prefix)."""
    doc = (Path(__file__).parent.parent / "docs" / "operations.md").read_text(encoding="utf-8")
    table = doc.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in table.splitlines():
        if not row.startswith("| `complaintdesk_"):
            continue
        cell = row.split("|")[1]
        full = re.findall(r"`(complaintdesk_\w+)`", cell)
        names.update(full)
        for suffix in re.findall(r"`…(_\w+)`", cell):
            names.add(full[0].rsplit("_", 2)[0] + suffix)
    return names


async def test_every_documented_series_is_there_before_anything_happened(
    db_url: str, tmp_path: Path
) -> None:
    """An empty database and no traffic yet: each listed metric answers with its labels at 0
    (a dashboard shows 0, not "no data", and an alert on a rate works from the first scrape)."""
    app = create_app(settings_for(db_url, tmp_path), manage_db=False)
    async with TestClient(TestServer(app)) as client:
        text = await (await client.get("/metrics")).text()
    documented = documented_metrics()
    assert len(documented) >= 13, documented
    for name in documented:
        assert f"# TYPE {name} " in text, name
    for channel in ("web", "telegram", "wechat"):
        for outcome in ("answered", "duplicate", "failed"):
            key = f'{{channel="{channel}",outcome="{outcome}"}}'
            assert key in samples(text, "complaintdesk_inbound_updates_total"), key
        assert f'{{channel="{channel}"}}' in samples(text, "complaintdesk_reply_seconds_count")
    for channel in ("telegram", "wechat"):
        for result in ("ok", "retry", "429", "permanent"):
            key = f'{{channel="{channel}",result="{result}"}}'
            assert key in samples(text, "complaintdesk_outbox_sends_total"), key
        assert samples(text, "complaintdesk_outbox_pending")[f'{{channel="{channel}"}}'] == 0
        oldest = samples(text, "complaintdesk_outbox_oldest_pending_age_seconds")
        assert oldest[f'{{channel="{channel}"}}'] == 0
    overdue = samples(text, "complaintdesk_overdue_complaints")
    for stage in ("acceptance", "resolution", "revisit"):
        assert overdue[f'{{stage="{stage}"}}'] == 0
    assert set(samples(text, "complaintdesk_wechat_token_refreshes_total")) >= {
        '{result="ok"}',
        '{result="failed"}',
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_metrics_can_have_their_own_port(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    app = create_app(settings_for(db_url, tmp_path, metrics_port=port), manage_db=False)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/metrics")).status == 404  # not on the public port
        async with ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                assert "complaintdesk_inbound_updates_total" in await response.text()


async def test_healthz_and_readyz_answer_json(db_url: str, tmp_path: Path) -> None:
    app = create_app(settings_for(db_url, tmp_path), manage_db=False)
    async with TestClient(TestServer(app)) as client:
        health = await client.get("/healthz")
        assert health.status == 200 and await health.json() == {"status": "ok"}
        ready = await client.get("/readyz")
        body = await ready.json()
        assert ready.status == 200, body
        assert body == {
            "status": "ready",
            "checks": {"database": "ok", "migrations": "ok", "outbox": "ok"},
        }
        assert ready.headers["X-Request-Id"]


async def test_readiness_fails_when_the_scheduler_stops(db_url: str, tmp_path: Path) -> None:
    app = create_app(settings_for(db_url, tmp_path), manage_db=False, scheduler=True)
    async with TestClient(TestServer(app)) as client:

        async def ready() -> bool:
            return (await client.get("/readyz")).status == 200

        await eventually(ready, what="/readyz with a running scheduler")
        app[SCHEDULER_KEY].pause()  # what a stuck or stopped scheduler looks like from outside
        response = await client.get("/readyz")
        body = await response.json()
        assert response.status == 503
        assert body["status"] == "unavailable"
        assert body["checks"]["scheduler"] == "scheduler is not running"
        assert body["checks"]["database"] == "ok"
        app[SCHEDULER_KEY].resume()
        await eventually(ready, what="/readyz after the scheduler resumed")


def test_a_scheduler_whose_sweep_stopped_starting_is_not_ready() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    beat = Heartbeat(60, started_at=now - timedelta(hours=1), running=lambda: True)
    beat.beat(now - timedelta(seconds=119))
    assert heartbeat_problem(beat, now) is None
    beat.beat(now - timedelta(seconds=121))
    assert heartbeat_problem(beat, now) == "last sweep started 121 s ago (limit 120 s)"
    assert heartbeat_problem(Heartbeat(60, running=lambda: True), now) == (
        "scheduler has not started"
    )


async def test_readiness_names_missing_migrations_and_a_stuck_outbox(
    db_url: str, tmp_path: Path
) -> None:
    app = create_app(
        settings_for(db_url, tmp_path, ready_outbox_max_age_seconds=60), manage_db=False
    )
    await Tortoise.get_connection("default").execute_query(
        "DELETE FROM tortoise_migrations WHERE name = '0004_attachment_blob'"
    )
    await enqueue(
        channel="wechat",
        chat_id="openid-1",
        message=Outgoing("hi"),
        idempotency_key="ops-ready-1",
        now=datetime.now(UTC) - timedelta(minutes=10),
    )
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        checks = (await response.json())["checks"]
    assert response.status == 503
    assert checks["migrations"] == "not applied: 0004_attachment_blob (run migrate)"
    assert checks["outbox"].startswith("oldest due message waiting wechat 6")
    assert checks["outbox"].endswith("(limit 60 s)")
    assert await OutboxMessage.all().count() == 1


async def test_an_event_is_logged_with_number_role_and_change(
    db_url: str, tmp_path: Path, caplog: Any
) -> None:
    app = create_app(settings_for(db_url, tmp_path), manage_db=False)
    with caplog.at_level(logging.INFO, logger="complaintdesk.events"):
        async with TestClient(TestServer(app)) as client:
            await file_complaint(client)
    complaint = await Complaint.get()
    lines = [r.getMessage() for r in caplog.records if r.name == "complaintdesk.events"]
    assert lines == [f"complaint {complaint.number}: submit by complainant (draft → submitted)"]
    # No personal data: the name and phone typed in the filing are not in the line.
    assert "李雷" not in lines[0] and "138" not in lines[0]


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """setup_logging configures the process's loggers; put them back for the next test."""
    names = ("", *NOISY_LOGGERS)
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_json_logs_are_one_object_a_line_with_zone_and_context() -> None:
    stream = io.StringIO()
    handler = setup_logging(format="json", tz=ZoneInfo("Asia/Shanghai"), stream=stream)
    try:
        with log_context(request="req-1", update="telegram:42"):
            logging.getLogger("complaintdesk.test").info("answered %s", "x")
        logging.getLogger("complaintdesk.test").warning("plain")
    finally:
        logging.getLogger().removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "answered x" and first["level"] == "INFO"
    assert first["request"] == "req-1" and first["update"] == "telegram:42"
    assert first["logger"] == "complaintdesk.test"
    assert first["time"].endswith("+08:00")
    assert "request" not in second and second["level"] == "WARNING"


def test_text_logs_carry_the_zone_and_the_ids() -> None:
    stream = io.StringIO()
    handler = setup_logging(format="text", stream=stream)
    try:
        with log_context(request="abc123"):
            logging.getLogger("complaintdesk.test").info("hello")
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue().strip()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 INFO complaintdesk\.test: hello "
        r"\[request=abc123\]",
        line,
    ), line


def test_debug_shows_our_empty_runs_not_every_statement() -> None:
    """At DEBUG an operator looks for the sweeps that found nothing, not aiosqlite's log of
    each statement it executes (hundreds a minute on an idle worker)."""
    stream = io.StringIO()
    handler = setup_logging(level="DEBUG", stream=stream)
    try:
        logging.getLogger("scheduler.runner").debug("deadline-sweep: nothing due")
        logging.getLogger("aiosqlite").debug("executing PRAGMA journal_mode=WAL")
        logging.getLogger("aiosqlite").warning("connection lost")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "DEBUG scheduler.runner: deadline-sweep: nothing due",
        "WARNING aiosqlite: connection lost",
    ]


def test_a_retried_telegram_network_error_is_one_warning_line() -> None:
    from telegram.error import NetworkError

    try:
        raise NetworkError("Bad Gateway")
    except NetworkError as error:
        record = logging.LogRecord(
            "telegram.ext.Updater",
            logging.ERROR,
            __file__,
            1,
            "Exception happened while polling for updates.",
            None,
            (type(error), error, error.__traceback__),
        )
    assert QuietPlatformRetries().filter(record)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == (
        "Exception happened while polling for updates. (NetworkError: Bad Gateway)"
    )
    other = logging.LogRecord(
        "telegram.ext.Updater",
        logging.ERROR,
        __file__,
        1,
        "boom",
        None,
        (ValueError, ValueError("x"), None),
    )
    assert QuietPlatformRetries().filter(other) and other.levelno == logging.ERROR


async def test_heartbeat_is_on_the_app_with_the_scheduler(db_url: str, tmp_path: Path) -> None:
    app = create_app(settings_for(db_url, tmp_path), manage_db=False, scheduler=True)
    async with TestClient(TestServer(app)):
        heartbeat = app[HEARTBEAT]
        await eventually(lambda: heartbeat.last_beat is not None, what="the first sweep")
        assert heartbeat.running()
