"""`complaintdesk migrate`: apply the committed migrations."""

from __future__ import annotations

import argparse
import asyncio

from config.settings import get_settings
from models.db import migrate


def _run_migrate(args: argparse.Namespace) -> int:
    url = args.db or get_settings().database_url
    asyncio.run(migrate(url))
    print(f"migrations applied to {url}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="apply database migrations (SQLite or PostgreSQL)",
        description="Create or upgrade the schema of COMPLAINTDESK_DATABASE_URL (or --db).",
    )
    parser.add_argument("--db", help="database URL (default: COMPLAINTDESK_DATABASE_URL)")
    parser.set_defaults(func=_run_migrate)
