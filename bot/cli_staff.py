"""CLI commands `staff invite|create|list|disable` and `departments import|list`.

The Telegram deep link needs the bot's username: `--bot NAME`, or the environment variable
COMPLAINTDESK_TELEGRAM_BOT_USERNAME (read directly, it is not a Settings field).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from config.settings import Settings, get_settings
from models.db import close_db, init_db
from models.entities import Department
from models.staffing import (
    STAFF_ROLES,
    DepartmentImportError,
    Invite,
    create_invite,
    disable_staff,
    import_departments,
    invite_link,
    list_staff,
    read_department_file,
)

BOT_USERNAME_ENV = "COMPLAINTDESK_TELEGRAM_BOT_USERNAME"


def _with_db(args: argparse.Namespace, work: Callable[[], Awaitable[int]]) -> int:
    async def run() -> int:
        await init_db(args.db or get_settings().database_url)
        try:
            return await work()
        finally:
            await close_db()

    return asyncio.run(run())


async def _invited(args: argparse.Namespace, staff_id: int | None = None) -> Invite | None:
    """The invite the command asks for, its staff member said on stdout; None (the error said
    on stderr) for an unknown department or staff member or a wrong role."""
    try:
        invite = await create_invite(
            now=datetime.now(UTC),
            name=args.name,
            role=args.role,
            department_code=args.department,
            staff_id=staff_id,
            language=args.language,
        )
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    print(f"staff #{invite.staff.id} {invite.staff.name} ({invite.staff.role})")
    return invite


def _expiry(invite: Invite, settings: Settings) -> str:
    return invite.expires_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")


def _invite(args: argparse.Namespace) -> int:
    bot = args.bot or os.environ.get(BOT_USERNAME_ENV)

    async def work() -> int:
        invite = await _invited(args, staff_id=args.id)
        if invite is None:
            return 1
        print(f"code: {invite.code}  (one use, expires {_expiry(invite, get_settings())})")
        if bot:
            print(f"telegram: {invite_link(bot, invite.code)}")
        else:
            print(f"telegram: pass --bot or set {BOT_USERNAME_ENV} to print the link")
        print(f"wechat: send the code as a message to the official account: {invite.code}")
        desk = desk_invite_link(get_settings(), invite.code)
        print(f"desk: set the browser-desk password at {desk}")
        return 0

    return _with_db(args, work)


def desk_base_url(settings: Settings) -> str:
    """Where staff open the browser desk: the public URL, else the address `run` listens on."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return settings.listening_url


def desk_invite_link(settings: Settings, code: str) -> str:
    return f"{desk_base_url(settings)}/desk/invite/{code}"


def _create(args: argparse.Namespace) -> int:
    """A new staff member with a one-time link to set their desk password (the first admin)."""

    async def work() -> int:
        invite = await _invited(args)
        if invite is None:
            return 1
        settings = get_settings()
        print(f"desk sign-in link (one use, expires {_expiry(invite, settings)}):")
        print(f"  {desk_invite_link(settings, invite.code)}")
        print(f"the same code links a chat too: {invite.code}")
        return 0

    return _with_db(args, work)


def _list(args: argparse.Namespace) -> int:
    async def work() -> int:
        tz = get_settings().tz
        everyone = await list_staff()
        if not everyone:
            print(
                "no staff yet: invite someone with `complaintdesk staff invite --name NAME "
                "--role ROLE --department CODE` (departments first: `departments import FILE`)",
                file=sys.stderr,
            )
        for staff in everyone:
            chats = [
                f"{name}:{value}"
                for name, value in (
                    ("telegram", staff.telegram_chat_id),
                    ("wechat", staff.wechat_openid),
                )
                if value
            ]
            if staff.invite_expires_at is not None:
                local = staff.invite_expires_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
                chats.append(f"invite pending until {local}")
            department = staff.department.code if staff.department else "-"
            status = "active" if staff.active else "disabled"
            print(
                f"{staff.id}\t{staff.name}\t{staff.role}\t{department}\t{status}\t"
                + (", ".join(chats) or "not linked")
            )
        return 0

    return _with_db(args, work)


def _disable(args: argparse.Namespace) -> int:
    async def work() -> int:
        try:
            staff = await disable_staff(args.id)
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"staff #{staff.id} {staff.name} disabled")
        return 0

    return _with_db(args, work)


