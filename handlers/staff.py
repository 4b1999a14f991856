"""The staff desk dialog, platform-neutral: acting on cases from notification buttons.

    handle(state, incoming, ctx) -> StaffResult(state, replies, commands, shown)

No database and no I/O. The shell (bot/staff_desk.py) loads the staff member, the case their
button or current input refers to (`complaint_in_question`) already masked for them, and their
open cases when a list is wanted (`wants_case_list`); it runs the `StaffAct` commands through
models.actions.act in the same transaction, then tells the staff member the outcome with
`render_done` / `render_refused`.

Every case button carries "cs:<action>:<complaint id>:<case version>" (at most 64 bytes, the
Telegram callback limit). The version counts the case's workflow events, so a button from an
older notification is refused as out of date instead of acting on a case that has moved on.
An action that needs input (a reason, a reply, a department) collects it step by step; the
steps live in the dialog state (flow "staff") so any worker continues them.

Also here: the staff notifications (`render_notification`) and the case card, so what a
staff member reads is written in one place, in their language.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from handlers.i18n import (
    N_,
    Gettext,
    append_note,
    format_datetime,
    format_incident_time,
    format_phone,
    supported,
    translator,
)
from handlers.intake import REQUEST_TYPES
from handlers.messages import Choice, Incoming, Outgoing
from handlers.turn import CANCEL, SKIP, DialogState, file_record
from handlers.validators import InvalidInput, small_int, validate_text
from models.cards import BUTTON_ACTIONS, CaseCard
from models.workflow import Action, Role, State

FLOW = "staff"
CALLBACK_PREFIX = "cs"
PAGE = "cl:page:"
OPEN = "cl:open:"
PICK = "sf:"
NONE = "sf:none"
DONE = "sf:done"
OTHER = "sf:other"
FILES = "sf:files"
MB = 1024 * 1024
PAGE_SIZE = 5
MAX_TEXT = 2000
MAX_EXTENSION_BUTTONS = 10
STALE = "stale"  # refusal code for an out-of-date button

ACTION_LABELS: Mapping[str, str] = {
    Action.ACCEPT: N_("Accept"),
    Action.REFUSE: N_("Refuse"),
    Action.SETTLE_AS_DECIDED: N_("Settle as already decided"),
    Action.ASSIGN: N_("Assign"),
    Action.TRANSFER: N_("Transfer"),
    Action.ADD_CO_HANDLER: N_("Add co-handling department"),
    Action.ACKNOWLEDGE: N_("Acknowledge"),
    Action.REQUEST_MATERIAL: N_("Ask for material"),
    Action.RESUME: N_("Resume handling"),
    Action.REQUEST_EXTENSION: N_("Request extension"),
    Action.APPROVE_EXTENSION: N_("Approve extension"),
    Action.DENY_EXTENSION: N_("Deny extension"),
    Action.ADD_NOTE: N_("Add note"),
    Action.SET_SEVERITY: N_("Raise severity"),
    Action.RECORD_RECALL_DECISION: N_("Record the recall decision"),
    Action.REQUEST_STATEMENT: N_("Ask the respondent for a statement"),
    Action.RECORD_STATEMENT: N_("Record the respondent's statement"),
    Action.WAIVE_STATEMENT: N_("Statement period lapsed"),
    Action.RESOLVE: N_("Resolve"),
    Action.HAND_BACK: N_("Hand back"),
    Action.NOTIFY_RESULT: N_("Tell the result"),
    Action.ISSUE_WRITTEN_REPLY: N_("Issue the written reply"),
    Action.CLOSE: N_("Close the case"),
    Action.REOPEN: N_("Reopen for re-investigation"),
    Action.LINK_REPEAT: N_("Link as a repeat"),
    Action.UNLINK_REPEAT: N_("Unlink the repeat"),
    Action.DECIDE_WITH_GROUP: N_("Decided with its group"),
}

STATE_LABELS: Mapping[str, str] = {
    State.DRAFT: N_("Draft"),
    State.SUBMITTED: N_("Submitted"),
    State.ACCEPTED: N_("Accepted"),
    State.REFUSED: N_("Not accepted"),
    State.ASSIGNED: N_("Assigned"),
    State.IN_PROGRESS: N_("In progress"),
    State.WAITING_FOR_COMPLAINANT: N_("Waiting for the complainant"),
    State.RESOLVED: N_("Resolved"),
    State.REPLIED: N_("Replied"),
    State.REVISIT: N_("Follow-up visit"),
    State.SUPERVISOR_REVISIT: N_("Supervisor follow-up"),
    State.CLOSED: N_("Closed"),
    State.REOPENED: N_("Reopened"),
    State.WITHDRAWN: N_("Withdrawn"),
    State.ARCHIVED: N_("Archived"),
}

STAGE_LABELS: Mapping[str, str] = {
    "acceptance": N_("acceptance"),
    "dispatch": N_("dispatch"),
    "first_contact": N_("first contact"),
    "action_plan": N_("handling plan"),
    "manager_notice": N_("manager notice"),
    "resolution": N_("resolution"),
    "result_notice": N_("result notice"),
    "revisit": N_("revisit"),
    "survey_reminder": N_("survey reminder"),
    "auto_close": N_("closing"),
    "supervisor_revisit": N_("supervisor revisit"),
    "statement": N_("respondent's statement"),
}

UNIT_LABELS: Mapping[str, str] = {
    "minutes": N_("minutes"),
    "hours": N_("hours"),
    "calendar_days": N_("calendar days"),
    "working_days": N_("working days"),
}

REFUSAL_TEXTS: Mapping[str, str] = {
    "role_not_permitted": N_("your role may not do this."),
    "illegal_state": N_("this action is not possible in the case's current status."),
    "not_lead_handler": N_("only the lead handler may do this."),
    "not_assigned": N_("only a handler assigned to the case may do this."),
    "extension_already_pending": N_("an extension request is already awaiting approval."),
    "no_extension_pending": N_("no extension request is pending."),
    "extension_limit_reached": N_("the extension limit has been reached."),
    "own_extension_request": N_("nobody may decide on their own extension request."),
    "written_reply_missing": N_(
        "a written complaint cannot be closed before its written reply is issued."
    ),
    "severity_fixed": N_("this profile does not let staff raise the severity."),
    "not_enabled_by_profile": N_("this profile does not provide for this action."),
    "recall_decision_missing": N_(
        "record first whether the product recall is started (Record the recall decision); "
        "then resolve."
    ),
    "statement_pending": N_(
        "the respondent's statement is awaited: decide once it is recorded or its period has "
        "lapsed."
    ),
    "statement_not_requested": N_(
        "the respondent has the right to state their case before a decision: ask for their "
        "statement first."
    ),
    "statement_already_requested": N_("the respondent's statement has already been asked for."),
    "no_statement_requested": N_("no statement of the respondent is awaited."),
    "not_respondent": N_(
        "only the respondent, or the case's handler on their behalf, may record the statement."
    ),
    STALE: N_("this button is out of date: the case has moved on since it was sent."),
    "not_found": N_("the complaint no longer exists."),
    "invalid": N_("the input was not accepted ({detail})."),
}

INVITE_REFUSALS: Mapping[str, str] = {
    "unknown": N_("This invitation code is not valid. Please check the link you received."),
    "used": N_("This invitation code has already been used. Ask for a new invitation."),
    "expired": N_("This invitation code has expired. Ask for a new invitation."),
    "disabled": N_("This staff account is disabled."),
    "chat_taken": N_("This chat is already linked to another staff account."),
    "unsupported_channel": N_("Staff accounts can only be linked on Telegram or WeChat."),
}

# Notifications that ask one decision offer only its buttons (the approver: approve or deny).
FOCUSED_BUTTONS: Mapping[str, frozenset[str]] = {
    Action.REQUEST_EXTENSION: frozenset({Action.APPROVE_EXTENSION, Action.DENY_EXTENSION}),
}
CHANGED = N_("Complaint {number} has changed.")  # the headline for any other action
# Headlines of staff notifications, by the action that caused them.
HEADLINES: Mapping[str, str] = {
    Action.SUBMIT: N_("New complaint {number} awaits acceptance."),
    Action.ASSIGN: N_("Complaint {number} has been assigned for handling."),
    Action.TRANSFER: N_("Complaint {number} has been transferred to your department."),
    Action.ADD_CO_HANDLER: N_(
        "Your department joins the handling of complaint {number}. Add your findings as "
        "notes; the lead department answers the complainant."
    ),
    Action.SUPPLEMENT: N_(
        "The complainant has supplied material for complaint {number}; handling continues."
    ),
    Action.RESUME: N_("Handling of complaint {number} has resumed."),
    Action.REQUEST_EXTENSION: N_(
        "An extension of {amount} {unit} is requested for complaint {number}. Reason: {reason}"
    ),
    Action.APPROVE_EXTENSION: N_(
        "The extension for complaint {number} was approved. New deadline: {due}. Reason: {reason}"
    ),
    Action.DENY_EXTENSION: N_("The extension for complaint {number} was denied."),
    Action.HAND_BACK: N_("Complaint {number} has been handed back for dispatch. Reason: {reason}"),
    Action.SET_SEVERITY: N_(
        "Complaint {number} has been rated more serious; its deadlines are recounted."
    ),
    Action.REOPEN: N_("Complaint {number} has been reopened for re-investigation."),
    Action.DISPUTE: N_(
        "The complainant disputes the result of complaint {number}; it is reopened."
    ),
    Action.WITHDRAW: N_(
        "The complainant has withdrawn complaint {number}. No further action is needed."
    ),
    Action.REQUEST_STATEMENT: N_(
        "Complaint {number} concerns you. You have the right to state your case and defend "
        "yourself before it is decided: please give your statement by {statement_due}."
    ),
    Action.RECORD_STATEMENT: N_(
        "The respondent's statement on complaint {number} has been recorded; the case may be "
        "decided."
    ),
    Action.WAIVE_STATEMENT: N_(
        "The period for the respondent's statement on complaint {number} ended on "
        "{statement_due} without a statement; the case may be decided."
    ),
}


# -- what the shell provides ------------------------------------------------------------------


@dataclass(frozen=True)
class StaffMember:
    id: int
    name: str
    role: Role
    department_id: int | None
    language: str = "zh_CN"


@dataclass(frozen=True)
class DepartmentOption:
    id: int
    name: str


@dataclass(frozen=True)
class HandlerOption:
    id: int
    name: str
    department_id: int


@dataclass(frozen=True)
class StaffContext:
    profile: Any  # config.profiles.Profile
    now: datetime
    me: StaffMember
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    case: CaseCard | None = None  # the complaint in question (see complaint_in_question)
    departments: Sequence[DepartmentOption] = ()
    handlers: Sequence[HandlerOption] = ()  # active handlers and heads, with their departments
    my_cases: Sequence[CaseCard] = ()  # open cases, most urgent first (see wants_case_list)
    page_size: int = PAGE_SIZE
    max_files: int = 6  # photos or documents a handler may attach to one result
    max_file_bytes: int = 10 * MB


@dataclass(frozen=True)
class StaffAct:
    """Run `action` on the complaint through models.actions.act as this staff member.

    `expected_version` set: refuse as stale unless the case is still at that version.
    """

    complaint_id: int
    action: str
    payload: dict[str, Any]
    expected_version: int | None


@dataclass
class StaffResult:
    state: DialogState
    replies: list[Outgoing]
    commands: list[StaffAct]
    shown: list[int] = field(default_factory=list)  # complaint ids whose card was shown


# -- callback data ----------------------------------------------------------------------------


def action_callback(action: str, complaint_id: int, version: int) -> str:
    data = f"{CALLBACK_PREFIX}:{action}:{complaint_id}:{version}"
    if len(data.encode()) > 64:  # Telegram's callback_data limit; cannot happen with int ids
        raise ValueError(f"callback data too long: {data!r}")
    return data


def parse_action_callback(data: str | None) -> tuple[Action, int, int] | None:
    if not data or not data.startswith(CALLBACK_PREFIX + ":"):
        return None
    parts = data.split(":")
    if len(parts) != 4:
        return None
    try:
        return Action(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None


def case_buttons(card: CaseCard, lang: str) -> tuple[Choice, ...]:
    _ = translator(lang)
    return tuple(
        Choice(action_callback(a, card.id, card.version), _(ACTION_LABELS[a]))
        for a in card.actions
        if a in ACTION_LABELS
    )


def complaint_in_question(state: DialogState | None, incoming: Incoming) -> int | None:
    """The complaint the shell must load (as `ctx.case`) for this message, if any."""
    if incoming.kind == "choice" and incoming.choice:
        parsed = parse_action_callback(incoming.choice)
        if parsed is not None:
            return parsed[1]
        if incoming.choice.startswith(OPEN):
            try:
                return int(incoming.choice.removeprefix(OPEN))
            except ValueError:
                return None
    if state is not None and state.flow == FLOW and state.step:
        value = state.scratch.get("complaint_id")
        return int(value) if value is not None else None
    return None


def wants_case_list(incoming: Incoming) -> bool:
    """Whether the shell must load `ctx.my_cases` for this message."""
    if incoming.kind == "command":
        return incoming.command == "cases"
    return incoming.kind == "choice" and bool(incoming.choice) and incoming.choice.startswith(PAGE)


# -- rendering --------------------------------------------------------------------------------


def state_label(state: str, lang: str) -> str:
    return translator(lang)(STATE_LABELS.get(state, state))


CHANNEL_LABELS: Mapping[str, str] = {
    "web": N_("web chat"),
    "telegram": N_("Telegram"),
    "wechat": N_("WeChat"),
    # Recorded on the desk for someone (handlers.desk_form.CHANNELS).
    "phone": N_("By phone"),
    "visit": N_("In person at the window"),
    "letter": N_("By letter"),
    "email": N_("By e-mail"),
}


def channel_label(channel: str | None, lang: str) -> str:
    return translator(lang)(CHANNEL_LABELS.get(channel or "", channel or ""))


def request_label(request_type: str | None, request_text: str | None, lang: str) -> str:
    """The complainant's request: the kind chosen and the words added, as one line."""
    parts = []
    if request_type:
        parts.append(translator(lang)(REQUEST_TYPES.get(request_type, request_type)))
    if request_text and request_text.strip():
        parts.append(request_text.strip())
    return " · ".join(parts)


