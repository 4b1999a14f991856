"""Writing to the outbox: every message to a person is a row, committed with its cause.

The dispatcher (bot/outbox.py) sends rows later under each platform's limits; a row's
`idempotency_key` is unique, so the same notification can never be queued twice.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from handlers.messages import Choice, Outgoing
from models.entities import Channel, Complaint, OutboxMessage


def outgoing_to_json(message: Outgoing) -> dict[str, Any]:
    data = asdict(message)
    data["choices"] = [asdict(c) for c in message.choices]
    data["attachments"] = list(message.attachments)
    return data


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
