"""Issue 6, done when: a complaint is filed, followed and rated entirely over `/wechat`, in safe
mode — and the staff who handle it are bound to WeChat with their invite codes and act there by
typing numbers and short texts. On SQLite and PostgreSQL.

Everything crosses real HTTP: FakeWeChat pushes signed, AES-encrypted messages to the app and
reads the passive replies; notifications leave through the outbox Dispatcher and WeChatSender
as customer-service messages to the fake's API.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.outbox import Dispatcher
from bot.wechat import TEMPLATE_NOTICE_ENV, ShownOptions, render_text
from handlers.i18n import format_datetime
from handlers.messages import Choice, Incoming, Outgoing
from models.actions import complaint_history
from models.alarms import set_alarm_context
from models.entities import (
    Channel,
    Complaint,
    Department,
    OutboxMessage,
    OutboxStatus,
    Staff,
    SurveyResponse,
)
from models.staffing import create_invite
from models.workflow import Role, State, derive_state
from scheduler.jobs import sweep
from tests.scheduler_support import (
    CONTEXT,
    SHANGHAI,
    accept,
    acknowledge,
    assign,
    end_of,
    local,
    make_org,
    reply,
)
from tests.waiting import eventually
from tests.wechat_harness import PROFILE, Desk, FixedClock, running_desk

CITIZEN = "oCitizenHanMeimei000000001"
CLERK = "oStaffClerkChen00000000001"
HANDLER = "oStaffHandlerWang000000001"
REPLY_TEXT = "经核实，已对当事人批评教育并向您道歉。"
REPLY_TEXT_SCHEDULER = "已处理并致歉。"  # what tests.scheduler_support.reply answers
NOTICE_TEMPLATE = "tpl-complaint-notice"


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    # The sweep plans alarms with the test calendar and zone, as the scheduler tests do.
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


def numbered(text: str | None) -> dict[str, str]:
    """The numbered options at the end of a WeChat text: label -> the number to type."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^(\d+)\. (.+)$", text or "", re.M)}


class Phone:
    """One WeChat user: what they read last (a passive reply or a pushed message) and what they
    type back, by the number shown next to an option or as free text."""

    def __init__(self, desk: Desk, openid: str) -> None:
        self.desk = desk
        self.openid = openid
        self.read = ""  # the last text this person saw
        self.pushed = 0  # customer-service / template messages already read

    async def say(self, text: str) -> str:
        delivery = await self.desk.fake.push_text(self.desk.url, self.openid, text)
        assert delivery.status == 200, delivery.body
        assert delivery.reply is not None, f"no passive reply to {text!r}"
        self.read = delivery.text or ""
        return self.read

    async def click(self, key: str) -> str:
        # An event is de-duplicated on its CreateTime (WeChat's advice): a second click within
        # the same second is a retry. People click a minute apart at least.
        self.desk.clock.advance(minutes=1)
        delivery = await self.desk.fake.push_event(
            self.desk.url, self.openid, "CLICK", EventKey=key
        )
        assert delivery.status == 200 and delivery.reply is not None, delivery.body
        self.read = delivery.text or ""
        return self.read

    async def pick(self, label: str) -> str:
        number = numbered(self.read).get(label)
        assert number is not None, f"{label!r} not offered to {self.openid} in:\n{self.read}"
        return await self.say(number)

    def inbox(self) -> list[str]:
        """Messages pushed to this person since the last look; the newest is what they read."""
        texts = self.desk.fake.texts_to(self.openid)
        templates = [
            m["data"]["content"]["value"]
            for m in self.desk.fake.sent_to(self.openid)
            if m.get("msgtype") == "template"
        ]
        new = (texts + templates)[self.pushed :]
        self.pushed += len(new)
        if new:
            self.read = new[-1]
        return new


async def deliver_notifications(desk: Desk) -> int:
    """Run the outbox dispatcher until nothing due is left; every row must reach WeChat."""
    # Passive answers are marked sent by a task of their own after the response: until then
    # each heads its chat, `sending`, and a notification behind it would be left unsent.
    await desk.endpoint.drain()
    dispatcher = Dispatcher({Channel.WECHAT: desk.sender}, now=desk.clock)
    sent = 0
    while batch := await dispatcher.dispatch_once():
        sent += batch
    failed = await OutboxMessage.filter(status=OutboxStatus.FAILED).values_list(
        "chat_id", "last_error"
    )
    assert failed == [], failed
    return sent


async def bind_staff(desk: Desk, phone: Phone, name: str, role: Role, department: str) -> Staff:
    """An administrator invites; the staff member sends the code as a WeChat message."""
    invite = await create_invite(
        now=desk.clock(), name=name, role=role, department_code=department, language="en"
    )
    welcome = await phone.say(invite.code)
    assert welcome.startswith(f"Welcome, {name}.")
    staff = await Staff.get(id=invite.staff.id)
    assert staff.wechat_openid == phone.openid and staff.telegram_chat_id is None
    return staff