def stage_label(stage: str | None, lang: str) -> str:
    return translator(lang)(STAGE_LABELS.get(stage or "", stage or ""))


def action_label(action: str, lang: str) -> str:
    return translator(lang)(ACTION_LABELS.get(action, action))


def unit_label(unit: str, lang: str) -> str:
    return translator(lang)(UNIT_LABELS.get(unit, unit))


def render_card(card: CaseCard, lang: str, tz: ZoneInfo) -> str:
    """The case as a staff member reads it: what, about whom, by whom, by when."""
    _ = translator(lang)
    lines = [
        _("Complaint {number}").format(number=card.number),
        _("Status: {state}").format(state=state_label(card.state, lang)),
    ]
    if card.category_label:
        kind = card.category_label
        if card.subcategory_label:
            kind = f"{kind} · {card.subcategory_label}"
        if card.severity_label:
            kind = f"{kind} · {card.severity_label}"
        lines.append(_("Category: {category}").format(category=kind))
    else:
        lines.append(_("Category: not set"))
    if card.target:
        lines.append(_("About: {target}").format(target=card.target))
    if card.anonymous:
        lines.append(_("Complainant: anonymous"))
    else:
        phone = card.complainant_phone
        phone = format_phone(phone, lang) if phone and phone != "***" else phone
        who = " ".join(v for v in (card.complainant_name, phone) if v)
        if who:
            lines.append(_("Complainant: {who}").format(who=who))
    if card.complainant_unreachable:
        lines.append(_("Complainant unreachable on their channel: contact them another way."))
    if card.facts:
        lines.append(_("Facts: {facts}").format(facts=card.facts))
    if card.screening == "staff":
        lines.append(
            _(
                "Screening: the complainant was not sure this belongs here. Accept it, or "
                "refuse it with the reason and where to turn instead."
            )
        )
    if card.incident_at is not None:
        when = format_incident_time(card.incident_at, card.incident_precision, lang, tz)
        lines.append(_("When it happened: {when}").format(when=when))
    elif card.incident_precision == "unknown":
        lines.append(_("When it happened: the complainant cannot remember exactly"))
    if card.place:
        lines.append(_("Place: {place}").format(place=card.place))
    request = request_label(card.request_type, card.request_text, lang)
    if request:
        lines.append(_("Request: {request}").format(request=request))
    if card.witnesses:
        lines.append(_("Evidence or witnesses: {witnesses}").format(witnesses=card.witnesses))
    if card.channel:
        channel = channel_label(card.channel, lang)
        if card.written:
            channel = append_note(channel, _("(written complaint)"))
        lines.append(_("Received via: {channel}").format(channel=channel))
    if card.photos:
        lines.append(_("Photos and files: {count}").format(count=card.photos))
    if card.repeat_of:
        lines.append(_("Repeat complaint: see {number}").format(number=card.repeat_of))
    if card.group_id is not None:
        if card.group_status == "confirmed":
            group = _("Mass matter: one of {n} complaints, decided together (group {id})")
        else:
            group = _("Possible mass matter: one of {n} complaints (group {id}, to confirm)")
        lines.append(group.format(n=card.group_size, id=card.group_id))
    if card.lead_department:
        lines.append(_("Lead department: {name}").format(name=card.lead_department))
    if card.co_departments:
        lines.append(_("Co-handling: {names}").format(names=", ".join(card.co_departments)))
    if card.handler:
        lines.append(_("Handler: {name}").format(name=card.handler))
    if card.due is not None:
        due = _("Due ({stage}): {when}").format(
            stage=_(STAGE_LABELS.get(card.due_stage or "", card.due_stage or "")),
            when=format_datetime(card.due, lang, tz),
        )
        if card.provisional:
            due = append_note(due, _("(provisional)"))
        lines.append(due)
    recall = recall_line(card, lang)
    if recall:
        lines.append(recall)
    if card.statement_status:
        lines.append(_statement_line(card, lang, tz))
    if card.extension_request:
        request = card.extension_request
        lines.append(
            _("Extension requested: {amount} {unit}. Reason: {reason}").format(
                amount=request.get("amount"),
                unit=unit_label(str(request.get("unit", "")), lang),
                reason=request.get("reason") or "-",
            )
        )
    return "\n".join(lines)


