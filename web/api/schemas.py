"""The REST API's request and response shapes (pydantic v2). The OpenAPI document is generated
from these models and the route table (web.api.routes); nothing of it is written by hand."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from handlers.desk_form import CHANNELS
from models import statistics as st
from models.api_tokens import Scope
from models.cards import BUTTON_ACTIONS
from models.caselist import ALL, DUE_FILTERS
from models.workflow import Action, Role

MAX_LIMIT = 100
# Every staff action the workflow offers: the desk's buttons and the written reply.
STAFF_ACTIONS: tuple[str, ...] = (
    *(str(a) for a in BUTTON_ACTIONS),
    str(Action.ISSUE_WRITTEN_REPLY),
)

StaffActionName = Literal[STAFF_ACTIONS]  # type: ignore[valid-type]
RecordedChannel = Literal[tuple(CHANNELS)]  # type: ignore[valid-type]
StateFilter = Literal[("open", "all", *ALL)]  # type: ignore[valid-type]
DueFilter = Literal[DUE_FILTERS]  # type: ignore[valid-type]
RoleName = Literal[tuple(str(r) for r in Role)]  # type: ignore[valid-type]
ScopeName = Literal[tuple(str(s) for s in Scope)]  # type: ignore[valid-type]

_strict = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (application/problem+json)."""

    type: str = Field(description="A URI naming the kind of problem")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str | None = Field(None, description="The machine-readable reason (e.g. a refusal)")
    errors: dict[str, str] | None = Field(None, description="What is wrong, by field")


# -- complaints -----------------------------------------------------------------------------------


class ComplaintListQuery(BaseModel):
    model_config = _strict

    state: StateFilter = "open"
    category: str | None = Field(None, max_length=64)
    department: int | None = Field(None, ge=1, le=2**31 - 1)
    handler: int | None = Field(None, ge=1, le=2**31 - 1)
    channel: str | None = Field(None, max_length=16)
    due: DueFilter | None = None
    provisional: bool = False
    unreachable: bool = False
    submitted_from: date | None = Field(None, description="Local day, inclusive")
    submitted_to: date | None = Field(None, description="Local day, inclusive")
    q: str = Field("", max_length=200, description="Words that must all occur")
    cursor: str | None = Field(None, max_length=200, description="next_cursor of the last page")
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


class ComplaintSummary(BaseModel):
    id: int
    number: str
    state: str
    category: str | None
    channel: str
    next_due_at: datetime | None
    next_due_stage: str | None
    deadline_provisional: bool
    submitted_at: datetime | None
    complainant_unreachable: bool
    repeat_of: str | None = Field(
        None, description="Number of the earlier complaint of the same complainant it repeats"
    )
    group_id: int | None = Field(None, description="Its proposed or confirmed mass-matter group")


class ComplaintPage(BaseModel):
    items: list[ComplaintSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")
    total: int = Field(description="Matches, counted up to total_cap + 1")
    total_capped: bool


class Statement(BaseModel):
    """The respondent's statement before a decision: never shown to the complainant."""

    status: Literal["requested", "recorded", "waived"]
    respondent: str | None = Field(description="Whose statement (masked like the facts)")
    due: datetime | None
    text: str | None = Field(description="What they said (masked like the facts)")
    on_behalf: bool = Field(description="Recorded by staff on the respondent's behalf (代录)")


class GroupRef(BaseModel):
    """The mass-matter group a complaint belongs to: many complainants about one matter,
    answered by one decision once a supervisor confirms it."""

    id: int
    status: Literal["proposed", "confirmed"]
    size: int = Field(description="How many complaints the group holds")


class Complaint(BaseModel):
    """One complaint as the token's staff member may see it: identity fields masked as on
    their desk ("***"), and the actions they may take now."""

    # Read from the desk's case card (models.cards.CaseCard), whose fields these are.
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    state: str
    version: int = Field(description="Pass back as `version` to refuse acting on a stale view")
    category: str | None
    category_label: str | None
    subcategory: str | None
    subcategory_label: str | None
    severity: str | None
    severity_label: str | None
    channel: str | None
    written: bool
    target: str | None
    facts: str | None
    place: str | None
    incident_at: datetime | None
    request_type: str | None
    request_text: str | None
    witnesses: str | None
    complainant_name: str | None
    complainant_phone: str | None
    anonymous: bool
    complainant_unreachable: bool
    lead_department_id: int | None
    lead_department: str | None
    co_departments: list[str]
    handler: str | None
    due: datetime | None
    due_stage: str | None
    provisional: bool
    extension_request: dict[str, Any] | None
    attachments: int = Field(
        validation_alias=AliasChoices("attachments", "photos"),
        description="Photos and files this staff member may see",
    )
    recall_decision: bool | None = Field(
        None,
        description="Whether staff decided to start the product recall (R26); null: not recorded",
    )
    recall_reason: str | None = Field(None, description="The reason for the recall decision")
    statement: Statement | None = Field(
        None, description="The respondent's statement (R13 陈述和申辩), once asked for"
    )
    actions: list[str] = Field(description="Actions this staff member may take now")
    repeat_of: str | None = Field(
        None, description="Number of the earlier complaint of the same complainant this one repeats"
    )
    group: GroupRef | None = Field(None, description="Its proposed or confirmed mass-matter group")


class ComplaintCreate(BaseModel):
    """A complaint recorded for a complainant, as the desk's record form files it (代录): the
    form's inputs by name (GET /form lists them for the profile in force)."""

    model_config = _strict

    channel: RecordedChannel = Field(description="How the complaint reached the office")
    screening: str = Field(
        "none", max_length=64, description="An exclusion's id when out of scope, else none"
    )
    fields: dict[str, str] = Field(
        default_factory=dict, description="The record form's inputs, by name"
    )
    address: str | None = Field(None, max_length=300, description="Postal address (letters)")


class ActionRequest(BaseModel):
    """One workflow action. Which fields an action needs is what the desk's form for it asks."""

    model_config = _strict

    action: StaffActionName
    version: int | None = Field(
        None, ge=0, description="The complaint's version as last seen; a newer one refuses"
    )
    category: str | None = Field(None, max_length=64, description="accept")
    severity: str | None = Field(None, max_length=32, description="accept, set_severity")
    exclusion: str | None = Field(None, max_length=64, description="refuse: an exclusion's id")
    reason: str | None = Field(
        None,
        max_length=2000,
        description="refuse, request_extension, hand_back, record_recall_decision",
    )
    recall: bool | None = Field(
        None, description="record_recall_decision: whether the product recall is started"
    )
    guidance: str | None = Field(None, max_length=2000, description="refuse")
    department_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="assign, transfer, add_co_handler"
    )
    handler_id: int | None = Field(None, ge=1, le=2**31 - 1, description="assign")
    co_department_ids: list[int] = Field(
        default_factory=list, max_length=20, description="assign: co-handling departments"
    )
    question: str | None = Field(None, max_length=2000, description="request_material")
    note: str | None = Field(None, max_length=2000, description="add_note")
    amount: int | None = Field(None, ge=1, le=1000, description="request_extension")
    reply_text: str | None = Field(None, max_length=4000, description="resolve")
    respondent: str | None = Field(
        None, max_length=200, description="request_statement: whose, where nobody is linked"
    )
    text: str | None = Field(None, max_length=2000, description="record_statement")


