"""Policy profiles: one TOML file per organisation's regulation, validated with pydantic.

Files live in config/profiles/ (plus an optional extra directory from the settings, searched
first). A profile may say `extends = "other"`; the files are deep-merged:

* tables merge key by key, the child's keys winning;
* arrays (of values or of tables) are replaced wholesale by the child's array —
  **except `intake.fields`**, which merges by `id`: a child entry with an existing id is
  deep-merged into the parent's entry (keeping the parent's position), a new id is appended,
  a new entry goes at the end, or right after the field named by its `after = "id"`, and an
  entry with `omit = true` removes the parent's field of that id;
* `sources` (where each rule comes from) merges by `key` the same way;
* `abstract = true` is not inherited. An abstract profile (base.toml) only exists to be
  extended: it is validated but not listed and needs no categories.

Stages in `[deadlines]` are lists of rules `{ category?, complexity?, severity?, amount, unit }`.
`Profile.deadline_for` picks the most specific matching rule:
category+severity > category > complexity+severity > complexity > severity > default.
For `revisit`, `survey_reminder` and `auto_close`, a stage without rules falls back to the
`[revisit]` table (`delay`, `survey_reminder`, `no_response_close`).

`[progress] every = { amount, unit }` (optional, amount ≥ 1) asks for a periodic "still being
handled, due on …" message to the complainant (models/alarms.py plans it).

Any validation failure raises `ProfileError`, naming the file, the key path
(e.g. `deadlines.resolution[2].unit`) and the problem.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
)

from config.languages import Lang
from models.numbering import DEFAULT_FORMAT, FORMATS
from models.similarity import DEFAULT_GROUP_THRESHOLD, DEFAULT_REPEAT_THRESHOLD
from scheduler.deadlines import Duration, OfficeHours, Unit

SHIPPED_PROFILES_DIR = Path(__file__).resolve().parent / "profiles"

Stage = Literal[
    "acceptance",
    "dispatch",
    "first_contact",
    "action_plan",
    "manager_notice",
    "resolution",
    "result_notice",
    "revisit",
    "survey_reminder",
    "auto_close",
]
STAGES: tuple[str, ...] = get_args(Stage)
FieldType = Literal[
    "choice", "category", "text", "phone", "datetime", "place", "photos", "request_type", "target"
]
# Field ids the intake engine understands, with the type each must have.
ENGINE_FIELDS: dict[str, str] = {
    "category": "category",
    "target": "target",
    "incident_time": "datetime",
    "place": "place",
    "facts": "text",
    "request_type": "request_type",
    "witnesses": "text",
    "name": "text",
    "phone": "phone",
    "photos": "photos",
}
# What a complaint may be about (models.entities.TargetKind); a profile offers a subset.
TARGET_KINDS: tuple[str, ...] = ("department", "staff", "vehicle", "other")
# Types that only make sense for the engine field of the same name.
_SPECIAL_TYPES = {"category", "request_type", "target"}

IdStr = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]


def _require_zh_cn(value: dict[str, str]) -> dict[str, str]:
    if "zh_CN" not in value:
        raise ValueError("zh_CN text is required")
    if any(not text.strip() for text in value.values()):
        raise ValueError("texts must not be empty")
    return value


Labels = Annotated[dict[Lang, str], AfterValidator(_require_zh_cn)]


class ProfileError(ValueError):
    """A profile file is missing, unreadable or invalid."""

    def __init__(self, file: Path | str, problems: list[tuple[str, str]]) -> None:
        self.file = Path(file)
        self.problems = problems
        lines = [
            f"{file}: {path}: {problem}" if path else f"{file}: {problem}"
            for path, problem in problems
        ]
        super().__init__("\n".join(lines))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DurationSpec(_Model):
    amount: int = Field(ge=0)
    unit: Unit

    def to_duration(self) -> Duration:
        return Duration(self.amount, self.unit)


class DeadlineRule(DurationSpec):
    category: str | None = None
    complexity: Literal["simple", "complex"] | None = None
    severity: str | None = None

    @property
    def specificity(self) -> int:
        return (
            4 * (self.category is not None)
            + 2 * (self.complexity is not None)
            + (self.severity is not None)
        )


class Deadlines(_Model):
    acceptance: list[DeadlineRule] = []
    dispatch: list[DeadlineRule] = []
    first_contact: list[DeadlineRule] = []
    # The assigned department's handling plan (R7g "1小時內組織人員分析…制定處理措施"): runs
    # from assignment until the handler takes the case up (acknowledge).
    action_plan: list[DeadlineRule] = []
    manager_notice: list[DeadlineRule] = []
    resolution: list[DeadlineRule] = []
    result_notice: list[DeadlineRule] = []
    revisit: list[DeadlineRule] = []
    survey_reminder: list[DeadlineRule] = []
    auto_close: list[DeadlineRule] = []


class OfficeHoursSpec(_Model):
    start: time = time(9, 0)
    end: time = time(17, 0)
    clock_in_office_hours: bool = False  # minutes/hours deadlines count only in office hours

    def to_office_hours(self) -> OfficeHours:
        return OfficeHours(self.start, self.end)


class SubCategory(_Model):
    id: IdStr
    label: Labels


class Category(_Model):
    id: IdStr
    label: Labels
    complexity: Literal["simple", "complex"] | None = None
    default_severity: str | None = None
    subcategories: list[SubCategory] = []
    # A finding staff make at acceptance (e.g. tax 即时办结: raised on the spot, simple, no
    # investigation), never offered to a citizen filing online.
    staff_only: bool = False
    # R19: an unsatisfied return visit of this category gets no supervisor revisit (the SP
    # value-added complaints, "不再使用…服务质量监督员将在7天内给您回访"); the case closes.
    no_supervisor_revisit: bool = False


class Severity(_Model):
    id: IdStr
    label: Labels


class Exclusion(_Model):
    id: IdStr
    label: Labels  # short, the legal term: staff's refusal reason, and the screening choice
    # The screening choice in a layperson's words ("这件事已经在法院打官司…"), when set (D2).
    question: Labels | None = None
    reason: Labels  # why the matter is out of scope
    guidance: Labels  # where to go instead
    # An emergency: the guidance (110/119/120) is given at once AND the form goes on as an urgent
    # case (severity `severity_rules.urgent`), so the duty desk is alerted — nothing is turned away.
    urgent_case: bool = False


class Option(_Model):
    id: IdStr
    label: Labels


class IntakeField(_Model):
    id: IdStr
    type: FieldType
    required: bool = False
    prompt: Labels
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    max_count: int | None = Field(default=None, ge=1)
    max_size_mb: float | None = Field(default=None, gt=0)
    options: list[Option] | None = None
    free_text: bool = False  # request_type/choice: also accept a free-text addition


class Intake(_Model):
    fields: list[IntakeField] = []
    # A duty the regulation puts on the complainant, shown above the summary before they submit
    # (R6 第四条 "应当客观真实，不得隐瞒、歪曲、捏造事实，不得诬告、陷害他人").
    declaration: Labels | None = None


class Acceptance(_Model):
    """What staff decide per case when they accept it."""

    # Always confirm the category, so staff can record a finding such as 即时办结 (staff_only).
    ask_category: bool = False
    ask_severity: bool = False  # always ask, even where the category has a default severity
    ask_complexity: bool = False  # simple/complex judged per case (R1 "事实清楚、情节简单")
    # Staff may settle a case at acceptance as already decided: linked to an earlier case whose
    # result was decided, resolved with that reply at once (R6 batch rule, 即时办结 (2)).
    settle_as_decided: bool = False


class SeverityRules(_Model):
    """How a case's severity may change after intake."""

    raisable: bool = False  # staff may raise the severity while the case is open
    upgrade_to: str | None = None  # the severity the automatic upgrades below give
    # Raised again by the same complainant (same category) within this period of an earlier one.
    repeat_within: DurationSpec | None = None
    # Not settled (no result told) this long after submission.
    unresolved_after: DurationSpec | None = None
    urgent: str | None = None  # given to a case filed through an `urgent_case` exclusion


