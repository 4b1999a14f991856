"""Filing a complaint: scope screening, the profile-driven form, the summary and confirmation.

The form is the profile's `[intake] fields`, in order. A field becomes one or two steps (a
category then its sub-category, a target kind then its description, a request type then its
text); each step has a kind that decides its prompt, its choices and what input it accepts.
One small function per concern, with the next step explicit, in the spirit of
python-telegram-bot's conversationbot example.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, TypeVar

from handlers.commands import SubmitComplaint
from handlers.i18n import N_, format_incident_time, format_phone, pick_label, translator
from handlers.messages import AskKind, Choice
from handlers.turn import BACK, CONFIRM, DONE, SKIP, Turn, file_record, menu_choices
from handlers.validators import InvalidInput, normalise_phone, parse_incident_time, validate_text

StepKind = Literal[
    "category",
    "subcategory",
    "choice",
    "target_kind",
    "target_text",
    "request_type",
    "request_text",
    "text",
    "datetime",
    "place",
    "phone",
    "photos",
    "anonymous",
]

CHOICE_KINDS = frozenset(
    {"category", "subcategory", "choice", "target_kind", "request_type", "anonymous"}
)
# Steps whose prompt puts up a reply keyboard (share contact / location) that must come down.
KEYBOARD_KINDS = frozenset({"place", "phone"})
MB = 1024 * 1024
OPTION = "opt:"  # prefix of option choice ids, so they never clash with navigation ids
EXCLUSION = "excl:"
NOT_EXCLUDED = "screen:none"
EDIT = "edit:"
CLEAR_PHOTOS = "photos:clear"
SCREENING = "screening"
# Screening: "not sure, let staff decide" files the complaint flagged for staff screening.
STAFF_DECIDES = "screen:staff"
# After an excluded matter was picked: go there (nothing filed), or file it for staff to judge.
EXCLUSION_STEP = "screening.exclusion"
LEAVE = "screen:leave"
# The privacy notice shown before the first personal question (name, phone).
PRIVACY_STEP = "privacy"
PRIVACY_OK = "privacy:ok"
# "I cannot remember exactly when": the time question answered without a time.
TIME_UNKNOWN = "time:unknown"

# Keys every SubmitComplaint carries, whatever the profile asks (None when not asked).
ANSWER_KEYS = (
    "category", "subcategory", "target_kind", "target_text", "incident_time",
    "incident_time_precision", "place_text", "latitude", "longitude", "facts", "request_type",
    "request_text", "witnesses", "name", "phone", "photos", "anonymous", "deep_link",
    "screening",
)  # fmt: skip

# Defaults when the profile's field has no options of its own.
TARGET_KINDS: dict[str, str] = {
    "department": N_("A department or service window"),
    "staff": N_("A staff member"),
    "vehicle": N_("A vehicle"),
    "other": N_("Something else"),
}
REQUEST_TYPES: dict[str, str] = {
    "stop_harm": N_("Stop the harm"),
    "apology": N_("An apology"),
    "compensation": N_("Compensation"),
    "explanation": N_("An explanation"),
    "other": N_("Something else"),
}


def request_type_labels(lang: str) -> dict[str, str]:
    """The built-in request types in `lang`, as the form offers them (for the printed register,
    models.paper.register_of, which does not translate)."""
    _ = translator(lang)
    return {kind: _(label) for kind, label in REQUEST_TYPES.items()}


# Short titles used in the summary and the edit choices.
FIELD_TITLES: dict[str, str] = {
    "category": N_("Category"),
    "target": N_("About"),
    "incident_time": N_("When"),
    "place": N_("Where"),
    "facts": N_("What happened"),
    "request_type": N_("Your request"),
    "witnesses": N_("Supporting evidence or witnesses"),
    "name": N_("Name"),
    "phone": N_("Phone"),
    "photos": N_("Photos"),
    "anonymous": N_("Anonymous"),
}


# ---------------------------------------------------------------- the form


@dataclass(frozen=True)
class FormField:
    """A field of the profile's intake form, read defensively (the profile is data)."""

    id: str
    type: str
    required: bool
    prompt: Any = None
    label: Any = None
    min_length: int | None = None
    max_length: int | None = None
    max_count: int | None = None
    max_size_mb: float | None = None
    options: tuple[Any, ...] = ()
    free_text: bool = False  # request_type: a free-text addition follows the choice

    @classmethod
    def from_profile(cls, raw: Any) -> FormField:
        def get(name: str) -> Any:
            return raw.get(name) if isinstance(raw, dict) else getattr(raw, name, None)

        return cls(
            id=str(get("id")),
            type=str(get("type") or "text"),
            required=bool(get("required")),
            prompt=get("prompt"),
            label=get("label"),
            min_length=get("min_length"),
            max_length=get("max_length"),
            max_count=get("max_count"),
            max_size_mb=get("max_size_mb"),
            options=tuple(get("options") or ()),
            free_text=bool(get("free_text")),
        )

    @property
    def is_contact(self) -> bool:
        """Name and phone: not asked when the person files anonymously."""
        return self.id == "name" or self.type == "phone"


@dataclass(frozen=True)
class Step:
    id: str  # field id, or field id + ".sub" / ".text" for the second step of a field
    kind: StepKind
    field: FormField
    number: int  # 1-based position of its field, for the "3/8" progress
    required: bool
    keys: tuple[str, ...]  # the answers this step fills


# form_fields per profile object (profiles are immutable once loaded): a memo of a pure
# function, so the form is not re-built on every turn. Keyed by id() with the profile kept
# alongside, so a reused id of a dropped profile is never mistaken for it.
_FIELDS: dict[int, tuple[Any, tuple[FormField, ...]]] = {}


def form_fields(profile: Any) -> list[FormField]:
    """The profile's fields in order, with the anonymous question before name and phone."""
    # Profiles are few; tests load many.
    return _memoised(_FIELDS, id(profile), profile, lambda: _build_form_fields(profile), 64)


_T = TypeVar("_T")


def _memoised(
    table: dict[Any, tuple[Any, tuple[_T, ...]]],
    key: Any,
    profile: Any,
    build: Callable[[], list[_T]],
    limit: int,
) -> list[_T]:
    """`build()` memoised in `table` under `key` (which starts with the profile's id): the entry
    kept with its profile, so a reused id of a dropped profile is never mistaken for it."""
    cached = table.get(key)
    if cached is not None and cached[0] is profile:
        return list(cached[1])
    built = build()
    if len(table) > limit:
        table.clear()
    table[key] = (profile, tuple(built))
    return built


