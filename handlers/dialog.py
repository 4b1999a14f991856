"""The citizen dialog engine: one pure function from (state, message, context) to the answer.

    handle(state, incoming, ctx) -> DialogResult(state, replies, commands)

No database, no I/O, no platform: the shell loads the state and the person's complaints, calls
`handle`, stores the new state, carries out the commands (SubmitComplaint, Supplement, Withdraw,
Dispute, SetLanguage) in the same transaction, and then tells the person the outcome with the
`render_*` functions below.

The shell, per incoming message (in one transaction):

    state = DialogState.from_json(row.state) if row else None
    ctx = DialogContext.from_settings(settings, profile, now, my_complaints=summaries)
    result = handle(state, incoming, ctx)
    replies = list(result.replies)
    for command in result.commands:
        SubmitComplaint -> file it; replies += render_submitted(number, due, provisional, lang, tz)
        Supplement      -> add it;  replies += render_supplemented(number, resumed, lang)
        Withdraw        -> replies += render_withdrawn(number, lang)
        Dispute         -> replies += render_disputed(number, lang)
        SetLanguage     -> remember the person's language (the replies are already in it)
        refused/failed  -> replies += render_command_failed(reason, lang)
    row.state = result.state.to_json()

`lang` is `result.state.language`. The engine itself sends no confirmation for a command, so a
failed command never contradicts an earlier "done".

Global behaviour lives here (commands, cancel, language, help, idle expiry); filing a complaint
is handlers.intake, the complainant's own complaints are handlers.selfservice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from handlers import intake, lookup, selfservice
from handlers.commands import SetLanguage
from handlers.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    append_note,
    format_date,
    format_datetime,
    format_month_day,
    format_term,
    normalise_language,
    supported,
    translator,
)
from handlers.messages import Choice, Incoming, Outgoing
from handlers.turn import (
    CANCEL,
    DRAFT_FLOWS,
    MENU_HELP,
    MENU_LANG,
    MENU_NEW,
    MENU_STATUS,
    ComplaintSummary,
    DialogContext,
    DialogResult,
    DialogState,
    Turn,
    menu_choices,
)

__all__ = [
    "COMMANDS",
    "ComplaintSummary",
    "DialogContext",
    "DialogResult",
    "DialogState",
    "expects_files",
    "handle",
    "render_command_failed",
    "render_disputed",
    "render_file_unavailable",
    "render_menu",
    "render_refusal",
    "render_submitted",
    "render_supplemented",
    "render_withdrawn",
]

LANGUAGE = "lang:"
SELF_SERVICE_COMMANDS = ("status", "supplement", "withdraw", "dispute")
# Every command the citizen bot understands (for setMyCommands and the help text).
COMMANDS = (
    "start", "status", "supplement", "withdraw", "dispute", "lang", "help", "back", "cancel",
)  # fmt: skip


def handle(state: DialogState | None, incoming: Incoming, ctx: DialogContext) -> DialogResult:
    """Answer one incoming message. Pure: the same inputs always give the same result."""
    working = state.copy() if state is not None else DialogState()
    if working.language is None:
        working.language = normalise_language(incoming.language) or supported(ctx.language_default)
    turn = Turn(working, incoming, ctx)
    if _expired(working, ctx):
        was_drafting = working.flow in DRAFT_FLOWS
        turn.reset()
        if was_drafting:
            minutes = int(ctx.idle_timeout.total_seconds() // 60)
            turn.say(
                turn._(
                    "Your unfinished complaint expired after {minutes} minutes without activity "
                    "and was discarded. Please start again."
                ).format(minutes=minutes),
                remove_keyboard=True,
            )
    _dispatch(turn)
    working.updated_at = ctx.now.isoformat()
    return DialogResult(state=working, replies=turn.replies, commands=turn.commands)


def _expired(state: DialogState, ctx: DialogContext) -> bool:
    last = state.last_active()
    return state.flow != "idle" and last is not None and ctx.now - last > ctx.idle_timeout


def _dispatch(turn: Turn) -> None:
    message = turn.incoming
    language_question = turn.state.scratch.pop("_asked_language", False)
    if message.kind == "command":
        _command(turn, (message.command or "").lower(), message.command_args.strip())
        return
    if message.kind == "choice" and message.choice:
        if message.choice.startswith(LANGUAGE):
            _set_language(turn, message.choice.removeprefix(LANGUAGE))
            return
        if message.choice.startswith("menu:") and turn.state.flow != "idle":
            _menu(turn, message.choice)
            return
    if language_question and message.kind == "text":
        picked = turn.picked(_language_choices())
        if picked:
            _set_language(turn, picked.removeprefix(LANGUAGE))
            return
    if turn.nav_intent() == CANCEL:
        _cancel(turn)
        return
    _in_flow(turn)


def _in_flow(turn: Turn) -> None:
    flow = turn.state.flow
    if flow == intake.SCREENING:
        intake.handle_screening(turn)
    elif flow in ("intake", "edit"):
        intake.handle_step(turn)
    elif flow == "summary":
        intake.handle_summary(turn)
    elif flow in selfservice.FLOWS:
        selfservice.handle(turn)
    elif flow in lookup.FLOWS:
        lookup.handle(turn)
    else:
        turn.reset()  # idle, or a flow an older version stored
        _idle(turn)


def _command(turn: Turn, command: str, args: str) -> None:
    _ = turn._
    if command in ("start", "new"):
        if _busy_drafting(turn):
            return
        intake.start(turn, args or None)
    elif command in SELF_SERVICE_COMMANDS:
        if _busy_drafting(turn):
            return
        _self_service(turn, command)
    elif command in lookup.COMMANDS:
        if _busy_drafting(turn):
            return
        lookup.start(turn, args)
    elif command in ("lang", "language"):
        _ask_language(turn)
    elif command == "help":
        _reprompt(turn, _help_text(turn))
    elif command == "cancel":
        _cancel(turn)
    elif command in ("back", "skip", "done"):
        if turn.state.flow == "idle":
            _reprompt(turn, _("There is nothing to go back to."))
        else:
            _in_flow(turn)  # each flow reads /back, /skip and /done through nav_intent
    else:
        unknown = _("Unknown command /{command}.").format(command=command)
        _reprompt(turn, unknown + "\n" + _commands_list(turn))


def _busy_drafting(turn: Turn) -> bool:
    """Starting something else mid-draft would lose it; say so and keep the draft."""
    if turn.state.flow not in DRAFT_FLOWS:
        return False
    _reprompt(
        turn,
        turn._(
            "You are in the middle of filing a complaint. Continue below, "
            "or send /cancel to discard it first."
        ),
    )
    return True


def _self_service(turn: Turn, command: str) -> None:
    if command == "status":
        selfservice.start_status(turn)
    elif command == "supplement":
        selfservice.start_supplement(turn)
    elif command == "withdraw":
        selfservice.start_withdraw(turn)
    else:
        selfservice.start_dispute(turn)


def _menu(turn: Turn, choice: str) -> None:
    if choice == MENU_NEW:
        if not _busy_drafting(turn):
            intake.start(turn)
    elif choice == MENU_STATUS:
        if not _busy_drafting(turn):
            selfservice.start_status(turn)
    elif choice == MENU_LANG:
        _ask_language(turn)
    elif choice == MENU_HELP:
        _reprompt(turn, _help_text(turn))
    else:
        _reprompt(turn)


def _idle(turn: Turn) -> None:
    _ = turn._
    offered = menu_choices(_)
    picked = turn.picked(offered)
    if picked is not None:
        _menu(turn, picked)
        return
    if turn.incoming.kind == "text" and (turn.incoming.text or "").strip() in lookup.WORDS:
        lookup.start(turn)
        return
    if turn.incoming.kind == "unsupported":
        _reprompt(turn, _("Sorry, I cannot read that kind of message."))
    else:
        _reprompt(turn)


def _cancel(turn: Turn) -> None:
    _ = turn._
    flow = turn.state.flow
    turn.reset()
    if flow in DRAFT_FLOWS:
        text = _("Cancelled. Your draft complaint was discarded.")
    elif flow == "idle":
        text = _("There is nothing to cancel.")
    else:
        text = _("OK, stopped.")
    question = _("What would you like to do?")
    turn.say(f"{text}\n\n{question}", menu_choices(_), remove_keyboard=True)


def _reprompt(turn: Turn, prefix: str | None = None) -> None:
    """Repeat what the current flow is waiting for, after `prefix`."""
    flow = turn.state.flow
    if flow in DRAFT_FLOWS:
        intake.reprompt(turn, prefix)
    elif flow in selfservice.FLOWS:
        selfservice.reprompt(turn, prefix)
    elif flow in lookup.FLOWS:
        lookup.reprompt(turn, prefix)
    else:
        question = turn._("What would you like to do?")
        turn.say(f"{prefix}\n\n{question}" if prefix else question, menu_choices(turn._))


# ---------------------------------------------------------------- language and help


def _language_choices() -> list[Choice]:
    return [Choice(LANGUAGE + code, LANGUAGE_NAMES[code]) for code in LANGUAGES]


def _ask_language(turn: Turn) -> None:
    """Offer the languages; the current flow goes on unchanged after the choice."""
    turn.state.scratch["_asked_language"] = True
    turn.say("语言 / 語言 / Language", _language_choices())


def _set_language(turn: Turn, code: str) -> None:
    if code not in LANGUAGES:
        _reprompt(turn)
        return
    turn.state.language = code
    turn.commands.append(SetLanguage(code))
    confirmation = turn._("Language: {language}.").format(language=LANGUAGE_NAMES[code])
    _reprompt(turn, confirmation)


def _commands_list(turn: Turn) -> str:
    _ = turn._
    return "\n".join(
        [
            _("Commands:"),
            "/start – " + _("file a new complaint"),
            "/status – " + _("your complaints and their progress"),
            "/find – " + _("find a complaint by its number and your phone or code"),
            "/supplement – " + _("add information to an open complaint"),
            "/withdraw – " + _("withdraw a complaint"),
            "/dispute – " + _("dispute the result of a complaint"),
            "/lang – " + _("change the language"),
            "/back – " + _("go back one question"),
            "/cancel – " + _("stop what you are doing"),
            "/help – " + _("this help"),
        ]
    )


def _help_text(turn: Turn) -> str:
    intro = turn._(
        "I take complaints and keep you informed about them. Answer the questions one by one; "
        "you can go back, skip optional questions, and check everything before you submit."
    )
    return intro + "\n\n" + _commands_list(turn)


def command_descriptions(lang: str) -> list[tuple[str, str]]:
    """(command, description) pairs in `lang`, e.g. for Telegram's setMyCommands."""
    _ = translator(lang)
    descriptions = {
        "start": _("file a new complaint"),
        "status": _("your complaints and their progress"),
        "supplement": _("add information to an open complaint"),
        "withdraw": _("withdraw a complaint"),
        "dispute": _("dispute the result of a complaint"),
        "lang": _("change the language"),
        "help": _("this help"),
        "back": _("go back one question"),
        "cancel": _("stop what you are doing"),
    }
    return [(command, descriptions[command]) for command in COMMANDS]


