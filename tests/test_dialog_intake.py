"""Filing a complaint through the pure dialog engine, driven by the gov-window profile."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from config.settings import Settings
from handlers.commands import SubmitComplaint
from handlers.dialog import DialogContext, DialogState, handle
from handlers.messages import FileRef, Incoming
from tests.dialog_chat import MB, NOW, Chat, file_complaint_up_to, gov_window


def _submitted(chat: Chat) -> SubmitComplaint:
    commands = [c for c in chat.commands if isinstance(c, SubmitComplaint)]
    assert len(commands) == 1
    return commands[0]


def test_a_complete_complaint_in_english() -> None:
    chat = Chat(lang="en")
    chat.command("start", "window-3")
    assert chat.where == ("screening", "screening")
    assert "Before we start" in chat.said
    assert "excl:petition" in chat.choice_ids and "screen:none" in chat.choice_ids

    chat.choose("screen:none")
    assert chat.where == ("intake", "category")
    assert chat.last.text.startswith("(1/13) Please choose the kind of complaint.")
    chat.text("service attitude")  # a label, typed in another case
    assert chat.where == ("intake", "category.sub")
    assert "Service attitude: which of these fits best?" in chat.said
    chat.text("1")  # the first choice by its number
    chat.text("2")  # target kind: a staff member
    assert chat.where == ("intake", "target.text")
    assert "badge" in chat.said
    chat.text("Window 3, badge 1024")
    assert chat.last.text.startswith("(3/13)")
    chat.text("yesterday 15:00")
    assert chat.last.ask == "location"
    chat.location(31.2304, 121.4737, "Citizen Service Centre, 2F")
    assert chat.last.remove_keyboard  # the location keyboard comes down
    chat.text("The clerk refused my documents and shouted at me in front of everyone.")
    chat.choose("opt:other")
    assert "describe what you ask for" in chat.said
    assert "skip" not in chat.choice_ids  # "other" needs words
    chat.text("A written explanation of which documents are really needed.")
    chat.text("Skip")  # witnesses, by the label of the Skip button
    assert chat.where == ("intake", "grounds")  # R1 理由
    chat.text("Skip")
    assert chat.where == ("intake", "anonymous")
    chat.choose("opt:no")
    assert chat.where == ("intake", "privacy")
    assert "kept for 3 years" in chat.said
    chat.choose("privacy:ok")
    assert chat.said.endswith("Your name:")  # no "optional" after choosing to give it (D7)
    chat.text("Li Lei")
    assert chat.last.ask == "contact"
    assert "Share your contact" not in chat.said  # the web chat cannot share contacts (D8)
    chat.contact("+86 138-1234-5678")
    assert chat.where == ("intake", "organisation")  # R4 单位名称
    chat.choose("skip")
    assert chat.last.ask == "photo"
    chat.photo(2 * MB)
    assert "1 of at most 6 photos received" in chat.said
    chat.photo(3 * MB)
    chat.text("done")
    assert chat.where == ("summary", "summary")
    summary = chat.last.text
    for line in (
        "Category: Service attitude / Rude or evasive staff",
        "About: A staff member / Window 3, badge 1024",
        "When: Nov 24, 2026, 15:00",
        "Where: Citizen Service Centre, 2F",
        "Your request: Other / A written explanation",
        "Supporting evidence or witnesses: (skipped)",
        "Name: Li Lei",
        "Phone: 138 1234 5678",
        "Photos: 2",
    ):
        assert line in summary
    assert "confirm" in chat.choice_ids and "edit:facts" in chat.choice_ids

    chat.choose("confirm")
    assert chat.where == ("idle", None)
    assert chat.state is not None and chat.state.answers == {}
    command = _submitted(chat)
    assert command.language == "en"
    answers = command.answers
    assert answers["category"] == "service_attitude"
    assert answers["subcategory"] == "rude"
    assert answers["target_kind"] == "staff"
    assert answers["target_text"] == "Window 3, badge 1024"
    assert answers["incident_time"] == datetime(2026, 11, 24, 7, 0, tzinfo=UTC).isoformat()
    assert answers["incident_time_precision"] == "minute"
    assert (answers["latitude"], answers["longitude"]) == (31.2304, 121.4737)
    assert answers["place_text"] == "Citizen Service Centre, 2F"
    assert answers["request_type"] == "other"
    assert answers["request_text"].startswith("A written explanation")
    assert answers["witnesses"] is None
    assert answers["name"] == "Li Lei"
    assert answers["phone"] == "+8613812345678"
    assert answers["anonymous"] is False
    assert [p["file_id"] for p in answers["photos"]] == ["photo-1", "photo-2"]
    assert answers["photos"][0]["size"] == 2 * MB
    assert answers["deep_link"] == "window-3"


def test_a_complete_complaint_in_chinese() -> None:
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "summary")
    summary = chat.last.text
    assert "请核对您的投诉" in summary
    assert "类别：服务态度 / 态度生硬、推诿扯皮" in summary
    assert "时间：2026年11月24日 15:00" in summary
    assert "电话：138 1234 5678" in summary  # national format (D9)
    assert chat.label("confirm") == "提交"
    chat.choose("confirm")
    answers = _submitted(chat).answers
    assert answers["facts"].startswith("工作人员拒绝受理")
    assert answers["place_text"] == "市民中心二楼"
    assert answers["latitude"] is None
    assert answers["photos"] == []
    assert answers["deep_link"] is None
    assert _submitted(chat).language == "zh_CN"


def test_every_prompt_shows_progress() -> None:
    chat = Chat(lang="en")
    chat.command("start")
    chat.choose("screen:none")
    seen = []
    answers = [
        lambda: chat.choose("opt:facilities"),  # no sub-categories: straight to the target
        lambda: chat.choose("opt:department"),
        lambda: chat.text("Certificates window"),
        lambda: chat.text("2026-11-20"),
        lambda: chat.text("Hall B"),
        lambda: chat.text("The queue machine was broken all morning."),
        lambda: chat.choose("opt:explanation"),
        lambda: chat.choose("skip"),
        lambda: chat.choose("skip"),
        lambda: chat.choose("skip"),  # grounds
        lambda: chat.choose("opt:yes"),  # anonymous: no name, no phone
        lambda: chat.choose("skip"),  # organisation
        lambda: chat.choose("skip"),  # photos
    ]
    for answer in [lambda: None, *answers]:
        answer()
        if chat.where[0] == "intake":
            seen.append(chat.last.text.split(" ", 1)[0])
    assert seen[0] == "(1/13)"
    assert "(2/13)" in seen and "(4/13)" in seen and "(8/13)" in seen and "(13/13)" in seen
    assert chat.where == ("summary", "summary")
    assert "Name:" not in chat.last.text and "Phone:" not in chat.last.text
    assert "Anonymous: Yes" in chat.last.text
    assert "When: Nov 20, 2026" in chat.last.text  # a bare date stays a date
    chat.choose("confirm")
    answers_sent = _submitted(chat).answers
    assert answers_sent["anonymous"] is True
    assert answers_sent["name"] is None and answers_sent["phone"] is None
    assert answers_sent["subcategory"] is None
    assert answers_sent["incident_time_precision"] == "day"


def test_an_excluded_matter_gets_reason_and_guidance_and_no_complaint() -> None:
    for lang, expected in (("en", "court"), ("zh_CN", "人民法院"), ("zh_TW", "人民法院")):
        chat = Chat(lang=lang)
        chat.command("start")
        chat.choose("excl:legal_proceedings")
        assert expected in chat.said
        # one tap on a legal term does not end the dialog (D2): the person decides
        assert chat.where == ("screening", "screening.exclusion")
        assert {"screen:leave", "screen:staff", "back"} <= set(chat.choice_ids)
        chat.choose("screen:leave")
        assert chat.where == ("idle", None)
        assert chat.commands == []
        assert "menu:new" in chat.choice_ids
    chat = Chat(lang="en")
    chat.command("start")
    chat.text(
        "I have already raised it with the letters-and-visits office and it is being handled there"
    )  # typed label
    assert "Regulations on Letters and Visits" in chat.said
    assert "Where to go instead:" in chat.said


def test_back_returns_to_the_previous_question_and_keeps_going() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "incident_time")
    chat.command("back")
    assert chat.where == ("intake", "target.text")
    chat.choose("back")
    assert chat.where == ("intake", "target")
    chat.text("back")
    assert chat.where == ("intake", "category.sub")
    chat.choose("opt:absent")
    assert chat.where == ("intake", "target")
    chat.choose("back")
    chat.choose("back")
    chat.choose("back")
    assert chat.where == ("screening", "screening")  # before the first field: the screening
    chat.choose("back")
    assert chat.where == ("screening", "screening")
    assert "This is the first question." in chat.said


def test_cancel_at_any_point_discards_the_draft() -> None:
    for cancel in ("command", "choice", "word"):
        chat = Chat(lang="zh_CN")
        file_complaint_up_to(chat, "facts")
        if cancel == "command":
            chat.command("cancel")
        elif cancel == "choice":
            chat.choose("cancel")
        else:
            chat.text("取消")
        assert chat.where == ("idle", None)
        assert chat.state is not None and chat.state.answers == {}
        assert "已取消" in chat.said
        assert chat.commands == []
    chat = Chat(lang="en")
    chat.command("cancel")
    assert "nothing to cancel" in chat.said


def test_edit_from_the_summary_changes_one_field_and_returns() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "summary")
    chat.choose("edit:facts")
    assert chat.where == ("edit", "facts")
    assert "Current answer: 工作人员拒绝受理" in chat.last.text
    chat.text("The clerk shouted at me and threw my papers on the floor.")
    assert chat.where == ("summary", "summary")
    assert "threw my papers" in chat.last.text

    # A new category asks its own sub-category before going back to the summary.
    chat.choose("edit:category")
    chat.choose("opt:efficiency")
    assert chat.where == ("edit", "category.sub")
    chat.choose("opt:waiting")
    assert chat.where == ("summary", "summary")
    assert "Category: Efficiency / Waiting too long" in chat.last.text

    # Back inside an edit returns to the summary unchanged.
    chat.choose("edit:place")
    chat.choose("back")
    assert chat.where == ("summary", "summary")

    # Going anonymous drops name and phone; going back asks for them again.
    chat.choose("edit:anonymous")
    chat.choose("opt:yes")
    assert chat.where == ("summary", "summary")
    assert "Phone:" not in chat.last.text
    chat.choose("edit:anonymous")
    chat.choose("opt:no")
    assert chat.where == ("summary", "summary")  # earlier answers were kept
    assert "Phone: 138 1234 5678" in chat.last.text

    chat.choose("confirm")
    answers = _submitted(chat).answers
    assert answers["category"] == "efficiency" and answers["subcategory"] == "waiting"
    assert answers["facts"].startswith("The clerk shouted")


def test_summary_back_and_unclear_input() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "summary")
    chat.text("looks fine I guess")
    assert chat.where == ("summary", "summary")
    assert "Please press Submit" in chat.said
    chat.text("submit")  # the button label, typed
    assert len(chat.commands) == 1
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "summary")
    chat.choose("back")
    assert chat.where == ("intake", "photos")


def test_required_questions_cannot_be_skipped() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "facts")
    before = chat.snapshot()
    chat.command("skip")
    assert "cannot be skipped" in chat.said
    assert chat.snapshot() == before


def test_a_landline_with_extension_and_a_shared_contact_are_normalised() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "phone")
    chat.text("010-12345678 转 801")
    assert chat.where == ("intake", "organisation")
    chat.choose("back")
    chat.contact("8613912345678")
    chat.choose("skip")  # organisation
    chat.choose("done")
    chat.choose("confirm")
    assert _submitted(chat).answers["phone"] == "+8613912345678"


def test_removing_photos_before_done() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "photos")
    chat.photo()
    chat.photo()
    assert "photos:clear" in chat.choice_ids
    chat.choose("photos:clear")
    assert "No photos now" in chat.said
    chat.photo()
    chat.choose("done")
    chat.choose("confirm")
    assert [p["file_id"] for p in _submitted(chat).answers["photos"]] == ["photo-3"]


def test_deep_link_payloads_that_are_not_codes_are_ignored() -> None:
    chat = Chat(lang="en")
    chat.command("start", "<script>")
    assert chat.state is not None and "deep_link" not in chat.state.answers


def test_the_platform_language_hint_picks_the_language() -> None:
    chat = Chat(lang="zh_CN")
    chat.send("command", command="start", language="zh-hant")
    assert chat.state is not None and chat.state.language == "zh_TW"
    assert "開始之前" in chat.said


def test_state_survives_a_restart_mid_dialog() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "incident_time")
    assert chat.state is not None
    stored = chat.state.to_json()
    resumed = Chat(lang="en")
    resumed.state = DialogState.from_json(stored)
    resumed.text("3 hours ago")
    assert resumed.where == ("intake", "place")
    assert resumed.state is not None
    assert resumed.state.answers["incident_time"] == "2026-11-25T05:00:00+00:00"


def test_a_text_only_channel_can_do_everything_by_typing() -> None:
    """WeChat-style: no buttons, only labels, numbers and words typed in Traditional Chinese."""
    chat = Chat(lang="zh_TW")
    chat.command("start")
    assert "都不是，繼續投訴" in [c.label for c in chat.last.choices]
    chat.text("都不是，繼續投訴")
    chat.text("辦事效率")
    chat.text("1")
    chat.text("部門或服務窗口")
    chat.text("社保窗口")
    chat.text("前天上午10点")
    chat.text("市民中心三樓")
    chat.text("排隊等了三個小時，窗口只開了一個。")
    chat.text("作出解釋")
    chat.text("略過")
    chat.text("跳过")  # the simplified word works too
    chat.text("略過")  # grounds
    chat.text("2")  # anonymous: yes
    chat.text("略過")  # organisation
    chat.text("完成")  # no photos
    assert chat.where == ("summary", "summary")
    assert "時間：2026年11月23日 10:00" in chat.last.text
    chat.text("修改：事情經過")
    assert chat.where == ("edit", "facts")
    chat.text("排隊等了三個小時，窗口只開了一個，也沒有人解釋。")
    chat.text("提交")
    answers = _submitted(chat).answers
    assert answers["subcategory"] == "waiting"
    assert answers["target_kind"] == "department"
    assert answers["anonymous"] is True
    assert answers["facts"].endswith("也沒有人解釋。")


def test_the_context_can_be_built_from_settings() -> None:
    settings = Settings(dialog_idle_minutes=15, max_photos=3, max_photo_mb=2.5, language="en")
    ctx = DialogContext.from_settings(settings, gov_window(), NOW)
    assert ctx.idle_timeout == timedelta(minutes=15)
    assert ctx.max_photos == 3 and ctx.max_photo_bytes == int(2.5 * MB)
    assert ctx.language_default == "en" and str(ctx.tz) == "Asia/Shanghai"


def test_leaving_a_location_or_contact_question_takes_the_keyboard_down() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "place")
    assert chat.last.ask == "location" and not chat.last.remove_keyboard
    chat.choose("back")
    assert chat.where == ("intake", "incident_time")
    assert chat.last.remove_keyboard and chat.last.ask is None
    chat.text("yesterday 09:00")
    chat.text("Hall B")
    assert chat.last.remove_keyboard


def test_handle_never_mutates_the_state_it_is_given() -> None:
    chat = Chat(lang="en")
    file_complaint_up_to(chat, "photos")
    chat.photo()
    assert chat.state is not None
    given = chat.state
    before = json.dumps(given.to_json())
    result = handle(
        given, Incoming("web", "citizen-1", "photo", file=FileRef("p9", size=MB)), chat.ctx
    )
    assert json.dumps(given.to_json()) == before
    assert len(result.state.scratch["photos"]) == 2
