"""Staff onboarding and the department tree (the escalation chain).

An administrator invites a staff member from the command line; the invite is a one-time code
the person redeems from their chat (Telegram deep link `/start inv_...`, or the same text sent
to the WeChat account), which binds that chat identity to the staff record. The code is random
(128 bits), expires, and works once: a second redemption is refused as "already used", so a
forwarded link cannot take over someone's desk.

Departments come from a TOML or CSV file (code, name, parent code, head's name). The parent
links are the escalation chain a missed deadline climbs; importing refuses unknown parents and
cycles before writing anything.
"""

from __future__ import annotations

import csv
import io
import secrets
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from models.db import select_models
from models.desk_auth import DeskSession
from models.entities import Channel, Department, Staff
from models.workflow import Role

INVITE_PREFIX = "inv_"
INVITE_TTL = timedelta(days=7)
STAFF_ROLES: tuple[Role, ...] = (
    Role.INTAKE_CLERK,
    Role.HANDLER,
    Role.DEPARTMENT_HEAD,
    Role.SUPERVISOR,
    Role.ADMIN,
)


# -- invites --------------------------------------------------------------------------------


def new_invite_code() -> str:
    """A one-time code that fits a Telegram deep link ([A-Za-z0-9_-], at most 64 chars)."""
    return INVITE_PREFIX + secrets.token_urlsafe(16)


def looks_like_invite(payload: str | None) -> bool:
    """Whether a /start payload is a staff invite rather than a citizen deep link."""
    return payload is not None and payload.strip().startswith(INVITE_PREFIX)


def invite_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username.lstrip('@')}?start={code}"


class InviteRefusal(StrEnum):
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    DISABLED = "disabled"
    CHAT_TAKEN = "chat_taken"
    UNSUPPORTED_CHANNEL = "unsupported_channel"


@dataclass(frozen=True)
class Invite:
    staff: Staff
    code: str
    expires_at: datetime


async def create_invite(
    *,
    now: datetime,
    name: str | None = None,
    role: Role | str | None = None,
    department_code: str | None = None,
    staff_id: int | None = None,
    language: str = "zh_CN",
    ttl: timedelta = INVITE_TTL,
) -> Invite:
    """Create a staff member with an invite, or re-invite an existing one (`staff_id`: a new
    phone, a lost chat). Raises LookupError for an unknown department or staff id."""
    code = new_invite_code()
    expires = now + ttl
    async with in_transaction() as conn:
        if staff_id is not None:
            staff = await Staff.filter(id=staff_id).using_db(conn).first()
            if staff is None:
                raise LookupError(f"no staff member with id {staff_id}")
            staff.invite_code, staff.invite_expires_at, staff.active = code, expires, True
            staff.invite_valid_until = expires
            await staff.save(using_db=conn)
            return Invite(staff, code, expires)
        if not name or role is None:
            raise ValueError("a new staff member needs a name and a role")
        role = Role(role)
        if role not in STAFF_ROLES:
            raise ValueError(f"{role} is not a staff role")
        department = None
        if department_code:
            department = await Department.filter(code=department_code).using_db(conn).first()
            if department is None:
                raise LookupError(f"no department with code {department_code!r}")
        staff = await Staff.create(
            name=name,
            role=role,
            department=department,
            invite_code=code,
            invite_expires_at=expires,
            invite_valid_until=expires,
            language=language,
            using_db=conn,
        )
    return Invite(staff, code, expires)


async def redeem_invite(
    code: str,
    channel: Channel | str,
    chat_id: str,
    *,
    now: datetime,
    conn: BaseDBAsyncClient | None = None,
) -> Staff | InviteRefusal:
    """Bind `chat_id` on `channel` to the staff member invited with `code`.

    A redeemed invite keeps its code with no expiry, so using it again is told apart from an
    unknown code. The conditional update makes two simultaneous redemptions end with one
    winner.
    """
    channel = Channel(channel)
    if channel not in (Channel.TELEGRAM, Channel.WECHAT):
        return InviteRefusal.UNSUPPORTED_CHANNEL
    column = "telegram_chat_id" if channel == Channel.TELEGRAM else "wechat_openid"
    staff = await Staff.filter(invite_code=code.strip()).using_db(conn).first()
    if staff is None:
        return InviteRefusal.UNKNOWN
    if staff.invite_expires_at is None:
        return InviteRefusal.USED
    if not staff.active:
        return InviteRefusal.DISABLED
    if staff.invite_expires_at <= now:
        return InviteRefusal.EXPIRED
    holder = await Staff.filter(**{column: chat_id}).using_db(conn).first()
    if holder is not None and holder.id != staff.id:
        return InviteRefusal.CHAT_TAKEN
    claimed = (
        await Staff.filter(id=staff.id, invite_expires_at=staff.invite_expires_at)
        .using_db(conn)
        .update(invite_expires_at=None, **{column: chat_id})
    )
    if not claimed:
        return InviteRefusal.USED
    await staff.refresh_from_db(using_db=conn)
    return staff


