"""Workflow actions against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from config.profiles import load_profile
from models.actions import (
    ActionRefused,
    Actor,
    Clock,
    act,
    complaint_history,
    submit_complaint,
)
from models.entities import Channel, Complaint, Department, Event, Staff
from models.workflow import Action, Role, State, derive_state
from scheduler.calendar import WorkingCalendar
from tests.waiting import WITHIN_SECONDS

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()

ANSWERS = {
    "category": "service_attitude",
    "subcategory": "rude",
    "target_kind": "department",
    "target_text": "不动产登记窗口",
    "incident_time": "2026-09-29T02:00:00+00:00",
    "place_text": "市民中心 3 楼",
    "facts": "窗口工作人员态度恶劣，拒绝解释材料要求。",
    "request_type": "apology",
    "name": "张三",
    "phone": "+8613812345678",
}


def clock_at(local: str) -> Clock:
    now = datetime.fromisoformat(local).replace(tzinfo=SHANGHAI).astimezone(UTC)
    return Clock(CALENDAR, SHANGHAI, now)


async def test_submit_numbers_and_acceptance_deadline(db_url: str) -> None:
    profile = load_profile("gov-window")
    clock = clock_at("2026-09-30T10:00:00")
    first = await submit_complaint(
        profile=profile, channel=Channel.WEB, external_id="s1", answers=ANSWERS, clock=clock
    )
    second = await submit_complaint(
        profile=profile, channel=Channel.WEB, external_id="s1", answers=ANSWERS, clock=clock
    )
    assert first.number == "202609-0001"
    assert second.number == "202609-0002"
    # Received Wed 30 Sep 2026 → 3 working days end Sat 10 Oct (a 调休 working day).
    due = datetime.fromisoformat(first.deadlines["acceptance"]["due"]).astimezone(SHANGHAI)
    assert due.date().isoformat() == "2026-10-10"
    assert first.next_due_stage == "acceptance"
    assert first.next_due_at == datetime.fromisoformat(first.deadlines["acceptance"]["due"])
    october = await submit_complaint(
        profile=profile,
        channel=Channel.WEB,
        external_id="s2",
        answers=ANSWERS,
        clock=clock_at("2026-10-01T00:30:00"),
    )
    assert october.number == "202610-0001"  # the serial restarts each month (local month)
    events = await Event.filter(complaint=first).values_list("from_state", "to_state")
    assert events == [("draft", "submitted")]


async def test_200_concurrent_submissions_get_gap_free_numbers(db_url: str) -> None:
    profile = load_profile("gov-window")
    clock = clock_at("2026-11-20T10:00:00")

    async def one(i: int) -> str:
        deadline = asyncio.get_running_loop().time() + WITHIN_SECONDS
        while True:
            try:
                complaint = await submit_complaint(
                    profile=profile,
                    channel=Channel.WEB,
                    external_id=f"c{i}",
                    answers=ANSWERS,
                    clock=clock,
                )
                return complaint.number
            except Exception as exc:  # SQLite "database is locked": retry as the shell does
                # A busy machine can hold the lock long: retry on a deadline, not a count.
                if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.01)

    numbers = await asyncio.gather(*(one(i) for i in range(200)))
    assert sorted(numbers) == [f"202611-{n:04d}" for n in range(1, 201)]
    assert await Complaint.all().count() == 200


async def test_serial_grows_past_9999(db_url: str) -> None:
    from tortoise import connections

    conn = connections.get("default")
    await conn.execute_query(
        "INSERT INTO monthly_serial (month, last_serial) VALUES ('202612', 9999)"
    )
    complaint = await submit_complaint(
        profile=load_profile("gov-window"),
        channel=Channel.WEB,
        external_id="x",
        answers=ANSWERS,
        clock=clock_at("2026-12-01T09:00:00"),
    )
    assert complaint.number == "202612-10000"


async def test_full_life_cycle_events_prove_the_state(db_url: str) -> None:
    profile = load_profile("tax-service")
    office = await Department.create(code="office", name="办公室")
    clerk = await Staff.create(name="受理员", role=Role.INTAKE_CLERK, department=office)
    head = await Staff.create(name="科长", role=Role.DEPARTMENT_HEAD, department=office)
    handler = await Staff.create(name="经办人", role=Role.HANDLER, department=office)
    t0 = clock_at("2026-11-02T10:00:00")  # Monday
    answers = {**ANSWERS, "category": "service_conduct", "subcategory": None}
    complaint = await submit_complaint(
        profile=profile, channel=Channel.TELEGRAM, external_id="42", answers=answers, clock=t0
    )
    complainant = Actor(Role.COMPLAINANT, complainant=await complaint.complainant)

    def at(hours: float) -> Clock:
        return Clock(CALENDAR, SHANGHAI, t0.now + timedelta(hours=hours))

    await act(
        complaint.id, Action.ACCEPT, Actor(Role.INTAKE_CLERK, clerk), profile=profile, clock=at(1)
    )
    await act(
        complaint.id,
        Action.ASSIGN,
        Actor(Role.INTAKE_CLERK, clerk),
        profile=profile,
        clock=at(2),
        payload={"department_id": office.id, "handler_id": handler.id},
    )
    with pytest.raises(ActionRefused):  # a button pressed twice
        await act(
            complaint.id,
            Action.ASSIGN,
            Actor(Role.INTAKE_CLERK, clerk),
            profile=profile,
            clock=at(2),
            payload={"department_id": office.id, "handler_id": handler.id},
        )
    worker = Actor(Role.HANDLER, handler)
    await act(complaint.id, Action.ACKNOWLEDGE, worker, profile=profile, clock=at(3))
    before = (await Complaint.get(id=complaint.id)).deadlines["resolution"]["due"]
    await act(complaint.id, Action.REQUEST_MATERIAL, worker, profile=profile, clock=at(4))
    paused = await Complaint.get(id=complaint.id)
    assert paused.state == State.WAITING_FOR_COMPLAINANT
    assert paused.next_due_at is None  # the clock is stopped while waiting for material
    # Supplemented three calendar days later (Thu → whole working days Tue/Wed paused).
    await act(complaint.id, Action.SUPPLEMENT, complainant, profile=profile, clock=at(72))
    resumed = await Complaint.get(id=complaint.id)
    assert resumed.deadlines["resolution"]["due"] > before
    await act(
        complaint.id,
        Action.REQUEST_EXTENSION,
        worker,
        profile=profile,
        clock=at(73),
        payload={"amount": 5, "reason": "需要调取监控"},
    )
    with pytest.raises(ActionRefused):  # nobody approves their own request
        await act(complaint.id, Action.APPROVE_EXTENSION, worker, profile=profile, clock=at(74))
    result = await act(
        complaint.id,
        Action.APPROVE_EXTENSION,
        Actor(Role.DEPARTMENT_HEAD, head),
        profile=profile,
        clock=at(74),
    )
    assert result.extra["new_due"] > resumed.deadlines["resolution"]["due"]
    await act(
        complaint.id,
        Action.RESOLVE,
        worker,
        profile=profile,
        clock=at(80),
        payload={"reply_text": "已约谈当事人并道歉。"},
    )
    await act(complaint.id, Action.NOTIFY_RESULT, Actor(Role.SYSTEM), profile=profile, clock=at(81))
    await act(complaint.id, Action.DISPUTE, complainant, profile=profile, clock=at(82))
    final = await Complaint.get(id=complaint.id)
    assert final.state == State.REOPENED
    assert final.extensions_used == 1
    assert derive_state(await complaint_history(final)) == State(final.state)


async def test_refused_action_writes_nothing(db_url: str) -> None:
    profile = load_profile("gov-window")
    complaint = await submit_complaint(
        profile=profile,
        channel=Channel.WEB,
        external_id="w",
        answers=ANSWERS,
        clock=clock_at("2026-11-20T10:00:00"),
    )
    with pytest.raises(ActionRefused) as refused:
        await act(
            complaint.number,
            Action.RESOLVE,
            Actor(Role.HANDLER),
            profile=profile,
            clock=clock_at("2026-11-20T11:00:00"),
        )
    assert "submitted" in str(refused.value)
    assert await Event.filter(complaint=complaint).count() == 1
    assert (await Complaint.get(id=complaint.id)).state == State.SUBMITTED
