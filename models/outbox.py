"""Writing to the outbox: every message to a person is a row, committed with its cause.

The dispatcher (bot/outbox.py) sends rows later under each platform's limits; a row's
`idempotency_key` is unique, so the same notification can never be queued twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from models.entities import Channel, Complaint, Event, OutboxMessage, OutboxStatus
from models.messages import Choice, Outgoing

DELIVERY_FAILED = "delivery_failed"  # Event.action of a message that could not be delivered


def outgoing_to_json(message: Outgoing) -> dict[str, Any]:
    # Field by field: dataclasses.asdict deep-copies, measured 8 % of a dialog step's CPU.
    return {
        "text": message.text,
        "choices": [{"id": c.id, "label": c.label} for c in message.choices],
        "ask": message.ask,
        "remove_keyboard": message.remove_keyboard,
        "attachments": list(message.attachments),
    }


def outgoing_from_json(data: dict[str, Any]) -> Outgoing:
    return Outgoing(
        text=data["text"],
        choices=tuple(Choice(**c) for c in data.get("choices", ())),
        ask=data.get("ask"),
        remove_keyboard=bool(data.get("remove_keyboard", False)),
        attachments=tuple(data.get("attachments", ())),
    )


async def enqueue(
    *,
    channel: Channel | str,
    chat_id: str,
    message: Outgoing,
    idempotency_key: str,
    now: datetime,
    complaint: Complaint | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> OutboxMessage | None:
    """Queue `message` for `chat_id`; returns None when the key was queued before."""
    existing = await OutboxMessage.filter(idempotency_key=idempotency_key).using_db(conn).first()
    if existing is not None:
        return None
    return await OutboxMessage.create(
        idempotency_key=idempotency_key,
        channel=Channel(channel),
        chat_id=chat_id,
        payload=outgoing_to_json(message),
        next_attempt_at=now,
        complaint=complaint,
        using_db=conn,
    )


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """Why a complainant could not be told about their case, for staff lists."""

    complaint_id: int
    channel: Channel
    chat_id: str
    reason: str
    failed_at: datetime


async def undeliverable_complaints(
    complaint_ids: Iterable[int] | None = None,
    *,
    conn: BaseDBAsyncClient | None = None,
) -> dict[int, DeliveryFailure]:
    """Complaints whose complainant is unreachable: the latest message to them failed for good
    and nothing sent to the same chat since got through. Limit to `complaint_ids` (a page of a
    staff list) or, when None, look at all complaints."""
    events = Event.filter(action=DELIVERY_FAILED).using_db(conn).order_by("id")
    if complaint_ids is not None:
        events = events.filter(complaint_id__in=list(complaint_ids))
    latest: dict[int, DeliveryFailure] = {}
    for event in await events:
        payload = event.payload or {}
        if payload.get("recipient") != "complainant":
            continue
        latest[event.complaint_id] = DeliveryFailure(  # type: ignore[attr-defined]
            complaint_id=event.complaint_id,  # type: ignore[attr-defined]
            channel=Channel(payload["channel"]),
            chat_id=str(payload["chat_id"]),
            reason=str(payload.get("reason", "")),
            failed_at=event.created_at,
        )
    if not latest:
        return {}
    delivered_since = (
        await OutboxMessage.filter(complaint_id__in=list(latest), status=OutboxStatus.SENT)
        .using_db(conn)
        .values_list("complaint_id", "channel", "chat_id", "sent_at")
    )
    for complaint_id, channel, chat_id, sent_at in delivered_since:
        failure = latest.get(complaint_id)
        if (
            failure is not None
            and Channel(channel) == failure.channel
            and chat_id == failure.chat_id
            and sent_at is not None
            and sent_at > failure.failed_at
        ):
            del latest[complaint_id]
    return latest
