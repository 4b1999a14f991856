"""Shared set-up for the scheduler tests: an organisation, complaints moved by real actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from config.profiles import Profile
from models.actions import Actor, Clock, act, submit_complaint
from models.alarms import AlarmContext, profile_loader
from models.entities import Channel, Complaint, Department, OutboxMessage, Staff
from models.workflow import Action, Role
from scheduler.calendar import WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()
CONTEXT = AlarmContext(CALENDAR, SHANGHAI, profile_loader())

ANSWERS = {
    "target_kind": "department",
    "target_text": "窗口",
    "incident_time": "2026-09-20T02:00:00+00:00",
    "place_text": "市民中心 3 楼",
    "facts": "工作人员态度恶劣，拒绝解释材料要求。",
    "request_type": "apology",
    "name": "张三",
    "phone": "+8613812345678",
}
CATEGORY = {"gov-window": "service_attitude", "tax-service": "individual_income_tax"}
CATEGORY["property"] = "equipment"


def local(text: str) -> datetime:
    """A Shanghai wall-clock time as an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(UTC)


def end_of(day: str) -> datetime:
    """The close of a local day, as deadlines count it."""
    return local(f"{day}T23:59:59.999999")


def clock(now: datetime) -> Clock:
    return Clock(CALENDAR, SHANGHAI, now)


@dataclass
class Org:
    centre: Department
    unit: Department
    clerk: Staff
    handler: Staff
    unit_head: Staff
    centre_head: Staff
    supervisor: Staff
    admin: Staff


async def make_org(suffix: str = "") -> Org:
    """centre ← unit; one person per role, each with a Telegram chat named after them
    (`suffix` tells a second organisation in the same database apart)."""
    centre = await Department.create(code=f"centre{suffix}", name="中心")
    unit = await Department.create(code=f"unit{suffix}", name="科室", parent=centre)

    async def person(name: str, role: Role, dept: Department | None) -> Staff:
        return await Staff.create(
            name=name, role=role, department=dept, telegram_chat_id=f"{name}{suffix}"
        )

    return Org(
        centre=centre,
        unit=unit,
        clerk=await person("clerk", Role.INTAKE_CLERK, centre),
        handler=await person("handler", Role.HANDLER, unit),
        unit_head=await person("unit_head", Role.DEPARTMENT_HEAD, unit),
        centre_head=await person("centre_head", Role.DEPARTMENT_HEAD, centre),
        supervisor=await person("supervisor", Role.SUPERVISOR, None),
        admin=await person("admin", Role.ADMIN, None),
    )


async def file(
    profile: Profile, at: datetime, user: str = "u1", phone: str | None = None
) -> Complaint:
    answers = {**ANSWERS, "category": CATEGORY[profile.id]}
    if phone is not None:
        answers["phone"] = phone  # another person (one phone is one person: models.similarity)
    return await submit_complaint(
        profile=profile,
        channel=Channel.TELEGRAM,
        external_id=user,
        chat_id=f"chat-{user}",
        answers=answers,
        clock=clock(at),
    )


async def accept(profile: Profile, org: Org, complaint: Complaint, at: datetime) -> None:
    await act(
        complaint.id,
        Action.ACCEPT,
        Actor(Role.INTAKE_CLERK, org.clerk),
        profile=profile,
        clock=clock(at),
    )


async def assign(profile: Profile, org: Org, complaint: Complaint, at: datetime) -> None:
    await act(
        complaint.id,
        Action.ASSIGN,
        Actor(Role.INTAKE_CLERK, org.clerk),
        profile=profile,
        clock=clock(at),
        payload={"department_id": org.unit.id, "handler_id": org.handler.id},
    )


async def acknowledge(profile: Profile, org: Org, complaint: Complaint, at: datetime) -> None:
    worker = Actor(Role.HANDLER, org.handler)
    await act(complaint.id, Action.ACKNOWLEDGE, worker, profile=profile, clock=clock(at))


async def reply(profile: Profile, org: Org, complaint: Complaint, at: datetime) -> None:
    """Resolve and tell the result: the complaint ends `replied` at `at`."""
    worker = Actor(Role.HANDLER, org.handler)
    await act(
        complaint.id,
        Action.RESOLVE,
        worker,
        profile=profile,
        clock=clock(at),
        payload={"reply_text": "已处理并致歉。"},
    )
    await act(complaint.id, Action.NOTIFY_RESULT, worker, profile=profile, clock=clock(at))


async def outbox_keys(prefix: str = "") -> list[str]:
    keys = await OutboxMessage.all().order_by("id").values_list("idempotency_key", flat=True)
    return [k for k in keys if k.startswith(prefix)]


async def outbox_by_chat(prefix: str = "") -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in await OutboxMessage.all().order_by("id"):
        if row.idempotency_key.startswith(prefix):
            found.setdefault(row.chat_id, []).append(row.idempotency_key)
    return found
