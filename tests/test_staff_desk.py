"""The staff desk end to end: a button or a reply → handlers.staff → act(), one transaction."""

from __future__ import annotations

from datetime import timedelta

from bot.staff_desk import handle_staff_message
from handlers.messages import Incoming, Outgoing
from models.actions import Actor, act, complaint_history
from models.entities import Complaint, DialogSession, Event, OutboxMessage, Staff
from models.notifications import VIEWED_IDENTITY, case_version
from models.staffing import create_invite
from models.workflow import Action, Role, State, derive_state
from tests.staff_world import ANSWERS, T0, World, clock, file_complaint, inbox, last, make_world


class Desk:
    """One staff member's chat with the desk; the clock moves on a minute per message."""

    def __init__(self, world: World, staff: Staff) -> None:
        self.world, self.chat, self.minutes = world, str(staff.telegram_chat_id), 0

    async def send(self, incoming: Incoming) -> list[Outgoing]:
        self.minutes += 1
        replies = await handle_staff_message(
            incoming, profile=self.world.profile, clock=clock(self.minutes / 60)
        )
        assert replies is not None
        return replies

    async def press(self, choice: str) -> list[Outgoing]:
        return await self.send(Incoming("telegram", self.chat, "choice", choice=choice))

    async def type(self, text: str) -> list[Outgoing]:
        return await self.send(Incoming("telegram", self.chat, "text", text=text))

    async def command(self, command: str, args: str = "") -> list[Outgoing]:
        return await self.send(
            Incoming("telegram", self.chat, "command", command=command, command_args=args)
        )


def ids(message: Outgoing) -> list[str]:
    return [c.id for c in message.choices]


def button(message: Outgoing, label: str) -> str:
    return next(c.id for c in message.choices if c.label == label)


async def test_invite_redeemed_from_the_deep_link(db_url: str) -> None:
    world = await make_world()
    invite = await create_invite(now=T0, name="New Handler", role=Role.HANDLER, language="en")
    start = Incoming("telegram", "555", "command", command="start", command_args=invite.code)
    [welcome] = await handle_staff_message(start, profile=world.profile, clock=clock())  # type: ignore[misc]
    assert welcome.text.startswith("Welcome, New Handler. This chat is now linked")
    assert (await Staff.get(id=invite.staff.id)).telegram_chat_id == "555"
    other = Incoming(
        "telegram", "556", "command", command="start", command_args=invite.code, language="zh-CN"
    )
    [refusal] = await handle_staff_message(other, profile=world.profile, clock=clock())  # type: ignore[misc]
    assert refusal.text == "该邀请码已被使用，请申请新的邀请。"
    # WeChat: the code sent as a plain message; an unknown code is refused in English here.
    typed = Incoming("wechat", "oA", "text", text="inv_unknown", language="en")
    [unknown] = await handle_staff_message(typed, profile=world.profile, clock=clock())  # type: ignore[misc]
    assert unknown.text == (
        "This invitation code is not valid. Please check the link you received."
    )
    # A citizen's message and a citizen deep link are not for the desk.
    citizen = Incoming("telegram", "42", "command", command="start", command_args="202611-0001")
    assert await handle_staff_message(citizen, profile=world.profile, clock=clock()) is None


async def test_accept_asks_for_the_missing_category_and_severity(db_url: str) -> None:
    world = await make_world()
    complaint = await file_complaint(world, answers={**ANSWERS, "category": None})
    notice = await last("c1")
    accept = button(notice, "Accept")
    assert accept == f"cs:accept:{complaint.id}:1"
    clerk = Desk(world, world.clerk)
    [ask] = await clerk.press(accept)
    assert ask.text == "Choose the category:"
    assert ids(ask)[0] == "sf:on_the_spot" and ids(ask)[-1] == "cancel"
    # The state lives in the database: any worker continues it.
    session = await DialogSession.get(external_id=f"staff:{world.clerk.id}")
    assert session.state["flow"] == "staff" and session.state["step"] == "category"
    [ask] = await clerk.type("Service conduct")
    assert ask.text == "Choose the severity:"
    [done] = await clerk.press("sf:serious")
    assert done.text == "Done: Accept — complaint 202611-0001. Status: Accepted"
    assert [c.label for c in done.choices] == [
        "Settle as already decided",
        "Assign",
        "Transfer",
        "Add note",
    ]
    stored = await Complaint.get(id=complaint.id)
    assert (stored.state, stored.category, stored.severity) == (
        State.ACCEPTED,
        "service_conduct",
        "serious",
    )
    assert (await last("42")).text.startswith("Your complaint 202611-0001 has been accepted.")
    # The same notification button again: out of date, nothing written.
    events = await Event.all().count()
    [stale] = await clerk.press(accept)
    assert stale.text == (
        "Not done: complaint 202611-0001 is “Accepted”: this button is out of date: the case "
        "has moved on since it was sent."
    )
    assert [c.label for c in stale.choices] == [
        "Settle as already decided",
        "Assign",
        "Transfer",
        "Add note",
    ]
    assert await Event.all().count() == events


