"""The Telegram channel end to end: python-telegram-bot over real HTTP against FakeTelegram,
the real Conversation on SQLite and PostgreSQL, in long-polling and in webhook mode.

A `Desk` is complaintdesk's aiohttp app serving the bot; a `Citizen` is a person in a private
chat who types, presses buttons, shares a contact or a location and sends photos or stickers.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from bot.app import create_app
from bot.attachments import read_attachment
from bot.conversation import Conversation
from bot.telegram import TELEGRAM_CHANNEL, TelegramChannel, setup_telegram
from config.profiles import Profile, load_profile
from config.settings import Settings
from handlers.dialog import COMMANDS
from handlers.messages import Outgoing
from models.entities import Attachment, Complainant, Complaint, DialogSession
from models.numbering import NUMBER_IN_TEXT as NUMBER
from models.workflow import State
from scheduler.calendar import WorkingCalendar
from tests.fakes import FakeTelegram
from tests.images import jpeg
from tests.waiting import WITHIN_SECONDS, eventually

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

CITIZEN = 7001
MB = 1024 * 1024
JPEG = jpeg("broken window at counter 3")
CALENDAR = WorkingCalendar()
PROFILE = load_profile("gov-window")


async def until(condition: Callable[[], bool], within: float = WITHIN_SECONDS) -> None:
    """Wait for something the bot does in the background (no timing is asserted)."""
    # The bot's background task changes the state; it offers no event to wait on.
    await eventually(condition, within=within, what="the bot's background work")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Desk:
    """The product's web app serving the bot; stop and start it again to restart the process."""

    def __init__(
        self,
        tg: FakeTelegram,
        db_url: str,
        data_dir: Path,
        *,
        webhook: bool,
        profile: Profile = PROFILE,
        **extra: Any,
    ) -> None:
        self.tg = tg
        self.webhook = webhook
        self.profile = profile
        self.port = free_port()
        self.settings = Settings(
            database_url=db_url,
            data_dir=data_dir,
            telegram_token=tg.token,
            telegram_api_base=tg.base_url,
            public_url=f"http://127.0.0.1:{self.port}" if webhook else None,
            **extra,
        )
        self._runner: web.AppRunner | None = None
        self.channel: TelegramChannel | None = None

    async def start(self) -> None:
        conversation = Conversation(self.settings, self.profile, CALENDAR)
        app = web.Application()
        setup_telegram(app, conversation, self.settings, poll_timeout=1)
        self.channel = app[TELEGRAM_CHANNEL]
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram/webhook"


