"""Sent outbox rows are deleted after 30 days by the daily retention job; failed rows stay."""

from __future__ import annotations

from datetime import timedelta

import pytest

from config.profiles import load_profile
from handlers.messages import Outgoing
from models.entities import Channel, Complaint, Event, OutboxMessage, OutboxStatus
from models.outbox import DELIVERY_FAILED, outgoing_to_json, undeliverable_complaints
from models.workflow import Role
from scheduler import runner
from scheduler.jobs import SENT_OUTBOX_RETENTION, prune_sent_outbox
from tests.scheduler_support import CONTEXT, file, local

NOW = local("2026-12-20T03:30")
PROFILE = load_profile("gov-window")


async def queued(
    key: str,
    status: OutboxStatus,
    age: timedelta,
    complaint: Complaint | None = None,
    chat_id: str = "chat-x",
) -> None:
    """A row that became due `age` ago and, when sent, was sent a second later."""
    due = NOW - age
    await OutboxMessage.create(
        idempotency_key=f"t:{key}",
        channel=Channel.TELEGRAM,
        chat_id=chat_id,
        payload=outgoing_to_json(Outgoing(key)),
        status=status,
        attempts=1,
        next_attempt_at=due,
        sent_at=due + timedelta(seconds=1) if status == OutboxStatus.SENT else None,
        complaint=complaint,
    )


async def remaining() -> list[str]:
    keys = await OutboxMessage.filter(idempotency_key__startswith="t:").values_list(
        "idempotency_key", flat=True
    )
    return sorted(str(k).removeprefix("t:") for k in keys)


async def test_sent_rows_older_than_30_days_go_and_failed_ones_stay(db_url: str) -> None:
    assert SENT_OUTBOX_RETENTION == timedelta(days=30)
    case = await file(PROFILE, NOW - timedelta(days=60))
    days = timedelta(days=1)
    await queued("sent-60-days", OutboxStatus.SENT, 60 * days)
    await queued("sent-31-days-case", OutboxStatus.SENT, 31 * days, complaint=case)
    await queued("sent-29-days", OutboxStatus.SENT, 29 * days)
    await queued("sent-yesterday", OutboxStatus.SENT, days, complaint=case)
    await queued("failed-90-days", OutboxStatus.FAILED, 90 * days, complaint=case)
    await queued("pending-40-days", OutboxStatus.PENDING, 40 * days)
    await queued("sending-40-days", OutboxStatus.SENDING, 40 * days)

    assert await prune_sent_outbox(NOW) == 2
    assert await remaining() == [
        "failed-90-days",
        "pending-40-days",
        "sending-40-days",
        "sent-29-days",
        "sent-yesterday",
    ]
    assert await prune_sent_outbox(NOW) == 0  # nothing twice
    assert await prune_sent_outbox(NOW, keep=timedelta(hours=1)) == 2
    assert await remaining() == ["failed-90-days", "pending-40-days", "sending-40-days"]


async def test_a_delivery_that_proves_a_complainant_reachable_is_kept(db_url: str) -> None:
    # A message failed 50 days ago; one sent 40 days ago showed the person reachable again.
    # Deleting that one would mark the complaint unreachable once more, so it stays.
    unreachable = await file(PROFILE, NOW - timedelta(days=60), user="u7")
    plain = await file(PROFILE, NOW - timedelta(days=60), user="u8")
    await Event.create(
        complaint=unreachable,
        actor_role=Role.SYSTEM,
        action=DELIVERY_FAILED,
        payload={"channel": "telegram", "chat_id": "chat-u7", "recipient": "complainant"},
        created_at=NOW - timedelta(days=50),
    )
    await queued("failed-50-days", OutboxStatus.FAILED, timedelta(days=50), unreachable, "chat-u7")
    await queued("sent-40-days", OutboxStatus.SENT, timedelta(days=40), unreachable, "chat-u7")
    await queued("sent-40-days-plain", OutboxStatus.SENT, timedelta(days=40), plain, "chat-u8")
    assert await undeliverable_complaints() == {}

    assert await prune_sent_outbox(NOW) == 1
    assert await remaining() == ["failed-50-days", "sent-40-days"]
    assert await undeliverable_complaints() == {}


async def test_the_daily_retention_job_prunes_the_outbox(db_url: str) -> None:
    await queued("sent-45-days", OutboxStatus.SENT, timedelta(days=45))
    await queued("failed-45-days", OutboxStatus.FAILED, timedelta(days=45))
    done = await runner.daily_retention(lambda: NOW, PROFILE, CONTEXT)()
    assert done["sent_outbox_pruned"] == 1
    assert await remaining() == ["failed-45-days"]


async def test_prune_needs_an_aware_instant() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await prune_sent_outbox(NOW.replace(tzinfo=None))
