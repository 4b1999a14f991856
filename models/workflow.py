"""Complaint life cycle: states, roles and actions (the pure state machine).

`decide(state, action, role, facts)` is the one rule book: it returns the `Transition` to apply
(target state, event kind, side effects the shell must perform) or a `Refusal` with a reason.
It never touches the database and never guesses: an action that is not in the table below is
refused, so a stale button or a forged request can never move a case.

Choices the table encodes (see DESIGN.md for the life cycle itself):

- Extensions are facts on the case, not a state: `request_extension` leaves the case
  `in_progress` with a pending request; `approve_extension` / `deny_extension` decide it, in
  `in_progress` or `waiting_for_complainant` (the handler may ask for material while the approver
  thinks). At most `max_extensions` approved extensions; one pending request at a time; nobody
  decides their own request.
- `transfer` (first-ask responsibility) keeps a `submitted` case `submitted` — the receiving
  department owes the acceptance answer — and returns an `accepted` or `assigned` case to
  `accepted`: the acceptance stands, the receiving department dispatches it again.
- `withdraw` is open to the complainant until the result is told: every open state up to and
  including `resolved`. Once `replied` the complainant answers the survey or disputes instead.
- `request_supervisor_revisit` (an addition, R19): an unsatisfied survey where the profile says
  "supervisor_revisit" moves the case from `revisit` to `supervisor_revisit` — the survey is
  answered, its reminder and no-response close stop, and a supervisor owes the revisit; the
  supervisor then closes or reopens it (`close` / `reopen`).
- `dispute` (complainant) reopens a `replied`, `revisit`, `supervisor_revisit` or `closed` case
  (or, where the profile's `disputed_result` is "supervisor_revisit", sends it to a supervisor
  revisit); whether a closed case is still inside the dispute window is for the shell to check.
- `resume` (an addition): the handler, department head or the scheduler (material never came)
  puts a waiting case back in progress without a supplement, so no case waits forever.
- `set_severity` (an addition): staff rate or raise a case's severity while it is open (R7g:
  重大 is a finding at any time, not only at intake); the scheduler does the same for the
  automatic upgrades a profile declares. Whether the profile lets severity be raised, and only
  raised, is checked by `models.actions`; the rule book only knows who and when.
- `add_co_handler` (an addition): joint handling; co-handlers contribute notes, the lead answers.
- `submit` by staff (代录): a complaint received by phone, at the window, by letter or e-mail is
  recorded by the staff member who took it, on the complainant's behalf.
- `issue_written_reply` (an addition): the 书面答复 letter is issued. Where the profile requires a
  written reply to a written complaint, `close` is refused until it has been (the fact
  `written_reply_pending`), whoever closes: the survey, the no-response close or a supervisor.
- `settle_as_decided` (an addition, R6 即时办结 "集中发生的同一投诉事项且已有明确处理意见"): at
  acceptance, staff link the case to an earlier case whose result was decided and resolve it
  with that reply at once (the result is told next, as after `resolve`). Only where the profile
  enables it (`[acceptance] settle_as_decided`, the fact `settle_as_decided_enabled`).
- `record_recall_decision` (an addition, R26 "决定是否启动产品回收程序"): the lead handler, the
  department head or a supervisor records whether the product recall is started, and why, while
  the case is handled; it may be recorded again (the latest stands). Only where the profile
  requires it (`[resolution] requires_recall_decision`, the fact `recall_decision_enabled`);
  there `resolve` is refused until it is recorded (the fact `recall_decision_pending`).
- `request_statement` / `record_statement` / `waive_statement` (an addition, R13 "被投诉人有…
  陈述和申辩的权利", R4 陈述权、申辩权): facts on the case, not states. The lead handler asks the
  respondent for their statement (one request open at a time); the respondent records it from
  their chat or desk (the fact `actor_is_respondent`), or the case's handler records it on their
  behalf (代录); the scheduler records the waiver when the period lapses unanswered. While a
  statement is asked for and neither recorded nor lapsed, `resolve` is refused
  (`statement_pending`); where the profile requires a statement (`statement_required`),
  `resolve` is refused until one was asked for (`statement_not_requested`).
- `link_repeat` / `unlink_repeat` (additions, issue 14): staff record that a complaint repeats
  an earlier one of the same complainant (the system does so at submission), or take a link
  away; the case does not move.
- `decide_with_group` (an addition, R6 "集中发生的同一投诉事项"): a supervisor's one decision on a
  confirmed mass-matter group resolves each member with that reply, whatever stage of handling
  it has reached short of a result; the result is told next, to each complainant, as after
  `resolve`. Supervisors and admins only (`MATTER_ROLES`, also who may confirm, dismiss and trim
  a group: `may_manage_matters`).
- Department scope and confidentiality are checked by the shell before `decide`; the rule book
  only knows roles and the small `CaseFacts` below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class State(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    WAITING_FOR_COMPLAINANT = "waiting_for_complainant"
    RESOLVED = "resolved"
    REPLIED = "replied"
    REVISIT = "revisit"
    SUPERVISOR_REVISIT = "supervisor_revisit"
    CLOSED = "closed"
    REOPENED = "reopened"
    WITHDRAWN = "withdrawn"
    ARCHIVED = "archived"


class Role(StrEnum):
    COMPLAINANT = "complainant"
    INTAKE_CLERK = "intake_clerk"
    HANDLER = "handler"
    DEPARTMENT_HEAD = "department_head"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    SYSTEM = "system"  # the scheduler and other automatic actors


class Action(StrEnum):
    SUBMIT = "submit"
    ACCEPT = "accept"
    REFUSE = "refuse"
    ASSIGN = "assign"
    TRANSFER = "transfer"
    ADD_CO_HANDLER = "add_co_handler"
    ACKNOWLEDGE = "acknowledge"
    REQUEST_MATERIAL = "request_material"
    SUPPLEMENT = "supplement"
    RESUME = "resume"
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    DENY_EXTENSION = "deny_extension"
    ADD_NOTE = "add_note"
    SET_SEVERITY = "set_severity"
    RESOLVE = "resolve"
    HAND_BACK = "hand_back"
    NOTIFY_RESULT = "notify_result"
    START_REVISIT = "start_revisit"
    REQUEST_SUPERVISOR_REVISIT = "request_supervisor_revisit"
    CLOSE = "close"
    REOPEN = "reopen"
    DISPUTE = "dispute"
    WITHDRAW = "withdraw"
    ARCHIVE = "archive"
    ISSUE_WRITTEN_REPLY = "issue_written_reply"
    SETTLE_AS_DECIDED = "settle_as_decided"
    RECORD_RECALL_DECISION = "record_recall_decision"
    REQUEST_STATEMENT = "request_statement"
    RECORD_STATEMENT = "record_statement"
    WAIVE_STATEMENT = "waive_statement"
    LINK_REPEAT = "link_repeat"
    UNLINK_REPEAT = "unlink_repeat"
    DECIDE_WITH_GROUP = "decide_with_group"


class Effect(StrEnum):
    """Side effects the shell performs, in the same transaction as the event row.

    A notify_* effect addresses whoever stands in that relation to the case; when nobody does
    (no handler yet), nothing is sent.
    """

    ASSIGN_NUMBER = "assign_number"  # in the profile's format (models/numbering.py)
    COMPUTE_DEADLINES = "compute_deadlines"  # a new stage starts: (re)compute its deadlines
    START_CLOCK = "start_clock"
    PAUSE_CLOCK = "pause_clock"
    RESUME_CLOCK = "resume_clock"
    STOP_CLOCK = "stop_clock"
    EXTEND_DEADLINE = "extend_deadline"
    CANCEL_EXTENSION_REQUEST = "cancel_extension_request"
    NOTIFY_COMPLAINANT = "notify_complainant"
    NOTIFY_INTAKE = "notify_intake"  # the profile's intake desk
    NOTIFY_DEPARTMENT = "notify_department"  # a department receiving the case
    NOTIFY_HANDLERS = "notify_handlers"  # the lead and co-handlers
    NOTIFY_CASE_STAFF = "notify_case_staff"  # handlers once assigned, else the intake desk
    NOTIFY_APPROVER = "notify_approver"
    NOTIFY_SUPERVISOR = "notify_supervisor"
    NOTIFY_RESPONDENT = "notify_respondent"  # the staff member complained about, if linked
    SEND_SURVEY = "send_survey"
    START_RETENTION = "start_retention"  # retention period, then PII anonymised


class RefusalReason(StrEnum):
    ROLE_NOT_PERMITTED = "role_not_permitted"
    ILLEGAL_STATE = "illegal_state"
    NOT_COMPLAINANT_OWNER = "not_complainant_owner"
    NOT_LEAD_HANDLER = "not_lead_handler"
    NOT_ASSIGNED = "not_assigned"
    EXTENSION_ALREADY_PENDING = "extension_already_pending"
    NO_EXTENSION_PENDING = "no_extension_pending"
    EXTENSION_LIMIT_REACHED = "extension_limit_reached"
    OWN_EXTENSION_REQUEST = "own_extension_request"
    WRITTEN_REPLY_MISSING = "written_reply_missing"
    SEVERITY_FIXED = "severity_fixed"
    NOT_ENABLED_BY_PROFILE = "not_enabled_by_profile"
    RECALL_DECISION_MISSING = "recall_decision_missing"
    STATEMENT_PENDING = "statement_pending"
    STATEMENT_NOT_REQUESTED = "statement_not_requested"
    STATEMENT_ALREADY_REQUESTED = "statement_already_requested"
    NO_STATEMENT_REQUESTED = "no_statement_requested"
    NOT_RESPONDENT = "not_respondent"


# States in which the organisation still owes something on the case.
OPEN_STATES: frozenset[State] = frozenset(
    {
        State.SUBMITTED,
        State.ACCEPTED,
        State.ASSIGNED,
        State.IN_PROGRESS,
        State.WAITING_FOR_COMPLAINANT,
        State.RESOLVED,
        State.REPLIED,
        State.REVISIT,
        State.SUPERVISOR_REVISIT,
        State.REOPENED,
    }
)
# Handling has ended. Only `archive` (and `dispute` from closed) may follow; archived is final.
TERMINAL_STATES: frozenset[State] = frozenset(
    {State.REFUSED, State.WITHDRAWN, State.CLOSED, State.ARCHIVED}
)
# Every open state has a stage deadline counting, except while we wait for the complainant.
CLOCK_RUNNING_STATES: frozenset[State] = OPEN_STATES - {State.WAITING_FOR_COMPLAINANT}

_EXTENSION_STATES = frozenset({State.IN_PROGRESS, State.WAITING_FOR_COMPLAINANT})
# Withdrawal is possible until the result has been told (see module docstring).
_WITHDRAWABLE_STATES = OPEN_STATES - {State.REPLIED, State.REVISIT, State.SUPERVISOR_REVISIT}

# Before the decision: where the respondent's statement may be recorded or its period lapse.
_STATEMENT_STATES = frozenset(
    {
        State.ACCEPTED,
        State.ASSIGNED,
        State.IN_PROGRESS,
        State.WAITING_FOR_COMPLAINANT,
        State.REOPENED,
    }
)

_DISPATCHERS = frozenset({Role.INTAKE_CLERK, Role.DEPARTMENT_HEAD, Role.SUPERVISOR, Role.ADMIN})
_APPROVERS = frozenset({Role.DEPARTMENT_HEAD, Role.SUPERVISOR, Role.ADMIN})
_CASE_WORKERS = frozenset({Role.HANDLER, Role.DEPARTMENT_HEAD})
_STAFF = frozenset(
    {Role.INTAKE_CLERK, Role.HANDLER, Role.DEPARTMENT_HEAD, Role.SUPERVISOR, Role.ADMIN}
)
_FOLLOW_UP = frozenset({Role.SYSTEM, Role.SUPERVISOR})
# Who confirms, dismisses, trims and decides a mass-matter group (issue 14: a supervisor
# confirms what the detector proposes; one decision then answers the whole group).
MATTER_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})
# States whose result is still to be decided: a group decision resolves a member in these.
_UNDECIDED_STATES = frozenset(
    {State.SUBMITTED, State.ACCEPTED, State.ASSIGNED, State.IN_PROGRESS, State.REOPENED}
)


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the rules need to know besides the state. Defaults are the cautious side."""

    # The acting complainant is the one who filed this complaint.
    actor_is_complainant_owner: bool = False
    # The acting handler is assigned to this case (as lead or co-handler).
    actor_is_assignee: bool = False
    # The acting handler is the case's lead handler (a lead is always an assignee).
    actor_is_lead: bool = False
    # An extension request awaits its approver.
    extension_pending: bool = False
    # The acting staff member made the pending extension request.
    actor_is_extension_requester: bool = False
    # Approved extensions so far, and the profile's limit.
    extensions_used: int = 0
    max_extensions: int = 1
    # A written complaint whose written reply the profile requires and nobody has issued yet.
    written_reply_pending: bool = False
    # The profile lets staff raise the severity while the case is open ([severity_rules]
    # raisable), and a higher severity exists. The system's own upgrades need no such leave.
    severity_raisable: bool = False
    # The profile sends a disputed result to a supervisor revisit ([reply] disputed_result =
    # "supervisor_revisit") instead of re-investigation (reopen, the default).
    dispute_to_supervisor: bool = False
    # The profile lets staff settle a case at acceptance with an earlier decided case's reply
    # ([acceptance] settle_as_decided, R6's batch rule).
    settle_as_decided_enabled: bool = False
    # The profile requires a recall decision before resolving ([resolution]
    # requires_recall_decision, R26), and it has not been recorded yet.
    recall_decision_enabled: bool = False
    recall_decision_pending: bool = False
    # The profile makes the respondent's statement a condition of the decision ([statement]
    # required).
    statement_required: bool = False
    # A statement was asked for and is neither recorded nor lapsed.
    statement_open: bool = False
    # A statement was recorded, or its period lapsed (the waiver is on record).
    statement_settled: bool = False
    # The acting staff member is the respondent asked for the open statement.
    actor_is_respondent: bool = False

    def __post_init__(self) -> None:
        # Inconsistent facts are a bug in the caller: fail loudly rather than decide on them.
        if self.actor_is_lead and not self.actor_is_assignee:
            raise ValueError("a lead handler is always an assignee (actor_is_assignee=False)")
        if self.actor_is_extension_requester and not self.extension_pending:
            raise ValueError("actor_is_extension_requester needs extension_pending")
        if self.recall_decision_pending and not self.recall_decision_enabled:
            raise ValueError("recall_decision_pending needs recall_decision_enabled")
        if self.extensions_used < 0 or self.max_extensions < 0:
            raise ValueError("extension counts cannot be negative")
        if self.actor_is_respondent and not self.statement_open:
            raise ValueError("actor_is_respondent needs statement_open")