def _build_form_fields(profile: Any) -> list[FormField]:
    fields = [FormField.from_profile(raw) for raw in profile.intake.fields]
    if getattr(profile, "anonymous_allowed", False):
        first_contact = next((i for i, f in enumerate(fields) if f.is_contact), None)
        if first_contact is not None:
            anonymous = FormField(id="anonymous", type="anonymous", required=True)
            fields.insert(first_contact, anonymous)
    return fields


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _category(profile: Any, category_id: str | None) -> Any:
    if not category_id:
        return None
    return next((c for c in profile.categories if _get(c, "id") == category_id), None)


def _field_steps(profile: Any, f: FormField, number: int, answers: dict[str, Any]) -> list[Step]:
    def step(step_id: str, kind: StepKind, keys: tuple[str, ...], required: bool) -> Step:
        return Step(step_id, kind, f, number, required, keys)

    match f.type:
        case "category":
            steps = [step(f.id, "category", ("category",), f.required)]
            category = _category(profile, answers.get("category"))
            if category is not None and _get(category, "subcategories"):
                steps.append(step(f"{f.id}.sub", "subcategory", ("subcategory",), f.required))
            return steps
        case "target":
            steps = [step(f.id, "target_kind", ("target_kind",), f.required)]
            if answers.get("target_kind", "") is not None:  # a skipped target has no text
                steps.append(step(f"{f.id}.text", "target_text", ("target_text",), f.required))
            return steps
        case "request_type":
            steps = [step(f.id, "request_type", ("request_type",), f.required)]
            chosen = answers.get("request_type", "")
            # "other" needs words; otherwise the addition is offered when the profile says so.
            if chosen == "other" or (chosen is not None and f.free_text):
                steps.append(
                    step(f"{f.id}.text", "request_text", ("request_text",), chosen == "other")
                )
            return steps
        case "place":
            return [step(f.id, "place", ("place_text", "latitude", "longitude"), f.required)]
        case "datetime":
            return [step(f.id, "datetime", (f.id, f"{f.id}_precision"), f.required)]
        case "photos" | "anonymous" | "phone" | "choice" | "text":
            return [step(f.id, f.type, (f.id,), f.required)]  # type: ignore[arg-type]
        case _:
            return [step(f.id, "text", (f.id,), f.required)]


# The answers that shape the steps (sub-steps and skips in `_field_steps`, the contact fields'
# skip); every other answer leaves them as they are, so the steps are memoised on these.
_SHAPING = ("anonymous", "category", "target_kind", "request_type")
_MISSING = object()
_STEPS: dict[tuple[Any, ...], tuple[Any, tuple[Step, ...]]] = {}


def form_steps(profile: Any, answers: dict[str, Any]) -> list[Step]:
    """The steps still to walk, given the answers so far (they decide sub-steps and skips).
    Pure, and walked several times a turn: memoised per profile and shaping answers."""
    key = (id(profile), *(answers.get(name, _MISSING) for name in _SHAPING))
    try:
        hash(key)
    except TypeError:  # an unhashable answer (never from the engine): no memo
        return _form_steps(profile, answers)
    # A few per profile in practice; tests load many profiles.
    return _memoised(_STEPS, key, profile, lambda: _form_steps(profile, answers), 4096)


def _form_steps(profile: Any, answers: dict[str, Any]) -> list[Step]:
    steps: list[Step] = []
    for number, f in enumerate(form_fields(profile), start=1):
        if f.is_contact and answers.get("anonymous") is True:
            continue
        if f.is_contact and answers.get("anonymous") is False:
            # "No, I give my name and phone": they are no longer optional (D7).
            f = replace(f, required=True)
        steps.extend(_field_steps(profile, f, number, answers))
    return steps


def _find(steps: Sequence[Step], step_id: str | None) -> int | None:
    return next((i for i, s in enumerate(steps) if s.id == step_id), None)


def _missing(steps: Sequence[Step], answers: dict[str, Any]) -> Step | None:
    return next((s for s in steps if any(k not in answers for k in s.keys)), None)


# ---------------------------------------------------------------- screening and start


def _exclusions(profile: Any) -> list[Any]:
    return list(getattr(profile, "exclusions", None) or [])


def start(turn: Turn, payload: str | None = None) -> None:
    """A new complaint: scope screening first when the profile has exclusions."""
    _ = turn._
    turn.reset()
    if payload and turn.ctx.accepts_deep_link(payload):
        turn.state.answers["deep_link"] = payload
    organisation = pick_label(getattr(turn.profile, "name", None), turn.lang)
    welcome = (
        _("Welcome to the complaint service of {organisation}.").format(organisation=organisation)
        if organisation
        else _("Welcome to the complaint service.")
    )
    if _exclusions(turn.profile):
        turn.go(SCREENING, SCREENING)
        prompt_screening(turn, welcome)
    else:
        _begin_form(turn, welcome)


def _begin_form(turn: Turn, prefix: str | None = None) -> None:
    steps = form_steps(turn.profile, turn.state.answers)
    if not steps:
        show_summary(turn, prefix)  # a profile without a form: straight to confirmation
        return
    turn.go("intake")
    _enter(turn, steps[0], prefix)


def _screening_choices(turn: Turn) -> list[Choice]:
    _ = turn._
    choices = [
        Choice(EXCLUSION + str(_get(e, "id")), _exclusion_choice_label(turn, e))
        for e in _exclusions(turn.profile)
    ]
    choices.append(Choice(NOT_EXCLUDED, _("None of these")))
    choices.append(Choice(STAFF_DECIDES, _("Not sure, let the staff decide")))
    return choices + turn.nav(back=False)


def _exclusion_choice_label(turn: Turn, exclusion: Any) -> str:
    """The screening choice: the plain-language question when the profile has one."""
    return pick_label(_get(exclusion, "question") or _get(exclusion, "label"), turn.lang)


