"""Retention: finished complaints older than the profile's retention lose their personal data.

A complaint closed, refused or withdrawn more than `profile.retention_years` ago is archived
(`act(ARCHIVE)` as the system, so the event log records it and which fields were cleared) and
anonymised: contact details, free texts, place and coordinates, attachments (rows and files),
survey comments, the texts of its sent messages and of its event payloads are removed. What
statistics need stays: number, category, severity, departments, handler, states, instants,
deadlines and survey scores. A complainant left with no un-anonymised complaint loses their
name, phone and chat identity too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from bot.attachments import discard_attachments, remove_stored
from config.profiles import Profile
from models.actions import Actor, Clock, act
from models.alarms import AlarmContext, alarm_context
from models.entities import (
    Attachment,
    Complainant,
    Complaint,
    Event,
    OutboxMessage,
    SurveyResponse,
)
from models.workflow import Action, Role, State

log = logging.getLogger(__name__)

FINISHED_STATES = (State.CLOSED, State.REFUSED, State.WITHDRAWN, State.ARCHIVED)
# Complaint columns holding personal data or free text that may contain it.
PERSONAL_FIELDS: dict[str, Any] = {
    "contact_name": None,
    "contact_phone": None,
    "target_text": None,
    "place_text": None,
    "latitude": None,
    "longitude": None,
    "facts": "",
    "request_text": None,
    "witnesses": None,
    "reply_text": None,
    "extension_pending": None,
}
# Event payload keys that are statistics, not text: everything else is dropped.
KEPT_EVENT_KEYS = frozenset(
    {
        "effects",
        "stage",
        "due",
        "level",
        "survey",
        "result_score",
        "attitude_score",
        "department_id",
        "handler_id",
        "category",
        "severity",
        "amount",
        "unit",
        "channel",
        "anonymised",
    }
)


def retention_cutoff(now: datetime, years: int, tz: ZoneInfo) -> datetime:
    """The instant `years` calendar years before `now` (29 Feb counts back to 28 Feb)."""
    local = now.astimezone(tz)
    try:
        earlier = local.replace(year=local.year - years)
    except ValueError:
        earlier = local.replace(year=local.year - years, day=28)
    return earlier.astimezone(UTC)


def scrub_payload(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k in KEPT_EVENT_KEYS}


@dataclass
class RetentionReport:
    anonymised: list[str] = field(default_factory=list)
    complainants: int = 0
    files_removed: int = 0


async def finished_at(complaint: Complaint, conn: BaseDBAsyncClient | None = None) -> datetime:
    """When handling ended: closed_at, else the last state change (refusal, withdrawal)."""
    if complaint.closed_at is not None:
        return complaint.closed_at
    last = (
        await Event.filter(complaint_id=complaint.id)
        .exclude(from_state=None)
        .using_db(conn)
        .order_by("-id")
        .first()
    )
    return last.created_at if last is not None else complaint.updated_at


async def _anonymise(
    complaint: Complaint, conn: BaseDBAsyncClient, report: RetentionReport
) -> list[str]:
    """Clear the complaint's personal data; returns stored files to remove once committed."""
    for name, value in PERSONAL_FIELDS.items():
        setattr(complaint, name, value)
    person_id = complaint.complainant_id  # type: ignore[attr-defined]
    complaint.complainant_id = None  # type: ignore[attr-defined]
    attachments = await Attachment.filter(complaint_id=complaint.id).using_db(conn)
    # Bytes in the database go in this transaction; other stores' after the commit.
    files = await discard_attachments(attachments, conn)
    await SurveyResponse.filter(complaint_id=complaint.id).using_db(conn).update(comment=None)
    await OutboxMessage.filter(complaint_id=complaint.id).using_db(conn).delete()
    for event in await Event.filter(complaint_id=complaint.id).using_db(conn):
        cleaned = scrub_payload(event.payload or {})
        if cleaned != event.payload:
            event.payload = cleaned
            await event.save(using_db=conn, update_fields=["payload"])
    if person_id is not None:
        remaining = (
            await Complaint.filter(complainant_id=person_id, anonymised_at__isnull=True)
            .exclude(id=complaint.id)
            .using_db(conn)
            .exists()
        )
        if not remaining:
            await (
                Complainant.filter(id=person_id)
                .using_db(conn)
                .update(
                    name=None,
                    phone=None,
                    chat_id=None,
                    external_id=f"anonymised-{person_id}",
                    unsubscribed=True,
                )
            )
            report.complainants += 1
    return files


async def anonymise_expired(
    now: datetime, profile: Profile, *, context: AlarmContext | None = None
) -> RetentionReport:
    """Archive and anonymise this profile's finished complaints past their retention."""
    context = context or alarm_context()
    cutoff = retention_cutoff(now, profile.retention_years, context.tz)
    report = RetentionReport()
    # Filed before the cutoff is necessary for finished before it: a cheap first filter.
    candidates = await Complaint.filter(
        Q(submitted_at__lte=cutoff) | Q(submitted_at__isnull=True),
        profile=profile.id,
        state__in=list(FINISHED_STATES),
        anonymised_at__isnull=True,
    ).values_list("id", flat=True)
    for complaint_id in candidates:
        files: list[str] = []
        async with in_transaction() as conn:
            query = Complaint.filter(id=complaint_id).using_db(conn)
            if conn.capabilities.dialect == "postgres":
                query = query.select_for_update()
            complaint = await query.first()
            if complaint is None or complaint.anonymised_at is not None:
                continue
            if await finished_at(complaint, conn) > cutoff:
                continue
            files = await _anonymise(complaint, conn, report)
            complaint.anonymised_at = now
            await complaint.save(using_db=conn)
            if State(complaint.state) != State.ARCHIVED:
                await act(
                    complaint.id,
                    Action.ARCHIVE,
                    Actor(Role.SYSTEM),
                    profile=profile,
                    clock=Clock(context.calendar, context.tz, now),
                    payload={
                        "anonymised": sorted(PERSONAL_FIELDS),
                        "retention_years": profile.retention_years,
                    },
                    conn=conn,
                )
            else:  # archived earlier by an admin: no state change, so the log is the record
                log.info("complaint %s anonymised (already archived)", complaint.number)
            report.anonymised.append(complaint.number)
        # After the commit: a rolled-back anonymisation must not have lost the files.
        report.files_removed += await remove_stored(files)
    return report
