"""The complainant's own complaints: status, supplement, withdraw, dispute, language, help."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.commands import Dispute, SetLanguage, Supplement, Withdraw
from handlers.dialog import (
    COMMANDS,
    ComplaintSummary,
    command_descriptions,
    render_command_failed,
    render_disputed,
    render_submitted,
    render_supplemented,
    render_withdrawn,
)
from tests.dialog_chat import MB, SHANGHAI, Chat, file_complaint_up_to

SUBMITTED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
OPEN = ComplaintSummary(
    number="202611-0007",
    state="waiting_for_complainant",
    category_label="服务态度",
    next_deadline=datetime(2026, 12, 31, 9, 59, tzinfo=UTC),  # 17:59 local
    provisional=True,
    submitted_at=SUBMITTED,
    timeline=[
        (SUBMITTED, "已提交"),
        (SUBMITTED + timedelta(hours=3), "已受理，转办事大厅"),
        (SUBMITTED + timedelta(days=1), "请补充当天的排队小票"),
    ],
)
REPLIED = ComplaintSummary(
    number="202611-0003",
    state="replied",
    category_label="办事效率",
    next_deadline=None,
    provisional=False,
    submitted_at=SUBMITTED - timedelta(days=5),
    timeline=[(SUBMITTED, "已答复：已对窗口人员批评教育")],
)
MINE = (OPEN, REPLIED)


def test_status_without_complaints() -> None:
    chat = Chat(lang="en")
    chat.command("status")
    assert "not filed any complaint" in chat.said
    # A complaint recorded on the desk can still be followed here: the link is offered.
    assert chat.where == ("status", "list")
    assert "status:link" in chat.choice_ids


def test_status_lists_then_shows_detail_and_timeline() -> None:
    chat = Chat(lang="zh_CN", my_complaints=MINE)
    chat.command("status")
    assert chat.where == ("status", "list")
    listing = chat.last.text
    assert "202611-0007 · 服务态度 · 待您补充材料" in listing
    assert "下一办理时限：2026年12月31日 17:59" in listing
    assert "17:59（暂定" in listing
    assert "202611-0003 · 办事效率 · 已答复" in listing
    assert chat.choice_ids[:2] == ["complaint:202611-0007", "complaint:202611-0003"]

    chat.text("1")
    assert chat.where == ("status", "detail")
    detail = chat.last.text
    assert "投诉 202611-0007" in detail
    assert "状态：待您补充材料" in detail
    assert "提交时间：2026年11月20日 10:00" in detail
    assert "2026年11月20日 13:00  已受理，转办事大厅" in detail
    assert "act:supplement" in chat.choice_ids and "act:withdraw" in chat.choice_ids
    assert "act:dispute" not in chat.choice_ids

    chat.choose("status:list")
    chat.choose("complaint:202611-0003")
    assert "act:dispute" in chat.choice_ids and "act:withdraw" not in chat.choice_ids
    assert "已答复：已对窗口人员批评教育" in chat.last.text
    assert "下一办理时限" not in chat.last.text
    chat.choose("back")
    assert chat.where == ("status", "list")
    chat.text("nonsense")
    assert "请选择您的一项投诉" in chat.said
    chat.choose("cancel")
    assert chat.where == ("idle", None)


def test_status_from_the_menu() -> None:
    chat = Chat(lang="en", my_complaints=MINE)
    chat.text("hello")
    assert chat.where == ("idle", None) and "menu:status" in chat.choice_ids
    chat.text("my complaints")
    assert chat.where == ("status", "list")


def test_supplement_text_and_photos() -> None:
    chat = Chat(lang="en", my_complaints=MINE)
    chat.command("supplement")
    assert chat.where == ("supplement", "choose")
    assert chat.choice_ids[0] == "complaint:202611-0007"
    assert "complaint:202611-0003" not in chat.choice_ids  # replied: not open
    chat.choose("complaint:202611-0007")
    assert chat.where == ("supplement", "collect")
    chat.choose("done")
    assert "Nothing received yet." in chat.said
    chat.text("Here is the queue ticket from that day.")
    chat.photo(2 * MB)
    chat.photo(20 * MB)
    assert "at most 10 MB" in chat.said
    chat.sticker()
    assert "cannot read" in chat.said
    chat.text("x" * 5000)
    assert "Your text has 5000 characters; the limit is 2000." in chat.said
    chat.text("y" * 1980)
    assert "that makes 2019 characters; the limit is 2000" in chat.said
    chat.choose("done")
    assert chat.where == ("idle", None)
    assert chat.commands == [
        Supplement(
            "202611-0007",
            "Here is the queue ticket from that day.",
            ({"file_id": "photo-1", "file_name": None, "mime_type": "image/jpeg", "size": 2 * MB},),
        )
    ]


def test_supplement_from_the_detail_view() -> None:
    chat = Chat(lang="zh_CN", my_complaints=MINE)
    chat.command("status")
    chat.choose("complaint:202611-0007")
    chat.choose("act:supplement")
    assert chat.where == ("supplement", "collect")
    chat.photo()
    chat.text("完成")
    assert chat.commands == [
        Supplement(
            "202611-0007",
            None,
            ({"file_id": "photo-1", "file_name": None, "mime_type": "image/jpeg", "size": MB},),
        )
    ]


def test_supplement_without_open_complaints() -> None:
    chat = Chat(lang="en", my_complaints=(REPLIED,))
    chat.command("supplement")
    assert "no open complaint" in chat.said
    assert chat.where == ("idle", None)


def test_withdraw_needs_an_explicit_confirmation() -> None:
    chat = Chat(lang="en", my_complaints=MINE)
    chat.command("withdraw")
    chat.choose("complaint:202611-0007")
    assert chat.where == ("withdraw", "confirm")
    assert "cannot be undone" in chat.said
    chat.text("maybe")
    assert "Please answer yes or no." in chat.said
    assert chat.commands == []
    chat.choose("withdraw:no")
    assert "stays open" in chat.said and chat.commands == []
    chat.command("withdraw")
    chat.choose("complaint:202611-0007")
    chat.text("1")  # "Yes, withdraw it" by number
    assert chat.commands == [Withdraw("202611-0007")]
    assert chat.where == ("idle", None)


def test_dispute_a_result() -> None:
    chat = Chat(lang="zh_CN", my_complaints=MINE)
    chat.command("dispute")
    assert chat.choice_ids[0] == "complaint:202611-0003"
    assert "complaint:202611-0007" not in chat.choice_ids  # still open: nothing to dispute
    chat.choose("complaint:202611-0003")
    assert chat.where == ("dispute", "reason")
    chat.photo()
    assert "请用文字回答" in chat.said
    chat.text("不对")
    assert "至少 5 个字" in chat.said
    chat.text("窗口人员并没有道歉，问题也没有解决。")
    assert chat.commands == [Dispute("202611-0003", "窗口人员并没有道歉，问题也没有解决。")]
    assert chat.where == ("idle", None)


def test_dispute_without_a_result() -> None:
    chat = Chat(lang="en", my_complaints=(OPEN,))
    chat.command("dispute")
    assert "no complaint with a result to dispute" in chat.said


def test_switching_language_mid_draft_keeps_the_step() -> None:
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "facts")
    chat.command("lang")
    assert chat.choice_ids == ["lang:zh_CN", "lang:zh_TW", "lang:en"]
    assert chat.where == ("intake", "facts")
    chat.choose("lang:en")
    assert chat.commands == [SetLanguage("en")]
    assert "Language: English." in chat.said
    assert "Please describe what happened." in chat.said
    assert chat.where == ("intake", "facts")
    chat.command("lang")
    chat.text("繁體中文")  # typed language name
    assert chat.state is not None and chat.state.language == "zh_TW"
    assert "請描述事情經過" in chat.said
    chat.text("櫃檯人員拒絕受理我的申請資料，而且態度非常惡劣。")
    assert chat.where == ("intake", "request_type")


def test_help_lists_the_commands() -> None:
    chat = Chat(lang="en")
    chat.command("help")
    for command in COMMANDS:
        assert f"/{command}" in chat.said
    assert chat.where == ("idle", None)
    chat.choose("menu:help")
    assert "/withdraw" in chat.said


def test_command_descriptions_for_every_language() -> None:
    assert [c for c, _ in command_descriptions("en")] == list(COMMANDS)
    assert dict(command_descriptions("zh_CN"))["status"] == "我的投诉及办理进度"
    assert dict(command_descriptions("zh_TW"))["lang"] == "切換語言"


def test_render_submitted_tells_number_next_step_and_date() -> None:
    due = datetime(2026, 11, 30, 9, 59, tzinfo=UTC)
    (reply,) = render_submitted("202611-0001", due, False, "zh_CN", SHANGHAI)
    assert "投诉编号：\n202611-0001\n" in reply.text  # the number on a line of its own
    assert "我们将在2026年11月30日 17:59前告知您是否受理" in reply.text
    assert "暂定" not in reply.text
    (reply,) = render_submitted("202611-0001", due, True, "en", SHANGHAI)
    assert "Complaint number:\n202611-0001\n" in reply.text
    assert "by Nov 30, 2026, 17:59 we tell you whether we accept" in reply.text
    assert "provisional" in reply.text
    (reply,) = render_submitted("202611-0001", None, False, "zh_TW", SHANGHAI)
    assert "投訴編號：\n202611-0001" in reply.text and "/status" in reply.text


def test_the_receipt_says_what_happens_next_in_plain_words() -> None:
    # Filed Wed 2026-12-02 10:00 in Shanghai; the answer is due in 3 working days, on 12-07.
    now = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    due = datetime(2026, 12, 7, 15, 59, tzinfo=UTC)  # 23:59 local
    kwargs = {"term": (3, "working_days"), "now": now}
    (zh,) = render_submitted("202612-0001", due, False, "zh_CN", SHANGHAI, **kwargs)
    assert "接下来：我们将在3个工作日内（12月7日前）告知您是否受理。" in zh.text
    (tw,) = render_submitted("202612-0001", due, False, "zh_TW", SHANGHAI, **kwargs)
    assert "3個工作天內（12月7日前）告知您是否受理" in tw.text
    (en,) = render_submitted("202612-0001", due, False, "en", SHANGHAI, **kwargs)
    assert "within 3 working days (by Dec 7) we tell you whether we accept" in en.text
    # property: the 24-hour first contact, with its time; never the 5-minute dispatch
    contact = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    (first,) = render_submitted(
        "202612-0002", contact, False, "zh_CN", SHANGHAI, "first_contact", (24, "hours"), now
    )
    assert "将在24小时内（2026年12月3日 10:00前）与您联系" in first.text
    assert "答复您" not in first.text
    # a deadline already due when the receipt is sent is not promised (D12)
    (spot,) = render_submitted("202612-0003", now, False, "zh_CN", SHANGHAI, **kwargs)
    assert "前告知" not in spot.text and "工作人员将审核" in spot.text
    # next year: the year is shown
    late = datetime(2027, 1, 4, 15, 59, tzinfo=UTC)
    (year,) = render_submitted("202612-0004", late, False, "zh_CN", SHANGHAI, **kwargs)
    assert "（2027年1月4日前）" in year.text


def test_render_outcomes_and_failures() -> None:
    added = render_supplemented("202611-0007", False, "zh_CN")[0].text
    assert "补充材料已加入投诉 202611-0007" in added
    assert "继续进行" not in added
    resumed_zh = render_supplemented("202611-0007", True, "zh_CN")[0].text
    assert "补充材料已加入投诉 202611-0007。收到材料后" in resumed_zh
    resumed = render_supplemented("202611-0007", True, "en")[0].text
    assert "Handling continues" in resumed
    assert "withdrawn" in render_withdrawn("202611-0007", "en")[0].text
    assert "重新调查核实" in render_disputed("202611-0003", "zh_CN")[0].text
    assert "could not be found" in render_command_failed("not_found", "en")[0].text
    assert "状态不允许" in render_command_failed("invalid_state", "zh_CN")[0].text
    generic = render_command_failed("database_down", "en")[0]
    assert "try again" in generic.text and generic.choices
