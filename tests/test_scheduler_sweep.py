"""The deadline sweep on a real database: reminders and escalations on the scheduled instants,
for each shipped profile, across holidays and 调休 working days; catch-up; two sweepers."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from asyncio.subprocess import PIPE
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from tortoise.transactions import in_transaction

from config.profiles import Profile, load_profile
from models.alarms import iso, set_alarm_context
from models.entities import Complaint, Event, OutboxMessage
from scheduler.jobs import SweepReport, build_rungs, next_step, sweep
from tests.scheduler_support import (
    CONTEXT,
    SHANGHAI,
    accept,
    acknowledge,
    assign,
    end_of,
    file,
    local,
    make_org,
    outbox_keys,
)

SECOND = timedelta(seconds=1)


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


async def run(at: datetime, profile: Profile) -> dict[str, list[str]]:
    """Sweep at `at`; the new outbox rows as {chat: [key kind, ...]}."""
    before = set(await outbox_keys())
    await sweep(at, profile=profile, context=CONTEXT)
    found: dict[str, list[str]] = {}
    for row in await OutboxMessage.all().order_by("id"):
        if row.idempotency_key not in before:
            found.setdefault(row.chat_id, []).append(row.idempotency_key.split(":")[0])
    return found


async def walk(profile: Profile, schedule: list[tuple[datetime, dict[str, list[str]]]]) -> None:
    """Each step happens exactly at its instant: nothing a second earlier, nothing twice."""
    for instant, expected in schedule:
        assert await run(instant - SECOND, profile) == {}, f"early at {instant}"
        assert await run(instant, profile) == expected, f"at {instant}"
        assert await run(instant, profile) == {}, f"twice at {instant}"


async def test_gov_window_reminders_then_escalation_up_the_chain(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    complaint = await file(profile, local("2026-09-30T10:00"))
    await accept(profile, org, complaint, local("2026-09-30T10:30"))
    await assign(profile, org, complaint, local("2026-09-30T11:00"))
    await acknowledge(profile, org, complaint, local("2026-09-30T11:30"))
    stored = await Complaint.get(id=complaint.id)
    # 3 working days after Wed 30 Sep, over the National Day holiday: Sat 10 Oct (调休).
    assert stored.deadlines["resolution"]["due"] == iso(end_of("2026-10-10"))
    # Reminders 1 working day and 2 hours before the office closes on the due day.
    assert stored.next_alarm_at == local("2026-10-09T17:00")
    await walk(
        profile,
        [
            (local("2026-10-09T17:00"), {"handler": ["remind"]}),
            (local("2026-10-10T15:00"), {"handler": ["remind"]}),
            (end_of("2026-10-10"), {"unit_head": ["escalate"], "handler": ["overdue"]}),
            # One working day later each: Sunday 11 Oct does not count.
            (end_of("2026-10-12"), {"centre_head": ["escalate"]}),
            (end_of("2026-10-13"), {"supervisor": ["escalate"]}),
            # Then the admins: an escalation goes on to them before the chain ends.
            (end_of("2026-10-14"), {"admin": ["escalate"]}),
        ],
    )
    # Reminders at the office close go out at once; midnight escalations wait for the office
    # to open: Monday 12 Oct, 09:00.
    reminders = await OutboxMessage.filter(idempotency_key__startswith="remind:").order_by("id")
    assert [r.next_attempt_at for r in reminders] == [
        local("2026-10-09T17:00"),
        local("2026-10-10T15:00"),
    ]
    first = await OutboxMessage.filter(idempotency_key__startswith="escalate:").first()
    assert first is not None
    assert first.next_attempt_at == local("2026-10-12T09:00")
    final = await Complaint.get(id=complaint.id)
    assert final.next_alarm_at is None  # the chain is exhausted: nothing more to do
    assert await run(local("2026-12-31T12:00"), profile) == {}
    events = await Event.filter(complaint_id=complaint.id, action="escalated").count()
    assert events == 4


async def test_tax_service_escalation_counts_the_adjusted_saturday(db_url: str) -> None:
    profile = load_profile("tax-service")
    org = await make_org()
    complaint = await file(profile, local("2026-09-29T09:00"))
    await accept(profile, org, complaint, local("2026-09-29T10:00"))
    await assign(profile, org, complaint, local("2026-09-29T11:00"))
    await acknowledge(profile, org, complaint, local("2026-09-29T11:30"))
    stored = await Complaint.get(id=complaint.id)
    assert stored.deadlines["resolution"]["due"] == iso(end_of("2026-10-09"))
    await walk(
        profile,
        [
            (local("2026-10-08T17:00"), {"handler": ["remind"]}),
            (local("2026-10-09T15:00"), {"handler": ["remind"]}),
            (end_of("2026-10-09"), {"unit_head": ["escalate"], "handler": ["overdue"]}),
            (end_of("2026-10-10"), {"centre_head": ["escalate"]}),  # Saturday, a working day
            (end_of("2026-10-12"), {"supervisor": ["escalate"]}),
        ],
    )


async def test_property_unacknowledged_assignment_escalates_in_minutes(db_url: str) -> None:
    profile = load_profile("property")
    org = await make_org()
    # Saturday night of the National Day holiday: the property desk is on 24-hour duty.
    complaint = await file(profile, local("2026-10-03T22:00"))
    await accept(profile, org, complaint, local("2026-10-03T22:01"))
    await assign(profile, org, complaint, local("2026-10-03T22:04"))
    # R7g: the department makes its handling plan within 1 hour of assignment: reminded 30 min
    # before, then escalated at 23:04 and once an hour further up.
    await walk(
        profile,
        [
            (local("2026-10-03T22:34"), {"handler": ["remind"]}),
            (local("2026-10-03T23:04"), {"unit_head": ["escalate"], "handler": ["overdue"]}),
            (local("2026-10-04T00:04"), {"centre_head": ["escalate"]}),
            (local("2026-10-04T01:04"), {"supervisor": ["escalate"]}),
        ],
    )
    rows = await OutboxMessage.filter(idempotency_key__startswith="escalate:").order_by("id")
    assert [r.next_attempt_at for r in rows] == [
        local("2026-10-03T23:04"),
        local("2026-10-04T00:04"),
        local("2026-10-04T01:04"),
    ]  # 24-hour duty: delivered at once, holiday or not
    assert all(":action_plan:" in r.idempotency_key for r in rows)
    await acknowledge(profile, org, complaint, local("2026-10-04T01:30"))
    stored = await Complaint.get(id=complaint.id)
    # A minor complaint is answered within 3 days of acceptance (R7f): due at the close of
    # 6 October, reminded 2 h and 30 min before (24-hour duty: counted from midnight).
    due = end_of("2026-10-06")
    assert datetime.fromisoformat(stored.deadlines["resolution"]["due"]) == due
    await walk(
        profile,
        [
            (due - timedelta(hours=2), {"handler": ["remind"]}),
            (due - timedelta(minutes=30), {"handler": ["remind"]}),
            (due, {"unit_head": ["escalate"], "handler": ["overdue"]}),
        ],
    )


async def test_result_notice_is_watched_for_the_handler(db_url: str) -> None:
    from models.actions import Actor, act
    from models.workflow import Action, Role
    from tests.scheduler_support import clock

    profile = load_profile("gov-window")
    org = await make_org()
    complaint = await file(profile, local("2026-10-09T09:00"))
    await accept(profile, org, complaint, local("2026-10-09T09:30"))
    await assign(profile, org, complaint, local("2026-10-09T09:30"))
    await acknowledge(profile, org, complaint, local("2026-10-09T09:30"))
    by = Actor(Role.HANDLER, org.handler)
    resolved = clock(local("2026-10-12T10:00"))
    payload = {"reply_text": "ok"}
    await act(complaint.id, Action.RESOLVE, by, profile=profile, clock=resolved, payload=payload)
    # Resolved Mon 12 Oct; the result is owed within 3 working days: Thu 15 Oct.
    await walk(
        profile,
        [
            (local("2026-10-14T17:00"), {"handler": ["remind"]}),
            (local("2026-10-15T15:00"), {"handler": ["remind"]}),
            (end_of("2026-10-15"), {"unit_head": ["escalate"], "handler": ["overdue"]}),
        ],
    )
    assert ":result_notice:" in (await outbox_keys("escalate:"))[0]


async def test_acceptance_is_watched_for_the_intake_desk(db_url: str) -> None:
    profile = load_profile("gov-window")
    await make_org()
    await file(profile, local("2026-09-30T10:00"))
    # Acceptance answer: 3 working days → Sat 10 Oct; nobody accepts it.
    await walk(
        profile,
        [
            (local("2026-10-09T17:00"), {"clerk": ["remind"]}),
            (local("2026-10-10T15:00"), {"clerk": ["remind"]}),
            (end_of("2026-10-10"), {"supervisor": ["escalate"], "clerk": ["overdue"]}),
            (end_of("2026-10-12"), {"admin": ["escalate"]}),  # then the admins
        ],
    )
    assert await run(end_of("2026-10-30"), profile) == {}


async def test_catch_up_after_an_hour_down_sends_each_message_once(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    complaint = await file(profile, local("2026-09-30T10:00"))
    await accept(profile, org, complaint, local("2026-09-30T10:30"))
    await assign(profile, org, complaint, local("2026-09-30T11:00"))
    await acknowledge(profile, org, complaint, local("2026-09-30T11:30"))
    # Down from 16:30 to 17:30 on 9 Oct: the 17:00 reminder goes out once on restart.
    assert await run(local("2026-10-09T16:30"), profile) == {}
    assert await run(local("2026-10-09T17:30"), profile) == {"handler": ["remind"]}
    assert await run(local("2026-10-09T17:31"), profile) == {}
    # Down over the due instant and a day more: one escalation per level, no stale reminder.
    late = end_of("2026-10-12") + timedelta(hours=1)
    assert await run(late, profile) == {
        "unit_head": ["escalate"],
        "handler": ["overdue"],
        "centre_head": ["escalate"],
    }
    assert await run(late, profile) == {}
    reminders = await Event.filter(complaint_id=complaint.id, action="reminder_sent")
    # The 15:00 reminder on the due day was superseded by the escalation: never sent late.
    assert len(reminders) == 1


async def test_catch_up_sends_only_the_latest_missed_reminder(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    complaint = await file(profile, local("2026-09-30T10:00"))
    await accept(profile, org, complaint, local("2026-09-30T10:30"))
    await assign(profile, org, complaint, local("2026-09-30T11:00"))
    await acknowledge(profile, org, complaint, local("2026-09-30T11:30"))
    assert await run(local("2026-10-10T16:00"), profile) == {"handler": ["remind"]}
    keys = await outbox_keys("remind:")
    assert keys == [f"remind:{complaint.id}:resolution:{iso(local('2026-10-10T15:00'))}:2"]
    event = await Event.get(complaint_id=complaint.id, action="reminder_sent")
    assert event.payload["skipped"] == [iso(local("2026-10-09T17:00"))]


async def test_two_sweepers_on_one_database_never_duplicate(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    ids = []
    for i in range(30):
        complaint = await file(profile, local("2026-09-30T10:00"), user=f"u{i}")
        await accept(profile, org, complaint, local("2026-09-30T10:30"))
        await assign(profile, org, complaint, local("2026-09-30T11:00"))
        ids.append(complaint.id)
    now = local("2026-10-09T17:05")
    reports: list[SweepReport] = await asyncio.gather(
        sweep(now, profile=profile, context=CONTEXT), sweep(now, profile=profile, context=CONTEXT)
    )
    assert sum(r.complaints for r in reports) == 30  # every complaint handled by one sweeper
    assert not any(r.failed for r in reports)
    # Events have no unique key: one reminder event per complaint proves single processing.
    assert await Event.filter(action="reminder_sent").count() == 30
    assert await OutboxMessage.filter(idempotency_key__startswith="remind:").count() == 30
    assert set(await Complaint.filter(id__in=ids).values_list("next_alarm_at", flat=True)) == {
        local("2026-10-10T15:00")
    }


async def test_a_row_locked_by_one_sweeper_is_skipped_by_the_other(
    db_url: str, db_kind: str
) -> None:
    if db_kind != "postgres":
        pytest.skip("row locks between connections: PostgreSQL (SQLite has a single writer)")
    profile = load_profile("gov-window")
    org = await make_org()
    ids = []
    for i in range(5):
        complaint = await file(profile, local("2026-09-30T10:00"), user=f"u{i}")
        await accept(profile, org, complaint, local("2026-09-30T10:30"))
        ids.append(complaint.id)
    now = local("2026-10-09T17:05")
    locked, release = asyncio.Event(), asyncio.Event()

    async def first_sweeper_holds_one_row() -> None:  # its own task: its own connection
        async with in_transaction() as conn:
            await Complaint.filter(id=ids[0]).using_db(conn).select_for_update().first()
            locked.set()
            await release.wait()

    holder = asyncio.create_task(first_sweeper_holds_one_row())
    await locked.wait()
    report = await sweep(now, profile=profile, context=CONTEXT)
    assert report.complaints == 4  # did not wait for, nor repeat, the locked complaint
    release.set()
    await holder
    assert (await sweep(now, profile=profile, context=CONTEXT)).complaints == 1
    assert await Event.filter(action="reminder_sent").count() == 5


async def test_sweep_reads_only_due_rows(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    complaint = await file(profile, local("2026-09-30T10:00"))
    await accept(profile, org, complaint, local("2026-09-30T10:30"))
    for i in range(5):  # filed later: not due at the sweep below
        await file(profile, local("2026-10-09T10:00"), user=f"later{i}")
    report = await sweep(local("2026-10-09T17:00"), profile=profile, context=CONTEXT)
    assert report.complaints == 1


def test_build_rungs_drops_repeats_and_empty_rungs() -> None:
    assert build_rungs([7], [3, 7, 5], [9, 3]) == [[7], [3], [5], [9]]
    assert build_rungs([], [], []) == [[]]
    assert build_rungs([1, 1], [], [2]) == [[1], [2]]
    # The only head is the respondent and nobody is supervisor: the admins are the last rung.
    assert build_rungs([4], [4], [], [8, 9]) == [[4], [8, 9]]
    assert build_rungs([4], [5], [6], [6, 8]) == [[4], [5], [6], [8]]


def test_next_step_prefers_close_then_escalation_then_latest_reminder() -> None:
    from models.alarms import Alarm, AlarmKind

    t = local("2026-10-09T17:00")
    r1 = Alarm(t, AlarmKind.REMIND, "resolution", "s", 0, t)
    r2 = Alarm(t + SECOND, AlarmKind.REMIND, "resolution", "s", 0, t)
    esc = Alarm(t, AlarmKind.ESCALATE, "resolution", "s", 1, t)
    step = next_step([r1, r2])
    assert step is not None and step.fire == r2 and step.superseded == (r1,)
    step = next_step([r1, esc])
    assert step is not None and step.fire == esc
    remind = Alarm(t, AlarmKind.SURVEY_REMINDER, "survey_reminder", "survey")
    close = Alarm(t, AlarmKind.NO_RESPONSE_CLOSE, "auto_close", "survey")
    step = next_step([remind, close])
    assert step is not None and step.fire == close and step.superseded == (remind,)
    assert next_step([]) is None
    assert SHANGHAI.key == "Asia/Shanghai"


async def test_property_complaint_left_undispatched_escalates_five_minutes_after_receipt(
    db_url: str,
) -> None:
    profile = load_profile("property")
    org = await make_org()
    # A minor complaint at night on a holiday, nobody touches it: dispatch runs from receipt.
    complaint = await file(profile, local("2026-10-03T22:00"))
    stored = await Complaint.get(id=complaint.id)
    assert stored.next_due_stage == "dispatch"
    assert stored.next_due_at == local("2026-10-03T22:05")
    assert await run(local("2026-10-03T22:05") - SECOND, profile) == {}
    # The intake desk is told it is overdue; with no department yet, supervisors are next.
    escalated = await run(local("2026-10-03T22:05"), profile)
    assert escalated == {"clerk": ["overdue"], "supervisor": ["escalate"]}
    assert await run(local("2026-10-03T22:05"), profile) == {}
    await accept(profile, org, complaint, local("2026-10-03T22:06"))
    await assign(profile, org, complaint, local("2026-10-03T22:07"))
    assigned = await Complaint.get(id=complaint.id)
    assert assigned.deadlines["dispatch"]["done"]  # dispatch ends with the assignment


async def test_two_processes_sweeping_one_postgres_never_duplicate(
    db_url: str, db_kind: str, tmp_path: Path
) -> None:
    """Two `complaintdesk jobs sweep` processes (the code `run` schedules) at the same instant."""
    if db_kind != "postgres":
        pytest.skip("several worker processes share PostgreSQL; SQLite is the one-process store")
    profile = load_profile("gov-window")
    org = await make_org()
    for i in range(60):
        complaint = await file(profile, local("2026-09-30T10:00"), user=f"p{i}")
        await accept(profile, org, complaint, local("2026-09-30T10:30"))
        await assign(profile, org, complaint, local("2026-09-30T11:00"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COMPLAINTDESK_DATABASE_URL": db_url,
        "COMPLAINTDESK_PROFILE": "gov-window",
        "COMPLAINTDESK_DATA_DIR": str(tmp_path / "data"),
    }
    command = [sys.executable, "-m", "bot.cli", "jobs", "sweep", "--at", "2026-10-09T17:05+08:00"]
    workers = [
        await asyncio.create_subprocess_exec(*command, env=env, cwd=ROOT, stdout=PIPE, stderr=PIPE)
        for _ in range(2)
    ]
    outputs = [await asyncio.wait_for(w.communicate(), timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    handled = [int(re.search(rb"complaints=(\d+)", out).group(1)) for out, _ in outputs]  # type: ignore[union-attr]
    assert sum(handled) == 60  # each complaint by exactly one of the two processes
    assert await Event.filter(action="reminder_sent").count() == 60
    keys = await OutboxMessage.filter(idempotency_key__startswith="remind:").values_list(
        "idempotency_key", flat=True
    )
    assert len(keys) == len(set(keys)) == 60


async def test_concurrent_batched_sweeps_write_each_alarms_rows_exactly_once(db_url: str) -> None:
    """Two sweeps at once over one due set, in small batches so their claims interleave: every
    escalation's outbox rows (to the head and the overdue notice to the handler) and its event
    exist once, and each complaint was handled by exactly one of them."""
    profile = load_profile("gov-window")
    org = await make_org()
    ids = []
    for i in range(12):
        complaint = await file(profile, local("2026-09-30T10:00"), user=f"c{i}")
        await accept(profile, org, complaint, local("2026-09-30T10:30"))
        await assign(profile, org, complaint, local("2026-09-30T11:00"))
        ids.append(complaint.id)
    resolution_due = (await Complaint.get(id=ids[0])).deadlines["resolution"]["due"]
    now = datetime.fromisoformat(resolution_due) + timedelta(minutes=5)
    before = set(await outbox_keys())
    reports: list[SweepReport] = await asyncio.gather(
        sweep(now, profile=profile, context=CONTEXT, batch_size=3),
        sweep(now, profile=profile, context=CONTEXT, batch_size=3),
    )
    assert sum(r.complaints for r in reports) == len(ids)
    assert not any(r.failed for r in reports)
    escalations = await Event.filter(action="escalated").values_list("complaint_id", flat=True)
    assert sorted(escalations) == sorted(ids)  # one escalation event per complaint
    keys = [
        key
        for key in await OutboxMessage.filter(complaint_id__in=ids).values_list(
            "idempotency_key", flat=True
        )
        if key not in before
    ]
    assert len(keys) == len(set(keys))
    escalate_keys = [k for k in keys if k.startswith("escalate:")]
    overdue_keys = [k for k in keys if k.startswith("overdue:")]
    assert {int(k.split(":")[1]) for k in escalate_keys} == set(ids)
    assert {int(k.split(":")[1]) for k in overdue_keys} == set(ids)
    assert sum(r.outbox_rows for r in reports) == len(keys)
    # A third sweep at the same instant finds nothing left to do.
    again = await sweep(now, profile=profile, context=CONTEXT, batch_size=3)
    assert again.complaints == 0
