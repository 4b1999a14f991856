"""`complaintdesk jobs ...`: run one scheduler job now, e.g. from cron or after maintenance.

    complaintdesk jobs sweep [--at 2026-10-10T09:00+08:00]
    complaintdesk jobs report weekly|monthly [--at ...] [--out FILE]
    complaintdesk jobs retention [--at ...]
    complaintdesk jobs recompute
    complaintdesk jobs matters [--at ...]

Each is the same code `complaintdesk run` schedules, so it is safe next to running workers.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from config.profiles import load_profile
from config.settings import get_settings
from models.alarms import AlarmContext, profile_loader, set_alarm_context
from models.db import database
from scheduler.calendar import WorkingCalendar


def _instant(text: str | None, tz: Any) -> datetime:
    if not text:
        return datetime.now(UTC)
    value = datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)


async def _run(args: argparse.Namespace) -> str:
    from bot.storage import configure_storage
    from handlers.notify import install as install_notification_texts
    from scheduler.jobs import recompute_provisional, sweep
    from scheduler.runner import daily_retention

    settings = get_settings()
    configure_storage(settings.attachment_storage, settings.data_dir)
    profile = load_profile(settings.profile, settings.profiles_dir)
    context = AlarmContext(
        WorkingCalendar.from_settings(settings), settings.tz, profile_loader(profile)
    )
    now = _instant(args.at, settings.tz)
    set_alarm_context(context)
    install_notification_texts()  # escalations and survey steps queue worded notifications
    async with database(settings.database_url):
        if args.job == "sweep":
            return str(await sweep(now, profile=profile, context=context))
        if args.job == "report":
            return await _report(args, now, profile, settings)
        if args.job == "matters":
            from scheduler.matters import propose_mass_matters

            groups = await propose_mass_matters(now, profile=profile, context=context)
            return f"proposed {len(groups)} groups: {' '.join(map(str, groups))}".strip()
        if args.job == "retention":
            steps = await daily_retention(
                lambda: now, profile, context, timedelta(hours=settings.orphan_attachment_hours)
            )()
            report = steps.pop("anonymised")
            if not isinstance(report, str):
                report = f"{len(report.anonymised)} {' '.join(report.anonymised)}".strip()
            return "; ".join([f"anonymised {report}"] + [f"{k} {v}" for k, v in steps.items()])
        changed = await recompute_provisional(now, profile=profile, context=context)
        return f"recomputed {len(changed)}: {' '.join(changed)}"


async def _report(args: argparse.Namespace, now: datetime, profile: Any, settings: Any) -> str:
    """Queue the report to the managers (once per period) and, with --out, write the workbook
    to a file as well — whether or not anyone receives it. Said in the report's language."""
    from scheduler.reports import (
        cli_text,
        gather_report,
        report_period,
        send_report,
        write_workbook,
    )

    lang = args.language or settings.language
    lines = []
    if args.out:
        period = report_period(args.kind, now, settings.tz)
        data = await gather_report(period, now, profile, tz=settings.tz, lang=lang)
        content = write_workbook(data, profile, lang, settings.tz)
        await asyncio.to_thread(Path(args.out).write_bytes, content)
        lines.append(
            cli_text("written", lang, label=period.label, path=args.out, size=len(content))
        )
    result = await send_report(args.kind, now, profile, settings.tz)
    if result is None:
        lines.append(cli_text("already", lang))
    elif not result.recipients:
        lines.append(cli_text("nobody", lang, label=result.period.label))
        if not args.out:
            lines.append(cli_text("use_out", lang))
    else:
        lines.append(cli_text("sent", lang, label=result.period.label, n=len(result.recipients)))
    return "\n".join(lines)


def _main(args: argparse.Namespace) -> int:
    print(asyncio.run(_run(args)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "jobs",
        help="run a scheduler job once (sweep, report, retention, matters, recompute)",
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
    report.add_argument("--out", metavar="FILE", help="also write the XLSX workbook to FILE")
    report.add_argument(
        "--language", choices=("zh_CN", "zh_TW", "en"), help="the workbook's language (--out)"
    )
    retention = jobs.add_parser("retention", help="anonymise complaints past retention")
    retention.add_argument("--at", help=at_help)
    matters = jobs.add_parser("matters", help="propose groups of complaints about one matter")
    matters.add_argument("--at", help=at_help)
    recompute = jobs.add_parser("recompute", help="recount provisional deadlines")
    recompute.add_argument("--at", help=at_help)
    parser.set_defaults(func=_main)
