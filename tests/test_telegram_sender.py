"""TelegramSender, the outbox's sender for Telegram, against FakeTelegram over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import Bot

from bot.attachments import attachment_file_id, store_attachment
from bot.outbox import PermanentFailure, RetryLater, Sender, TransientFailure
from bot.telegram import BotApi, TelegramSender
from handlers.messages import Choice, FileRef, Outgoing
from models.entities import Channel
from tests.fakes import FakeTelegram
from tests.images import jpeg

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

CHAT = 8001


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture(params=["bot-api", "ptb"])
async def sender(tg: FakeTelegram, request: pytest.FixtureRequest) -> AsyncIterator[TelegramSender]:
    """Text through `BotApi` (what the channel's outbox sender does) or through PTB alone."""
    api = BotApi(tg.token, tg.base_url, 5.0) if request.param == "bot-api" else None
    async with Bot(tg.token, base_url=tg.api_url, base_file_url=tg.file_url) as bot:
        yield TelegramSender(bot, api=api)
    if api is not None:
        await api.close()


def test_the_sender_fits_the_outbox_protocol(sender: TelegramSender) -> None:
    as_sender: Sender = sender
    assert as_sender.channel == Channel.TELEGRAM
    assert as_sender.limits.per_chat_per_second == 1


async def test_a_5000_character_reply_is_split(tg: FakeTelegram, sender: TelegramSender) -> None:
    lines = [f"第{i:03d}条进展：" + "处理中" * 30 for i in range(50)]  # 50 lines, ~5 000 chars
    text = "\n".join(lines)
    assert 4096 < len(text) < 6000
    await sender.send(str(CHAT), Outgoing(text, (Choice("menu:status", "我的投诉"),)))

    first, second = tg.sent_to(CHAT)
    assert first["method"] == second["method"] == "sendMessage"
    assert "reply_markup" not in first["params"]
    assert second["params"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "我的投诉"
    assert tg.texts_to(CHAT) == [first["params"]["text"], second["params"]["text"]]
    assert first["params"]["text"] + "\n" + second["params"]["text"] == text
    assert first["params"]["text"].endswith("处理中")  # cut at a line end


async def test_user_text_is_sent_verbatim(tg: FakeTelegram, sender: TelegramSender) -> None:
    # Would fail with "can't parse entities" under HTML or MarkdownV2.
    text = "投诉人写道：<script> & *urgent* _now_ [link](x) 1.5!"
    await sender.send(str(CHAT), Outgoing(text))
    assert tg.texts_to(CHAT) == [text]


async def test_remove_keyboard_and_choices_on_one_message(
    tg: FakeTelegram, sender: TelegramSender
) -> None:
    await sender.send(
        str(CHAT), Outgoing("已取消", (Choice("menu:new", "投诉"),), remove_keyboard=True)
    )
    calls = tg.sent_to(CHAT)
    assert [c["method"] for c in calls] == ["sendMessage", "editMessageReplyMarkup"]
    assert calls[0]["params"]["reply_markup"] == {"remove_keyboard": True}
    message = tg.last_bot_message(CHAT)
    assert message is not None
    assert message["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "menu:new"


async def test_platform_errors_become_outbox_failures(
    tg: FakeTelegram, sender: TelegramSender
) -> None:
    notice = Outgoing("您的投诉有新进展")
    tg.fail_next("sendMessage", status=429, retry_after=3)
    with pytest.raises(RetryLater) as waited:
        await sender.send(str(CHAT), notice)
    assert waited.value.seconds == 3

    tg.fail_next("sendMessage", status=502)
    with pytest.raises(TransientFailure):
        await sender.send(str(CHAT), notice)
    tg.fail_next("sendMessage", status=500)
    with pytest.raises(TransientFailure):
        await sender.send(str(CHAT), notice)

    tg.block_chat(CHAT)
    with pytest.raises(PermanentFailure, match="blocked"):
        await sender.send(str(CHAT), notice)
    tg.lose_chat(CHAT)
    with pytest.raises(PermanentFailure, match=r"(?i)chat not found"):
        await sender.send(str(CHAT), notice)

    tg.restore_chat(CHAT)
    await sender.send(str(CHAT), notice)
    assert tg.texts_to(CHAT) == ["您的投诉有新进展"]


async def test_attachments_are_uploaded_from_storage(
    tg: FakeTelegram, sender: TelegramSender, db_url: str, tmp_path: Path
) -> None:
    result_photo = jpeg("result photo")
    photo = await store_attachment(
        Channel.WEB,
        FileRef("upload-1", "result.jpg", "image/jpeg", data=result_photo),
        max_bytes=10_000,
    )
    letter = await store_attachment(
        Channel.TELEGRAM,
        FileRef("BQAC-1", "reply.pdf", "application/pdf", data=b"%PDF-1.4 reply letter"),
        max_bytes=10_000,
    )
    message = Outgoing(
        "处理结果见附件", attachments=(attachment_file_id(photo.id), attachment_file_id(letter.id))
    )
    await sender.send(str(CHAT), message)

    [text, sent_photo, sent_letter] = tg.sent_to(CHAT)
    assert text["method"] == "sendMessage"
    assert sent_photo["method"] == "sendPhoto" and sent_letter["method"] == "sendDocument"
    [photo_call] = tg.calls_of("sendPhoto")
    [letter_call] = tg.calls_of("sendDocument")
    assert photo_call.files["photo"] == result_photo
    assert letter_call.files["document"] == b"%PDF-1.4 reply letter"
    assert letter_call.params["document"]["filename"] == "reply.pdf"

    with pytest.raises(PermanentFailure, match="does not exist"):
        await sender.send(str(CHAT), Outgoing("附件", attachments=("att:999999",)))
