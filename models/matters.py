"""Repeat and mass complaints (issue 14, item 4): what is stored, and the reads around it.

- `RepeatLink`: this complaint repeats that earlier one of the same complainant (same person by
  identity or phone, similar text, within the profile's `[repeats] within`). Detected at
  submission (`source = detected`, with the detector's score) or set by staff (`staff`); staff
  may take it away (the row goes, the events keep the record).
- `MatterGroup` + `MatterGroupMember`: many complainants about one matter (same target and
  place, similar text), proposed by the scheduler's `propose_mass_matters`, confirmed or
  dismissed by a supervisor; one decision then answers every member (models.actions.decide_group).

The detector itself is pure (`models.similarity`); here a complaint row becomes its `Matter`.
The workflow actions that change these rows live in models.actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from models.entities import Complaint, Staff
from models.similarity import Matter, complainant_keys
from models.workflow import State


class LinkSource(StrEnum):
    DETECTED = "detected"
    STAFF = "staff"


class GroupStatus(StrEnum):
    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


# A group still in play: a complaint belongs to at most one of these at a time.
LIVE_GROUP_STATUSES = (GroupStatus.PROPOSED, GroupStatus.CONFIRMED)
# The states in which a complaint may join a proposal: its result is still to be decided.
GROUPABLE_STATES: tuple[State, ...] = (
    State.SUBMITTED,
    State.ACCEPTED,
    State.ASSIGNED,
    State.IN_PROGRESS,
    State.WAITING_FOR_COMPLAINANT,
    State.REOPENED,
)


class RepeatLink(Model):
    """`complaint` repeats `repeat_of` (one link per complaint: the earlier it repeats)."""

    id = fields.IntField(primary_key=True)
    complaint: fields.OneToOneRelation[Complaint] = fields.OneToOneField(
        "models.Complaint", related_name="repeat_link", on_delete=fields.CASCADE
    )
    repeat_of: fields.ForeignKeyRelation[Complaint] = fields.ForeignKeyField(
        "models.Complaint", related_name="repeated_by", on_delete=fields.CASCADE
    )
    score = fields.FloatField(null=True)  # the detector's text similarity; None: set by staff
    source = fields.CharEnumField(LinkSource, max_length=16)
    linked_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="repeat_links", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()

    class Meta:
        table = "repeat_link"


class MatterGroup(Model):
    """Complaints of many complainants about one matter, settled by one decision."""

    id = fields.IntField(primary_key=True)
    profile = fields.CharField(max_length=64)
    status = fields.CharEnumField(GroupStatus, max_length=16, default=GroupStatus.PROPOSED)
    proposed_at = fields.DatetimeField()
    # Who confirmed or dismissed the proposal, and when.
    reviewed_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="reviewed_groups", null=True, on_delete=fields.SET_NULL
    )
    reviewed_at = fields.DatetimeField(null=True)
    # The one decision that answered the group (each member's reply), who made it and when.
    decision_text = fields.TextField(null=True)
    decided_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="decided_groups", null=True, on_delete=fields.SET_NULL
    )
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "matter_group"
        indexes = (("status", "profile"),)


class MatterGroupMember(Model):
    id = fields.IntField(primary_key=True)
    group: fields.ForeignKeyRelation[MatterGroup] = fields.ForeignKeyField(
        "models.MatterGroup", related_name="members", on_delete=fields.CASCADE
    )
    complaint: fields.ForeignKeyRelation[Complaint] = fields.ForeignKeyField(
        "models.Complaint", related_name="group_memberships", on_delete=fields.CASCADE
    )
    added_at = fields.DatetimeField()
    # Taken out by a supervisor (not the same matter): kept, so the proposal is not made again.
    removed_at = fields.DatetimeField(null=True)
    removed_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="removed_members", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "matter_group_member"
        unique_together = (("group", "complaint"),)


# The columns a Matter is made of (a query may read these alone: `matter_of_row`).
MATTER_COLUMNS = (
    "id",
    "submitted_at",
    "complainant_id",
    "contact_phone",
    "anonymous",
    "profile",
    "category",
    "target_text",
    "place_text",
    "facts",
    "request_text",
)


def matter_of(complaint: Complaint, person_phone: str | None = None) -> Matter:
    """What the detector sees of `complaint`. An anonymous complaint has no complainant keys:
    nobody is to be recognised by it."""
    return matter_of_row({name: getattr(complaint, name) for name in MATTER_COLUMNS}, person_phone)


def matter_of_row(row: Mapping[str, Any], person_phone: str | None = None) -> Matter:
    """`matter_of` for a row read as values (MATTER_COLUMNS), without building the model."""
    keys: list[str] = []
    if not row["anonymous"]:
        keys = complainant_keys(row["complainant_id"], row["contact_phone"] or person_phone)
    text = row["facts"] or ""
    if row["request_text"]:
        text = f"{text} {row['request_text']}"
    assert row["submitted_at"] is not None, "only a submitted complaint is a matter"
    return Matter(
        id=row["id"],
        filed_at=row["submitted_at"],
        complainant_key=keys[0] if keys else None,
        profile=row["profile"],
        category=row["category"],
        target=row["target_text"] or "",
        place=row["place_text"] or "",
        text=text,
        more_keys=tuple(keys[1:]),
    )


@dataclass(frozen=True)
class RepeatView:
    """The earlier complaint this one repeats, as a card, list or API shows it."""

    complaint_id: int
    number: str
    source: str
    score: float | None


@dataclass(frozen=True)
class GroupView:
    id: int
    status: str
    members: tuple[tuple[int, str, str], ...]  # (id, number, state) of the current members
    decided_at: datetime | None
    decision_text: str | None


async def repeat_of(complaint_id: int, conn: BaseDBAsyncClient | None = None) -> RepeatView | None:
    link = (
        await RepeatLink.filter(complaint_id=complaint_id)
        .using_db(conn)
        .prefetch_related("repeat_of")
        .first()
    )
    if link is None:
        return None
    return RepeatView(link.repeat_of.id, link.repeat_of.number, str(link.source), link.score)


async def live_group_of(
    complaint_id: int, conn: BaseDBAsyncClient | None = None
) -> MatterGroup | None:
    """The proposed or confirmed group `complaint_id` is a member of, if any."""
    membership = (
        await MatterGroupMember.filter(
            complaint_id=complaint_id,
            removed_at__isnull=True,
            group__status__in=LIVE_GROUP_STATUSES,
        )
        .using_db(conn)
        .prefetch_related("group")
        .first()
    )
    return membership.group if membership is not None else None


async def group_view(group: MatterGroup, conn: BaseDBAsyncClient | None = None) -> GroupView:
    rows = (
        await MatterGroupMember.filter(group_id=group.id, removed_at__isnull=True)
        .using_db(conn)
        .order_by("complaint_id")
        .values_list("complaint_id", "complaint__number", "complaint__state")
    )
    return GroupView(
        group.id,
        str(group.status),
        tuple((int(i), str(n), str(s)) for i, n, s in rows),
        group.decided_at,
        group.decision_text,
    )


async def group_of(complaint_id: int, conn: BaseDBAsyncClient | None = None) -> GroupView | None:
    group = await live_group_of(complaint_id, conn)
    return await group_view(group, conn) if group is not None else None


async def marks_for(
    complaint_ids: list[int], conn: BaseDBAsyncClient | None = None
) -> tuple[dict[int, str], dict[int, tuple[int, str]]]:
    """For a page of the case list: {id: number it repeats}, {id: (group id, group status)}."""
    if not complaint_ids:
        return {}, {}
    repeats = {
        int(cid): str(number)
        for cid, number in await RepeatLink.filter(complaint_id__in=complaint_ids)
        .using_db(conn)
        .values_list("complaint_id", "repeat_of__number")
    }
    groups = {
        int(cid): (int(gid), str(status))
        for cid, gid, status in await MatterGroupMember.filter(
            complaint_id__in=complaint_ids,
            removed_at__isnull=True,
            group__status__in=LIVE_GROUP_STATUSES,
        )
        .using_db(conn)
        .values_list("complaint_id", "group_id", "group__status")
    }
    return repeats, groups
