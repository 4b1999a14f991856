"""The `complaintdesk` command line. Each area registers its own sub-commands.

Sub-commands are imported lazily: `complaintdesk --help` builds only the list below, and
`complaintdesk staff list` imports only the module that defines `staff`, so a command starts
without loading the web server, the ORM and both messaging libraries.

Errors an operator can fix are answered in one line (exit 2 for settings, 1 otherwise): bad
settings name the setting, an unreachable database says so. `| head` closing the pipe is not an
error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Modules with a `register(subparsers)` function, in the order their commands are listed.
REGISTRARS = (
    "bot.cli_db",
    "bot.cli_profiles",
    "bot.cli_serve",
    "bot.cli_staff",
    "bot.cli_tokens",
    "bot.cli_wechat",
    "scheduler.cli",
)

# Each command's module and one-line help, for the top-level list without importing them.
# A registrar missing here still works: it is imported to build the list (slower --help).
COMMANDS: dict[str, tuple[str, str]] = {
    "migrate": ("bot.cli_db", "apply database migrations (SQLite or PostgreSQL)"),
    "config": ("bot.cli_db", "print the effective settings (secrets masked)"),
    "attachments": ("bot.cli_db", "move stored attachments to the configured storage"),
    "profiles": ("bot.cli_profiles", "list, show and check policy profiles"),
    "deadline": ("bot.cli_profiles", "when a stage is due under a profile"),
    "demo": ("bot.cli_serve", "try it: the web chat on SQLite at http://127.0.0.1:8080/webchat"),
    "run": ("bot.cli_serve", "serve the web chat and the configured channels (Telegram, WeChat)"),
    "staff": ("bot.cli_staff", "invite, list and disable staff members"),
    "departments": ("bot.cli_staff", "import and list departments (the escalation chain)"),
    "tokens": ("bot.cli_tokens", "create, list and revoke API tokens (REST API, Open311)"),
    "wechat": ("bot.cli_wechat", "WeChat Official Account tasks"),
    "jobs": ("scheduler.cli", "run a scheduler job once (sweep, report, retention, recompute)"),
}

DESCRIPTION = (
    "Complaint intake and handling over Telegram, WeChat and web chat, with deadlines "
    "in statutory working days. Settings: COMPLAINTDESK_* environment variables or the "
    "TOML file named by COMPLAINTDESK_CONFIG."
)


ALL = "*"  # build every command in full (tests, completion generators)


def build_parser(command: str | None = ALL) -> argparse.ArgumentParser:
    """The parser. With a `command` name only that command's module is imported and built in
    full; with None only the list of commands (what `--help` shows)."""
    parser = argparse.ArgumentParser(prog="complaintdesk", description=DESCRIPTION)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    listed = {module for module, _ in COMMANDS.values()}
    if command == ALL:
        wanted = set(REGISTRARS)
    else:
        wanted = {COMMANDS[command][0]} if command in COMMANDS else set()
    for name in REGISTRARS:
        if name in wanted or name not in listed:
            importlib.import_module(name).register(subparsers)
    for name, (_, help_text) in COMMANDS.items():
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=help_text, add_help=False)
    # Listed in the table's order, whichever registrar added them first.
    order = {name: i for i, name in enumerate(COMMANDS)}
    subparsers._choices_actions.sort(key=lambda action: order.get(action.dest, len(order)))
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(_command_of(args_list))
        args = parser.parse_args(args_list)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, where a closed pipe can still be caught
        return code
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit-time flush
        # from raising again on the closed stdout.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        from bot.cli_errors import explain

        message = explain(error)
        if message is None:
            raise
        print(f"complaintdesk: {message}", file=sys.stderr)
        return 2 if message.startswith("setting") else 1


if __name__ == "__main__":
    sys.exit(main())
