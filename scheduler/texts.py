"""Message texts of the scheduler's notifications (pure).

The texts are message ids of the Babel catalogs (handlers/locales, domain `messages`), looked
up when a message is rendered, so the recipient's language at that moment decides.
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from handlers.i18n import N_, append_note, format_date, format_datetime, supported, translator
from scheduler.deadlines import SHANGHAI

STAGE_NAMES: dict[str, str] = {
    "acceptance": N_("acceptance answer"),
    "dispatch": N_("dispatch"),
    "first_contact": N_("first contact"),
    "action_plan": N_("handling plan"),
    "acknowledgement": N_("acknowledgement"),
    "resolution": N_("resolution"),
    "result_notice": N_("result notice"),
    "manager_notice": N_("manager notice"),
    "callback": N_("call-back"),
    "supervisor_revisit": N_("supervisor revisit"),
    "statement": N_("respondent's statement"),
}

_TEMPLATES: dict[str, str] = {
    "remind": N_("⏰ Reminder: the {stage} of complaint {number} is due {due}."),
    "overdue": N_(
        "⚠️ The {stage} of complaint {number} is overdue (due {due}); escalated to level "
        "{level}. Please act now."
    ),
    "escalate": N_(
        "🔺 Escalation (level {level}): the {stage} of complaint {number} was due {due}; "
        "responsible: {who}."
    ),
    "supervisor_revisit": N_(
        "📋 The complainant of {number} is not satisfied (result {result}/10, attitude "
        "{attitude}/10). Please revisit by {due}. {comment}"
    ),
    "closed_no_response": N_(
        "Your complaint {number} has been closed. We received no answer to our survey, so it "
        "was closed as 'no response'. Thank you."
    ),
    "nobody": N_("not assigned"),
    "revisit_visit": N_(
        "📞 Return visit owed by you ({who}): complaint {number} has been answered. Please "
        "revisit the complainant by {due} and record the result and attitude scores on the "
        "call-back list."
    ),
    "order_taker": N_("as the order-taker"),
    "station_chief": N_("as the station chief"),
    "statement_remind": N_(
        "⏰ Reminder: your statement on complaint {number} (your right to state your case and "
        "defend yourself) is due {due}. Without it the case is decided after that."
    ),
    "statement_remind_on_behalf": N_(
        "⏰ Reminder: the statement of {respondent} on complaint {number} is due {due}. "
        "Record it on their behalf when you receive it."
    ),
    "progress": N_(
        "Your complaint {number} is still being handled; it is due on {due}. We will tell "
        "you as soon as there is news."
    ),
    "progress_overdue": N_(
        "Your complaint {number} is still being handled. It was due on {due}; it is overdue "
        "and being chased. We apologise for the delay."
    ),
    "provisional": N_("(provisional: the official holiday calendar for that year is not out yet)"),
    "manager_notice": N_(
        "🚨 Major complaint {number}{category}: for the manager's attention now. {solution}"
    ),
    "manager_notice_category": N_(" ({label})"),
    "solution_due": N_("A solution must be agreed by {due}."),
}


def lang_of(language: str | None) -> str:
    return supported(language)


def stage_name(stage: str, lang: str) -> str:
    name = STAGE_NAMES.get(stage)
    return translator(lang_of(lang))(name) if name else stage


def show_time(instant: datetime, tz: ZoneInfo = SHANGHAI, lang: str = "zh_CN") -> str:
    """Local date and time for people, as every message shows it: 2026年10月10日 23:59."""
    return format_datetime(instant, lang_of(lang), tz)


def show_due(
    instant: datetime, lang: str, tz: ZoneInfo = SHANGHAI, provisional: bool = False
) -> str:
    """A deadline for the complainant: the local day alone when it ends at the close of the day
    (2026年10月10日 / Oct 10, 2026), else day and time; marked when counted on a provisional
    holiday calendar."""
    local = instant.astimezone(tz)
    lang = lang_of(lang)
    shown = (
        format_date(instant, lang, tz)
        if local.time() == time.max
        else format_datetime(instant, lang, tz)
    )
    return append_note(shown, text("provisional", lang)) if provisional else shown


def text(key: str, lang: str, **values: object) -> str:
    return translator(lang_of(lang))(_TEMPLATES[key]).format(**values).strip()