async def file_over_wechat(person: Phone) -> str:
    """The intake conversation from the custom menu, answered by numbers and text."""
    await person.click("file")
    for label in ("都不是，继续投诉", "服务态度", "态度生硬、推诿扯皮", "工作人员"):
        await person.pick(label)
    await person.say("3号窗口 工号1024")
    await person.say("昨天下午3点")
    await person.say("市民中心二楼")
    await person.say("工作人员拒绝受理我的材料，并且态度恶劣，大声呵斥。")
    # 3rd 跳过: 理由; then the privacy notice before name and phone
    for label in ("赔礼道歉", "跳过", "跳过", "跳过", "否，留下姓名和电话", "知道了，继续"):
        await person.pick(label)
    await person.say("韩梅梅")
    await person.say("139 8765 4321")
    await person.pick("跳过")  # 单位名称
    await person.pick("跳过")  # no photos
    return await person.pick("提交")


async def test_filed_handled_by_wechat_staff_and_rated_over_wechat(
    db_url: str, tmp_path: Path
) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        await Department.create(code="centre", name="中心")
        await Department.create(
            code="unit", name="科室", parent=await Department.get(code="centre")
        )
        clerk, handler, person = Phone(desk, CLERK), Phone(desk, HANDLER), Phone(desk, CITIZEN)
        await bind_staff(desk, clerk, "Clerk Chen", Role.INTAKE_CLERK, "centre")
        handler_staff = await bind_staff(desk, handler, "Handler Wang", Role.HANDLER, "unit")

        # -- filed from the menu, followed with "my complaints" -------------------------------
        submitted = await file_over_wechat(person)
        complaint = await Complaint.get(complainant__external_id=CITIZEN)
        assert complaint.number in submitted and complaint.state == State.SUBMITTED
        assert complaint.channel == Channel.WECHAT
        assert complaint.next_due_at is not None
        deadline = format_datetime(complaint.next_due_at, "zh_CN", SHANGHAI)
        status = await person.click("status")
        assert f"{complaint.number} · 服务态度 · 已提交" in status
        assert f"下一办理时限：{deadline}" in status
        typed_status = await person.say("/status")
        assert typed_status == status

        # -- the intake clerk accepts and assigns from the card pushed to WeChat ---------------
        await deliver_notifications(desk)
        [card] = clerk.inbox()
        assert card.startswith(f"New complaint {complaint.number} awaits acceptance.")
        assert numbered(card) == {"Accept": "1", "Refuse": "2", "Transfer": "3", "Add note": "4"}
        assert (
            await clerk.pick("Accept")
        ) == "Choose the severity:\n1. Ordinary\n2. Serious\n3. Cancel"
        # R1: whether the matter is simple (3 WD) or complex (10 WD) is judged per case.
        assert (await clerk.pick("Ordinary")).startswith("Is the matter simple or complex?")
        accepted = await clerk.pick("Simple: facts clear, little to investigate")
        assert accepted.startswith(f"Done: Accept — complaint {complaint.number}.")
        await clerk.pick("Assign")
        await clerk.pick("科室")
        await clerk.pick("Handler Wang")
        assigned = await clerk.pick("Done")
        assert assigned.startswith(f"Done: Assign — complaint {complaint.number}.")
        stored = await Complaint.get(id=complaint.id)
        assert stored.state == State.ASSIGNED
        assert stored.handler_id == handler_staff.id  # type: ignore[attr-defined]

        # -- the handler acknowledges and resolves with a reply text ---------------------------
        await deliver_notifications(desk)
        [assignment] = handler.inbox()
        assert assignment.startswith(f"Complaint {complaint.number} has been assigned")
        acknowledged = await handler.pick("Acknowledge")
        assert acknowledged.startswith(f"Done: Acknowledge — complaint {complaint.number}.")
        asked = await handler.pick("Resolve")
        assert asked.startswith("Type the reply the complainant will receive:")
        resolved = await handler.say(REPLY_TEXT)
        assert f"Done: Resolve — complaint {complaint.number}." in resolved
        assert f"Done: Tell the result — complaint {complaint.number}." in resolved
        assert (await Complaint.get(id=complaint.id)).state == State.REPLIED

        # -- the complainant hears every step and the result ----------------------------------
        await deliver_notifications(desk)
        told = person.inbox()
        assert told[0].startswith(f"您的投诉 {complaint.number} 已受理。")
        assert REPLY_TEXT in told[-1]
        desk.clock.now = local("2026-11-26T10:00")  # the next morning they look again
        followed = await person.click("status")
        assert f"{complaint.number} · 服务态度 · 已答复" in followed

        # -- the sweep sends the survey; rated by typing numbers and a comment -----------------
        stored = await Complaint.get(id=complaint.id)
        assert stored.next_alarm_at is not None
        assert stored.next_alarm_at == end_of("2026-11-26")  # one working day after the reply
        report = await sweep(stored.next_alarm_at, profile=PROFILE, context=CONTEXT)
        assert report.surveys_sent == 1
        # Written at night, the invitation goes out when the office opens on Friday.
        desk.clock.now = local("2026-11-27T09:00")
        await deliver_notifications(desk)
        [invitation] = person.inbox()
        assert complaint.number in invitation and "满意程度" in invitation
        # Scores are shown as the numbers themselves, so the number typed is the score given.
        assert invitation.endswith("\n0 · 1 · 2 · 3 · 4 · 5 · 6 · 7 · 8 · 9 · 10")
        attitude = await person.say("9")  # the result score, typed
        assert "服务态度的满意程度" in attitude
        comment = await person.say("10")  # the attitude score, typed
        assert "如有其他意见" in comment
        thanks = await person.say("处理很及时，谢谢")
        assert "您的意见已记录" in thanks

        answer = await SurveyResponse.get(complaint_id=complaint.id)
        assert (answer.result_score, answer.attitude_score, answer.comment) == (
            9,
            10,
            "处理很及时，谢谢",
        )
        final = await Complaint.get(id=complaint.id)
        assert final.state == State.CLOSED
        assert derive_state(await complaint_history(final)) == State.CLOSED
        closed = await person.click("status")
        assert f"{complaint.number} · 服务态度 · 已结案" in closed

        # Every notification went to WeChat; nothing is left waiting or failed in the outbox
        # (a passive reply's row is marked sent just after its response is written).
        async def all_sent() -> bool:
            return await OutboxMessage.exclude(status=OutboxStatus.SENT).count() == 0

        await eventually(all_sent, what="every outbox row sent")


