"""APScheduler set-up for `complaintdesk run`: the jobs, on the aiohttp application's loop.

Jobs (times in the configured zone):

* deadline sweep every `settings.scheduler_interval_seconds` (first run at start-up, which is the
  catch-up after downtime); overlapping runs are skipped, not queued;
* provisional-deadline recount daily at 04:10 (after an override file update and restart);
* retention daily at 03:30: anonymise expired complaints, forget platform update ids older
  than a week (`prune_processed_updates`), and delete outbox rows sent over 30 days ago
  (`prune_sent_outbox`; failed rows stay), and delete uploads no complaint took within
  `orphan_attachment_hours` (`expire_orphans`) — each step on its own, so one failing does not
  hold back the others;
* reports hourly on the hour and at start-up: the weekly report (Mondays 08:00) and the monthly
  one (the 1st, 08:00) go out at that time, or — when no worker was up then — at the first run
  after it (`due_report_period`; a report already queued for its period is not sent again).

Each job is named (logs, APScheduler's messages, metrics). The deadline sweep beats the
heartbeat `/readyz` checks.

Every job is safe to run in several processes at once: the sweep claims rows with SKIP LOCKED,
and everything written carries an idempotency key, so running N workers needs no leader.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.attachments import expire_orphans
from bot.health import HEARTBEAT, Heartbeat
from bot.logs import log_context
from bot.metrics import JOB_LAST_SUCCESS, JOB_RUNS, SWEEP_ITEMS, SWEEP_SECONDS
from config.profiles import Profile
from config.settings import Settings
from models.alarms import AlarmContext, profile_loader, set_alarm_context
from models.api_tokens import prune_idempotency
from models.db import refresh_planner_statistics
from models.desk_auth import prune_sessions
from scheduler.calendar import WorkingCalendar
from scheduler.jobs import (
    SweepReport,
    prune_processed_updates,
    prune_sent_outbox,
    rebuild_alarms,
    recompute_provisional,
    sweep,
)
from scheduler.matters import propose_mass_matters
from scheduler.reports import due_report_period, send_report
from scheduler.retention import anonymise_expired
from scheduler.severity import upgrade_unsettled

log = logging.getLogger(__name__)

SCHEDULER_KEY: web.AppKey[AsyncIOScheduler] = web.AppKey("scheduler", AsyncIOScheduler)
Now = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


# Job runs in flight: shutting down waits for them, so a sweep is never cut off mid-transaction
# and the database closes only once nothing uses it.
_IN_FLIGHT: set[asyncio.Task[Any]] = set()
SHUTDOWN_WAIT_SECONDS = 30.0


def did_nothing(result: Any) -> bool:
    """An empty run (a sweep with nothing due, a report already sent): logged at DEBUG only."""
    if isinstance(result, SweepReport):
        return result.complaints == 0 and not result.failed
    if isinstance(result, dict):
        return all(did_nothing(value) for value in result.values())
    if isinstance(result, list | tuple):
        return all(did_nothing(value) for value in result) if result else True
    return result is None or result == 0


def _logged(
    name: str, job: Callable[[], Awaitable[Any]], *, on_start: Callable[[], None] | None = None
) -> Callable[[], Awaitable[None]]:
    """The job as APScheduler runs it: named, timed, counted, its result logged in one line."""
    for result in ("ok", "failed"):  # both series exist from the start (a rate of 0 failures)
        JOB_RUNS.labels(job=name, result=result)

    async def run() -> None:
        task = asyncio.current_task()
        if task is not None:
            _IN_FLIGHT.add(task)
        if on_start is not None:
            on_start()
        started = time.perf_counter()
        try:
            with log_context(job=name):
                result = await job()
                level = logging.DEBUG if did_nothing(result) else logging.INFO
                log.log(level, "%s: %s", name, result)
            JOB_RUNS.labels(job=name, result="ok").inc()
            JOB_LAST_SUCCESS.labels(job=name).set_to_current_time()
            if isinstance(result, SweepReport):
                SWEEP_SECONDS.observe(time.perf_counter() - started)
                SWEEP_ITEMS.inc(result.complaints)
        except Exception:  # a failed run is retried by the next one; never kill the scheduler
            JOB_RUNS.labels(job=name, result="failed").inc()
            log.exception("%s failed", name)
        finally:
            if task is not None:
                _IN_FLIGHT.discard(task)

    run.__name__ = run.__qualname__ = name.replace("-", "_")
    return run


def report_catch_up(
    now: Now, profile: Profile, tz: Any
) -> Callable[[], Awaitable[dict[str, str | None]]]:
    """Send each report whose sending time has passed and that is not out yet: the cron time
    itself, and the catch-up after a worker was down over Monday (or the 1st) 08:00."""

    async def run() -> dict[str, str | None]:
        sent: dict[str, str | None] = {}
        at = now()
        for kind in ("weekly", "monthly"):
            period = due_report_period(kind, at, tz)  # type: ignore[arg-type]
            result = await send_report(kind, at, profile, tz, period=period)  # type: ignore[arg-type]
            # None: already out, or nobody to send it to yet (a manager invited later still
            # gets this period's report at the next hourly run).
            sent[kind] = result.period.label if result and result.recipients else None
        return sent

    return run


def daily_retention(
    now: Now, profile: Profile, context: AlarmContext, orphan_ttl: timedelta = timedelta(days=1)
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """The retention job: what each step did (or that it failed, logged; retried tomorrow)."""

    async def run() -> dict[str, Any]:
        steps: dict[str, Callable[[], Awaitable[Any]]] = {
            "anonymised": lambda: anonymise_expired(now(), profile, context=context),
            "processed_updates_pruned": lambda: prune_processed_updates(now()),
            "sent_outbox_pruned": lambda: prune_sent_outbox(now()),
            "orphan_uploads_expired": lambda: expire_orphans(now(), orphan_ttl),
            "desk_sessions_pruned": lambda: prune_sessions(now()),
            "api_idempotency_pruned": lambda: prune_idempotency(now()),
            "planner_statistics": refresh_planner_statistics,
        }
        done: dict[str, Any] = {}
        for name, step in steps.items():
            try:
                done[name] = await step()
            except Exception:
                log.exception("retention: %s failed", name)
                done[name] = "failed"
        return done

    return run


def build_scheduler(
    settings: Settings,
    profile: Profile,
    *,
    now: Now = _utc_now,
    calendar: WorkingCalendar | None,
    heartbeat: Heartbeat | None = None,
) -> tuple[AsyncIOScheduler, AlarmContext]:
    """The configured scheduler (not started) and the alarm context its jobs use."""
    tz = settings.tz
    heartbeat = heartbeat or Heartbeat(settings.scheduler_interval_seconds)
    context = AlarmContext(
        calendar or WorkingCalendar.from_settings(settings), tz, profile_loader(profile)
    )
    scheduler = AsyncIOScheduler(timezone=tz)
    jobs: list[tuple[str, Callable[[], Awaitable[Any]], Any]] = [
        (
            "deadline-sweep",
            lambda: sweep(now(), profile=profile, context=context),
            IntervalTrigger(seconds=settings.scheduler_interval_seconds, timezone=tz),
        ),
        (
            "severity-upgrade",
            lambda: upgrade_unsettled(now(), profile=profile, context=context),
            IntervalTrigger(minutes=30, timezone=tz),
        ),
        (
            "mass-matters",
            lambda: propose_mass_matters(now(), profile=profile, context=context),
            IntervalTrigger(minutes=15, timezone=tz),
        ),
        (
            "recompute-provisional",
            lambda: recompute_provisional(now(), profile=profile, context=context),
            CronTrigger(hour=4, minute=10, timezone=tz),
        ),
        (
            "retention",
            daily_retention(
                now, profile, context, timedelta(hours=settings.orphan_attachment_hours)
            ),
            CronTrigger(hour=3, minute=30, timezone=tz),
        ),
        (
            # Hourly, on the hour (so 08:00 sharp on Mondays and the 1st), and at start-up.
            "reports",
            report_catch_up(now, profile, tz),
            CronTrigger(minute=0, timezone=tz),
        ),
    ]
    for job_id, job, trigger in jobs:
        beat = heartbeat.beat_now if job_id == "deadline-sweep" else None
        scheduler.add_job(
            _logged(job_id, job, on_start=beat),
            trigger,
            id=job_id,
            name=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )
    return scheduler, context


def setup_scheduler(
    app: web.Application,
    settings: Settings,
    profile: Profile,
    *,
    now: Now = _utc_now,
    calendar: WorkingCalendar | None = None,
    paused: bool = False,
) -> AsyncIOScheduler:
    """Attach the scheduler to `app`: started on start-up with a catch-up sweep at once, shut
    down on clean-up. The database must be initialised before start-up ends. `paused` starts
    it without running anything (maintenance; `scheduler.resume()` later)."""
    heartbeat = Heartbeat(settings.scheduler_interval_seconds)
    scheduler, context = build_scheduler(
        settings, profile, now=now, calendar=calendar, heartbeat=heartbeat
    )
    # /readyz: running, and not paused (maintenance), and the sweep keeps starting.
    heartbeat.running = lambda: scheduler.state == STATE_RUNNING

    async def start(_: web.Application) -> None:
        set_alarm_context(context)
        rebuilt = await rebuild_alarms(context)
        if rebuilt:
            log.info("planned alarms for %d complaints saved before the scheduler", rebuilt)
        scheduler.start(paused=paused)
        heartbeat.started_at = datetime.now(UTC)
        # Catch up at once rather than one interval (or hour) after start-up.
        for job_id in ("deadline-sweep", "reports"):
            scheduler.modify_job(job_id, next_run_time=datetime.now(settings.tz))

    async def stop(_: web.Application) -> None:
        if scheduler.running:
            scheduler.pause()  # no new runs; let the current ones finish their transaction
            running = [t for t in _IN_FLIGHT if not t.done()]
            if running:
                await asyncio.wait(running, timeout=SHUTDOWN_WAIT_SECONDS)
            scheduler.shutdown(wait=False)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app[SCHEDULER_KEY] = scheduler
    app[HEARTBEAT] = heartbeat
    return scheduler