RECALL_TEXTS: Mapping[str, str] = {
    "yes": N_("Product recall: started. Reason: {reason}"),
    "no": N_("Product recall: not started. Reason: {reason}"),
    "missing": N_("Product recall: not decided yet (needed before resolving)"),
}


def recall_line(card: CaseCard, lang: str) -> str | None:
    """The recall decision as one line of the card (R26), or None where none is asked for."""
    if card.recall_decision is None and not card.recall_asked:
        return None
    _ = translator(lang)
    if card.recall_decision is None:
        return _(RECALL_TEXTS["missing"])
    key = "yes" if card.recall_decision else "no"
    return _(RECALL_TEXTS[key]).format(reason=card.recall_reason or "-")


def _statement_line(card: CaseCard, lang: str, tz: ZoneInfo) -> str:
    _ = translator(lang)
    due = format_datetime(card.statement_due, lang, tz) if card.statement_due else "-"
    who = card.statement_respondent or "-"
    if card.statement_status == "recorded":
        line = _("Respondent's statement ({who}): {text}").format(
            who=who, text=card.statement_text or "-"
        )
        if card.statement_on_behalf:
            line = append_note(line, _("(recorded by staff on their behalf)"))
        return line
    if card.statement_status == "waived":
        return _("Respondent's statement ({who}): none given by {due}; the period lapsed.").format(
            who=who, due=due
        )
    return _("Respondent's statement ({who}): awaited by {due}.").format(who=who, due=due)


def render_notification(
    action: str,
    card: CaseCard,
    lang: str,
    tz: ZoneInfo,
    payload: Mapping[str, Any] | None = None,
) -> Outgoing:
    """A staff notification: what happened, the case card, and the recipient's buttons."""
    _ = translator(lang)
    payload = payload or {}
    pending = payload.get("extension") or card.extension_request or {}
    headline = _(HEADLINES.get(action, CHANGED)).format(
        number=card.number,
        amount=pending.get("amount", payload.get("amount", "")),
        unit=unit_label(str(pending.get("unit", payload.get("unit", ""))), lang),
        reason=payload.get("reason") or pending.get("reason") or "-",
        due=format_datetime(card.due, lang, tz) if card.due else "-",
        statement_due=(
            format_datetime(card.statement_due, lang, tz) if card.statement_due else "-"
        ),
    )
    if action == Action.WITHDRAW:  # nothing to do: no card, no buttons
        return Outgoing(headline)
    focus = FOCUSED_BUTTONS.get(action)
    if focus is not None:
        card = replace(card, actions=tuple(a for a in card.actions if a in focus))
    return Outgoing(f"{headline}\n\n{render_card(card, lang, tz)}", case_buttons(card, lang))


def render_done(
    action: str, card: CaseCard | None, number: str, lang: str, tz: ZoneInfo
) -> Outgoing:
    """After a successful action: confirmation, and the case's next buttons for the actor."""
    _ = translator(lang)
    text = _("Done: {action} — complaint {number}.").format(
        action=action_label(action, lang), number=number
    )
    if card is None:
        return Outgoing(text)
    text = append_note(text, _("Status: {state}").format(state=state_label(card.state, lang)))
    return Outgoing(text, case_buttons(card, lang))


