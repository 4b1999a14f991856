"""Counts of the complaints a staff member may see, by state, category and department.

The API's statistics endpoint reads `complaint_counts` only, so the fuller statistics module
(dashboard figures) can take its place behind the same function. The scope is the case list's
(models.notifications.case_scope): supervisors and admins count everything, department heads
and handlers their departments' and their own cases, intake clerks the intake desk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.functions import Count

from models.entities import Complaint, Staff
from models.notifications import case_scope, scope_q
from models.workflow import OPEN_STATES, State


@dataclass(frozen=True)
class ComplaintCounts:
    total: int
    open: int
    by_state: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    by_department: dict[str, int] = field(default_factory=dict)  # lead department id, "none"


async def complaint_counts(
    staff: Staff,
    *,
    tz: ZoneInfo,
    submitted_from: date | None = None,
    submitted_to: date | None = None,
) -> ComplaintCounts:
    """Counts of `staff`'s cases submitted in the period (local days, inclusive)."""
    query = Complaint.exclude(state=str(State.DRAFT))
    scope = scope_q(case_scope(staff)) if staff.active else None
    if not staff.active:
        query = query.filter(id__in=[])
    elif scope is not None:
        query = query.filter(scope)  # may join co-departments: count distinct ids
    if submitted_from is not None:
        query = query.filter(submitted_at__gte=datetime.combine(submitted_from, time.min, tz))
    if submitted_to is not None:
        end = datetime.combine(submitted_to + timedelta(days=1), time.min, tz)
        query = query.filter(submitted_at__lt=end)

    async def grouped(column: str) -> dict[str, int]:
        rows: list[dict[str, Any]] = (
            await query.annotate(n=Count("id", distinct=True)).group_by(column).values(column, "n")
        )
        return {
            str(r[column]) if r[column] is not None else "none": int(r["n"])
            for r in sorted(rows, key=lambda r: str(r[column]))
        }

    by_state = await grouped("state")
    open_states = {str(s) for s in OPEN_STATES}
    return ComplaintCounts(
        total=sum(by_state.values()),
        open=sum(n for s, n in by_state.items() if s in open_states),
        by_state=by_state,
        by_category=await grouped("category"),
        by_department=await grouped("lead_department_id"),
    )
