"""Conversations over /wechat in safe mode: a complete filing, WeChat's retries and the
five-second rule (late answers through the outbox) — on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

from bot.conversation import Conversation
from bot.outbox import Dispatcher
from bot.wechat import ShownOptions
from handlers.messages import Choice, Incoming, Outgoing
from models.entities import (
    Attachment,
    Channel,
    Complaint,
    DialogSession,
    OutboxMessage,
    OutboxStatus,
    ProcessedUpdate,
)
from models.outbox import enqueue, outgoing_from_json
from models.workflow import State
from tests.fakes.wechat_server import Delivery
from tests.images import jpeg
from tests.waiting import eventually
from tests.wechat_harness import Desk, FixedClock, SlowConversation, running_desk, slow_turns

OPENID = "oCitizenLiLei00000000000001"
JPEG = jpeg("evidence")


def options(delivery: Delivery) -> dict[str, str]:
    """The numbered options of a reply: label -> the number to type."""
    text = delivery.text or ""
    return {m.group(2): m.group(1) for m in re.finditer(r"^(\d+)\. (.+)$", text, re.M)}


class Citizen:
    """One person typing in WeChat (safe mode), reading each passive reply."""

    def __init__(self, desk: Desk, openid: str = OPENID) -> None:
        self.desk = desk
        self.openid = openid
        self.last: Delivery | None = None

    async def say(self, text: str) -> Delivery:
        self.last = await self.desk.fake.push_text(self.desk.url, self.openid, text)
        assert self.last.status == 200, self.last.body
        return self.last

    async def pick(self, label: str) -> Delivery:
        """Answer a question by the number shown next to `label`."""
        assert self.last is not None
        number = options(self.last).get(label)
        assert number is not None, f"{label!r} not offered in:\n{self.last.text}"
        return await self.say(number)

    async def click(self, key: str) -> Delivery:
        self.last = await self.desk.fake.push_event(
            self.desk.url, self.openid, "CLICK", EventKey=key
        )
        return self.last

    async def photo(self, data: bytes) -> Delivery:
        media_id = self.desk.fake.register_media(data, "image/jpeg")
        xml = self.desk.fake.media_xml(self.openid, "image", media_id, PicUrl="http://x/1.jpg")
        self.last = await self.desk.fake.deliver(self.desk.url, xml)
        return self.last

    async def location(self, lat: float, lon: float, label: str) -> Delivery:
        fake = self.desk.fake
        xml = fake.text_xml(self.openid, "").replace(
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[]]></Content>",
            "<MsgType><![CDATA[location]]></MsgType>"
            f"<Location_X>{lat}</Location_X><Location_Y>{lon}</Location_Y><Scale>15</Scale>"
            f"<Label><![CDATA[{label}]]></Label>",
        )
        self.last = await fake.deliver(self.desk.url, xml)
        return self.last


async def test_a_complaint_is_filed_entirely_over_wechat_in_safe_mode(
    db_url: str, tmp_path: Path
) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        person = Citizen(desk)
        welcome = await person.desk.fake.push_event(desk.url, OPENID, "subscribe")
        assert "我要投诉" in options(welcome)
        await person.click("file")
        await person.pick("都不是，继续投诉")
        await person.pick("服务态度")
        await person.pick("态度生硬、推诿扯皮")
        await person.say("工作人员")  # answering with the label works as well as the number
        await person.say("3号窗口 工号1024")
        await person.say("昨天下午3点")
        await person.location(31.2304, 121.4737, "市民中心二楼")
        await person.say("工作人员拒绝受理我的材料，并且态度恶劣，大声呵斥。")
        await person.pick("赔礼道歉")
        await person.pick("跳过")
        await person.pick("跳过")
        await person.pick("跳过")  # grounds (理由)
        await person.pick("否，留下姓名和电话")
        await person.pick("知道了，继续")  # the privacy notice before name and phone
        await person.say("李雷")
        await person.say("138 1234 5678")
        await person.pick("跳过")  # organisation (单位名称)
        await person.photo(JPEG)
        await person.pick("完成")
        summary = person.last
        assert summary is not None and "市民中心二楼" in (summary.text or "")
        done = await person.pick("提交")
        complaint = await Complaint.get(complainant__external_id=OPENID)
        assert complaint.number == "202611-0001"
        assert complaint.number in (done.text or "")
        assert complaint.state == State.SUBMITTED
        assert complaint.category == "service_attitude"
        assert complaint.contact_phone == "+8613812345678"
        # "Skip" answered by its number skipped the free-text questions (not stored as "1").
        assert complaint.request_text is None and complaint.witnesses is None
        assert complaint.place_text == "市民中心二楼"
        assert (complaint.latitude, complaint.longitude) == (31.2304, 121.4737)
        photos = await Attachment.filter(complaint=complaint)
        assert [p.size for p in photos] == [len(JPEG)] and photos[0].channel == Channel.WECHAT
        # "My complaints" in the custom menu shows it.
        status = await person.click("status")
        assert complaint.number in (status.text or "")

        # Every answer came back passively: each a reply row committed with its turn, carried
        # by the passive reply (marked sent right after the response), none through the API.
        async def all_answered() -> bool:
            rows = await OutboxMessage.all()
            return all(r.status == OutboxStatus.SENT and r.in_response for r in rows)

        await eventually(all_answered, what="every reply row answered passively")
        keys = await OutboxMessage.all().values_list("idempotency_key", flat=True)
        assert keys and all(str(key).startswith("reply:wechat:wx:") for key in keys)
        assert desk.fake.calls_to("/cgi-bin/message/custom/send") == []


async def test_wechat_retries_of_one_message_are_processed_once(
    db_url: str, tmp_path: Path
) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        xml = desk.fake.text_xml(OPENID, "/start", msg_id=6_000_000_000_000_000_042)
        answers = [await desk.fake.deliver(desk.url, xml) for _ in range(3)]
        assert all(a.status == 200 for a in answers)
        # The same passive answer each time (WeChat retries when it did not get the first).
        assert answers[0].text and {a.text for a in answers} == {answers[0].text}
        assert await ProcessedUpdate.filter(update_key=f"wx:{6_000_000_000_000_000_042}").count()
        session = await DialogSession.get(channel=Channel.WECHAT, external_id=OPENID)
        assert session.version == 1
        assert session.state["flow"] == "screening"


async def test_a_retry_reaching_another_worker_is_not_processed_again(
    db_url: str, tmp_path: Path
) -> None:
    async with (
        running_desk(db_url, tmp_path) as worker_a,
        running_desk(db_url, tmp_path) as worker_b,
    ):
        xml = worker_a.fake.text_xml(OPENID, "/start", msg_id=6_000_000_000_000_000_043)
        first = await worker_a.fake.deliver(worker_a.url, xml)
        retried = await worker_b.fake.deliver(worker_b.url, xml)
        # WeChat asks again only when it got no answer: the retry gets the committed one.
        assert first.text and retried.status == 200 and retried.text == first.text
        session = await DialogSession.get(channel=Channel.WECHAT, external_id=OPENID)
        assert session.version == 1


async def test_a_slow_turn_answers_success_then_delivers_through_the_outbox(
    db_url: str, tmp_path: Path
) -> None:
    slow, wrap = slow_turns()
    async with running_desk(db_url, tmp_path, wrap=wrap, reply_deadline=0.05) as desk:
        xml = desk.fake.text_xml(OPENID, "/start", msg_id=6_000_000_000_000_000_044)
        first = await desk.fake.deliver(desk.url, xml)
        assert first.status == 200 and first.body == "success"
        # WeChat would not retry after "success"; a retry anyway is answered the same way
        # and does not start a second turn.
        again = await desk.fake.deliver(desk.url, xml)
        assert again.body == "success" and slow[0].turns == 1
        slow[0].release.set()
        await desk.endpoint.drain()
        rows = await OutboxMessage.filter(channel=Channel.WECHAT)
        assert len(rows) == 1 and rows[0].chat_id == OPENID
        late = outgoing_from_json(rows[0].payload)
        assert "都不是，继续投诉" in late.text and "\n5. 都不是，继续投诉" in late.text
        # The dispatcher hands the row to the WeChat sender: a customer-service message.
        dispatcher = Dispatcher({Channel.WECHAT: desk.sender}, now=desk.clock)
        assert await dispatcher.dispatch_once() == 1
        assert desk.fake.texts_to(OPENID) == [late.text]
        assert (await OutboxMessage.get(id=rows[0].id)).status == OutboxStatus.SENT


async def test_a_notification_outside_the_window_is_surfaced_not_dropped(
    db_url: str, tmp_path: Path
) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        await desk.fake.push_text(desk.url, OPENID, "/help")
        # The answer's row is marked sent only after the response is written (a task of its
        # own): until then it heads the chat, `sending`, and the notification waits behind it.
        # Two days later it is long settled.
        await desk.endpoint.drain()
        desk.fake.close_window(OPENID)  # two days later, nothing more from this person
        await enqueue(
            channel=Channel.WECHAT,
            chat_id=OPENID,
            message=Outgoing("您的投诉 202611-0001 已受理。"),
            idempotency_key="accepted:202611-0001",
            now=desk.clock(),
        )
        dispatcher = Dispatcher({Channel.WECHAT: desk.sender}, now=desk.clock)
        assert await dispatcher.dispatch_once() == 0
        row = await OutboxMessage.get(idempotency_key="accepted:202611-0001")
        assert row.status == OutboxStatus.FAILED and "45015" in (row.last_error or "")
        assert desk.fake.sent_to(OPENID) == []


class RecordingConversation(SlowConversation):
    """A Conversation that records what the adapter made of each message."""

    def __init__(self, inner: Conversation) -> None:
        super().__init__(inner)
        self.release.set()
        self.seen: list[Incoming] = []

    async def handle(self, incoming: Incoming) -> list[Outgoing]:
        self.seen.append(incoming)
        return await super().handle(incoming)


async def test_a_number_answers_the_options_shown_last_even_by_the_outbox(
    db_url: str, tmp_path: Path
) -> None:
    recorders: list[RecordingConversation] = []

    def wrap(conversation: Conversation) -> RecordingConversation:
        recorders.append(RecordingConversation(conversation))
        return recorders[0]

    async with running_desk(db_url, tmp_path, wrap=wrap) as desk:
        menu = await desk.fake.push_text(desk.url, OPENID, "/help")
        assert options(menu)["我要投诉"] == "1"
        # Later a question with options arrives through the outbox (a survey, say).
        rating = (Choice("rate:5", "满意"), Choice("rate:1", "不满意"))
        survey = Outgoing("您对处理结果满意吗？", rating)
        await desk.sender.send(OPENID, survey)
        await desk.fake.push_text(desk.url, OPENID, "２")  # a full-width digit from the IME
        answer = recorders[0].seen[-1]
        assert (answer.kind, answer.choice, answer.text) == ("choice", "rate:1", None)
        # Numbers beyond the options shown (the menu again, four of them) stay text.
        await desk.fake.push_text(desk.url, OPENID, "9")
        await desk.fake.push_text(desk.url, OPENID, "13812345678")
        assert [(m.kind, m.text) for m in recorders[0].seen[-2:]] == [
            ("text", "9"),
            ("text", "13812345678"),
        ]


async def test_shown_options_expire_and_are_forgotten(db_url: str) -> None:
    clock = FixedClock()
    shown = ShownOptions(clock)
    typed = Incoming(channel="wechat", user_id=OPENID, kind="text", text="1")
    assert await shown.resolve(typed) == typed  # nothing shown yet
    await shown.remember(OPENID, (Choice("menu:new", "我要投诉"),))
    assert (await shown.resolve(typed)).choice == "menu:new"
    await shown.remember(OPENID, (Choice("done", "完成"),))  # the newest options win
    assert (await shown.resolve(typed)).choice == "done"
    clock.advance(days=3)
    assert await shown.resolve(typed) == typed
    clock.advance(days=-3)
    await shown.forget(OPENID)
    assert await shown.resolve(typed) == typed
