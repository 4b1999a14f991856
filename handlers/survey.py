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

from dataclasses import dataclass, field
from typing import Literal

from handlers.messages import Choice, Outgoing
from handlers.validators import small_int

PREFIX = "sv"
SCORES = range(0, 11)
MAX_COMMENT = 1000

_TEXTS: dict[str, dict[str, str]] = {
    "invite": {
        "zh_CN": "您的投诉 {number} 已办结，请您评价：对处理结果的满意程度"
        "（0 最不满意，10 最满意）？",
        "zh_TW": "您的投訴 {number} 已辦結，請您評價：對處理結果的滿意程度"
        "（0 最不滿意，10 最滿意）？",
        "en": (
            "Your complaint {number} has been dealt with. How satisfied are you with the "
            "result? (0 = not at all, 10 = fully)"
        ),
    },
    "remind": {
        "zh_CN": "提醒：我们仍期待您对投诉 {number} 处理结果的评价（0–10）。",
        "zh_TW": "提醒：我們仍期待您對投訴 {number} 處理結果的評價（0–10）。",
        "en": "A reminder: please rate the result of complaint {number} (0–10).",
    },
    "attitude": {
        "zh_CN": "对工作人员服务态度的满意程度（0–10）？",
        "zh_TW": "對工作人員服務態度的滿意程度（0–10）？",
        "en": "How satisfied are you with the staff's attitude? (0–10)",
    },
    "comment": {
        "zh_CN": "感谢您的评价！如有其他意见，请直接输入；没有请点击“无意见”。",
        "zh_TW": "感謝您的評價！如有其他意見，請直接輸入；沒有請點擊「無意見」。",
        "en": "Thank you! If you want to add a comment, type it now; otherwise press 'No comment'.",
    },
    "no_comment": {"zh_CN": "无意见", "zh_TW": "無意見", "en": "No comment"},
    "thanks": {
        "zh_CN": "感谢您的评价，我们会继续改进工作。",
        "zh_TW": "感謝您的評價，我們會繼續改進工作。",
        "en": "Thank you for your feedback.",
    },
    "comment_saved": {
        "zh_CN": "您的意见已记录，谢谢！",
        "zh_TW": "您的意見已記錄，謝謝！",
        "en": "Your comment has been recorded. Thank you!",
    },
    "not_open": {
        "zh_CN": "该回访已结束，无需再评价。如对处理结果有异议，可发送 /dispute。",
        "zh_TW": "該回訪已結束，無需再評價。如對處理結果有異議，可傳送 /dispute。",
        "en": "This survey is closed. To dispute the result, send /dispute.",
    },
    "already_answered": {
        "zh_CN": "您已评价过，谢谢！",
        "zh_TW": "您已評價過，謝謝！",
        "en": "You have already answered this survey. Thank you!",
    },
    # After an unsatisfied answer: what happens next (R19: "很抱歉…服务质量监督员将在7天内给您
    # 回访").
    "reopened": {
        "zh_CN": "很抱歉未能让您满意。您的投诉 {number} 已重新开启，将重新调查核实，"
        "处理结果会在这里告知您。",
        "zh_TW": "很抱歉未能讓您滿意。您的投訴 {number} 已重新開啟，將重新調查核實，"
        "處理結果會在這裡告知您。",
        "en": (
            "We are sorry the result did not satisfy you. Complaint {number} has been reopened "
            "for re-investigation; you will hear the result here."
        ),
    },
    "supervisor_revisit": {
        "zh_CN": "很抱歉未能让您满意。服务质量监督员将在 {due} 前给您回访，了解您的意见。",
        "zh_TW": "很抱歉未能讓您滿意。服務品質監督員將在 {due} 前給您回訪，了解您的意見。",
        "en": (
            "We are sorry the result did not satisfy you. A service quality supervisor will "
            "call you back by {due} to hear your views."
        ),
    },
    "comment_too_long": {
        "zh_CN": "意见过长，请控制在 {limit} 字以内。",
        "zh_TW": "意見過長，請控制在 {limit} 字以內。",
        "en": "That comment is too long; please keep it under {limit} characters.",
    },
}


def _t(key: str, lang: str, **values: object) -> str:
    texts = _TEXTS[key]
    return (texts.get(lang) or texts["zh_CN"]).format(**values)


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