class Repeats(_Model):
    """Repeat and mass complaints (models.similarity decides, models.actions stores).

    A complaint repeats an earlier one of the same complainant (by identity or by phone, any
    channel) filed at most `within` before with text at least `threshold` alike; where
    `counts_toward_severity`, such a repeat is what raises the severity to
    `[severity_rules] upgrade_to` (R7g "多次提出"), instead of any earlier complaint of the
    category. Mass matters: open complaints of `group_min_size` or more complainants about one
    target and place, text at least `group_threshold` alike, filed within `within` of each
    other's window, are proposed as a group for a supervisor to confirm."""

    within: DurationSpec = DurationSpec(amount=30, unit="calendar_days")
    threshold: float = Field(default=DEFAULT_REPEAT_THRESHOLD, gt=0, le=1)
    counts_toward_severity: bool = False
    group_threshold: float = Field(default=DEFAULT_GROUP_THRESHOLD, gt=0, le=1)
    group_min_size: int = Field(default=3, ge=2)


class Counting(_Model):
    """How the organisation's regulation counts its periods."""

    # 补正 restarts the count from the day after the material arrives (R4 "从…补正材料的次日起
    # 计算"), instead of resuming it with the wholly paused days added back.
    supplement_restarts: bool = False
    # A calendar-day limit ending on a holiday or rest day ends on the next working day.
    roll_to_working_day: bool = False
    # The first contact with the complainant counts from receipt (R7g "24小時內向住戶反饋"),
    # not from assignment to a handler.
    first_contact_from_receipt: bool = False