async def test_a_typed_score_means_that_score_not_that_position(db_url: str) -> None:
    scores = tuple(Choice(f"sv:1:r:{n}", str(n)) for n in range(11))
    assert render_text([Outgoing("评分？", scores)]) == (
        "评分？\n0 · 1 · 2 · 3 · 4 · 5 · 6 · 7 · 8 · 9 · 10"
    )
    # A list that only partly consists of numbers keeps its numbering.
    days = (Choice("sf:5", "5"), Choice("cancel", "Cancel"))
    assert render_text([Outgoing("Days?", days)]) == "Days?\n1. 5\n2. Cancel"
    shown = ShownOptions(FixedClock())

    def typed(text: str) -> Incoming:
        return Incoming(channel="wechat", user_id=CITIZEN, kind="text", text=text)

    await shown.remember(CITIZEN, scores)
    assert (await shown.resolve(typed("0"))).choice == "sv:1:r:0"
    assert (await shown.resolve(typed("１０"))).choice == "sv:1:r:10"  # full-width from the IME
    assert await shown.resolve(typed("11")) == typed("11")  # off the scale: plain text
    await shown.remember(CITIZEN, days)
    assert (await shown.resolve(typed("1"))).choice == "sf:5"


async def test_a_survey_after_two_silent_days_arrives_as_a_template_and_is_answered(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the 48-hour window the notifications fall back to the configured template; the
    person answers it by typing, which opens the window again for the rest of the survey."""
    monkeypatch.setenv(TEMPLATE_NOTICE_ENV, NOTICE_TEMPLATE)
    async with running_desk(db_url, tmp_path, templates=(NOTICE_TEMPLATE,)) as desk:
        person = Phone(desk, CITIZEN)
        await file_over_wechat(person)
        complaint = await Complaint.get(complainant__external_id=CITIZEN)
        org = await make_org()
        # Handled over the next days while the person stays silent (staff on Telegram here).
        desk.clock.now = local("2026-11-27T10:00")  # Friday: two days since the filing
        await accept(PROFILE, org, complaint, desk.clock.now)
        await assign(PROFILE, org, complaint, desk.clock.now)
        await acknowledge(PROFILE, org, complaint, desk.clock.now)
        await reply(PROFILE, org, complaint, desk.clock.now)
        stored = await Complaint.get(id=complaint.id)
        assert stored.next_alarm_at is not None
        await sweep(stored.next_alarm_at, profile=PROFILE, context=CONTEXT)
        desk.clock.now = local("2026-12-01T09:00")  # Tuesday morning, the office opens
        await deliver_notifications(desk)
        assert desk.fake.texts_to(CITIZEN) == []  # the window had closed: templates only
        told = person.inbox()
        assert [m["template_id"] for m in desk.fake.sent_to(CITIZEN)] == [NOTICE_TEMPLATE] * 4
        assert REPLY_TEXT_SCHEDULER in told[-2] and "满意程度" in told[-1]
        assert "满意程度" in await person.say("8")
        await person.say("6")
        assert "您的评价" in await person.pick("无意见")
        answer = await SurveyResponse.get(complaint_id=complaint.id)
        assert (answer.result_score, answer.attitude_score, answer.comment) == (8, 6, None)
        assert (await Complaint.get(id=complaint.id)).state == State.CLOSED