def render_refused(
    code: str,
    number: str | None,
    state: str | None,
    lang: str,
    detail: str = "",
    card: CaseCard | None = None,
) -> Outgoing:
    """Why an action was not taken, naming the case's current status."""
    _ = translator(lang)
    reason = _(REFUSAL_TEXTS.get(code, REFUSAL_TEXTS["illegal_state"])).format(detail=detail)
    if number and state:
        text = _("Not done: complaint {number} is “{state}”: {reason}").format(
            number=number, state=state_label(state, lang), reason=reason
        )
    else:
        text = _("Not done: {reason}").format(reason=reason)
    return Outgoing(text, case_buttons(card, lang) if card is not None else ())


def render_invite_refusal(code: str, lang: str) -> Outgoing:
    _ = translator(lang)
    return Outgoing(_(INVITE_REFUSALS.get(code, INVITE_REFUSALS["unknown"])))


def render_welcome(name: str, lang: str) -> Outgoing:
    _ = translator(lang)
    text = _(
        "Welcome, {name}. This chat is now linked to your staff account: new cases arrive "
        "here with buttons to act on them. Send /cases to list your open cases."
    ).format(name=name)
    return Outgoing(text, (Choice(PAGE + "0", _("My cases")),))


# -- the dialog -------------------------------------------------------------------------------


class _Turn:
    def __init__(self, state: DialogState, incoming: Incoming, ctx: StaffContext) -> None:
        self.state = state
        self.incoming = incoming
        self.ctx = ctx
        self.replies: list[Outgoing] = []
        self.commands: list[StaffAct] = []
        self.shown: list[int] = []

    @property
    def lang(self) -> str:
        return supported(self.ctx.me.language)

    @property
    def _(self) -> Gettext:
        return translator(self.lang)

    def say(self, text: str, choices: Sequence[Choice] = ()) -> None:
        self.replies.append(Outgoing(text, tuple(choices)))

    def go(self, step: str | None) -> None:
        self.state.flow = FLOW if step else "idle"
        self.state.step = step
        if step is None:
            self.state.scratch = {}

    def cancel_choice(self) -> Choice:
        return Choice(CANCEL, self._("Cancel"))

    def act(self, action: str, payload: dict[str, Any], *, first: bool = True) -> None:
        scratch = self.state.scratch
        self.commands.append(
            StaffAct(
                int(scratch["complaint_id"]),
                str(action),
                payload,
                int(scratch["version"]) if first else None,
            )
        )

    def picked(self, offered: Sequence[Choice]) -> str | None:
        message = self.incoming
        if message.kind == "choice":
            return message.choice if any(c.id == message.choice for c in offered) else None
        if message.kind == "text" and message.text:
            typed = message.text.strip().casefold()
            for choice in offered:
                if choice.label.casefold() == typed:
                    return choice.id
            number = small_int(typed)
            if number is not None and 1 <= number <= len(offered):
                return offered[number - 1].id
        return None

    def text_input(self) -> str | None:
        """Free text for the current step, or None after telling the person what is wrong."""
        if self.incoming.kind != "text" or not (self.incoming.text or "").strip():
            self.say(self._("Please type the text, or press Cancel."), [self.cancel_choice()])
            return None
        try:
            return validate_text(self.incoming.text or "", max_length=MAX_TEXT)
        except InvalidInput:
            self.say(
                self._("That text is too long (at most {limit} characters).").format(
                    limit=MAX_TEXT
                ),
                [self.cancel_choice()],
            )
            return None


def handle(state: DialogState | None, incoming: Incoming, ctx: StaffContext) -> StaffResult:
    """One staff message: a button, a command or the text a step asked for."""
    working = state.copy() if state is not None else DialogState()
    if working.flow != FLOW:
        working.flow, working.step, working.scratch = "idle", None, {}
    working.language = ctx.me.language
    working.updated_at = ctx.now.isoformat()
    turn = _Turn(working, incoming, ctx)
    _dispatch(turn)
    return StaffResult(turn.state, turn.replies, turn.commands, turn.shown)


def _is_cancel(turn: _Turn) -> bool:
    message = turn.incoming
    if message.kind == "choice":
        return message.choice == CANCEL
    if message.kind == "command":
        return message.command == "cancel"
    word = (message.text or "").strip().casefold()
    return message.kind == "text" and word in {"cancel", "取消", "放弃", "放棄"}


def _dispatch(turn: _Turn) -> None:
    message = turn.incoming
    parsed = parse_action_callback(message.choice) if message.kind == "choice" else None
    if parsed is not None:
        turn.go(None)
        _start_action(turn, *parsed)
    elif message.kind == "choice" and (message.choice or "").startswith(PAGE):
        turn.go(None)
        _show_cases(turn, (message.choice or "").removeprefix(PAGE))
    elif message.kind == "choice" and (message.choice or "").startswith(OPEN):
        turn.go(None)
        _show_case(turn)
    elif message.kind == "command" and message.command == "cases":
        turn.go(None)
        _show_cases(turn, message.command_args or "0")
    elif _is_cancel(turn):
        was_busy = turn.state.step is not None
        turn.go(None)
        turn.say(turn._("Cancelled.") if was_busy else turn._("Nothing to cancel."), _menu(turn))
    elif turn.state.step is not None and message.kind != "command":
        _continue_step(turn)
    else:
        turn.go(None)
        turn.say(
            turn._(
                "Cases reach you here as notifications with buttons. Send /cases to list "
                "your open cases, most urgent first."
            ),
            _menu(turn),
        )


def _menu(turn: _Turn) -> list[Choice]:
    return [Choice(PAGE + "0", turn._("My cases"))]


def _show_cases(turn: _Turn, page_text: str) -> None:
    _ = turn._
    cases = list(turn.ctx.my_cases)
    if not cases:
        turn.say(_("You have no open cases."))
        return
    size = max(1, turn.ctx.page_size)
    pages = math.ceil(len(cases) / size)
    page = small_int(page_text.strip()) or 0
    page = min(max(page, 0), pages - 1)
    shown = cases[page * size : (page + 1) * size]
    lines = [_("Your open cases (page {page} of {pages}):").format(page=page + 1, pages=pages)]
    choices = []
    # The lines carry no numbers of their own: the options do (text-only channels number
    # them per page), so one case never shows two different numbers.
    for card in shown:
        line = f"• {card.number} · {state_label(card.state, turn.lang)}"
        if card.due is not None:
            due = _("due {when}").format(when=format_datetime(card.due, turn.lang, turn.ctx.tz))
            line = f"{line} · {due}"
        if card.complainant_unreachable:
            # Outside the f-string: Babel's extractor on Python 3.11 does not look inside one,
            # so the text never reached the catalogs and showed in English in every language.
            unreachable = _("complainant unreachable")
            line = f"{line} · {unreachable}"
        lines.append(line)
        choices.append(Choice(OPEN + str(card.id), card.number))
    if page > 0:
        choices.append(Choice(PAGE + str(page - 1), _("Previous page")))
    if page + 1 < pages:
        choices.append(Choice(PAGE + str(page + 1), _("Next page")))
    turn.say("\n".join(lines), choices)


def _show_case(turn: _Turn) -> None:
    card = turn.ctx.case
    if card is None:
        turn.replies.append(render_refused("not_found", None, None, turn.lang))
        return
    turn.shown.append(card.id)
    turn.say(render_card(card, turn.lang, turn.ctx.tz), case_buttons(card, turn.lang))


