"""The property profile walked rule by rule on the injectable clock (R7a–R7g, REGIMES.md §2.4):
severity at acceptance and raised while open, the automatic 重大 upgrades, first contact within
24 hours of the report, the department's 1-hour plan, emergencies as urgent cases, and the
unsatisfied survey's supervisor revisit — with the messages each person receives."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from config.profiles import load_profile
from handlers.dialog import render_submitted
from models.actions import ActionRefused, Actor, act, complainant_promise, submit_complaint
from models.alarms import MANAGER_NOTICE, iso
from models.entities import Channel, Complaint, Event, OutboxMessage
from models.notifications import desk_cases
from models.outbox import outgoing_from_json
from models.workflow import Action, Role, State
from scheduler.jobs import sweep
from scheduler.severity import upgrade_unsettled
from scheduler.survey import record_survey_answer
from tests.dialog_chat import Chat
from tests.profile_walk import alarm_context  # noqa: F401 (autouse fixture)
from tests.scheduler_support import (
    ANSWERS,
    CONTEXT,
    SHANGHAI,
    accept,
    acknowledge,
    assign,
    clock,
    file,
    local,
    make_org,
    reply,
)

PROPERTY = load_profile("property")
HOUR = timedelta(hours=1)


async def run(at: datetime) -> dict[str, list[str]]:
    """Sweep at `at`; the new outbox rows as {chat: [key kind, ...]}."""
    before = set(await OutboxMessage.all().values_list("id", flat=True))
    await sweep(at, profile=PROPERTY, context=CONTEXT)
    found: dict[str, list[str]] = {}
    for row in await OutboxMessage.all().order_by("id"):
        if row.id not in before:
            found.setdefault(row.chat_id, []).append(row.idempotency_key.split(":")[0])
    return found


async def texts_to(chat: str) -> list[str]:
    rows = await OutboxMessage.filter(chat_id=chat).order_by("id")
    return [outgoing_from_json(r.payload).text for r in rows]


async def test_receipt_promises_the_24_hour_feedback_not_the_5_minute_dispatch(
    db_url: str,
) -> None:
    filed = local("2026-10-03T22:00")
    complaint = await file(PROPERTY, filed)
    # R7c: dispatched within 5 minutes (internal); R7g: feedback to the resident within 24 h.
    assert complaint.deadlines["dispatch"]["due"] == iso(filed + timedelta(minutes=5))
    stage, due, _ = complainant_promise(complaint) or ("", filed, False)
    assert (stage, due) == ("first_contact", filed + 24 * HOUR)
    entry = complaint.deadlines[stage]
    term = (entry["amount"], entry["unit"])
    (receipt,) = render_submitted(
        complaint.number, due, False, "zh_CN", SHANGHAI, stage, term=term, now=filed
    )
    assert "已通知值班人员，将在24小时内（2026年10月4日 22:00前）与您联系" in receipt.text
    assert "答复您" not in receipt.text and "22:05" not in receipt.text


async def test_plan_within_one_hour_of_assignment_and_first_contact_from_receipt(
    db_url: str,
) -> None:
    org = await make_org()
    complaint = await file(PROPERTY, local("2026-10-03T22:00"))
    await accept(PROPERTY, org, complaint, local("2026-10-03T22:01"))
    await assign(PROPERTY, org, complaint, local("2026-10-03T22:04"))
    stored = await Complaint.get(id=complaint.id)
    assert stored.deadlines["action_plan"]["due"] == iso(local("2026-10-03T23:04"))
    # Assignment did not restart the resident's 24 hours.
    assert stored.deadlines["first_contact"]["due"] == iso(local("2026-10-04T22:00"))
    # The complainant heard of the acceptance: contact by 22:00 tomorrow, handled in 3 days.
    [accepted, passed_on] = await texts_to("chat-u1")
    assert "我们将在 2026年10月4日 22:00 前联系您" in accepted
    assert "办理期限为 2026年10月6日 23:59" in accepted
    assert "已交由科室办理" in passed_on
    assert await run(local("2026-10-03T23:04")) == {
        "unit_head": ["escalate"],
        "handler": ["overdue"],
    }
    await acknowledge(PROPERTY, org, complaint, local("2026-10-03T23:10"))
    stored = await Complaint.get(id=complaint.id)
    assert stored.deadlines["action_plan"]["done"]


async def test_staff_raise_the_severity_while_open_and_the_major_rules_fire(db_url: str) -> None:
    org = await make_org()
    complaint = await file(PROPERTY, local("2026-10-05T09:00"))
    await accept(PROPERTY, org, complaint, local("2026-10-05T09:05"))
    await assign(PROPERTY, org, complaint, local("2026-10-05T09:10"))
    await acknowledge(PROPERTY, org, complaint, local("2026-10-05T09:20"))
    stored = await Complaint.get(id=complaint.id)
    assert stored.severity == "minor" and MANAGER_NOTICE not in stored.deadlines
    # The handler finds a resident injured: 重大 (R7g 人身傷害) at 11:00.
    raised = local("2026-10-05T11:00")
    await act(
        complaint.id,
        Action.SET_SEVERITY,
        Actor(Role.HANDLER, org.handler),
        profile=PROPERTY,
        clock=clock(raised),
        payload={"severity": "major"},
    )
    stored = await Complaint.get(id=complaint.id)
    assert stored.severity == "major" and stored.state == State.IN_PROGRESS
    # 12 hours from acceptance; the manager told within 10 minutes of the rating.
    assert stored.deadlines["resolution"]["due"] == iso(local("2026-10-05T21:05"))
    assert stored.deadlines[MANAGER_NOTICE]["due"] == iso(raised + timedelta(minutes=10))
    sent = await run(raised)
    assert sent["unit_head"] == ["manager-notice"]
    assert "supervisor" in sent
    # Lowering is refused: the seeds only ever upgrade.
    with pytest.raises(ActionRefused):
        await act(
            complaint.id,
            Action.SET_SEVERITY,
            Actor(Role.HANDLER, org.handler),
            profile=PROPERTY,
            clock=clock(raised + HOUR),
            payload={"severity": "minor"},
        )
    assert (await Complaint.get(id=complaint.id)).severity == "major"


async def test_the_same_resident_again_within_a_month_is_major_at_once(db_url: str) -> None:
    await make_org()
    first = await file(PROPERTY, local("2026-10-01T10:00"))
    assert first.severity == "minor"
    again = await file(PROPERTY, local("2026-10-20T10:00"))
    # R7g 多次提出而得不到解決: major on submission, the manager notice owed at once.
    assert again.severity == "major"
    assert again.intake_extra["severity_upgrade"] == "repeat"
    assert again.deadlines[MANAGER_NOTICE]["due"] == iso(local("2026-10-20T10:10"))
    other = await file(PROPERTY, local("2026-10-20T10:00"), user="u2", phone="+8613900000002")
    assert other.severity == "minor"  # another resident: no upgrade
    later = await file(PROPERTY, local("2026-12-01T10:00"), user="u2", phone="+8613900000002")
    assert later.severity == "minor"  # 42 days after u2's first: not "again within a month"


async def test_a_month_unsettled_becomes_major_by_itself(db_url: str) -> None:
    org = await make_org()
    complaint = await file(PROPERTY, local("2026-10-05T09:00"))
    await accept(PROPERTY, org, complaint, local("2026-10-05T09:05"))
    assert await upgrade_unsettled(local("2026-11-04T23:59"), profile=PROPERTY) == []
    raised = await upgrade_unsettled(local("2026-11-05T00:00"), profile=PROPERTY)
    assert raised == [complaint.number]
    stored = await Complaint.get(id=complaint.id)
    assert stored.severity == "major" and MANAGER_NOTICE in stored.deadlines
    event = await Event.filter(complaint_id=complaint.id, action="set_severity").first()
    assert event is not None and event.actor_role == Role.SYSTEM
    assert await upgrade_unsettled(local("2026-11-06T00:00"), profile=PROPERTY) == []


def test_an_emergency_gives_110_119_and_goes_on_as_an_urgent_case() -> None:
    chat = Chat(profile=PROPERTY, lang="zh_CN")
    chat.command("start")
    chat.choose("excl:crime_or_emergency")
    assert "110" in chat.said and "119" in chat.said
    assert "紧急投诉" in chat.said
    assert chat.where == ("intake", "category")  # not turned away
    assert chat.state is not None and chat.state.answers["urgent"] == "crime_or_emergency"


async def test_an_urgent_case_is_major_and_the_duty_desk_is_alerted_at_once(db_url: str) -> None:
    await make_org()
    filed = local("2026-10-03T03:00")  # night of a holiday
    complaint = await submit_complaint(
        profile=PROPERTY,
        channel=Channel.TELEGRAM,
        external_id="u9",
        chat_id="chat-u9",
        answers={**ANSWERS, "category": "security", "urgent": "crime_or_emergency"},
        clock=clock(filed),
    )
    assert complaint.severity == "major"
    assert complaint.intake_extra["urgent"] == "crime_or_emergency"
    # The duty desk (intake) is told now (24-hour duty), the managers by the next sweep.
    desk = await OutboxMessage.filter(chat_id="clerk")
    assert desk and all(r.next_attempt_at == filed for r in desk)
    assert "centre_head" in await run(filed)


def test_exclusions_no_longer_turn_away_what_the_seeds_accept() -> None:
    ids = {e.id for e in PROPERTY.exclusions}
    assert "illegal_construction" not in ids and "neighbour_dispute" not in ids
    subs = {
        f"{c.id}/{s.id}" for c in PROPERTY.categories for s in c.subcategories
    }  # R7d, R7g 4.1.3
    assert {"building/illegal_construction", "environment/shops", "other/neighbours"} <= subs


async def test_unsatisfied_survey_leaves_a_supervisor_revisit_and_tells_the_resident(
    db_url: str,
) -> None:
    org = await make_org()
    complaint = await file(PROPERTY, local("2026-10-05T09:00"))
    await accept(PROPERTY, org, complaint, local("2026-10-05T09:05"))
    await assign(PROPERTY, org, complaint, local("2026-10-05T09:10"))
    await acknowledge(PROPERTY, org, complaint, local("2026-10-05T09:20"))
    await reply(PROPERTY, org, complaint, local("2026-10-05T15:00"))
    await run(local("2026-10-05T17:00"))  # the survey goes out 2 hours after the reply
    stored = await Complaint.get(id=complaint.id)
    assert stored.state == State.REVISIT
    outcome = await record_survey_answer(
        complaint.id, 2, 6, None, local("2026-10-05T18:00"), PROPERTY, context=CONTEXT
    )
    assert outcome.status == "supervisor_revisit"
    assert outcome.due == local("2026-10-12T23:59:59.999999")
    stored = await Complaint.get(id=complaint.id)
    # The survey's reminder and no-response close stop; the case leaves 回访中 and the
    # supervisor revisit is what it waits for.
    assert stored.state == State.SUPERVISOR_REVISIT
    assert stored.deadlines["survey_reminder"]["done"]
    assert stored.next_due_stage == "supervisor_revisit"
    assert await run(local("2026-10-06T18:00")) == {}  # no survey reminder any more
    supervisor_list = await desk_cases(org.supervisor)
    assert complaint.id in [c.id for c in supervisor_list]
    assert [c.id for c in await desk_cases(org.handler)] == []
    # The supervisor may close (or reopen) it.
    await act(
        complaint.id,
        Action.CLOSE,
        Actor(Role.SUPERVISOR, org.supervisor),
        profile=PROPERTY,
        clock=clock(local("2026-10-08T10:00")),
    )
    assert (await Complaint.get(id=complaint.id)).state == State.CLOSED


def test_profiles_explain_prints_the_markdown_table(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["profiles", "explain", "property", "--markdown"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| config key | value | seed file | regime |")
    assert "| deadlines.first_contact | 24 hours | 004_3088d8cc6c892c4f.txt | R7g |" in table
