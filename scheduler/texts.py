"""Message texts of the scheduler's notifications in zh_CN, zh_TW and en (pure)."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from scheduler.deadlines import SHANGHAI

STAGE_NAMES: dict[str, dict[str, str]] = {
    "acceptance": {"zh_CN": "受理答复", "zh_TW": "受理答覆", "en": "acceptance answer"},
    "dispatch": {"zh_CN": "派单", "zh_TW": "派單", "en": "dispatch"},
    "first_contact": {"zh_CN": "首次联系", "zh_TW": "首次聯繫", "en": "first contact"},
    "action_plan": {"zh_CN": "制定处理措施", "zh_TW": "制定處理措施", "en": "handling plan"},
    "acknowledgement": {"zh_CN": "签收", "zh_TW": "簽收", "en": "acknowledgement"},
    "resolution": {"zh_CN": "办结", "zh_TW": "辦結", "en": "resolution"},
    "result_notice": {"zh_CN": "告知处理结果", "zh_TW": "告知處理結果", "en": "result notice"},
    "manager_notice": {"zh_CN": "报告负责人", "zh_TW": "報告負責人", "en": "manager notice"},
    "callback": {"zh_CN": "回电", "zh_TW": "回電", "en": "call-back"},
    "supervisor_revisit": {
        "zh_CN": "督办回访",
        "zh_TW": "督辦回訪",
        "en": "supervisor revisit",
    },
}

_TEMPLATES: dict[str, dict[str, str]] = {
    "remind": {
        "zh_CN": "⏰ 提醒：投诉 {number} 的{stage}时限为 {due}，请及时处理。",
        "zh_TW": "⏰ 提醒：投訴 {number} 的{stage}時限為 {due}，請及時處理。",
        "en": "⏰ Reminder: the {stage} of complaint {number} is due {due}.",
    },
    "overdue": {
        "zh_CN": "⚠️ 投诉 {number} 的{stage}已超过时限（{due}），已上报{level}级，请立即处理。",
        "zh_TW": "⚠️ 投訴 {number} 的{stage}已超過時限（{due}），已上報{level}級，請立即處理。",
        "en": (
            "⚠️ The {stage} of complaint {number} is overdue (due {due}); "
            "escalated to level {level}. Please act now."
        ),
    },
    "escalate": {
        "zh_CN": "🔺 督办（第{level}级）：投诉 {number} 的{stage}已于 {due} 超期，责任人：{who}。",
        "zh_TW": "🔺 督辦（第{level}級）：投訴 {number} 的{stage}已於 {due} 超期，責任人：{who}。",
        "en": (
            "🔺 Escalation (level {level}): the {stage} of complaint {number} was due {due}; "
            "responsible: {who}."
        ),
    },
    "supervisor_revisit": {
        "zh_CN": "📋 投诉 {number} 的投诉人对处理结果不满意"
        "（结果 {result}/10，态度 {attitude}/10），请于 {due} 前完成督办回访。{comment}",
        "zh_TW": "📋 投訴 {number} 的投訴人對處理結果不滿意"
        "（結果 {result}/10，態度 {attitude}/10），請於 {due} 前完成督辦回訪。{comment}",
        "en": (
            "📋 The complainant of {number} is not satisfied (result {result}/10, attitude "
            "{attitude}/10). Please revisit by {due}. {comment}"
        ),
    },
    "closed_no_response": {
        "zh_CN": "您的投诉 {number} 已办结。因未收到回访评价，已按“未回复”结案。感谢您的监督。",
        "zh_TW": "您的投訴 {number} 已辦結。因未收到回訪評價，已按「未回覆」結案。感謝您的監督。",
        "en": (
            "Your complaint {number} has been closed. We received no answer to our survey, "
            "so it was closed as 'no response'. Thank you."
        ),
    },
    "nobody": {"zh_CN": "未指定", "zh_TW": "未指定", "en": "not assigned"},
    "progress": {
        "zh_CN": "您的投诉 {number} 正在办理中，办结时限为 {due}。有进展时我们会及时告知您。",
        "zh_TW": "您的投訴 {number} 正在辦理中，辦結時限為 {due}。有進展時我們會及時告知您。",
        "en": (
            "Your complaint {number} is still being handled; it is due on {due}. "
            "We will tell you as soon as there is news."
        ),
    },
    "progress_overdue": {
        "zh_CN": "您的投诉 {number} 仍在办理中，已超过办结时限（{due}），我们正在督促办理，"
        "请您谅解。",
        "zh_TW": "您的投訴 {number} 仍在辦理中，已超過辦結時限（{due}），我們正在督促辦理，"
        "請您諒解。",
        "en": (
            "Your complaint {number} is still being handled. It was due on {due}; it is "
            "overdue and being chased. We apologise for the delay."
        ),
    },
    "provisional": {
        "zh_CN": "（暂定：该年度法定节假日安排尚未公布）",
        "zh_TW": "（暫定：該年度法定節假日安排尚未公布）",
        "en": " (provisional: the official holiday calendar for that year is not out yet)",
    },
    "manager_notice": {
        "zh_CN": "🚨 重大投诉 {number}{category}：请负责人立即知悉并督办。{solution}",
        "zh_TW": "🚨 重大投訴 {number}{category}：請負責人立即知悉並督辦。{solution}",
        "en": "🚨 Major complaint {number}{category}: for the manager's attention now. {solution}",
    },
    "manager_notice_category": {"zh_CN": "（{label}）", "zh_TW": "（{label}）", "en": " ({label})"},
    "solution_due": {
        "zh_CN": "解决方案须于 {due} 前商定。",
        "zh_TW": "解決方案須於 {due} 前商定。",
        "en": "A solution must be agreed by {due}.",
    },
}


def lang_of(language: str | None) -> str:
    return language if language in ("zh_CN", "zh_TW", "en") else "zh_CN"


def stage_name(stage: str, lang: str) -> str:
    names = STAGE_NAMES.get(stage)
    return names[lang_of(lang)] if names else stage


def show_time(instant: datetime, tz: ZoneInfo = SHANGHAI) -> str:
    """Local wall-clock time for people: 2026-10-10 23:59."""
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def show_due(
    instant: datetime, lang: str, tz: ZoneInfo = SHANGHAI, provisional: bool = False
) -> str:
    """A deadline for the complainant: the local day alone when it ends at the close of the day
    (2026年10月10日 / Oct 10, 2026), else day and time; marked when counted on a provisional
    holiday calendar."""
    from handlers.i18n import format_date, format_datetime  # Babel: loaded when used

    local = instant.astimezone(tz)
    lang = lang_of(lang)
    shown = (
        format_date(instant, lang, tz)
        if local.time() == time.max
        else format_datetime(instant, lang, tz)
    )
    return shown + (_TEMPLATES["provisional"][lang] if provisional else "")


def text(key: str, lang: str, **values: object) -> str:
    return _TEMPLATES[key][lang_of(lang)].format(**values).strip()
