"""Prometheus metrics: counters the code increments, gauges read from the database per scrape.

Counters and histograms live in this process (each worker is scraped on its own and Prometheus
sums them). Figures that describe the shared database — outbox depth and oldest pending age,
open complaints by state, overdue by stage, active dialog sessions — are read at scrape time,
so every worker reports the same, current value (aggregate them with `max`, not `sum`).

`/metrics` is served on the main port, or only on `COMPLAINTDESK_METRICS_PORT` when that is set
(so it need not be exposed through the reverse proxy).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from tortoise.functions import Count, Min

from models.actions import ACTIVE_STAGES
from models.entities import Channel, Complaint, DialogSession, OutboxMessage, OutboxStatus
from models.workflow import OPEN_STATES

log = logging.getLogger(__name__)

PREFIX = "complaintdesk"
SEND_RESULTS = ("ok", "retry", "429", "permanent")
INBOUND_OUTCOMES = ("answered", "duplicate", "failed")
TOKEN_RESULTS = ("ok", "failed")
# Where messages come in, and which of those channels are sent to through the outbox (web chat
# replies go back in the HTTP answer).
CHAT_CHANNELS = (str(Channel.WEB), str(Channel.TELEGRAM), str(Channel.WECHAT))
OUTBOX_CHANNELS = (str(Channel.TELEGRAM), str(Channel.WECHAT))
# Every stage a running deadline can have, so an overdue series exists (at 0) before it counts.
DEADLINE_STAGES = tuple(sorted({stage for stages in ACTIVE_STAGES.values() for stage in stages}))

INBOUND_UPDATES = Counter(
    f"{PREFIX}_inbound_updates",
    "Messages and button presses received, by channel and outcome",
    ["channel", "outcome"],  # outcome: answered, duplicate, failed
)
REPLY_SECONDS = Histogram(
    f"{PREFIX}_reply_seconds",
    "Time from receiving a message to having the reply ready (one turn)",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
OUTBOX_SENDS = Counter(
    f"{PREFIX}_outbox_sends",
    "Outbox delivery attempts by channel and result (ok, retry, 429, permanent)",
    ["channel", "result"],
)
SWEEP_SECONDS = Histogram(
    f"{PREFIX}_sweep_duration_seconds",
    "Duration of one deadline sweep",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
SWEEP_ITEMS = Counter(f"{PREFIX}_sweep_items", "Complaints handled by deadline sweeps")
JOB_RUNS = Counter(
    f"{PREFIX}_scheduler_job_runs", "Scheduler job runs by job and result", ["job", "result"]
)
JOB_LAST_SUCCESS = Gauge(
    f"{PREFIX}_scheduler_job_last_success_timestamp_seconds",
    "When each scheduler job last finished without error (Unix time)",
    ["job"],
)
WECHAT_TOKEN_REFRESHES = Counter(
    f"{PREFIX}_wechat_token_refreshes", "WeChat access_token fetches from the API", ["result"]
)

# Read from the database at scrape time.
OUTBOX_DEPTH = Gauge(
    f"{PREFIX}_outbox_pending", "Outbox rows waiting to be sent, by channel", ["channel"]
)
OUTBOX_OLDEST = Gauge(
    f"{PREFIX}_outbox_oldest_pending_age_seconds",
    "How long the oldest due outbox row has waited, by channel (0 when none is due)",
    ["channel"],
)
OPEN_COMPLAINTS = Gauge(f"{PREFIX}_open_complaints", "Open complaints by state", ["state"])
OVERDUE_COMPLAINTS = Gauge(
    f"{PREFIX}_overdue_complaints",
    "Open complaints past their running deadline, by stage",
    ["stage"],
)
DIALOG_SESSIONS_ACTIVE = Gauge(
    f"{PREFIX}_dialog_sessions_active", "Conversations with a message within the idle limit"
)
SCRAPE_ERRORS = Counter(
    f"{PREFIX}_metrics_database_errors", "Scrapes that could not read the database gauges"
)


def _start_every_series_at_zero() -> None:
    """A labelled series appears only once it is touched; a fresh worker would then show no
    `ok` sends or `failed` turns at all, which a dashboard draws as "no data" and a rate() or an
    alert cannot tell from a broken scrape. Every known label combination starts at 0."""
    for channel in CHAT_CHANNELS:
        REPLY_SECONDS.labels(channel=channel)
        for outcome in INBOUND_OUTCOMES:
            INBOUND_UPDATES.labels(channel=channel, outcome=outcome)
    for channel in OUTBOX_CHANNELS:
        for result in SEND_RESULTS:
            OUTBOX_SENDS.labels(channel=channel, result=result)
    for result in TOKEN_RESULTS:
        WECHAT_TOKEN_REFRESHES.labels(result=result)


_start_every_series_at_zero()


def outbox_age(now: datetime, oldest_due: datetime | None) -> float:
    """Seconds the oldest due row has waited (0 with none due); pure, for the gauge and /readyz."""
    if oldest_due is None:
        return 0.0
    return max(0.0, (now - oldest_due).total_seconds())


async def outbox_backlog(now: datetime) -> dict[str, tuple[int, float]]:
    """Per channel: (rows waiting, age of the oldest one that is due now)."""
    waiting = [OutboxStatus.PENDING, OutboxStatus.SENDING]
    counts = (
        await OutboxMessage.filter(status__in=waiting)
        .annotate(n=Count("id"))
        .group_by("channel")
        .values("channel", "n")
    )
    oldest = (
        await OutboxMessage.filter(status__in=waiting, next_attempt_at__lte=now)
        .annotate(first=Min("next_attempt_at"))
        .group_by("channel")
        .values("channel", "first")
    )
    ages = {str(row["channel"]): outbox_age(now, row["first"]) for row in oldest}
    return {
        str(row["channel"]): (int(row["n"]), ages.get(str(row["channel"]), 0.0)) for row in counts
    }


async def refresh_database_gauges(now: datetime, idle_minutes: int) -> None:
    """Set the gauges that describe the shared database (a failure keeps the last values)."""
    backlog = await outbox_backlog(now)
    OUTBOX_DEPTH.clear()
    OUTBOX_OLDEST.clear()
    for channel in OUTBOX_CHANNELS:
        OUTBOX_DEPTH.labels(channel=channel).set(0)
        OUTBOX_OLDEST.labels(channel=channel).set(0)
    for channel, (depth, age) in backlog.items():
        OUTBOX_DEPTH.labels(channel=channel).set(depth)
        OUTBOX_OLDEST.labels(channel=channel).set(age)
    states = (
        await Complaint.filter(state__in=list(OPEN_STATES))
        .annotate(n=Count("id"))
        .group_by("state")
        .values("state", "n")
    )
    OPEN_COMPLAINTS.clear()
    for state in OPEN_STATES:
        OPEN_COMPLAINTS.labels(state=str(state)).set(0)
    for row in states:
        OPEN_COMPLAINTS.labels(state=str(row["state"])).set(row["n"])
    overdue = (
        await Complaint.filter(
            state__in=list(OPEN_STATES), next_due_at__lt=now, paused_at__isnull=True
        )
        .annotate(n=Count("id"))
        .group_by("next_due_stage")
        .values("next_due_stage", "n")
    )
    OVERDUE_COMPLAINTS.clear()
    for stage in DEADLINE_STAGES:
        OVERDUE_COMPLAINTS.labels(stage=stage).set(0)
    for row in overdue:
        OVERDUE_COMPLAINTS.labels(stage=row["next_due_stage"] or "unknown").set(row["n"])
    since = now - timedelta(minutes=idle_minutes)
    DIALOG_SESSIONS_ACTIVE.set(await DialogSession.filter(updated_at__gte=since).count())


def render(registry: CollectorRegistry = REGISTRY) -> bytes:
    return generate_latest(registry)


def metrics_handler(idle_minutes: int) -> web.Handler:
    async def serve_metrics(request: web.Request) -> web.Response:
        try:
            await refresh_database_gauges(datetime.now(UTC), idle_minutes)
        except Exception as error:  # the process counters are still worth answering with
            SCRAPE_ERRORS.inc()
            log.warning("metrics: database gauges not refreshed: %r", error)
        body = render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return serve_metrics


METRICS_PATH = "/metrics"


def setup_metrics(app: web.Application, *, host: str, port: int | None, idle_minutes: int) -> None:
    """`/metrics` on `app`, or on its own listener at `port` (started and stopped with `app`)."""
    handler = metrics_handler(idle_minutes)
    if port is None:
        app.router.add_get(METRICS_PATH, handler)
        return

    async def separate_listener(_: web.Application) -> AsyncIterator[None]:
        metrics_app = web.Application()
        metrics_app.router.add_get(METRICS_PATH, handler)
        runner = web.AppRunner(metrics_app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("metrics on http://%s:%d%s", host, port, METRICS_PATH)
        try:
            yield
        finally:
            await runner.cleanup()

    app.cleanup_ctx.append(separate_listener)
