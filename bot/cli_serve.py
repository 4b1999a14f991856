"""`complaintdesk demo` and `complaintdesk run`: serve the web chat (and configured channels)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from bot.app import create_app
from bot.demo import DemoSignIn, ensure_demo_organisation, ensure_demo_staff
from config.profiles import ProfileError, load_profile
from config.settings import Settings, get_settings, settings_with

DEFAULT_DEMO_DB = "complaintdesk-demo.sqlite3"
DEFAULT_DEMO_PROFILE = "gov-window"


def _display_host(host: str) -> str:
    """A host to put in a URL the person can open (a wildcard address is not one)."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def webchat_url(settings: Settings) -> str:
    return f"http://{_display_host(settings.host)}:{settings.port}/webchat"


def serve(app: web.Application, settings: Settings, banner: str | Callable[[], str]) -> int:
    """Run until Ctrl-C (or SIGTERM); print `banner` once the port is listening (a callable
    is asked then, after the start-up hooks have run)."""

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # one line per request is noise
    logging.getLogger("tortoise").setLevel(logging.WARNING)  # connection open/close chatter

    def announce(_: str) -> None:
        print(banner() if callable(banner) else banner, flush=True)

    try:
        web.run_app(app, host=settings.host, port=settings.port, print=announce)
    except OSError as error:
        print(f"cannot listen on {settings.host}:{settings.port}: {error}", file=sys.stderr)
        return 1
    return 0


def _check_profile(settings: Settings) -> bool:
    try:
        load_profile(settings.profile, settings.profiles_dir)
    except (ProfileError, FileNotFoundError, KeyError, ValueError) as error:
        print(f"profile {settings.profile!r}: {error}", file=sys.stderr)
        return False
    return True


def _run_demo(args: argparse.Namespace) -> int:
    db = Path(args.db).expanduser().resolve()
    settings = settings_with(
        database_url=f"sqlite://{db}",
        profile=args.profile,
        host=args.host,
        port=args.port,
        # Uploaded photos next to the demo database, so deleting both starts afresh.
        data_dir=db.parent / f"{db.stem}-files",
    )
    if not _check_profile(settings):
        return 2
    app = create_app(settings, scheduler=True)
    signins: list[DemoSignIn] = []

    async def seed(_: web.Application) -> None:
        await ensure_demo_organisation(settings.profile)
        signins.extend(await ensure_demo_staff(settings.profile, datetime.now(UTC)))

    app.on_startup.append(seed)  # after the database is opened
    url = webchat_url(settings)
    desk = url.removesuffix("/webchat") + "/desk"

    def banner() -> str:
        lines = [
            f"complaintdesk demo ({settings.profile}) on {db}",
            f"Complainants: open {url} in a browser.",
            f"Staff: open {desk} and sign in (passwords are new at every start):",
        ]
        lines += [f"  {s.role:<16} {s.login:<11} {s.password}   {s.name}" for s in signins]
        lines.append("Ctrl-C to stop.")
        return "\n".join(lines)

    return serve(app, settings, banner)


def _run(args: argparse.Namespace) -> int:
    base = get_settings()
    overrides = {"host": args.host, "port": args.port}
    settings = base.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    if not _check_profile(settings):
        return 2
    channels = ["web chat"]
    if settings.telegram_token:
        channels.append("Telegram (webhook)" if settings.public_url else "Telegram (polling)")
    if settings.wechat_token:
        channels.append("WeChat")
    banner = f"complaintdesk serving {', '.join(channels)}; web chat at {webchat_url(settings)}"
    return serve(create_app(settings, scheduler=True), settings, banner)


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError("a port is 1-65535")
    return port


def _add_listen_arguments(parser: argparse.ArgumentParser) -> None:
    host = os.environ.get("COMPLAINTDESK_HOST", "127.0.0.1")
    port = os.environ.get("COMPLAINTDESK_PORT", "8080")
    parser.add_argument("--host", help=f"address to listen on (COMPLAINTDESK_HOST, now {host})")
    parser.add_argument(
        "--port", type=_port, help=f"port to listen on (COMPLAINTDESK_PORT, now {port})"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="try it: the web chat and the office desk on SQLite at http://127.0.0.1:8080",
        description=(
            "Start the web chat and the browser desk on an SQLite file with a demo "
            "organisation fitting the profile, print the addresses and a sign-in for each "
            "staff role, and serve until Ctrl-C. File a complaint at /webchat and handle it "
            "at /desk."
        ),
    )
    demo.add_argument(
        "--db", default=DEFAULT_DEMO_DB, help=f"SQLite file (default: ./{DEFAULT_DEMO_DB})"
    )
    demo.add_argument(
        "--profile",
        default=DEFAULT_DEMO_PROFILE,
        help=f"policy profile id or TOML path (default: {DEFAULT_DEMO_PROFILE})",
    )
    _add_listen_arguments(demo)
    demo.set_defaults(func=_run_demo)

    run = subparsers.add_parser(
        "run",
        help="serve the web chat and the configured channels (Telegram, WeChat)",
        description=(
            "Serve from the settings (COMPLAINTDESK_* or COMPLAINTDESK_CONFIG): the web chat "
            "always; Telegram when COMPLAINTDESK_TELEGRAM_TOKEN is set (webhook mode when "
            "COMPLAINTDESK_PUBLIC_URL is set, else long polling); WeChat at /wechat when "
            "COMPLAINTDESK_WECHAT_TOKEN is set."
        ),
    )
    _add_listen_arguments(run)
    run.set_defaults(func=_run)
