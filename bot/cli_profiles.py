"""CLI commands `deadline` and `profiles list|show|check`, registered into bot/cli.py's parser.

Settings (time zone, holiday override file, extra profiles directory) come from
config.settings.get_settings(); command-line flags override them.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from config.profiles import (
    STAGES,
    Profile,
    ProfileError,
    explain_rows,
    list_profiles,
    load_profile,
    pick,
    profile_files,
)
from config.settings import get_settings
from scheduler.calendar import CalendarOutOfRange, HolidayOverrideError, WorkingCalendar
from scheduler.deadlines import Duration, Pause, compute_due, format_local, notify_at


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `deadline` and `profiles` commands."""
    deadline = subparsers.add_parser(
        "deadline",
        help="compute when a stage of a complaint is due",
        description=(
            "Compute the due instant of a stage under a policy profile, counting working days "
            "with Chinese statutory holidays and 调休 working weekends. Prints ISO 8601 with the "
            "local UTC offset; --json adds how it was counted."
        ),
    )
    deadline.add_argument("--profile", help="profile id or TOML path (default: settings.profile)")
    deadline.add_argument(
        "--stage",
        required=True,
        choices=STAGES,
        metavar="STAGE",
        help=f"stage whose limit to use: {', '.join(STAGES)}",
    )
    deadline.add_argument("--category", help="complaint category id (or CATEGORY/SUBCATEGORY)")
    deadline.add_argument("--severity", help="severity id (default: the category's default)")
    deadline.add_argument(
        "--start",
        required=True,
        help="when the clock starts, ISO 8601 (e.g. 2026-09-30T10:00); without an offset it is "
        "local time in the configured time zone",
    )
    deadline.add_argument(
        "--pause",
        action="append",
        default=[],
        metavar="FROM/TO",
        help="a pause of the clock, two ISO 8601 instants separated by '/' (repeatable)",
    )
    deadline.add_argument(
        "--extend",
        action="store_true",
        help="apply the profile's maximum extension (as if approved)",
    )
    deadline.add_argument("--json", action="store_true", help="print JSON with the explanation")
    _common_options(deadline)
    deadline.set_defaults(func=run_deadline)

    profiles = subparsers.add_parser(
        "profiles",
        help="list, show or check policy profiles",
        description="Inspect and validate the policy profiles (TOML files in config/profiles/).",
    )
    actions = profiles.add_subparsers(dest="profiles_command", metavar="{list,show,check,explain}")
    actions.required = True

    listing = actions.add_parser("list", help="list the usable profiles")
    listing.add_argument("--all", action="store_true", help="include abstract profiles (base)")
    listing.add_argument("--lang", default=None, help="language of the names (zh_CN, zh_TW, en)")
    _common_options(listing)
    listing.set_defaults(func=run_profiles_list)

    show = actions.add_parser("show", help="show one profile after merging what it extends")
    show.add_argument("name", help="profile id or TOML path")
    show.add_argument("--lang", default=None, help="language of labels (zh_CN, zh_TW, en)")
    show.add_argument("--json", action="store_true", help="print the merged profile as JSON")
    _common_options(show)
    show.set_defaults(func=run_profiles_show)

    explain = actions.add_parser(
        "explain", help="each rule of a profile: config key, value, seed file, R-number, words"
    )
    explain.add_argument("name", help="profile id or TOML path")
    explain.add_argument("--markdown", action="store_true", help="print a Markdown table")
    _common_options(explain)
    explain.set_defaults(func=run_profiles_explain)

    check = actions.add_parser(
        "check", help="validate profiles; exits non-zero and prints the problem if any is invalid"
    )
    check.add_argument(
        "names", nargs="*", metavar="NAME|PATH", help="profiles to check (default: every file)"
    )
    _common_options(check)
    check.set_defaults(func=run_profiles_check)


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profiles-dir",
        type=Path,
        default=None,
        help="extra directory searched before the shipped profiles (default: settings)",
    )


def _profiles_dir(args: argparse.Namespace) -> Path | None:
    return args.profiles_dir if args.profiles_dir is not None else get_settings().profiles_dir


