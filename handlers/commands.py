"""Domain commands the dialog engine asks the shell to carry out.

The engine is pure: it never touches the database. It returns these commands; the shell executes
them in the same transaction as the new dialog state and then renders the outcome with the
`render_*` functions of `handlers.dialog`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SubmitComplaint:
    """File a new complaint (state submitted).

    `answers` holds normalised values: category, subcategory, target_kind, target_text,
    incident_time (UTC ISO), incident_time_precision ("minute" | "day"), place_text, latitude,
    longitude, facts, request_type, request_text, witnesses, name, phone (E.164-like), photos
    (list of {file_id, file_name, mime_type, size}), anonymous (bool), deep_link (the /start
    payload, if any), plus any profile-specific field ids. Skipped optional fields are None.
    """

    answers: dict[str, Any] = field(hash=False)
    language: str


@dataclass(frozen=True, slots=True)
class Supplement:
    """Add material to an open complaint; resumes the clock if it was waiting for material."""

    number: str
    text: str | None
    files: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Withdraw:
    number: str


@dataclass(frozen=True, slots=True)
class Dispute:
    """The complainant contests the result of a replied, revisited or closed complaint."""

    number: str
    reason: str


@dataclass(frozen=True, slots=True)
class SetLanguage:
    """Remember the person's language choice (the dialog state already switched)."""

    lang: str


@dataclass(frozen=True, slots=True)
class LinkComplaint:
    """Follow in this chat a complaint staff recorded for the person (phone, window, letter):
    its number and the phone number it was recorded with (normalised). `tries`: the wrong
    pairs sent before in this attempt."""

    number: str
    phone: str
    tries: int = 0


Command = SubmitComplaint | Supplement | Withdraw | Dispute | SetLanguage | LinkComplaint