class ConductConsequence(_Model):
    """What a regulation attaches to the N-th complaint about one staff member in a calendar
    year (R32). Reported with the counts; never enforced by the product."""

    count: int = Field(ge=1)  # from this many complaints on
    label: Labels


class RuleSource(_Model):
    """Where a rule of the profile comes from: shown by `profiles explain` and docs."""

    key: str = Field(min_length=1, max_length=200)  # the config key, e.g. deadlines.resolution
    regime: str | None = None  # R-number in REGIMES.md, e.g. "R7g"
    seed: str | None = None  # seed file number, e.g. "004"
    words: str | None = None  # the seed's own words
    ours: bool = False  # the seed is silent or truncated here: our choice
    note: str | None = None


class Extension(_Model):
    max_count: int = Field(default=1, ge=0)
    max: DurationSpec
    requires_approval: bool = True
    notify_complainant: bool = True
    # The heads of the departments that transferred the case here are told of the extension
    # and its reason (R6 "同时向转办部门进行说明").
    tell_transferring_departments: bool = False


class SatisfactionBands(_Model):
    unsatisfied: tuple[int, int] = (0, 4)
    neutral: tuple[int, int] = (5, 7)
    satisfied: tuple[int, int] = (8, 10)

    def band(self, score: int) -> Literal["unsatisfied", "neutral", "satisfied"]:
        for name in ("unsatisfied", "neutral", "satisfied"):
            low, high = getattr(self, name)
            if low <= score <= high:
                return name  # type: ignore[return-value]
        raise ValueError(f"score {score} is outside {self.unsatisfied[0]}–{self.satisfied[1]}")


class RevisitBy(_Model):
    """Who makes the return visit in person, by the case's rating (R7g 輕微投訴…由接單員進行回訪;
    重大投訴…由站長回訪): a call-back task assigned to them, due when the revisit stage is."""

    severity: str | None = None  # the rating this applies to (None: any)
    who: Literal["order_taker", "station_chief"]


class CallScript(_Model):
    """What the staff member who takes a return visit by phone says (R19's 用语规范), in the
    three languages. Placeholders: {staff_number} (the caller's 工号: their desk sign-in),
    {name} (the complainant's name as recorded), {number} (the complaint number), {due} (the
    supervisor revisit's date, in the unsatisfied closing)."""

    greeting: Labels
    result_question: Labels
    attitude_question: Labels
    closing_satisfied: Labels
    closing_neutral: Labels
    closing_unsatisfied: Labels
    # An unsatisfied answer where the category has no supervisor revisit (R19's SP rule).
    closing_unsatisfied_final: Labels


class Revisit(_Model):
    delay: DurationSpec  # after the reply, when the revisit/survey is sent
    survey_reminder: DurationSpec  # remind a complainant who has not answered
    no_response_close: DurationSpec  # close when still no answer
    unsatisfied: Literal["reopen", "supervisor_revisit"] = "reopen"
    supervisor_revisit_due: DurationSpec | None = None
    satisfaction: SatisfactionBands = SatisfactionBands()
    by: list[RevisitBy] = []  # empty: no one in person (the survey, or the desk's call-back)

    def visitor_for(self, severity: str | None) -> str | None:
        """Who visits a case of this rating in person, or None: the rule naming the rating,
        else one for any rating."""
        for rule in self.by:
            if rule.severity is not None and rule.severity == severity:
                return rule.who
        return next((rule.who for rule in self.by if rule.severity is None), None)

    # The script shown to staff on a return-visit call-back task (None: the chat's own texts).
    call_script: CallScript | None = None


