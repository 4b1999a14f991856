"""The respondent's statement before a decision (R13 "被投诉人有…陈述和申辩的权利", R4 陈述权、
申辩权): its stored form on `Complaint.statement` and the rule book's facts, pure.

    {"status": "requested" | "recorded" | "waived",
     "respondent": "王师傅", "respondent_staff_id": 7 | None,
     "requested_at": ISO, "requested_by": staff id, "start": ISO, "due": ISO,
     "amount": 3, "unit": "working_days", "provisional": bool,
     "text": "…", "recorded_at": ISO, "recorded_by": staff id, "on_behalf": bool,
     "waived_at": ISO}

The respondent is the staff member the complaint is linked to (`target_staff`), who answers
from their own chat or desk; otherwise a person named in free text (the driver of a plate, an
operator), whose statement the handler records on their behalf (代录). The period is a stage
of its own: the scheduler reminds the respondent before `due` and records the waiver at `due`
(models/alarms.py, scheduler/jobs.py); it is not one of the organisation's deadlines, so it
never escalates and is not the case's `next_due_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from config.profiles import Profile

STATEMENT_STAGE = "statement"
REQUESTED = "requested"
RECORDED = "recorded"
WAIVED = "waived"
MAX_STATEMENT = 4000


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def status_of(complaint: Any) -> str | None:
    entry = getattr(complaint, "statement", None)
    return entry.get("status") if isinstance(entry, dict) else None


def is_open(complaint: Any) -> bool:
    """Asked for, neither recorded nor lapsed."""
    return status_of(complaint) == REQUESTED


def lapsed(complaint: Any, now: datetime) -> bool:
    """Asked for, unanswered, and its period is over (the waiver is still to be recorded)."""
    entry = complaint.statement if is_open(complaint) else None
    return entry is not None and datetime.fromisoformat(entry["due"]) <= now


def respondent_staff_id(complaint: Any) -> int | None:
    entry = getattr(complaint, "statement", None)
    if not isinstance(entry, dict):
        return None
    value = entry.get("respondent_staff_id")
    return int(value) if value is not None else None


@dataclass(frozen=True)
class StatementFacts:
    statement_required: bool
    statement_open: bool
    statement_settled: bool
    actor_is_respondent: bool


def statement_facts(profile: Profile, complaint: Any, staff_id: int | None) -> StatementFacts:
    """What `models.workflow.decide` needs to know of the statement, for this actor."""
    status = status_of(complaint)
    open_ = status == REQUESTED
    return StatementFacts(
        statement_required=profile.statement.required,
        statement_open=open_,
        statement_settled=status in (RECORDED, WAIVED),
        actor_is_respondent=(
            open_ and staff_id is not None and respondent_staff_id(complaint) == staff_id
        ),
    )


def requested(
    *,
    respondent: str,
    respondent_staff: int | None,
    requested_by: int | None,
    now: datetime,
    due: datetime,
    provisional: bool,
    profile: Profile,
) -> dict[str, Any]:
    """The stored form of a new request."""
    spec = profile.statement.due
    return {
        "status": REQUESTED,
        "respondent": respondent,
        "respondent_staff_id": respondent_staff,
        "requested_at": _iso(now),
        "requested_by": requested_by,
        "start": _iso(now),
        "due": _iso(due),
        "amount": spec.amount,
        "unit": spec.unit,
        "provisional": provisional,
    }


def recorded(
    entry: dict[str, Any], text: str, *, by: int | None, on_behalf: bool, now: datetime
) -> dict[str, Any]:
    text = text.strip()
    if not text:
        raise ValueError("the statement text is required")
    if len(text) > MAX_STATEMENT:
        raise ValueError(f"the statement may have at most {MAX_STATEMENT} characters")
    return {
        **entry,
        "status": RECORDED,
        "text": text,
        "recorded_at": _iso(now),
        "recorded_by": by,
        "on_behalf": on_behalf,
    }


def waived(entry: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**entry, "status": WAIVED, "waived_at": _iso(now)}
