"""A small seeded world for the statistics, the reports and the dashboard, whose figures are
counted by hand in tests/test_statistics.py (profile `conduct`, November 2026, report at
1 December 2026 09:00 Shanghai time).

Rows are written directly (no workflow): each complaint's deadlines, states and instants are
exactly what the expected figures were worked out from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from config.profiles import load_profile
from models.entities import (
    Channel,
    Complainant,
    Complaint,
    Department,
    Staff,
    SurveyResponse,
)
from models.workflow import Role, State
from tests.scheduler_support import SHANGHAI

PROFILE = load_profile("conduct")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
START = datetime(2026, 11, 1, tzinfo=SHANGHAI)
END = datetime(2026, 12, 1, tzinfo=SHANGHAI)


def at(text: str) -> datetime:
    """Local time "MM-DDTHH:MM" in 2026 (or a full ISO date-time)."""
    value = text if text.startswith("20") else f"2026-{text}"
    return datetime.fromisoformat(value).replace(tzinfo=SHANGHAI)


def end_of(day: str) -> datetime:
    return at(f"{day}T00:00") + timedelta(days=1, microseconds=-1)


def iso(instant: datetime) -> str:
    return instant.astimezone(SHANGHAI).isoformat()


@dataclass
class World:
    d1: Department
    d2: Department
    supervisor: Staff
    head1: Staff
    h1: Staff
    h2: Staff
    target: Staff
    p1: Complainant
    p2: Complainant
    p3: Complainant
    cases: dict[str, Complaint]


async def seed() -> World:
    d1 = await Department.create(code="d1", name="一科")
    d2 = await Department.create(code="d2", name="二科")
    supervisor = await Staff.create(name="督办员", role=Role.SUPERVISOR, telegram_chat_id="sup")
    head1 = await Staff.create(name="孙科长", role=Role.DEPARTMENT_HEAD, department=d1)
    h1 = await Staff.create(name="赵一", role=Role.HANDLER, department=d1)
    h2 = await Staff.create(name="钱二", role=Role.HANDLER, department=d2)
    target = await Staff.create(name="王五", role=Role.HANDLER, department=d2)
    p1 = await Complainant.create(channel=Channel.TELEGRAM, external_id="p1", name="张三")
    p2 = await Complainant.create(channel=Channel.PHONE, external_id="p2", name="李四")
    p3 = await Complainant.create(channel=Channel.WECHAT, external_id="p3")
    serial = iter(range(1, 100))

    async def case(**values: Any) -> Complaint:
        submitted = values.get("submitted_at")
        month = f"{submitted:%Y%m}" if submitted else "202611"
        values.setdefault("number", f"{month}-{next(serial):04d}")
        values.setdefault("profile", "conduct")
        values.setdefault("facts", "经办人员拖延不办。")
        deadlines = values.get("deadlines", {})
        open_dues = [
            (entry["due"], stage) for stage, entry in deadlines.items() if not entry.get("done")
        ]
        if open_dues:
            due, stage = min(open_dues)
            values.setdefault("next_due_at", datetime.fromisoformat(due))
            values.setdefault("next_due_stage", stage)
        return await Complaint.create(**values)

    cases: dict[str, Complaint] = {}
    cases["c1"] = await case(
        submitted_at=at("11-02T10:00"), category="delay", channel=Channel.TELEGRAM,
        state=State.CLOSED, lead_department=d1, handler=h1, target_staff=target,
        complainant=p1, contact_name="张三", contact_phone="13800000001",
        resolved_at=at("11-04T15:00"), closed_at=at("11-06T10:00"),
        deadlines={
            "acceptance": {"start": iso(at("11-02T10:00")), "due": iso(end_of("11-03")),
                           "done": iso(at("11-02T11:00"))},
            "resolution": {"start": iso(at("11-02T11:00")), "due": iso(end_of("11-16")),
                           "done": iso(at("11-04T15:00"))},
        },
    )  # fmt: skip
    cases["c2"] = await case(
        submitted_at=at("11-10T09:00"), category="rudeness", channel=Channel.WECHAT,
        state=State.IN_PROGRESS, lead_department=d1, handler=h1, complainant=p3,
        contact_phone="+86 138-0000-0001",
        deadlines={
            "acceptance": {"start": iso(at("11-10T09:00")), "due": iso(end_of("11-11")),
                           "done": iso(at("11-10T10:00"))},
            "resolution": {"start": iso(at("11-10T10:00")), "due": iso(end_of("11-24"))},
        },
    )  # fmt: skip
    cases["c3"] = await case(
        submitted_at=at("11-12T09:00"), category="delay", channel=Channel.PHONE,
        state=State.REVISIT, lead_department=d2, handler=h2, target_staff=target,
        complainant=p2, contact_name="李四", contact_phone="13900000002",
        resolved_at=at("11-18T10:00"),
        deadlines={
            "acceptance": {"start": iso(at("11-12T09:00")), "due": iso(end_of("11-13")),
                           "done": iso(at("11-13T18:00"))},
            "resolution": {"start": iso(at("11-13T18:00")), "due": iso(end_of("11-26")),
                           "done": iso(at("11-18T10:00"))},
            # The complainant's turn: never late, never overdue (D19).
            "survey_reminder": {"start": iso(at("11-20T10:00")), "due": iso(end_of("11-25"))},
        },
    )  # fmt: skip
    await cases["c3"].co_departments.add(d1)
    cases["c4"] = await case(
        submitted_at=at("11-20T09:00"), category="other", channel=Channel.WEB,
        state=State.SUBMITTED, target_staff=target, complainant=p2, contact_name="李四",
        deadlines={
            "acceptance": {"start": iso(at("11-20T09:00")), "due": iso(end_of("11-23"))},
        },
    )  # fmt: skip
    cases["c5"] = await case(
        submitted_at=at("10-20T09:00"), category="delay", channel=Channel.TELEGRAM,
        state=State.CLOSED, lead_department=d2, handler=h2, target_staff=target,
        resolved_at=at("11-06T10:00"), closed_at=at("11-08T10:00"),
        deadlines={
            "acceptance": {"start": iso(at("10-20T09:00")), "due": iso(end_of("10-21")),
                           "done": iso(at("10-20T15:00"))},
            "resolution": {"start": iso(at("10-20T15:00")), "due": iso(end_of("11-05")),
                           "done": iso(at("11-06T10:00"))},
        },
    )  # fmt: skip
    cases["c6"] = await case(
        submitted_at=at("12-01T08:00"), category="delay", channel=Channel.TELEGRAM,
        state=State.ACCEPTED, lead_department=d1, target_staff=target,
    )  # fmt: skip
    cases["c7"] = await case(
        submitted_at=at("11-25T10:00"), category="favours", channel=Channel.TELEGRAM,
        state=State.REFUSED, target_staff=h1, complainant=p1, contact_name="张三",
        deadlines={
            "acceptance": {"start": iso(at("11-25T10:00")), "due": iso(end_of("11-26")),
                           "done": iso(at("11-25T12:00"))},
        },
    )  # fmt: skip
    cases["draft"] = await case(number="draft-1", channel=Channel.WEB, state=State.DRAFT)
    for complaint, result, attitude, when, department, handler, none in (
        (cases["c1"], 3, 5, at("11-05T10:00"), d1, h1, False),
        (cases["c3"], 9, 7, at("11-20T10:00"), d2, h2, False),
        (cases["c5"], None, None, at("11-09T10:00"), d2, h2, True),
    ):
        response = await SurveyResponse.create(
            complaint=complaint, result_score=result, attitude_score=attitude,
            department=department, handler=handler, no_response=none,
        )  # fmt: skip
        await SurveyResponse.filter(id=response.id).update(created_at=when)
    return World(d1, d2, supervisor, head1, h1, h2, target, p1, p2, p3, cases)
