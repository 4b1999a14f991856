"""A small organisation for the staff tests: departments, staff bound to chats, a clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from config.profiles import Profile, load_profile
from handlers.messages import Outgoing
from models.actions import Clock, submit_complaint
from models.entities import Channel, Complaint, Department, OutboxMessage, Staff
from models.outbox import outgoing_from_json
from models.workflow import Role
from scheduler.calendar import WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()
# Monday 2 November 2026, 10:00 in Shanghai.
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)

ANSWERS = {
    "category": "service_conduct",
    "target_kind": "staff",
    "target_text": "3号窗口工作人员",
    "incident_time": "2026-10-30T02:00:00+00:00",
    "place_text": "办税服务厅",
    "facts": "窗口工作人员态度恶劣，拒绝解释材料要求。",
    "request_type": "apology",
    "name": "张三",
    "phone": "+8613812345678",
}


def clock(hours: float = 0) -> Clock:
    return Clock(CALENDAR, SHANGHAI, T0 + timedelta(hours=hours))


@dataclass
class World:
    profile: Profile
    office: Department
    registry: Department
    tax: Department
    clerk: Staff
    head: Staff
    handler: Staff
    tax_head: Staff
    supervisor: Staff


async def make_world(profile_id: str = "tax-service") -> World:
    office = await Department.create(code="office", name="办公室")
    registry = await Department.create(code="registry", name="不动产登记窗口", parent=office)
    tax = await Department.create(code="tax", name="税务窗口", parent=office)

    async def person(name: str, role: Role, department: Department, chat: str) -> Staff:
        return await Staff.create(
            name=name, role=role, department=department, telegram_chat_id=chat, language="en"
        )

    return World(
        profile=load_profile(profile_id),
        office=office,
        registry=registry,
        tax=tax,
        clerk=await person("Clerk Chen", Role.INTAKE_CLERK, office, "c1"),
        head=await person("Head Li", Role.DEPARTMENT_HEAD, registry, "h1"),
        handler=await person("Handler Wang", Role.HANDLER, registry, "w1"),
        tax_head=await person("Head Zhao", Role.DEPARTMENT_HEAD, tax, "t1"),
        supervisor=await person("Supervisor Sun", Role.SUPERVISOR, office, "s1"),
    )


async def file_complaint(
    world: World, *, language: str = "en", answers: dict[str, object] | None = None
) -> Complaint:
    return await submit_complaint(
        profile=world.profile,
        channel=Channel.TELEGRAM,
        external_id="42",
        chat_id="42",
        answers=answers or ANSWERS,
        clock=clock(),
        language=language,
    )


async def inbox(chat_id: str) -> list[Outgoing]:
    """Every message queued for a chat, oldest first."""
    rows = await OutboxMessage.filter(chat_id=chat_id).order_by("id")
    return [outgoing_from_json(row.payload) for row in rows]


async def last(chat_id: str) -> Outgoing:
    messages = await inbox(chat_id)
    assert messages, f"nothing queued for {chat_id}"
    return messages[-1]
