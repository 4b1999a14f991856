"""The return-visit survey as a conversation: pure, no database, no platform.

The scheduler sends `survey_invitation` (result 0–10 as buttons). Every later step is carried
in the button ids themselves, so a press can be handled by any worker with no stored state:

    sv:<complaint id>:r:<result>               → ask the attitude score (0–10 buttons)
    sv:<complaint id>:a:<result>:<attitude>    → the answer is complete: record it (command),
                                                 then offer an optional comment
    sv:<complaint id>:nc                       → "no comment": just thank them

Only the optional comment is free text: after the attitude press the shell keeps
`awaiting_comment` (the complaint id) in the person's dialog state and passes their next text
to `handle_survey_comment`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from handlers.i18n import N_, pick_label, translator
from handlers.messages import Choice, Outgoing
from handlers.validators import small_int

PREFIX = "sv"
SCORES = range(0, 11)
MAX_COMMENT = 1000

_TEXTS: dict[str, str] = {
    "invite": N_(
        "Your complaint {number} has been dealt with. How satisfied are you with the result? "
        "(0 = not at all, 10 = fully)"
    ),
    "remind": N_("A reminder: please rate the result of complaint {number} (0–10)."),
    "attitude": N_("How satisfied are you with the staff's attitude? (0–10)"),
    "comment": N_(
        "Thank you! If you want to add a comment, type it now; otherwise press 'No comment'."
    ),
    "no_comment": N_("No comment"),
    "thanks": N_("Thank you for your feedback."),
    "comment_saved": N_("Your comment has been recorded. Thank you!"),
    "not_open": N_("This survey is closed. To dispute the result, send /dispute."),
    "already_answered": N_("You have already answered this survey. Thank you!"),
    "reopened": N_(
        "We are sorry the result did not satisfy you. Complaint {number} has been reopened "
        "for re-investigation; you will hear the result here."
    ),
    "supervisor_revisit": N_(
        "We are sorry the result did not satisfy you. A service quality supervisor will call "
        "you back by {due} to hear your views."
    ),
    "comment_too_long": N_("That comment is too long; please keep it under {limit} characters."),
}


def _t(key: str, lang: str, **values: object) -> str:
    return translator(lang)(_TEXTS[key]).format(**values)


def _score_choices(prefix: str) -> tuple[Choice, ...]:
    return tuple(Choice(f"{prefix}:{score}", str(score)) for score in SCORES)


def survey_invitation(complaint_id: int, number: str, lang: str) -> Outgoing:
    return Outgoing(_t("invite", lang, number=number), _score_choices(f"{PREFIX}:{complaint_id}:r"))


def survey_reminder(complaint_id: int, number: str, lang: str) -> Outgoing:
    return Outgoing(_t("remind", lang, number=number), _score_choices(f"{PREFIX}:{complaint_id}:r"))


def survey_call_script(message: Outgoing, lang: str) -> str:
    """What staff read out to a complainant without a chat: the invitation (or reminder) the
    chat would show, then the attitude question its next message asks."""
    return f"{message.text}\n{_t('attitude', lang)}"


# -- a return visit by phone: the profile's own script (R19 用语规范) ---------------------------


@dataclass(frozen=True)
class PhoneScript:
    """What the caller says, in order: greeting, the two questions; then one closing, chosen
    by the outcome the survey logic gives (`closing_for`)."""

    greeting: str
    result_question: str
    attitude_question: str
    closings: Mapping[str, str]  # satisfied, neutral, unsatisfied, unsatisfied_final


def phone_script(
    script: Any, lang: str, *, staff_number: str, name: str | None, number: str
) -> PhoneScript:
    """The profile's `revisit.call_script` (config.profiles.CallScript) filled in for one call:
    {staff_number} is the caller's 工号, {name} the complainant's name, {number} the case's."""
    values = {"staff_number": staff_number, "name": name or "", "number": number}

    def line(texts: Mapping[str, str]) -> str:
        return pick_label(texts, lang).format(**values)

    return PhoneScript(
        greeting=line(script.greeting),
        result_question=line(script.result_question),
        attitude_question=line(script.attitude_question),
        closings={
            "satisfied": line(script.closing_satisfied),
            "neutral": line(script.closing_neutral),
            "unsatisfied": line(script.closing_unsatisfied),
            "unsatisfied_final": line(script.closing_unsatisfied_final),
        },
    )


