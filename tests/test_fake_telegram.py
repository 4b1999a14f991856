"""The fake Telegram Bot API server, driven by a real python-telegram-bot over loopback HTTP.

These tests pin down what the product's Telegram adapter and outbox can rely on: the same
requests, answers and exceptions PTB sees against api.telegram.org.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import ClientSession, web
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters
from telegram.warnings import PTBDeprecationWarning

from tests.fakes import FakeTelegram

# PTB itself reads its deprecated int `retry_after` when building RetryAfter; not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

CITIZEN = 5001  # a private chat: chat id == user id
CLERK = 5002


def _retry_seconds(error: RetryAfter) -> float:
    # PTB 22 returns int or timedelta depending on PTB_TIMEDELTA; the product must accept both.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        delay = error.retry_after
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(tg.token, base_url=tg.api_url, base_file_url=tg.file_url) as client:
        yield client


async def test_get_me_identifies_the_fake_bot(bot: Bot, tg: FakeTelegram) -> None:
    me = await bot.get_me()
    assert me.id == tg.bot_id
    assert me.username == "complaintdesk_bot"
    assert me.is_bot


async def test_wrong_token_is_unauthorized(tg: FakeTelegram) -> None:
    stranger = Bot("1:wrong", base_url=tg.api_url)
    with pytest.raises(InvalidToken):
        await stranger.initialize()


async def test_send_message_with_inline_keyboard_is_logged_per_chat(
    bot: Bot, tg: FakeTelegram
) -> None:
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("受理", callback_data="accept:202611-0001")],
            [InlineKeyboardButton("Details", url="https://example.org/c/1")],
        ]
    )
    sent = await bot.send_message(CLERK, "新投诉 202611-0001", reply_markup=keyboard)

    assert sent.text == "新投诉 202611-0001"
    assert sent.chat.id == CLERK
    assert sent.reply_markup == keyboard
    [call] = tg.sent_to(CLERK)
    assert call["method"] == "sendMessage"
    assert call["params"]["text"] == "新投诉 202611-0001"
    assert call["params"]["reply_markup"]["inline_keyboard"][0][0] == {
        "text": "受理",
        "callback_data": "accept:202611-0001",
    }
    assert tg.sent_to(CITIZEN) == []
    assert tg.texts_to(CLERK) == ["新投诉 202611-0001"]


async def test_reply_keyboard_requests_contact_and_is_removed(bot: Bot, tg: FakeTelegram) -> None:
    ask = ReplyKeyboardMarkup(
        [[KeyboardButton("Share phone", request_contact=True)]], one_time_keyboard=True
    )
    await bot.send_message(CITIZEN, "Your phone number?", reply_markup=ask)
    await bot.send_message(CITIZEN, "Thanks", reply_markup=ReplyKeyboardRemove())

    first, second = tg.sent_to(CITIZEN)
    assert first["params"]["reply_markup"]["keyboard"] == [
        [{"text": "Share phone", "request_contact": True}]
    ]
    assert second["params"]["reply_markup"] == {"remove_keyboard": True}


async def test_text_length_and_emptiness_are_checked_like_telegram(
    bot: Bot, tg: FakeTelegram
) -> None:
    await bot.send_message(CITIZEN, "字" * 4096)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(CITIZEN, "字" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(CITIZEN, "   ")
    # Markup does not count towards the limit; the text after parsing does.
    await bot.send_message(CITIZEN, "<b>" + "a" * 4096 + "</b>", parse_mode=ParseMode.HTML)

    statuses = [call["status"] for call in tg.sent_to(CITIZEN, include_failed=True)]
    assert statuses == [200, 400, 400, 200]
    assert len(tg.sent_to(CITIZEN)) == 2


async def test_html_is_parsed_and_unescaped_user_text_is_refused(
    bot: Bot, tg: FakeTelegram
) -> None:
    sent = await bot.send_message(
        CITIZEN, "<b>编号</b> 1 &lt; 2 <a href='https://x.org'>link</a>", parse_mode="HTML"
    )
    assert sent.text == "编号 1 < 2 link"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 2),
        ("text_link", 9, 4),
    ]
    with pytest.raises(BadRequest, match=r"(?i)unsupported start tag"):
        await bot.send_message(CITIZEN, "complaint: a <script> tag", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)can't find end tag"):
        await bot.send_message(CITIZEN, "<b>bold", parse_mode="HTML")
    with pytest.raises(BadRequest, match="reserved and must be escaped"):
        await bot.send_message(CITIZEN, "Done.", parse_mode=ParseMode.MARKDOWN_V2)
    sent = await bot.send_message(CITIZEN, r"*Done*\.", parse_mode=ParseMode.MARKDOWN_V2)
    assert sent.text == "Done."


async def test_callback_data_over_64_bytes_is_refused(bot: Bot) -> None:
    button = InlineKeyboardButton("x", callback_data="受" * 22)  # 66 bytes in UTF-8
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(CITIZEN, "pick", reply_markup=InlineKeyboardMarkup([[button]]))


async def test_get_updates_long_polls_and_honours_offset(bot: Bot, tg: FakeTelegram) -> None:
    waiting = asyncio.create_task(bot.get_updates(timeout=60))
    await tg.wait_for(lambda: tg.waiting_polls == 1)  # the bot is now held in a long poll
    tg.push_message(CITIZEN, CITIZEN, text="/start gov-window", language_code="en")
    [update] = await waiting

    message = update.message
    assert message is not None
    assert message.text == "/start gov-window"
    assert message.from_user is not None and message.from_user.language_code == "en"
    assert message.entities[0].type == "bot_command"
    assert message.entities[0].length == len("/start")

    # Not confirmed yet: the same update comes again, as Telegram redelivers it.
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [update.update_id]
    # Asking for the next offset confirms it.
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
    assert tg.pending_updates == []


async def test_long_poll_times_out_empty(bot: Bot) -> None:
    assert await bot.get_updates(timeout=1) == ()


async def test_duplicate_update_id_is_delivered_twice(bot: Bot, tg: FakeTelegram) -> None:
    first = tg.push_message(CITIZEN, CITIZEN, text="hello")
    tg.push_update(first)
    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [first["update_id"]] * 2


async def test_user_media_contact_location_and_sticker_updates(bot: Bot, tg: FakeTelegram) -> None:
    tg.push_message(CITIZEN, CITIZEN, contact="+8613800138000")
    tg.push_message(CITIZEN, CITIZEN, location=(31.2304, 121.4737))
    tg.push_message(CITIZEN, CITIZEN, photo=b"\xff\xd8jpeg-bytes", caption="漏水")
    tg.push_message(CITIZEN, CITIZEN, document=b"%PDF-1.7", file_name="proof.pdf")
    tg.push_message(CITIZEN, CITIZEN, sticker=True)
    contact, location, photo, document, sticker = [
        u.message for u in await bot.get_updates(timeout=0)
    ]
    assert contact is not None and contact.contact is not None
    assert contact.contact.phone_number == "+8613800138000"
    assert contact.contact.user_id == CITIZEN
    assert location is not None and location.location is not None
    assert location.location.latitude == pytest.approx(31.2304)
    assert photo is not None and photo.caption == "漏水"
    assert photo.photo[-1].file_size == len(b"\xff\xd8jpeg-bytes")
    assert document is not None and document.document is not None
    assert document.document.file_name == "proof.pdf"
    assert sticker is not None and sticker.sticker is not None and sticker.text is None
    # One message_id sequence per chat.
    assert [m.message_id for m in (contact, location, photo, document, sticker)] == [1, 2, 3, 4, 5]


async def test_download_a_user_photo(bot: Bot, tg: FakeTelegram) -> None:
    tg.push_message(CITIZEN, CITIZEN, photo=b"\xff\xd8 the real picture")
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None
    largest = update.message.photo[-1]

    file = await bot.get_file(largest.file_id)
    assert file.file_path is not None and file.file_path.startswith(tg.file_url)
    assert bytes(await file.download_as_bytearray()) == b"\xff\xd8 the real picture"


async def test_file_over_20mb_cannot_be_fetched(bot: Bot, tg: FakeTelegram) -> None:
    tg.push_message(CITIZEN, CITIZEN, document=25 * 1024 * 1024, file_name="scan.tif")
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None and update.message.document is not None
    assert update.message.document.file_size == 25 * 1024 * 1024
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(update.message.document.file_id)


async def test_uploads_by_multipart_are_stored_and_resendable(bot: Bot, tg: FakeTelegram) -> None:
    sent = await bot.send_photo(CITIZEN, b"\x89PNG result photo", caption="处理结果")
    doc = await bot.send_document(CITIZEN, b"reply letter", filename="reply.txt")

    [photo_call, doc_call] = tg.calls_of("sendPhoto") + tg.calls_of("sendDocument")
    assert photo_call.files["photo"] == b"\x89PNG result photo"
    assert doc_call.params["document"]["filename"] == "reply.txt"
    assert sent.caption == "处理结果"
    assert tg.file_content(sent.photo[-1].file_id) == b"\x89PNG result photo"
    assert doc.document is not None and doc.document.file_name == "reply.txt"
    # Sending again by file_id needs no upload.
    await bot.send_document(CLERK, doc.document.file_id)
    assert tg.texts_to(CITIZEN) == ["处理结果", ""]


async def test_edit_and_delete_follow_message_state(bot: Bot, tg: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Accept", callback_data="a")]])
    sent = await bot.send_message(CLERK, "Case 1", reply_markup=keyboard)

    edited = await bot.edit_message_text("Case 1 — accepted", CLERK, sent.message_id)
    assert edited.text == "Case 1 — accepted"
    assert edited.reply_markup is None  # not passed again: Telegram drops it
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Case 1 — accepted", CLERK, sent.message_id)
    await bot.edit_message_reply_markup(CLERK, sent.message_id, reply_markup=keyboard)
    assert tg.last_bot_message(CLERK)["reply_markup"] == keyboard.to_dict()

    assert await bot.delete_message(CLERK, sent.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("late", CLERK, sent.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(CLERK, sent.message_id)


async def test_button_press_and_callback_answer(bot: Bot, tg: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("受理", callback_data="accept:7")]])
    sent = await bot.send_message(CLERK, "Case 7", reply_markup=keyboard)
    tg.press(CLERK, CLERK, "受理")
    [update] = await bot.get_updates(timeout=0)

    query = update.callback_query
    assert query is not None
    assert query.data == "accept:7"
    assert query.message is not None and query.message.message_id == sent.message_id
    assert await query.answer("已受理")
    assert tg.sent_to(CLERK)[-1] == {
        "method": "answerCallbackQuery",
        "params": {"callback_query_id": query.id, "text": "已受理"},
        "status": 200,
    }
    with pytest.raises(BadRequest, match="Query is too old"):
        await query.answer()


async def test_set_my_commands_per_language(bot: Bot, tg: FakeTelegram) -> None:
    await bot.set_my_commands([BotCommand("start", "开始"), BotCommand("status", "进度")])
    await bot.set_my_commands(
        [BotCommand("start", "Start"), BotCommand("status", "My complaints")], language_code="en"
    )
    assert tg.my_commands() == ["start", "status"]
    assert tg.my_commands("en") == ["start", "status"]
    assert [c.description for c in await bot.get_my_commands(language_code="en")] == [
        "Start",
        "My complaints",
    ]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])


async def test_429_becomes_retry_after(bot: Bot, tg: FakeTelegram) -> None:
    tg.fail_next("sendMessage", status=429, retry_after=2, count=2)
    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(CITIZEN, "notice")
        assert _retry_seconds(caught.value) == 2
    await bot.send_message(CITIZEN, "notice")
    assert [c["status"] for c in tg.sent_to(CITIZEN, include_failed=True)] == [429, 429, 200]
    assert tg.texts_to(CITIZEN) == ["notice"]


async def test_server_errors_are_network_errors(bot: Bot, tg: FakeTelegram) -> None:
    tg.fail_next("sendMessage", status=500)
    tg.fail_next("*", status=502)
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(CITIZEN, "a")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(CITIZEN, "b")
    await bot.send_message(CITIZEN, "c")
    assert tg.texts_to(CITIZEN) == ["c"]


async def test_blocked_and_lost_chats(bot: Bot, tg: FakeTelegram) -> None:
    tg.block_chat(CITIZEN)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(CITIZEN, "result")
    tg.lose_chat(CLERK)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(CLERK, "new case")
    tg.restore_chat(CITIZEN)
    await bot.send_message(CITIZEN, "result")
    assert tg.texts_to(CITIZEN) == ["result"]


async def test_flood_limits_answer_429_per_chat(bot: Bot, tg: FakeTelegram) -> None:
    tg.set_flood_limits(per_chat_per_second=1, global_per_second=30)
    await bot.send_message(CITIZEN, "one")
    with pytest.raises(RetryAfter):
        await bot.send_message(CITIZEN, "two")
    await bot.send_message(CLERK, "other chat is not affected")


async def test_webhook_registration_and_delivery(bot: Bot, tg: FakeTelegram) -> None:
    received: list[tuple[str | None, dict]] = []

    async def webhook(request: web.Request) -> web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        received.append((secret, await request.json()))
        return web.Response(status=200 if secret == "s3cret" else 403)

    app = web.Application()
    app.router.add_post("/telegram/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    try:
        assert await bot.set_webhook(url, secret_token="s3cret")
        info = await bot.get_webhook_info()
        assert info.url == url
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates(timeout=0)

        update = tg.push_message(CITIZEN, CITIZEN, text="hi", enqueue=False)
        assert await tg.deliver_webhook(None, update) == 200
        assert await tg.deliver_webhook(url, update, secret_token="wrong") == 403
        assert await tg.deliver_webhook(url, update, secret_token=None) == 403
        assert [secret for secret, _ in received] == ["s3cret", "wrong", None]
        assert received[0][1] == update

        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_application_polling_round_trip(tg: FakeTelegram) -> None:
    """A real Application polls the fake, handles a message and answers with a keyboard."""

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        choices = InlineKeyboardMarkup([[InlineKeyboardButton("物业", callback_data="cat:1")]])
        await update.effective_message.reply_text(
            f"收到: {update.effective_message.text}", reply_markup=choices
        )

    application: Application = (
        ApplicationBuilder().token(tg.token).base_url(tg.api_url).base_file_url(tg.file_url).build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    async with application:
        await application.start()
        await application.updater.start_polling(timeout=1, poll_interval=0)  # type: ignore[union-attr]
        try:
            tg.push_message(CITIZEN, CITIZEN, text="楼道灯坏了")
            [reply] = await tg.wait_sent(CITIZEN)
        finally:
            await application.updater.stop()  # type: ignore[union-attr]
            await application.stop()

    assert reply["method"] == "sendMessage"
    assert reply["params"]["text"] == "收到: 楼道灯坏了"
    assert reply["params"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "cat:1"
    assert "deleteWebhook" in [call.method for call in tg.calls]  # polling bootstrap
    # On stop PTB confirms what it processed, so nothing is left for the next worker.
    assert tg.pending_updates == []


async def test_json_bodies_and_error_envelope(tg: FakeTelegram) -> None:
    """Other clients post JSON; errors carry Telegram's exact envelope."""
    async with ClientSession() as session:
        url = f"{tg.api_url}{tg.token}/sendMessage"
        async with session.post(url, json={"chat_id": CITIZEN, "text": "x" * 4097}) as response:
            assert response.status == 400
            assert await response.json() == {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message is too long",
            }
        body = {"chat_id": str(CITIZEN), "text": "123", "reply_markup": {"remove_keyboard": True}}
        async with session.post(url, json=body) as response:
            answer = await response.json()
        async with session.get(f"{tg.api_url}{tg.token}/nosuchMethod") as response:
            assert response.status == 404
    assert answer["ok"] is True
    assert answer["result"]["text"] == "123"
    assert "reply_markup" not in answer["result"]  # only inline keyboards are echoed
    assert tg.sent_to(CITIZEN)[0]["params"]["chat_id"] == str(CITIZEN)


async def test_newer_get_updates_terminates_the_older(bot: Bot, tg: FakeTelegram) -> None:
    """Two workers polling the same token: Telegram ends the older poll with 409."""
    older = asyncio.create_task(bot.get_updates(timeout=60))
    await tg.wait_for(lambda: tg.waiting_polls == 1)
    async with Bot(tg.token, base_url=tg.api_url) as second_worker:
        newer = asyncio.create_task(second_worker.get_updates(timeout=60))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await older
        tg.push_message(CITIZEN, CITIZEN, text="hi")
        assert len(await newer) == 1