def prompt_screening(turn: Turn, prefix: str | None = None) -> None:
    _ = turn._
    question = _(
        "Before we start: some matters follow a procedure of their own. Does one of these "
        "describe yours? If you are not sure, choose “Not sure, let the staff decide”: your "
        "complaint is filed and the staff check where it belongs."
    )
    turn.say(_join(prefix, question), _screening_choices(turn))


def _exclusion_choices(turn: Turn) -> list[Choice]:
    _ = turn._
    return [
        Choice(LEAVE, _("I will go there (file nothing here)")),
        Choice(STAFF_DECIDES, _("File it anyway, let the staff decide")),
        *turn.nav(),
    ]


def _staff_decides(turn: Turn) -> None:
    """File the complaint for staff screening: they accept it, or refuse it with the reason
    and where to go instead (models.actions refuse)."""
    turn.state.answers["screening"] = "staff"
    turn.state.answers.pop("excluded", None)
    _begin_form(
        turn,
        turn._(
            "Fine: answer the questions and submit; the staff then decide whether we can take "
            "it here, and tell you why if not."
        ),
    )


def handle_screening(turn: Turn) -> None:
    _ = turn._
    if turn.state.step == EXCLUSION_STEP:
        _handle_exclusion_answer(turn)
        return
    offered = _screening_choices(turn)
    if turn.nav_intent(offered) == BACK:
        prompt_screening(turn, _("This is the first question."))
        return
    picked = turn.picked(offered)
    if picked == NOT_EXCLUDED:
        turn.state.answers.pop("screening", None)
        _begin_form(turn)
        return
    if picked == STAFF_DECIDES:
        _staff_decides(turn)
        return
    if picked and picked.startswith(EXCLUSION):
        exclusion_id = picked.removeprefix(EXCLUSION)
        exclusion = next(e for e in _exclusions(turn.profile) if str(_get(e, "id")) == exclusion_id)
        if _get(exclusion, "urgent_case"):
            _urgent_case(turn, exclusion)
        else:
            _explain_exclusion(turn, exclusion)
        return
    prompt_screening(turn, _stale_or_not_a_choice(turn))


def _explain_exclusion(turn: Turn, exclusion: Any) -> None:
    """An excluded matter was picked: where it belongs and why, then the person decides. One
    tap on a legal term never ends the dialog by itself (D2)."""
    turn.go(SCREENING, EXCLUSION_STEP)
    turn.state.scratch = {"exclusion": str(_get(exclusion, "id"))}
    turn.say(_exclusion_text(turn, exclusion), _exclusion_choices(turn))


def _exclusion_text(turn: Turn, exclusion: Any) -> str:
    _ = turn._
    reason = pick_label(_get(exclusion, "reason"), turn.lang)
    guidance = pick_label(_get(exclusion, "guidance"), turn.lang)
    parts = [_("You chose: {matter}.").format(matter=_exclusion_choice_label(turn, exclusion))]
    if reason:
        parts.append(reason)
    if guidance:
        parts.append(_("Where to go instead: {guidance}").format(guidance=guidance))
    parts.append(
        _(
            "If that is not quite your case, you can still file it here: the staff then "
            "decide, and tell you why if we cannot take it."
        )
    )
    return "\n\n".join(parts)


def _current_exclusion(turn: Turn) -> Any:
    exclusion_id = turn.state.scratch.get("exclusion")
    return next((e for e in _exclusions(turn.profile) if str(_get(e, "id")) == exclusion_id), None)


def _handle_exclusion_answer(turn: Turn) -> None:
    _ = turn._
    exclusion = _current_exclusion(turn)
    if exclusion is None:  # the profile changed meanwhile
        turn.go(SCREENING, SCREENING)
        prompt_screening(turn)
        return
    offered = _exclusion_choices(turn)
    if turn.nav_intent(offered) == BACK:
        turn.go(SCREENING, SCREENING)
        turn.state.scratch = {}
        prompt_screening(turn)
        return
    picked = turn.picked(offered)
    if picked == LEAVE:
        _refuse_out_of_scope(turn, exclusion)
    elif picked == STAFF_DECIDES:
        turn.state.scratch = {}
        _staff_decides(turn)
    else:
        text = _join(_stale_or_not_a_choice(turn), _exclusion_text(turn, exclusion))
        turn.say(text, offered)


def _urgent_case(turn: Turn, exclusion: Any) -> None:
    """An emergency: the emergency numbers at once, then the form goes on as an urgent case, so
    the duty desk is alerted (the profile rates it `severity_rules.urgent`)."""
    _ = turn._
    guidance = pick_label(_get(exclusion, "guidance"), turn.lang)
    turn.state.answers["urgent"] = str(_get(exclusion, "id"))
    first = _("If anyone is in danger, act now: {guidance}").format(guidance=guidance)
    then = _(
        "We also take it as an urgent complaint: answer the next questions briefly and the "
        "duty staff are alerted as soon as you submit."
    )
    _begin_form(turn, _join(first, then))


def _refuse_out_of_scope(turn: Turn, exclusion: Any) -> None:
    """The person goes where the excluded matter belongs; no complaint is created."""
    _ = turn._
    guidance = pick_label(_get(exclusion, "guidance"), turn.lang)
    parts = []
    if guidance:
        parts.append(_("Where to go: {guidance}").format(guidance=guidance))
    parts.append(_("No complaint has been filed. You can start again at any time."))
    turn.reset()
    turn.say("\n\n".join(parts), menu_choices(_))


# ---------------------------------------------------------------- prompts


def _join(*parts: str | None) -> str:
    return "\n\n".join(p for p in parts if p)


def _not_a_choice(turn: Turn) -> str:
    return turn._("Please choose one of the options: tap a button or type its number.")


def _stale_or_not_a_choice(turn: Turn) -> str:
    """A pressed button that the current question does not offer belongs to an earlier
    message (D15): say so rather than "not understood"."""
    if turn.incoming.kind == "choice":
        return _stale(turn)
    return _not_a_choice(turn)


def _stale(turn: Turn) -> str:
    return turn._(
        "That button belongs to an earlier question and is no longer valid. "
        "Please answer the question below."
    )


def _option(raw: Any, defaults: dict[str, str], turn: Turn) -> Choice:
    if isinstance(raw, str):
        option_id, label = raw, None
    else:
        option_id, label = str(_get(raw, "id")), _get(raw, "label")
    text = pick_label(label, turn.lang) if label else ""
    if not text:
        text = turn._(defaults[option_id]) if option_id in defaults else option_id
    return Choice(OPTION + option_id, text)