async def staff_for_chat(
    channel: Channel | str, chat_id: str, conn: BaseDBAsyncClient | None = None
) -> Staff | None:
    """The active staff member bound to this chat identity, if any."""
    channel = Channel(channel)
    column = _CHAT_COLUMNS.get(channel)
    if column is None:
        return None
    # Asked on every chat's first message, so written out (models.db.select_models).
    found = await select_models(
        Staff,
        conn,
        f'"{column}" = ? AND "active"',
        [chat_id],
        tail=' ORDER BY "id" LIMIT 1',
    )
    return found[0] if found else None


_CHAT_COLUMNS = {Channel.TELEGRAM: "telegram_chat_id", Channel.WECHAT: "wechat_openid"}


async def disable_staff(staff_id: int) -> Staff:
    """Switch a staff member off: no notifications, no actions, a pending invite void."""
    staff = await Staff.filter(id=staff_id).first()
    if staff is None:
        raise LookupError(f"no staff member with id {staff_id}")
    staff.active = False
    if staff.invite_expires_at is not None:
        staff.invite_code, staff.invite_expires_at = None, None
    staff.invite_valid_until = None  # nor may the browser desk use it
    await staff.save()
    await DeskSession.filter(staff_id=staff.id).delete()
    return staff


async def list_staff() -> list[Staff]:
    return await Staff.all().order_by("id").prefetch_related("department")


# -- departments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DepartmentSpec:
    code: str
    name: str
    parent: str | None = None
    head: str | None = None