def _import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        specs = read_department_file(path)
    except (OSError, ValueError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 1

    async def work() -> int:
        try:
            result = await import_departments(specs)
        except DepartmentImportError as exc:
            for problem in exc.problems:
                print(f"error: {path}: {problem}", file=sys.stderr)
            return 1
        print(
            f"departments: {result.created} created, {result.updated} updated; "
            f"heads created: {result.heads_created}"
        )
        return 0

    return _with_db(args, work)


def _departments_list(args: argparse.Namespace) -> int:
    async def work() -> int:
        departments = await Department.all().order_by("id").prefetch_related("parent")
        if not departments:
            print(
                "no departments yet: import them with `complaintdesk departments import FILE` "
                "(see config/departments.example.toml)",
                file=sys.stderr,
            )
        for department in departments:
            parent = department.parent.code if department.parent else "-"
            print(f"{department.id}\t{department.code}\t{department.name}\tparent: {parent}")
        return 0

    return _with_db(args, work)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `staff` and `departments` commands."""
    staff = subparsers.add_parser("staff", help="invite, list and disable staff members")
    staff_sub = staff.add_subparsers(dest="staff_command", metavar="ACTION", required=True)

    invite = staff_sub.add_parser(
        "invite",
        help="create a staff member (or re-invite one) and print a one-time code and link",
        description="The code binds the chat that redeems it to the staff record; it works "
        "once and expires in 7 days.",
    )
    invite.add_argument("--name", help="the staff member's name")
    invite.add_argument("--role", choices=[str(r) for r in STAFF_ROLES])
    invite.add_argument("--department", metavar="CODE", help="department code")
    invite.add_argument("--id", type=int, help="re-invite this existing staff member instead")
    invite.add_argument("--language", default="zh_CN", choices=("zh_CN", "zh_TW", "en"))
    invite.add_argument("--bot", help=f"Telegram bot username (default: ${BOT_USERNAME_ENV})")
    invite.add_argument("--db", help="database URL (default: COMPLAINTDESK_DATABASE_URL)")
    invite.set_defaults(func=_invite)

    create = staff_sub.add_parser(
        "create",
        help="create a staff member and print a one-time link to set their desk password",
        description="For the first administrator: open the link in a browser, choose a login "
        "name and password, then sign in at /desk. The link's code also links a Telegram or "
        "WeChat chat (one use each, 7 days).",
    )
    create.add_argument("--name", required=True, help="the staff member's name")
    create.add_argument("--role", required=True, choices=[str(r) for r in STAFF_ROLES])
    create.add_argument("--department", metavar="CODE", help="department code")
    create.add_argument("--language", default="zh_CN", choices=("zh_CN", "zh_TW", "en"))
    create.add_argument("--db", help="database URL (default: COMPLAINTDESK_DATABASE_URL)")
    create.set_defaults(func=_create)

    listing = staff_sub.add_parser("list", help="list staff members and their linked chats")
    listing.add_argument("--db", help="database URL (default: COMPLAINTDESK_DATABASE_URL)")
    listing.set_defaults(func=_list)

    disable = staff_sub.add_parser("disable", help="disable a staff member")
    disable.add_argument("id", type=int, help="staff id (see `staff list`)")
    disable.add_argument("--db", help="database URL (default: COMPLAINTDESK_DATABASE_URL)")
    disable.set_defaults(func=_disable)

    departments = subparsers.add_parser(
        "departments", help="import and list departments (the escalation chain)"
    )
    dep_sub = departments.add_subparsers(
        dest="departments_command", metavar="ACTION", required=True
    )
    importing = dep_sub.add_parser(
        "import",
        help="create/update departments from a TOML or CSV file",
        description="TOML: [[department]] tables; CSV: header code,name,parent,head. Parents "
        "are department codes; unknown parents and cycles are refused before anything is "
        "written. See config/departments.example.toml.",
    )
    importing.add_argument("file", help="a .toml or .csv file")
    importing.add_argument("--db", help="database URL (default: COMPLAINTDESK_DATABASE_URL)")
    importing.set_defaults(func=_import)
    dep_list = dep_sub.add_parser("list", help="list departments with their parents")
    dep_list.add_argument("--db", help="database URL (default: COMPLAINTDESK_DATABASE_URL)")
    dep_list.set_defaults(func=_departments_list)