def _options(turn: Turn, step: Step) -> list[Choice]:
    _ = turn._
    answers = turn.state.answers
    match step.kind:
        case "category":
            return [
                Choice(OPTION + str(_get(c, "id")), pick_label(_get(c, "label"), turn.lang))
                for c in turn.profile.categories
                # a staff finding (e.g. 即时办结) is not a citizen's pick
                if not _get(c, "staff_only")
            ]
        case "subcategory":
            category = _category(turn.profile, answers.get("category"))
            subs = _get(category, "subcategories") or [] if category is not None else []
            return [
                Choice(OPTION + str(_get(s, "id")), pick_label(_get(s, "label"), turn.lang))
                for s in subs
            ]
        case "target_kind":
            raw = step.field.options or tuple(TARGET_KINDS)
            return [_option(o, TARGET_KINDS, turn) for o in raw]
        case "request_type":
            raw = step.field.options or tuple(REQUEST_TYPES)
            return [_option(o, REQUEST_TYPES, turn) for o in raw]
        case "choice":
            return [_option(o, {}, turn) for o in step.field.options]
        case "anonymous":
            return [
                Choice(OPTION + "no", _("No, I give my name and phone")),
                Choice(OPTION + "yes", _("Yes, file anonymously")),
            ]
        case "datetime":
            return [Choice(TIME_UNKNOWN, _("I cannot remember exactly when"))]
        case "photos":
            choices = [Choice(DONE, _("Done"))]
            if turn.state.scratch.get("photos"):
                choices.append(Choice(CLEAR_PHOTOS, _("Remove the photos sent")))
            return choices
        case _:
            return []


def _can_go_back(turn: Turn, steps: Sequence[Step], step: Step) -> bool:
    if turn.state.flow == "edit":
        return True
    return _find(steps, step.id) != 0 or bool(_exclusions(turn.profile))


def _choices(turn: Turn, step: Step) -> list[Choice]:
    steps = form_steps(turn.profile, turn.state.answers)
    nav = turn.nav(back=_can_go_back(turn, steps, step), skip=not step.required)
    return _options(turn, step) + nav


def _text_limits(turn: Turn, step: Step) -> tuple[int, int]:
    ceiling = turn.ctx.max_text_length
    match step.kind:
        case "text":
            upper = min(step.field.max_length or ceiling, ceiling)
            return step.field.min_length or 1, upper
        case "target_text":
            return 1, min(step.field.max_length or 200, ceiling)
        case "place":
            return step.field.min_length or 2, min(step.field.max_length or 300, ceiling)
        case _:
            return 1, ceiling


def _photo_limits(turn: Turn, step: Step) -> tuple[int, int]:
    count = min(step.field.max_count or turn.ctx.max_photos, turn.ctx.max_photos)
    size = turn.ctx.max_photo_bytes
    if step.field.max_size_mb:
        size = min(size, int(step.field.max_size_mb * MB))
    return count, size


def _megabytes(size: int) -> str:
    return f"{size / MB:.1f}".removesuffix(".0")


def _question(turn: Turn, step: Step) -> tuple[str, AskKind | None]:
    """The question text of a step (without progress) and what to ask the platform for."""
    _ = turn._
    answers = turn.state.answers
    own = pick_label(step.field.prompt, turn.lang)
    match step.kind:
        case "category":
            return own or _("What is your complaint about? Choose a category."), None
        case "subcategory":
            category = _category(turn.profile, answers.get("category"))
            name = pick_label(_get(category, "label"), turn.lang)
            return _("{category}: which of these fits best?").format(category=name), None
        case "target_kind":
            question = own or _("Who or what is your complaint about?")
            return _join(question, _("Choose below, or type it in your own words.")), None
        case "target_text":
            kind = answers.get("target_kind")
            questions = {
                "department": _("Which department or service window?"),
                "staff": _("The staff member's name, badge or window number, as far as you know."),
                "vehicle": _("The vehicle's plate number."),
            }
            return questions.get(kind, _("Describe who or what your complaint is about.")), None
        case "request_type":
            question = own or _("What do you ask for?")
            if _accepts_typed(step):
                question = _join(question, _("Choose below, or type it in your own words."))
            return question, None
        case "request_text":
            if answers.get("request_type") == "other":
                return _("Please describe what you ask for."), None
            return _("Anything to add to your request? You may skip this."), None
        case "text" if step.field.id == "name" and answers.get("anonymous") is False:
            return _("Your name:"), None  # they chose to give it: no "optional" (D7)
        case "text":
            low, high = _text_limits(turn, step)
            hint = (
                _("({low} to {high} characters)").format(low=low, high=high)
                if low > 1
                else _("(at most {high} characters)").format(high=high)
            )
            return f"{own}\n{hint}", None
        case "datetime":
            hint = _(
                "For example: 昨天下午3点, 前天晚上, 上周五下午, 12月1日上午, 3天前, 上个月. "
                "If you cannot remember, press the button below."
            )
            return _join(own or _("When did it happen?"), hint), None
        case "place":
            # The profile's own prompt usually says how to answer already.
            question = own or _join(
                _("Where did it happen?"), _("Share your location, or type the address.")
            )
            return question, "location"
        case "phone":
            if answers.get("anonymous") is False:
                own = _("Your phone number, so that we can reach you about the complaint:")
            if _can_share_contact(turn):
                hint = _("Share your contact, or type a mobile or landline number.")
            else:  # the web chat and WeChat have no contact sharing (D8)
                hint = _("Type a mobile or landline number, e.g. 138 0013 8000 or 010-1234 5678.")
            return _join(own or _("Your phone number?"), hint), "contact"
        case "photos":
            count, size = _photo_limits(turn, step)
            hint = _("Send up to {count} photos, each at most {size} MB, then press Done.").format(
                count=count, size=_megabytes(size)
            )
            return _join(own or _("Photos of what happened?"), hint), "photo"
        case "anonymous":
            question = _(
                "Do you want to file anonymously? We will then not ask for your name or phone "
                "number, and you can still follow your complaint here."
            )
            return question, None
        case _:
            return own, None


def _can_share_contact(turn: Turn) -> bool:
    """Only Telegram can share a contact with a button."""
    return turn.incoming.channel == "telegram"


