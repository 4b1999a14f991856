"""A complainant the bot cannot reach any more is marked in staff lists and on the case card."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from handlers.staff import render_card
from models.entities import Event, OutboxMessage, OutboxStatus
from models.notifications import build_card, desk_cases
from models.outbox import DELIVERY_FAILED
from models.workflow import Role
from tests.staff_world import clock, file_complaint, make_world

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_unreachable_complainant_is_marked_until_a_message_gets_through(
    db_url: str,
) -> None:
    world = await make_world()
    complaint = await file_complaint(world)
    other = await file_complaint(world)
    await Event.create(
        complaint=complaint,
        actor_role=Role.SYSTEM,
        action=DELIVERY_FAILED,
        payload={
            "channel": "telegram",
            "chat_id": "42",
            "recipient": "complainant",
            "reason": "Forbidden: bot was blocked by the user",
        },
        created_at=clock(1).now,
    )
    cases = {card.number: card for card in await desk_cases(world.clerk)}
    assert cases[complaint.number].complainant_unreachable
    assert not cases[other.number].complainant_unreachable
    card, _shown = await build_card(complaint, world.clerk, world.profile, None)
    text = render_card(card, "en", SHANGHAI)
    assert "Complainant unreachable on their channel: contact them another way." in text
    zh = render_card(card, "zh_CN", SHANGHAI)
    assert "投诉人在其渠道上无法联系" in zh
    # A later message that reaches the same chat clears the mark.
    await OutboxMessage.create(
        idempotency_key="later",
        channel="telegram",
        chat_id="42",
        payload={"text": "hi"},
        status=OutboxStatus.SENT,
        next_attempt_at=clock(2).now,
        sent_at=clock(2).now,
        complaint=complaint,
    )
    cases = {card.number: card for card in await desk_cases(world.clerk)}
    assert not cases[complaint.number].complainant_unreachable
