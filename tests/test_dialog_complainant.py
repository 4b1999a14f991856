"""The complainant's side of the dialog engine (issue 13): screening a layperson can do, typed
answers, times people type, the privacy notice, phone numbers and dates as people read them,
and what staff and the complainant are told (D1–D13, D15, D16, D18)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from config.profiles import load_profile
from handlers.commands import SubmitComplaint
from handlers.i18n import format_incident_time, format_phone
from handlers.notices import Milestone, render_milestone
from handlers.staff import CaseCard, render_card
from models.workflow import Action
from scheduler.texts import show_time, text
from tests.dialog_chat import SHANGHAI, Chat, file_complaint_up_to


def _submitted(chat: Chat) -> SubmitComplaint:
    (command,) = [c for c in chat.commands if isinstance(c, SubmitComplaint)]
    return command


# ---------------------------------------------------------------- screening (D1, D2)


def test_the_intro_does_not_claim_every_option_is_another_authoritys() -> None:
    chat = Chat(lang="zh_CN")
    chat.command("start")
    assert "由其他机关办理" not in chat.said and "handled elsewhere" not in chat.said
    assert "有些事项需要按其他程序办理" in chat.said
    assert chat.label("screen:staff") == "不确定，请工作人员判断"


def test_not_sure_files_the_complaint_flagged_for_staff_screening() -> None:
    chat = Chat(lang="zh_CN")
    chat.command("start")
    chat.choose("screen:staff")
    assert chat.where == ("intake", "category")
    assert "由工作人员判断是否在这里受理" in chat.said
    file_complaint_up_to_summary_from_category(chat)
    chat.choose("confirm")
    assert _submitted(chat).answers["screening"] == "staff"


def file_complaint_up_to_summary_from_category(chat: Chat) -> None:
    chat.choose("opt:service_attitude")
    chat.choose("opt:rude")
    chat.choose("opt:staff")
    chat.text("3号窗口")
    chat.text("昨天下午3点")
    continue_to_summary(chat)


def continue_to_summary(chat: Chat) -> None:
    """From the place question to the summary, filing anonymously (no personal question)."""
    assert chat.where == ("intake", "place"), chat.said
    chat.text("市民中心二楼")
    chat.text("工作人员拒绝受理我的材料，并且态度恶劣。")
    chat.choose("opt:apology")
    for _ in range(3):  # the request's addition, evidence, grounds
        chat.choose("skip")
    chat.choose("opt:yes")
    chat.choose("skip")  # organisation
    chat.choose("done")
    assert chat.where == ("summary", "summary"), chat.said


def test_one_wrong_tap_on_a_legal_term_can_still_file_for_staff_to_judge() -> None:
    chat = Chat(lang="zh_CN")
    chat.command("start")
    chat.choose("excl:petition")  # many citizens call any complaint to government 信访
    assert chat.where == ("screening", "screening.exclusion")
    assert "信访" in chat.said and "仍可以在这里投诉" in chat.said
    assert chat.commands == []
    chat.choose("back")
    assert chat.where == ("screening", "screening")
    chat.choose("excl:petition")
    chat.choose("screen:staff")
    assert chat.where == ("intake", "category")
    file_complaint_up_to_summary_from_category(chat)
    chat.choose("confirm")
    assert _submitted(chat).answers["screening"] == "staff"


def test_none_of_these_files_without_the_flag() -> None:
    chat = Chat(lang="en")
    chat.command("start")
    chat.choose("screen:staff")
    chat.choose("back")  # changes their mind
    chat.choose("screen:none")
    file_complaint_up_to_summary_from_category(chat)
    chat.choose("confirm")
    assert _submitted(chat).answers["screening"] is None


# ---------------------------------------------------------------- typed answers (D3, D5)


def test_the_target_question_takes_typed_words() -> None:
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "target")
    assert "也可以直接输入" in chat.said
    chat.text("不动产登记窗口的王某")
    assert chat.where == ("intake", "incident_time")
    assert chat.state is not None
    assert chat.state.answers["target_kind"] == "other"
    assert chat.state.answers["target_text"] == "不动产登记窗口的王某"
    chat.text("2")  # a number still picks the option, not words
    assert chat.where == ("intake", "incident_time")  # "2" is no time: refused, same step


def test_the_request_question_takes_typed_words() -> None:
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "request_type")
    chat.text("希望尽快给我办好不动产证")
    assert chat.where == ("intake", "witnesses")
    assert chat.state is not None
    assert chat.state.answers["request_type"] == "other"
    assert chat.state.answers["request_text"] == "希望尽快给我办好不动产证"


def test_no_plate_number_outside_transport() -> None:
    for name in ("gov-window", "tax-service", "property"):
        chat = Chat(profile=load_profile(name), lang="zh_CN")
        chat.command("start")
        for _ in range(10):
            if chat.where[1] == "target":
                break
            options = [c for c in chat.choice_ids if c.startswith(("opt:", "screen:none"))]
            chat.choose(options[0])
        assert chat.where[1] == "target", chat.where
        assert "vehicle" not in " ".join(chat.choice_ids) and "车牌" not in chat.said


def test_evidence_wording_is_not_a_court_form() -> None:
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "summary")
    assert "证明材料或证明人" in chat.last.text
    assert "证人：" not in chat.last.text


# ---------------------------------------------------------------- times (item 5)


def test_times_people_type_and_cannot_remember() -> None:
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "incident_time")
    assert chat.label("time:unknown") == "记不清具体时间"
    chat.text("前天晚上")
    assert chat.where == ("intake", "place")
    chat.choose("back")
    chat.choose("time:unknown")
    assert chat.where == ("intake", "place")
    continue_to_summary(chat)
    assert "时间：记不清具体时间" in chat.last.text
    chat.choose("confirm")
    answers = _submitted(chat).answers
    assert answers["incident_time"] is None and answers["incident_time_precision"] == "unknown"


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("上周五下午", "时间：2026年11月20日 下午"),
        ("上个月", "时间：2026年10月"),
        ("十一月二十日", "时间：2026年11月20日"),
        ("上周", "时间：2026年11月16日起的一周"),
        ("昨天下午3点", "时间：2026年11月24日 15:00"),
    ],
)
def test_the_summary_shows_a_time_as_exactly_as_it_was_given(typed: str, shown: str) -> None:
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "incident_time")
    chat.text(typed)
    continue_to_summary(chat)
    assert shown in chat.last.text


def test_incident_times_in_every_language() -> None:
    evening = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai
    assert format_incident_time(evening, "period", "zh_CN", SHANGHAI) == "2026年11月23日 晚上"
    assert format_incident_time(evening, "period", "en", SHANGHAI) == (
        "Nov 23, 2026, in the evening"
    )
    night = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00
    assert format_incident_time(night, "period", "zh_TW", SHANGHAI) == "2026年11月23日 夜裡"
    month = datetime(2026, 9, 30, 16, 0, tzinfo=UTC)  # Oct 1, 00:00 in Shanghai
    assert format_incident_time(month, "month", "en", SHANGHAI) == "Oct 2026"
    assert format_incident_time(month, "minute", "zh_CN", SHANGHAI) == "2026年10月1日 00:00"


# ---------------------------------------------------------------- privacy notice (item 7)


def test_a_privacy_notice_comes_before_the_first_personal_question() -> None:
    url = "https://example.gov.cn/privacy"
    chat = Chat(lang="zh_CN", privacy_url=url)
    file_complaint_up_to(chat, "anonymous")
    chat.choose("opt:no")
    assert chat.where == ("intake", "privacy")
    notice = chat.last.text
    for part in ("姓名和联系电话", "仅用于办理本投诉", "工作人员", "保存3年", url):
        assert part in notice, part
    assert chat.choice_ids[0] == "privacy:ok"
    chat.command("lang")
    chat.choose("lang:en")  # a language switch shows the notice again, in English
    assert "kept for 3 years" in chat.said and chat.where == ("intake", "privacy")
    chat.choose("privacy:ok")
    assert chat.where == ("intake", "name")


def test_the_notice_states_the_profiles_retention_and_back_leaves_it() -> None:
    profile = load_profile("property").model_copy(update={"retention_years": 5})
    chat = Chat(profile=profile, lang="zh_CN")
    chat.command("start")
    for _ in range(20):
        if chat.where[1] == "privacy":
            break
        options = [c for c in chat.choice_ids if c.startswith(("opt:", "screen:none"))]
        if options:
            chat.choose(options[0])
        elif chat.last.ask == "photo":
            chat.choose("done")
        elif "time:unknown" in chat.choice_ids:
            chat.choose("time:unknown")
        else:
            chat.text("3栋2单元电梯坏了三天没人修理")
    assert chat.where[1] == "privacy"
    assert "保存5年" in chat.last.text
    assert "privacy_url" not in chat.last.text and "个人信息保护说明全文" not in chat.last.text
    chat.choose("back")
    assert chat.where[1] != "privacy"


def test_an_anonymous_complaint_gets_no_privacy_notice() -> None:
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "anonymous")
    chat.choose("opt:yes")
    assert chat.where != ("intake", "privacy")


# ---------------------------------------------------------------- name and phone (D7, D8, D9)


def test_after_choosing_to_give_name_and_phone_they_are_not_optional() -> None:
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "name")
    assert "可跳过" not in chat.last.text and "匿名" not in chat.last.text
    assert "skip" not in chat.choice_ids
    chat.text("李雷")
    assert "可跳过" not in chat.last.text and "skip" not in chat.choice_ids


def test_contact_sharing_is_offered_only_on_telegram() -> None:
    web = Chat(lang="zh_CN")
    file_complaint_up_to(web, "phone")
    assert "分享联系人" not in web.said and "138 0013 8000" in web.said
    telegram = Chat(lang="zh_CN")
    file_complaint_up_to(telegram, "name")
    telegram.send("text", channel="telegram", text="李雷")
    assert "分享联系人" in telegram.said


@pytest.mark.parametrize(
    ("stored", "lang", "shown"),
    [
        ("+8613800138000", "zh_CN", "138 0013 8000"),
        ("+86-10-12345678", "zh_CN", "010-1234 5678"),
        ("+86-21-87654321", "zh_TW", "021-8765 4321"),
        ("+86-755-12345678", "en", "0755-1234 5678"),
        ("+86-10-12345678 ext. 123", "zh_CN", "010-1234 5678 转123"),
        ("+86-10-12345678 ext. 123", "en", "010-1234 5678 ext. 123"),
        ("", "zh_CN", ""),
    ],
)
def test_phone_numbers_are_shown_in_national_format(stored: str, lang: str, shown: str) -> None:
    assert format_phone(stored, lang) == shown


# ---------------------------------------------------------------- what staff see (D16, D18)


def test_the_staff_card_shows_the_whole_account() -> None:
    card = CaseCard(
        id=1,
        number="202612-0001",
        state="submitted",
        version=1,
        category_label="设施设备",
        subcategory_label="电梯",
        severity_label="一般投诉",
        target="物业服务中心",
        facts="电梯停运三天",
        complainant_name="李雷",
        complainant_phone="+8613800138000",
        channel="web",
        incident_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        incident_precision="period",
        place="3栋2单元",
        request_type="other",
        request_text="尽快修好",
        witnesses="邻居王女士",
        photos=2,
        screening="staff",
    )
    shown = render_card(card, "zh_CN", SHANGHAI)
    for part in (
        "设施设备 · 电梯 · 一般投诉",
        "李雷 138 0013 8000",
        "2026年11月23日 晚上",
        "3栋2单元",
        "尽快修好",
        "证明材料/证明人：邻居王女士",
        "2",
        "投诉人不确定是否属于受理范围",
    ):
        assert part in shown, part
    unknown = render_card(
        replace(card, incident_at=None, incident_precision="unknown"), "en", SHANGHAI
    )
    assert "cannot remember exactly" in unknown


def test_scheduler_dates_use_the_one_format() -> None:
    due = datetime(2026, 12, 9, 15, 59, tzinfo=UTC)
    assert show_time(due, SHANGHAI) == "2026年12月9日 23:59"
    assert show_time(due, SHANGHAI, "en") == "Dec 9, 2026, 23:59"
    line = text(
        "supervisor_revisit",
        "zh_CN",
        number="1",
        result=2,
        attitude=3,
        due=show_time(due),
        comment="",
    )
    assert "2026年12月9日 23:59" in line and "2026-12-09" not in line


# ---------------------------------------------------------------- routing notice (D13)


def test_the_routing_notice_does_not_say_the_target_handles_itself() -> None:
    own = Milestone(
        Action.ASSIGN, "202612-0001", department="不动产登记窗口", department_is_target=True
    )
    shown = render_milestone(own, "zh_CN", SHANGHAI)
    assert shown is not None
    assert "交由不动产登记窗口办理" not in shown.text
    assert "督促被投诉的不动产登记窗口核查整改" in shown.text
    other = Milestone(Action.ASSIGN, "202612-0001", department="督查科")
    shown = render_milestone(other, "zh_CN", SHANGHAI)
    assert shown is not None and "已交由督查科办理" in shown.text


def test_the_acceptance_notice_does_not_present_the_handling_deadline_as_the_answer() -> None:
    # D11: accepted; handled by 12-16, and the result told within 3 working days after (R1).
    due = datetime(2026, 12, 16, 15, 59, tzinfo=UTC)
    accepted = Milestone(Action.ACCEPT, "202612-0001", due=due, result_term=(3, "working_days"))
    shown = render_milestone(accepted, "zh_CN", SHANGHAI)
    assert shown is not None
    assert "办理期限为 2026年12月16日 23:59，办结后3个工作日内将处理结果告知您" in shown.text
    assert "前答复您" not in shown.text
    english = render_milestone(accepted, "en", SHANGHAI)
    assert english is not None and "the result within 3 working days" in english.text


def test_the_privacy_link_comes_from_the_settings() -> None:
    from config.settings import Settings
    from handlers.turn import DialogContext

    settings = Settings(privacy_url="https://example.org/privacy")
    ctx = DialogContext.from_settings(settings, load_profile("gov-window"), datetime.now(UTC))
    assert ctx.privacy_url == "https://example.org/privacy"
    assert DialogContext.from_settings(Settings(), ctx.profile, ctx.now).privacy_url is None


def test_a_stale_button_at_the_summary_says_it_is_out_of_date() -> None:
    chat = Chat(lang="zh_CN")
    file_complaint_up_to(chat, "summary")
    chat.choose("time:unknown")  # the time question's button, pressed again
    assert chat.where == ("summary", "summary")
    assert "这个按钮属于之前的问题，已经失效" in chat.said and chat.commands == []