# ---------------------------------------------------------------- outcomes of commands


def render_menu(lang: str) -> list[Outgoing]:
    _ = translator(lang)
    return [Outgoing(_("What would you like to do?"), tuple(menu_choices(_)))]


def _receipt_date(due: datetime, unit: str | None, lang: str, tz: ZoneInfo, now: datetime) -> str:
    """The due date as the receipt shows it: the day for a term in days ("12月7日"), day and
    time for one in hours or minutes; the year only when it is not this year's."""
    local, today = due.astimezone(tz), now.astimezone(tz)
    if unit in ("hours", "minutes"):
        return format_datetime(due, lang, tz)
    return (
        format_month_day(due, lang, tz) if local.year == today.year else format_date(due, lang, tz)
    )


def render_submitted(
    number: str,
    due: datetime | None,
    provisional: bool,
    lang: str,
    tz: ZoneInfo,
    stage: str | None = "acceptance",
    term: tuple[int, str] | None = None,
    now: datetime | None = None,
) -> list[Outgoing]:
    """After SubmitComplaint: the number on a line of its own, then what happens next in plain
    words and by when ("3个工作日内（12月7日前）告知您是否受理").

    `stage` names the promise `due` belongs to (models.actions.complainant_promise): the answer
    whether it is accepted, or the first contact with the complainant; `term` is that stage's
    length (amount, unit) from the profile. Internal targets (a 5-minute dispatch) are never
    presented as an answer, and a deadline that is already due at `now` is not promised.
    """
    _ = translator(lang)
    parts = [
        _("Your complaint has been filed."),
        _("Complaint number:") + "\n" + number,
        _("Please keep this number: you need it to follow your complaint."),
    ]
    meaningful = due is not None and (now is None or due > now + timedelta(minutes=1))
    if due is not None and meaningful and stage in ("acceptance", "first_contact"):
        unit = term[1] if term else None
        if now is not None:
            when = _receipt_date(due, unit, lang, tz, now)
        else:
            when = format_datetime(due, lang, tz)
        within = format_term(*term, lang) if term else None
        if stage == "acceptance" and within:
            answer = _(
                "Next: within {term} (by {when}) we tell you whether we accept the complaint."
            ).format(term=within, when=when)
        elif stage == "acceptance":
            answer = _("Next: by {when} we tell you whether we accept the complaint.").format(
                when=when
            )
        elif within:
            answer = _(
                "Next: the staff on duty have been told; within {term} (by {when}) they "
                "contact you about how it is being handled."
            ).format(term=within, when=when)
        else:
            answer = _(
                "Next: the staff on duty have been told; by {when} they contact you about "
                "how it is being handled."
            ).format(when=when)
        if provisional:
            answer = append_note(
                answer,
                _("(provisional: the official holiday calendar for that year is not out yet)"),
            )
        parts.append(answer)
    else:
        parts.append(
            _(
                "Next: the staff check that it is within our remit and pass it to the "
                "department in charge. We will keep you informed here."
            )
        )
    parts.append(_("Send /status at any time to follow it."))
    return [Outgoing("\n\n".join(parts), tuple(menu_choices(_)), remove_keyboard=True)]