class Statement(_Model):
    """The respondent's statement before a decision (R13 被投诉人…陈述和申辩; R4 陈述权、申辩权):
    the lead handler asks the respondent (`request_statement`), who answers by `due`
    (`record_statement`, or the handler records it for them); unanswered, the period lapses
    and the waiver is recorded (`waive_statement`). A statement asked for is always awaited
    before `resolve`; `required` makes asking for it a condition of the decision."""

    required: bool = False
    due: DurationSpec = DurationSpec(amount=3, unit="working_days")


class Reminders(_Model):
    before: list[DurationSpec] = []  # remind the handler this long before each due instant
    escalation_interval: DurationSpec | None = None  # re-escalate overdue items this often


class Progress(_Model):
    """A periodic "still being handled, due on …" message to the complainant while the case is
    handled (accepted … in progress, reopened; not while waiting for the complainant)."""

    every: DurationSpec

    @property
    def interval(self) -> Duration:
        return self.every.to_duration()


class Reply(_Model):
    written_reply_for_written_complaint: bool = False
    # The channels whose complaints count as written (书面投诉): they get the 书面答复 letter.
    written_channels: list[
        Literal["letter", "email", "visit", "phone", "web", "telegram", "wechat"]
    ] = [
        "letter",
        "email",
    ]
    disputed_result: Literal["reinvestigate", "supervisor_revisit"] = "reinvestigate"


def _shipped_format(name: str) -> str:
    if name not in FORMATS:
        raise ValueError(f"unknown number format; one of {', '.join(FORMATS)}")
    return name


class Numbering(_Model):
    """How complaint numbers look (models/numbering.py): "YYYYMM-NNNN" (202612-0001) or R17's
    "YYMM-NN" (2612-01). The serial width is a minimum: it grows past 99 (2612-100)."""

    format: Annotated[str, AfterValidator(_shipped_format)] = DEFAULT_FORMAT

    @computed_field  # type: ignore[prop-decorator]
    @property
    def serial_width(self) -> int:
        """The serial's minimum digits, fixed by the format (shown by `profiles explain`)."""
        return FORMATS[self.format].serial_width


class Resolution(_Model):
    """What must be on record before a case may be resolved."""

    # Staff record whether to start the product recall (the action record_recall_decision,
    # recall yes/no and the reason); `resolve` is refused until they have (R26).
    requires_recall_decision: bool = False


class Callbacks(_Model):
    """Calls the desk owes complainants without a chat (recorded by phone, at the window, by
    letter or e-mail): each is due this long after it was opened (models/callbacks.py)."""

    due: DurationSpec = DurationSpec(amount=1, unit="working_days")


