"""The return visit: survey sent after the delay, one reminder, no-response close, and each
answer band closing or reopening as the profile says; plus the pure survey dialog."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from config.profiles import Profile, load_profile
from handlers.survey import (
    SurveyAnswer,
    SurveyComment,
    handle_survey_choice,
    handle_survey_comment,
    parse_survey_choice,
    render_survey_refused,
    survey_invitation,
)
from models.actions import complaint_history
from models.alarms import iso, set_alarm_context
from models.entities import Complaint, Event, OutboxMessage, SurveyResponse
from models.outbox import outgoing_from_json
from models.workflow import State, derive_state
from scheduler.jobs import sweep
from scheduler.survey import add_survey_comment, overall_band, record_survey_answer
from tests.scheduler_support import (
    CONTEXT,
    Org,
    accept,
    acknowledge,
    assign,
    end_of,
    file,
    local,
    make_org,
    outbox_keys,
    reply,
)


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


async def replied(profile: Profile, org: Org, at: datetime) -> Complaint:
    complaint = await file(profile, at - timedelta(hours=3))
    await accept(profile, org, complaint, at - timedelta(hours=2))
    await assign(profile, org, complaint, at - timedelta(hours=2))
    await acknowledge(profile, org, complaint, at - timedelta(hours=1))
    await reply(profile, org, complaint, at)
    return await Complaint.get(id=complaint.id)


async def test_gov_window_survey_after_a_working_day_reminder_then_no_response_close(
    db_url: str,
) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    complaint = await replied(profile, org, local("2026-10-09T10:00"))
    assert complaint.state == State.REPLIED
    # Delay: 1 working day after Friday 9 Oct → Saturday 10 Oct (调休), at its close.
    send_at = end_of("2026-10-10")
    assert complaint.next_alarm_at == send_at
    await sweep(send_at - timedelta(seconds=1), profile=profile, context=CONTEXT)
    assert await outbox_keys("survey") == []
    report = await sweep(send_at, profile=profile, context=CONTEXT)
    assert report.surveys_sent == 1
    row = await OutboxMessage.get(idempotency_key__startswith="survey:")
    assert row.chat_id == "chat-u1"
    assert row.next_attempt_at == local("2026-10-12T09:00")  # not at midnight: Monday morning
    message = outgoing_from_json(row.payload)
    assert [c.id for c in message.choices] == [f"sv:{complaint.id}:r:{n}" for n in range(11)]
    assert (await Complaint.get(id=complaint.id)).state == State.REVISIT
    # One reminder after 1 more working day (Sunday skipped), then close after 2.
    await sweep(end_of("2026-10-11"), profile=profile, context=CONTEXT)
    assert await outbox_keys("survey-remind:") == []
    await sweep(end_of("2026-10-12"), profile=profile, context=CONTEXT)
    assert len(await outbox_keys("survey-remind:")) == 1
    await sweep(end_of("2026-10-12") + timedelta(hours=3), profile=profile, context=CONTEXT)
    assert len(await outbox_keys("survey-remind:")) == 1
    report = await sweep(end_of("2026-10-13"), profile=profile, context=CONTEXT)
    assert report.closed_no_response == 1
    closed = await Complaint.get(id=complaint.id)
    assert closed.state == State.CLOSED and closed.next_alarm_at is None
    response = await SurveyResponse.get(complaint_id=complaint.id)
    assert response.no_response and response.handler_id == org.handler.id  # type: ignore[attr-defined]
    assert response.department_id == org.unit.id  # type: ignore[attr-defined]
    assert len(await outbox_keys("closed-no-response:")) == 1
    close = await Event.get(complaint_id=complaint.id, to_state="closed")
    assert close.payload["reason"] == "no_response" and close.actor_role == "system"
    # The scheduler's own events (reminders) keep the event chain provable.
    assert derive_state(await complaint_history(closed)) == State.CLOSED


async def test_catch_up_sends_the_survey_once_and_gives_the_full_time_to_answer(
    db_url: str,
) -> None:
    profile = load_profile("property")
    org = await make_org()
    complaint = await replied(profile, org, local("2026-10-03T22:00"))
    # 2 hours later on the clock (24-hour duty, holiday or not).
    assert complaint.next_alarm_at == local("2026-10-04T00:00")
    # The scheduler was down for days: the survey goes out once on restart, and the reminder
    # and no-response clocks start then — the complainant never had the survey before.
    late = local("2026-10-12T10:00")
    first = await sweep(late, profile=profile, context=CONTEXT)
    second = await sweep(late, profile=profile, context=CONTEXT)
    assert (first.surveys_sent, first.closed_no_response, first.survey_reminders) == (1, 0, 0)
    assert (second.complaints, second.surveys_sent) == (0, 0)
    assert len(await outbox_keys("survey:")) == 1
    stored = await Complaint.get(id=complaint.id)
    assert stored.deadlines["survey_reminder"]["due"] == iso(late + timedelta(hours=24))
    # Sooner than that: the reminder of the order-taker's own return visit (R7g), which is owed
    # within the profile's call-back limit when the revisit stage ran out during the downtime.
    assert stored.next_alarm_at is not None and stored.next_alarm_at < late + timedelta(hours=24)
    assert (await sweep(late + timedelta(hours=24), profile=profile)).survey_reminders == 1


ANSWER_NOW = local("2026-11-04T08:30")


@pytest.mark.parametrize(
    ("profile_id", "result", "attitude", "status", "state"),
    [
        ("gov-window", 8, 10, "closed", State.CLOSED),
        ("gov-window", 5, 9, "closed", State.CLOSED),  # neutral closes too
        ("gov-window", 4, 10, "reopened", State.REOPENED),
        ("gov-window", 10, 0, "reopened", State.REOPENED),  # the worse band counts
        ("tax-service", 7, 7, "closed", State.CLOSED),
        ("tax-service", 0, 0, "reopened", State.REOPENED),
        ("property", 9, 9, "closed", State.CLOSED),
        ("property", 3, 8, "supervisor_revisit", State.SUPERVISOR_REVISIT),
    ],
)
async def test_each_answer_band_follows_the_profile(
    db_url: str, profile_id: str, result: int, attitude: int, status: str, state: State
) -> None:
    profile = load_profile(profile_id)
    org = await make_org()
    complaint = await replied(profile, org, local("2026-11-02T10:00"))
    await sweep(local("2026-11-04T08:00"), profile=profile, context=CONTEXT)
    assert (await Complaint.get(id=complaint.id)).state == State.REVISIT
    reminders = len(await outbox_keys("survey-remind:"))
    outcome = await record_survey_answer(
        complaint.id, result, attitude, " 很好 ", ANSWER_NOW, profile, context=CONTEXT
    )
    assert outcome.status == status
    stored = await Complaint.get(id=complaint.id)
    assert stored.state == state
    response = await SurveyResponse.get(complaint_id=complaint.id)
    assert (response.result_score, response.attitude_score, response.comment) == (
        result,
        attitude,
        "很好",
    )
    assert response.handler_id == org.handler.id  # type: ignore[attr-defined]
    again = await record_survey_answer(
        complaint.id, 10, 10, None, ANSWER_NOW, profile, context=CONTEXT
    )
    assert again.status in ("already_answered", "not_open")
    assert await SurveyResponse.filter(complaint_id=complaint.id).count() == 1
    # Answered: no reminder and no no-response close follow.
    await sweep(local("2026-11-30T00:00"), profile=profile, context=CONTEXT)
    assert len(await outbox_keys("survey-remind:")) == reminders
    assert not await SurveyResponse.filter(complaint_id=complaint.id, no_response=True).exists()


async def test_unsatisfied_property_answer_starts_a_watched_supervisor_revisit(
    db_url: str,
) -> None:
    profile = load_profile("property")
    org = await make_org()
    complaint = await replied(profile, org, local("2026-11-02T10:00"))
    await sweep(local("2026-11-02T12:00"), profile=profile, context=CONTEXT)
    outcome = await record_survey_answer(
        complaint.id, 2, 2, "还是漏水", ANSWER_NOW, profile, context=CONTEXT
    )
    assert outcome.status == "supervisor_revisit"
    told = await OutboxMessage.get(idempotency_key__startswith="supervisor-revisit:")
    assert told.chat_id == "supervisor" and "还是漏水" in told.payload["text"]
    stored = await Complaint.get(id=complaint.id)
    # Due within 7 calendar days: the close of 11 Nov; escalated to the admin when missed.
    assert stored.alarm_state["supervisor_revisit"]["due"] == end_of("2026-11-11").isoformat()
    due = end_of("2026-11-11")
    for before in (timedelta(hours=2), timedelta(minutes=30)):  # the property's reminder points
        await sweep(due - before, profile=profile, context=CONTEXT)
    reminded = await outbox_keys("remind:")
    assert len(reminded) == 2 and all(k.endswith(f":{org.supervisor.id}") for k in reminded)
    await sweep(due, profile=profile, context=CONTEXT)
    keys = await outbox_keys("escalate:")
    assert len(keys) == 1 and keys[0].endswith(f":{org.admin.id}")


async def test_answers_are_refused_when_not_in_revisit_or_forged(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    complaint = await replied(profile, org, local("2026-11-02T10:00"))
    early = await record_survey_answer(complaint.id, 9, 9, None, ANSWER_NOW, profile)
    assert early.status == "not_open"  # the survey was not sent yet
    await sweep(local("2026-11-20T00:00"), profile=profile, context=CONTEXT, limit=1)
    now = local("2026-11-20T01:00")
    forged = await record_survey_answer(complaint.id, 0, 0, None, now, profile, complainant_id=999)
    assert forged.status == "not_open"
    owner = complaint.complainant_id  # type: ignore[attr-defined]
    ok = await record_survey_answer(complaint.id, 9, 9, None, now, profile, complainant_id=owner)
    assert ok.status == "closed" and ok.band == "satisfied"
    assert await add_survey_comment(complaint.id, "谢谢", complainant_id=owner)
    assert (await SurveyResponse.get(complaint_id=complaint.id)).comment == "谢谢"
    assert not await add_survey_comment(complaint.id, "x", complainant_id=999)


def test_overall_band_takes_the_worse_score() -> None:
    bands = load_profile("gov-window").revisit.satisfaction  # type: ignore[union-attr]
    assert overall_band(bands, 10, 10) == "satisfied"
    assert overall_band(bands, 10, 7) == "neutral"
    assert overall_band(bands, 5, 4) == "unsatisfied"
    with pytest.raises(ValueError):
        overall_band(bands, 11, 5)


def test_survey_dialog_walks_result_attitude_comment() -> None:
    invite = survey_invitation(12, "202611-0003", "en")
    assert "202611-0003" in invite.text and len(invite.choices) == 11
    turn = handle_survey_choice("sv:12:r:7", "en")
    assert turn is not None and not turn.commands and turn.awaiting_comment is None
    assert [c.id for c in turn.replies[0].choices] == [f"sv:12:a:7:{n}" for n in range(11)]
    turn = handle_survey_choice("sv:12:a:7:9", "zh_CN")
    assert turn is not None
    assert turn.commands == [SurveyAnswer(12, 7, 9)] and turn.awaiting_comment == 12
    assert turn.replies[0].choices[0].id == "sv:12:nc"
    comment = handle_survey_comment(12, "  办得快 ", "zh_CN")
    assert comment.commands == [SurveyComment(12, "办得快")] and comment.awaiting_comment is None
    skip = handle_survey_choice("sv:12:nc", "zh_TW")
    assert skip is not None and not skip.commands and skip.replies[0].text.startswith("感謝")
    assert "closed" in render_survey_refused("not_open", "en").text
    assert render_survey_refused("already_answered", "zh_CN").text.startswith("您已评价")
    too_long = handle_survey_comment(12, "字" * 1001, "en")
    assert not too_long.commands and too_long.awaiting_comment == 12


@pytest.mark.parametrize(
    "choice",
    ["sv:12:r:11", "sv:12:r:-1", "sv:x:r:5", "sv:12:a:5", "sv:12:q:1", "xx:12:r:5", "sv:12"],
)
def test_forged_or_foreign_choices_are_not_survey_presses(choice: str) -> None:
    assert parse_survey_choice(choice) is None
    assert handle_survey_choice(choice, "en") is None
