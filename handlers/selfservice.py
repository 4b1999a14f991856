"""Self-service for the complainant: status and timeline, supplement, withdraw, dispute.

The person's complaints come from the shell in `DialogContext.my_complaints`; the engine only
lists them and emits commands (Supplement, Withdraw, Dispute) for the shell to carry out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handlers.commands import Dispute, LinkComplaint, Supplement, Withdraw
from handlers.i18n import N_, append_note, format_datetime
from handlers.messages import Choice
from handlers.turn import BACK, DONE, ComplaintSummary, Turn, file_record, menu_choices
from handlers.validators import InvalidInput, normalise_phone, validate_text
from models.numbering import example_number, normalise_number
from models.workflow import State

COMPLAINT = "complaint:"
ACTION_SUPPLEMENT = "act:supplement"
ACTION_WITHDRAW = "act:withdraw"
ACTION_DISPUTE = "act:dispute"
ALL_COMPLAINTS = "status:list"
WITHDRAW_YES = "withdraw:yes"
WITHDRAW_NO = "withdraw:no"
LINK = "status:link"
# Wrong number/phone pairs allowed per linking attempt before it stops (no guessing game).
LINK_TRIES = 3

# Complaints still being worked on: the person may add material or withdraw.
OPEN_STATES = frozenset(
    {
        State.SUBMITTED,
        State.ACCEPTED,
        State.ASSIGNED,
        State.IN_PROGRESS,
        State.WAITING_FOR_COMPLAINANT,
        State.REOPENED,
    }
)
# Complaints with a result the person may contest.
DISPUTABLE_STATES = frozenset(
    {State.REPLIED, State.REVISIT, State.SUPERVISOR_REVISIT, State.CLOSED}
)

STATE_LABELS: dict[str, str] = {
    State.DRAFT: N_("Draft"),
    State.SUBMITTED: N_("Submitted"),
    State.ACCEPTED: N_("Accepted"),
    State.REFUSED: N_("Not accepted"),
    State.ASSIGNED: N_("Assigned"),
    State.IN_PROGRESS: N_("In progress"),
    State.WAITING_FOR_COMPLAINANT: N_("Waiting for your material"),
    State.RESOLVED: N_("Resolved"),
    State.REPLIED: N_("Replied"),
    State.REVISIT: N_("Follow-up visit"),
    State.SUPERVISOR_REVISIT: N_("Supervisor follow-up"),
    State.CLOSED: N_("Closed"),
    State.REOPENED: N_("Reopened"),
    State.WITHDRAWN: N_("Withdrawn"),
    State.ARCHIVED: N_("Archived"),
}


def state_label(turn_or_gettext: Turn | Callable[[str], str], state: str) -> str:
    _ = turn_or_gettext._ if isinstance(turn_or_gettext, Turn) else turn_or_gettext
    return _(STATE_LABELS[state]) if state in STATE_LABELS else state


def _complaint(turn: Turn, number: str | None) -> ComplaintSummary | None:
    return next((c for c in turn.ctx.my_complaints if c.number == number), None)


def _deadline_line(turn: Turn, complaint: ComplaintSummary) -> str | None:
    _ = turn._
    if complaint.next_deadline is None:
        return None
    when = format_datetime(complaint.next_deadline, turn.lang, turn.ctx.tz)
    line = _("Next deadline: {when}").format(when=when)
    if complaint.provisional:
        note = _("(provisional: the official holiday calendar for that year is not out yet)")
        line = append_note(line, note)
    return line


def _complaint_choices(turn: Turn, complaints: list[ComplaintSummary]) -> list[Choice]:
    return [
        Choice(COMPLAINT + c.number, f"{c.number} · {state_label(turn, c.state)}")
        for c in complaints
    ]


def _leave(turn: Turn, text: str) -> None:
    turn.reset()
    turn.say(text, menu_choices(turn._))


# ---------------------------------------------------------------- status


def start_status(turn: Turn, prefix: str | None = None) -> None:
    _ = turn._
    complaints = list(turn.ctx.my_complaints)
    turn.reset()
    turn.go("status", "list")
    if not complaints:
        text = _(
            "You have not filed any complaint yet. If you made one by phone, at the window or "
            "by letter, you can follow it here: choose the button below."
        )
        turn.say(f"{prefix}\n\n{text}" if prefix else text, _list_choices(turn, complaints))
        return
    lines = [_("Your complaints:")]
    for c in complaints:
        line = f"{c.number} · {c.category_label} · {state_label(turn, c.state)}"
        deadline = _deadline_line(turn, c)
        lines.append(f"{line}\n  {deadline}" if deadline else line)
    lines.append(_("Choose one to see its details."))
    text = "\n".join(lines)
    turn.say(f"{prefix}\n\n{text}" if prefix else text, _list_choices(turn, complaints))


def _list_choices(turn: Turn, complaints: list[ComplaintSummary]) -> list[Choice]:
    link = Choice(LINK, turn._("Follow a complaint made by phone, at the window or by letter"))
    return [*_complaint_choices(turn, complaints), link, *turn.nav(back=False)]


def _detail_choices(turn: Turn, complaint: ComplaintSummary) -> list[Choice]:
    _ = turn._
    choices = []
    if complaint.state in OPEN_STATES:
        choices.append(Choice(ACTION_SUPPLEMENT, _("Add information")))
        choices.append(Choice(ACTION_WITHDRAW, _("Withdraw")))
    if complaint.state in DISPUTABLE_STATES:
        choices.append(Choice(ACTION_DISPUTE, _("Dispute the result")))
    choices.append(Choice(ALL_COMPLAINTS, _("All my complaints")))
    return choices + turn.nav(back=False)


def show_detail(turn: Turn, complaint: ComplaintSummary, prefix: str | None = None) -> None:
    _ = turn._
    turn.go("status", "detail")
    turn.state.scratch = {"number": complaint.number}
    lines = [
        _("Complaint {number}").format(number=complaint.number),
        _("Category: {category}").format(category=complaint.category_label),
        _("State: {state}").format(state=state_label(turn, complaint.state)),
        _("Submitted: {when}").format(
            when=format_datetime(complaint.submitted_at, turn.lang, turn.ctx.tz)
        ),
    ]
    deadline = _deadline_line(turn, complaint)
    if deadline:
        lines.append(deadline)
    if complaint.timeline:
        lines.append(_("History:"))
        for when, what in complaint.timeline:
            lines.append(f"• {format_datetime(when, turn.lang, turn.ctx.tz)}  {what}")
    text = "\n".join(lines)
    turn.say(f"{prefix}\n\n{text}" if prefix else text, _detail_choices(turn, complaint))


def _handle_status(turn: Turn) -> None:
    _ = turn._
    if turn.state.step == "detail":
        complaint = _complaint(turn, turn.state.scratch.get("number"))
        if complaint is None:
            start_status(turn)
            return
        offered = _detail_choices(turn, complaint)
        picked = turn.picked(offered)
        if turn.nav_intent(offered) == BACK or picked == ALL_COMPLAINTS:
            start_status(turn)
        elif picked == ACTION_SUPPLEMENT:
            start_supplement(turn, complaint.number)
        elif picked == ACTION_WITHDRAW:
            start_withdraw(turn, complaint.number)
        elif picked == ACTION_DISPUTE:
            start_dispute(turn, complaint.number)
        else:
            show_detail(turn, complaint, _("Please choose one of the options."))
        return
    complaints = list(turn.ctx.my_complaints)
    offered = _list_choices(turn, complaints)
    picked = turn.picked(offered)
    if picked == LINK:
        start_link(turn)
        return
    complaint = _complaint(turn, picked.removeprefix(COMPLAINT)) if picked else None
    if complaint is None:
        start_status(turn, _("Please choose one of your complaints."))
    else:
        show_detail(turn, complaint)


# ---------------------------------------------------------------- choosing a complaint


def _eligible(turn: Turn, flow: str) -> list[ComplaintSummary]:
    states = DISPUTABLE_STATES if flow == "dispute" else OPEN_STATES
    return [c for c in turn.ctx.my_complaints if c.state in states]


def _choose(turn: Turn, flow: str, prefix: str | None = None) -> None:
    """Ask which complaint an action is for (only those the action applies to)."""
    _ = turn._
    complaints = _eligible(turn, flow)
    if not complaints:
        none = {
            "supplement": _("You have no open complaint to add information to."),
            "withdraw": _("You have no open complaint to withdraw."),
            "dispute": _("You have no complaint with a result to dispute."),
        }
        _leave(turn, none[flow])
        return
    turn.reset()
    turn.go(flow, "choose")
    question = {
        "supplement": _("Which complaint do you want to add information to?"),
        "withdraw": _("Which complaint do you want to withdraw?"),
        "dispute": _("Which complaint's result do you dispute?"),
    }[flow]
    text = f"{prefix}\n\n{question}" if prefix else question
    turn.say(text, _complaint_choices(turn, complaints) + turn.nav(back=False))


def _handle_choose(turn: Turn, flow: str) -> str | None:
    """The number picked at a "choose" step, or None after re-asking."""
    offered = _complaint_choices(turn, _eligible(turn, flow)) + turn.nav(back=False)
    picked = turn.picked(offered)
    if picked is None or not picked.startswith(COMPLAINT):
        _choose(turn, flow, turn._("Please choose one of the complaints listed."))
        return None
    return picked.removeprefix(COMPLAINT)


# ---------------------------------------------------------------- supplement


def start_supplement(turn: Turn, number: str | None = None) -> None:
    if number is None:
        _choose(turn, "supplement")
        return
    turn.reset()
    turn.go("supplement", "collect")
    turn.state.scratch = {"number": number, "texts": [], "files": []}
    _prompt_collect(turn)


def _collect_choices(turn: Turn) -> list[Choice]:
    return [Choice(DONE, turn._("Done")), *turn.nav()]


def _prompt_collect(turn: Turn, prefix: str | None = None) -> None:
    _ = turn._
    text = _(
        "Send the additional information for complaint {number}: text and/or photos "
        "(up to {count}). Press Done when finished."
    ).format(number=turn.state.scratch["number"], count=turn.ctx.max_photos)
    turn.say(f"{prefix}\n\n{text}" if prefix else text, _collect_choices(turn), ask="photo")


def _handle_supplement(turn: Turn) -> None:
    _ = turn._
    if turn.state.step == "choose":
        number = _handle_choose(turn, "supplement")
        if number is not None:
            start_supplement(turn, number)
        return
    scratch = turn.state.scratch
    message = turn.incoming
    intent = turn.nav_intent(_collect_choices(turn))
    if intent == BACK:
        _choose(turn, "supplement")
        return
    if intent == DONE:
        texts, files = scratch.get("texts") or [], scratch.get("files") or []
        if not texts and not files:
            _prompt_collect(turn, _("Nothing received yet."))
            return
        text = "\n\n".join(texts) if texts else None
        turn.commands.append(Supplement(scratch["number"], text, tuple(files)))
        turn.reset()
        return
    if message.kind == "text" and message.text is not None:
        used = sum(len(t) for t in scratch.get("texts") or [])
        limit = turn.ctx.max_text_length
        try:
            text = validate_text(message.text, max_length=limit)
            if used + len(text) > limit:
                refusal = _(
                    "Together with the text sent before, that makes {length} characters; "
                    "the limit is {limit}. Please send a shorter text, or press Done."
                ).format(length=used + len(text), limit=limit)
                _prompt_collect(turn, refusal)
                return
        except InvalidInput as error:
            if error.reason == "text_too_long":
                refusal = _(
                    "Your text has {length} characters; the limit is {limit}. "
                    "Please shorten it and send it again."
                ).format(**error.params)
                _prompt_collect(turn, refusal)
            else:
                _prompt_collect(turn)
            return
        scratch.setdefault("texts", []).append(text)
        turn.say(_("Text received. Send more, or press Done."), _collect_choices(turn))
        return
    if message.kind in ("photo", "file") and message.file is not None:
        _collect_file(turn, scratch)
        return
    hint = _("Please send text or photos, or press Done.")
    if message.kind == "unsupported":
        hint = _("Sorry, I cannot read that kind of message.") + "\n\n" + hint
    _prompt_collect(turn, hint)


def _collect_file(turn: Turn, scratch: dict[str, Any]) -> None:
    _ = turn._
    file = turn.incoming.file
    assert file is not None
    files: list[dict[str, Any]] = scratch.setdefault("files", [])
    limit_bytes = turn.ctx.max_photo_bytes
    size = file.size if file.size is not None else (len(file.data) if file.data else None)
    if len(files) >= turn.ctx.max_photos:
        refusal = _("You have already sent {count} photos, the most we accept. Press Done.")
        _prompt_collect(turn, refusal.format(count=turn.ctx.max_photos))
        return
    if size is not None and size > limit_bytes:
        mb = 1024 * 1024
        refusal = _(
            "That file is {size} MB; each photo may be at most {limit} MB. "
            "Please send a smaller one."
        ).format(
            size=f"{size / mb:.1f}".removesuffix(".0"),
            limit=f"{limit_bytes / mb:.1f}".removesuffix(".0"),
        )
        _prompt_collect(turn, refusal)
        return
    files.append(file_record(file, size))
    text = _("{count} of at most {max} photos received. Send another, or press Done.")
    turn.say(text.format(count=len(files), max=turn.ctx.max_photos), _collect_choices(turn))


# ---------------------------------------------------------------- withdraw


def _withdraw_choices(turn: Turn) -> list[Choice]:
    _ = turn._
    return [Choice(WITHDRAW_YES, _("Yes, withdraw it")), Choice(WITHDRAW_NO, _("No, keep it"))]


def start_withdraw(turn: Turn, number: str | None = None, prefix: str | None = None) -> None:
    _ = turn._
    if number is None:
        _choose(turn, "withdraw")
        return
    turn.reset()
    turn.go("withdraw", "confirm")
    turn.state.scratch = {"number": number}
    question = _("Withdraw complaint {number}? Handling stops, and this cannot be undone.").format(
        number=number
    )
    turn.say(f"{prefix}\n\n{question}" if prefix else question, _withdraw_choices(turn))


def _handle_withdraw(turn: Turn) -> None:
    _ = turn._
    if turn.state.step == "choose":
        number = _handle_choose(turn, "withdraw")
        if number is not None:
            start_withdraw(turn, number)
        return
    number = turn.state.scratch["number"]
    offered = _withdraw_choices(turn)
    if turn.nav_intent(offered) == BACK:
        _choose(turn, "withdraw")
        return
    picked = turn.picked(offered)
    if picked == WITHDRAW_YES:
        turn.commands.append(Withdraw(number))
        turn.reset()
    elif picked == WITHDRAW_NO:
        _leave(turn, _("Complaint {number} stays open.").format(number=number))
    else:
        start_withdraw(turn, number, _("Please answer yes or no."))


# ---------------------------------------------------------------- dispute


def start_dispute(turn: Turn, number: str | None = None, prefix: str | None = None) -> None:
    _ = turn._
    if number is None:
        _choose(turn, "dispute")
        return
    turn.reset()
    turn.go("dispute", "reason")
    turn.state.scratch = {"number": number}
    question = _(
        "Why do you dispute the result of complaint {number}? "
        "Please explain in a few sentences; it will be looked at again."
    ).format(number=number)
    turn.say(f"{prefix}\n\n{question}" if prefix else question, turn.nav())


def _handle_dispute(turn: Turn) -> None:
    _ = turn._
    if turn.state.step == "choose":
        number = _handle_choose(turn, "dispute")
        if number is not None:
            start_dispute(turn, number)
        return
    number = turn.state.scratch["number"]
    if turn.nav_intent(turn.nav()) == BACK:
        _choose(turn, "dispute")
        return
    message = turn.incoming
    if message.kind != "text" or message.text is None:
        hint = _("Please answer with text.")
        if message.kind == "unsupported":
            hint = _("Sorry, I cannot read that kind of message.") + "\n\n" + hint
        start_dispute(turn, number, hint)
        return
    try:
        reason = validate_text(message.text, min_length=5, max_length=turn.ctx.max_text_length)
    except InvalidInput as error:
        if error.reason == "text_too_long":
            refusal = _(
                "Your text has {length} characters; the limit is {limit}. "
                "Please shorten it and send it again."
            ).format(**error.params)
        else:
            refusal = _(
                "Please write a little more: at least {limit} characters (you sent {length})."
            ).format(length=len(message.text.strip()), limit=5)
        start_dispute(turn, number, refusal)
        return
    turn.commands.append(Dispute(number, reason))
    turn.reset()


# ---------------------------------------------------------------- linking a recorded complaint


def start_link(turn: Turn, prefix: str | None = None, tries: int = 0) -> None:
    """A complaint staff recorded for this person (by phone, at the window, by letter): they
    prove it theirs with its number and the phone number they gave, and then follow it here."""
    _ = turn._
    turn.reset()
    turn.go("link", "number")
    turn.state.scratch = {"tries": tries}
    question = _("Please send the complaint number you were given (for example {example}).")
    question = question.format(example=example_number(turn.profile.numbering.format))
    turn.say(f"{prefix}\n\n{question}" if prefix else question, turn.nav(back=False))


def _ask_link_phone(turn: Turn, prefix: str | None = None) -> None:
    _ = turn._
    turn.go("link", "phone")
    question = _("And the phone number you gave when the complaint was recorded?")
    turn.say(f"{prefix}\n\n{question}" if prefix else question, turn.nav())


def _handle_link(turn: Turn) -> None:
    _ = turn._
    message = turn.incoming
    scratch = turn.state.scratch
    if turn.nav_intent(turn.nav()) == BACK:
        if turn.state.step == "phone":
            start_link(turn, tries=int(scratch.get("tries") or 0))
        else:
            start_status(turn)
        return
    typed = (message.text or "").strip() if message.kind == "text" else ""
    if message.kind == "contact" and message.phone:
        typed = message.phone
    if turn.state.step == "number":
        number = normalise_number(typed)
        if number is None:
            start_link(
                turn,
                _("That is not a complaint number: it looks like {example}.").format(
                    example=example_number(turn.profile.numbering.format)
                ),
                int(scratch.get("tries") or 0),
            )
            return
        scratch["number"] = number
        _ask_link_phone(turn)
        return
    try:
        phone = normalise_phone(typed)
    except InvalidInput:
        _ask_link_phone(
            turn,
            _(
                "That does not look like a phone number. Send a mobile number such as "
                "13812345678 or a landline such as 010-12345678."
            ),
        )
        return
    turn.commands.append(LinkComplaint(scratch["number"], phone, int(scratch.get("tries") or 0)))
    turn.reset()


def render_link_failed(tries: int, _: Callable[[str], str]) -> tuple[str, bool]:
    """The answer to a number and phone that match no recorded complaint, and whether the
    person may try again (a few tries, then they are sent to the desk)."""
    if tries + 1 >= LINK_TRIES:
        return (
            _(
                "We could not find a complaint with that number and phone number. Please "
                "contact the desk that recorded it."
            ),
            False,
        )
    return (
        _("We could not find a complaint with that number and phone number. Please check both."),
        True,
    )


# ---------------------------------------------------------------- dispatch

FLOWS = frozenset({"status", "supplement", "withdraw", "dispute", "link"})


def handle(turn: Turn) -> None:
    match turn.state.flow:
        case "status":
            _handle_status(turn)
        case "supplement":
            _handle_supplement(turn)
        case "withdraw":
            _handle_withdraw(turn)
        case "dispute":
            _handle_dispute(turn)
        case "link":
            _handle_link(turn)


def reprompt(turn: Turn, prefix: str | None = None) -> None:
    """Ask again whatever the self-service flow is waiting for."""
    flow, step = turn.state.flow, turn.state.step
    number = turn.state.scratch.get("number")
    if flow == "link":
        if step == "phone":
            _ask_link_phone(turn, prefix)
        else:
            start_link(turn, prefix, int(turn.state.scratch.get("tries") or 0))
        return
    if step == "choose" or (flow != "status" and number is None):
        _choose(turn, flow, prefix)
    elif flow == "status":
        complaint = _complaint(turn, number) if step == "detail" else None
        if complaint is not None:
            show_detail(turn, complaint, prefix)
        else:
            start_status(turn, prefix)
    elif flow == "supplement":
        _prompt_collect(turn, prefix)
    elif flow == "withdraw":
        start_withdraw(turn, number, prefix)
    else:
        start_dispute(turn, number, prefix)
