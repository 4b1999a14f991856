"""The intake form on one page, for staff recording a complaint for someone (代录).

The chat asks the profile's `[intake] fields` one step at a time; the desk shows the same steps
as one form (`desk_inputs`) and checks what was typed with the chat's own step validators
(`handlers.intake.accept_answer`: the same parsers, limits and refusal texts), step by step in
the chat's order, so sub-steps (a category's sub-category, a request's text) appear and are
required exactly as in the chat. The profile's exclusions are screened first, and an excluded
matter gets the chat's reason and guidance text for the staff member to pass on.

Pure: no database. The shell stores uploaded photos and passes their file records in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from handlers import intake
from handlers.i18n import N_, pick_label, translator
from handlers.messages import Choice, Incoming
from handlers.turn import DialogContext, DialogState, Turn
from handlers.validators import InvalidInput, validate_text

# How the complaint reached the desk (models.entities.RECORDED_CHANNELS).
CHANNELS: dict[str, str] = {
    "phone": N_("By phone"),
    "visit": N_("In person at the window"),
    "letter": N_("By letter"),
    "email": N_("By e-mail"),
}
SCREENING = "screening"
NOT_EXCLUDED = "none"
ADDRESS_MAX = 300
# Where a reply letter is posted: a letter's address cannot be left out.
ADDRESS_REQUIRED = frozenset({"letter"})


@dataclass(frozen=True)
class DeskInput:
    """One input of the desk form."""

    name: str  # the form field name: the chat step's id
    kind: str  # select | text | textarea | file | checkbox
    label: str
    question: str  # the chat's question for the step
    required: bool
    options: tuple[tuple[str, str], ...] = ()  # (value, label); select only
    groups: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # optgroups (sub-category)
    multiple: bool = False


@dataclass
class DeskFormResult:
    answers: dict[str, Any] = field(default_factory=dict)  # as SubmitComplaint carries them
    errors: dict[str, str] = field(default_factory=dict)  # input name → the refusal
    channel: str | None = None
    excluded: str | None = None  # the exclusion's id, when the matter is out of scope
    out_of_scope: str | None = None  # the chat's text for it: reason and where to go

    @property
    def ok(self) -> bool:
        return not self.errors and self.excluded is None


def _turn(ctx: DialogContext, lang: str, answers: dict[str, Any]) -> Turn:
    state = DialogState(flow="intake", language=lang, answers=answers)
    return Turn(state, Incoming(channel="web", user_id="desk", kind="text"), ctx)


def _plain(choices: Sequence[Choice]) -> tuple[tuple[str, str], ...]:
    return tuple((c.id.removeprefix(intake.OPTION), c.label) for c in choices)


def desk_inputs(ctx: DialogContext, lang: str) -> list[DeskInput]:
    """Every input the profile's form can need, in the chat's order."""
    _ = translator(lang)
    profile = ctx.profile
    inputs: list[DeskInput] = []
    # Every possible sub-step is shown at once: fill the answers that open them.
    probe: dict[str, Any] = {"target_kind": "other", "request_type": "other"}
    turn = _turn(ctx, lang, probe)
    for f in intake.form_fields(profile):
        title = intake.title_of(turn, f)
        for step in intake.field_steps(profile, f, probe):
            question = intake.question_of(turn, step)
            required = step.required
            if step.kind == "category":
                options = _plain(intake.options_of(turn, step))
                inputs.append(DeskInput(step.id, "select", title, question, required, options))
                groups = []
                for category in profile.categories:
                    subs = tuple(
                        (str(s.id), pick_label(s.label, lang)) for s in category.subcategories
                    )
                    if subs:
                        groups.append((pick_label(category.label, lang), subs))
                if groups:
                    inputs.append(
                        DeskInput(
                            f"{step.id}.sub",
                            "select",
                            _("Sub-category"),
                            _("Which of these fits best?"),
                            required,
                            groups=tuple(groups),
                        )
                    )
            elif step.kind in ("target_kind", "request_type", "choice"):
                options = _plain(intake.options_of(turn, step))
                inputs.append(DeskInput(step.id, "select", title, question, required, options))
            elif step.kind == "anonymous":
                inputs.append(DeskInput(step.id, "checkbox", title, question, False))
            elif step.kind == "photos":
                inputs.append(DeskInput(step.id, "file", title, question, required, multiple=True))
            elif step.kind == "request_text":
                inputs.append(DeskInput(step.id, "text", title, question, False))
            else:
                long_text = step.kind == "text" and (f.max_length or 0) > 200
                kind = "textarea" if long_text else "text"
                inputs.append(DeskInput(step.id, kind, title, question, required))
    return inputs


def screening_options(ctx: DialogContext, lang: str) -> tuple[tuple[str, str], ...]:
    """The profile's exclusions, as the chat's screening question lists them."""
    return tuple(
        (str(e.id), pick_label(e.label, lang)) for e in getattr(ctx.profile, "exclusions", [])
    )


def validate_desk_form(
    ctx: DialogContext,
    lang: str,
    form: Mapping[str, str],
    photos: Sequence[dict[str, Any]] = (),
) -> DeskFormResult:
    """Check a posted desk form as the chat checks each answer; see the module docstring.

    `photos`: file records of the uploaded files ({file_id, file_name, mime_type, size}).
    """
    _ = translator(lang)
    result = DeskFormResult()
    channel = (form.get("channel") or "").strip()
    if channel not in CHANNELS:
        result.errors["channel"] = _("Please choose how the complaint was received.")
    else:
        result.channel = channel
    answers: dict[str, Any] = {}
    turn = _turn(ctx, lang, answers)
    screened = (form.get(SCREENING) or "").strip()
    exclusions = {str(e.id): e for e in getattr(ctx.profile, "exclusions", [])}
    if exclusions:
        if screened in exclusions:
            result.excluded = screened
            result.out_of_scope = intake.out_of_scope_text(
                _turn(ctx, lang, {}), exclusions[screened]
            )
            return result
        if screened != NOT_EXCLUDED:
            result.errors[SCREENING] = _(
                "Please answer the screening question: is the matter one of these?"
            )
    _check_steps(turn, form, photos, result)
    address = (form.get("address") or "").strip()
    if address:
        try:
            answers["address"] = validate_text(address, min_length=2, max_length=ADDRESS_MAX)
        except InvalidInput as error:
            result.errors["address"] = intake.invalid_text_message(turn, error)
    elif channel in ADDRESS_REQUIRED:
        result.errors["address"] = _("A letter needs the postal address for the written reply.")
    if not result.errors:
        final = intake.final_answers(turn)
        final["address"] = None if final["anonymous"] else answers.get("address")
        result.answers = final
    return result


def _check_steps(
    turn: Turn,
    form: Mapping[str, str],
    photos: Sequence[dict[str, Any]],
    result: DeskFormResult,
) -> None:
    """Walk the chat's steps in order, answering each from the form (see module docstring)."""
    _ = turn._
    answers = turn.state.answers
    profile = turn.profile
    for _guard in range(200):  # every pass fills one step; a form has far fewer
        steps = intake.form_steps(profile, answers)
        step = next((s for s in steps if any(k not in answers for k in s.keys)), None)
        if step is None:
            return
        refusal = _answer(turn, step, form, photos)
        if refusal is not None:
            result.errors[step.id] = refusal
            for key in step.keys:
                answers.setdefault(key, None)
    raise AssertionError("the form's steps did not converge")