class Profile(_Model):
    id: IdStr
    extends: str | None = None
    abstract: bool = False
    name: Labels
    description: Labels
    language: Lang = "zh_CN"
    duty_24h: bool = False
    office_hours: OfficeHoursSpec = OfficeHoursSpec()
    anonymous_allowed: bool = True
    retention_years: int = Field(default=3, ge=1)
    categories: list[Category] = []
    severities: list[Severity] = []
    exclusions: list[Exclusion] = []
    intake: Intake = Intake()
    deadlines: Deadlines = Deadlines()
    extension: Extension | None = None
    revisit: Revisit | None = None
    reminders: Reminders = Reminders()
    progress: Progress | None = None
    reply: Reply = Reply()
    statement: Statement = Statement()
    callbacks: Callbacks = Callbacks()
    numbering: Numbering = Numbering()
    resolution: Resolution = Resolution()
    acceptance: Acceptance = Acceptance()
    severity_rules: SeverityRules = SeverityRules()
    repeats: Repeats = Repeats()
    clock: Counting = Counting()
    sources: list[RuleSource] = []
    conduct_consequences: list[ConductConsequence] = []

    # -- lookups ------------------------------------------------------------------------

    def category(self, category_id: str) -> Category:
        for category in self.categories:
            if category.id == category_id:
                return category
        raise KeyError(f"profile {self.id!r} has no category {category_id!r}")

    def severity_ids(self) -> list[str]:
        return [s.id for s in self.severities]

    def severity_rank(self, severity: str | None) -> int:
        """Position in `severities` (listed mildest first); -1 for none."""
        ids = self.severity_ids()
        return ids.index(severity) if severity in ids else -1

    def conduct_consequence(self, count: int) -> ConductConsequence | None:
        """The consequence the regulation attaches to `count` complaints in a year, if any."""
        reached = [c for c in self.conduct_consequences if c.count <= count]
        return max(reached, key=lambda c: c.count) if reached else None

    def citizen_categories(self) -> list[Category]:
        """The categories a citizen may pick (not the staff-only findings)."""
        return [c for c in self.categories if not c.staff_only]

    def field(self, field_id: str) -> IntakeField:
        for item in self.intake.fields:
            if item.id == field_id:
                return item
        raise KeyError(f"profile {self.id!r} has no intake field {field_id!r}")

    def clock_office_hours(self) -> OfficeHours | None:
        """Office hours that minutes/hours deadlines count in, or None when on the clock."""
        return (
            self.office_hours.to_office_hours() if self.office_hours.clock_in_office_hours else None
        )

    def deadline_for(
        self,
        stage: str,
        category: str | None = None,
        severity: str | None = None,
        complexity: str | None = None,
    ) -> Duration:
        """The time limit for `stage`, choosing the most specific matching rule.

        A category's `default_severity` stands in when `severity` is None, its `complexity`
        when `complexity` (judged per case at acceptance) is None.
        """
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        if category is not None:
            found = self.category(category)
            complexity = complexity or found.complexity
            if severity is None:
                severity = found.default_severity
        if severity is not None and severity not in self.severity_ids():
            raise KeyError(f"profile {self.id!r} has no severity {severity!r}")
        matching = [
            rule
            for rule in getattr(self.deadlines, stage)
            if rule.category in (None, category)
            and rule.complexity in (None, complexity)
            and rule.severity in (None, severity)
        ]
        if matching:
            return max(matching, key=lambda rule: rule.specificity).to_duration()
        fallback = _revisit_fallback(self.revisit, stage)
        if fallback is not None:
            return fallback.to_duration()
        raise LookupError(
            f"profile {self.id!r} has no {stage} deadline for category={category!r}, "
            f"severity={severity!r}"
        )

    def label(
        self, kind: str, item_id: str, lang: str | None = None, *, category: str | None = None
    ) -> str:
        """Display text of a category, subcategory ("cat/sub" or category=...), severity,
        exclusion, intake field prompt, or option ("field/option")."""
        lang = lang or self.language
        if kind == "category":
            return pick(self.category(item_id).label, lang)
        if kind == "subcategory":
            if category is None:
                category, _, item_id = item_id.partition("/")
            for sub in self.category(category).subcategories:
                if sub.id == item_id:
                    return pick(sub.label, lang)
            raise KeyError(f"category {category!r} has no subcategory {item_id!r}")
        if kind == "severity":
            for sev in self.severities:
                if sev.id == item_id:
                    return pick(sev.label, lang)
            raise KeyError(f"profile {self.id!r} has no severity {item_id!r}")
        if kind == "exclusion":
            for exclusion in self.exclusions:
                if exclusion.id == item_id:
                    return pick(exclusion.label, lang)
            raise KeyError(f"profile {self.id!r} has no exclusion {item_id!r}")
        if kind == "field":
            return pick(self.field(item_id).prompt, lang)
        if kind == "option":
            field_id, _, option_id = item_id.partition("/")
            for option in self.field(field_id).options or []:
                if option.id == option_id:
                    return pick(option.label, lang)
            raise KeyError(f"field {field_id!r} has no option {option_id!r}")
        raise ValueError(f"unknown label kind {kind!r}")


def pick(texts: Mapping[str, str], lang: str) -> str:
    """Text in `lang`, falling back to zh_CN (always present)."""
    return texts.get(lang) or texts["zh_CN"]


def _revisit_fallback(revisit: Revisit | None, stage: str) -> DurationSpec | None:
    if revisit is None:
        return None
    return {
        "revisit": revisit.delay,
        "survey_reminder": revisit.survey_reminder,
        "auto_close": revisit.no_response_close,
    }.get(stage)


# -- cross-checks that pydantic field types cannot express -------------------------------


def _duplicates(items: list[Any], prefix: str) -> list[tuple[str, str]]:
    seen: dict[str, int] = {}
    problems = []
    for index, item in enumerate(items):
        if item.id in seen:
            problems.append(
                (
                    f"{prefix}[{index}].id",
                    f"duplicate id {item.id!r} (also {prefix}[{seen[item.id]}])",
                )
            )
        seen.setdefault(item.id, index)
    return problems