def render_supplemented(number: str, resumed: bool, lang: str) -> list[Outgoing]:
    """After Supplement; `resumed` when the complaint was waiting for this material."""
    _ = translator(lang)
    text = _("Your information was added to complaint {number}.").format(number=number)
    if resumed:
        text = append_note(text, _("Handling continues now that we have it."))
    return [Outgoing(text, tuple(menu_choices(_)))]


def render_withdrawn(number: str, lang: str) -> list[Outgoing]:
    _ = translator(lang)
    text = _("Complaint {number} has been withdrawn.").format(number=number)
    return [Outgoing(text, tuple(menu_choices(_)))]


def render_disputed(number: str, lang: str, supervisor_due: str | None = None) -> list[Outgoing]:
    """The dispute recorded: re-investigation, or (the profile's `disputed_result`) a service
    quality supervisor's revisit by `supervisor_due`."""
    _ = translator(lang)
    if supervisor_due is not None:
        text = _(
            "Your dispute of the result of complaint {number} has been recorded. A service "
            "quality supervisor will contact you by {due} to look at it again."
        ).format(number=number, due=supervisor_due)
        return [Outgoing(text, tuple(menu_choices(_)))]
    text = _(
        "Your dispute of the result of complaint {number} has been recorded; "
        "the matter will be looked at again."
    ).format(number=number)
    return [Outgoing(text, tuple(menu_choices(_)))]


