"""`complaintdesk wechat menu`: create the Official Account's custom menu through the API.

The menu has three click buttons — file a complaint / my complaints / help — whose keys the
`/wechat` webhook maps to the dialog's /start, /status and /help (bot.wechat.MENU_COMMANDS).
The access_token is taken from (and cached in) the database, like the running workers do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from wechatpy.exceptions import WeChatClientException

from bot.wechat import WeChatApi, menu_definition
from config.settings import LANGUAGES, Settings, get_settings
from models.db import close_db, init_db


async def create_menu(settings: Settings, menu: dict[str, Any]) -> None:
    """Replace the account's custom menu with `menu` (needs appid, secret and the database)."""
    api = WeChatApi.from_settings(settings)
    await init_db(settings.database_url)
    try:
        await api.create_menu(menu)
    finally:
        await close_db()


def _run_menu(args: argparse.Namespace) -> int:
    settings = get_settings()
    menu = menu_definition(args.language or settings.language)
    if args.dry_run:
        print(json.dumps(menu, ensure_ascii=False, indent=2))
        return 0
    if not settings.wechat_appid or not settings.wechat_secret:
        print("set COMPLAINTDESK_WECHAT_APPID and COMPLAINTDESK_WECHAT_SECRET first")
        return 2
    try:
        asyncio.run(create_menu(settings, menu))
    except WeChatClientException as exc:
        print(f"WeChat refused the menu: {exc.errcode} {exc.errmsg}")
        return 1
    labels = " / ".join(button["name"] for button in menu["button"])
    print(f"custom menu created: {labels}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "wechat",
        help="WeChat Official Account tasks",
        description="Tasks for the WeChat Official Account channel.",
    )
    tasks = parser.add_subparsers(dest="wechat_task", metavar="TASK")
    menu = tasks.add_parser(
        "menu",
        help="create the custom menu (file a complaint / my complaints / help)",
        description=(
            "Create the account's custom menu through the WeChat API "
            "(COMPLAINTDESK_WECHAT_APPID, _SECRET and, for tests, _API_BASE)."
        ),
    )
    menu.add_argument("--language", choices=LANGUAGES, help="menu language (default: settings)")
    menu.add_argument("--dry-run", action="store_true", help="print the menu JSON, call nothing")
    menu.set_defaults(func=_run_menu)
    parser.set_defaults(func=lambda _args: parser.print_help() or 2)
