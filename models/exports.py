"""Exports of the desk's case list: rows masked as on screen, read in chunks, audited.

    async for row in export_rows(staff, flt, now=..., calendar=..., tz=..., audit=record):
        ...  # an ExportRow: the values, identity already masked for `staff`

Which cases: `models.caselist.iter_cases` (the list's own filters and scope). What of each is
shown: `models.confidentiality` through `models.notifications.relation_for` — the card's rule,
so a complaint about the viewer never shows them who complained. Every export is one
`DeskExport` row: who, when, the filters, how many rows and how many with an identity shown;
it is written before the first row leaves and completed after the last.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from tortoise import Tortoise

from config.profiles import Profile
from models.caselist import CaseFilter, iter_cases
from models.confidentiality import Field, can_see, mask_complaint, unmasked_identity
from models.entities import Complaint, Department, DeskExport, Staff
from models.notifications import relation_for
from models.workflow import Role
from scheduler.calendar import WorkingCalendar

COLUMNS = (
    "number",
    "submitted_at",
    "channel",
    "category",
    "state",
    "department",
    "handler",
    "target",
    "complainant_name",
    "complainant_phone",
    "place",
    "facts",
    "next_due_stage",
    "next_due_at",
    "resolved_at",
    "closed_at",
)
# R26: where the profile asks for the recall decision, the export carries it and its reason.
RECALL_COLUMNS = ("recall_decision", "recall_reason")


def columns_for(profile: Profile) -> tuple[str, ...]:
    """The export's columns under `profile`."""
    if profile.resolution.requires_recall_decision:
        return (*COLUMNS, *RECALL_COLUMNS)
    return COLUMNS


@dataclass(frozen=True)
class _CaseView:
    """What relation_for reads of a complaint, from an export row (no model instance)."""

    id: int
    target_staff_id: int | None
    target_department_id: int | None
    target_kind: str | None
    target_text: str | None
    handler_id: int | None
    lead_department_id: int | None


async def _co_departments(ids: list[int]) -> dict[int, set[int]]:
    conn = Tortoise.get_connection("default")
    postgres = conn.capabilities.dialect == "postgres"
    marks = ", ".join(f"${i + 1}" if postgres else "?" for i in range(len(ids)))
    rows = await conn.execute_query_dict(
        "SELECT complaint_id, department_id FROM complaint_co_department "
        f"WHERE complaint_id IN ({marks})",
        ids,
    )
    found: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        found[int(row["complaint_id"])].add(int(row["department_id"]))
    return found


def mask_row(
    record: Mapping[str, Any],
    staff: Staff,
    co_ids: set[int],
    own_department: str | None,
    departments: Mapping[int, str],
    staff_names: Mapping[int, str],
) -> tuple[dict[str, Any], bool]:
    """One export row as `staff` may see it, and whether it shows the complainant's identity."""
    view = _CaseView(
        int(record["id"]),
        record["target_staff_id"],
        record["target_department_id"],
        record["target_kind"],
        record["target_text"],
        record["handler_id"],
        record["lead_department_id"],
    )
    relation = relation_for(staff, cast(Complaint, view), co_ids, own_department)
    role = Role(staff.role)
    policy = {
        Field.COMPLAINANT_NAME: record["contact_name"],
        Field.COMPLAINANT_PHONE: record["contact_phone"],
        Field.FACTS: record["facts"],
    }
    masked = mask_complaint(policy, role, relation)
    details = can_see(Field.FACTS, role, relation)
    lead, handler = record["lead_department_id"], record["handler_id"]
    row = {
        "number": record["number"],
        "submitted_at": record["submitted_at"],
        "channel": record["channel"],
        "category": record["category"],
        "state": record["state"],
        "department": departments.get(lead) if lead else None,
        "handler": staff_names.get(handler) if handler else None,
        "target": record["target_text"],
        "complainant_name": masked[Field.COMPLAINANT_NAME],
        "complainant_phone": masked[Field.COMPLAINANT_PHONE],
        "place": record["place_text"] if details or not record["place_text"] else "***",
        "facts": masked[Field.FACTS],
        "next_due_stage": record["next_due_stage"],
        "next_due_at": record["next_due_at"],
        "resolved_at": record["resolved_at"],
        "closed_at": record["closed_at"],
        # Stored as 0/1 by SQLite: read as a yes/no, None while not recorded.
        "recall_decision": None
        if record.get("recall_decision") is None
        else bool(record["recall_decision"]),
        "recall_reason": record.get("recall_reason")
        if details or not record.get("recall_reason")
        else "***",
    }
    return row, bool(unmasked_identity(policy, role, relation))


async def start_export(
    staff: Staff, kind: str, filters: Mapping[str, Any], now: datetime
) -> DeskExport:
    """The audit row, written before anything leaves."""
    return await DeskExport.create(
        staff=staff, kind=kind, filters=dict(filters), rows=0, created_at=now
    )


async def export_rows(
    staff: Staff,
    flt: CaseFilter,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    tz: ZoneInfo,
    audit: DeskExport,
    chunk: int = 1000,
) -> AsyncIterator[list[dict[str, Any]]]:
    """The export's rows in chunks, masked for `staff`; `audit` is completed at the end (and
    keeps the count so far, finished=False, when the download breaks off)."""
    departments = dict(await Department.all().values_list("id", "name"))
    staff_names = dict(await Staff.all().values_list("id", "name"))
    own = departments.get(staff.department_id) if staff.department_id else None  # type: ignore[attr-defined]
    try:
        async for records in iter_cases(staff, flt, now=now, calendar=calendar, tz=tz, chunk=chunk):
            co = await _co_departments([int(r["id"]) for r in records])
            rows = []
            for record in records:
                row, shown = mask_row(
                    record, staff, co.get(int(record["id"]), set()), own, departments, staff_names
                )
                rows.append(row)
                audit.identity_rows += shown
            audit.rows += len(rows)
            yield rows
        audit.finished = True
    finally:
        await audit.save(update_fields=["rows", "identity_rows", "finished"])