async def test_refuse_with_an_exclusion_or_own_words(db_url: str) -> None:
    world = await make_world()
    first = await file_complaint(world)
    clerk = Desk(world, world.clerk)
    [ask] = await clerk.press(f"cs:refuse:{first.id}:1")
    assert ask.text == "Why is the complaint not accepted? Choose a reason or type your own."
    assert [c.label for c in ask.choices] == [
        "Disputing a tax decision (review or litigation)",
        "Reporting someone else's tax violation",
        "Reporting misconduct of tax officials",
        "Only a tax question",
        "Other reason",
        "Cancel",
    ]
    [done] = await clerk.press("sf:consultation")
    assert done.text.startswith("Done: Refuse — complaint 202611-0001.")
    event = await Event.get(complaint_id=first.id, action="refuse")
    assert event.payload["exclusion"] == "consultation"
    assert (await last("42")).text.startswith("We cannot accept complaint 202611-0001.\n\nReason: ")
    second = await file_complaint(world)
    # The same complainant's similar complaint is linked as a repeat: version 2.
    await clerk.press(f"cs:refuse:{second.id}:2")
    [ask] = await clerk.press("sf:other")
    assert ask.text == "Type the reason the complainant will read:"
    [ask] = await clerk.type("同一事项正在处理中。")
    assert ids(ask) == ["skip", "cancel"]
    [done] = await clerk.press("skip")
    assert done.text.startswith("Done: Refuse — complaint 202611-0002.")
    assert (await last("42")).text == (
        "We cannot accept complaint 202611-0002.\n\nReason: 同一事项正在处理中。"
    )


async def test_assign_with_a_handler_and_joint_handling(db_url: str) -> None:
    world = await make_world()
    complaint = await file_complaint(world)
    clerk = Desk(world, world.clerk)
    [ask] = await clerk.press(f"cs:accept:{complaint.id}:1")
    # Tax service: staff confirm the category (they may record 即时办结, a staff-only finding).
    assert ask.text == "Choose the category:"
    assert "sf:on_the_spot" in [c.id for c in ask.choices]
    [ask] = await clerk.press(f"sf:{complaint.category}")
    assert ask.text == "Choose the severity:"  # the category is known, the severity is not
    await clerk.press("sf:ordinary")
    version = await case_version(complaint.id)
    [ask] = await clerk.press(f"cs:assign:{complaint.id}:{version}")
    assert ask.text == "Which department leads the handling?"
    assert [c.label for c in ask.choices] == ["办公室", "不动产登记窗口", "税务窗口", "Cancel"]
    [ask] = await clerk.type("2")  # by its number
    assert [c.label for c in ask.choices] == [
        "Head Li",
        "Handler Wang",
        "The department decides",
        "Cancel",
    ]
    [ask] = await clerk.press(f"sf:{world.handler.id}")
    assert ask.text == "Joint handling: add co-handling departments, or press Done."
    [ask] = await clerk.press(f"sf:{world.tax.id}")
    assert ask.text.endswith("Added: 税务窗口.")
    assert [c.label for c in ask.choices] == ["办公室", "Done", "Cancel"]
    assigned, joined = await clerk.press("sf:done")
    assert assigned.text == "Done: Assign — complaint 202611-0001. Status: Assigned"
    assert assigned.choices == ()  # already out of date: the co-handler came next
    assert joined.text.startswith("Done: Add co-handling department — complaint 202611-0001.")
    stored = await Complaint.get(id=complaint.id)
    assert stored.handler_id == world.handler.id  # type: ignore[attr-defined]
    assert stored.lead_department_id == world.registry.id  # type: ignore[attr-defined]
    assert [d.id for d in await stored.co_departments.all()] == [world.tax.id]
    assert (await last("w1")).text.startswith("Complaint 202611-0001 has been assigned")
    assert (await last("t1")).text.startswith("Your department joins the handling")