def render_command_failed(reason: str, lang: str) -> list[Outgoing]:
    """When the shell could not carry out a command; `reason` is a short code."""
    _ = translator(lang)
    messages = {
        "not_found": _("That complaint could not be found."),
        "not_allowed": _("That is not possible for this complaint in its current state."),
        "invalid_state": _("That is not possible for this complaint in its current state."),
        "duplicate": _("This has already been done."),
        "too_large": _("That file is too large."),
    }
    text = messages.get(reason, _("Sorry, something went wrong on our side. Please try again."))
    return [Outgoing(text, tuple(menu_choices(_)))]


def render_file_unavailable(lang: str) -> list[Outgoing]:
    """A photo or file the platform would not hand over: the dialog never saw it (its state is
    unchanged), so the person only has to send it again."""
    _ = translator(lang)
    return [Outgoing(_("The photo could not be received. Please send it again."))]


def expects_files(state: DialogState | None, profile: object) -> bool:
    """Whether the dialog in `state` is waiting for photos or files right now: an intake (or
    edit) photos step, or the supplement's collecting step. Channels that store an upload
    before the dialog sees it (the web chat) take files only then."""
    if state is None:
        return False
    if state.flow in ("intake", "edit"):
        steps = intake.form_steps(profile, state.answers)
        return any(step.id == state.step and step.kind == "photos" for step in steps)
    return state.flow == "supplement" and state.step == "collect"


def render_refusal(reason: str, lang: str, **params: object) -> str:
    """One line for a request a channel refused before the dialog saw it (the web chat's
    JSON `detail`); `reason` is a short code."""
    _ = translator(lang)
    texts = {
        "not_expecting_files": _(
            "Files are taken only when the conversation asks for photos. "
            "Please answer the question above first."
        ),
        "session_upload_limit": _(
            "This chat has sent too many files in a short time. Please wait a while and try again."
        ),
        "client_upload_limit": _(
            "Too many files have been sent from your network in a short time. "
            "Please wait a while and try again."
        ),
        "text_too_long": _(
            "Your message has {length} characters; at most {limit} can be sent at once. "
            "Please shorten it."
        ),
        "body_too_large": _("That message is too large to be sent."),
    }
    text = texts.get(reason, _("Sorry, something went wrong on our side. Please try again."))
    return text.format(**params) if params else text