def _parse_instant(text: str, tz: ZoneInfo, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not an ISO 8601 date-time") from None
    # a naive instant means local wall-clock time in the configured zone
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def run_deadline(args: argparse.Namespace) -> int:
    settings = get_settings()
    tz = settings.tz
    try:
        profile = load_profile(args.profile or settings.profile, _profiles_dir(args))
        start = _parse_instant(args.start, tz, "--start")
        pauses = []
        for text in args.pause:
            first, sep, last = text.partition("/")
            if not sep:
                return _fail(f"--pause {text!r}: use FROM/TO", 2)
            pauses.append(
                Pause(_parse_instant(first, tz, "--pause"), _parse_instant(last, tz, "--pause"))
            )
        if args.category and "/" in args.category:
            # deadlines are set per category; the sub-category is only checked to exist
            args.category, _, sub = args.category.partition("/")
            profile.label("subcategory", sub, category=args.category)
        duration = profile.deadline_for(args.stage, args.category, args.severity)
        extension = None
        if args.extend:
            if profile.extension is None or profile.extension.max_count < 1:
                return _fail(f"profile {profile.id!r} allows no extension", 2)
            extension = profile.extension.max.to_duration()
        calendar = WorkingCalendar.from_settings(settings)
        result = compute_due(
            start,
            duration,
            calendar,
            tz,
            office_hours=profile.clock_office_hours(),
            pauses=pauses,
            extension=extension,
        )
        notified = notify_at(
            start, profile.office_hours.to_office_hours(), profile.duty_24h, calendar, tz
        )
    except ProfileError as exc:
        return _fail(str(exc))
    except (CalendarOutOfRange, HolidayOverrideError) as exc:
        return _fail(str(exc))
    except (KeyError, LookupError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return _fail(str(message), 2)
    due = format_local(result.due, tz)
    if args.json:
        payload = {
            "profile": profile.id,
            "stage": args.stage,
            "category": args.category,
            "severity": args.severity
            or (profile.category(args.category).default_severity if args.category else None),
            "start": format_local(start, tz),
            "duration": _duration_json(duration),
            "extension": _duration_json(extension) if extension else None,
            "due": due,
            "due_utc": result.due.isoformat(),
            "provisional": result.provisional,
            "staff_notified_at": format_local(notified, tz),
            "explanation": result.explanation,
        }
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        print(due)
        if result.provisional:
            print(
                "note: provisional — counted on a year without official holiday data",
                file=sys.stderr,
            )
    return 0


def _duration_json(duration: Duration) -> dict[str, Any]:
    return {"amount": duration.amount, "unit": duration.unit, "text": str(duration)}


def run_profiles_list(args: argparse.Namespace) -> int:
    directory = _profiles_dir(args)
    lang = args.lang or get_settings().language
    status = 0
    for name in list_profiles(directory, include_abstract=args.all):
        try:
            profile = load_profile(name, directory)
        except ProfileError as exc:
            print(f"{name}\t(invalid: run `profiles check {name}`)")
            print(str(exc), file=sys.stderr)
            status = 1
            continue
        suffix = " (abstract)" if profile.abstract else ""
        print(f"{name}\t{pick(profile.name, lang)}{suffix}")
    return status


def run_profiles_show(args: argparse.Namespace) -> int:
    try:
        profile = load_profile(args.name, _profiles_dir(args))
    except ProfileError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(profile.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        print("\n".join(describe_profile(profile, args.lang or get_settings().language)))
    return 0


def run_profiles_explain(args: argparse.Namespace) -> int:
    try:
        profile = load_profile(args.name, _profiles_dir(args))
    except ProfileError as exc:
        return _fail(str(exc))
    rows = explain_rows(profile)
    header = ("config key", "value", "seed file", "regime", "seed words / our choice")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    else:
        print(f"{profile.id}: {pick(profile.name, 'zh_CN')} — {len(rows)} rules with a source")
        for key, value, seed, regime, words in rows:
            print(f"- {key} = {value}")
            print(f"    {regime or '-'} · {seed or '-'} · {words}")
    if not rows:
        print("(no [[sources]] in this profile)")
    return 0


def run_profiles_check(args: argparse.Namespace) -> int:
    directory = _profiles_dir(args)
    names = args.names or list(profile_files(directory))
    failed = 0
    for name in names:
        try:
            profile = load_profile(name, directory)
        except ProfileError as exc:
            failed += 1
            print(f"FAIL {name}")
            print(str(exc), file=sys.stderr)
            continue
        print(f"ok   {name} ({profile.id})")
    if failed:
        print(f"{failed} of {len(names)} profile(s) invalid", file=sys.stderr)
    return 1 if failed else 0


def describe_profile(profile: Profile, lang: str) -> list[str]:
    """Human-readable summary of a merged profile."""

    def dur(spec: Any) -> str:
        return str(spec.to_duration()) if spec is not None else "-"

    hours = profile.office_hours
    lines = [
        f"{profile.id}: {pick(profile.name, lang)}",
        pick(profile.description, lang),
        "",
        f"extends: {profile.extends or '-'}   default language: {profile.language}",
        f"24-hour duty: {'yes' if profile.duty_24h else 'no'}   office hours: "
        f"{hours.start:%H:%M}–{hours.end:%H:%M}"
        f"{' (clock units count only inside)' if hours.clock_in_office_hours else ''}",
        f"anonymous filing: {'allowed' if profile.anonymous_allowed else 'not allowed'}   "
        f"retention: {profile.retention_years} years",
        "",
        "categories:",
    ]
    for c in profile.categories:
        extra = ", ".join(
            x for x in (c.complexity, c.default_severity and f"default {c.default_severity}") if x
        )
        lines.append(f"  {c.id}: {pick(c.label, lang)}" + (f" [{extra}]" if extra else ""))
        lines += [f"    {c.id}/{s.id}: {pick(s.label, lang)}" for s in c.subcategories]
    lines.append(
        "severities: " + ", ".join(f"{s.id} ({pick(s.label, lang)})" for s in profile.severities)
    )
    lines.append("exclusions:")
    for e in profile.exclusions:
        lines.append(f"  {e.id}: {pick(e.label, lang)} → {pick(e.guidance, lang)}")
    lines.append("intake form:")
    for f in profile.intake.fields:
        flag = "required" if f.required else "optional"
        lines.append(f"  {f.id} ({f.type}, {flag}): {pick(f.prompt, lang)}")
    lines.append("deadlines:")
    for stage in STAGES:
        for rule in getattr(profile.deadlines, stage):
            selector = ", ".join(
                f"{key}={value}"
                for key, value in (
                    ("category", rule.category),
                    ("complexity", rule.complexity),
                    ("severity", rule.severity),
                )
                if value is not None
            )
            lines.append(f"  {stage}{f' [{selector}]' if selector else ''}: {dur(rule)}")
    if profile.extension is not None:
        ext = profile.extension
        lines.append(
            f"extension: at most {ext.max_count} × {dur(ext.max)}"
            f"{', with approval' if ext.requires_approval else ''}"
            f"{', complainant told' if ext.notify_complainant else ''}"
        )
    else:
        lines.append("extension: none")
    if profile.revisit is not None:
        r = profile.revisit
        lines.append(
            f"revisit: after {dur(r.delay)}; survey reminder {dur(r.survey_reminder)}; "
            f"closed without answer after {dur(r.no_response_close)}; unsatisfied → {r.unsatisfied}"
            + (f" (due {dur(r.supervisor_revisit_due)})" if r.supervisor_revisit_due else "")
        )
    reminders = ", ".join(dur(b) for b in profile.reminders.before) or "-"
    lines.append(
        f"reminders before due: {reminders}; escalation every "
        f"{dur(profile.reminders.escalation_interval)}"
    )
    lines.append(
        f"reply: written reply to written complaint: "
        f"{'yes' if profile.reply.written_reply_for_written_complaint else 'no'}; "
        f"disputed result → {profile.reply.disputed_result}"
    )
    return lines
