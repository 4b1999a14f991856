"""Finding a complaint again in any chat: /find (or 查询), its number, then the phone or code.

The engine part is pure: it asks for the number and the proof and emits `FindComplaint`; the
shell (bot.conversation) checks it with models.lookup (rate-limited) and answers with
`render_found` / `render_not_found`. The same sentences serve the web status page (/c/<number>),
so a complainant reads the same thing on every channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from handlers.i18n import N_, Gettext, append_note, format_date, format_datetime, translator
from handlers.messages import Outgoing
from handlers.selfservice import state_label
from handlers.turn import BACK, Turn
from handlers.validators import InvalidInput, normalise_phone
from models.lookup import normalise_code
from models.numbering import example_number, normalise_number

FLOW = "find"
FLOWS = frozenset({FLOW})
# /find in every channel; typed words that start it when nothing else is going on.
COMMANDS = frozenset({"find", "lookup"})
WORDS = frozenset({"查询", "查詢", "查找", "查找投诉", "查找投訴", "find"})

_NUMBER = "number"
_PROOF = "proof"


@dataclass(frozen=True, slots=True)
class FindComplaint:
    """Check that `phone` (normalised) or `code` proves `number` theirs and show the case."""

    number: str
    phone: str | None
    code: str | None


# Stage deadlines in plain words: what the complainant is owed by then.
STAGE_PROMISES: dict[str, str] = {
    "acceptance": N_("by {date}: we tell you whether it is accepted"),
    "first_contact": N_("by {date}: the department in charge contacts you"),
    "resolution": N_("by {date}: handling is finished"),
    "result_notice": N_("by {date}: we tell you the result"),
}
HISTORY_ACTIONS: dict[str, str] = {
    "supplement": N_("You added information"),
    "dispute": N_("You disputed the result"),
    "withdraw": N_("You withdrew the complaint"),
}


def split_proof(typed: str) -> tuple[str | None, str | None]:
    """(phone, code) from what was typed: a phone number, else perhaps an access code."""
    try:
        return normalise_phone(typed), None
    except InvalidInput:
        return None, normalise_code(typed)


def start(turn: Turn, args: str = "") -> None:
    """Ask for the number (or take "/find 202612-0001 13812345678" in one go)."""
    turn.reset()
    parts = args.split(maxsplit=1)
    number = normalise_number(parts[0]) if parts else None
    if number and len(parts) == 2:
        phone, code = split_proof(parts[1])
        if phone or code:
            turn.commands.append(FindComplaint(number, phone, code))
            return
    if number:
        _ask_proof(turn, number)
        return
    _ask_number(turn)


def _ask_number(turn: Turn, prefix: str | None = None) -> None:
    _ = turn._
    turn.go(FLOW, _NUMBER)
    question = _("Find a complaint: please send its number (for example {example}).").format(
        example=example_number(turn.profile.numbering.format)
    )
    turn.say(f"{prefix}\n\n{question}" if prefix else question, turn.nav(back=False))


def _ask_proof(turn: Turn, number: str, prefix: str | None = None) -> None:
    _ = turn._
    turn.go(FLOW, _PROOF)
    turn.state.scratch = {"number": number}
    question = _(
        "And the phone number you gave with complaint {number}, or the access code on its receipt?"
    ).format(number=number)
    turn.say(f"{prefix}\n\n{question}" if prefix else question, turn.nav())


def handle(turn: Turn) -> None:
    _ = turn._
    message = turn.incoming
    typed = (message.text or "").strip() if message.kind == "text" else ""
    if message.kind == "contact" and message.phone:
        typed = message.phone
    if turn.nav_intent(turn.nav()) == BACK:
        _ask_number(turn)
        return
    if turn.state.step != _PROOF:
        number = normalise_number(typed)
        if number is None:
            example = example_number(turn.profile.numbering.format)
            _ask_number(
                turn,
                _("That is not a complaint number: it looks like {example}.").format(
                    example=example
                ),
            )
            return
        _ask_proof(turn, number)
        return
    number = str(turn.state.scratch.get("number") or "")
    phone, code = split_proof(typed)
    if not phone and not code:
        _ask_proof(
            turn,
            number,
            _("That is neither a phone number nor an access code (like K7QM-2XPA)."),
        )
        return
    turn.reset()
    turn.commands.append(FindComplaint(number, phone, code))


def reprompt(turn: Turn, prefix: str | None = None) -> None:
    number = turn.state.scratch.get("number")
    if turn.state.step == _PROOF and number:
        _ask_proof(turn, str(number), prefix)
    else:
        _ask_number(turn, prefix)


# ---------------------------------------------------------------- what is shown


def stage_lines(stages: object, lang: str, tz: ZoneInfo) -> list[str]:
    """One plain sentence per stage deadline the complainant is owed ("12月7日前告知是否受理")."""
    _ = translator(lang)
    lines = []
    for entry in stages:  # type: ignore[attr-defined]
        template = STAGE_PROMISES.get(entry.stage)
        if template is None:
            continue
        line = _(template).format(date=format_date(entry.due, lang, tz))
        if entry.paused:
            line = append_note(line, _("(paused until your material arrives)"))
        elif entry.done:
            line = append_note(line, _("(done)"))
        elif entry.provisional:
            line = append_note(line, _("(provisional)"))
        lines.append(line)
    return lines


def history_lines(history: object, lang: str, tz: ZoneInfo) -> list[str]:
    _ = translator(lang)
    lines = []
    for entry in history:  # type: ignore[attr-defined]
        what = HISTORY_ACTIONS.get(entry.action) if entry.by_complainant else None
        if what is None:
            what = state_label(_, entry.to_state or "")
        else:
            what = _(what)
        line = f"{format_datetime(entry.at, lang, tz)}  {what}"
        if entry.said:
            line += "\n" + _("We asked: {question}").format(question=entry.said)
        lines.append(line)
    return lines


def status_heading(number: str, state: str, _: Gettext) -> str:
    return _("Complaint {number} · {state}").format(number=number, state=state_label(_, state))


def render_found(view: object, lang: str, tz: ZoneInfo, link: str) -> list[Outgoing]:
    """The case after the check passed: state, deadlines, history and the reply."""
    _ = translator(lang)
    public = view.public  # type: ignore[attr-defined]
    parts = [status_heading(public.number, public.state, _)]
    stages = stage_lines(public.stages, lang, tz)
    if stages:
        parts.append("\n".join("· " + line for line in stages))
    history = history_lines(view.history, lang, tz)  # type: ignore[attr-defined]
    if history:
        parts.append(_("History:") + "\n" + "\n".join(history))
    if view.reply_text:  # type: ignore[attr-defined]
        parts.append(_("Reply:") + "\n" + view.reply_text)  # type: ignore[attr-defined]
    parts.append(_("Progress page: {link}").format(link=link))
    return [Outgoing("\n\n".join(parts))]


def render_not_found(lang: str) -> list[Outgoing]:
    _ = translator(lang)
    return [
        Outgoing(
            _(
                "We could not find a complaint with that number and phone number or code. "
                "Please check both; send /find to try again."
            )
        )
    ]


def render_limited(lang: str, minutes: int) -> list[Outgoing]:
    _ = translator(lang)
    return [
        Outgoing(
            _("Too many attempts. Please try again in {minutes} minutes.").format(
                minutes=max(1, minutes)
            )
        )
    ]


def render_access(number: str, code: str, link: str, lang: str) -> Outgoing:
    """Added to the receipt: the access code and the progress link, for any other device."""
    _ = translator(lang)
    return Outgoing(
        _(
            "Access code: {code}\n"
            "Progress on any phone or computer: {link}\n"
            "Or send /find with the number {number} and your phone number or this code. Keep "
            "the code: it is shown only once."
        ).format(code=code, link=link, number=number)
    )


def progress_path(number: str, code: str | None = None) -> str:
    return f"/c/{number}?k={code}" if code else f"/c/{number}?k=none"


def progress_link(base: str | None, number: str, code: str | None = None) -> str:
    """The receipt's link: absolute when the public URL is known, else the path."""
    path = progress_path(number, code)
    return (base or "").rstrip("/") + path
