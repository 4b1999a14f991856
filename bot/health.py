"""`/healthz` (the process answers) and `/readyz` (this worker can do its job), with JSON bodies.

Readiness checks, each reported by name with "ok" or what failed:

* database — a `SELECT 1` answers;
* migrations — every committed migration is applied (an upgrade ran `migrate`);
* scheduler — where this worker runs one: it is running and its deadline sweep last started
  within two intervals;
* outbox — no due message to Telegram or WeChat has waited longer than
  `COMPLAINTDESK_READY_OUTBOX_MAX_AGE_SECONDS` (web chat notices wait for the browser to ask, so
  they are not counted).

A load balancer should route by `/readyz`; a process supervisor restarts on `/healthz`.
"""

from __future__ import annotations

import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from tortoise import Tortoise

from config.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "models.migrations"
MIGRATIONS_TABLE = "tortoise_migrations"
QUEUED_CHANNELS = ("telegram", "wechat")


@dataclass
class Heartbeat:
    """When the scheduler last started a deadline sweep; written by scheduler.runner."""

    interval_seconds: float
    started_at: datetime | None = None
    last_beat: datetime | None = None
    running: Callable[[], bool] = lambda: False

    def beat(self, at: datetime) -> None:
        self.last_beat = at

    def beat_now(self) -> None:
        self.beat(datetime.now(UTC))


HEARTBEAT = web.AppKey("scheduler_heartbeat", Heartbeat)


def heartbeat_problem(heartbeat: Heartbeat, now: datetime) -> str | None:
    """None when the scheduler is alive, else what is wrong (pure)."""
    if not heartbeat.running():
        return "scheduler is not running"
    since = heartbeat.last_beat or heartbeat.started_at
    if since is None:
        return "scheduler has not started"
    limit = timedelta(seconds=2 * heartbeat.interval_seconds)
    age = now - since
    if age > limit:
        return f"last sweep started {age.total_seconds():.0f} s ago (limit {limit.seconds} s)"
    return None


def committed_migrations() -> list[str]:
    from models import migrations

    return sorted(
        module.name
        for module in pkgutil.iter_modules(migrations.__path__)
        if module.name[:4].isdigit()
    )


async def missing_migrations() -> list[str]:
    _, rows = await Tortoise.get_connection("default").execute_query(
        f"SELECT name FROM {MIGRATIONS_TABLE} WHERE app = 'models'"
    )
    applied = {row["name"] for row in rows}
    return [name for name in committed_migrations() if name not in applied]


async def oldest_due_outbox_age(now: datetime) -> dict[str, float]:
    from bot.metrics import outbox_backlog

    backlog = await outbox_backlog(now)
    return {channel: age for channel, (_, age) in backlog.items() if channel in QUEUED_CHANNELS}


async def readiness(
    settings: Settings, heartbeat: Heartbeat | None, now: datetime
) -> tuple[bool, dict[str, Any]]:
    checks: dict[str, Any] = {}
    try:
        await Tortoise.get_connection("default").execute_query("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # any failure to reach the database is the answer
        checks["database"] = f"unreachable: {type(error).__name__}: {error}"
    if checks["database"] == "ok":
        try:
            missing = await missing_migrations()
            checks["migrations"] = (
                "ok" if not missing else f"not applied: {', '.join(missing)} (run migrate)"
            )
        except Exception as error:
            checks["migrations"] = f"unknown: {type(error).__name__}: {error}"
        try:
            ages = await oldest_due_outbox_age(now)
            limit = settings.ready_outbox_max_age_seconds
            late = {c: round(a) for c, a in ages.items() if a > limit}
            checks["outbox"] = (
                "ok"
                if not late
                else "oldest due message waiting "
                + ", ".join(f"{c} {a} s" for c, a in sorted(late.items()))
                + f" (limit {limit} s)"
            )
        except Exception as error:
            checks["outbox"] = f"unknown: {type(error).__name__}: {error}"
    if heartbeat is not None:
        checks["scheduler"] = heartbeat_problem(heartbeat, now) or "ok"
    ready = all(value == "ok" for value in checks.values())
    return ready, checks


async def healthz(request: web.Request) -> web.Response:
    """Alive: the event loop answers. Dependencies are /readyz's business."""
    return web.json_response({"status": "ok"})


def readyz_handler(settings: Settings) -> web.Handler:
    async def readyz(request: web.Request) -> web.Response:
        heartbeat = request.app.get(HEARTBEAT)
        ready, checks = await readiness(settings, heartbeat, datetime.now(UTC))
        if not ready:
            log.warning("not ready: %s", {k: v for k, v in checks.items() if v != "ok"})
        body = {"status": "ready" if ready else "unavailable", "checks": checks}
        return web.json_response(body, status=200 if ready else 503)

    return readyz


def setup_health(app: web.Application, settings: Settings) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz_handler(settings))