def _accepts_typed(step: Step) -> bool:
    """A choice question that also takes the person's own words (D3, D5)."""
    if step.kind == "target_kind":
        return True
    if step.kind == "request_type":
        ids = [str(o if isinstance(o, str) else _get(o, "id")) for o in step.field.options]
        return step.field.free_text or "other" in (ids or list(REQUEST_TYPES))
    return False


def prompt_step(
    turn: Turn, step: Step, prefix: str | None = None, *, remove_keyboard: bool = False
) -> None:
    total = len(form_fields(turn.profile))
    question, ask = _question(turn, step)
    progress = f"({step.number}/{total}) "
    current = None
    if turn.state.flow == "edit" and step.id == step.field.id:
        # Changing an answer from the summary: show what it is now.
        value = _value(turn, step.field)
        current = turn._("Current answer: {value}").format(value=value)
    turn.say(
        _join(prefix, progress + question, current),
        _choices(turn, step),
        ask=ask,
        remove_keyboard=remove_keyboard,
    )


def _enter(
    turn: Turn, step: Step, prefix: str | None = None, *, remove_keyboard: bool = False
) -> None:
    if step.field.is_contact and not turn.state.answers.get("privacy_ack"):
        _privacy_notice(turn, step.id, prefix, remove_keyboard=remove_keyboard)
        return
    turn.state.step = step.id
    if step.kind == "photos":
        # Photos collect here until Done; editing starts from the photos already sent.
        turn.state.scratch = {"photos": list(turn.state.answers.get("photos") or [])}
    else:
        turn.state.scratch = {}
    prompt_step(turn, step, prefix, remove_keyboard=remove_keyboard)


# ---------------------------------------------------------------- privacy notice


def _privacy_notice(
    turn: Turn, next_step: str, prefix: str | None = None, *, remove_keyboard: bool = False
) -> None:
    """Before the first personal question: what is collected, why, who sees it, how long it is
    kept (the profile's retention) and where the full text is; the form goes on after "OK"."""
    turn.state.step = PRIVACY_STEP
    turn.state.scratch = {"next": next_step}
    turn.say(
        _join(prefix, privacy_text(turn)), _privacy_choices(turn), remove_keyboard=remove_keyboard
    )


def _privacy_choices(turn: Turn) -> list[Choice]:
    return [Choice(PRIVACY_OK, turn._("Understood, continue")), *turn.nav()]


def privacy_text(turn: Turn) -> str:
    """The short privacy notice in the person's language."""
    _ = turn._
    years = int(getattr(turn.profile, "retention_years", 3) or 3)
    text = _(
        "About your personal information: next we ask for your name and phone number. We use "
        "them only to handle this complaint and to contact you about it. Only the staff "
        "handling complaints see them; they are not disclosed without your consent, except "
        "where the law requires it. They are kept for {years} years after the complaint is "
        "closed and then deleted."
    ).format(years=years)
    url = turn.ctx.privacy_url
    if url:
        text = _join(text, _("Full privacy notice: {url}").format(url=url))
    return text


def _handle_privacy(turn: Turn) -> None:
    steps = form_steps(turn.profile, turn.state.answers)
    following = _find(steps, turn.state.scratch.get("next"))
    if following is None:
        _resume(turn)
        return
    offered = _privacy_choices(turn)
    intent = turn.nav_intent(offered)
    if intent == BACK:
        if turn.state.flow == "edit":
            show_summary(turn)
        else:
            _enter(turn, steps[max(following - 1, 0)])
        return
    typed = (turn.incoming.text or "").strip().casefold() if turn.incoming.kind == "text" else ""
    if turn.picked(offered) == PRIVACY_OK or typed in ("好", "好的", "ok", "知道了"):
        turn.state.answers["privacy_ack"] = turn.ctx.now.isoformat()
        _enter(turn, steps[following])
        return
    turn.say(_join(_stale_or_not_a_choice(turn), privacy_text(turn)), offered)


def current_step(turn: Turn) -> Step | None:
    steps = form_steps(turn.profile, turn.state.answers)
    index = _find(steps, turn.state.step)
    return None if index is None else steps[index]


def reprompt(turn: Turn, prefix: str | None = None) -> None:
    """Ask again whatever the draft flow is waiting for (after help, a language switch, …)."""
    if turn.state.flow == SCREENING and turn.state.step == EXCLUSION_STEP:
        exclusion = _current_exclusion(turn)
        if exclusion is None:
            turn.go(SCREENING, SCREENING)
            prompt_screening(turn, prefix)
        else:
            turn.say(_join(prefix, _exclusion_text(turn, exclusion)), _exclusion_choices(turn))
    elif turn.state.flow == SCREENING:
        prompt_screening(turn, prefix)
    elif turn.state.step == PRIVACY_STEP:
        turn.say(_join(prefix, privacy_text(turn)), _privacy_choices(turn))
    elif turn.state.flow == "summary":
        show_summary(turn, prefix)
    else:
        step = current_step(turn)
        if step is None:
            _resume(turn, prefix)
        else:
            prompt_step(turn, step, prefix)


def _resume(turn: Turn, prefix: str | None = None) -> None:
    """The state names no current step (e.g. the profile changed): ask what is still missing."""
    steps = form_steps(turn.profile, turn.state.answers)
    missing = _missing(steps, turn.state.answers)
    if missing is None:
        show_summary(turn, prefix)
    else:
        turn.go("intake" if turn.state.flow != "edit" else "edit")
        _enter(turn, missing, prefix)


# ---------------------------------------------------------------- answers


class _Stay:
    """The input was taken but the step goes on (another photo may follow)."""


STAY = _Stay()
Outcome = str | _Stay | None  # None: answered, go on; str: refused with this message


def _accept_choice(turn: Turn, step: Step, offered: Sequence[Choice]) -> Outcome:
    picked = turn.picked(offered)
    if picked is None or not picked.startswith(OPTION):
        return _not_a_choice(turn)
    value = picked.removeprefix(OPTION)
    answers = turn.state.answers
    match step.kind:
        case "category" | "target_kind" | "request_type":
            # A changed first answer invalidates the dependent second one.
            dependent = {"category": "subcategory", "target_kind": "target_text"}.get(
                step.kind, "request_text"
            )
            if answers.get(step.keys[0]) != value:
                answers.pop(dependent, None)
            answers[step.keys[0]] = value
        case "anonymous":
            answers["anonymous"] = value == "yes"
        case _:
            answers[step.keys[0]] = value
    return None