def _start_action(turn: _Turn, action: Action, complaint_id: int, version: int) -> None:
    card = turn.ctx.case
    if card is None or card.id != complaint_id:
        turn.replies.append(render_refused("not_found", None, None, turn.lang))
        return
    if card.version != version:
        turn.replies.append(render_refused(STALE, card.number, card.state, turn.lang, card=card))
        return
    turn.state.scratch = {
        "complaint_id": card.id,
        "number": card.number,
        "version": version,
        "action": str(action),
        "payload": {},
    }
    if str(action) not in card.actions:
        # Let the rule book say exactly why (models.actions.act refuses; nothing is written).
        turn.act(action, {})
        turn.go(None)
        return
    prompt = _FIRST_STEP.get(action)
    if prompt is None:
        turn.act(action, {})
        turn.go(None)
        return
    prompt(turn)


# -- steps: each `_ask_*` asks and sets the step; `_STEPS[step]` handles the answer ------------

Step = Callable[[_Turn], None]


def _category_choices(turn: _Turn) -> list[Choice]:
    profile = turn.ctx.profile
    return [
        Choice(PICK + c.id, profile.label("category", c.id, turn.lang)) for c in profile.categories
    ]


def _severity_choices(turn: _Turn) -> list[Choice]:
    profile = turn.ctx.profile
    return [
        Choice(PICK + s.id, profile.label("severity", s.id, turn.lang)) for s in profile.severities
    ]


def _ask_category(turn: _Turn) -> None:
    turn.go("category")
    turn.say(turn._("Choose the category:"), [*_category_choices(turn), turn.cancel_choice()])


def _ask_severity(turn: _Turn) -> None:
    turn.go("severity")
    turn.say(turn._("Choose the severity:"), [*_severity_choices(turn), turn.cancel_choice()])


def _acceptance_policy(turn: _Turn) -> Any:
    return getattr(turn.ctx.profile, "acceptance", None)


def _accept_next(turn: _Turn) -> None:
    """Ask what acceptance still needs (category, severity, complexity), then accept."""
    card = turn.ctx.case
    assert card is not None
    profile, payload = turn.ctx.profile, turn.state.scratch["payload"]
    policy = _acceptance_policy(turn)
    if "category" not in payload and profile.categories:
        if card.category is None or getattr(policy, "ask_category", False):
            _ask_category(turn)
            return
    if "severity" not in payload and profile.severities:
        if card.severity is None or getattr(policy, "ask_severity", False):
            _ask_severity(turn)
            return
    if "complexity" not in payload and getattr(policy, "ask_complexity", False):
        _ask_complexity(turn)
        return
    turn.act(Action.ACCEPT, payload)
    turn.go(None)


def _start_accept(turn: _Turn) -> None:
    _accept_next(turn)


def _on_category(turn: _Turn) -> None:
    picked = turn.picked(_category_choices(turn))
    if picked is None:
        _ask_category(turn)
        return
    turn.state.scratch["payload"]["category"] = picked.removeprefix(PICK)
    _accept_next(turn)


def _on_severity(turn: _Turn) -> None:
    picked = turn.picked(_severity_choices(turn))
    if picked is None:
        _ask_severity(turn)
        return
    turn.state.scratch["payload"]["severity"] = picked.removeprefix(PICK)
    if turn.state.scratch.get("action") == str(Action.SET_SEVERITY):
        turn.act(Action.SET_SEVERITY, turn.state.scratch["payload"])
        turn.go(None)
        return
    _accept_next(turn)


COMPLEXITIES: Mapping[str, str] = {
    "simple": N_("Simple: facts clear, little to investigate"),
    "complex": N_("Complex: needs investigation"),
}


def _complexity_choices(turn: _Turn) -> list[Choice]:
    return [Choice(PICK + key, turn._(label)) for key, label in COMPLEXITIES.items()]


def _ask_complexity(turn: _Turn) -> None:
    turn.go("complexity")
    turn.say(
        turn._("Is the matter simple or complex? It decides the handling time limit."),
        [*_complexity_choices(turn), turn.cancel_choice()],
    )


def _on_complexity(turn: _Turn) -> None:
    picked = turn.picked(_complexity_choices(turn))
    if picked is None:
        _ask_complexity(turn)
        return
    turn.state.scratch["payload"]["complexity"] = picked.removeprefix(PICK)
    _accept_next(turn)


def _start_set_severity(turn: _Turn) -> None:
    """Raise the severity of an open case (R7g: a complaint may prove 重大 at any time)."""
    card = turn.ctx.case
    assert card is not None
    profile = turn.ctx.profile
    rank = profile.severity_rank(card.severity)
    higher = [
        Choice(PICK + s.id, profile.label("severity", s.id, turn.lang))
        for s in profile.severities
        if profile.severity_rank(s.id) > rank
    ]
    if not higher:
        turn.say(turn._("The case already has the highest severity."))
        turn.go(None)
        return
    turn.go("severity")
    turn.say(turn._("Raise the severity to:"), [*higher, turn.cancel_choice()])


def _exclusion_choices(turn: _Turn) -> list[Choice]:
    profile = turn.ctx.profile
    return [
        Choice(PICK + e.id, profile.label("exclusion", e.id, turn.lang)) for e in profile.exclusions
    ]


def _start_refuse(turn: _Turn) -> None:
    turn.go("refuse_reason")
    turn.say(
        turn._("Why is the complaint not accepted? Choose a reason or type your own."),
        [*_exclusion_choices(turn), Choice(OTHER, turn._("Other reason")), turn.cancel_choice()],
    )


def _on_refuse_reason(turn: _Turn) -> None:
    picked = turn.picked([*_exclusion_choices(turn), Choice(OTHER, turn._("Other reason"))])
    if picked is not None and picked != OTHER:
        turn.act(Action.REFUSE, {"exclusion": picked.removeprefix(PICK)})
        turn.go(None)
        return
    if picked == OTHER:
        turn.go("refuse_text")
        turn.say(turn._("Type the reason the complainant will read:"), [turn.cancel_choice()])
        return
    _on_refuse_text(turn)  # typed straight away: that is the reason


def _on_refuse_text(turn: _Turn) -> None:
    text = turn.text_input()
    if text is None:
        return
    turn.state.scratch["payload"]["reason"] = text
    turn.go("refuse_guidance")
    turn.say(
        turn._("Where can the complainant turn instead? Type the guidance, or skip."),
        [Choice(SKIP, turn._("Skip")), turn.cancel_choice()],
    )


def _on_refuse_guidance(turn: _Turn) -> None:
    payload = turn.state.scratch["payload"]
    if turn.incoming.kind == "choice" and turn.incoming.choice == SKIP:
        turn.act(Action.REFUSE, payload)
        turn.go(None)
        return
    text = turn.text_input()
    if text is None:
        return
    payload["guidance"] = text
    turn.act(Action.REFUSE, payload)
    turn.go(None)


def _department_choices(turn: _Turn, exclude: Iterable[int] = ()) -> list[Choice]:
    skip = set(exclude)
    return [Choice(PICK + str(d.id), d.name) for d in turn.ctx.departments if d.id not in skip]


def _start_assign(turn: _Turn) -> None:
    turn.go("assign_department")
    turn.say(
        turn._("Which department leads the handling?"),
        [*_department_choices(turn), turn.cancel_choice()],
    )


def _on_assign_department(turn: _Turn) -> None:
    picked = turn.picked(_department_choices(turn))
    if picked is None:
        _start_assign(turn)
        return
    department_id = int(picked.removeprefix(PICK))
    turn.state.scratch["payload"] = {"department_id": department_id, "co_department_ids": []}
    _ask_handler(turn)


