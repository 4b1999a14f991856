"""APScheduler set-up for `complaintdesk run`: the jobs, on the aiohttp application's loop.

Jobs (times in the configured zone):

* deadline sweep every `settings.scheduler_interval_seconds` (first run at start-up, which is the
  catch-up after downtime); overlapping runs are skipped, not queued;
* provisional-deadline recount daily at 04:10 (after an override file update and restart);
* retention daily at 03:30: anonymise expired complaints, forget platform update ids older
  than a week (`prune_processed_updates`), and delete outbox rows sent over 30 days ago
  (`prune_sent_outbox`; failed rows stay) — each step on its own, so one failing does not hold
  back the others;
* weekly report Mondays 08:00, monthly report on the 1st at 08:00.

Every job is safe to run in several processes at once: the sweep claims rows with SKIP LOCKED,
and everything written carries an idempotency key, so running N workers needs no leader.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config.profiles import Profile
from config.settings import Settings
from scheduler.alarms import AlarmContext, profile_loader, set_alarm_context
from scheduler.calendar import WorkingCalendar
from scheduler.jobs import (
    prune_processed_updates,
    prune_sent_outbox,
    rebuild_alarms,
    recompute_provisional,
    sweep,
)
from scheduler.reports import send_report
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


def _logged(name: str, job: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        task = asyncio.current_task()
        if task is not None:
            _IN_FLIGHT.add(task)
        try:
            result = await job()
            log.info("%s: %s", name, result)
        except Exception:  # a failed run is retried by the next one; never kill the scheduler
            log.exception("%s failed", name)
        finally:
            if task is not None:
                _IN_FLIGHT.discard(task)

    return run


def daily_retention(
    now: Now, profile: Profile, context: AlarmContext
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """The retention job: what each step did (or that it failed, logged; retried tomorrow)."""

    async def run() -> dict[str, Any]:
        steps: dict[str, Callable[[], Awaitable[Any]]] = {
            "anonymised": lambda: anonymise_expired(now(), profile, context=context),
            "processed_updates_pruned": lambda: prune_processed_updates(now()),
            "sent_outbox_pruned": lambda: prune_sent_outbox(now()),
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
    settings: Settings, profile: Profile, *, now: Now = _utc_now, calendar: WorkingCalendar | None
) -> tuple[AsyncIOScheduler, AlarmContext]:
    """The configured scheduler (not started) and the alarm context its jobs use."""
    tz = settings.tz
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
            "recompute-provisional",
            lambda: recompute_provisional(now(), profile=profile, context=context),
            CronTrigger(hour=4, minute=10, timezone=tz),
        ),
        (
            "retention",
            daily_retention(now, profile, context),
            CronTrigger(hour=3, minute=30, timezone=tz),
        ),
        (
            "weekly-report",
            lambda: send_report("weekly", now(), profile, settings.data_dir, tz),
            CronTrigger(day_of_week="mon", hour=8, timezone=tz),
        ),
        (
            "monthly-report",
            lambda: send_report("monthly", now(), profile, settings.data_dir, tz),
            CronTrigger(day=1, hour=8, timezone=tz),
        ),
    ]
    for job_id, job, trigger in jobs:
        scheduler.add_job(
            _logged(job_id, job),
            trigger,
            id=job_id,
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
    scheduler, context = build_scheduler(settings, profile, now=now, calendar=calendar)

    async def start(_: web.Application) -> None:
        set_alarm_context(context)
        rebuilt = await rebuild_alarms(context)
        if rebuilt:
            log.info("planned alarms for %d complaints saved before the scheduler", rebuilt)
        scheduler.start(paused=paused)
        # Catch up at once rather than one interval after start-up.
        scheduler.modify_job("deadline-sweep", next_run_time=datetime.now(settings.tz))

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
    return scheduler
