"""Telegram updates → what the channel needs of them (pure).

An update is read in one of two ways, with the same result:
- `from_json`: the webhook's common updates — a private text message (a command too) or a
  press of one of our inline buttons — read straight from the JSON, each field type-checked.
  It answers None for any other shape, or any field it does not know, and the caller reads the
  update the second way. (Building python-telegram-bot's objects for every update was 5–8 % of
  a loaded worker's CPU.)
- `from_ptb`: a python-telegram-bot `Update` (long polling, and whatever `from_json` declined).

tests/test_telegram_updates.py checks that wherever `from_json` gives an answer it is the one
`from_ptb(Update.de_json(...))` gives, over generated updates of right and wrong shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update

from bot.guards import check_incoming
from handlers.messages import FileRef, Incoming
from models.entities import Channel

CHANNEL = Channel.TELEGRAM
UPDATE_PREFIX = "tg:"
HASHED_CHOICE = "~"  # callback_data prefix of a choice id too long to send as it is


@dataclass(frozen=True, slots=True)
class PressedMessage:
    """Our message whose inline button was pressed: its text and its buttons."""

    message_id: int
    text: str | None
    buttons: tuple[tuple[str, str], ...] = ()  # (callback_data, label), row by row

    def label_of(self, data: str) -> str | None:
        """The label of the button sending `data`, if the message has one."""
        for button_data, label in self.buttons:
            if button_data == data:
                return label
        return None


@dataclass(frozen=True, slots=True)
class ButtonPress:
    id: str
    data: str | None
    message: PressedMessage | None


@dataclass(frozen=True, slots=True)
class TelegramUpdate:
    """One update as the channel handles it. `incoming` None: nothing a person said to us
    (edits, channel posts, a bot's message); `chat_id` None: no chat to answer in."""

    update_id: int
    incoming: Incoming | None
    chat_id: int | None
    press: ButtonPress | None
    language_hint: str | None  # the person's Telegram language_code


# ------------------------------------------------------------------ python-telegram-bot's Update


def from_ptb(update: Update) -> TelegramUpdate:
    """The update as the channel handles it. TypeError or ValueError for fields of the wrong
    types (python-telegram-bot keeps what it was given: a number as `text` stays a number)."""
    query = update.callback_query
    press = None
    if query is not None:
        message = query.message
        pressed = None
        if message is not None:
            pressed = PressedMessage(
                message.message_id, getattr(message, "text", None), _buttons_of(message)
            )
        press = ButtonPress(query.id, query.data, pressed)
    user = update.effective_user
    chat = update.effective_chat
    incoming = _incoming(update, press)
    return TelegramUpdate(
        update_id=update.update_id,
        incoming=check_incoming(incoming) if incoming is not None else None,
        chat_id=chat.id if chat is not None else None,
        press=press,
        language_hint=user.language_code if user is not None else None,
    )


def incoming_from_update(update: Update) -> Incoming | None:
    """The neutral message for an update (None: nothing a person said to us).

    Photos and documents come back with the platform's file id and declared size only; the
    channel fetches and stores the bytes before the conversation sees them."""
    return from_ptb(update).incoming


def _buttons_of(message: Any) -> tuple[tuple[str, str], ...]:
    markup = getattr(message, "reply_markup", None)
    if not isinstance(markup, InlineKeyboardMarkup):
        return ()
    return tuple(
        (button.callback_data, button.text)
        for row in markup.inline_keyboard
        for button in row
        if isinstance(button.callback_data, str)
    )


def _incoming(update: Update, press: ButtonPress | None) -> Incoming | None:
    user = update.effective_user
    if user is None or user.is_bot:
        return None
    base: dict[str, Any] = {
        "channel": CHANNEL.value,
        "user_id": str(user.id),
        "language": user.language_code,
        "display_name": user.full_name or None,
        "message_id": f"{UPDATE_PREFIX}{update.update_id}",
    }
    if press is not None:
        return _incoming_from_press(press, base)
    message = update.message
    if message is None:
        return None  # edits, channel posts, reactions: not part of a conversation
    base["received_at"] = message.date.astimezone(UTC) if message.date else None
    if message.text is not None:
        command = _command(message)
        if command is not None:
            name, args = command
            return Incoming(kind="command", command=name, command_args=args, **base)
        return Incoming(kind="text", text=message.text, **base)
    if message.contact is not None:
        return Incoming(kind="contact", phone=message.contact.phone_number, **base)
    if message.location is not None:
        venue = message.venue
        label = ", ".join(p for p in (venue.title, venue.address) if p) if venue else None
        return Incoming(
            kind="location",
            latitude=message.location.latitude,
            longitude=message.location.longitude,
            location_label=label or None,
            **base,
        )
    if message.photo:
        largest = max(message.photo, key=lambda size: (size.file_size or 0, size.width))
        file = FileRef(
            file_id=largest.file_id,
            file_name=f"photo-{largest.file_unique_id}.jpg",
            mime_type="image/jpeg",
            size=largest.file_size,
        )
        return Incoming(kind="photo", file=file, text=message.caption, **base)
    if message.document is not None:
        document = message.document
        file = FileRef(
            file_id=document.file_id,
            file_name=document.file_name,
            mime_type=document.mime_type,
            size=document.file_size,
        )
        return Incoming(kind="file", file=file, text=message.caption, **base)
    return Incoming(kind="unsupported", **base)  # stickers, voice, video, polls, ...


def _command(message: Message) -> tuple[str, str] | None:
    """("start", "payload") for "/start@our_bot payload"; None when the text is no command."""
    entities = message.entities or ()
    if not entities or entities[0].type != "bot_command" or entities[0].offset != 0:
        return None
    return _split_command(message.text or "")


def _split_command(text: str) -> tuple[str, str]:
    head, _, args = text.partition(" ")
    name = head[1:].split("@", 1)[0].lower()
    return name, args.strip()


def _incoming_from_press(press: ButtonPress, base: dict[str, Any]) -> Incoming:
    data = press.data
    if data is not None and not isinstance(data, str):
        raise TypeError(f"callback_data is {type(data).__name__}, not text")
    if not data:
        return Incoming(kind="unsupported", **base)
    if not data.startswith(HASHED_CHOICE):
        return Incoming(kind="choice", choice=data, **base)
    # A long choice id travelled as its hash: answer with the pressed button's label instead.
    label = press.message.label_of(data) if press.message is not None else None
    if label is None:
        return Incoming(kind="unsupported", **base)
    return Incoming(kind="text", text=label, **base)


# ------------------------------------------------------------------ straight from the JSON

# What each object of the common updates may hold (Bot API field → its JSON type). A field not
# listed, or of another type, sends the update the python-telegram-bot way.
_USER_FIELDS: dict[str, type] = {
    "id": int, "is_bot": bool, "first_name": str, "last_name": str, "username": str,
    "language_code": str, "is_premium": bool,
}  # fmt: skip
_CHAT_FIELDS: dict[str, type] = {
    "id": int, "type": str, "first_name": str, "last_name": str, "username": str, "title": str,
}  # fmt: skip
_MESSAGE_FIELDS = frozenset({"message_id", "from", "chat", "date", "text", "entities"})
_PRESSED_FIELDS = frozenset(
    {"message_id", "from", "chat", "date", "edit_date", "text", "entities", "reply_markup"}
)
_QUERY_FIELDS = frozenset({"id", "from", "chat_instance", "data", "message"})
_ENTITY_FIELDS: dict[str, type] = {"type": str, "offset": int, "length": int}
# Unix times python-telegram-bot turns into datetimes on every platform (year 1970–2106).
_LAST_TIME = 2**32 - 1


def from_json(data: dict[str, Any]) -> TelegramUpdate | None:
    """The update read from its JSON when it is a common one of the plain shape (see the module
    docstring), else None. TypeError/ValueError as `from_ptb` raises them (check_incoming)."""
    if len(data) != 2 or type(data.get("update_id")) is not int:
        return None
    update_id: int = data["update_id"]
    message = data.get("message")
    if message is not None:
        return _text_message(update_id, message)
    query = data.get("callback_query")
    if query is not None:
        return _button_press(update_id, query)
    return None


def _text_message(update_id: int, message: Any) -> TelegramUpdate | None:
    if not _plain(message, _MESSAGE_FIELDS) or type(message.get("text")) is not str:
        return None
    if type(message.get("message_id")) is not int:
        return None
    user, chat, date = message.get("from"), message.get("chat"), message.get("date")
    if not (_is_user(user) and _is_chat(chat) and _is_time(date)):
        return None
    entities = message.get("entities")
    if not _plain_entities(entities):
        return None
    text: str = message["text"]
    base = _base(update_id, user)
    base["received_at"] = datetime.fromtimestamp(date, UTC)
    first = entities[0] if entities else None
    if first is not None and first["type"] == "bot_command" and first["offset"] == 0:
        name, args = _split_command(text)
        incoming = Incoming(kind="command", command=name, command_args=args, **base)
    else:
        incoming = Incoming(kind="text", text=text, **base)
    kept = None if user["is_bot"] else check_incoming(incoming)
    return TelegramUpdate(update_id, kept, chat["id"], None, user.get("language_code"))


def _button_press(update_id: int, query: Any) -> TelegramUpdate | None:
    if not _plain(query, _QUERY_FIELDS):
        return None
    user, message = query.get("from"), query.get("message")
    if type(query.get("id")) is not str or type(query.get("chat_instance")) is not str:
        return None
    data = query.get("data")
    if not (_is_user(user) and (data is None or type(data) is str)):
        return None
    if not _plain(message, _PRESSED_FIELDS) or type(message.get("message_id")) is not int:
        return None
    chat, date, text = message.get("chat"), message.get("date"), message.get("text")
    sender = message.get("from")
    # date 0 marks a message the bot can no longer see (python-telegram-bot's own type)
    if not (_is_chat(chat) and _is_time(date) and date > 0 and type(text) in (str, type(None))):
        return None
    if (sender is not None and not _is_user(sender)) or not _is_time(message.get("edit_date", 0)):
        return None
    if not _plain_entities(message.get("entities")):
        return None
    buttons = _inline_buttons(message.get("reply_markup"))
    if buttons is None:
        return None
    press = ButtonPress(query["id"], data, PressedMessage(message["message_id"], text, buttons))
    incoming = None
    if not user["is_bot"]:
        incoming = check_incoming(_incoming_from_press(press, _base(update_id, user)))
    return TelegramUpdate(update_id, incoming, chat["id"], press, user.get("language_code"))


def _inline_buttons(markup: Any) -> tuple[tuple[str, str], ...] | None:
    """The (callback_data, label) of an inline keyboard of plain callback buttons; () for no
    keyboard; None for any other markup."""
    if markup is None:
        return ()
    if not _plain(markup, frozenset({"inline_keyboard"})):
        return None
    rows = markup.get("inline_keyboard")
    if type(rows) is not list or not all(type(row) is list for row in rows):
        return None
    buttons: list[tuple[str, str]] = []
    for row in rows:
        for button in row:
            if not _fits(button, {"text": str, "callback_data": str}, 2):
                return None
            buttons.append((button["callback_data"], button["text"]))
    return tuple(buttons)


def _base(update_id: int, user: dict[str, Any]) -> dict[str, Any]:
    first, last = user["first_name"], user.get("last_name")
    return {
        "channel": CHANNEL.value,
        "user_id": str(user["id"]),
        "language": user.get("language_code"),
        # as python-telegram-bot's full_name: nothing without a first name
        "display_name": (f"{first} {last}" if last else first) if first else None,
        "message_id": f"{UPDATE_PREFIX}{update_id}",
    }


def _plain(value: Any, fields: frozenset[str] | None = None) -> bool:
    return type(value) is dict and (fields is None or value.keys() <= fields)


def _fits(value: Any, fields: dict[str, type], required: int) -> bool:
    """A JSON object holding only `fields`, each of its type; the first `required` present."""
    if type(value) is not dict or not value.keys() <= fields.keys():
        return False
    for index, (name, kind) in enumerate(fields.items()):
        if name not in value:
            if index < required:
                return False
            continue
        if type(value[name]) is not kind:
            return False
    return True


def _plain_entities(entities: Any) -> bool:
    """No entities, or a list of plain ones (type, offset, length)."""
    return entities is None or (
        type(entities) is list and all(_fits(e, _ENTITY_FIELDS, 3) for e in entities)
    )


def _is_user(value: Any) -> bool:
    return _fits(value, _USER_FIELDS, 3)


def _is_chat(value: Any) -> bool:
    return _fits(value, _CHAT_FIELDS, 2)


def _is_time(value: Any) -> bool:
    return type(value) is int and 0 <= value <= _LAST_TIME
