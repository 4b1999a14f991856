"""Notifications: each notify_* effect queues the exact messages for the right people."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tortoise.transactions import in_transaction

from handlers.notify import CHAT_TEXTS
from models.actions import ActionResult, Actor, Clock, act, submit_complaint
from models.cards import CaseCard, Milestone
from models.entities import Channel, Complaint, Event, OutboxMessage, Staff
from models.messages import Outgoing
from models.notifications import (
    VIEWED_IDENTITY,
    NotificationTexts,
    case_version,
    emit_notifications,
    use_notification_texts,
)
from models.workflow import Action, Role, State, Transition
from tests.staff_world import (
    ANSWERS,
    CALENDAR,
    SHANGHAI,
    World,
    clock,
    file_complaint,
    inbox,
    last,
    make_world,
)

CARD_SUBMITTED = (
    "Complaint 202611-0001\n"
    "Status: Submitted\n"
    "Category: Service conduct\n"
    "About: 3号窗口工作人员\n"
    "Complainant: 张三 138 1234 5678\n"
    "Facts: 窗口工作人员态度恶劣，拒绝解释材料要求。\n"
    "When it happened: Oct 30, 2026, 10:00\n"
    "Place: 办税服务厅\n"
    "Request: An apology\n"
    "Received via: Telegram\n"
    "Due (acceptance): Nov 3, 2026, 23:59"
)


def as_staff(staff: Staff) -> Actor:
    return Actor(Role(staff.role), staff)


async def run(
    world: World,
    complaint: Complaint,
    action: Action,
    actor: Actor,
    hours: float,
    payload: dict[str, Any] | None = None,
) -> ActionResult:
    return await act(
        complaint.id, action, actor, profile=world.profile, clock=clock(hours), payload=payload
    )


async def accepted_and_assigned(world: World, *, handler: bool = True) -> Complaint:
    complaint = await file_complaint(world)
    clerk = as_staff(world.clerk)
    await run(world, complaint, Action.ACCEPT, clerk, 1, {"severity": "ordinary"})
    payload: dict[str, Any] = {"department_id": world.registry.id}
    if handler:
        payload["handler_id"] = world.handler.id
    await run(world, complaint, Action.ASSIGN, clerk, 2, payload)
    return complaint


async def test_submission_reaches_the_intake_desk_with_its_buttons(db_url: str) -> None:
    world = await make_world()
    complaint = await file_complaint(world)
    [message] = await inbox("c1")
    assert message.text == f"New complaint 202611-0001 awaits acceptance.\n\n{CARD_SUBMITTED}"
    assert [(c.id, c.label) for c in message.choices] == [
        (f"cs:accept:{complaint.id}:1", "Accept"),
        (f"cs:refuse:{complaint.id}:1", "Refuse"),
        # tax-service: R6's batch rule (settle as already decided) at acceptance
        (f"cs:settle_as_decided:{complaint.id}:1", "Settle as already decided"),
        (f"cs:transfer:{complaint.id}:1", "Transfer"),
        (f"cs:add_note:{complaint.id}:1", "Add note"),
    ]
    # Only the intake desk; the complainant was answered in the intake dialog itself.
    assert await OutboxMessage.all().count() == 1
    row = await OutboxMessage.get(chat_id="c1")
    submit = await Event.get(complaint_id=complaint.id, action="submit")
    assert row.idempotency_key == f"{submit.id}:staff:{world.clerk.id}"
    # The clerk saw the complainant's identity: audited, without changing the case version.
    view = await Event.get(complaint_id=complaint.id, action=VIEWED_IDENTITY)
    assert view.actor_staff_id == world.clerk.id  # type: ignore[attr-defined]
    assert view.payload == {
        "fields": ["complainant_name", "complainant_phone"],
        "via": "notification",
    }
    assert await case_version(complaint.id) == 1


async def test_intake_falls_back_to_the_root_department_head(db_url: str) -> None:
    world = await make_world()
    await Staff.filter(id=world.clerk.id).update(active=False)
    root_head = await Staff.create(
        name="Director Qian",
        role=Role.DEPARTMENT_HEAD,
        department=world.office,
        wechat_openid="oRoot",
        language="zh_CN",
    )
    await file_complaint(world)
    assert await inbox("c1") == []
    message = await last("oRoot")
    row = await OutboxMessage.get(chat_id="oRoot")
    assert row.channel == "wechat"
    assert message.text.startswith(
        "新投诉 202611-0001 等待受理。\n\n投诉 202611-0001\n状态：已提交"
    )
    assert [c.label for c in message.choices] == [
        "受理",
        "不予受理",
        "按已决事项办结",
        "转办",
        "添加备注",
    ]
    assert row.idempotency_key.endswith(f":staff:{root_head.id}")


async def test_accept_tells_the_complainant_the_deadline(db_url: str) -> None:
    world = await make_world()
    complaint = await file_complaint(world)
    await run(world, complaint, Action.ACCEPT, as_staff(world.clerk), 1)
    [message] = await inbox("42")
    assert message.text == (
        "Your complaint 202611-0001 has been accepted. It is to be handled by Nov 9, 2026, 23:59;"
        " we will then tell you the result."
    )
    assert message.choices == ()


async def test_accept_in_simplified_chinese(db_url: str) -> None:
    world = await make_world()
    complaint = await file_complaint(world, language="zh_CN")
    await run(world, complaint, Action.ACCEPT, as_staff(world.clerk), 1)
    assert (await last("42")).text == (
        "您的投诉 202611-0001 已受理。办理期限为 2026年11月9日 23:59，办结后将告知您处理结果。"
    )


async def test_assignment_reaches_the_handler_and_the_complainant(db_url: str) -> None:
    world = await make_world()
    complaint = await accepted_and_assigned(world)
    message = await last("w1")
    assert message.text == (
        "Complaint 202611-0001 has been assigned for handling.\n\n"
        "Complaint 202611-0001\n"
        "Status: Assigned\n"
        "Category: Service conduct · Ordinary\n"
        "About: 3号窗口工作人员\n"
        "Complainant: 张三 138 1234 5678\n"
        "Facts: 窗口工作人员态度恶劣，拒绝解释材料要求。\n"
        "When it happened: Oct 30, 2026, 10:00\n"
        "Place: 办税服务厅\n"
        "Request: An apology\n"
        "Received via: Telegram\n"
        "Lead department: 不动产登记窗口\n"
        "Handler: Handler Wang\n"
        "Due (resolution): Nov 9, 2026, 23:59"
    )
    assert [c.id for c in message.choices] == [
        f"cs:acknowledge:{complaint.id}:3",
        f"cs:add_note:{complaint.id}:3",
        f"cs:hand_back:{complaint.id}:3",
    ]
    assert (await last("42")).text == (
        "Your complaint 202611-0001 has been passed to 不动产登记窗口 for handling."
    )
    assert await inbox("h1") == []  # a named handler: the head is not disturbed


async def test_assignment_without_a_handler_reaches_the_department(db_url: str) -> None:
    world = await make_world()
    complaint = await accepted_and_assigned(world, handler=False)
    head, handler = await last("h1"), await last("w1")
    assert head.text.startswith("Complaint 202611-0001 has been assigned for handling.")
    # The head may dispatch it further or take it on; the handler is not the lead yet.
    assert [c.label for c in head.choices] == [
        "Transfer",
        "Add co-handling department",
        "Acknowledge",
        "Add note",
        "Hand back",
    ]
    assert [c.label for c in handler.choices] == []
    assert complaint.id


async def test_handling_life_cycle_messages(db_url: str) -> None:
    world = await make_world()
    complaint = await accepted_and_assigned(world)
    worker = as_staff(world.handler)
    complainant = Actor(Role.COMPLAINANT, complainant=await complaint.complainant)
    await run(world, complaint, Action.ACKNOWLEDGE, worker, 3)
    await run(
        world, complaint, Action.REQUEST_MATERIAL, worker, 4, {"question": "请提供办理回执照片。"}
    )
    assert (await last("42")).text == (
        "To handle complaint 202611-0001 we need more from you:\n\n"
        "请提供办理回执照片。\n\n"
        "Send it with /supplement. The time limit is paused until we receive it."
    )
    await run(world, complaint, Action.SUPPLEMENT, complainant, 24)
    assert (await last("w1")).text.startswith(
        "The complainant has supplied material for complaint 202611-0001; handling continues."
    )
    await run(
        world,
        complaint,
        Action.REQUEST_EXTENSION,
        worker,
        25,
        {"amount": 5, "reason": "需要调取监控"},
    )
    approver = await last("h1")
    version = await case_version(complaint.id)
    assert approver.text.split("\n\n")[0] == (
        "An extension of 5 working days is requested for complaint 202611-0001. "
        "Reason: 需要调取监控"
    )
    assert approver.text.endswith(
        # Paused from Monday 14:00 to Tuesday 10:00: no whole working day, no shift.
        "Due (resolution): Nov 9, 2026, 23:59\n"
        "Extension requested: 5 working days. Reason: 需要调取监控"
    )
    assert [c.id for c in approver.choices] == [
        f"cs:approve_extension:{complaint.id}:{version}",
        f"cs:deny_extension:{complaint.id}:{version}",
    ]
    assert await inbox("s1") == []
    await run(world, complaint, Action.APPROVE_EXTENSION, as_staff(world.head), 26)
    assert (await last("42")).text == (
        "The time limit for complaint 202611-0001 has been extended to Nov 16, 2026, 23:59. "
        "Reason: 需要调取监控"
    )
    assert (await last("w1")).text.startswith(
        "The extension for complaint 202611-0001 was approved. "
        "New deadline: Nov 16, 2026, 23:59. Reason: 需要调取监控\n\n"
    )
    await run(
        world,
        complaint,
        Action.RESOLVE,
        worker,
        30,
        {"reply_text": "已约谈当事人并道歉。", "attachment_ids": [5]},
    )
    await run(world, complaint, Action.NOTIFY_RESULT, worker, 30)
    result = await last("42")
    assert result.text == (
        "Complaint 202611-0001 has been handled. Our reply:\n\n已约谈当事人并道歉。"
    )
    assert result.attachments == ("5",)
    # Disputed: the supervisor and the handler hear of it.
    await run(world, complaint, Action.DISPUTE, complainant, 40)
    assert (await last("s1")).text.startswith(
        "The complainant disputes the result of complaint 202611-0001; it is reopened."
    )
    assert (await last("w1")).text.startswith("The complainant disputes the result")
    firsts = [m.text.split(" ", 3)[:3] for m in await inbox("42")]
    # accepted, assigned, material, extended, result; nothing for their own dispute
    assert firsts == [
        ["Your", "complaint", "202611-0001"],
        ["Your", "complaint", "202611-0001"],
        ["To", "handle", "complaint"],
        ["The", "time", "limit"],
        ["Complaint", "202611-0001", "has"],
    ]


async def test_refusal_tells_the_reason_and_guidance(db_url: str) -> None:
    world = await make_world()
    complaint = await file_complaint(world)
    await run(
        world, complaint, Action.REFUSE, as_staff(world.clerk), 1, {"exclusion": "consultation"}
    )
    exclusion = next(e for e in world.profile.exclusions if e.id == "consultation")
    assert (await last("42")).text == (
        "We cannot accept complaint 202611-0001.\n\n"
        f"Reason: {exclusion.reason['en']}\n\n"
        f"Where to turn: {exclusion.guidance['en']}"
    )
    other = await file_complaint(world)
    await run(
        world,
        other,
        Action.REFUSE,
        as_staff(world.clerk),
        1,
        {"reason": "重复投诉。", "guidance": "请关注原投诉 202611-0001。"},
    )
    assert (await last("42")).text == (
        "We cannot accept complaint 202611-0002.\n\n"
        "Reason: 重复投诉。\n\n"
        "Where to turn: 请关注原投诉 202611-0001。"
    )


async def test_transfer_co_handling_and_hand_back(db_url: str) -> None:
    world = await make_world()
    complaint = await file_complaint(world)
    await run(
        world,
        complaint,
        Action.TRANSFER,
        as_staff(world.clerk),
        1,
        {"department_id": world.tax.id},
    )
    transferred = await last("t1")
    assert transferred.text.startswith(
        "Complaint 202611-0001 has been transferred to your department.\n\n"
        "Complaint 202611-0001\nStatus: Submitted\n"
    )
    assert "Lead department: 税务窗口" in transferred.text
    await run(world, complaint, Action.ACCEPT, as_staff(world.tax_head), 2)
    await run(
        world,
        complaint,
        Action.ASSIGN,
        as_staff(world.tax_head),
        3,
        {"department_id": world.registry.id, "handler_id": world.handler.id},
    )
    await run(
        world,
        complaint,
        Action.ADD_CO_HANDLER,
        as_staff(world.clerk),
        4,
        {"department_id": world.tax.id},
    )
    joined = await last("t1")
    assert joined.text.startswith(
        "Your department joins the handling of complaint 202611-0001. Add your findings as "
        "notes; the lead department answers the complainant.\n\n"
    )
    assert "Co-handling: 税务窗口" in joined.text
    await run(
        world, complaint, Action.HAND_BACK, as_staff(world.handler), 5, {"reason": "不属本窗口"}
    )
    assert (await last("c1")).text.startswith(
        "Complaint 202611-0001 has been handed back for dispatch. Reason: 不属本窗口\n\n"
    )


async def test_withdrawal_tells_the_case_staff_without_a_card(db_url: str) -> None:
    world = await make_world()
    complaint = await accepted_and_assigned(world)
    complainant = Actor(Role.COMPLAINANT, complainant=await complaint.complainant)
    await run(world, complaint, Action.WITHDRAW, complainant, 5)
    message = await last("w1")
    assert message.text == (
        "The complainant has withdrawn complaint 202611-0001. No further action is needed."
    )
    assert message.choices == ()
    # Before assignment, the intake desk is told instead.
    other = await file_complaint(world)
    await run(world, other, Action.WITHDRAW, complainant, 6)
    assert (await last("c1")).text == (
        "The complainant has withdrawn complaint 202611-0002. No further action is needed."
    )


async def test_a_head_requesting_an_extension_goes_to_the_supervisor(db_url: str) -> None:
    world = await make_world()
    complaint = await file_complaint(world)
    head = as_staff(world.head)
    await run(world, complaint, Action.ACCEPT, as_staff(world.clerk), 1)
    await run(world, complaint, Action.ASSIGN, head, 2, {"department_id": world.registry.id})
    await run(world, complaint, Action.ACKNOWLEDGE, head, 3)
    await run(world, complaint, Action.REQUEST_EXTENSION, head, 4, {"amount": 2, "reason": "x"})
    message = await last("s1")
    assert message.text.startswith("An extension of 2 working days is requested")
    assert "Approve extension" in [c.label for c in message.choices]
    assert not any("extension" in m.text for m in await inbox("h1"))


async def test_masked_for_the_targeted_department(db_url: str) -> None:
    world = await make_world()
    answers = {**ANSWERS, "target_kind": "department", "target_text": "其他"}
    complaint = await file_complaint(world, answers=answers)
    await Complaint.filter(id=complaint.id).update(target_department_id=world.registry.id)
    await accepted_and_assigned_existing(world, complaint)
    text = (await last("w1")).text  # the handler works in the targeted department
    assert "Complainant: *** ***" in text
    assert "张三" not in text and "13812345678" not in text
    assert "Facts: 窗口工作人员态度恶劣，拒绝解释材料要求。" in text
    views = await Event.filter(complaint_id=complaint.id, action=VIEWED_IDENTITY).values_list(
        "actor_staff_id", flat=True
    )
    assert views == [world.clerk.id]  # only the clerk's unmasked view is on record
    # Also when the complainant only typed the department's name.
    typed = {**ANSWERS, "target_kind": "department", "target_text": "不动产登记窗口"}
    second = await file_complaint(world, answers=typed)
    await accepted_and_assigned_existing(world, second)
    assert "Complainant: *** ***" in (await last("w1")).text
    # Transferred to the very department it is about: the receiving head sees no identity.
    about_tax = {**ANSWERS, "target_kind": "department", "target_text": "税务窗口"}
    third = await file_complaint(world, answers=about_tax)
    await run(
        world, third, Action.TRANSFER, as_staff(world.clerk), 3, {"department_id": world.tax.id}
    )
    received = (await last("t1")).text
    assert received.startswith("Complaint 202611-0003 has been transferred to your department.")
    assert "Complainant: *** ***" in received and "张三" not in received
    assert not await Event.filter(
        complaint_id=third.id, action=VIEWED_IDENTITY, actor_staff_id=world.tax_head.id
    ).exists()


async def accepted_and_assigned_existing(world: World, complaint: Complaint) -> None:
    clerk = as_staff(world.clerk)
    await run(world, complaint, Action.ACCEPT, clerk, 1, {"severity": "ordinary"})
    await run(
        world,
        complaint,
        Action.ASSIGN,
        clerk,
        2,
        {"department_id": world.registry.id, "handler_id": world.handler.id},
    )


async def test_the_same_event_is_never_queued_twice(db_url: str) -> None:
    world = await make_world()
    complaint = await accepted_and_assigned(world)
    before = await OutboxMessage.all().count()
    event = await Event.filter(complaint_id=complaint.id, action="assign").first()
    assert event is not None

    transition = Transition(
        State.ACCEPTED, State.ASSIGNED, Action.ASSIGN, "assigned", tuple(event.payload["effects"])
    )
    fresh = await Complaint.get(id=complaint.id)
    async with in_transaction() as conn:
        await emit_notifications(
            fresh, transition, as_staff(world.clerk), clock(2), world.profile, conn, event=event
        )
    assert await OutboxMessage.all().count() == before


async def test_unreachable_and_disabled_staff_are_skipped(db_url: str) -> None:
    world = await make_world()
    await Staff.filter(id=world.clerk.id).update(telegram_chat_id=None)
    await Staff.create(name="Off", role=Role.INTAKE_CLERK, telegram_chat_id="off", active=False)
    await file_complaint(world)
    assert await OutboxMessage.all().count() == 0


async def test_staff_hear_of_night_intake_when_the_office_opens(db_url: str) -> None:
    world = await make_world()
    saturday_night = Clock(CALENDAR, SHANGHAI, datetime(2026, 11, 7, 22, 0, tzinfo=SHANGHAI))
    complaint = await submit_complaint(
        profile=world.profile,
        channel=Channel.TELEGRAM,
        external_id="42",
        answers=ANSWERS,
        clock=saturday_night,
        language="en",
    )
    row = await OutboxMessage.get(chat_id="c1")
    assert row.next_attempt_at == datetime(2026, 11, 9, 9, 0, tzinfo=SHANGHAI)  # Monday 09:00
    await act(
        complaint.id,
        Action.ACCEPT,
        as_staff(world.clerk),
        profile=world.profile,
        clock=saturday_night,
    )
    told = await OutboxMessage.get(chat_id="42")
    assert told.next_attempt_at == saturday_night.now  # the complainant is told at once


async def test_a_24_hour_desk_hears_at_once(db_url: str) -> None:
    world = await make_world("property")
    night = Clock(CALENDAR, SHANGHAI, datetime(2026, 11, 7, 22, 0, tzinfo=SHANGHAI))
    answers = {k: v for k, v in ANSWERS.items() if k != "category"}
    await submit_complaint(
        profile=world.profile,
        channel=Channel.TELEGRAM,
        external_id="42",
        answers=answers,
        clock=night,
    )
    assert (await OutboxMessage.get(chat_id="c1")).next_attempt_at == night.now


@pytest.fixture
def chat_texts_afterwards() -> Iterator[None]:
    """Tests that swap the process's notification texts put the chat's back."""
    yield
    use_notification_texts(CHAT_TEXTS)


async def test_notifications_are_worded_by_the_installed_texts(
    db_url: str, chat_texts_afterwards: None
) -> None:
    """models.notifications builds the card and the milestone; the words are the installed
    texts' (the shell installs handlers.notify's), called with the reader's language."""
    seen: list[tuple[str, str]] = []

    def staff(
        action: str, card: CaseCard, lang: str, tz: ZoneInfo, payload: Mapping[str, Any]
    ) -> Outgoing:
        seen.append(("staff", action))
        return Outgoing(f"{action} {card.number} {lang}")

    def milestone(m: Milestone, lang: str, tz: ZoneInfo) -> Outgoing | None:
        seen.append(("milestone", m.action))
        return Outgoing(f"{m.action} {m.number} {lang}")

    use_notification_texts(NotificationTexts(staff=staff, milestone=milestone))
    world = await make_world()
    complaint = await file_complaint(world)
    assert (await last("c1")).text == "submit 202611-0001 en"
    await run(world, complaint, Action.ACCEPT, as_staff(world.clerk), 1)
    assert (await last("42")).text == "accept 202611-0001 en"  # the complainant's language
    assert ("milestone", "accept") in seen and ("staff", "submit") in seen


async def test_acting_without_installed_texts_fails_loudly_and_writes_nothing(
    db_url: str, chat_texts_afterwards: None
) -> None:
    """A process that forgot to install the words must not drop notifications silently: the
    action fails and its transaction (event, state, outbox rows) is rolled back."""
    world = await make_world()
    complaint = await file_complaint(world)
    before = await Event.filter(complaint_id=complaint.id).count()
    use_notification_texts(None)
    with pytest.raises(RuntimeError, match="no notification texts installed"):
        await run(world, complaint, Action.ACCEPT, as_staff(world.clerk), 1)
    assert await Event.filter(complaint_id=complaint.id).count() == before
    assert (await Complaint.get(id=complaint.id)).state == State.SUBMITTED
    assert await inbox("42") == []