class DepartmentImportError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _clean(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def parse_departments(text: str, fmt: str) -> list[DepartmentSpec]:
    """Rows of a TOML (`[[department]]` tables) or CSV (header: code,name,parent,head) file."""
    rows: list[dict[str, Any]]
    if fmt == "toml":
        data = tomllib.loads(text)
        rows = list(data.get("department", []))
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        raise ValueError(f"unknown department file format {fmt!r} (toml or csv)")
    specs: list[DepartmentSpec] = []
    problems: list[str] = []
    for index, row in enumerate(rows, start=1):
        code, name = _clean(row.get("code")), _clean(row.get("name"))
        if code is None or name is None:
            problems.append(f"row {index}: code and name are required")
            continue
        specs.append(DepartmentSpec(code, name, _clean(row.get("parent")), _clean(row.get("head"))))
    if problems:
        raise DepartmentImportError(problems)
    return specs


def check_department_tree(
    specs: list[DepartmentSpec], existing: dict[str, str | None] | None = None
) -> list[str]:
    """Problems with the tree the import would produce (empty when it is sound).

    `existing` maps codes already in the database to their parent codes; the file's rows
    replace those of the same code. Refuses duplicate codes, unknown parents and cycles.
    """
    problems: list[str] = []
    parents: dict[str, str | None] = dict(existing or {})
    seen: set[str] = set()
    for spec in specs:
        if spec.code in seen:
            problems.append(f"department {spec.code!r} appears twice")
        seen.add(spec.code)
        parents[spec.code] = spec.parent
    for spec in specs:
        if spec.parent is not None and spec.parent not in parents:
            problems.append(f"department {spec.code!r}: unknown parent {spec.parent!r}")
    reported: set[str] = set()
    for start in parents:
        path: list[str] = []
        current: str | None = start
        while current is not None and current in parents and current not in path:
            path.append(current)
            current = parents[current]
        if current is not None and current in path:
            cycle = path[path.index(current) :]
            if not reported.intersection(cycle):
                reported.update(cycle)
                chain = " → ".join([*cycle, current])
                problems.append(f"the parent links form a cycle: {chain}")
    return problems


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    heads_created: int


async def import_departments(specs: list[DepartmentSpec]) -> ImportResult:
    """Create or update the departments (by code), their parents and heads, atomically.

    A head is matched by name among the staff; when nobody has that name a staff record
    with the department_head role is created (invite it with `staff invite --id`).
    """
    async with in_transaction() as conn:
        rows = await Department.all().using_db(conn).prefetch_related("parent")
        existing = {d.code: (d.parent.code if d.parent else None) for d in rows}
        problems = check_department_tree(specs, existing)
        if problems:
            raise DepartmentImportError(problems)
        by_code = {d.code: d for d in rows}
        created = updated = heads = 0
        for spec in specs:
            department = by_code.get(spec.code)
            if department is None:
                department = await Department.create(code=spec.code, name=spec.name, using_db=conn)
                by_code[spec.code] = department
                created += 1
            else:
                department.name = spec.name
                await department.save(using_db=conn)
                updated += 1
        for spec in specs:
            department = by_code[spec.code]
            department.parent = by_code[spec.parent] if spec.parent else None  # type: ignore[assignment]
            await department.save(using_db=conn)
            if spec.head:
                head = await Staff.filter(name=spec.head).using_db(conn).first()
                if head is None:
                    await Staff.create(
                        name=spec.head,
                        role=Role.DEPARTMENT_HEAD,
                        department=department,
                        using_db=conn,
                    )
                    heads += 1
                else:
                    head.role, head.department = Role.DEPARTMENT_HEAD, department  # type: ignore[assignment]
                    await head.save(using_db=conn)
    return ImportResult(created, updated, heads)


def read_department_file(path: Path) -> list[DepartmentSpec]:
    fmt = path.suffix.lower().lstrip(".")
    return parse_departments(path.read_text(encoding="utf-8-sig"), fmt)


# -- escalation chain -----------------------------------------------------------------------


async def escalation_chain(
    department_id: int, conn: BaseDBAsyncClient | None = None
) -> list[Department]:
    """The department and its ancestors up to the root, nearest first."""
    chain: list[Department] = []
    current = await Department.filter(id=department_id).using_db(conn).first()
    while current is not None and all(d.id != current.id for d in chain):
        chain.append(current)
        parent_id = current.parent_id  # type: ignore[attr-defined]
        current = (
            await Department.filter(id=parent_id).using_db(conn).first() if parent_id else None
        )
    return chain


async def department_head(
    department_id: int, conn: BaseDBAsyncClient | None = None
) -> Staff | None:
    return (
        await Staff.filter(department_id=department_id, role=Role.DEPARTMENT_HEAD, active=True)
        .using_db(conn)
        .order_by("id")
        .first()
    )


async def escalation_heads(
    department_id: int, conn: BaseDBAsyncClient | None = None
) -> list[Staff]:
    """The active heads up the chain, nearest first: whom an overdue case goes to, in order."""
    heads = []
    for department in await escalation_chain(department_id, conn):
        head = await department_head(department.id, conn)
        if head is not None:
            heads.append(head)
    return heads


async def root_departments(conn: BaseDBAsyncClient | None = None) -> list[Department]:
    return await Department.filter(parent_id=None).using_db(conn).order_by("id")


# -- who runs the organisation from the browser desk ------------------------------------------


def may_manage_staff(staff: Staff) -> bool:
    """Invite, re-invite, change roles and disable: administrators."""
    return staff.active and Role(staff.role) == Role.ADMIN


def may_read_audit(staff: Staff) -> bool:
    """The audit log (who saw whose identity, who did what): supervisors and administrators."""
    return staff.active and Role(staff.role) in (Role.SUPERVISOR, Role.ADMIN)


def may_read_statistics(staff: Staff) -> bool:
    """The statistics and the periodic reports: supervisors and administrators (everything),
    department heads (their department's cases, by their case scope)."""
    return staff.active and Role(staff.role) in (Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT_HEAD)


async def change_role(staff_id: int, role: Role | str, department_id: int | None = None) -> Staff:
    """Give a staff member another role (and department). Raises LookupError / ValueError."""
    role = Role(role)
    if role not in STAFF_ROLES:
        raise ValueError(f"{role} is not a staff role")
    staff = await Staff.filter(id=staff_id).first()
    if staff is None:
        raise LookupError(f"no staff member with id {staff_id}")
    if department_id is not None:
        if not await Department.filter(id=department_id).exists():
            raise LookupError(f"no department with id {department_id}")
        staff.department_id = department_id  # type: ignore[attr-defined]
    staff.role = role
    await staff.save()
    return staff