def _answer(
    turn: Turn, step: intake.Step, form: Mapping[str, str], photos: Sequence[dict[str, Any]]
) -> str | None:
    _ = turn._
    answers = turn.state.answers
    if step.kind == "photos":
        count, limit = intake.photo_limits(turn, step)
        if step.required and not photos:
            return _("Please send at least one photo.")
        if len(photos) > count:
            return _(
                "You have already sent {count} photos, the most we accept. Press Done."
            ).format(count=count)
        for photo in photos:
            if (photo.get("size") or 0) > limit:
                mb = 1024 * 1024
                return _(
                    "That file is {size} MB; each photo may be at most {limit} MB. "
                    "Please send a smaller one."
                ).format(
                    size=f"{photo['size'] / mb:.1f}".removesuffix(".0"),
                    limit=f"{limit / mb:.1f}".removesuffix(".0"),
                )
        answers["photos"] = list(photos)
        return None
    if step.kind == "anonymous":
        value = "yes" if (form.get(step.id) or "").strip() in ("on", "yes", "1") else "no"
        turn.incoming = Incoming("web", "desk", "choice", choice=intake.OPTION + value)
        return intake.accept_answer(turn, step)
    raw = (form.get(step.id) or "").strip()
    if not raw:
        if step.required:
            return _("This question cannot be skipped.")
        for key in step.keys:
            answers[key] = None
        return None
    if step.kind in intake.CHOICE_KINDS:
        turn.incoming = Incoming("web", "desk", "choice", choice=intake.OPTION + raw)
    else:
        turn.incoming = Incoming("web", "desk", "text", text=raw)
    return intake.accept_answer(turn, step)
