"""call-centre (R19 10010 scripts, R20 seat complaints, R25 方正 C版) walked on the injectable
clock: a technical solution within 3 working days; the return visit scored 0–10 in R19's bands;
an unsatisfied answer apologises and promises the service quality supervisor's revisit within 7
days (R19), the case leaves 回访中 for the supervisor, who sees it and may close or reopen it."""

from __future__ import annotations

import pytest

from handlers.staff import render_card
from handlers.survey import render_survey_outcome
from models.actions import ActionRefused
from models.notifications import build_card, desk_cases
from models.workflow import Action, State
from tests.profile_walk import (  # noqa: F401 (alarm_context: autouse fixture)
    Walk,
    alarm_context,
    assert_ships,
    due,
    end_of,
    local,
    texts_to,
)
from tests.scheduler_support import SHANGHAI

MONDAY = local("2026-11-02T10:00")


def test_ships_with_r19_bands() -> None:
    profile = assert_ships("call-centre")
    assert profile.revisit is not None
    bands = profile.revisit.satisfaction
    assert [bands.band(n) for n in (0, 4, 5, 7, 8, 10)] == [
        "unsatisfied",
        "unsatisfied",
        "neutral",
        "neutral",
        "satisfied",
        "satisfied",
    ]


async def replied(walk: Walk, user: str = "u1"):  # type: ignore[no-untyped-def]
    complaint = await walk.handle(await walk.file(MONDAY, "technical", user=user), MONDAY)
    assert due(complaint, "resolution") == end_of("2026-11-05")  # 3个工作日提供有效解决方案
    complaint = await walk.reply(complaint, local("2026-11-04T10:00"))
    assert (await walk.sweep(end_of("2026-11-05")))[f"chat-{user}"] == ["survey"]
    return await walk.fresh(complaint)


@pytest.mark.parametrize(("result", "attitude"), [(5, 9), (8, 8)])
async def test_neutral_or_satisfied_closes(db_url: str, result: int, attitude: int) -> None:
    walk = await Walk.of("call-centre")
    complaint = await replied(walk)
    outcome = await walk.survey(complaint, result, attitude, local("2026-11-06T09:00"))
    assert outcome.status == "closed"
    assert (await walk.fresh(complaint)).state == State.CLOSED


async def test_unsatisfied_goes_to_the_supervisor_and_leaves_the_revisit(db_url: str) -> None:
    walk = await Walk.of("call-centre")
    complaint = await replied(walk)
    answered = local("2026-11-06T09:00")
    outcome = await walk.survey(complaint, 9, 4, answered)  # the attitude decides: 0–4
    assert outcome.status == "supervisor_revisit"
    assert outcome.due == end_of("2026-11-13")  # 7 calendar days
    complaint = await walk.fresh(complaint)
    # The survey is answered: the case leaves 回访中, its reminder and no-response close stop.
    assert complaint.state == State.SUPERVISOR_REVISIT
    assert complaint.deadlines["survey_reminder"]["done"]
    assert complaint.deadlines["auto_close"]["done"]
    assert complaint.next_due_stage == "supervisor_revisit"
    # R19's words to the complainant (what the chat shell sends after the answer).
    told = render_survey_outcome(outcome.status, complaint.number, "2026年11月13日 23:59", "zh_CN")
    assert told is not None
    assert (
        told.text.startswith("很抱歉") and "服务质量监督员将在 2026年11月13日 23:59 前" in told.text
    )
    # The supervisors are told, with the scores and the date.
    [notice] = await texts_to("supervisor")
    assert complaint.number in notice and "11月13日 23:59" in notice and "态度 4/10" in notice
    # No more survey reminder; the supervisor's list has the case, the handler's does not.
    assert await walk.sweep(end_of("2026-11-09")) == {}
    assert [c.id for c in await desk_cases(walk.org.supervisor)] == [complaint.id]
    assert await desk_cases(walk.org.handler) == []
    card, _ = await build_card(complaint, walk.org.supervisor, walk.profile, None)
    assert {"close", "reopen"} <= set(card.actions)
    shown = render_card(card, "zh_CN", SHANGHAI)
    assert "满意度提醒" not in shown and "回访中" not in shown
    # Missed: the supervisors hear it is overdue, the admins are escalated to.
    assert await walk.sweep(end_of("2026-11-13")) == {
        "supervisor": ["overdue"],
        "admin": ["escalate"],
    }
    # The supervisor reopens it for re-investigation (or closes it).
    complaint = await walk.act(complaint, Action.REOPEN, "supervisor", local("2026-11-10T10:00"))
    assert complaint.state == State.REOPENED
    assert complaint.alarm_state["supervisor_revisit"]["done"]
    assert await desk_cases(walk.org.supervisor) == [] or all(
        c.state != str(State.SUPERVISOR_REVISIT) for c in await desk_cases(walk.org.supervisor)
    )


async def test_the_supervisor_may_close_but_the_complainant_cannot_withdraw(db_url: str) -> None:
    walk = await Walk.of("call-centre")
    complaint = await replied(walk)
    await walk.survey(complaint, 1, 1, local("2026-11-06T09:00"))
    with pytest.raises(ActionRefused):
        await walk.act(complaint, Action.CLOSE, "handler", local("2026-11-06T10:00"))
    complaint = await walk.act(complaint, Action.CLOSE, "supervisor", local("2026-11-06T10:00"))
    assert complaint.state == State.CLOSED