def _cross_check(profile: Profile) -> list[tuple[str, str]]:
    problems = _duplicates(profile.categories, "categories")
    problems += _duplicates(profile.severities, "severities")
    problems += _duplicates(profile.exclusions, "exclusions")
    problems += _duplicates(profile.intake.fields, "intake.fields")
    categories = {c.id for c in profile.categories}
    severities = set(profile.severity_ids())
    for i, category in enumerate(profile.categories):
        problems += _duplicates(category.subcategories, f"categories[{i}].subcategories")
        if category.default_severity is not None and category.default_severity not in severities:
            problems.append(
                (
                    f"categories[{i}].default_severity",
                    f"unknown severity {category.default_severity!r}",
                )
            )
    for stage in STAGES:
        selectors: dict[tuple[Any, ...], int] = {}
        for i, rule in enumerate(getattr(profile.deadlines, stage)):
            where = f"deadlines.{stage}[{i}]"
            if rule.category is not None and rule.category not in categories:
                problems.append((f"{where}.category", f"unknown category {rule.category!r}"))
            if rule.severity is not None and rule.severity not in severities:
                problems.append((f"{where}.severity", f"unknown severity {rule.severity!r}"))
            if rule.category is not None and rule.complexity is not None:
                problems.append((where, "give either category or complexity, not both"))
            key = (rule.category, rule.complexity, rule.severity)
            if key in selectors:
                problems.append(
                    (where, f"same selector as deadlines.{stage}[{selectors[key]}]: ambiguous")
                )
            selectors.setdefault(key, i)
    problems += _check_intake(profile)
    rules = profile.severity_rules
    for key in ("upgrade_to", "urgent"):
        value = getattr(rules, key)
        if value is not None and value not in severities:
            problems.append((f"severity_rules.{key}", f"unknown severity {value!r}"))
    if profile.repeats.counts_toward_severity and rules.upgrade_to is None:
        problems.append(("severity_rules.upgrade_to", "repeats counting toward severity need it"))
    if (rules.repeat_within or rules.unresolved_after) and rules.upgrade_to is None:
        problems.append(("severity_rules.upgrade_to", "automatic upgrades need a target severity"))
    if any(e.urgent_case for e in profile.exclusions) and rules.urgent is None:
        problems.append(("severity_rules.urgent", "an urgent_case exclusion needs it"))
    if (profile.acceptance.ask_severity or rules.raisable) and not profile.severities:
        problems.append(("severities", "severity is asked or raisable, but none are defined"))
    if profile.revisit is not None:
        bands = profile.revisit.satisfaction
        ranges = [bands.unsatisfied, bands.neutral, bands.satisfied]
        contiguous = all(low <= high for low, high in ranges) and all(
            ranges[k][1] + 1 == ranges[k + 1][0] for k in range(2)
        )
        if not contiguous or ranges[0][0] != 0 or ranges[2][1] != 10:
            problems.append(
                ("revisit.satisfaction", "bands must cover 0–10 without gaps, in order")
            )
    if profile.statement.due.amount < 1:
        problems.append(("statement.due.amount", "must be at least 1"))
    if any(c.no_supervisor_revisit for c in profile.categories) and (
        profile.revisit is None or profile.revisit.unsatisfied != "supervisor_revisit"
    ):
        problems.append(
            ("categories", "no_supervisor_revisit needs revisit.unsatisfied = supervisor_revisit")
        )
    if profile.progress is not None and profile.progress.every.amount < 1:
        # A zero interval would message the complainant on every sweep.
        problems.append(("progress.every.amount", "must be at least 1"))
    if not profile.abstract and not profile.categories:
        problems.append(("categories", "a profile needs at least one category"))
    return problems


