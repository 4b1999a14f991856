"""Every error path of the intake dialog: a helpful re-prompt, and the state left as it was."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.dialog import DialogState
from tests.dialog_chat import MB, NOW, Chat, file_complaint_up_to


def _refused(chat: Chat, step: str, send: object, *expected: str) -> None:
    """Sending at `step` is refused with a message containing `expected`; nothing changes."""
    before = chat.snapshot()
    assert callable(send)
    send()
    for text in expected:
        assert text in chat.said, chat.said
    assert chat.snapshot() == before
    assert chat.where[1] == step
    assert chat.commands == []


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", ("Sorry, I cannot read that kind of message.", "phone number")),
        ("zh_CN", ("抱歉，我无法识别这类消息。", "电话号码")),
    ],
)
def test_a_sticker_where_a_phone_is_asked(lang: str, expected: tuple[str, ...]) -> None:
    chat = Chat(lang=lang)
    file_complaint_up_to(chat, "phone")
    _refused(chat, "phone", chat.sticker, *expected)
    assert chat.last.ask == "contact"  # asked again, with the contact button


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "Your text has 10000 characters; the limit is 2000."),
        ("zh_CN", "您的内容有 10000 个字，超过了 2000 个字的上限。"),
    ],
)
def test_a_10000_character_text_is_refused_with_the_limit(lang: str, expected: str) -> None:
    chat = Chat(lang=lang)
    file_complaint_up_to(chat, "facts")
    _refused(chat, "facts", lambda: chat.text("很" * 10_000), expected)


def test_the_text_limit_of_the_context_caps_the_profile() -> None:
    chat = Chat(lang="en", max_text_length=100)
    file_complaint_up_to(chat, "facts")
    assert "(10 to 100 characters)" in chat.said
    _refused(chat, "facts", lambda: chat.text("x" * 101), "the limit is 100")


def test_too_short_text_is_refused() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "facts")
    _refused(chat, "facts", lambda: chat.text("rude"), "at least 10 characters (you sent 4)")


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("en", "Unknown command /frobnicate."), ("zh_CN", "无法识别的命令 /frobnicate。")],
)
def test_an_unknown_command_lists_the_commands(lang: str, expected: str) -> None:
    chat = Chat(lang=lang)
    file_complaint_up_to(chat, "place")
    _refused(chat, "place", lambda: chat.command("frobnicate"), expected, "/status", "/cancel")
    assert chat.last.ask == "location"  # and the question is asked again
    idle = Chat(lang=lang)
    idle.command("frobnicate")
    assert expected in idle.said and idle.where == ("idle", None)


def test_a_future_time_is_refused() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "incident_time")
    _refused(chat, "incident_time", lambda: chat.text("today 23:00"), "in the future")
    _refused(chat, "incident_time", lambda: chat.text("2026-11-26"), "in the future")
    chat_zh = Chat(lang="zh_CN")
    file_complaint_up_to(chat_zh, "incident_time")
    _refused(chat_zh, "incident_time", lambda: chat_zh.text("明天上午"), "无法识别这个时间")
    _refused(chat_zh, "incident_time", lambda: chat_zh.text("今天20:00"), "这个时间还没有到")


ACCEPTED_TIMES = (
    "2026-11-20 09:00", "today 14:30", "今天14:30", "昨天下午3点", "前天上午10点",
    "3 hours ago", "3小时前", "yesterday 15:00",
)  # fmt: skip


@pytest.mark.parametrize("text", ACCEPTED_TIMES)
def test_the_accepted_time_formats(text: str) -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "incident_time")
    chat.text(text)
    assert chat.where == ("intake", "place")


def test_a_photo_that_is_too_large() -> None:
    for lang, expected in (("en", "That file is 12.5 MB"), ("zh_CN", "该文件有 12.5 MB")):
        chat = Chat(lang=lang)
        file_complaint_up_to(chat, "photos")
        _refused(chat, "photos", lambda chat=chat: chat.photo(int(12.5 * MB)), expected, "10")


def test_the_context_photo_size_caps_the_profile() -> None:
    chat = Chat(lang="en", max_photo_bytes=2 * MB)
    file_complaint_up_to(chat, "photos")
    assert "each at most 2 MB" in chat.said
    _refused(chat, "photos", lambda: chat.photo(3 * MB), "at most 2 MB")


def test_too_many_photos() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "photos")
    for _ in range(6):
        chat.photo()
    assert "6 of 6 photos received, the most we accept" in chat.said
    _refused(chat, "photos", chat.photo, "already sent 6 photos")
    chat.choose("done")
    assert chat.where == ("summary", "summary")
    assert "Photos: 6" in chat.last.text


def test_text_where_a_photo_is_expected() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "photos")
    _refused(chat, "photos", lambda: chat.text("here is my photo"), "Please send a photo")


def test_a_photo_where_text_is_expected() -> None:
    for lang, expected in (("en", "Please answer with text."), ("zh_CN", "请用文字回答。")):
        chat = Chat(lang=lang)
        file_complaint_up_to(chat, "facts")
        _refused(chat, "facts", chat.photo, expected)


def test_a_location_where_a_date_is_expected() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "incident_time")
    _refused(chat, "incident_time", lambda: chat.location(31.0, 121.0), "could not read")


def test_text_that_matches_no_choice() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "category")
    _refused(chat, "category", lambda: chat.text("the man was rude"), "Please choose one")
    _refused(chat, "category", lambda: chat.text("42"), "Please choose one")
    _refused(chat, "category", chat.sticker, "cannot read", "Please choose one")
    _refused(chat, "category", lambda: chat.choose("opt:no-such-thing"), "no longer valid")


def test_a_stale_button_from_another_step() -> None:
    # D15: an earlier question's button says it is out of date, whatever is asked now.
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "facts")
    _refused(chat, "facts", lambda: chat.choose("opt:service_attitude"), "earlier question")
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "incident_time")
    _refused(
        chat, "incident_time", lambda: chat.choose("opt:rude"), "这个按钮属于之前的问题，已经失效"
    )
    assert "无法识别" not in chat.said
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "privacy")
    _refused(chat, "privacy", lambda: chat.choose("opt:no"), "已经失效", "个人信息")


def test_an_invalid_phone_number() -> None:
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "phone")
    _refused(chat, "phone", lambda: chat.text("12345"), "13812345678")
    _refused(chat, "phone", lambda: chat.contact("+1 415 555 0100"), "这不像是电话号码")


def test_an_unreadable_place() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "place")
    _refused(chat, "place", chat.photo, "share a location or type the address")


def test_starting_something_else_mid_draft_keeps_the_draft() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "facts")
    for command in ("start", "status", "withdraw"):
        _refused(chat, "facts", lambda c=command: chat.command(c), "/cancel to discard")
    _refused(chat, "facts", lambda: chat.choose("menu:new"), "middle of filing")


def test_help_mid_draft_repeats_the_question() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "incident_time")
    _refused(chat, "incident_time", lambda: chat.command("help"), "/back", "When did it happen?")


def test_a_dialog_idle_too_long_expires_with_a_message() -> None:
    for lang, expected in (
        ("en", "expired after 60 minutes without activity"),
        ("zh_CN", "已超过 60 分钟没有操作，草稿已作废"),
    ):
        chat = Chat(lang=lang, idle_timeout=timedelta(minutes=60))
        file_complaint_up_to(chat, "facts")
        chat.later(timedelta(minutes=61))
        chat.text("The clerk was rude to me and refused my papers.")
        assert expected in chat.said
        assert chat.where == ("idle", None)
        assert chat.state is not None and chat.state.answers == {}
        assert "menu:new" in chat.choice_ids
        chat.command("start")  # starting over works
        assert chat.where == ("screening", "screening")


def test_a_dialog_inside_the_idle_timeout_continues() -> None:
    chat = Chat(lang="en", idle_timeout=timedelta(minutes=60))
    file_complaint_up_to(chat, "facts")
    chat.later(timedelta(minutes=59))
    chat.text("The clerk was rude to me and refused my papers.")
    assert "expired" not in chat.said
    assert chat.where == ("intake", "request_type")


def test_an_expired_start_command_starts_over_directly() -> None:
    chat = Chat(lang="en", idle_timeout=timedelta(minutes=10))
    file_complaint_up_to(chat, "facts")
    chat.later(timedelta(hours=3))
    chat.command("start")
    assert "expired" in chat.replies[0].text
    assert chat.where == ("screening", "screening")


def test_a_stored_step_the_profile_no_longer_has_resumes_at_the_first_gap() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "facts")
    assert chat.state is not None
    chat.state.step = "favourite_colour"  # e.g. the profile dropped a field meanwhile
    chat.text("The clerk was rude to me and refused my papers.")
    assert chat.where == ("intake", "facts")  # the first unanswered question
    assert "Please describe what happened." in chat.said


def test_a_stored_flow_this_version_does_not_know_falls_back_to_the_menu() -> None:
    chat = Chat(lang="en")
    chat.state = DialogState(flow="survey", step="score", updated_at=NOW.isoformat())
    chat.text("9")
    assert chat.where == ("idle", None)
    assert "menu:new" in chat.choice_ids
