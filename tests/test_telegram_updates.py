"""bot.telegram_updates: the webhook's common updates read straight from the JSON give what
python-telegram-bot's objects give, and every other shape is left to those objects."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Update

from bot.telegram import UNREADABLE_UPDATE, callback_data
from bot.telegram_updates import TelegramUpdate, from_json, from_ptb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from _inbound_support import GOV_WINDOW_FILING, update_for

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

USER = {
    "id": 42,
    "is_bot": False,
    "first_name": "王",
    "last_name": "芳",
    "language_code": "zh-hans",
}
BOT = {"id": 7, "is_bot": True, "first_name": "Desk", "username": "desk_bot"}
CHAT = {"id": 42, "type": "private", "first_name": "王"}
LONG_CHOICE = "category:" + "x" * 80


def text_update(text: str = "楼道灯坏了", **extra: Any) -> dict[str, Any]:
    message = {"message_id": 5, "from": USER, "chat": CHAT, "date": 1_764_000_000, "text": text}
    return {"update_id": 900, "message": {**message, **extra}}


def command_update(text: str = "/start abc") -> dict[str, Any]:
    head = text.split(" ", 1)[0]
    return text_update(text, entities=[{"type": "bot_command", "offset": 0, "length": len(head)}])


def press_update(data: str | None = "opt:short", *, keyboard: bool = True) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": 6,
        "from": BOT,
        "chat": CHAT,
        "date": 1_764_000_001,
        "text": "请选择类别",
    }
    if keyboard:
        message["reply_markup"] = {
            "inline_keyboard": [
                [{"text": "噪音", "callback_data": "opt:short"}],
                [{"text": "很长的类别", "callback_data": callback_data(LONG_CHOICE)}],
                [
                    {"text": "返回", "callback_data": "back"},
                    {"text": "取消", "callback_data": "cancel"},
                ],
            ]
        }
    query: dict[str, Any] = {"id": "cq1", "from": USER, "chat_instance": "ci", "message": message}
    if data is not None:
        query["data"] = data
    return {"update_id": 901, "callback_query": query}


def by_ptb(data: dict[str, Any]) -> TelegramUpdate | Exception:
    try:
        return from_ptb(Update.de_json(copy.deepcopy(data), None))
    except UNREADABLE_UPDATE as error:
        return error


def by_json(data: dict[str, Any]) -> TelegramUpdate | Exception | None:
    try:
        return from_json(copy.deepcopy(data))
    except UNREADABLE_UPDATE as error:
        return error


PLAIN = [
    text_update(),
    text_update("", entities=[]),
    command_update(),
    command_update("/status@desk_bot  2026-000123 "),
    text_update("hi /start", entities=[{"type": "bot_command", "offset": 3, "length": 6}]),
    press_update(),
    press_update(callback_data(LONG_CHOICE)),  # a hashed choice: answered with its label
    press_update("~0000"),  # a hash no button has: unsupported
    press_update(None),
    press_update("", keyboard=False),
    press_update("back", keyboard=False),
    {"update_id": 3, "message": {**text_update()["message"], "from": BOT}},  # a bot's message
    {"update_id": 4, "message": {**text_update()["message"], "from": {**USER, "first_name": ""}}},
    {"update_id": 5, "message": {**text_update()["message"], "from": {**USER, "last_name": ""}}},
]


@pytest.mark.parametrize("data", PLAIN, ids=range(len(PLAIN)))
def test_the_common_updates_are_read_from_the_json_as_python_telegram_bot_reads_them(
    data: dict[str, Any],
) -> None:
    fast = by_json(data)
    assert isinstance(fast, TelegramUpdate), "a common update falls back to PTB"
    assert fast == by_ptb(data)


def test_the_load_generators_updates_take_the_json_path() -> None:
    for kind, value in GOV_WINDOW_FILING:
        data = update_for(77, kind, value)
        fast = by_json(data)
        assert isinstance(fast, TelegramUpdate), (kind, value)
        assert fast == by_ptb(data)


def test_what_the_dialog_gets_from_a_press_and_a_command() -> None:
    hashed = by_json(press_update(callback_data(LONG_CHOICE)))
    assert isinstance(hashed, TelegramUpdate) and hashed.incoming is not None
    assert (hashed.incoming.kind, hashed.incoming.text) == ("text", "很长的类别")
    assert hashed.press is not None and hashed.press.message is not None
    assert hashed.press.message.label_of("opt:short") == "噪音"
    start = by_json(command_update("/Start@desk_bot abc"))
    assert isinstance(start, TelegramUpdate) and start.incoming is not None
    assert (start.incoming.command, start.incoming.command_args) == ("start", "abc")
    assert start.incoming.display_name == "王 芳" and start.chat_id == 42
    assert start.language_hint == "zh-hans"


@pytest.mark.parametrize(
    "data",
    [
        {"update_id": 1, "edited_message": text_update()["message"]},
        {**text_update(), "edited_message": text_update()["message"]},  # two kinds at once
        text_update(caption="x"),  # a field the JSON path does not know
        {"update_id": 1, "message": {**text_update()["message"], "sticker": 0}},
        {
            "update_id": 1,
            "message": {k: v for k, v in text_update()["message"].items() if k != "text"},
        },
        text_update(entities=[{"type": "mention", "offset": 0, "length": 2, "user": USER}]),
        {"update_id": 1, "callback_query": {**press_update()["callback_query"], "message": None}},
        press_update(0),  # type: ignore[arg-type]
    ],
    ids=range(8),
)
def test_other_shapes_are_left_to_python_telegram_bot(data: dict[str, Any]) -> None:
    assert by_json(data) is None


# Generated updates: each plain one with a field replaced by a value of another shape, removed,
# or joined by one the JSON path does not know.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, 2**31, 2**32, 2**32 - 1, 2**63, 1_764_000_000])
    | st.floats(allow_nan=True)
    | st.text(max_size=5)
    | st.sampled_from(["", "bot_command", "private", "~0000", "opt:short", "/start"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELD_NAMES = st.sampled_from(
    ["id", "is_bot", "first_name", "last_name", "language_code", "type", "date", "text",
     "entities", "offset", "length", "message_id", "data", "message", "reply_markup",
     "inline_keyboard", "callback_data", "from", "chat", "chat_instance", "edit_date",
     "update_id", "username", "photo", "caption", "url"]
)  # fmt: skip


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


@st.composite
def mutated_updates(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(draw(st.sampled_from(PLAIN)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = data
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(FIELD_NAMES)] = draw(JSON_VALUES)
    return data


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_updates())
def test_whatever_the_json_path_answers_python_telegram_bot_answers_too(
    data: dict[str, Any],
) -> None:
    fast = by_json(data)
    if fast is None:
        return  # left to PTB, which decides
    ptb = by_ptb(data)
    if isinstance(fast, Exception):
        assert isinstance(ptb, Exception), f"PTB reads {data!r}"
        return
    assert fast == ptb