def _check_intake(profile: Profile) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    by_id = {f.id: f for f in profile.intake.fields}
    for i, item in enumerate(profile.intake.fields):
        where = f"intake.fields[{i}]"
        expected = ENGINE_FIELDS.get(item.id)
        if expected is not None and item.type != expected:
            problems.append((f"{where}.type", f"field {item.id!r} must have type {expected!r}"))
        if expected is None and item.type in _SPECIAL_TYPES:
            problems.append(
                (
                    f"{where}.id",
                    f"unknown field {item.id!r}: type {item.type!r} is only for "
                    f"the field {item.type!r}",
                )
            )
        if item.type in ("choice", "request_type") and not item.options:
            problems.append((f"{where}.options", f"a {item.type} field needs options"))
        if item.options and item.type not in ("choice", "request_type", "target"):
            problems.append((f"{where}.options", f"a {item.type} field takes no options"))
        if item.type == "target":
            for k, option in enumerate(item.options or []):
                if option.id not in TARGET_KINDS:
                    problems.append(
                        (
                            f"{where}.options[{k}].id",
                            f"a target kind is one of {', '.join(TARGET_KINDS)}",
                        )
                    )
        if item.options:
            problems += _duplicates(item.options, f"{where}.options")
        if item.min_length is not None and item.max_length is not None:
            if item.min_length > item.max_length:
                problems.append((f"{where}.min_length", "is larger than max_length"))
    if profile.abstract:
        return problems
    for needed in ("category", "facts"):
        if needed not in by_id or not by_id[needed].required:
            problems.append(
                ("intake.fields", f"the required field {needed!r} is missing or optional")
            )
    if not profile.anonymous_allowed and not (by_id.get("phone") and by_id["phone"].required):
        problems.append(
            (
                "intake.fields",
                "anonymous filing is not allowed, so the 'phone' field must be required",
            )
        )
    return problems


# -- loading ---------------------------------------------------------------------------------


def _search_dirs(profiles_dir: Path | None) -> list[Path]:
    dirs = [Path(profiles_dir)] if profiles_dir is not None else []
    return [*dirs, SHIPPED_PROFILES_DIR]


def _resolve(name_or_path: str | Path, profiles_dir: Path | None, near: Path | None = None) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or len(candidate.parts) > 1:
        if candidate.is_file():
            return candidate
        if near is not None and (near / candidate).is_file():
            return near / candidate
        raise ProfileError(candidate, [("", "profile file not found")])
    dirs = ([near] if near is not None else []) + _search_dirs(profiles_dir)
    for directory in dirs:
        path = directory / f"{name_or_path}.toml"
        if path.is_file():
            return path
    searched = ", ".join(str(d) for d in dirs)
    raise ProfileError(f"{name_or_path}.toml", [("", f"no profile {name_or_path!r} in {searched}")])


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(path, [("", f"not valid TOML: {exc}")]) from exc
    except OSError as exc:
        raise ProfileError(path, [("", f"cannot read: {exc.strerror}")]) from exc


def _merge_fields(parent: list[Any], child: list[Any], key: str = "id") -> list[Any]:
    if not all(isinstance(x, dict) and key in x for x in [*parent, *child]):
        return copy.deepcopy(child)  # malformed: let validation report it on the child's list
    merged = [copy.deepcopy(x) for x in parent]
    positions = {item[key]: i for i, item in enumerate(merged)}
    for item in child:
        if item[key] in positions:
            merged[positions[item[key]]] = deep_merge(merged[positions[item[key]]], item)
            continue
        new = copy.deepcopy(item)
        anchor = new.pop("after", None)
        ids = [x[key] for x in merged]
        at = ids.index(anchor) + 1 if anchor in ids else len(merged)
        merged.insert(at, new)
        positions = {x[key]: i for i, x in enumerate(merged)}
    return [x for x in merged if not x.pop("omit", False)]


def deep_merge(parent: dict[str, Any], child: dict[str, Any], _path: str = "") -> dict[str, Any]:
    """Merge `child` over `parent` (see module docstring for the array rules)."""
    result = copy.deepcopy(parent)
    for key, value in child.items():
        path = f"{_path}.{key}" if _path else key
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value, path)
        elif (
            path == "intake.fields"
            and isinstance(value, list)
            and isinstance(result.get(key), list)
        ):
            result[key] = _merge_fields(result[key], value)
        elif path == "sources" and isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_fields(result[key], value, "key")
        else:
            result[key] = copy.deepcopy(value)
    return result


def _format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            continue  # pydantic's marker for a bad dict key: the path already names the key
        else:
            text += f".{part}" if text else str(part)
    return text


def _validate(path: Path, data: dict[str, Any]) -> Profile:
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"]
            if error["type"] not in ("missing", "extra_forbidden"):
                message += f" (got {error['input']!r})"
            elif error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append((_format_loc(error["loc"]), message))
        raise ProfileError(path, problems) from None
    problems = _cross_check(profile)
    if problems:
        raise ProfileError(path, problems)
    if path.stem != profile.id:
        raise ProfileError(
            path, [("id", f"{profile.id!r} does not match the file name {path.stem!r}")]
        )
    return profile