def _handler_choices(turn: _Turn) -> list[Choice]:
    department_id = turn.state.scratch["payload"]["department_id"]
    return [
        Choice(PICK + str(h.id), h.name)
        for h in turn.ctx.handlers
        if h.department_id == department_id
    ]


def _ask_handler(turn: _Turn) -> None:
    turn.go("assign_handler")
    turn.say(
        turn._("Who handles it? Choose a handler, or leave it to the department."),
        [
            *_handler_choices(turn),
            Choice(NONE, turn._("The department decides")),
            turn.cancel_choice(),
        ],
    )


def _on_assign_handler(turn: _Turn) -> None:
    picked = turn.picked([*_handler_choices(turn), Choice(NONE, turn._("The department decides"))])
    if picked is None:
        _ask_handler(turn)
        return
    if picked != NONE:
        turn.state.scratch["payload"]["handler_id"] = int(picked.removeprefix(PICK))
    _ask_co_departments(turn)


def _co_choices(turn: _Turn) -> list[Choice]:
    payload = turn.state.scratch["payload"]
    return _department_choices(turn, [payload["department_id"], *payload["co_department_ids"]])


def _ask_co_departments(turn: _Turn) -> None:
    turn.go("assign_co")
    chosen = turn.state.scratch["payload"]["co_department_ids"]
    text = turn._("Joint handling: add co-handling departments, or press Done.")
    if chosen:
        names = [d.name for d in turn.ctx.departments if d.id in chosen]
        text = append_note(text, turn._("Added: {names}.").format(names=", ".join(names)))
    turn.say(text, [*_co_choices(turn), Choice(DONE, turn._("Done")), turn.cancel_choice()])


def _on_assign_co(turn: _Turn) -> None:
    picked = turn.picked([*_co_choices(turn), Choice(DONE, turn._("Done"))])
    if picked is None:
        _ask_co_departments(turn)
        return
    payload = turn.state.scratch["payload"]
    if picked != DONE:
        payload["co_department_ids"].append(int(picked.removeprefix(PICK)))
        if _co_choices(turn):
            _ask_co_departments(turn)
            return
    co_ids = payload.pop("co_department_ids")
    turn.act(Action.ASSIGN, payload)
    for department_id in co_ids:
        turn.act(Action.ADD_CO_HANDLER, {"department_id": department_id}, first=False)
    turn.go(None)


def _start_transfer(turn: _Turn) -> None:
    card = turn.ctx.case
    exclude = [card.lead_department_id] if card and card.lead_department_id else []
    turn.go("transfer_department")
    turn.say(
        turn._("Transfer to which department?"),
        [*_department_choices(turn, exclude), turn.cancel_choice()],
    )


def _on_transfer_department(turn: _Turn) -> None:
    picked = turn.picked(_department_choices(turn))
    if picked is None:
        _start_transfer(turn)
        return
    turn.act(Action.TRANSFER, {"department_id": int(picked.removeprefix(PICK))})
    turn.go(None)


def _start_co_handler(turn: _Turn) -> None:
    card = turn.ctx.case
    exclude = [card.lead_department_id] if card and card.lead_department_id else []
    turn.go("co_department")
    turn.say(
        turn._("Which department joins the handling?"),
        [*_department_choices(turn, exclude), turn.cancel_choice()],
    )


def _on_co_department(turn: _Turn) -> None:
    picked = turn.picked(_department_choices(turn))
    if picked is None:
        _start_co_handler(turn)
        return
    turn.act(Action.ADD_CO_HANDLER, {"department_id": int(picked.removeprefix(PICK))})
    turn.go(None)


def _text_step(step: str, prompt: str, action: Action, key: str) -> tuple[Step, Step]:
    """A step that asks for one text and then acts with it as `payload[key]`."""

    def ask(turn: _Turn) -> None:
        turn.go(step)
        turn.say(turn._(prompt), [turn.cancel_choice()])

    def answer(turn: _Turn) -> None:
        text = turn.text_input()
        if text is None:
            return
        payload = {**turn.state.scratch["payload"], key: text}
        turn.act(action, payload)
        turn.go(None)

    return ask, answer


_ask_question, _on_question = _text_step(
    "question",
    N_("Type the question for the complainant (what material is needed):"),
    Action.REQUEST_MATERIAL,
    "question",
)
_ask_note, _on_note = _text_step("note", N_("Type the note:"), Action.ADD_NOTE, "note")
_ask_hand_back, _on_hand_back = _text_step(
    "hand_back", N_("Why do you hand the case back?"), Action.HAND_BACK, "reason"
)
_ask_recall_reason, _on_recall_reason = _text_step(
    "recall_reason",
    N_("Why? Type the reason for the recall decision:"),
    Action.RECORD_RECALL_DECISION,
    "reason",
)


def _recall_choices(turn: _Turn) -> list[Choice]:
    return [
        Choice(PICK + "yes", turn._("Start the product recall")),
        Choice(PICK + "no", turn._("No recall")),
    ]


def _start_recall(turn: _Turn) -> None:
    turn.go("recall")
    turn.say(
        turn._("Is the product recall started for this complaint?"),
        [*_recall_choices(turn), turn.cancel_choice()],
    )


def _on_recall(turn: _Turn) -> None:
    picked = turn.picked(_recall_choices(turn))
    if picked is None:
        _start_recall(turn)
        return
    turn.state.scratch["payload"] = {"recall": picked == PICK + "yes"}
    _ask_recall_reason(turn)


_ask_statement, _on_statement = _text_step(
    "statement",
    N_(
        "Type the respondent's statement (their account and defence). If you record it for "
        "them, write what they said:"
    ),
    Action.RECORD_STATEMENT,
    "text",
)
_ask_respondent, _on_respondent = _text_step(
    "respondent",
    N_("Whose statement is asked for? Type the respondent's name (e.g. the driver of the plate):"),
    Action.REQUEST_STATEMENT,
    "respondent",
)


def _start_request_statement(turn: _Turn) -> None:
    """A respondent linked to a staff member (or named by the target) is asked at once;
    otherwise the handler names them first."""
    card = turn.ctx.case
    if card is not None and (card.target or "").strip():
        turn.act(Action.REQUEST_STATEMENT, {})
        turn.go(None)
        return
    _ask_respondent(turn)


_ask_extension_reason, _on_extension_reason = _text_step(
    "extension_reason",
    N_("Why is more time needed?"),
    Action.REQUEST_EXTENSION,
    "reason",
)


# -- the result: the reply text, and photos or documents sent along with it --------------------
# Files may come before the reply text (sent straight away, or after pressing "Photos"); the
# reply text finishes the step, so a reply without files is one message as before. The payload
# keeps the neutral file records under "files"; the shell turns their "att:<id>" file ids into
# the resolution's attachment_ids (only this channel's stored files that no case has yet).


def _reply_files(turn: _Turn) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = turn.state.scratch["payload"].setdefault("files", [])
    return files


def _megabytes(size: int) -> str:
    return f"{size / MB:.1f}".removesuffix(".0")


def _more_files_choice(turn: _Turn) -> list[Choice]:
    if len(_reply_files(turn)) >= turn.ctx.max_files:
        return []
    return [Choice(FILES, turn._("Photos"))]


def _ask_reply(turn: _Turn) -> None:
    turn.go("reply")
    turn.say(
        turn._("Type the reply the complainant will receive:"),
        [*_more_files_choice(turn), turn.cancel_choice()],
    )


