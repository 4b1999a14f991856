"""Repeat and mass complaints on both databases: the repeat linked at submission (by phone
across channels, only inside the window and with similar text), severity only where the
profile says, staff linking by hand, and a mass matter proposed, confirmed and answered in one
decision — each complainant with their own reply and survey."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from config.profiles import load_profile
from models.actions import (
    ActionRefused,
    Actor,
    act,
    confirm_group,
    decide_group,
    dismiss_group,
    remove_from_group,
    submit_complaint,
)
from models.alarms import set_alarm_context
from models.entities import CallbackTask, Channel, Complaint, Event, OutboxMessage
from models.matters import GroupStatus, MatterGroup, RepeatLink, group_of, repeat_of
from models.outbox import outgoing_from_json
from models.workflow import Action, Role, State
from scheduler.jobs import sweep
from scheduler.matters import propose_mass_matters
from tests.scheduler_support import CONTEXT, clock, end_of, local, make_org

GOV = load_profile("gov-window")
PROPERTY = load_profile("property")
PHONE = "+8613812345678"
FIRST = "窗口工作人员态度恶劣，拒绝解释材料要求。"
AGAIN = "上次投诉窗口工作人员态度差的事还没有答复，工作人员仍然拒绝解释材料要求。"
OTHER = "排队叫号系统坏了，等了两个小时也没有人管。"


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


def answers(facts: str, **more: Any) -> dict[str, Any]:
    return {
        "category": "service_attitude",
        "target_kind": "department",
        "target_text": "不动产登记窗口",
        "incident_time": "2026-09-29T02:00:00+00:00",
        "place_text": "市民中心 3 楼",
        "facts": facts,
        "request_type": "apology",
        "name": "张三",
        "phone": PHONE,
        **more,
    }


async def file(
    at: datetime,
    facts: str,
    *,
    channel: Channel = Channel.TELEGRAM,
    user: str = "u1",
    profile: Any = GOV,
    **more: Any,
) -> Complaint:
    return await submit_complaint(
        profile=profile,
        channel=channel,
        external_id=user,
        chat_id=f"chat-{user}",
        answers=answers(facts, **more),
        clock=clock(at),
    )


async def test_a_repeat_is_linked_across_two_channels_by_phone(db_url: str) -> None:
    first = await file(local("2026-10-09T10:00"), FIRST)
    # Another identity (the web chat), the same phone: the same person.
    again = await file(local("2026-10-14T10:00"), AGAIN, channel=Channel.WEB, user="browser-7")
    assert again.complainant_id != first.complainant_id  # type: ignore[attr-defined]
    link = await RepeatLink.get(complaint_id=again.id).prefetch_related("repeat_of")
    assert link.repeat_of.number == first.number
    assert str(link.source) == "detected" and link.score is not None and link.score > 0.5
    event = await Event.get(complaint_id=again.id, action="link_repeat")
    assert event.actor_role == Role.SYSTEM and event.payload["repeat_of"] == first.number
    view = await repeat_of(again.id)
    assert view is not None and view.number == first.number
    # The earlier one repeats nothing.
    assert await repeat_of(first.id) is None
    # gov-window does not count repeats toward severity.
    assert again.severity == first.severity


async def test_no_link_outside_the_window_or_with_other_text_or_anonymous(db_url: str) -> None:
    await file(local("2026-09-01T10:00"), FIRST)
    late = await file(local("2026-10-09T10:00"), AGAIN)  # 38 days on: outside 30 days
    await file(local("2026-10-10T10:00"), OTHER)  # in the window, another matter
    await file(local("2026-10-11T10:00"), AGAIN, anonymous=True)  # nobody to recognise
    await file(local("2026-10-11T11:00"), AGAIN, user="u9", phone="+8613900000009")  # another
    assert await RepeatLink.all().count() == 0
    assert await Event.filter(action="link_repeat").count() == 0
    # The same matter again inside the window of `late` (not of the first, 41 days back).
    echo = await file(local("2026-10-12T10:00"), FIRST)
    links = await RepeatLink.all().values_list("complaint_id", "repeat_of_id")
    assert links == [(echo.id, late.id)]


async def test_severity_rises_for_a_repeat_only_where_the_profile_says(db_url: str) -> None:
    await make_org()
    first = await file(local("2026-10-01T10:00"), FIRST, profile=PROPERTY, category="equipment")
    assert first.severity == "minor"
    # The same category, another matter: no longer "多次提出" under [repeats].
    unrelated = await file(local("2026-10-05T10:00"), OTHER, profile=PROPERTY, category="equipment")
    assert unrelated.severity == "minor"
    again = await file(local("2026-10-20T10:00"), AGAIN, profile=PROPERTY, category="equipment")
    assert again.severity == "major" and again.intake_extra["severity_upgrade"] == "repeat"
    assert (await repeat_of(again.id)).number == first.number  # type: ignore[union-attr]
    # gov-window links the same repeat but keeps the severity.
    gov_first = await file(local("2026-10-01T10:00"), FIRST, user="g1", phone="+8613700000001")
    gov_again = await file(local("2026-10-20T10:00"), AGAIN, user="g1", phone="+8613700000001")
    assert (await repeat_of(gov_again.id)).number == gov_first.number  # type: ignore[union-attr]
    assert gov_again.severity == gov_first.severity


async def test_staff_link_and_unlink_a_repeat_by_hand(db_url: str) -> None:
    org = await make_org()
    first = await file(local("2026-10-09T10:00"), FIRST)
    later = await file(local("2026-10-12T10:00"), OTHER)
    assert await repeat_of(later.id) is None
    clerk = Actor(Role.INTAKE_CLERK, org.clerk)
    at = clock(local("2026-10-12T11:00"))
    await act(
        later.id, Action.LINK_REPEAT, clerk, profile=GOV, clock=at,
        payload={"repeat_of": first.number},
    )  # fmt: skip
    link = await RepeatLink.get(complaint_id=later.id)
    assert str(link.source) == "staff" and link.linked_by_id == org.clerk.id  # type: ignore[attr-defined]
    # Not the other way round: the earlier case cannot repeat a later one.
    with pytest.raises(ValueError):
        await act(
            first.id, Action.LINK_REPEAT, clerk, profile=GOV, clock=at,
            payload={"repeat_of": later.number},
        )  # fmt: skip
    # A handler not on the case may not.
    with pytest.raises(ActionRefused):
        await act(
            later.id, Action.UNLINK_REPEAT, Actor(Role.HANDLER, org.handler), profile=GOV,
            clock=at,
        )  # fmt: skip
    await act(later.id, Action.UNLINK_REPEAT, clerk, profile=GOV, clock=at)
    assert await repeat_of(later.id) is None
    events = await Event.filter(complaint_id=later.id, action__in=["link_repeat", "unlink_repeat"])
    assert [e.payload["repeat_of"] for e in events] == [first.number, first.number]
    with pytest.raises(ValueError):  # nothing left to unlink
        await act(later.id, Action.UNLINK_REPEAT, clerk, profile=GOV, clock=at)


MASS = [
    (
        "u1",
        Channel.TELEGRAM,
        "+8613800000001",
        "3号楼电梯坏了一个星期，一直没人来修，老人上下楼很困难。",
    ),
    ("u2", Channel.WECHAT, "+8613800000002", "3号楼的电梯停了快一周了，物业说报修了但没人来修。"),
    ("u3", Channel.WEB, "+8613800000003", "电梯坏了好几天，3号楼住户只能爬楼，请尽快修好电梯。"),
    ("u4", Channel.TELEGRAM, "+8613800000004", "3号楼电梯又坏了，困在楼上下不来，一周了没人修。"),
]


async def file_mass(at: datetime) -> list[Complaint]:
    filed = []
    for i, (user, channel, phone, facts) in enumerate(MASS):
        filed.append(
            await file(
                at + timedelta(minutes=10 * i), facts, channel=channel, user=user, phone=phone,
                target_text="物业服务中心", place_text="幸福小区3号楼", name=f"住户{i}",
            )
        )  # fmt: skip
    # A written complaint (a letter recorded at the desk) about the same matter.
    filed.append(
        await submit_complaint(
            profile=GOV,
            channel=Channel.LETTER,
            external_id="letter-1",
            answers=answers(
                "幸福小区3号楼电梯坏了一星期没人修，写信反映，请尽快修好。",
                phone="+8613800000005", target_text="物业服务中心", place_text="幸福小区3号楼",
                address="幸福小区3号楼2单元501",
            ),
            clock=clock(at + timedelta(hours=1)),
            recorded_by=(await _clerk()),
        )
    )  # fmt: skip
    return filed


async def _clerk() -> Any:
    from models.entities import Staff

    return await Staff.get(role=Role.INTAKE_CLERK)


async def test_a_mass_matter_is_proposed_confirmed_and_answered_in_one_decision(
    db_url: str,
) -> None:
    org = await make_org()
    at = local("2026-10-09T09:00")
    members = await file_mass(at)
    unrelated = await file(at + timedelta(hours=2), OTHER, user="u8", phone="+8613800000008")
    proposed_at = at + timedelta(hours=3)
    groups = await propose_mass_matters(proposed_at, profile=GOV, context=CONTEXT)
    assert len(groups) == 1
    group = await MatterGroup.get(id=groups[0])
    view = await group_of(members[0].id)
    assert view is not None and view.status == "proposed"
    assert {n for _, n, _ in view.members} == {m.number for m in members}
    assert await group_of(unrelated.id) is None
    # The supervisors hear of the proposal (on their chat), once.
    notices = await OutboxMessage.filter(idempotency_key__startswith=f"group:{group.id}:")
    assert [n.chat_id for n in notices] == [org.supervisor.telegram_chat_id]
    assert members[0].number in outgoing_from_json(notices[0].payload).text
    assert await propose_mass_matters(proposed_at, profile=GOV, context=CONTEXT) == []
    when = clock(at + timedelta(hours=4))
    # A handler may not confirm; a supervisor does.
    with pytest.raises(ActionRefused):
        await confirm_group(group.id, Actor(Role.HANDLER, org.handler), clock=when)
    with pytest.raises(ActionRefused):
        await decide_group(
            group.id, Actor(Role.DEPARTMENT_HEAD, org.unit_head), "x", profile=GOV, clock=when
        )
    supervisor = Actor(Role.SUPERVISOR, org.supervisor)
    await confirm_group(group.id, supervisor, clock=when)
    group = await MatterGroup.get(id=group.id)
    assert group.status == GroupStatus.CONFIRMED and group.reviewed_by_id == org.supervisor.id  # type: ignore[attr-defined]
    # u4 turns out to be another matter; u2 takes the complaint back before the decision.
    await remove_from_group(group.id, members[3].id, supervisor, clock=when)
    u2 = Actor(Role.COMPLAINANT, complainant=await members[1].complainant)  # type: ignore[misc]
    await act(members[1].id, Action.WITHDRAW, u2, profile=GOV, clock=when)
    # One of them was already accepted and assigned: a group decision takes any stage.
    await act(
        members[2].id, Action.ACCEPT, Actor(Role.INTAKE_CLERK, org.clerk), profile=GOV, clock=when
    )
    decision = "电梯已由维保单位于10月10日修复，物业已向3号楼住户致歉并加强巡检。"
    decided_at = at + timedelta(hours=5)
    outcome = await decide_group(
        group.id, supervisor, decision, profile=GOV, clock=clock(decided_at)
    )
    answered = [members[0], members[2], members[4]]
    assert sorted(outcome.resolved) == sorted(m.number for m in answered)
    assert outcome.not_resolved == [(members[1].number, "withdrawn", "illegal_state")]
    assert outcome.written == [members[4].number]
    for member in answered:
        stored = await Complaint.get(id=member.id)
        assert stored.state == State.REPLIED and stored.reply_text == decision
        events = await Event.filter(complaint_id=member.id).values_list("action", flat=True)
        assert "decide_with_group" in events and "notify_result" in events
    assert (await Complaint.get(id=members[3].id)).state == State.SUBMITTED  # taken out
    # Each chat complainant has their own reply in the outbox, with the decision.
    for member in (members[0], members[2]):
        replies = [
            row
            for row in await OutboxMessage.filter(complaint_id=member.id)
            if ":complainant:" in row.idempotency_key
            and decision in outgoing_from_json(row.payload).text
        ]
        assert len(replies) == 1
        assert replies[0].chat_id == f"chat-{MASS[members.index(member)][0]}"
    # The letter's complainant has no chat: the desk calls them with the result (and the
    # 书面答复 is owed, `written`).
    assert await CallbackTask.filter(complaint_id=members[4].id, kind="notify_result").count() == 1
    group = await MatterGroup.get(id=group.id)
    assert group.decision_text == decision and group.decided_by_id == org.supervisor.id  # type: ignore[attr-defined]
    # Then each gets their own return visit: the survey after gov-window's working day.
    await sweep(end_of("2026-10-10"), profile=GOV, context=CONTEXT)
    surveyed = {
        row.complaint_id  # type: ignore[attr-defined]
        for row in await OutboxMessage.filter(idempotency_key__startswith="survey:")
    }
    assert surveyed == {members[0].id, members[2].id}
    assert await CallbackTask.filter(complaint_id=members[4].id, kind="survey").count() == 1


async def test_a_dismissed_proposal_is_not_made_again(db_url: str) -> None:
    org = await make_org()
    at = local("2026-10-09T09:00")
    await file_mass(at)
    [group_id] = await propose_mass_matters(at + timedelta(hours=3), profile=GOV, context=CONTEXT)
    with pytest.raises(ActionRefused):
        await dismiss_group(group_id, Actor(Role.INTAKE_CLERK, org.clerk), clock=clock(at))
    await dismiss_group(group_id, Actor(Role.ADMIN, org.admin), clock=clock(at))
    assert (await MatterGroup.get(id=group_id)).status == GroupStatus.DISMISSED
    assert await propose_mass_matters(at + timedelta(hours=4), profile=GOV, context=CONTEXT) == []
    with pytest.raises(ValueError):  # a dismissed group is not decided
        await decide_group(
            group_id, Actor(Role.ADMIN, org.admin), "x", profile=GOV, clock=clock(at)
        )