def _typed_answer(turn: Turn, offered: Sequence[Choice]) -> bool:
    """Typed words that are not one of the offered choices (nor its number)."""
    message = turn.incoming
    if message.kind != "text" or not (message.text or "").strip():
        return False
    return turn.picked(offered) is None and turn.nav_intent(offered) is None


def _accept_typed(turn: Turn, step: Step) -> Outcome:
    """The person's own words for a target or request question: kept as the text of the
    field's "other" (or only) kind, and its follow-up text question is answered by them."""
    answers = turn.state.answers
    ids = [c.id.removeprefix(OPTION) for c in _options(turn, step)]
    kind = "other" if "other" in ids or not ids else ids[-1]
    low, high = 1, turn.ctx.max_text_length
    if step.kind == "target_kind":
        high = min(step.field.max_length or 200, high)
    try:
        text = validate_text(turn.incoming.text or "", min_length=low, max_length=high)
    except InvalidInput as error:
        return _invalid_text(turn, error)
    key, dependent = (
        step.keys[0],
        f"{step.keys[0].removesuffix('_kind').removesuffix('_type')}_text",
    )
    answers[key] = kind
    answers[dependent] = text
    return None


def _invalid_text(turn: Turn, error: InvalidInput) -> str:
    _ = turn._
    match error.reason:
        case "text_too_long":
            return _(
                "Your text has {length} characters; the limit is {limit}. "
                "Please shorten it and send it again."
            ).format(**error.params)
        case "text_too_short":
            return _(
                "Please write a little more: at least {limit} characters (you sent {length})."
            ).format(**error.params)
        case _:
            return _("Please answer with text.")


def _accept_text(turn: Turn, step: Step) -> Outcome:
    if turn.incoming.kind != "text" or turn.incoming.text is None:
        return _wrong_kind(turn, turn._("Please answer with text."))
    low, high = _text_limits(turn, step)
    try:
        turn.state.answers[step.keys[0]] = validate_text(
            turn.incoming.text, min_length=low, max_length=high
        )
    except InvalidInput as error:
        return _invalid_text(turn, error)
    return None


def _accept_datetime(turn: Turn, step: Step) -> Outcome:
    _ = turn._
    unreadable = _(
        "I could not read that date and time. Try for example 2026-11-20 09:00, today 14:30, "
        "昨天下午3点 or 3 hours ago."
    )
    if turn.incoming.kind != "text" or not turn.incoming.text:
        return _wrong_kind(turn, unreadable)
    try:
        parsed = parse_incident_time(turn.incoming.text, now=turn.ctx.now, tz=turn.ctx.tz)
    except InvalidInput as error:
        if error.reason == "datetime_future":
            return _("That time is in the future. Please give the time when it happened.")
        return unreadable
    turn.state.answers[step.keys[0]] = parsed.at.isoformat()
    turn.state.answers[step.keys[1]] = parsed.precision
    return None


def _accept_place(turn: Turn, step: Step) -> Outcome:
    message, answers = turn.incoming, turn.state.answers
    if message.kind == "location" and message.latitude is not None:
        lat, lon = message.latitude, message.longitude
        answers["place_text"] = message.location_label or f"{lat:.5f}, {lon:.5f}"
        answers["latitude"], answers["longitude"] = lat, lon
        return None
    if message.kind != "text" or message.text is None:
        return _wrong_kind(turn, turn._("Please share a location or type the address."))
    low, high = _text_limits(turn, step)
    try:
        answers["place_text"] = validate_text(message.text, min_length=low, max_length=high)
    except InvalidInput as error:
        return _invalid_text(turn, error)
    answers["latitude"] = answers["longitude"] = None
    return None


def _accept_phone(turn: Turn, step: Step) -> Outcome:
    _ = turn._
    message = turn.incoming
    invalid = _(
        "That does not look like a phone number. Send a mobile number such as 13812345678 "
        "or a landline such as 010-12345678."
    )
    raw = message.phone if message.kind == "contact" else message.text
    if message.kind not in ("contact", "text") or not raw:
        return _wrong_kind(turn, _("Please type a phone number, or share your contact."))
    try:
        turn.state.answers[step.keys[0]] = normalise_phone(raw)
    except InvalidInput:
        return invalid
    return None


def _accept_photo(turn: Turn, step: Step) -> Outcome:
    _ = turn._
    message = turn.incoming
    if message.kind == "choice" and message.choice == CLEAR_PHOTOS:
        turn.state.scratch["photos"] = []
        return STAY
    if message.kind not in ("photo", "file") or message.file is None:
        return _wrong_kind(turn, _("Please send a photo, or press Done."))
    photos: list[dict[str, Any]] = turn.state.scratch.setdefault("photos", [])
    count, limit = _photo_limits(turn, step)
    if len(photos) >= count:
        return _("You have already sent {count} photos, the most we accept. Press Done.").format(
            count=count
        )
    file = message.file
    size = file.size if file.size is not None else (len(file.data) if file.data else None)
    if size is not None and size > limit:
        return _(
            "That file is {size} MB; each photo may be at most {limit} MB. "
            "Please send a smaller one."
        ).format(size=_megabytes(size), limit=_megabytes(limit))
    photos.append(file_record(file, size))
    return STAY


def _finish_photos(turn: Turn, step: Step) -> Outcome:
    photos = list(turn.state.scratch.get("photos") or [])
    if step.required and not photos:
        return turn._("Please send at least one photo.")
    turn.state.answers[step.keys[0]] = photos
    turn.state.scratch = {}
    return None


def accept_answer(turn: Turn, step: Step) -> str | None:
    """Take `turn.incoming` as the answer to `step` with the dialog's own validators (the desk
    form validates each of its fields through here): None when accepted (`turn.state.answers`
    updated), else the refusal the chat would give. Photos are not answered this way."""
    if step.kind in CHOICE_KINDS:
        outcome = _accept_choice(turn, step, _choices(turn, step))
    elif step.kind == "datetime":
        outcome = _accept_datetime(turn, step)
    elif step.kind == "place":
        outcome = _accept_place(turn, step)
    elif step.kind == "phone":
        outcome = _accept_phone(turn, step)
    else:
        outcome = _accept_text(turn, step)
    return outcome if isinstance(outcome, str) else None