def _files_choices(turn: _Turn) -> list[Choice]:
    return [Choice(DONE, turn._("Done")), turn.cancel_choice()]


def _ask_reply_files(turn: _Turn, text: str | None = None) -> None:
    turn.go("reply_files")
    if text is None:
        text = turn._("Send up to {count} photos, each at most {size} MB, then press Done.").format(
            count=turn.ctx.max_files, size=_megabytes(turn.ctx.max_file_bytes)
        )
    turn.say(text, _files_choices(turn))


def _take_reply_file(turn: _Turn) -> None:
    _ = turn._
    file = turn.incoming.file
    files = _reply_files(turn)
    if file is None:
        _ask_reply_files(turn, _("Please send a photo, or press Done."))
        return
    if len(files) >= turn.ctx.max_files:
        refusal = _("You have already sent {count} photos, the most we accept. Press Done.")
        _ask_reply_files(turn, refusal.format(count=turn.ctx.max_files))
        return
    size = file.size if file.size is not None else (len(file.data) if file.data else None)
    if size is not None and size > turn.ctx.max_file_bytes:
        refusal = _(
            "That file is {size} MB; each photo may be at most {limit} MB. "
            "Please send a smaller one."
        ).format(size=_megabytes(size), limit=_megabytes(turn.ctx.max_file_bytes))
        _ask_reply_files(turn, refusal)
        return
    if all(f.get("file_id") != file.file_id for f in files):  # the same upload counts once
        files.append(file_record(file, size))
    text = _("{count} of at most {max} photos received. Send another, or press Done.")
    _ask_reply_files(turn, text.format(count=len(files), max=turn.ctx.max_files))


def _ask_decided(turn: _Turn) -> None:
    turn.go("decided_number")
    turn.say(
        turn._(
            "Type the number of the earlier complaint about the same matter that was already "
            "decided: its reply goes to this complainant as the result."
        ),
        [turn.cancel_choice()],
    )


def _on_decided(turn: _Turn) -> None:
    number = turn.text_input()
    if number is None:
        return
    turn.act(Action.SETTLE_AS_DECIDED, {"decided_number": number})
    # Settled at once: the earlier decision is told in the same transaction, as after resolve.
    turn.act(Action.NOTIFY_RESULT, {}, first=False)
    turn.go(None)


def _resolve_with(turn: _Turn, reply_text: str) -> None:
    payload: dict[str, Any] = {"reply_text": reply_text}
    files = _reply_files(turn)
    if files:
        payload["files"] = list(files)
    turn.act(Action.RESOLVE, payload)
    # The reply goes to the complainant at once: the result notice follows the resolution
    # in the same transaction.
    turn.act(Action.NOTIFY_RESULT, {}, first=False)
    turn.go(None)


def _on_reply(turn: _Turn) -> None:
    message = turn.incoming
    if message.kind in ("photo", "file"):
        _take_reply_file(turn)
        return
    # The button, or on text-only channels the option's number or label.
    if turn.picked(_more_files_choice(turn)) == FILES:
        _ask_reply_files(turn)
        return
    text = turn.text_input()
    if text is not None:
        _resolve_with(turn, text)


def _on_reply_files(turn: _Turn) -> None:
    message = turn.incoming
    if message.kind in ("photo", "file"):
        _take_reply_file(turn)
    elif turn.picked([Choice(DONE, turn._("Done"))]) == DONE:
        _ask_reply(turn)
    elif message.kind == "text" and (message.text or "").strip():
        _on_reply(turn)  # the reply text typed straight away finishes the result
    else:
        _ask_reply_files(turn, turn._("Please send a photo, or press Done."))


def _extension_limit(turn: _Turn) -> tuple[int, str]:
    return _extension_limit_of(turn.ctx.profile)


def _amount_choices(turn: _Turn) -> list[Choice]:
    limit, unit = _extension_limit(turn)
    label = unit_label(unit, turn.lang)
    return [
        Choice(PICK + str(n), f"{n} {label}")
        for n in range(1, min(limit, MAX_EXTENSION_BUTTONS) + 1)
    ]


def _start_extension(turn: _Turn) -> None:
    limit, unit = _extension_limit(turn)
    turn.go("extension_amount")
    turn.say(
        turn._("How much more time? At most {limit} {unit}; choose or type a number.").format(
            limit=limit, unit=unit_label(unit, turn.lang)
        ),
        [*_amount_choices(turn), turn.cancel_choice()],
    )


def _on_extension_amount(turn: _Turn) -> None:
    limit, unit = _extension_limit(turn)
    picked = turn.picked(_amount_choices(turn)) if turn.incoming.kind == "choice" else None
    typed = (turn.incoming.text or "").strip()
    amount: int | None = None
    if picked is not None:
        amount = int(picked.removeprefix(PICK))
    elif turn.incoming.kind == "text" and 1 <= (typed_amount := small_int(typed) or 0) <= limit:
        amount = typed_amount
    if amount is None:
        _start_extension(turn)
        return
    turn.state.scratch["payload"] = {"amount": amount, "unit": unit}
    _ask_extension_reason(turn)


_FIRST_STEP: Mapping[Action, Step] = {
    Action.ACCEPT: _start_accept,
    Action.SET_SEVERITY: _start_set_severity,
    Action.REFUSE: _start_refuse,
    Action.ASSIGN: _start_assign,
    Action.TRANSFER: _start_transfer,
    Action.ADD_CO_HANDLER: _start_co_handler,
    Action.REQUEST_MATERIAL: _ask_question,
    Action.REQUEST_EXTENSION: _start_extension,
    Action.ADD_NOTE: _ask_note,
    Action.REQUEST_STATEMENT: _start_request_statement,
    Action.RECORD_STATEMENT: _ask_statement,
    Action.RESOLVE: _ask_reply,
    Action.HAND_BACK: _ask_hand_back,
    Action.SETTLE_AS_DECIDED: _ask_decided,
    Action.RECORD_RECALL_DECISION: _start_recall,
}

_STEPS: Mapping[str, Step] = {
    "category": _on_category,
    "severity": _on_severity,
    "complexity": _on_complexity,
    "refuse_reason": _on_refuse_reason,
    "refuse_text": _on_refuse_text,
    "refuse_guidance": _on_refuse_guidance,
    "assign_department": _on_assign_department,
    "assign_handler": _on_assign_handler,
    "assign_co": _on_assign_co,
    "transfer_department": _on_transfer_department,
    "co_department": _on_co_department,
    "question": _on_question,
    "note": _on_note,
    "statement": _on_statement,
    "respondent": _on_respondent,
    "reply": _on_reply,
    "reply_files": _on_reply_files,
    "hand_back": _on_hand_back,
    "decided_number": _on_decided,
    "recall": _on_recall,
    "recall_reason": _on_recall_reason,
    "extension_amount": _on_extension_amount,
    "extension_reason": _on_extension_reason,
}


def _continue_step(turn: _Turn) -> None:
    step = turn.state.step or ""
    handler = _STEPS.get(step)
    if handler is None or "complaint_id" not in turn.state.scratch:
        turn.go(None)  # a step this version does not know: start over cleanly
        turn.say(turn._("Let us start over."), _menu(turn))
        return
    handler(turn)