@dataclass(frozen=True, slots=True)
class Transition:
    from_state: State
    to_state: State
    action: Action
    event_kind: str
    effects: tuple[str, ...]

    @property
    def changes_state(self) -> bool:
        return self.from_state != self.to_state


@dataclass(frozen=True, slots=True)
class Refusal:
    reason_code: str
    message: str


class TransitionRefused(Exception):
    """Raised by `replay` when a step is refused."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class InconsistentHistory(ValueError):
    """An event chain that cannot have been produced by the rules."""


@dataclass(frozen=True, slots=True)
class _Rule:
    sources: Mapping[State, State]  # from-state -> to-state
    roles: frozenset[Role]
    event_kind: str
    effects: tuple[Effect, ...]
    verb: str  # "cannot {verb} a complaint in state ..."
    # Roles that must stand in a relation to the case, and which relation.
    owner_roles: frozenset[Role] = field(default_factory=frozenset)
    lead_roles: frozenset[Role] = field(default_factory=frozenset)
    assignee_roles: frozenset[Role] = field(default_factory=frozenset)


def _to(target: State, *sources: State | Iterable[State]) -> dict[State, State]:
    flat: list[State] = []
    for source in sources:
        flat.extend([source] if isinstance(source, State) else sorted(source))
    return dict.fromkeys(flat, target)


def _stay(states: Iterable[State]) -> dict[State, State]:
    return {state: state for state in states}


_C = frozenset({Role.COMPLAINANT})
_H = frozenset({Role.HANDLER})

_RULES: Mapping[Action, _Rule] = {
    Action.SUBMIT: _Rule(
        _to(State.SUBMITTED, State.DRAFT),
        frozenset({Role.COMPLAINANT, Role.SYSTEM}) | _STAFF,  # staff: recorded for someone
        "submitted",
        (
            Effect.ASSIGN_NUMBER,
            Effect.COMPUTE_DEADLINES,
            Effect.NOTIFY_INTAKE,
            Effect.NOTIFY_COMPLAINANT,
        ),
        "submit",
        owner_roles=_C,
    ),
    Action.ACCEPT: _Rule(
        _to(State.ACCEPTED, State.SUBMITTED),
        _DISPATCHERS,
        "accepted",
        (Effect.COMPUTE_DEADLINES, Effect.NOTIFY_COMPLAINANT),
        "accept",
    ),
    Action.REFUSE: _Rule(
        _to(State.REFUSED, State.SUBMITTED),
        _DISPATCHERS,
        "refused",
        (Effect.NOTIFY_COMPLAINANT,),  # with the reason and the guidance where to turn
        "refuse",
    ),
    Action.ASSIGN: _Rule(
        _to(State.ASSIGNED, State.ACCEPTED, State.REOPENED),
        _DISPATCHERS,
        "assigned",
        (Effect.COMPUTE_DEADLINES, Effect.NOTIFY_HANDLERS),
        "assign",
    ),
    Action.TRANSFER: _Rule(
        {
            State.SUBMITTED: State.SUBMITTED,
            State.ACCEPTED: State.ACCEPTED,
            State.ASSIGNED: State.ACCEPTED,
        },
        _DISPATCHERS,
        "transferred",
        (Effect.COMPUTE_DEADLINES, Effect.NOTIFY_DEPARTMENT),
        "transfer",
    ),
    Action.ADD_CO_HANDLER: _Rule(
        _stay({State.ASSIGNED, State.IN_PROGRESS, State.WAITING_FOR_COMPLAINANT}),
        _DISPATCHERS,
        "co_handler_added",
        (Effect.NOTIFY_DEPARTMENT,),
        "add a co-handler to",
    ),
    Action.ACKNOWLEDGE: _Rule(
        _to(State.IN_PROGRESS, State.ASSIGNED, State.REOPENED),
        _CASE_WORKERS,
        "acknowledged",
        (Effect.COMPUTE_DEADLINES,),
        "acknowledge",
        lead_roles=_H,
    ),
    Action.REQUEST_MATERIAL: _Rule(
        _to(State.WAITING_FOR_COMPLAINANT, State.IN_PROGRESS),
        _CASE_WORKERS,
        "material_requested",
        (Effect.NOTIFY_COMPLAINANT,),  # the handler's question
        "request material for",
        lead_roles=_H,
    ),
    Action.SUPPLEMENT: _Rule(
        _to(State.IN_PROGRESS, State.WAITING_FOR_COMPLAINANT),
        _C,
        "material_supplied",
        (Effect.NOTIFY_HANDLERS,),
        "supplement",
        owner_roles=_C,
    ),
    Action.RESUME: _Rule(
        _to(State.IN_PROGRESS, State.WAITING_FOR_COMPLAINANT),
        _CASE_WORKERS | {Role.SYSTEM},
        "handling_resumed",
        (Effect.NOTIFY_HANDLERS,),
        "resume handling of",
        lead_roles=_H,
    ),
    Action.REQUEST_EXTENSION: _Rule(
        _stay({State.IN_PROGRESS}),
        _CASE_WORKERS,
        "extension_requested",
        (Effect.NOTIFY_APPROVER,),
        "request an extension for",
        lead_roles=_H,
    ),
    Action.APPROVE_EXTENSION: _Rule(
        _stay(_EXTENSION_STATES),
        _APPROVERS,
        "extension_approved",
        (Effect.EXTEND_DEADLINE, Effect.NOTIFY_COMPLAINANT, Effect.NOTIFY_HANDLERS),
        "approve an extension for",
    ),
    Action.DENY_EXTENSION: _Rule(
        _stay(_EXTENSION_STATES),
        _APPROVERS,
        "extension_denied",
        (Effect.NOTIFY_HANDLERS,),
        "deny an extension for",
    ),
    Action.ADD_NOTE: _Rule(
        _stay(OPEN_STATES),
        _STAFF,
        "note_added",
        (),
        "add a note to",
        assignee_roles=_H,  # co-handlers contribute notes; other handlers are not on the case
    ),
    Action.SET_SEVERITY: _Rule(
        _stay(OPEN_STATES - {State.REPLIED, State.REVISIT, State.SUPERVISOR_REVISIT}),
        _STAFF | {Role.SYSTEM},
        "severity_set",
        (Effect.COMPUTE_DEADLINES, Effect.NOTIFY_CASE_STAFF),
        "set the severity of",
        assignee_roles=_H,
    ),
    Action.RESOLVE: _Rule(
        _to(State.RESOLVED, State.IN_PROGRESS),
        _CASE_WORKERS,
        "resolved",
        (Effect.COMPUTE_DEADLINES,),  # the result-notice deadline
        "resolve",
        lead_roles=_H,
    ),
    Action.HAND_BACK: _Rule(
        _to(State.ACCEPTED, State.ASSIGNED, State.IN_PROGRESS),
        _CASE_WORKERS,
        "handed_back",
        (Effect.COMPUTE_DEADLINES, Effect.NOTIFY_INTAKE),
        "hand back",
        lead_roles=_H,
    ),
    Action.NOTIFY_RESULT: _Rule(
        _to(State.REPLIED, State.RESOLVED),
        _STAFF | {Role.SYSTEM},
        "result_notified",
        (Effect.NOTIFY_COMPLAINANT, Effect.COMPUTE_DEADLINES),  # the revisit deadline
        "notify the result of",
        lead_roles=_H,
    ),
    Action.START_REVISIT: _Rule(
        _to(State.REVISIT, State.REPLIED),
        _FOLLOW_UP,
        "revisit_started",
        (Effect.SEND_SURVEY, Effect.COMPUTE_DEADLINES),
        "start the revisit of",
    ),
    Action.REQUEST_SUPERVISOR_REVISIT: _Rule(
        _to(State.SUPERVISOR_REVISIT, State.REVISIT),
        frozenset({Role.SYSTEM}),
        "supervisor_revisit_requested",
        (),  # the survey shell tells the supervisors, with the revisit's due date
        "request a supervisor revisit of",
    ),
    Action.CLOSE: _Rule(
        _to(State.CLOSED, State.REVISIT, State.SUPERVISOR_REVISIT),
        _FOLLOW_UP,
        "closed",
        (Effect.NOTIFY_COMPLAINANT,),
        "close",
    ),
    Action.REOPEN: _Rule(
        _to(State.REOPENED, State.REPLIED, State.REVISIT, State.SUPERVISOR_REVISIT),
        _FOLLOW_UP,
        "reopened",
        (Effect.COMPUTE_DEADLINES, Effect.NOTIFY_HANDLERS, Effect.NOTIFY_COMPLAINANT),
        "reopen",
    ),
    Action.DISPUTE: _Rule(
        _to(State.REOPENED, State.REPLIED, State.REVISIT, State.SUPERVISOR_REVISIT, State.CLOSED),
        _C,
        "disputed",
        (Effect.COMPUTE_DEADLINES, Effect.NOTIFY_SUPERVISOR, Effect.NOTIFY_HANDLERS),
        "dispute",
        owner_roles=_C,
    ),
    Action.WITHDRAW: _Rule(
        _to(State.WITHDRAWN, _WITHDRAWABLE_STATES),
        _C,
        "withdrawn",
        (Effect.NOTIFY_CASE_STAFF,),
        "withdraw",
        owner_roles=_C,
    ),
    Action.ARCHIVE: _Rule(
        _to(State.ARCHIVED, State.CLOSED, State.REFUSED, State.WITHDRAWN),
        frozenset({Role.SYSTEM, Role.ADMIN}),
        "archived",
        (Effect.START_RETENTION,),
        "archive",
    ),
    Action.SETTLE_AS_DECIDED: _Rule(
        _to(State.RESOLVED, State.SUBMITTED, State.ACCEPTED),
        _DISPATCHERS,
        "settled_as_decided",
        (Effect.COMPUTE_DEADLINES,),  # the result-notice deadline; the result is told next
        "settle as already decided",
    ),
    Action.RECORD_RECALL_DECISION: _Rule(
        _stay({State.ASSIGNED, State.IN_PROGRESS, State.WAITING_FOR_COMPLAINANT}),
        _CASE_WORKERS | {Role.SUPERVISOR},
        "recall_decision_recorded",
        (),
        "record the recall decision for",
        lead_roles=_H,
    ),
    Action.REQUEST_STATEMENT: _Rule(
        _stay({State.IN_PROGRESS, State.WAITING_FOR_COMPLAINANT}),
        _CASE_WORKERS,
        "statement_requested",
        (Effect.NOTIFY_RESPONDENT,),  # with the facts (masked as for the target) and the date
        "request the respondent's statement on",
        lead_roles=_H,
    ),
    Action.RECORD_STATEMENT: _Rule(
        _stay(_STATEMENT_STATES),
        _STAFF,  # the respondent, whatever their role; else the case's handler (see decide)
        "statement_recorded",
        (Effect.NOTIFY_HANDLERS,),
        "record the respondent's statement on",
    ),
    Action.WAIVE_STATEMENT: _Rule(
        _stay(_STATEMENT_STATES),
        frozenset({Role.SYSTEM}),  # the period lapsed unanswered
        "statement_waived",
        (Effect.NOTIFY_HANDLERS, Effect.NOTIFY_RESPONDENT),
        "waive, its period lapsed, the respondent's statement on",
    ),
    Action.LINK_REPEAT: _Rule(
        _stay(OPEN_STATES | {State.CLOSED}),
        _STAFF | {Role.SYSTEM},
        "repeat_linked",
        (),
        "link as a repeat",
        assignee_roles=_H,
    ),
    Action.UNLINK_REPEAT: _Rule(
        _stay(OPEN_STATES | {State.CLOSED}),
        _STAFF,
        "repeat_unlinked",
        (),
        "unlink as a repeat",
        assignee_roles=_H,
    ),
    Action.DECIDE_WITH_GROUP: _Rule(
        _to(State.RESOLVED, _UNDECIDED_STATES),
        MATTER_ROLES,
        "decided_with_group",
        (Effect.COMPUTE_DEADLINES,),  # the result-notice deadline; the result is told next
        "decide with its group",
    ),
    Action.ISSUE_WRITTEN_REPLY: _Rule(
        _stay({State.RESOLVED, State.REPLIED, State.REVISIT, State.SUPERVISOR_REVISIT}),
        _STAFF,
        "written_reply_issued",
        (),
        "issue the written reply to",
        lead_roles=_H,
    ),
}

# Every (from, to) pair some action can produce; `derive_state` checks event rows against it.
LEGAL_EDGES: frozenset[tuple[State, State]] = frozenset(
    edge for rule in _RULES.values() for edge in rule.sources.items()
) | frozenset(
    (source, State.SUPERVISOR_REVISIT)
    for source in _RULES[Action.DISPUTE].sources
    if source != State.SUPERVISOR_REVISIT
)

_ROLE_NAMES: Mapping[Role, str] = {
    Role.COMPLAINANT: "the complainant",
    Role.INTAKE_CLERK: "an intake clerk",
    Role.HANDLER: "a handler",
    Role.DEPARTMENT_HEAD: "a department head",
    Role.SUPERVISOR: "a supervisor",
    Role.ADMIN: "an admin",
    Role.SYSTEM: "the system",
}


def _name_roles(roles: Iterable[Role]) -> str:
    chosen = frozenset(roles)
    names = [_ROLE_NAMES[role] for role in Role if role in chosen]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _refuse(code: RefusalReason, message: str, state: State) -> Refusal:
    # Every message names the state, so a stale button explains itself.
    return Refusal(code, f"{message} (the complaint is in state '{state}')")


def _check_relation(rule: _Rule, state: State, role: Role, facts: CaseFacts) -> Refusal | None:
    if role in rule.owner_roles and not facts.actor_is_complainant_owner:
        return _refuse(
            RefusalReason.NOT_COMPLAINANT_OWNER,
            f"only the complainant who filed it may {rule.verb} this complaint",
            state,
        )
    if role in rule.lead_roles and not facts.actor_is_lead:
        return _refuse(
            RefusalReason.NOT_LEAD_HANDLER,
            f"only its lead handler may {rule.verb} this complaint",
            state,
        )
    if role in rule.assignee_roles and not facts.actor_is_assignee:
        return _refuse(
            RefusalReason.NOT_ASSIGNED,
            f"only a handler assigned to it may {rule.verb} this complaint",
            state,
        )
    return None


def _check_extension(action: Action, state: State, facts: CaseFacts) -> Refusal | None:
    limit_reached = facts.extensions_used >= facts.max_extensions
    limit = (
        f"the extension limit ({facts.max_extensions}) has been reached"
        f" ({facts.extensions_used} approved)"
    )
    if action is Action.REQUEST_EXTENSION:
        if facts.extension_pending:
            return _refuse(
                RefusalReason.EXTENSION_ALREADY_PENDING,
                "an extension request is already awaiting approval",
                state,
            )
        if limit_reached:
            return _refuse(RefusalReason.EXTENSION_LIMIT_REACHED, limit, state)
    elif action in (Action.APPROVE_EXTENSION, Action.DENY_EXTENSION):
        if not facts.extension_pending:
            return _refuse(
                RefusalReason.NO_EXTENSION_PENDING, "no extension request is pending", state
            )
        if facts.actor_is_extension_requester:
            return _refuse(
                RefusalReason.OWN_EXTENSION_REQUEST,
                "nobody may decide on their own extension request",
                state,
            )
        # The profile may have lowered its limit since the request was made.
        if action is Action.APPROVE_EXTENSION and limit_reached:
            return _refuse(RefusalReason.EXTENSION_LIMIT_REACHED, limit, state)
    return None


def _check_written_reply(action: Action, state: State, facts: CaseFacts) -> Refusal | None:
    if action is Action.CLOSE and facts.written_reply_pending:
        return _refuse(
            RefusalReason.WRITTEN_REPLY_MISSING,
            "a written complaint cannot be closed before its written reply is issued",
            state,
        )
    return None


def _check_statement(action: Action, state: State, role: Role, facts: CaseFacts) -> Refusal | None:
    if action is Action.RESOLVE:
        if facts.statement_open:
            return _refuse(
                RefusalReason.STATEMENT_PENDING,
                "cannot resolve while the respondent's statement is awaited: decide once it is"
                " recorded or its period has lapsed",
                state,
            )
        if facts.statement_required and not facts.statement_settled:
            return _refuse(
                RefusalReason.STATEMENT_NOT_REQUESTED,
                "cannot resolve before the respondent's statement is requested: the profile"
                " gives the respondent the right to state their case first",
                state,
            )
    elif action is Action.REQUEST_STATEMENT and facts.statement_open:
        return _refuse(
            RefusalReason.STATEMENT_ALREADY_REQUESTED,
            "cannot request the respondent's statement again: it is already awaited",
            state,
        )
    elif action in (Action.RECORD_STATEMENT, Action.WAIVE_STATEMENT):
        if not facts.statement_open:
            return _refuse(
                RefusalReason.NO_STATEMENT_REQUESTED,
                f"cannot {action.value.split('_')[0]} a statement: none of the respondent is"
                " awaited",
                state,
            )
        on_behalf = role in _CASE_WORKERS and (role is not Role.HANDLER or facts.actor_is_lead)
        if action is Action.RECORD_STATEMENT and not facts.actor_is_respondent and not on_behalf:
            return _refuse(
                RefusalReason.NOT_RESPONDENT,
                "only the respondent, or the case's handler on their behalf, may record the"
                " statement",
                state,
            )
    return None


def _derived_effects(source: State, target: State, facts: CaseFacts) -> tuple[Effect, ...]:
    """Clock and pending-request effects follow from the state sets, so they cannot drift."""
    effects: list[Effect] = []
    was_running, runs = source in CLOCK_RUNNING_STATES, target in CLOCK_RUNNING_STATES
    if was_running and target == State.WAITING_FOR_COMPLAINANT:
        effects.append(Effect.PAUSE_CLOCK)
    elif source == State.WAITING_FOR_COMPLAINANT and runs:
        effects.append(Effect.RESUME_CLOCK)
    elif (was_running or source == State.WAITING_FOR_COMPLAINANT) and target not in OPEN_STATES:
        effects.append(Effect.STOP_CLOCK)
    elif source not in OPEN_STATES and runs:
        effects.append(Effect.START_CLOCK)
    if facts.extension_pending and source in _EXTENSION_STATES and target not in _EXTENSION_STATES:
        effects.append(Effect.CANCEL_EXTENSION_REQUEST)
    return tuple(effects)


def decide(
    state: State, action: Action, role: Role, facts: CaseFacts = CaseFacts()
) -> Transition | Refusal:
    """The transition `role` may make by `action` from `state`, or why not.

    Checks in order: the role may ever take this action; the action applies in this state;
    the actor's relation to the case; the extension rules; the written-reply rule.
    """
    rule = _RULES[action]
    if role not in rule.roles:
        return _refuse(
            RefusalReason.ROLE_NOT_PERMITTED,
            f"only {_name_roles(rule.roles)} may {rule.verb} a complaint;"
            f" {_ROLE_NAMES[role]} may not",
            state,
        )
    target = rule.sources.get(state)
    if target is None:
        allowed = ", ".join(f"'{s}'" for s in State if s in rule.sources)
        return Refusal(
            RefusalReason.ILLEGAL_STATE,
            f"cannot {rule.verb} a complaint in state '{state}' (only in {allowed})",
        )
    refusal = (
        _check_relation(rule, state, role, facts)
        or _check_extension(action, state, facts)
        or _check_written_reply(action, state, facts)
        or _check_statement(action, state, role, facts)
    )
    if (
        refusal is None
        and action is Action.SET_SEVERITY
        and role is not Role.SYSTEM
        and not facts.severity_raisable
    ):
        refusal = _refuse(
            RefusalReason.SEVERITY_FIXED,
            "the profile does not let staff set (raise) this complaint's severity",
            state,
        )
    if (
        refusal is None
        and action is Action.SETTLE_AS_DECIDED
        and not facts.settle_as_decided_enabled
    ):
        refusal = _refuse(
            RefusalReason.NOT_ENABLED_BY_PROFILE,
            "the profile does not let staff settle a complaint as already decided",
            state,
        )
    if (
        refusal is None
        and action is Action.RECORD_RECALL_DECISION
        and not facts.recall_decision_enabled
    ):
        refusal = _refuse(
            RefusalReason.NOT_ENABLED_BY_PROFILE,
            "the profile does not ask staff to record a recall decision",
            state,
        )
    if refusal is None and action is Action.RESOLVE and facts.recall_decision_pending:
        refusal = _refuse(
            RefusalReason.RECALL_DECISION_MISSING,
            "the recall decision must be recorded before staff may resolve this complaint",
            state,
        )
    if refusal is not None:
        return refusal
    if action is Action.DISPUTE and facts.dispute_to_supervisor:
        target = State.SUPERVISOR_REVISIT  # from there too: the revisit owed starts again
    effects = tuple(str(e) for e in (*rule.effects, *_derived_effects(state, target, facts)))
    return Transition(state, target, action, rule.event_kind, effects)


def may_manage_matters(role: Role) -> bool:
    """Whether `role` may confirm, dismiss, trim or decide a mass-matter group (the same roles
    the rule book lets `decide_with_group`)."""
    return role in MATTER_ROLES


def allowed_actions(state: State, role: Role, facts: CaseFacts = CaseFacts()) -> list[Action]:
    """The actions `role` may take now, in declaration order (for staff buttons)."""
    return [a for a in Action if isinstance(decide(state, a, role, facts), Transition)]


def derive_state(transitions: Sequence[tuple[State, State]]) -> State:
    """The current state proven from a complaint's event rows, oldest first.

    Each row's from-state must equal the previous row's to-state, the first must start at
    draft or submitted, and every step must be one the rules can produce. No rows: a draft.
    Raises `InconsistentHistory` naming the first bad row.
    """
    if not transitions:
        return State.DRAFT
    first_from = State(transitions[0][0])
    if first_from not in (State.DRAFT, State.SUBMITTED):
        raise InconsistentHistory(
            f"event 0 starts from '{first_from}'; a history starts at 'draft' or 'submitted'"
        )
    current = first_from
    for index, (raw_from, raw_to) in enumerate(transitions):
        source, target = State(raw_from), State(raw_to)
        if source != current:
            raise InconsistentHistory(
                f"event {index} goes from '{source}' but the case was in '{current}'"
            )
        if (source, target) not in LEGAL_EDGES:
            raise InconsistentHistory(
                f"event {index} goes from '{source}' to '{target}', which no action allows"
            )
        current = target
    return current


def replay(
    steps: Iterable[tuple[Action, Role] | tuple[Action, Role, CaseFacts]],
    start: State = State.DRAFT,
) -> State:
    """Apply `steps` through `decide` from `start`; raises `TransitionRefused` on a refusal."""
    state = start
    for step in steps:
        action, role = step[0], step[1]
        facts = step[2] if len(step) == 3 else CaseFacts()
        outcome = decide(state, action, role, facts)
        if isinstance(outcome, Refusal):
            raise TransitionRefused(outcome)
        state = outcome.to_state
    return state