class ActionDone(BaseModel):
    done: list[str] = Field(description="The workflow steps carried out, in order")
    complaint: Complaint


class FormInput(BaseModel):
    name: str
    kind: str
    label: str
    question: str
    required: bool
    options: list[list[str]] = Field(description="[value, label] pairs")


class IntakeForm(BaseModel):
    channels: list[str]
    screening: list[list[str]] = Field(description="[exclusion id, label]; 'none' files it")
    inputs: list[FormInput]


# -- events and attachments ---------------------------------------------------------------------


class PageQuery(BaseModel):
    model_config = _strict

    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


class EventOut(BaseModel):
    id: int
    action: str
    from_state: str | None
    to_state: str | None
    actor_role: str
    actor_staff_id: int | None
    actor_name: str | None
    created_at: datetime
    texts: dict[str, str] = Field(description="Reasons, notes, replies (masked with the facts)")


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


class AttachmentOut(BaseModel):
    id: int
    file_name: str | None
    mime_type: str | None
    size: int
    created_at: datetime
    download: str = Field(description="Path of the file's bytes")


class AttachmentList(BaseModel):
    items: list[AttachmentOut]


# -- the organisation -----------------------------------------------------------------------------


class DepartmentOut(BaseModel):
    id: int
    code: str
    name: str
    parent_id: int | None


class DepartmentList(BaseModel):
    items: list[DepartmentOut]


class StaffOut(BaseModel):
    id: int
    name: str
    role: RoleName
    department_id: int | None
    active: bool


class StaffList(BaseModel):
    items: list[StaffOut]


class Me(BaseModel):
    staff: StaffOut
    token_id: int
    scopes: list[ScopeName]


class StatisticsQuery(BaseModel):
    """The desk's statistics filters (/desk/stats): a period of local days and a department."""

    model_config = _strict

    first: date | None = Field(
        None, alias="from", description="First local day, inclusive; default: this month's first"
    )
    last: date | None = Field(
        None,
        alias="to",
        description=f"Last local day, inclusive (at most {st.MAX_PERIOD_DAYS} days after `from`); "
        "default: today",
    )
    department: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Only cases it leads or co-handles"
    )


class KeyCount(BaseModel):
    key: str | None = Field(description="A state, category id, channel or band; null: none")
    label: str = Field(description="The key in the Accept-Language language")
    count: int


class StageRate(BaseModel):
    stage: str
    label: str
    settled: int = Field(description="Deadlines of this stage met or missed in the period")
    on_time: int
    rate: float | None = Field(description="on_time / settled; null when none settled")


class Statistics(BaseModel):
    """The period's figures as on the desk's statistics page (models.statistics), counted over
    the token's staff member's cases. Complaints filed in the period: total and the `by_`
    counts; deadlines met or missed, resolutions and survey answers in the period; the overdue
    list now; the twelve months ending with the period's last."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    first: date = Field(alias="from")
    last: date = Field(alias="to")
    department: int | None
    total: int
    open: int = Field(description="Of `total`, those still open")
    by_state: list[KeyCount]
    by_category: list[KeyCount]
    by_channel: list[KeyCount]
    by_department: list[st.IdCount]
    stages: list[StageRate]
    on_time_rate: float | None = Field(description="All stages together")
    overdue: list[st.OverdueCase]
    resolved: int
    average_working_days: float | None = Field(description="Of the cases resolved")
    satisfaction: st.Satisfaction
    no_response: int = Field(description="Surveys the complainant did not answer")
    result_bands: list[KeyCount]
    attitude_bands: list[KeyCount]
    satisfaction_by_department: list[st.Satisfaction]
    satisfaction_by_handler: list[st.Satisfaction]
    trend: list[st.MonthPoint]
    repeat_complainants: list[st.RepeatComplainant]
    respondents: list[st.RespondentLine]


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    staff_id: int
    staff_name: str
    scopes: list[ScopeName]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenQuery(BaseModel):
    model_config = _strict

    all: bool = Field(False, description="Every staff member's tokens (admin scope)")


class TokenList(BaseModel):
    items: list[TokenOut]