def photo_limits(turn: Turn, step: Step) -> tuple[int, int]:
    """How many photos the step takes, and the most bytes each (the chat's limits)."""
    return _photo_limits(turn, step)


def out_of_scope_text(turn: Turn, exclusion: Any) -> str:
    """Why an excluded matter is not taken here, and where to go (the desk shows it)."""
    _ = turn._
    label = pick_label(_get(exclusion, "label"), turn.lang)
    reason = pick_label(_get(exclusion, "reason"), turn.lang)
    guidance = pick_label(_get(exclusion, "guidance"), turn.lang)
    parts = [_("We cannot take this matter as a complaint here: {matter}.").format(matter=label)]
    if reason:
        parts.append(reason)
    if guidance:
        parts.append(_("Where to go instead: {guidance}").format(guidance=guidance))
    parts.append(_("No complaint has been filed. You can start again at any time."))
    return "\n\n".join(parts)


def options_of(turn: Turn, step: Step) -> list[Choice]:
    """The choices a choice step offers (ids carry the OPTION prefix), as the chat shows them."""
    return _options(turn, step)


def question_of(turn: Turn, step: Step) -> str:
    """The step's question as the chat asks it."""
    return _question(turn, step)[0]


def field_steps(profile: Any, f: FormField, answers: dict[str, Any]) -> list[Step]:
    """The steps a field becomes given these answers (they open its second step)."""
    return _field_steps(profile, f, 0, answers)


def invalid_text_message(turn: Turn, error: InvalidInput) -> str:
    """The chat's refusal of a text that does not fit its limits."""
    return _invalid_text(turn, error)


def title_of(turn: Turn, f: FormField) -> str:
    """The field's short title (the summary's)."""
    return _title(turn, f)


def _wrong_kind(turn: Turn, hint: str) -> str:
    if turn.incoming.kind == "unsupported":
        return _join(turn._("Sorry, I cannot read that kind of message."), hint)
    return hint


def handle_step(turn: Turn) -> None:
    """An answer to the current form step (flows intake and edit)."""
    _ = turn._
    if turn.state.step == PRIVACY_STEP:
        _handle_privacy(turn)
        return
    step = current_step(turn)
    if step is None:
        _resume(turn)
        return
    offered = _choices(turn, step)
    intent = turn.nav_intent(offered)
    outcome: Outcome
    if intent == BACK:
        go_back(turn)
        return
    message = turn.incoming
    if message.kind == "choice" and intent is None and all(c.id != message.choice for c in offered):
        outcome = _stale(turn)  # a button of an earlier question (D15)
    elif step.kind == "datetime" and message.kind == "choice" and message.choice == TIME_UNKNOWN:
        turn.state.answers[step.keys[0]] = None
        turn.state.answers[step.keys[1]] = "unknown"
        outcome = None
    elif _accepts_typed(step) and _typed_answer(turn, offered):
        outcome = _accept_typed(turn, step)
        if outcome is None:  # the text step of the same field is answered too
            step = next(
                s
                for s in form_steps(turn.profile, turn.state.answers)
                if s.id == f"{step.field.id}.text"
            )
    elif intent == SKIP:
        if step.required:
            outcome = _("This question cannot be skipped.")
        else:
            for key in step.keys:
                turn.state.answers[key] = [] if step.kind == "photos" else None
            outcome = None
    elif intent == DONE and step.kind == "photos":
        outcome = _finish_photos(turn, step)
    elif step.kind in CHOICE_KINDS:
        if turn.incoming.kind == "unsupported":
            outcome = _wrong_kind(turn, _not_a_choice(turn))
        else:
            outcome = _accept_choice(turn, step, offered)
    elif step.kind == "datetime":
        outcome = _accept_datetime(turn, step)
    elif step.kind == "place":
        outcome = _accept_place(turn, step)
    elif step.kind == "phone":
        outcome = _accept_phone(turn, step)
    elif step.kind == "photos":
        outcome = _accept_photo(turn, step)
    else:
        outcome = _accept_text(turn, step)

    if isinstance(outcome, str):
        prompt_step(turn, step, outcome)  # refused: same step, nothing recorded
    elif isinstance(outcome, _Stay):
        _photo_received(turn, step)
    else:
        _advance(turn, step)


def _photo_received(turn: Turn, step: Step) -> None:
    _ = turn._
    photos = turn.state.scratch.get("photos") or []
    count, _limit = _photo_limits(turn, step)
    if not photos:
        text = _("No photos now. Send photos, or press Done.")
    elif len(photos) >= count:
        text = _("{count} of {max} photos received, the most we accept. Press Done.")
    else:
        text = _("{count} of at most {max} photos received. Send another, or press Done.")
    turn.say(text.format(count=len(photos), max=count), _choices(turn, step), ask="photo")


def _advance(turn: Turn, step: Step) -> None:
    """After an answer: the next step (intake), or back towards the summary (edit)."""
    steps = form_steps(turn.profile, turn.state.answers)
    remove = step.kind in KEYBOARD_KINDS  # leaving a contact/location keyboard
    following: Step | None = None
    index = _find(steps, step.id)
    if turn.state.flow == "edit":
        if index is not None and index + 1 < len(steps):
            candidate = steps[index + 1]
            if candidate.field.id == step.field.id:
                following = candidate  # the second step of the same field
        if following is None:
            following = _missing(steps, turn.state.answers)
    elif index is not None and index + 1 < len(steps):
        following = steps[index + 1]
    if following is None:
        show_summary(turn, remove_keyboard=remove)
    else:
        _enter(turn, following, remove_keyboard=remove)


