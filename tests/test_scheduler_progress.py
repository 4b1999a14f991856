"""Periodic progress messages to the complainant ("still being handled, due on …"), on a real
database through the sweep: the profile's interval, not while waiting for the complainant, once
per period, catch-up, languages and the provisional mark."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from config.profiles import Profile, load_profile
from handlers.messages import Outgoing
from models.actions import Actor, act, submit_complaint
from models.alarms import (
    PROGRESS,
    AlarmKind,
    CaseView,
    iso,
    pending_alarms,
    progress_alarms,
    set_alarm_context,
)
from models.entities import Channel, Complaint, Event, OutboxMessage
from models.outbox import outgoing_from_json
from models.workflow import Action, Role, State
from scheduler.jobs import sweep
from tests.scheduler_support import (
    ANSWERS,
    CALENDAR,
    CONTEXT,
    SHANGHAI,
    Org,
    acknowledge,
    assign,
    clock,
    end_of,
    local,
    make_org,
)

SECOND = timedelta(seconds=1)
GOV = load_profile("gov-window")
TAX = load_profile("tax-service")


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


async def handled(
    profile: Profile,
    org: Org,
    category: str,
    at: datetime,
    *,
    user: str = "u1",
    language: str = "zh_CN",
) -> Complaint:
    """Filed, accepted in `category`, assigned and acknowledged, all at `at`."""
    complaint = await submit_complaint(
        profile=profile,
        channel=Channel.TELEGRAM,
        external_id=user,
        chat_id=f"chat-{user}",
        answers={**ANSWERS, "category": category},
        clock=clock(at),
        language=language,
    )
    clerk = Actor(Role.INTAKE_CLERK, org.clerk)
    await act(
        complaint.id,
        Action.ACCEPT,
        clerk,
        profile=profile,
        clock=clock(at),
        payload={"category": category},
    )
    await assign(profile, org, complaint, at)
    await acknowledge(profile, org, complaint, at)
    return await Complaint.get(id=complaint.id)


async def told(at: datetime, profile: Profile, chat: str = "chat-u1") -> list[str]:
    """Sweep at `at`; the keys of the new progress messages to the complainant's chat."""
    before = set(await OutboxMessage.all().values_list("id", flat=True))
    await sweep(at, profile=profile, context=CONTEXT)
    rows = await OutboxMessage.filter(chat_id=chat).order_by("id")
    return [
        r.idempotency_key
        for r in rows
        if r.id not in before and r.idempotency_key.startswith("progress:")
    ]


async def text_of(key: str) -> str:
    row = await OutboxMessage.get(idempotency_key=key)
    message = outgoing_from_json(row.payload)
    assert isinstance(message, Outgoing) and message.text is not None
    return message.text


async def test_gov_window_complex_case_hears_every_5_working_days_until_it_is_due(
    db_url: str,
) -> None:
    org = await make_org()
    complaint = await handled(GOV, org, "requirements", local("2026-09-30T10:30"))
    # Complex: 10 working days over the National Day holiday (Sat 10 Oct is 调休): Tue 20 Oct.
    assert complaint.deadlines["resolution"]["due"] == iso(end_of("2026-10-20"))
    # 5 working days on: 8, 9, 10, 12, 13 Oct → Tue 13 Oct, when the office opens.
    first, second = local("2026-10-13T09:00"), local("2026-10-20T09:00")
    for point in (first, second):
        assert await told(point - SECOND, GOV) == []
        assert await told(point, GOV) == [f"progress:{complaint.id}:{iso(point)}"]
        assert await told(point, GOV) == []
    # The next period (27 Oct) would fall after the deadline: escalation's business, not ours.
    assert await told(local("2026-11-30T12:00"), GOV) == []
    text = await text_of(f"progress:{complaint.id}:{iso(first)}")
    assert text == (
        f"您的投诉 {complaint.number} 正在办理中，办结时限为 2026年10月20日。"
        "有进展时我们会及时告知您。"
    )
    events = await Event.filter(complaint_id=complaint.id, action="progress_sent").order_by("id")
    assert [e.payload["period"] for e in events] == [iso(first), iso(second)]
    assert all(e.from_state == e.to_state == State.IN_PROGRESS for e in events)
    # Delivered at once: the points are inside office hours on working days.
    rows = await OutboxMessage.filter(idempotency_key__startswith="progress:").order_by("id")
    assert [r.next_attempt_at for r in rows] == [first, second]