async def test_transfer_and_cancel(db_url: str) -> None:
    world = await make_world()
    complaint = await file_complaint(world)
    clerk = Desk(world, world.clerk)
    [ask] = await clerk.press(f"cs:transfer:{complaint.id}:1")
    assert ask.text == "Transfer to which department?"
    [cancelled] = await clerk.type("取消")
    assert cancelled.text == "Cancelled."
    assert await case_version(complaint.id) == 1
    await clerk.press(f"cs:transfer:{complaint.id}:1")
    [done] = await clerk.press(f"sf:{world.tax.id}")
    assert done.text == "Done: Transfer — complaint 202611-0001. Status: Submitted"
    stored = await Complaint.get(id=complaint.id)
    assert stored.lead_department_id == world.tax.id  # type: ignore[attr-defined]
    assert (
        stored.deadlines["acceptance"]["start"] == (T0 + timedelta(minutes=4)).isoformat()
    )  # a new clock
    assert (await last("t1")).text.startswith(
        "Complaint 202611-0001 has been transferred to your department."
    )


async def _assigned(world: World) -> Complaint:
    complaint = await file_complaint(world)
    clerk = Actor(Role.INTAKE_CLERK, world.clerk)
    await act(complaint.id, Action.ACCEPT, clerk, profile=world.profile, clock=clock())
    await act(
        complaint.id,
        Action.ASSIGN,
        clerk,
        profile=world.profile,
        clock=clock(),
        payload={"department_id": world.registry.id, "handler_id": world.handler.id},
    )
    return complaint


async def test_handler_from_acknowledgement_to_the_reply(db_url: str) -> None:
    world = await make_world()
    complaint = await _assigned(world)
    handler, head = Desk(world, world.handler), Desk(world, world.head)
    [done] = await handler.press(button(await last("w1"), "Acknowledge"))
    assert done.text == "Done: Acknowledge — complaint 202611-0001. Status: In progress"
    assert [c.label for c in done.choices] == [
        "Ask for material",
        "Request extension",
        "Add note",
        "Ask the respondent for a statement",  # gov-window offers it (R4 陈述权)
        "Resolve",
        "Hand back",
    ]
    [ask] = await handler.press(button(done, "Ask for material"))
    assert ask.text == "Type the question for the complainant (what material is needed):"
    [done] = await handler.type("请提供办理回执照片。")
    assert done.text == (
        "Done: Ask for material — complaint 202611-0001. Status: Waiting for the complainant"
    )
    assert "请提供办理回执照片。" in (await last("42")).text
    assert (await Complaint.get(id=complaint.id)).paused_at is not None
    complainant = Actor(Role.COMPLAINANT, complainant=await complaint.complainant)
    await act(complaint.id, Action.SUPPLEMENT, complainant, profile=world.profile, clock=clock(1))
    resumed = await last("w1")
    [ask] = await handler.press(button(resumed, "Request extension"))
    assert ask.text == "How much more time? At most 10 working days; choose or type a number."
    assert len(ask.choices) == 11 and ask.choices[0].label == "1 working days"
    [ask] = await handler.type("11")  # over the limit: asked again
    assert ask.text.startswith("How much more time?")
    [ask] = await handler.type("5")
    assert ask.text == "Why is more time needed?"
    [done] = await handler.type("需要调取监控录像")
    assert done.text.startswith("Done: Request extension — complaint 202611-0001.")
    request = await last("h1")
    assert [c.label for c in request.choices] == ["Approve extension", "Deny extension"]
    [approved] = await head.press(button(request, "Approve extension"))
    assert approved.text.startswith("Done: Approve extension — complaint 202611-0001.")
    assert (await last("42")).text == (
        "The time limit for complaint 202611-0001 has been extended to Nov 16, 2026, 23:59. "
        "Reason: 需要调取监控录像"
    )
    # The approval button pressed again (a double tap): refused, nothing written.
    [again] = await head.press(button(request, "Approve extension"))
    assert again.text.startswith("Not done: complaint 202611-0001 is “In progress”: ")
    [ask] = await handler.press(button(await last("w1"), "Add note"))
    [done] = await handler.type("已调取监控。")
    assert done.text.startswith("Done: Add note — complaint 202611-0001.")
    note = await Event.get(complaint_id=complaint.id, action="add_note")
    assert note.payload["note"] == "已调取监控。"
    [ask] = await handler.press(button(done, "Resolve"))  # a note leaves the buttons valid
    assert ask.text == "Type the reply the complainant will receive:"
    resolved, told = await handler.type("经核实，已对当事人批评教育并向您道歉。")
    assert resolved.text == "Done: Resolve — complaint 202611-0001. Status: Resolved"
    assert told.text == "Done: Tell the result — complaint 202611-0001. Status: Replied"
    assert (await last("42")).text == (
        "Complaint 202611-0001 has been handled. Our reply:\n\n"
        "经核实，已对当事人批评教育并向您道歉。"
    )
    final = await Complaint.get(id=complaint.id)
    assert final.state == State.REPLIED
    # Audit events (identity views, notes) keep the event chain provable.
    assert derive_state(await complaint_history(final)) == State.REPLIED
    assert await Event.filter(complaint_id=complaint.id, action=VIEWED_IDENTITY).count() > 0