def go_back(turn: Turn) -> None:
    """One step back in a draft flow; the answer there is asked again."""
    _ = turn._
    flow = turn.state.flow
    if flow == SCREENING:
        prompt_screening(turn, _("This is the first question."))
        return
    steps = form_steps(turn.profile, turn.state.answers)
    if flow == "summary":
        turn.go("intake")
        _enter(turn, steps[-1])
        return
    index = _find(steps, turn.state.step)
    if index is None:
        _resume(turn)
        return
    # Leaving a step that put up a contact/location keyboard: take it down.
    remove = steps[index].kind in KEYBOARD_KINDS
    if flow == "edit":
        previous = steps[index - 1] if index > 0 else None
        if previous is not None and previous.field.id == steps[index].field.id:
            _enter(turn, previous, remove_keyboard=remove)
        else:
            show_summary(turn, remove_keyboard=remove)
    elif index > 0:
        _enter(turn, steps[index - 1], remove_keyboard=remove)
    elif _exclusions(turn.profile):
        turn.go(SCREENING, SCREENING)
        prompt_screening(turn)
    else:
        prompt_step(turn, steps[0], _("This is the first question."))


# ---------------------------------------------------------------- summary


def _title(turn: Turn, f: FormField) -> str:
    own = pick_label(f.label, turn.lang) if f.label else ""
    if own:
        return own
    key = f.id if f.id in FIELD_TITLES else f.type
    if key in FIELD_TITLES:
        return turn._(FIELD_TITLES[key])
    return pick_label(f.prompt, turn.lang) or f.id


def _label_of(choices: Sequence[Choice], value: Any) -> str:
    return next((c.label for c in choices if c.id == OPTION + str(value)), str(value))


def _value(turn: Turn, f: FormField) -> str:
    """One answer as the summary shows it."""
    _ = turn._
    answers = turn.state.answers
    skipped = _("(skipped)")
    steps = [s for s in form_steps(turn.profile, answers) if s.field.id == f.id]
    if not steps:
        return skipped
    first = steps[0]
    match f.type:
        case "category" | "target" | "request_type" | "choice":
            value = answers.get(first.keys[0])
            if value is None:
                return skipped
            parts = [_label_of(_options(turn, first), value)]
            if len(steps) > 1:
                second = answers.get(steps[1].keys[0])
                if second is not None:
                    shown = (
                        _label_of(_options(turn, steps[1]), second)
                        if steps[1].kind == "subcategory"
                        else str(second)
                    )
                    parts.append(shown)
            return " / ".join(parts)
        case "datetime":
            value, precision = answers.get(f.id), answers.get(f"{f.id}_precision")
            if precision == "unknown":
                return _("cannot remember exactly")
            if not value:
                return skipped
            instant = datetime.fromisoformat(value)
            return format_incident_time(instant, precision, turn.lang, turn.ctx.tz)
        case "phone":
            value = answers.get(f.id)
            return format_phone(value) if value else skipped
        case "place":
            return answers.get("place_text") or skipped
        case "photos":
            photos = answers.get("photos") or []
            return str(len(photos)) if photos else _("none")
        case "anonymous":
            return _("Yes") if answers.get("anonymous") else _("No")
        case _:
            value = answers.get(f.id)
            if value is None:
                return skipped
            text = str(value)
            return text if len(text) <= 300 else text[:300] + "…"


def _visible_fields(turn: Turn) -> list[FormField]:
    hidden_contacts = turn.state.answers.get("anonymous") is True
    return [f for f in form_fields(turn.profile) if not (hidden_contacts and f.is_contact)]


def show_summary(turn: Turn, prefix: str | None = None, *, remove_keyboard: bool = False) -> None:
    _ = turn._
    steps = form_steps(turn.profile, turn.state.answers)
    missing = _missing(steps, turn.state.answers)
    if missing is not None:
        # Something is still unanswered (an edit opened a new question): ask it first.
        _enter(turn, missing, prefix, remove_keyboard=remove_keyboard)
        return
    turn.go("summary", "summary")
    turn.state.scratch = {}
    fields = _visible_fields(turn)
    lines = [
        _("{field}: {value}").format(field=_title(turn, f), value=_value(turn, f)) for f in fields
    ]
    text = _join(prefix, _("Please check your complaint:"), "\n".join(lines))
    declaration = turn.profile.intake.declaration
    if declaration:
        text = _join(text, pick_label(declaration, turn.lang))
    text = _join(text, _("Submit it, or choose what to change."))
    choices = [Choice(CONFIRM, _("Submit"))]
    choices += [
        Choice(EDIT + f.id, _("Change: {field}").format(field=_title(turn, f))) for f in fields
    ]
    choices += turn.nav()
    turn.say(text, choices, remove_keyboard=remove_keyboard)


def handle_summary(turn: Turn) -> None:
    _ = turn._
    fields = _visible_fields(turn)
    offered = [Choice(CONFIRM, _("Submit"))]
    offered += [
        Choice(EDIT + f.id, _("Change: {field}").format(field=_title(turn, f))) for f in fields
    ]
    offered += turn.nav()
    if turn.nav_intent(offered) == BACK:
        go_back(turn)
        return
    picked = turn.picked(offered)
    if picked == CONFIRM:
        submit(turn)
    elif picked and picked.startswith(EDIT):
        field_id = picked.removeprefix(EDIT)
        steps = form_steps(turn.profile, turn.state.answers)
        first = next((s for s in steps if s.field.id == field_id), None)
        if first is None:
            show_summary(turn)
            return
        turn.go("edit")
        _enter(turn, first)
    elif turn.incoming.kind == "choice":
        show_summary(turn, _stale(turn))  # a button of an earlier question (D15)
    else:
        show_summary(turn, _("Please press Submit, or choose what to change."))


def final_answers(turn: Turn) -> dict[str, Any]:
    """The normalised answers of a finished draft, as SubmitComplaint carries them."""
    answers = turn.state.answers
    final: dict[str, Any] = dict.fromkeys(ANSWER_KEYS)
    for step in form_steps(turn.profile, answers):
        for key in step.keys:
            final[key] = answers.get(key)
    allowed = bool(getattr(turn.profile, "anonymous_allowed", False))
    final["anonymous"] = allowed and answers.get("anonymous") is True
    if final["anonymous"]:
        final["name"] = final["phone"] = None
    final["photos"] = list(final.get("photos") or [])
    final["deep_link"] = answers.get("deep_link")
    final["screening"] = answers.get("screening")  # "staff": staff screen it (D2)
    return final


def submit(turn: Turn) -> None:
    """Confirmed: the shell files it and renders the number (see `render_submitted`)."""
    turn.commands.append(SubmitComplaint(answers=final_answers(turn), language=turn.lang))
    turn.reset()
