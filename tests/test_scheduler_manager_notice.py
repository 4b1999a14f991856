"""property's manager notice: a major complaint is reported to the managers within 10 minutes
(sent by the next sweep, recorded as an event, watched like any stage), and its solution is
owed within 12 hours of the acceptance that rated it major."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from config.profiles import Profile, load_profile
from models.actions import Actor, act
from models.alarms import MANAGER_NOTICE, AlarmContext, iso, profile_loader, set_alarm_context
from models.entities import Complaint, Event, OutboxMessage, Staff
from models.outbox import outgoing_from_json
from models.workflow import Action, Role
from scheduler.jobs import sweep
from tests.scheduler_support import (
    CALENDAR,
    CONTEXT,
    SHANGHAI,
    Org,
    assign,
    clock,
    file,
    local,
    make_org,
)

PROPERTY = load_profile("property")
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


async def accept_major(org: Org, complaint: Complaint, at: datetime) -> Complaint:
    await act(
        complaint.id,
        Action.ACCEPT,
        Actor(Role.INTAKE_CLERK, org.clerk),
        profile=PROPERTY,
        clock=clock(at),
        payload={"severity": "major"},
    )
    return await Complaint.get(id=complaint.id)


async def run(at: datetime, profile: Profile = PROPERTY) -> dict[str, list[str]]:
    """Sweep at `at`; the new outbox rows as {chat: [key kind, ...]}."""
    before = set(await OutboxMessage.all().values_list("id", flat=True))
    await sweep(at, profile=profile, context=CONTEXT)
    found: dict[str, list[str]] = {}
    for row in await OutboxMessage.all().order_by("id"):
        if row.id not in before:
            found.setdefault(row.chat_id, []).append(row.idempotency_key.split(":")[0])
    return found


async def test_major_on_acceptance_tells_the_managers_at_once(db_url: str) -> None:
    org = await make_org()
    # The night of a holiday Saturday: the property desk keeps 24-hour duty.
    complaint = await file(PROPERTY, local("2026-10-03T22:00"))
    assert MANAGER_NOTICE not in complaint.deadlines  # minor by default: no notice owed
    accepted = local("2026-10-03T22:01")
    complaint = await accept_major(org, complaint, accepted)
    notice = complaint.deadlines[MANAGER_NOTICE]
    assert (notice["start"], notice["due"]) == (iso(accepted), iso(accepted + 10 * MINUTE))
    # "Solution agreed within 12 hours" is the major complaint's resolution deadline.
    assert complaint.deadlines["resolution"]["due"] == iso(accepted + timedelta(hours=12))
    assert complaint.next_alarm_at == accepted  # the notice is due to go out now
    # Nobody leads the case yet: the desk's manager (the root department's head) and the
    # supervisor hear of it, at once.
    assert await run(accepted) == {
        "centre_head": ["manager-notice"],
        "supervisor": ["manager-notice"],
    }
    rows = await OutboxMessage.filter(idempotency_key__startswith="manager-notice:").order_by("id")
    assert [r.next_attempt_at for r in rows] == [accepted, accepted]
    text = outgoing_from_json(rows[0].payload).text
    assert text == (
        f"🚨 重大投诉 {complaint.number}（设施设备）：请负责人立即知悉并督办。"
        "解决方案须于 2026年10月4日 10:01 前商定。"
    )
    event = await Event.get(complaint_id=complaint.id, action="manager_notified")
    assert event.payload["staff_ids"] == [org.centre_head.id, org.supervisor.id]
    assert event.payload["late"] is False and event.actor_role == Role.SYSTEM
    stored = await Complaint.get(id=complaint.id)
    assert stored.deadlines[MANAGER_NOTICE]["done"] == iso(accepted)
    # Told once: the notice's watch has ended, so its deadline passes without an escalation
    # (the 5-minute dispatch deadline has one of its own).
    assert await run(accepted) == {}
    later = await run(accepted + 10 * MINUTE)
    assert "manager-notice" not in [kind for kinds in later.values() for kind in kinds]
    escalated = await Event.filter(complaint_id=complaint.id, action="escalated")
    assert MANAGER_NOTICE not in {e.payload["stage"] for e in escalated}


async def test_major_at_submission_runs_from_the_submission_and_is_not_restarted(
    db_url: str,
) -> None:
    # A variant where equipment complaints are major from the start.
    categories = [
        c.model_copy(update={"default_severity": "major"}) if c.id == "equipment" else c
        for c in PROPERTY.categories
    ]
    major = PROPERTY.model_copy(update={"categories": categories})
    set_alarm_context(AlarmContext(CALENDAR, SHANGHAI, profile_loader(major)))
    org = await make_org()
    filed = local("2026-10-03T22:00")
    complaint = await file(major, filed)
    assert complaint.deadlines[MANAGER_NOTICE]["due"] == iso(filed + 10 * MINUTE)
    assert await run(filed + MINUTE, major) == {
        "centre_head": ["manager-notice"],
        "supervisor": ["manager-notice"],
    }
    await act(
        complaint.id,
        Action.ACCEPT,
        Actor(Role.INTAKE_CLERK, org.clerk),
        profile=major,
        clock=clock(filed + 3 * MINUTE),
    )
    stored = await Complaint.get(id=complaint.id)
    assert stored.deadlines[MANAGER_NOTICE]["start"] == iso(filed)  # owed once, from receipt
    assert stored.deadlines[MANAGER_NOTICE]["done"] == iso(filed + MINUTE)
    assert await Event.filter(action="manager_notified").count() == 1


async def test_after_downtime_the_notice_goes_late_to_the_chain_and_says_so(db_url: str) -> None:
    org = await make_org()
    complaint = await file(PROPERTY, local("2026-10-03T22:00"))
    accepted = local("2026-10-03T22:01")
    await accept_major(org, complaint, accepted)
    await assign(PROPERTY, org, complaint, local("2026-10-03T22:02"))
    # Down until 22:30: the notice goes out on restart, to the heads up the lead department's
    # chain and the supervisor, and is not escalated as well.
    found = await run(local("2026-10-03T22:30"))
    assert {chat for chat, kinds in found.items() if "manager-notice" in kinds} == {
        "unit_head",
        "centre_head",
        "supervisor",
    }
    event = await Event.get(complaint_id=complaint.id, action="manager_notified")
    assert event.payload["late"] is True
    keys = await OutboxMessage.all().values_list("idempotency_key", flat=True)
    assert not [k for k in keys if f":{MANAGER_NOTICE}:" in k and not k.startswith("manager")]


async def test_a_notice_nobody_can_receive_is_escalated_at_its_deadline(db_url: str) -> None:
    org = await make_org()
    await Staff.filter(id__in=[org.centre_head.id, org.admin.id]).update(active=False)
    await Staff.filter(id=org.supervisor.id).update(telegram_chat_id=None)  # bound to no chat
    complaint = await file(PROPERTY, local("2026-10-03T22:00"))
    accepted = local("2026-10-03T22:01")
    await accept_major(org, complaint, accepted)
    assert await run(accepted) == {}
    failed = await Event.get(complaint_id=complaint.id, action="manager_notice_failed")
    assert failed.payload["staff_ids"] == []
    stored = await Complaint.get(id=complaint.id)
    assert "done" not in stored.deadlines[MANAGER_NOTICE]
    # Watched like any stage: at 22:11 the intake desk hears it is overdue (the supervisor is
    # the next rung but has no chat), and the escalation is on record.
    due = accepted + 10 * MINUTE
    assert await run(accepted + 5 * MINUTE) == {"clerk": ["overdue"]}  # dispatch, not ours
    assert await run(due - timedelta(seconds=1)) == {}
    assert await run(due) == {"clerk": ["overdue"]}
    keys = await OutboxMessage.filter(chat_id="clerk").values_list("idempotency_key", flat=True)
    assert f"overdue:{complaint.id}:{MANAGER_NOTICE}:{iso(due)}:{org.clerk.id}" in keys
    escalated = await Event.filter(complaint_id=complaint.id, action="escalated").order_by("id")
    assert [(e.payload["stage"], e.payload["level"]) for e in escalated] == [
        ("dispatch", 1),
        (MANAGER_NOTICE, 1),
    ]


async def test_a_minor_complaint_owes_no_manager_notice(db_url: str) -> None:
    org = await make_org()
    complaint = await file(PROPERTY, local("2026-10-03T22:00"))
    await act(
        complaint.id,
        Action.ACCEPT,
        Actor(Role.INTAKE_CLERK, org.clerk),
        profile=PROPERTY,
        clock=clock(local("2026-10-03T22:01")),
    )
    stored = await Complaint.get(id=complaint.id)
    assert MANAGER_NOTICE not in stored.deadlines
    resolution = stored.deadlines["resolution"]
    assert (resolution["amount"], resolution["unit"]) == (3, "calendar_days")  # R7f
    await run(local("2026-10-03T23:00"))
    assert await OutboxMessage.filter(idempotency_key__startswith="manager-notice:").count() == 0