def closing_key(status: str, band: str | None) -> str | None:
    """Which closing fits what `scheduler.survey.record_survey_answer` decided: its status and
    band, never the scores again (the bands are applied in one place). An unsatisfied answer
    that got no supervisor revisit (R19: SP complaints) has the final closing."""
    if status == "supervisor_revisit":
        return "unsatisfied"
    if band == "unsatisfied":
        return "unsatisfied_final"
    return band if band in ("satisfied", "neutral") else None


@dataclass(frozen=True)
class SurveyPress:
    complaint_id: int
    step: Literal["result", "attitude", "no_comment"]
    result: int | None = None
    attitude: int | None = None


def _score(text: str) -> int | None:
    value = small_int(text)
    return value if value in SCORES else None


def parse_survey_choice(choice_id: str) -> SurveyPress | None:
    """The survey button behind `choice_id`, or None for any other (or a forged) id."""
    parts = choice_id.split(":")
    complaint_id = small_int(parts[1], 18) if len(parts) >= 3 and parts[0] == PREFIX else None
    if complaint_id is None:
        return None
    step, values = parts[2], parts[3:]
    scores = [_score(v) for v in values]
    if any(s is None for s in scores):
        return None
    if step == "r" and len(scores) == 1:
        return SurveyPress(complaint_id, "result", scores[0])
    if step == "a" and len(scores) == 2:
        return SurveyPress(complaint_id, "attitude", scores[0], scores[1])
    if step == "nc" and not scores:
        return SurveyPress(complaint_id, "no_comment")
    return None


@dataclass(frozen=True)
class SurveyAnswer:
    """Command for the shell: `scheduler.survey.record_survey_answer(...)`."""

    complaint_id: int
    result_score: int
    attitude_score: int


@dataclass(frozen=True)
class SurveyComment:
    """Command for the shell: `scheduler.survey.add_survey_comment(...)`."""

    complaint_id: int
    comment: str


@dataclass
class SurveyTurn:
    replies: list[Outgoing] = field(default_factory=list)
    commands: list[SurveyAnswer | SurveyComment] = field(default_factory=list)
    # The complaint whose comment the person's next text is (None: not waiting for one).
    awaiting_comment: int | None = None


def handle_survey_choice(choice_id: str, lang: str) -> SurveyTurn | None:
    """One survey button press; None when `choice_id` is not a survey button."""
    press = parse_survey_choice(choice_id)
    if press is None:
        return None
    cid = press.complaint_id
    if press.step == "result":
        return SurveyTurn(
            [Outgoing(_t("attitude", lang), _score_choices(f"{PREFIX}:{cid}:a:{press.result}"))]
        )
    if press.step == "attitude":
        assert press.result is not None and press.attitude is not None
        return SurveyTurn(
            [
                Outgoing(
                    _t("comment", lang),
                    (Choice(f"{PREFIX}:{cid}:nc", _t("no_comment", lang)),),
                )
            ],
            [SurveyAnswer(cid, press.result, press.attitude)],
            awaiting_comment=cid,
        )
    return SurveyTurn([Outgoing(_t("thanks", lang), remove_keyboard=True)])


def render_survey_refused(status: str, lang: str) -> Outgoing:
    """What to answer instead when `record_survey_answer` reports "not_open" (survey closed,
    not yet sent, or not this person's) or "already_answered"; the shell then drops the
    turn's replies and does not wait for a comment."""
    key = "already_answered" if status == "already_answered" else "not_open"
    return Outgoing(_t(key, lang), remove_keyboard=True)


def render_survey_outcome(status: str, number: str, due: str | None, lang: str) -> Outgoing | None:
    """What happens next after an unsatisfied answer (`record_survey_answer`'s status), or None
    when the answer closed the case (the thanks already say it)."""
    if status == "reopened":
        return Outgoing(_t("reopened", lang, number=number))
    if status == "supervisor_revisit":
        return Outgoing(_t("supervisor_revisit", lang, number=number, due=due or ""))
    return None


def handle_survey_comment(complaint_id: int, text: str, lang: str) -> SurveyTurn:
    """The free-text comment after the scores; too long → asked again (still awaiting)."""
    comment = text.strip()
    if len(comment) > MAX_COMMENT:
        return SurveyTurn(
            [Outgoing(_t("comment_too_long", lang, limit=MAX_COMMENT))],
            awaiting_comment=complaint_id,
        )
    if not comment:
        return SurveyTurn([Outgoing(_t("thanks", lang))])
    return SurveyTurn(
        [Outgoing(_t("comment_saved", lang), remove_keyboard=True)],
        [SurveyComment(complaint_id, comment)],
    )
