"""`complaintdesk migrate`, `config` and `attachments migrate`: the database and the settings.

Heavy modules (the ORM, the settings model) are imported inside the commands, so listing the
commands stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

DB_HELP = "database URL (default: COMPLAINTDESK_DATABASE_URL)"


def _run_migrate(args: argparse.Namespace) -> int:
    from bot.cli_errors import mask_url
    from config.settings import get_settings
    from models.db import migrate

    url = args.db or get_settings().database_url
    asyncio.run(migrate(url))
    print(f"migrations applied to {mask_url(url)}")
    return 0


def effective_settings() -> dict[str, Any]:
    """Every setting with its effective value and where it came from; secrets masked."""
    import os

    from bot.cli_errors import SECRET_FIELDS, mask_secret, mask_url
    from config.settings import Settings, get_settings

    settings = get_settings()
    shown: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is not None and name in SECRET_FIELDS:
            value = mask_secret(str(value))
        elif isinstance(value, str) and "://" in value:
            value = mask_url(value)
        elif value is not None and not isinstance(value, int | float | bool | str):
            value = str(value)
        env = f"COMPLAINTDESK_{name.upper()}"
        if env in os.environ:
            source = "environment"
        elif name in settings.model_fields_set:
            source = "config file"
        else:
            source = "default"
        shown[name] = {"value": value, "from": source}
    return shown


def _run_config(args: argparse.Namespace) -> int:
    import os

    shown = effective_settings()
    if args.json:
        print(json.dumps({k: v["value"] for k, v in shown.items()}, ensure_ascii=False, indent=2))
        return 0
    config_file = os.environ.get("COMPLAINTDESK_CONFIG")
    print(f"# config file: {config_file or '(none; COMPLAINTDESK_CONFIG is not set)'}")
    width = max(len(name) for name in shown)
    for name, entry in shown.items():
        value = "-" if entry["value"] is None else entry["value"]
        print(f"{name.ljust(width)}  {value}  ({entry['from']})")
    return 0


def _run_attachments_migrate(args: argparse.Namespace) -> int:
    from bot.attachments import migrate_attachments
    from bot.storage import store_for
    from config.settings import get_settings
    from models.db import database

    settings = get_settings()
    target = store_for(args.to or settings.attachment_storage, settings.data_dir)

    async def work() -> str:
        async with database(args.db or settings.database_url):
            report = await migrate_attachments(target)
        line = f"attachments: {report.moved} moved to {target.describe()}, {report.already} there"
        if report.missing:
            ids = " ".join(str(i) for i in report.missing)
            line += f"; {len(report.missing)} unreadable where their rows say (ids {ids})"
        return line

    line = asyncio.run(work())
    print(line)
    return 1 if "unreadable" in line else 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "migrate",
        help="apply database migrations (SQLite or PostgreSQL)",
        description="Create or upgrade the schema of COMPLAINTDESK_DATABASE_URL (or --db).",
    )
    parser.add_argument("--db", help=DB_HELP)
    parser.set_defaults(func=_run_migrate)

    config = subparsers.add_parser(
        "config",
        help="print the effective settings (secrets masked)",
        description="Each setting's effective value and whether it came from the environment, "
        "the COMPLAINTDESK_CONFIG file or the default. Tokens, secrets and URL passwords are "
        "masked.",
    )
    config.add_argument("--json", action="store_true", help="values only, as JSON")
    config.set_defaults(func=_run_config)

    attachments = subparsers.add_parser(
        "attachments",
        help="move stored attachments to the configured storage",
        description="Stored files and photos: `migrate` copies every attachment that is not in "
        "the configured storage (COMPLAINTDESK_ATTACHMENT_STORAGE, or --to) there and points "
        "its row at the copy. Safe to interrupt and run again; the old copies are left in "
        "place for you to delete after a backup.",
    )
    tasks = attachments.add_subparsers(dest="attachments_task", metavar="TASK", required=True)
    move = tasks.add_parser("migrate", help="copy attachments into the configured storage")
    move.add_argument("--to", help="database, file or s3://BUCKET[/PREFIX] (default: settings)")
    move.add_argument("--db", help=DB_HELP)
    move.set_defaults(func=_run_attachments_migrate)
