"""What a message to a person is about, as plain values: the case card a staff member is shown
and the milestone a complainant is told of.

models/notifications.py builds them (masked for their reader) and the conversations in handlers/
render them in the reader's language (handlers.staff, handlers.notices); both import them from
here, so the models never import the rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.workflow import Action

# The actions offered as buttons, in this order. Automatic steps (result notice, revisit,
# closing, archiving) are the scheduler's, not buttons.
BUTTON_ACTIONS: tuple[Action, ...] = (
    Action.ACCEPT,
    Action.REFUSE,
    Action.SETTLE_AS_DECIDED,  # where the profile enables it (R6 batch rule)
    Action.ASSIGN,
    Action.TRANSFER,
    Action.ADD_CO_HANDLER,
    Action.ACKNOWLEDGE,
    Action.REQUEST_MATERIAL,
    Action.RESUME,
    Action.REQUEST_EXTENSION,
    Action.APPROVE_EXTENSION,
    Action.DENY_EXTENSION,
    Action.ADD_NOTE,
    Action.SET_SEVERITY,
    Action.RECORD_RECALL_DECISION,  # where the profile asks for it (R26), before resolving
    Action.REQUEST_STATEMENT,  # R13/R4: the respondent's statement before the decision
    Action.RECORD_STATEMENT,
    Action.RESOLVE,
    Action.HAND_BACK,
    Action.CLOSE,  # supervisors, after a revisit (e.g. an unsatisfied survey's)
    Action.REOPEN,
)


def button_actions(allowed: Iterable[str]) -> tuple[str, ...]:
    """The allowed actions a case card offers, in `BUTTON_ACTIONS` order."""
    chosen = {str(a) for a in allowed}
    return tuple(str(a) for a in BUTTON_ACTIONS if a in chosen)


@dataclass(frozen=True)
class CaseCard:
    """One complaint as one staff member may see it: identity fields already masked."""

    id: int
    number: str
    state: str
    version: int
    category: str | None = None
    category_label: str | None = None
    severity: str | None = None
    severity_label: str | None = None
    target: str | None = None
    facts: str | None = None
    complainant_name: str | None = None
    complainant_phone: str | None = None
    anonymous: bool = False
    lead_department_id: int | None = None
    lead_department: str | None = None
    co_departments: tuple[str, ...] = ()
    handler: str | None = None
    due: datetime | None = None
    due_stage: str | None = None
    provisional: bool = False
    extension_request: Mapping[str, Any] | None = None
    actions: tuple[str, ...] = ()  # the actions this viewer may take now
    # The latest message to the complainant failed for good (bot blocked, chat gone): staff
    # must reach them another way.
    complainant_unreachable: bool = False
    # The rest of the intake answers (place, request and witnesses are masked with the facts).
    subcategory: str | None = None
    subcategory_label: str | None = None
    channel: str | None = None
    incident_at: datetime | None = None
    place: str | None = None
    request_type: str | None = None
    request_text: str | None = None
    witnesses: str | None = None
    photos: int = 0  # attachments this viewer may see
    written: bool = False
    # How exactly the complainant gave the time (validators.Precision, or "unknown").
    incident_precision: str | None = None
    # "staff": the complainant was not sure the matter belongs here; staff screen it.
    screening: str | None = None
    # R26: the profile asks whether the product recall is started ([resolution]
    # requires_recall_decision); the decision (None: not yet recorded) and its reason.
    recall_asked: bool = False
    recall_decision: bool | None = None
    recall_reason: str | None = None
    # The respondent's statement (models.statement): requested / recorded / waived, whose,
    # by when, and what they said (masked with the facts).
    statement_status: str | None = None
    statement_respondent: str | None = None
    statement_due: datetime | None = None
    statement_text: str | None = None
    statement_on_behalf: bool = False
    # The earlier complaint of the same complainant this one repeats (its number), if linked.
    repeat_of: str | None = None
    # The mass-matter group it belongs to: id, "proposed" or "confirmed", how many members.
    group_id: int | None = None
    group_status: str | None = None
    group_size: int = 0

    @property
    def shows_identity(self) -> bool:
        return any(
            value not in (None, "", "***")
            for value in (self.complainant_name, self.complainant_phone)
        )


# The actions the complainant hears of (their milestones); the submission is answered in the
# intake dialog, closing and reopening by the survey.
MILESTONE_ACTIONS = frozenset(
    {
        Action.ACCEPT,
        Action.REFUSE,
        Action.ASSIGN,
        Action.REQUEST_MATERIAL,
        Action.APPROVE_EXTENSION,
        Action.NOTIFY_RESULT,
    }
)


@dataclass(frozen=True)
class Milestone:
    """What the complainant is told about; fields unused by an action stay None."""

    action: str
    number: str
    due: datetime | None = None  # the handling (resolution) deadline now running
    provisional: bool = False
    contact_due: datetime | None = None  # the first contact owed to the complainant
    # The profile's time to tell the result once handled (amount, unit), e.g. R1's 3 WD (D11).
    result_term: tuple[int, str] | None = None
    department: str | None = None  # assigned to
    department_is_target: bool = False  # the department assigned is the one complained about
    question: str | None = None  # material requested
    reply_text: str | None = None  # the result
    reason: str | None = None  # refusal or extension reason
    guidance: str | None = None  # where to turn instead (refusal)
    attachments: tuple[str, ...] = ()  # stored attachment ids sent with the result