async def test_no_progress_message_while_waiting_for_the_complainant(db_url: str) -> None:
    org = await make_org()
    complaint = await handled(TAX, org, "service_quality", local("2026-11-02T10:00"))
    handler = Actor(Role.HANDLER, org.handler)
    await act(
        complaint.id,
        Action.REQUEST_MATERIAL,
        handler,
        profile=TAX,
        clock=clock(local("2026-11-05T10:00")),
        payload={"question": "请提供办税回执。"},
    )
    # The first period (Mon 9 Nov, 09:00) passes while the clock is paused: nothing is sent.
    assert await told(local("2026-11-10T12:00"), TAX) == []
    resumed = local("2026-11-11T10:00")
    await act(complaint.id, Action.RESUME, handler, profile=TAX, clock=clock(resumed))
    stored = await Complaint.get(id=complaint.id)
    due = datetime.fromisoformat(stored.deadlines["resolution"]["due"])
    assert due > end_of("2026-11-16")  # the paused working days were added back
    # Counted afresh from the resume: 12, 13, 16, 17, 18 Nov → Wed 18 Nov at 09:00.
    point = local("2026-11-18T09:00")
    assert await told(point - SECOND, TAX) == []
    assert await told(point, TAX) == [f"progress:{complaint.id}:{iso(point)}"]


async def test_catch_up_tells_only_the_latest_period_once(db_url: str) -> None:
    org = await make_org()
    complaint = await handled(GOV, org, "requirements", local("2026-09-30T10:30"))
    # Down from before the first period until after the second: one message, the latest.
    latest = local("2026-10-20T09:00")
    assert await told(local("2026-10-20T10:00"), GOV) == [f"progress:{complaint.id}:{iso(latest)}"]
    assert await told(local("2026-10-20T10:00"), GOV) == []
    event = await Event.get(complaint_id=complaint.id, action="progress_sent")
    assert event.payload["skipped"] == 1 and event.payload["reachable"] is True


async def test_a_lost_progress_record_never_sends_the_period_twice(db_url: str) -> None:
    org = await make_org()
    complaint = await handled(GOV, org, "requirements", local("2026-09-30T10:30"))
    point = local("2026-10-13T09:00")
    assert len(await told(point, GOV)) == 1
    # As if the sweeper's own record were lost: the same period is planned again, and the
    # outbox's idempotency key (complaint and period) refuses the second copy.
    stored = await Complaint.get(id=complaint.id)
    state = dict(stored.alarm_state or {})
    state.pop(PROGRESS)
    await Complaint.filter(id=complaint.id).update(alarm_state=state, next_alarm_at=point)
    assert await told(local("2026-10-13T09:05"), GOV) == []
    assert await OutboxMessage.filter(idempotency_key__startswith="progress:").count() == 1


async def test_english_message_marks_a_provisional_due_date(db_url: str) -> None:
    org = await make_org()
    complaint = await handled(
        GOV, org, "requirements", local("2026-12-21T10:00"), user="en1", language="en"
    )
    assert complaint.deadlines["resolution"]["provisional"]  # 2027: no official calendar yet
    due = datetime.fromisoformat(complaint.deadlines["resolution"]["due"])
    point = local("2026-12-28T09:00")  # 22, 23, 24, 25, 28 Dec
    keys = await told(point, GOV, chat="chat-en1")
    assert keys == [f"progress:{complaint.id}:{iso(point)}"]
    text = await text_of(keys[0])
    day = due.astimezone(SHANGHAI).strftime("%b %-d, %Y")
    assert text.startswith(f"Your complaint {complaint.number} is still being handled; it is due")
    assert f"due on {day} (provisional: the official holiday calendar" in text


def test_profiles_without_progress_and_states_not_handled_get_none() -> None:
    start, due = local("2026-09-30T10:30"), end_of("2026-10-20")
    resolution = {"start": iso(start), "amount": 10, "unit": "working_days", "due": iso(due)}
    running = CaseView(State.IN_PROGRESS, {"resolution": resolution}, {})
    assert [a.at for a in progress_alarms(running, GOV, CALENDAR, SHANGHAI)] == [
        local("2026-10-13T09:00")
    ]
    assert progress_alarms(running, load_profile("property"), CALENDAR, SHANGHAI) == []
    for state in (State.SUBMITTED, State.RESOLVED, State.REPLIED, State.REVISIT):
        view = CaseView(state, {"resolution": resolution}, {})
        assert progress_alarms(view, GOV, CALENDAR, SHANGHAI) == [], state
    waiting = CaseView(State.WAITING_FOR_COMPLAINANT, {"resolution": resolution}, {}, paused=True)
    assert pending_alarms(waiting, GOV, CALENDAR, SHANGHAI) == []
    # A reopened case counts from its new resolution clock, not the old record.
    reopened_start = local("2026-11-02T10:00")
    reopened = CaseView(
        State.REOPENED,
        {
            "resolution": {
                **resolution,
                "start": iso(reopened_start),
                "due": iso(end_of("2026-11-16")),
            }
        },
        {PROGRESS: {"anchor": iso(start), "last": iso(local("2026-10-20T09:00"))}},
    )
    alarms = progress_alarms(reopened, GOV, CALENDAR, SHANGHAI)
    assert [(a.kind, a.at) for a in alarms] == [(AlarmKind.PROGRESS, local("2026-11-09T09:00"))]
