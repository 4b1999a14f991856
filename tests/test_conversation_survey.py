"""The return-visit survey answered through the conversation shell (any channel)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.conversation import Conversation
from config.profiles import load_profile
from config.settings import Settings
from handlers.messages import Incoming
from models.alarms import set_alarm_context
from models.entities import Channel, Complaint, OutboxMessage, SurveyResponse
from models.outbox import outgoing_from_json
from models.workflow import State
from scheduler.jobs import sweep
from tests.scheduler_support import (
    CALENDAR,
    CONTEXT,
    accept,
    acknowledge,
    assign,
    file,
    local,
    make_org,
    reply,
)


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


async def _surveyed(profile_id: str) -> tuple[Complaint, str]:
    profile = load_profile(profile_id)
    org = await make_org()
    at = local("2026-11-23T10:00")  # Monday
    complaint = await file(profile, at - timedelta(hours=3))
    await accept(profile, org, complaint, at - timedelta(hours=2))
    await assign(profile, org, complaint, at - timedelta(hours=2))
    await acknowledge(profile, org, complaint, at - timedelta(hours=1))
    await reply(profile, org, complaint, at)
    await sweep(local("2026-11-30T10:00"), profile=profile, context=CONTEXT)
    row = await OutboxMessage.get(idempotency_key__startswith="survey:")
    return await Complaint.get(id=complaint.id), row.chat_id


def _talk(conversation: Conversation, user: str):  # type: ignore[no-untyped-def]
    counter = iter(range(1, 1000))

    async def send(**fields: object) -> list[str]:
        kind = "choice" if "choice" in fields else "text"
        incoming = Incoming(
            channel="telegram",
            user_id=user,
            kind=kind,
            message_id=f"{user}-{next(counter)}",
            **fields,
        )  # type: ignore[arg-type]
        replies = await conversation.handle(incoming)
        return [r.text for r in replies] + [c.id for r in replies for c in r.choices]

    return send


async def test_a_satisfied_answer_with_a_comment_closes_the_case(
    db_url: str, tmp_path: Path
) -> None:
    profile = load_profile("gov-window")
    complaint, chat = await _surveyed("gov-window")
    assert chat == "chat-u1"
    assert complaint.state == State.REVISIT
    invitation = outgoing_from_json(
        (await OutboxMessage.get(idempotency_key__startswith="survey:")).payload
    )
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data")  # type: ignore[arg-type]
    now = local("2026-11-30T11:00")
    conversation = Conversation(settings, profile, CALENDAR, now=lambda: now)
    send = _talk(conversation, "u1")
    said = await send(choice=invitation.choices[9].id)  # result 9
    assert f"sv:{complaint.id}:a:9:10" in said  # now the attitude buttons
    said = await send(choice=f"sv:{complaint.id}:a:9:10")
    assert f"sv:{complaint.id}:nc" in said  # an optional comment
    said = await send(text="处理很及时，谢谢")
    assert any("记录" in s for s in said)
    answer = await SurveyResponse.get(complaint_id=complaint.id)
    assert (answer.result_score, answer.attitude_score, answer.comment) == (
        9,
        10,
        "处理很及时，谢谢",
    )
    assert (await Complaint.get(id=complaint.id)).state == State.CLOSED
    # The next text is an ordinary message again, and a second answer changes nothing.
    said = await send(choice=f"sv:{complaint.id}:a:1:1")
    assert (await SurveyResponse.filter(complaint_id=complaint.id).count()) == 1
    assert (await Complaint.get(id=complaint.id)).state == State.CLOSED
    assert said and "sv:" not in " ".join(said)


async def test_an_unsatisfied_answer_reopens_and_a_stranger_cannot_answer(
    db_url: str, tmp_path: Path
) -> None:
    profile = load_profile("gov-window")
    complaint, _chat = await _surveyed("gov-window")
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data")  # type: ignore[arg-type]
    now = local("2026-11-30T11:00")
    conversation = Conversation(settings, profile, CALENDAR, now=lambda: now)
    stranger = _talk(conversation, "someone-else")
    await stranger(text="/start")  # makes them a known person with a dialog
    await stranger(choice=f"sv:{complaint.id}:a:0:0")
    assert await SurveyResponse.filter(complaint_id=complaint.id).count() == 0
    owner = _talk(conversation, "u1")
    await owner(choice=f"sv:{complaint.id}:a:2:6")
    assert (await Complaint.get(id=complaint.id)).state == State.REOPENED
    assert (await SurveyResponse.get(complaint_id=complaint.id)).result_score == 2
    assert await Complaint.filter(channel=Channel.TELEGRAM).count() == 1