# -- the same actions from one form (the browser desk) ------------------------------------------
# The chat collects an action's answers step by step; a form posts them at once. `form_acts`
# checks them against the same choices the chat offers (the profile's categories, severities,
# exclusions and extension limit; the departments; a department's own handlers) and builds the
# same StaffActs, so both desks run models.actions.act with identical payloads.

FORM_ACTIONS: frozenset[str] = frozenset(str(a) for a in BUTTON_ACTIONS)


@dataclass(frozen=True)
class FormProblem:
    """Why a form cannot be acted on: `field` names the input, `code` the problem."""

    field: str
    code: str  # required, unknown, not_in_department, too_long, out_of_range


def _form_text(
    values: Mapping[str, str], name: str, *, required: bool = True
) -> str | FormProblem | None:
    raw = (values.get(name) or "").strip()
    if not raw:
        return FormProblem(name, "required") if required else None
    try:
        return validate_text(raw, max_length=MAX_TEXT)
    except InvalidInput:
        return FormProblem(name, "too_long")


def _form_id(values: Mapping[str, str], name: str, allowed: Iterable[int]) -> int | FormProblem:
    raw = (values.get(name) or "").strip()
    if not raw:
        return FormProblem(name, "required")
    number = small_int(raw)
    if number is None or number not in set(allowed):
        return FormProblem(name, "unknown")
    return number


def form_acts(
    action: str,
    card: CaseCard,
    ctx: StaffContext,
    values: Mapping[str, str],
    co_departments: Sequence[str] = (),
    files: Sequence[Mapping[str, Any]] = (),
) -> list[StaffAct] | FormProblem:
    """The StaffActs a desk form for `action` on `card` stands for, or what is wrong with it.

    The first act carries the card's version, so a form posted against an older case is
    refused as stale, as an old button is. An action the viewer may not take is still passed
    on (with no payload) so the rule book says exactly why, as the chat does.
    """
    if action not in FORM_ACTIONS:
        return FormProblem("action", "unknown")

    def acts(*pairs: tuple[str, dict[str, Any]]) -> list[StaffAct]:
        return [
            StaffAct(card.id, str(name), payload, card.version if index == 0 else None)
            for index, (name, payload) in enumerate(pairs)
        ]

    if action not in card.actions:
        return acts((action, {}))
    profile = ctx.profile
    departments = [d.id for d in ctx.departments]
    payload: dict[str, Any] = {}
    if action == Action.ACCEPT:
        if card.category is None and profile.categories:
            category = (values.get("category") or "").strip()
            if not category:
                return FormProblem("category", "required")
            if category not in {c.id for c in profile.categories}:
                return FormProblem("category", "unknown")
            payload["category"] = category
        if card.severity is None and profile.severities:
            severity = (values.get("severity") or "").strip()
            if not severity:
                return FormProblem("severity", "required")
            if severity not in {s.id for s in profile.severities}:
                return FormProblem("severity", "unknown")
            payload["severity"] = severity
        return acts((action, payload))
    if action == Action.REFUSE:
        exclusion = (values.get("exclusion") or "").strip()
        if exclusion:
            if exclusion not in {e.id for e in profile.exclusions}:
                return FormProblem("exclusion", "unknown")
            return acts((action, {"exclusion": exclusion}))
        reason = _form_text(values, "reason")
        guidance = _form_text(values, "guidance", required=False)
        for answer in (reason, guidance):
            if isinstance(answer, FormProblem):
                return answer
        payload = {"reason": reason}
        if guidance:
            payload["guidance"] = guidance
        return acts((action, payload))
    if action == Action.ASSIGN:
        department = _form_id(values, "department_id", departments)
        if isinstance(department, FormProblem):
            return department
        payload = {"department_id": department}
        if (values.get("handler_id") or "").strip():
            handler = _form_id(values, "handler_id", [h.id for h in ctx.handlers])
            if isinstance(handler, FormProblem):
                return handler
            if all(h.department_id != department for h in ctx.handlers if h.id == handler):
                return FormProblem("handler_id", "not_in_department")
            payload["handler_id"] = handler
        co_ids: list[int] = []
        for raw in co_departments:
            co = _form_id({"co": raw}, "co", departments)
            if isinstance(co, FormProblem):
                return FormProblem("co_department_ids", co.code)
            if co != department and co not in co_ids:
                co_ids.append(co)
        return acts(
            (action, payload),
            *((str(Action.ADD_CO_HANDLER), {"department_id": co}) for co in co_ids),
        )
    if action in (Action.TRANSFER, Action.ADD_CO_HANDLER):
        others = [d for d in departments if d != card.lead_department_id]
        department = _form_id(values, "department_id", others)
        if isinstance(department, FormProblem):
            return department
        return acts((action, {"department_id": department}))
    texts = {
        Action.REQUEST_MATERIAL: "question",
        Action.ADD_NOTE: "note",
        Action.HAND_BACK: "reason",
        Action.RECORD_STATEMENT: "text",
    }
    if action == Action.REQUEST_STATEMENT:
        # The respondent: the linked staff member or the target typed, unless staff name one.
        respondent = _form_text(values, "respondent", required=not (card.target or "").strip())
        if isinstance(respondent, FormProblem):
            return respondent
        return acts((action, {"respondent": respondent} if respondent else {}))
    if action in texts:
        text = _form_text(values, texts[Action(action)])
        if isinstance(text, FormProblem):
            return text
        return acts((action, {texts[Action(action)]: text}))
    if action == Action.REQUEST_EXTENSION:
        limit, unit = _extension_limit_of(profile)
        raw = (values.get("amount") or "").strip()
        if not raw:
            return FormProblem("amount", "required")
        if not 1 <= (small_int(raw) or 0) <= limit:
            return FormProblem("amount", "out_of_range")
        reason = _form_text(values, "reason")
        if isinstance(reason, FormProblem):
            return reason
        return acts((action, {"amount": int(raw), "unit": unit, "reason": reason}))
    if action == Action.RECORD_RECALL_DECISION:
        recall = (values.get("recall") or "").strip()
        if not recall:
            return FormProblem("recall", "required")
        if recall not in ("yes", "no"):
            return FormProblem("recall", "unknown")
        reason = _form_text(values, "reason")
        if isinstance(reason, FormProblem):
            return reason
        return acts((action, {"recall": recall == "yes", "reason": reason}))
    if action == Action.SETTLE_AS_DECIDED:
        number = _form_text(values, "decided_number")
        if isinstance(number, FormProblem):
            return number
        return acts((action, {"decided_number": number}), (str(Action.NOTIFY_RESULT), {}))
    if action == Action.RESOLVE:
        reply = _form_text(values, "reply_text")
        if isinstance(reply, FormProblem):
            return reply
        if len(files) > ctx.max_files:
            return FormProblem("files", "too_many")
        if any((f.get("size") or 0) > ctx.max_file_bytes for f in files):
            return FormProblem("files", "too_large")
        payload = {"reply_text": reply}
        if files:
            payload["files"] = [dict(f) for f in files]
        # As in the chat: the reply goes to the complainant at once.
        return acts((action, payload), (str(Action.NOTIFY_RESULT), {}))
    return acts((action, {}))  # acknowledge, resume, approve / deny an extension


def _extension_limit_of(profile: Any) -> tuple[int, str]:
    extension = profile.extension
    if extension is None:
        return 0, "working_days"
    return extension.max.amount, extension.max.unit


def extension_limit(profile: Any) -> tuple[int, str]:
    """The most time one extension may add, and its unit (what the chat offers)."""
    return _extension_limit_of(profile)