def _load_merged(path: Path, profiles_dir: Path | None, chain: tuple[Path, ...]) -> dict[str, Any]:
    if path.resolve() in chain:
        cycle = " → ".join(p.stem for p in (*chain, path.resolve()))
        raise ProfileError(path, [("extends", f"circular extends: {cycle}")])
    data = _read_toml(path)
    parent_name = data.get("extends")
    if parent_name is None:
        return data
    if not isinstance(parent_name, str):
        raise ProfileError(path, [("extends", f"must be a profile name (got {parent_name!r})")])
    try:
        parent_path = _resolve(parent_name, profiles_dir, near=path.parent)
    except ProfileError as exc:
        raise ProfileError(path, [("extends", str(exc))]) from None
    parent = _load_merged(parent_path, profiles_dir, (*chain, path.resolve()))
    _validate(parent_path, parent)  # report a broken parent under its own file name
    parent.pop("abstract", None)  # not inherited
    return deep_merge(parent, data)


def load_profile(name_or_path: str | Path, profiles_dir: Path | None = None) -> Profile:
    """Load, merge (extends) and validate a profile by name or by path to its TOML file."""
    path = _resolve(name_or_path, profiles_dir)
    return _validate(path, _load_merged(path, profiles_dir, ()))


def profile_files(profiles_dir: Path | None = None) -> dict[str, Path]:
    """Every profile file by name, the extra directory shadowing the shipped one."""
    found: dict[str, Path] = {}
    for directory in reversed(_search_dirs(profiles_dir)):
        if directory.is_dir():
            found.update({p.stem: p for p in sorted(directory.glob("*.toml"))})
    return dict(sorted(found.items()))


def list_profiles(profiles_dir: Path | None = None, *, include_abstract: bool = False) -> list[str]:
    """Names of the usable profiles (abstract ones such as `base` only on request)."""
    names = []
    for name, path in profile_files(profiles_dir).items():
        if not include_abstract:
            try:
                if _read_toml(path).get("abstract") is True:
                    continue
            except ProfileError:
                pass  # listed so that `profiles check` reports it
        names.append(name)
    return names


# -- provenance: rule → seed → config key ------------------------------------------------------

SEED_FILES: dict[str, str] = {
    "000": "000_2567f4ea824412ab.txt",
    "001": "001_8d21c4a448113827.txt",
    "002": "002_93094085b6882c98.txt",
    "003": "003_dab1bd914f4d2c30.txt",
    "004": "004_3088d8cc6c892c4f.txt",
}


def explain_rows(profile: Profile) -> list[tuple[str, str, str, str, str]]:
    """(config key, value, seed file, R-number, the seed's words or our note) per rule source,
    in file order (inherited first): what `profiles explain` and docs/profiles.md print."""
    rows = []
    for source in profile.sources:
        seed = SEED_FILES.get(source.seed or "", source.seed or "")
        if source.ours:
            words = "ours: " + (source.note or "the seed is silent")
        else:
            words = source.words or ""
            if source.note:
                words = f"{words} ({source.note})" if words else source.note
        rows.append((source.key, _key_value(profile, source.key), seed, source.regime or "", words))
    return rows


def _key_value(profile: Profile, key: str) -> str:
    """A short rendering of the configured value a source key names (best effort)."""
    base, _, selector = key.partition("[")
    parts = base.split(".")
    if parts[0] == "deadlines" and len(parts) == 2 and parts[1] in STAGES:
        rules = getattr(profile.deadlines, parts[1])
        wanted = selector.rstrip("]")
        shown = [
            f"{r.amount} {r.unit}"
            + "".join(
                f" {k}={getattr(r, k)}"
                for k in ("category", "complexity", "severity")
                if getattr(r, k) is not None
            )
            for r in rules
            if not wanted
            or "=" not in wanted
            or wanted.split("=")[1] in (r.category, r.complexity, r.severity)
        ]
        return "; ".join(shown)
    value: Any = profile.model_dump(mode="json")
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list):
            found = next((x for x in value if isinstance(x, dict) and x.get("id") == part), None)
            if found is None:
                return ""
            value = found
        else:
            return ""
    if isinstance(value, dict) and "amount" in value and "unit" in value:
        return f"{value['amount']} {value['unit']}"
    if isinstance(value, dict) and "label" in value:
        return str(value["label"].get("zh_CN", ""))
    if isinstance(value, list):
        return ", ".join(str(x.get("id")) if isinstance(x, dict) else str(x) for x in value)[:80]
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return ", ".join(value)[:80]  # a table of texts (e.g. revisit.call_script): its keys
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if not isinstance(v, dict))[:80]
    return str(value)
