"""Pure parts of the Telegram channel: rendering, splitting, callback data, update translation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from telegram import Bot, InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.outbox import PermanentFailure, RetryLater, TransientFailure
from bot.telegram import (
    HASHED_CHOICE,
    callback_data,
    command_language_code,
    outbox_failure,
    render,
    split_text,
    webhook_secret,
)
from bot.telegram_updates import incoming_from_update
from config.settings import Settings
from handlers.messages import Choice, Outgoing

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

BACK, CANCEL, SKIP = Choice("back", "返回"), Choice("cancel", "取消"), Choice("skip", "跳过")
BOT = Bot("123456789:AAFakeTelegramTokenForTestsOnly-000000")


def test_plain_text_has_no_markup_and_no_parse_mode() -> None:
    [message] = render(Outgoing("投诉编号 <b>1 & 2</b>"))
    assert message.api_params() == {"text": "投诉编号 <b>1 & 2</b>"}
    assert message.attach_inline is None


def test_choices_become_an_inline_keyboard_with_navigation_on_one_row() -> None:
    outgoing = Outgoing(
        "请选择类别", (Choice("opt:a", "服务态度"), Choice("opt:b", "办事效率"), BACK, CANCEL)
    )
    [message] = render(outgoing)
    assert message.api_params()["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "服务态度", "callback_data": "opt:a"}],
            [{"text": "办事效率", "callback_data": "opt:b"}],
            [
                {"text": "返回", "callback_data": "back"},
                {"text": "取消", "callback_data": "cancel"},
            ],
        ]
    }


def test_long_choice_ids_travel_as_a_stable_hash_within_64_bytes() -> None:
    long_id = "opt:" + "很长的类别" * 10
    data = callback_data(long_id)
    assert data.startswith(HASHED_CHOICE)
    assert len(data.encode()) <= 64
    assert data == callback_data(long_id)  # the same on every worker and after a restart
    assert callback_data("opt:short") == "opt:short"
    assert callback_data("~looks-hashed").startswith(HASHED_CHOICE + "")
    assert callback_data("~looks-hashed") != "~looks-hashed"  # cannot be mistaken for a hash
    assert callback_data("x" * 64) == "x" * 64
    assert callback_data("x" * 65) != "x" * 65


@pytest.mark.parametrize(
    ("ask", "lang", "label", "flag"),
    [
        ("contact", "zh_CN", "📱 发送我的手机号", "request_contact"),
        ("contact", "en", "📱 Share my phone number", "request_contact"),
        ("location", "zh_TW", "📍 傳送我的位置", "request_location"),
        ("location", None, "📍 发送我的位置", "request_location"),
    ],
)
def test_ask_for_contact_or_location_is_a_reply_keyboard_with_the_choices(
    ask: str, lang: str | None, label: str, flag: str
) -> None:
    [message] = render(Outgoing("您的电话？", (SKIP, BACK, CANCEL), ask=ask), lang)  # type: ignore[arg-type]
    assert isinstance(message.reply_markup, ReplyKeyboardMarkup)
    markup = message.api_params()["reply_markup"]
    assert markup["keyboard"] == [
        [{"text": label, flag: True}],
        [{"text": "跳过"}, {"text": "返回"}, {"text": "取消"}],
    ]
    assert markup["one_time_keyboard"] is True


def test_ask_for_photo_keeps_the_inline_choices() -> None:
    [message] = render(Outgoing("请发送照片", (Choice("done", "完成"), CANCEL), ask="photo"))
    assert isinstance(message.reply_markup, InlineKeyboardMarkup)


def test_remove_keyboard_alone_and_with_choices() -> None:
    [only] = render(Outgoing("已取消", remove_keyboard=True))
    assert only.api_params()["reply_markup"] == {"remove_keyboard": True}
    # One message can carry one markup when sent: remove, then attach the choices by an edit.
    [both] = render(Outgoing("已取消", (Choice("menu:new", "投诉"),), remove_keyboard=True))
    assert isinstance(both.reply_markup, ReplyKeyboardRemove)
    assert both.attach_inline is not None
    assert both.attach_inline.to_dict() == {
        "inline_keyboard": [[{"text": "投诉", "callback_data": "menu:new"}]]
    }


def test_long_text_is_split_on_lines_and_only_the_last_part_has_the_keyboard() -> None:
    lines = [f"第{i}行：" + "字" * 90 for i in range(100)]  # about 9 500 characters
    outgoing = Outgoing("\n".join(lines), (Choice("menu:new", "投诉"),), remove_keyboard=True)
    parts = render(outgoing)
    assert len(parts) == 3
    assert all(len(part.text) <= 4096 for part in parts)
    assert "\n".join(part.text for part in parts) == outgoing.text  # nothing lost, lines whole
    assert isinstance(parts[0].reply_markup, ReplyKeyboardRemove)
    assert parts[1].reply_markup is None
    assert isinstance(parts[-1].reply_markup, InlineKeyboardMarkup)
    assert all(part.attach_inline is None for part in parts)


def test_split_counts_utf16_units_and_cuts_overlong_lines() -> None:
    emoji_text = "😀" * 3000  # 6 000 UTF-16 units in one line
    parts = split_text(emoji_text)
    assert "".join(parts) == emoji_text
    assert all(len(part.encode("utf-16-le")) // 2 <= 4096 for part in parts)
    words = ("word " * 2000).strip()
    parts = split_text(words)
    assert all(not part.startswith(" ") and len(part) <= 4096 for part in parts)
    assert "".join(parts) == words  # cut after a space, which stays with the first part
    assert split_text("short") == ["short"]
    assert split_text("a\n\n" + "\n" * 5000 + "b") == ["a", "b"]


def test_command_languages() -> None:
    assert command_language_code("zh_CN") == "zh"
    assert command_language_code("en") == "en"
    assert command_language_code("zh_TW") is None


def test_webhook_secret_is_configured_or_derived_from_the_token() -> None:
    assert webhook_secret(Settings(telegram_token="1:a", telegram_webhook_secret="s3")) == "s3"
    derived = webhook_secret(Settings(telegram_token="1:a"))
    assert derived == webhook_secret(Settings(telegram_token="1:a"))
    assert derived != webhook_secret(Settings(telegram_token="1:b"))
    assert derived.isalnum() and len(derived) == 64


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (lambda: RetryAfter(7), RetryLater),
        (lambda: Forbidden("Forbidden: bot was blocked by the user"), PermanentFailure),
        (lambda: BadRequest("Chat not found"), PermanentFailure),
        (lambda: ChatMigrated(-1001), PermanentFailure),
        (lambda: NetworkError("Bad Gateway"), TransientFailure),
        (lambda: TimedOut(), TransientFailure),
        (lambda: InvalidToken(), TransientFailure),
    ],
)
def test_bot_api_errors_map_to_outbox_failures(
    error: Callable[[], TelegramError], expected: type
) -> None:
    mapped = outbox_failure(error())
    assert type(mapped) is expected
    if isinstance(mapped, RetryLater):
        assert mapped.seconds == 7
    if isinstance(mapped, PermanentFailure):
        assert mapped.reason


# ------------------------------------------------------------------ updates → Incoming


def _update(message: dict, update_id: int = 42) -> Update:
    base = {
        "message_id": 3,
        "date": 1_790_000_000,
        "chat": {"id": 77, "type": "private"},
        "from": {"id": 77, "is_bot": False, "first_name": "李", "language_code": "en"},
    }
    update = Update.de_json({"update_id": update_id, "message": base | message}, BOT)
    assert update is not None
    return update


def test_text_and_commands() -> None:
    text = incoming_from_update(_update({"text": "楼道灯坏了"}))
    assert text is not None
    assert (text.kind, text.text, text.user_id, text.language) == ("text", "楼道灯坏了", "77", "en")
    assert text.message_id == "tg:42" and text.channel == "telegram"
    assert text.received_at is not None and text.received_at.tzinfo is not None
    entity = [{"type": "bot_command", "offset": 0, "length": 24}]
    start = incoming_from_update(
        _update({"text": "/start@complaintdesk_bot dept-7", "entities": entity})
    )
    assert start is not None
    assert (start.kind, start.command, start.command_args) == ("command", "start", "dept-7")
    # A slash without a command entity is text (e.g. "1/2" or "/ 你好").
    assert incoming_from_update(_update({"text": "/ 你好"})).kind == "text"  # type: ignore[union-attr]


def test_contact_location_photo_document_and_sticker() -> None:
    contact = incoming_from_update(
        _update({"contact": {"phone_number": "+8613800138000", "first_name": "李"}})
    )
    assert contact is not None and (contact.kind, contact.phone) == ("contact", "+8613800138000")
    location = incoming_from_update(
        _update(
            {
                "location": {"latitude": 31.23, "longitude": 121.47},
                "venue": {
                    "location": {"latitude": 31.23, "longitude": 121.47},
                    "title": "市民中心",
                    "address": "人民大道1号",
                },
            }
        )
    )
    assert location is not None and location.kind == "location"
    assert (location.latitude, location.longitude) == (31.23, 121.47)
    assert location.location_label == "市民中心, 人民大道1号"
    photo = incoming_from_update(
        _update(
            {
                "photo": [
                    {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60,
                     "file_size": 900},
                    {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 960,
                     "file_size": 90_000},
                ],
                "caption": "漏水",
            }
        )
    )  # fmt: skip
    assert photo is not None and photo.kind == "photo" and photo.file is not None
    assert (photo.file.file_id, photo.file.size, photo.text) == ("large", 90_000, "漏水")
    document = incoming_from_update(
        _update(
            {
                "document": {
                    "file_id": "doc",
                    "file_unique_id": "d",
                    "file_name": "proof.pdf",
                    "mime_type": "application/pdf",
                    "file_size": 1234,
                }
            }
        )
    )
    assert document is not None and document.kind == "file" and document.file is not None
    assert (document.file.file_name, document.file.mime_type) == ("proof.pdf", "application/pdf")
    sticker = incoming_from_update(
        _update(
            {
                "sticker": {
                    "file_id": "st",
                    "file_unique_id": "st",
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                }
            }
        )
    )
    assert sticker is not None and sticker.kind == "unsupported"


def test_button_presses_resolve_plain_and_hashed_ids() -> None:
    long_id = "opt:" + "x" * 80
    keyboard = {
        "inline_keyboard": [
            [{"text": "Short", "callback_data": "opt:short"}],
            [{"text": "Long one", "callback_data": callback_data(long_id)}],
        ]
    }
    message = {
        "message_id": 9,
        "date": 1_790_000_000,
        "chat": {"id": 77, "type": "private"},
        "from": {"id": 1, "is_bot": True, "first_name": "Bot"},
        "text": "pick",
        "reply_markup": keyboard,
    }

    def press(data: str) -> Update:
        query = {
            "id": "q1",
            "from": {"id": 77, "is_bot": False, "first_name": "李"},
            "chat_instance": "c",
            "data": data,
            "message": message,
        }
        update = Update.de_json({"update_id": 50, "callback_query": query}, BOT)
        assert update is not None
        return update

    plain = incoming_from_update(press("opt:short"))
    assert plain is not None and (plain.kind, plain.choice) == ("choice", "opt:short")
    hashed = incoming_from_update(press(callback_data(long_id)))
    # The engine accepts an offered choice's label as the answer.
    assert hashed is not None and (hashed.kind, hashed.text) == ("text", "Long one")
    assert hashed.message_id == "tg:50"
    stale = incoming_from_update(press("~0000"))
    assert stale is not None and stale.kind == "unsupported"


def test_updates_that_are_not_a_person_talking_are_ignored() -> None:
    edited = Update.de_json(
        {
            "update_id": 1,
            "edited_message": {
                "message_id": 1,
                "date": 1,
                "edit_date": 2,
                "chat": {"id": 5, "type": "private"},
                "from": {"id": 5, "is_bot": False, "first_name": "x"},
                "text": "edited",
            },
        },
        BOT,
    )
    assert edited is not None and incoming_from_update(edited) is None
