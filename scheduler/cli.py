"""`complaintdesk jobs ...`: run one scheduler job now, e.g. from cron or after maintenance.

    complaintdesk jobs sweep [--at 2026-10-10T09:00+08:00]
    complaintdesk jobs report weekly|monthly [--at ...]
    complaintdesk jobs retention [--at ...]
    complaintdesk jobs recompute

Each is the same code `complaintdesk run` schedules, so it is safe next to running workers.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from config.profiles import load_profile
from config.settings import get_settings
from models.db import database
from scheduler.alarms import AlarmContext, profile_loader, set_alarm_context
from scheduler.calendar import WorkingCalendar


def _instant(text: str | None, tz: Any) -> datetime:
    if not text:
        return datetime.now(UTC)
    value = datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)


async def _run(args: argparse.Namespace) -> str:
    from bot.storage import configure_storage
    from scheduler.jobs import recompute_provisional, sweep
    from scheduler.reports import send_report
    from scheduler.retention import anonymise_expired

    settings = get_settings()
    configure_storage(settings.attachment_storage, settings.data_dir)
    profile = load_profile(settings.profile, settings.profiles_dir)
    context = AlarmContext(
        WorkingCalendar.from_settings(settings), settings.tz, profile_loader(profile)
    )
    now = _instant(args.at, settings.tz)
    set_alarm_context(context)
    async with database(settings.database_url):
        if args.job == "sweep":
            return str(await sweep(now, profile=profile, context=context))
        if args.job == "report":
            result = await send_report(args.kind, now, profile, settings.tz)
            if result is None:
                return "already sent for this period"
            return f"{result.period.label}: queued to {len(result.recipients)} managers"
        if args.job == "retention":
            report = await anonymise_expired(now, profile, context=context)
            return f"anonymised {len(report.anonymised)}: {' '.join(report.anonymised)}"
        changed = await recompute_provisional(now, profile=profile, context=context)
        return f"recomputed {len(changed)}: {' '.join(changed)}"


def _main(args: argparse.Namespace) -> int:
    print(asyncio.run(_run(args)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "jobs",
        help="run a scheduler job once (sweep, report, retention, recompute)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    jobs = parser.add_subparsers(dest="job", metavar="JOB", required=True)
    at_help = "the instant to act as (ISO 8601; local time if no offset; default: now)"
    sweep = jobs.add_parser("sweep", help="reminders, escalations and survey steps due now")
    sweep.add_argument("--at", help=at_help)
    report = jobs.add_parser("report", help="queue the weekly or monthly report to managers")
    report.add_argument("kind", choices=("weekly", "monthly"))
    report.add_argument("--at", help=at_help)
    retention = jobs.add_parser("retention", help="anonymise complaints past retention")
    retention.add_argument("--at", help=at_help)
    recompute = jobs.add_parser("recompute", help="recount provisional deadlines")
    recompute.add_argument("--at", help=at_help)
    parser.set_defaults(func=_main)