class Citizen:
    """One person in a private chat with the bot (chat id == user id)."""

    def __init__(self, tg: FakeTelegram, desk: Desk, language_code: str = "zh-hans") -> None:
        self.tg = tg
        self.desk = desk
        self.chat_id = CITIZEN
        self.language_code = language_code
        self.received: list[str] = []

    async def deliver(self, update: dict[str, Any]) -> list[str]:
        """Hand `update` to the bot as Telegram would and wait until it has answered."""
        before = len(self.tg.texts_to(self.chat_id))
        if self.desk.webhook:
            assert await self.tg.deliver_webhook(None, update) == 200
        else:
            self.tg.push_update(update)
            channel = self.desk.channel
            assert channel is not None
            await until(lambda: channel.has_processed(update["update_id"]))
        self.received = self.tg.texts_to(self.chat_id)[before:]
        return self.received

    def _message(self, **fields: Any) -> dict[str, Any]:
        return self.tg.push_message(
            self.chat_id,
            self.chat_id,
            language_code=self.language_code,
            enqueue=False,
            **fields,
        )

    async def text(self, text: str) -> list[str]:
        return await self.deliver(self._message(text=text))

    async def command(self, name: str, args: str = "") -> list[str]:
        return await self.text(f"/{name} {args}".strip())

    async def contact(self, phone: str) -> list[str]:
        return await self.deliver(self._message(contact=phone))

    async def location(self, latitude: float, longitude: float) -> list[str]:
        return await self.deliver(self._message(location=(latitude, longitude)))

    async def photo(self, content: bytes | int) -> list[str]:
        return await self.deliver(self._message(photo=content))

    async def sticker(self) -> list[str]:
        return await self.deliver(self._message(sticker=True))

    async def choose(self, choice_id: str) -> list[str]:
        """Press the button for `choice_id` on the latest bot message that shows it."""
        return await self.deliver(self.button_update(choice_id))

    def button_update(self, choice_id: str) -> dict[str, Any]:
        for message in reversed(self.tg.messages_in(self.chat_id)):
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            if any(b.get("callback_data") == choice_id for row in rows for b in row):
                return self.tg.push_callback(
                    self.chat_id,
                    self.chat_id,
                    choice_id,
                    message["message_id"],
                    language_code=self.language_code,
                    enqueue=False,
                )
        raise LookupError(f"no button {choice_id!r} in {self.said}")

    @property
    def said(self) -> str:
        return "\n".join(self.received)

    def last_markup(self) -> dict[str, Any]:
        """reply_markup of the bot's latest sendMessage, as sent."""
        sends = [c for c in self.tg.sent_to(self.chat_id) if c["method"] == "sendMessage"]
        return sends[-1]["params"].get("reply_markup") or {}


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture(params=["polling", "webhook"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def serve(tg: FakeTelegram, db_url: str, tmp_path: Path, mode: str, **extra: Any) -> Desk:
    desk = Desk(tg, db_url, tmp_path / "data", webhook=mode == "webhook", **extra)
    await desk.start()
    return desk


# ---------------------------------------------------------------- the whole filing


async def walk_to_phone(person: Citizen, incident_time: str) -> None:
    """/start up to the phone question, sharing the location for the place."""
    await person.command("start", "gov-window")
    await person.choose("screen:none")
    await person.choose("opt:service_attitude")
    await person.choose("opt:rude")
    await person.choose("opt:staff")
    await person.text("3号窗口 工号1024")
    await person.text(incident_time)
    # The place question offers a location button; sharing it answers.
    assert person.last_markup()["keyboard"][0][0]["request_location"] is True
    await person.location(31.2304, 121.4737)
    await person.text("工作人员拒绝受理我的材料，并且态度恶劣，大声呵斥。")
    await person.choose("opt:apology")
    await person.choose("skip")
    await person.choose("skip")
    await person.choose("skip")  # grounds (理由)
    await person.choose("opt:no")
    await person.choose("privacy:ok")  # the privacy notice before name and phone
    await person.text("李雷")
    assert person.last_markup()["keyboard"][0][0]["request_contact"] is True


async def finish_from_phone(person: Citizen, *, share_contact: bool = True) -> str:
    """From the phone question (or just after it) to the complaint number."""
    if share_contact:
        await person.contact("+8613812345678")
    await person.choose("skip")  # organisation (单位名称)
    await person.photo(JPEG)
    await person.choose("done")
    replies = await person.choose("confirm")
    found = NUMBER.search("\n".join(replies))
    assert found, person.said
    return found.group()


@pytest.mark.parametrize(
    ("language_code", "lang", "incident_time", "filed"),
    [
        ("zh-hans", "zh_CN", "昨天下午3点", "您的投诉已提交"),
        ("en", "en", "3 hours ago", "Your complaint has been filed"),
    ],
)
async def test_file_a_complaint(
    tg: FakeTelegram,
    db_url: str,
    tmp_path: Path,
    mode: str,
    language_code: str,
    lang: str,
    incident_time: str,
    filed: str,
) -> None:
    desk = await serve(tg, db_url, tmp_path, mode)
    person = Citizen(tg, desk, language_code)
    try:
        await walk_to_phone(person, incident_time)
        number = await finish_from_phone(person)
    finally:
        await desk.stop()

    assert filed in person.said
    complaint = await Complaint.get(number=number).prefetch_related("complainant", "attachments")
    assert complaint.state == State.SUBMITTED
    assert complaint.complainant.external_id == str(CITIZEN)
    assert complaint.complainant.phone is not None and "13812345678" in complaint.complainant.phone
    assert complaint.complainant.language == lang
    [photo] = complaint.attachments
    assert photo.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert await read_attachment(photo) == JPEG
    # Every button press was answered, and the pressed keyboards were taken away.
    presses = tg.calls_of("answerCallbackQuery")
    assert presses and all(call.ok for call in presses)
    assert not any("inline_keyboard" in m.get("reply_markup", {}) for m in _pressed(tg))
    # Nothing was sent with a parse mode: people's text is shown exactly as typed.
    assert not any("parse_mode" in call.params for call in tg.calls_of("sendMessage"))


def _pressed(tg: FakeTelegram) -> list[dict[str, Any]]:
    ids = {call.params["message_id"] for call in tg.calls_of("editMessageText")}
    return [m for m in tg.messages_in(CITIZEN) if m["message_id"] in ids]


async def test_a_pressed_button_is_marked_on_its_message(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    desk = await serve(tg, db_url, tmp_path, "polling")
    person = Citizen(tg, desk)
    try:
        await person.command("start")
        question = tg.last_bot_message(CITIZEN)
        assert question is not None
        asked = question["text"]  # the fake edits its message dicts in place
        await person.choose("screen:none")
    finally:
        await desk.stop()
    pressed = next(m for m in tg.messages_in(CITIZEN) if m["message_id"] == question["message_id"])
    assert "reply_markup" not in pressed
    assert pressed["text"] == asked + "\n\n✔ 都不是，继续投诉"


# ---------------------------------------------------------------- error paths


async def test_sticker_where_a_phone_is_asked(
    tg: FakeTelegram, db_url: str, tmp_path: Path, mode: str
) -> None:
    desk = await serve(tg, db_url, tmp_path, mode)
    person = Citizen(tg, desk)
    try:
        await walk_to_phone(person, "昨天下午3点")
        replies = await person.sticker()
        assert "抱歉，我无法识别这类消息。" in "\n".join(replies)
        # Still the phone question, with its contact button again.
        assert person.last_markup()["keyboard"][0][0]["request_contact"] is True
        number = await finish_from_phone(person)
    finally:
        await desk.stop()
    assert await Complaint.exists(number=number)


@pytest.mark.parametrize("language_code", ["zh-hans", "en"])
async def test_over_long_text_unknown_command_and_cancel(
    tg: FakeTelegram, db_url: str, tmp_path: Path, language_code: str
) -> None:
    desk = await serve(tg, db_url, tmp_path, "polling")
    person = Citizen(tg, desk, language_code)
    try:
        await person.command("start")
        await person.choose("screen:none")
        await person.choose("opt:service_attitude")
        await person.choose("opt:rude")
        await person.choose("opt:staff")
        session = await DialogSession.get(external_id=str(CITIZEN))
        before = (session.state["flow"], session.state["step"])

        long_reply = await person.text("长" * 10_000)
        assert long_reply, "the person is told why"
        assert all(len(text) <= 4096 for text in long_reply)
        await session.refresh_from_db()
        assert (session.state["flow"], session.state["step"]) == before

        unknown = await person.command("frobnicate")
        expected = "Unknown command /frobnicate" if language_code == "en" else "无法识别的命令"
        assert expected in "\n".join(unknown)

        cancelled = await person.choose("cancel")
    finally:
        await desk.stop()
    expected = "draft complaint was discarded" if language_code == "en" else "投诉草稿已作废"
    assert expected in "\n".join(cancelled)
    await session.refresh_from_db()
    assert session.state["flow"] == "idle"
    assert not await Complaint.exists()


async def test_restart_mid_way_continues_on_the_same_database(
    tg: FakeTelegram, db_url: str, tmp_path: Path, mode: str
) -> None:
    first = await serve(tg, db_url, tmp_path, mode)
    person = Citizen(tg, first)
    try:
        await walk_to_phone(person, "昨天下午3点")
    finally:
        await first.stop()
    queued = None
    if mode == "polling":
        # Shared while no worker runs: Telegram keeps it until the next one polls.
        queued = person._message(contact="+8613812345678")
        tg.push_update(queued)
    second = await serve(tg, db_url, tmp_path, mode)
    person.desk = second
    try:
        if queued is not None:
            channel = second.channel
            assert channel is not None
            await until(lambda: channel.has_processed(queued["update_id"]))
        else:
            await person.contact("+8613812345678")
        number = await finish_from_phone(person, share_contact=False)
    finally:
        await second.stop()
    complaint = await Complaint.get(number=number).prefetch_related("complainant")
    assert complaint.complainant.name == "李雷"
    assert complaint.complainant.phone is not None and "13812345678" in complaint.complainant.phone


async def test_a_duplicate_update_is_processed_once(
    tg: FakeTelegram, db_url: str, tmp_path: Path, mode: str
) -> None:
    def welcomes() -> int:
        return sum(text.startswith("欢迎使用") for text in tg.texts_to(CITIZEN))

    desk = await serve(tg, db_url, tmp_path, mode)
    person = Citizen(tg, desk)
    try:
        start = person._message(text="/start")
        assert await person.deliver(start)
        await person.deliver(start)  # Telegram delivers the same update_id again
        # Updates are handled in order, so once this is answered the duplicate was handled.
        assert await person.command("help")
        assert welcomes() == 1
    finally:
        await desk.stop()
    # Another worker (or this one restarted, its memory empty) gets it once more: the
    # conversation's record of handled updates still takes it once.
    restarted = await serve(tg, db_url, tmp_path, mode)
    person.desk = restarted
    try:
        assert await person.deliver(start) == []
        assert await person.choose("screen:none")
    finally:
        await restarted.stop()
    assert welcomes() == 1


async def test_a_photo_over_the_limit_is_refused_without_downloading(
    tg: FakeTelegram, db_url: str, tmp_path: Path, mode: str
) -> None:
    desk = await serve(tg, db_url, tmp_path, mode)
    person = Citizen(tg, desk)
    try:
        await walk_to_phone(person, "昨天下午3点")
        await person.contact("+8613812345678")
        await person.choose("skip")  # organisation (单位名称)
        replies = await person.photo(15 * MB)  # the limit is 10 MB
        assert "该文件有 15 MB，每张照片不能超过 10 MB" in "\n".join(replies)
        assert tg.calls_of("getFile") == []
        await person.choose("done")
        replies = await person.choose("confirm")
    finally:
        await desk.stop()
    assert NUMBER.search("\n".join(replies))
    assert not await Attachment.exists()


async def test_a_file_telegram_will_not_hand_to_bots_is_refused(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    # Our limit allows 30 MB, but bots may fetch at most 20 MB from Telegram.
    desk = await serve(tg, db_url, tmp_path, "polling", max_photo_mb=30)
    person = Citizen(tg, desk, "en")
    try:
        await walk_to_phone(person, "3 hours ago")
        await person.contact("+8613812345678")
        await person.choose("skip")  # organisation (单位名称)
        update = person._message(document=25 * MB, file_name="scan.tif", mime_type="image/tiff")
        replies = await person.deliver(update)
    finally:
        await desk.stop()
    assert replies == ["That file is too large."]
    assert tg.calls_of("getFile") == []


async def test_deep_link_payload_reaches_the_dialog(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    desk = await serve(tg, db_url, tmp_path, "webhook")
    person = Citizen(tg, desk)
    try:
        await person.command("start", "dept-7")
    finally:
        await desk.stop()
    session = await DialogSession.get(external_id=str(CITIZEN))
    assert session.state["answers"]["deep_link"] == "dept-7"


async def test_a_document_is_stored_with_its_hash(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    desk = await serve(tg, db_url, tmp_path, "polling")
    person = Citizen(tg, desk)
    content = b"%PDF-1.7 proof of the refusal"
    try:
        await walk_to_phone(person, "昨天下午3点")
        await person.contact("+8613812345678")
        await person.choose("skip")  # organisation (单位名称)
        await person.deliver(person._message(document=content, file_name="proof.pdf"))
        await person.choose("done")
        replies = await person.choose("confirm")
    finally:
        await desk.stop()
    found = NUMBER.search("\n".join(replies))
    assert found
    complaint = await Complaint.get(number=found.group()).prefetch_related("attachments")
    [document] = complaint.attachments
    assert (document.file_name, document.mime_type) == ("proof.pdf", "application/pdf")
    assert document.sha256 == hashlib.sha256(content).hexdigest()


# ---------------------------------------------------------------- webhook and commands


async def test_webhook_checks_the_secret_and_the_body(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    desk = await serve(tg, db_url, tmp_path, "webhook", telegram_webhook_secret="s3cret-1")
    try:
        assert tg.webhook is not None
        assert tg.webhook["url"] == desk.url
        assert tg.webhook["secret_token"] == "s3cret-1"
        assert set(tg.webhook["allowed_updates"]) == {"message", "callback_query"}
        update = tg.push_message(CITIZEN, CITIZEN, text="/start", enqueue=False)
        assert await tg.deliver_webhook(None, update, secret_token="wrong") == 403
        assert await tg.deliver_webhook(None, update, secret_token=None) == 403
        assert tg.texts_to(CITIZEN) == []
        headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-1"}
        async with ClientSession() as session:
            async with session.post(desk.url, data=b"not json", headers=headers) as response:
                assert response.status == 400
            async with session.post(desk.url, json=[1, 2], headers=headers) as response:
                assert response.status == 400
        assert await tg.deliver_webhook(None, update) == 200
        assert tg.texts_to(CITIZEN)
    finally:
        await desk.stop()


async def test_a_press_is_answered_with_the_next_question_before_the_chat_is_tidied(
    tg: FakeTelegram, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook's response carries the next question; answering the press (its spinner) and
    taking the keyboard off the pressed message ("✔ label" under its text) follow it, so a slow
    Bot API holds up neither the person nor the response."""
    desk = await serve(tg, db_url, tmp_path, "webhook")
    person = Citizen(tg, desk)
    released = asyncio.Event()
    slow: list[str] = []

    def held(method: str, call: Callable[..., Any]) -> Callable[..., Any]:
        async def answer(params: dict[str, Any], files: dict[str, bytes]) -> Any:
            slow.append(method)
            await released.wait()
            return await call(params, files)

        return answer

    try:
        await person.command("start", "gov-window")
        press = person.button_update("screen:none")
        pressed_id = press["callback_query"]["message"]["message_id"]
        question = copy.deepcopy(
            next(m for m in tg.messages_in(CITIZEN) if m["message_id"] == pressed_id)
        )  # the fake edits its messages in place
        table = dict(tg._method_table)  # the fake's methods by lower-case name
        for method, short in (("answercallbackquery", "answer"), ("editmessagetext", "edit")):
            name, call = table[method]
            table[method] = (name, held(short, call))
        monkeypatch.setattr(tg, "_method_table", table)
        delivered = asyncio.create_task(tg.deliver_webhook(None, press))
        await until(lambda: delivered.done() and sorted(slow) == ["answer", "edit"])
        assert delivered.result() == 200
        assert tg.messages_in(CITIZEN)[-1]["message_id"] != question["message_id"]  # the next one
        assert desk.channel is not None and not desk.channel.has_processed(press["update_id"])
        released.set()
        await until(
            lambda: desk.channel is not None and desk.channel.has_processed(press["update_id"])
        )
        edited = next(
            m for m in tg.messages_in(CITIZEN) if m["message_id"] == question["message_id"]
        )
        assert "reply_markup" not in edited or not edited["reply_markup"].get("inline_keyboard")
        assert edited["text"].endswith(
            "✔ "
            + next(
                b["text"]
                for row in question["reply_markup"]["inline_keyboard"]
                for b in row
                if b["callback_data"] == "screen:none"
            )
        )
        answered = tg.calls_of("answerCallbackQuery")
        assert [c.params["callback_query_id"] for c in answered if c.ok] == [
            press["callback_query"]["id"]
        ]
    finally:
        released.set()
        await desk.stop()


async def test_polling_after_webhook_removes_the_webhook(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    webhook = await serve(tg, db_url, tmp_path, "webhook")
    await webhook.stop()
    assert tg.webhook is not None  # kept for the other workers
    polling = await serve(tg, db_url, tmp_path, "polling")
    person = Citizen(tg, polling)
    try:
        assert tg.webhook is None
        assert await person.command("help")
    finally:
        await polling.stop()


async def test_commands_are_listed_per_language(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    desk = await serve(tg, db_url, tmp_path, "polling")
    await desk.stop()
    assert tg.my_commands() == list(COMMANDS)
    assert tg.my_commands("zh") == list(COMMANDS)
    assert tg.my_commands("en") == list(COMMANDS)
    english = {c["command"]: c["description"] for c in tg.commands[('{"type": "default"}', "en")]}
    chinese = {c["command"]: c["description"] for c in tg.commands[('{"type": "default"}', "zh")]}
    assert english["start"] == "file a new complaint"
    assert chinese["start"] != english["start"]


async def test_settings_without_public_url_poll_and_with_it_use_the_webhook(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    polling = await serve(tg, db_url, tmp_path, "polling")
    try:
        assert polling.channel is not None and not polling.channel.webhook_mode
        await until(lambda: tg.waiting_polls >= 1)
    finally:
        await polling.stop()
    assert "getUpdates" in {call.method for call in tg.calls}


async def test_complainant_row_is_reachable_by_chat(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    desk = await serve(tg, db_url, tmp_path, "webhook")
    person = Citizen(tg, desk)
    try:
        await walk_to_phone(person, "昨天下午3点")
        await finish_from_phone(person)
    finally:
        await desk.stop()
    person_row = await Complainant.get(external_id=str(CITIZEN))
    assert person_row.channel == "telegram"


LONG_ID_PROFILE = """
id = "long-ids"
extends = "gov-window"

[[exclusions]]
id = "%s"
label = { zh_CN = "已进入诉讼、仲裁或行政复议", en = "In court or arbitration" }
reason = { zh_CN = "该事项已进入诉讼程序。", en = "The matter is before a court." }
guidance = { zh_CN = "请向受理的人民法院了解进展。", en = "Ask the court handling it." }
""" % ("legal_proceedings_" + "x" * 46)


async def test_a_choice_id_too_long_for_callback_data_still_works(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "long-ids.toml"
    path.write_text(LONG_ID_PROFILE, encoding="utf-8")
    desk = await serve(tg, db_url, tmp_path, "polling", profile=load_profile(path))
    person = Citizen(tg, desk)
    try:
        await person.command("start")
        question = tg.last_bot_message(CITIZEN)
        assert question is not None
        [hashed] = [
            button["callback_data"]
            for row in question["reply_markup"]["inline_keyboard"]
            for button in row
            if button["text"] == "已进入诉讼、仲裁或行政复议"
        ]
        assert hashed.startswith("~") and len(hashed.encode()) <= 64
        replies = await person.choose(hashed)
    finally:
        await desk.stop()
    assert "该事项已进入诉讼程序。" in "\n".join(replies)


async def test_the_product_app_serves_the_bot_when_a_token_is_set(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        telegram_token=tg.token,
        telegram_api_base=tg.base_url,
        public_url=f"http://127.0.0.1:{port}/",
    )
    app = create_app(settings, profile=PROFILE, calendar=CALENDAR, manage_db=False)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        assert tg.webhook is not None
        assert tg.webhook["url"] == f"http://127.0.0.1:{port}/telegram/webhook"
        update = tg.push_message(CITIZEN, CITIZEN, text="/start", enqueue=False)
        assert await tg.deliver_webhook(None, update) == 200
    finally:
        await runner.cleanup()
    assert tg.texts_to(CITIZEN)[0].startswith("欢迎使用")


async def test_the_outbox_sender_shares_the_channels_bot(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    desk = await serve(tg, db_url, tmp_path, "polling")
    try:
        assert desk.channel is not None
        await desk.channel.sender().send(str(CITIZEN), Outgoing("您的投诉已受理。"))
    finally:
        await desk.stop()
    assert tg.texts_to(CITIZEN) == ["您的投诉已受理。"]


# ---------------------------------------------------------------- replies survive Telegram failures


async def test_a_reply_telegram_refuses_for_a_while_is_delivered_by_the_outbox(
    tg: FakeTelegram, db_url: str, tmp_path: Path
) -> None:
    from bot.outbox import Dispatcher
    from models.entities import Channel, OutboxMessage, OutboxStatus

    # Replies by a call (the webhook's response would carry a single one, beyond our sight).
    desk = await serve(tg, db_url, tmp_path, "webhook", telegram_reply_in_response=False)
    try:
        citizen = Citizen(tg, desk)
        tg.fail_next("sendMessage", status=502, count=1, chat_id=CITIZEN)
        start = citizen._message(text="/start")
        assert await citizen.deliver(start) == []  # the answer did not get through
        queued = await OutboxMessage.filter(idempotency_key__startswith="reply:telegram:").order_by(
            "id"
        )
        assert queued and all(row.status == OutboxStatus.PENDING for row in queued)
        assert desk.channel is not None
        dispatcher = Dispatcher({Channel.TELEGRAM: desk.channel.sender()})
        sent = 0

        async def all_sent() -> bool:
            nonlocal sent
            sent += await dispatcher.dispatch_once()
            return sent >= len(queued)

        await eventually(all_sent, what=lambda: f"{sent} of {len(queued)} queued replies sent")
        assert sent == len(queued)
        texts = tg.texts_to(CITIZEN)
        assert texts and "excl:" not in texts[-1]
        assert any("投诉" in t for t in texts)  # the welcome and screening question arrived
        # Delivered again (Telegram retries the webhook): nothing is queued or sent twice.
        assert await citizen.deliver(start) == []
        assert await OutboxMessage.filter(
            idempotency_key__startswith="reply:telegram:"
        ).count() == len(queued)
        assert await dispatcher.dispatch_once() == 0
    finally:
        await desk.stop()
