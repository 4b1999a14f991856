"""The `complaintdesk` command line. Each area registers its own sub-commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules with a `register(subparsers)` function, in the order their commands are listed.
REGISTRARS = (
    "bot.cli_db",
    "bot.cli_profiles",
    "bot.cli_serve",
    "bot.cli_staff",
    "bot.cli_wechat",
    "scheduler.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="complaintdesk",
        description=(
            "Complaint intake and handling over Telegram, WeChat and web chat, with deadlines "
            "in statutory working days. Settings: COMPLAINTDESK_* environment variables or the "
            "TOML file named by COMPLAINTDESK_CONFIG."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in REGISTRARS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