async def test_deny_extension_and_hand_back(db_url: str) -> None:
    world = await make_world()
    complaint = await _assigned(world)
    handler, head = Desk(world, world.handler), Desk(world, world.head)
    await handler.press(button(await last("w1"), "Acknowledge"))
    version = await case_version(complaint.id)
    await handler.press(f"cs:request_extension:{complaint.id}:{version}")
    await handler.press("sf:3")
    await handler.type("人手不足")
    [denied] = await head.press(button(await last("h1"), "Deny extension"))
    assert denied.text.startswith("Done: Deny extension — complaint 202611-0001.")
    assert (await last("w1")).text.startswith("The extension for complaint 202611-0001 was denied.")
    [ask] = await handler.press(button(await last("w1"), "Hand back"))
    assert ask.text == "Why do you hand the case back?"
    [done] = await handler.type("不属本窗口职责")
    assert done.text == "Done: Hand back — complaint 202611-0001. Status: Accepted"
    assert (await last("c1")).text.startswith(
        "Complaint 202611-0001 has been handed back for dispatch. Reason: 不属本窗口职责"
    )


async def test_an_action_the_rules_refuse_gets_the_reason(db_url: str) -> None:
    world = await make_world()
    complaint = await _assigned(world)
    head = Desk(world, world.tax_head)  # not on this case at all
    version = await case_version(complaint.id)
    [refused] = await head.press(f"cs:resolve:{complaint.id}:{version}")
    assert refused.text == (
        "Not done: complaint 202611-0001 is “Assigned”: this action is not possible in the "
        "case's current status."
    )
    handler = Desk(world, world.handler)
    await Staff.filter(id=world.head.id).update(role=Role.HANDLER)  # a second, non-lead handler
    other = Desk(world, await Staff.get(id=world.head.id))
    await handler.press(f"cs:acknowledge:{complaint.id}:{version}")
    version = await case_version(complaint.id)
    [refused] = await other.press(f"cs:resolve:{complaint.id}:{version}")
    assert refused.text == (
        "Not done: complaint 202611-0001 is “In progress”: only the lead handler may do this."
    )
    [missing] = await handler.press("cs:resolve:9999:1")
    assert missing.text == "Not done: the complaint no longer exists."


async def test_cases_list_pages_and_opens_a_case(db_url: str) -> None:
    world = await make_world()
    clerk = Desk(world, world.clerk)
    [empty] = await clerk.command("cases")
    assert empty.text == "You have no open cases."
    complaints = [await file_complaint(world) for _ in range(7)]
    # The last one filed is the most urgent: its deadline is the earliest.
    await Complaint.filter(id=complaints[-1].id).update(next_due_at=T0 + timedelta(hours=1))
    [page] = await clerk.command("cases")
    lines = page.text.split("\n")
    assert lines[0] == "Your open cases (page 1 of 2):"
    assert lines[1] == "• 202611-0007 · Submitted · due Nov 2, 2026, 11:00"
    assert lines[2] == "• 202611-0001 · Submitted · due Nov 3, 2026, 23:59"
    assert len(lines) == 6
    assert [c.label for c in page.choices][-1] == "Next page"
    [page2] = await clerk.press(button(page, "Next page"))
    assert page2.text.split("\n")[0] == "Your open cases (page 2 of 2):"
    assert [c.label for c in page2.choices] == ["202611-0005", "202611-0006", "Previous page"]
    [card] = await clerk.press(button(page2, "202611-0005"))
    assert card.text.startswith("Complaint 202611-0005\nStatus: Submitted\n")
    assert "Complainant: 张三 138 1234 5678" in card.text
    assert ids(card)[0] == f"cs:accept:{complaints[4].id}:2"  # after its repeat link
    views = await Event.filter(complaint_id=complaints[4].id, action=VIEWED_IDENTITY)
    assert [v.payload["via"] for v in views] == ["notification", "case_card"]
    # A handler's list holds only the cases of their department.
    handler = Desk(world, world.handler)
    [none] = await handler.command("cases")
    assert none.text == "You have no open cases."


async def test_other_messages_get_the_desk_help(db_url: str) -> None:
    world = await make_world()
    clerk = Desk(world, world.clerk)
    [help_] = await clerk.type("hello")
    assert help_.text.startswith("Cases reach you here as notifications with buttons.")
    assert ids(help_) == ["cl:page:0"]
    assert await OutboxMessage.filter(chat_id="c1").count() == 0
    assert await inbox("c1") == []
