"""Who makes the property return visit in person (R7g 輕微投訴…由接單員進行回訪; 重大投訴…由服務
站站長進行回訪): a call-back task assigned to the order-taker for a minor case and to the station
chief for a major one, due with the revisit stage, the person told, reminded first, and the
visit's scores recorded as the survey answer — on the injectable clock, both databases."""

from __future__ import annotations

import re
from pathlib import Path

from config.profiles import load_profile
from models.callbacks import REVISIT_VISIT
from models.entities import CallbackOutcome, CallbackStatus, CallbackTask, Complaint, OutboxMessage
from models.workflow import Action, State
from scheduler.callbacks import complete_callback
from tests.desk_support import MovableNow, desk_client, give_password, page, sign_in
from tests.profile_walk import Walk, alarm_context, local, texts_to  # noqa: F401  (fixture)
from tests.scheduler_support import CONTEXT, clock, make_org

PROPERTY = load_profile("property")


async def _replied(walk: Walk, severity: str | None = None) -> Complaint:
    complaint = await walk.file(local("2026-10-05T09:00"), "equipment")
    complaint = await walk.handle(complaint, local("2026-10-05T09:10"))
    if severity is not None:
        complaint = await walk.act(
            complaint, Action.SET_SEVERITY, "handler", local("2026-10-05T09:30"), severity=severity
        )
    return await walk.reply(complaint, local("2026-10-05T15:00"))


async def test_the_order_taker_revisits_a_minor_case_and_records_the_scores(db_url: str) -> None:
    walk = Walk(PROPERTY, await make_org())
    complaint = await _replied(walk)
    assert complaint.severity == "minor"
    found = await walk.sweep(local("2026-10-05T17:00"))  # the revisit starts 2 h after the reply
    (task,) = await CallbackTask.filter(complaint_id=complaint.id, kind=REVISIT_VISIT)
    assert task.assignee_id == walk.org.clerk.id  # type: ignore[attr-defined]  # accepted it
    stored = await walk.fresh(complaint)
    assert task.due_at.isoformat() == stored.deadlines["revisit"]["due"].replace("Z", "+00:00")
    assert found["clerk"] == ["revisit-visit"]
    (notice,) = [t for t in await texts_to("clerk") if complaint.number in t and "📞" in t]
    assert "接单员" in notice
    # The resident in the chat is asked too; the visit's answer is the survey answer.
    assert found["chat-u1"] == ["survey"]
    result = await complete_callback(
        task.id,
        walk.org.clerk,
        outcome=CallbackOutcome.REACHED,
        profile=PROPERTY,
        clock=clock(local("2026-10-06T10:00")),
        result_score=9,
        attitude_score=10,
        context=CONTEXT,
    )
    assert result is not None
    stored = await walk.fresh(complaint)
    assert stored.state == State.CLOSED
    assert (await CallbackTask.get(id=task.id)).status == CallbackStatus.DONE


async def test_the_station_chief_revisits_a_major_case(db_url: str) -> None:
    walk = Walk(PROPERTY, await make_org())
    complaint = await _replied(walk, severity="major")
    await walk.sweep(local("2026-10-05T17:00"))
    (task,) = await CallbackTask.filter(complaint_id=complaint.id, kind=REVISIT_VISIT)
    # the head of the top department above the handling unit (centre ← unit)
    assert task.assignee_id == walk.org.centre_head.id  # type: ignore[attr-defined]
    (notice,) = [t for t in await texts_to("centre_head") if "📞" in t]
    assert complaint.number in notice and "站长" in notice


async def test_an_answer_in_the_chat_makes_the_visit_moot(db_url: str) -> None:
    walk = Walk(PROPERTY, await make_org())
    complaint = await _replied(walk)
    await walk.sweep(local("2026-10-05T17:00"))
    await walk.survey(complaint, 8, 9, local("2026-10-05T18:00"))
    (task,) = await CallbackTask.filter(complaint_id=complaint.id, kind=REVISIT_VISIT)
    assert task.status == CallbackStatus.CANCELLED


async def test_an_overdue_visit_reminds_the_person_who_owes_it_first(db_url: str) -> None:
    walk = Walk(PROPERTY, await make_org())
    complaint = await _replied(walk)
    await walk.sweep(local("2026-10-05T17:00"))
    (task,) = await CallbackTask.filter(complaint_id=complaint.id, kind=REVISIT_VISIT)
    before = await OutboxMessage.filter(chat_id="clerk").count()
    found = await walk.sweep(task.due_at.astimezone(CONTEXT.tz).replace(minute=59))
    assert await OutboxMessage.filter(chat_id="clerk").count() > before, found
    assert "handler" not in found or "clerk" in found


async def test_profiles_without_the_rule_open_no_visit(db_url: str) -> None:
    walk = Walk(load_profile("gov-window"), await make_org())
    complaint = await walk.file(local("2026-10-05T09:00"), "attitude")
    complaint = await walk.handle(complaint, local("2026-10-05T09:10"))
    complaint = await walk.reply(complaint, local("2026-10-05T15:00"))
    await walk.sweep(local("2026-10-08T17:00"))
    assert not await CallbackTask.filter(complaint_id=complaint.id, kind=REVISIT_VISIT).exists()


async def test_the_call_back_list_names_who_owes_the_visit(db_url: str, tmp_path: Path) -> None:
    """The desk's call-back list shows the visit with the person who owes it, and tells that
    person it is theirs."""
    walk = Walk(PROPERTY, await make_org())
    for login in ("clerk", "supervisor"):
        await give_password(walk.staff(login), login, now=local("2026-10-05T08:00"))
    complaint = await _replied(walk)
    await walk.sweep(local("2026-10-05T17:00"))
    now = MovableNow(local("2026-10-05T17:30"))
    async with desk_client(db_url, tmp_path, now, profile="property") as client:
        await sign_in(client, "clerk")
        mine = await page(client, "/desk/callbacks")
        card = mine[mine.index(complaint.number) - 400 :]
        assert "当面/电话回访（专人）" in card
        assert re.search(r"<dt>回访人</dt><dd>clerk <span class=\"tag\">您</span></dd>", card)
    async with desk_client(db_url, tmp_path, now, profile="property") as client:
        await sign_in(client, "supervisor")
        theirs = await page(client, "/desk/callbacks")
        assert "<dt>回访人</dt><dd>clerk</dd>" in theirs
