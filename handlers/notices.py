"""Messages that tell a complainant how their complaint moves on (milestones).

Pure rendering in the complainant's language. models/notifications.py decides when each is
sent (`models.cards.MILESTONE_ACTIONS`), builds the `Milestone` and queues what this module
renders (the shell installs `render_milestone` there: handlers.notify). The submission itself is
answered in the intake dialog (handlers.dialog.render_submitted), so it has no milestone here;
nor have closing and reopening, which the survey and the dispute dialogs (and the scheduler)
tell in their own words.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from handlers.i18n import append_note, format_datetime, format_term, translator
from handlers.messages import Outgoing
from models.cards import Milestone
from models.workflow import Action


def _when(milestone: Milestone, lang: str, tz: ZoneInfo) -> str:
    _ = translator(lang)
    assert milestone.due is not None
    text = format_datetime(milestone.due, lang, tz)
    if milestone.provisional:
        text = append_note(
            text, _("(provisional: the official holiday calendar for that year is not out yet)")
        )
    return text


def render_milestone(milestone: Milestone, lang: str, tz: ZoneInfo) -> Outgoing | None:
    """The complainant's message for `milestone`, or None when the action tells them nothing."""
    _ = translator(lang)
    number, action = milestone.number, milestone.action
    if action == Action.ACCEPT:
        text = _("Your complaint {number} has been accepted.").format(number=number)
        if milestone.contact_due is not None:
            text = append_note(
                text,
                _("We will contact you by {when} about how it is being handled.").format(
                    when=format_datetime(milestone.contact_due, lang, tz)
                ),
            )
        if milestone.due is not None and milestone.result_term is not None:
            # The handling deadline is not the answer date: the result may follow later (D11).
            text = append_note(
                text,
                _(
                    "It is to be handled by {when}; we then tell you the result within {term}."
                ).format(
                    when=_when(milestone, lang, tz),
                    term=format_term(*milestone.result_term, lang),
                ),
            )
        elif milestone.due is not None:
            text = append_note(
                text,
                _("It is to be handled by {when}; we will then tell you the result.").format(
                    when=_when(milestone, lang, tz)
                ),
            )
    elif action == Action.REFUSE:
        text = _("We cannot accept complaint {number}.").format(number=number)
        if milestone.reason:
            text += "\n\n" + _("Reason: {reason}").format(reason=milestone.reason)
        if milestone.guidance:
            text += "\n\n" + _("Where to turn: {guidance}").format(guidance=milestone.guidance)
    elif action == Action.ASSIGN:
        if milestone.department and milestone.department_is_target:
            text = _(
                "Your complaint {number} is being followed up: {department}, which it is "
                "about, has been asked to look into it and put it right. We will tell you "
                "the result."
            ).format(number=number, department=milestone.department)
        elif milestone.department:
            text = _("Your complaint {number} has been passed to {department} for handling.")
            text = text.format(number=number, department=milestone.department)
        else:
            text = _("Your complaint {number} has been passed on for handling.").format(
                number=number
            )
    elif action == Action.REQUEST_MATERIAL:
        text = _("To handle complaint {number} we need more from you:").format(number=number)
        text += "\n\n" + (milestone.question or "")
        text += "\n\n" + _(
            "Send it with /supplement. The time limit is paused until we receive it."
        )
    elif action == Action.APPROVE_EXTENSION:
        if milestone.due is not None:
            text = _("The time limit for complaint {number} has been extended to {when}.").format(
                number=number, when=_when(milestone, lang, tz)
            )
        else:
            text = _("The time limit for complaint {number} has been extended.").format(
                number=number
            )
        if milestone.reason:
            text = append_note(text, _("Reason: {reason}").format(reason=milestone.reason))
    elif action == Action.NOTIFY_RESULT:
        text = _("Complaint {number} has been handled. Our reply:").format(number=number)
        text += "\n\n" + (milestone.reply_text or "")
    else:
        return None
    return Outgoing(text, attachments=milestone.attachments)
