"""call-centre (R19 10010 scripts, R20 seat complaints, R25 方正 C版) walked on the injectable
clock: a technical solution within 3 working days; the return visit scored 0–10 in R19's bands;
an unsatisfied answer apologises and promises the service quality supervisor's revisit within 7
days (R19), the case leaves 回访中 for the supervisor, who sees it and may close or reopen it."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.staff import render_card
from handlers.survey import render_survey_outcome
from models.actions import ActionRefused, submit_complaint
from models.entities import (
    CallbackStatus,
    CallbackTask,
    Channel,
    Complaint,
    OutboxMessage,
    SurveyResponse,
)
from models.notifications import build_card, desk_cases
from models.workflow import Action, State
from tests.desk_support import MovableNow, desk_client, form_post, give_password, page, sign_in
from tests.profile_walk import (  # noqa: F401 (alarm_context: autouse fixture)
    MONDAY,
    Walk,
    alarm_context,
    assert_ships,
    due,
    end_of,
    local,
    texts_to,
)
from tests.scheduler_support import ANSWERS, SHANGHAI, clock


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


# -- R19: the return visit by phone, with the script, on the desk ---------------------------

CALLER = "gh1024"  # the 工号 the script names: the caller's desk sign-in


async def phoned_in(walk: Walk, category: str, user: str) -> tuple[Complaint, CallbackTask]:
    """A complaint taken by phone (代录), handled and replied; the survey becomes a call."""
    complaint = await submit_complaint(
        profile=walk.profile,
        channel=Channel.PHONE,
        external_id=f"phone-{user}",
        answers={**ANSWERS, "category": category, "name": "李四", "phone": "+8613900139000"},
        clock=clock(MONDAY),
        recorded_by=walk.staff("clerk"),
    )
    complaint = await walk.handle(complaint, MONDAY)
    complaint = await walk.reply(complaint, local("2026-11-04T10:00"))
    await walk.sweep(end_of("2026-11-05"))  # the survey is due: a call for the desk
    task = await CallbackTask.get(complaint_id=complaint.id, kind="survey")
    return await walk.fresh(complaint), task


async def outbox_ids() -> set[int]:
    return set(await OutboxMessage.all().values_list("id", flat=True))


async def received_since(before: set[int]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in await OutboxMessage.all().order_by("id"):
        if row.id not in before:
            found.setdefault(row.chat_id, []).append(row.idempotency_key.split(":")[0])
    return found


@pytest.mark.parametrize(
    ("category", "result", "attitude", "state", "closing", "told"),
    [
        # 8–10 on both: closed, the satisfied closing; nobody is messaged.
        ("technical", "9", "10", State.CLOSED, "如需帮助欢迎再次来电", {}),
        # 0–4 on one: the supervisor revisit, promised in the closing; the supervisor told.
        (
            "technical",
            "8",
            "3",
            State.SUPERVISOR_REVISIT,
            "我司的服务质量监督员将在7天内给您回访",
            {"supervisor": ["supervisor-revisit"]},
        ),
        # An SP complaint still unsatisfied: no supervisor revisit (R19), the case closes.
        ("sp", "2", "9", State.CLOSED, "很抱歉，没有给您提供满意的服务。您还有其它问题", {}),
    ],
)
async def test_a_phone_survey_follows_the_script_and_the_chat_surveys_bands(
    db_url: str,
    tmp_path: Path,
    category: str,
    result: str,
    attitude: str,
    state: State,
    closing: str,
    told: dict[str, list[str]],
) -> None:
    walk = await Walk.of("call-centre")
    complaint, task = await phoned_in(walk, category, user=category + result)
    await give_password(walk.staff("clerk"), CALLER)
    now = MovableNow(local("2026-11-06T09:00"))
    async with desk_client(db_url, tmp_path, now, profile="call-centre") as client:
        await sign_in(client, CALLER)
        html = await page(client, "/desk/callbacks")
        assert f"task-{task.id}" in html
        # R19's script, with the caller's 工号 and the complainant's name.
        assert f"工号{CALLER}，请问您是李四先生（小姐）吗" in html
        assert "在0-10分之间会打几分？（0至4分为不满意、5至7分为一般、8至10分为满意）" in html
        assert "请问您对我的服务态度会打几分" in html
        promised = "服务质量监督员将在7天内给您回访" in html
        assert promised == (category != "sp")  # never promised to an SP complaint's caller
        before = await outbox_ids()
        response = await form_post(
            client,
            f"/desk/callbacks/{task.id}",
            {"outcome": "reached", "result_score": result, "attitude_score": attitude},
            csrf_from="/desk/callbacks",
        )
        after = await page(client, response.headers["Location"])
        # The closing for what the survey logic decided, to end the call with.
        assert "script-closing" in after and closing in after
    complaint = await walk.fresh(complaint)
    assert complaint.state == state
    assert complaint.alarm_state["survey"]["answered"]
    response_row = await SurveyResponse.get(complaint_id=complaint.id)
    assert (response_row.result_score, response_row.attitude_score) == (int(result), int(attitude))
    # The complainant has no chat: nothing queued for them; the staff told are as expected.
    assert await received_since(before) == told
    assert (await CallbackTask.get(id=task.id)).status == CallbackStatus.DONE
