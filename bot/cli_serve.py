"""`complaintdesk demo` and `complaintdesk run`: serve the web chat (and configured channels).

Both bind their port first — before the database is migrated, the scheduler started or the
platforms contacted — so a second process started on a taken port stops at once, having changed
nothing. The web application is imported only then (the CLI's other commands need none of it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from bot.demo import DemoSignIn
    from config.settings import Settings

DEFAULT_DEMO_DB = "complaintdesk-demo.sqlite3"
DEFAULT_DEMO_PROFILE = "gov-window"


def webchat_url(settings: Settings) -> str:
    return f"{settings.listening_url}/webchat"


def bind(settings: Settings) -> socket.socket | None:
    """The listening socket, or None (said in one line) when the address is taken or invalid."""
    try:
        infos = socket.getaddrinfo(
            settings.host or None, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
    except OSError as error:
        reason = error.strerror or str(error)
        print(
            f"complaintdesk: cannot listen on {settings.host}:{settings.port}: {reason} "
            "(COMPLAINTDESK_HOST / COMPLAINTDESK_PORT, or --host / --port)",
            file=sys.stderr,
        )
        return None
    sock.set_inheritable(False)
    return sock


# The cyclic collector's thresholds while serving (CPython's default: 700, 10, 10). A turn
# makes no reference cycles (a worker under load collected 0 objects in 4 s), yet with 200
# dialogs in flight every young collection walks the objects of the turns still waiting, and
# the default thresholds spent 19 % of the worker's CPU in the collector (gc.callbacks timing,
# bench/inbound.py, 200 users on PostgreSQL); at these, 1 %. Cycles still get collected: after
# 20 000 net allocations instead of 700.
SERVING_GC_THRESHOLDS = (20_000, 20, 20)


async def _freeze_what_start_up_made(_: web.Application) -> None:
    """Leave the objects of start-up (modules, profiles, catalogs: ~150 000) out of every later
    garbage collection: a full collection over them took ~80 ms, a pause every request in
    flight waited through. Appended last, so the other start-up hooks have run."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)


async def _open_the_pool(_: web.Application) -> None:
    """The database's connections opened before the first request (models.db.open_pool),
    with the statements of every dialog step looked up on each."""
    from bot.turn_store import STEP_STATEMENTS
    from models.db import open_pool

    await open_pool(STEP_STATEMENTS)


def serve(
    app: web.Application,
    settings: Settings,
    banner: str | Callable[[], str],
    sock: socket.socket,
) -> int:
    """Run on the bound `sock` until Ctrl-C (or SIGTERM); print `banner` once serving (a
    callable is asked then, after the start-up hooks have run)."""
    from aiohttp import web

    from bot.logs import setup_logging

    setup_logging(level=settings.log_level, format=settings.log_format, tz=settings.tz)

    def announce(_: str) -> None:
        print(banner() if callable(banner) else banner, flush=True)

    app.on_startup.append(_open_the_pool)
    app.on_startup.append(_freeze_what_start_up_made)
    web.run_app(app, sock=sock, print=announce, access_log=None, loop=_event_loop(settings))
    return 0


def _event_loop(settings: Settings) -> asyncio.AbstractEventLoop:
    """uvloop's loop unless the settings say otherwise: its sockets and callbacks are in C,
    where most of a worker's time between the database and the Bot API goes."""
    if settings.uvloop:
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _check_profile(settings: Settings) -> bool:
    from config.profiles import ProfileError, load_profile

    try:
        load_profile(settings.profile, settings.profiles_dir)
    except (ProfileError, FileNotFoundError, KeyError, ValueError) as error:
        print(f"complaintdesk: profile {settings.profile!r}: {error}", file=sys.stderr)
        return False
    return True


def _run_demo(args: argparse.Namespace) -> int:
    from config.settings import settings_with

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
    sock = bind(settings)
    if sock is None:
        return 1
    from bot.app import create_app
    from bot.demo import ensure_demo_organisation, ensure_demo_staff

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

    return serve(app, settings, banner, sock)


def _run(args: argparse.Namespace) -> int:
    from config.settings import get_settings

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
    sock = bind(settings)
    if sock is None:
        return 1
    from bot.app import create_app

    return serve(create_app(settings, scheduler=True), settings, banner, sock)


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
