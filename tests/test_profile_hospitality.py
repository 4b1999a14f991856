"""hospitality (R31 car dealer, R33 hotel) walked on the injectable clock: a key customer's or a
major complaint goes to the general manager at once; staff may raise the severity while the
case is open; the follow-up within 3 working days of the handling."""

from __future__ import annotations

from models.workflow import Action
from tests.profile_walk import (  # noqa: F401 (alarm_context: autouse fixture)
    MONDAY,
    Walk,
    alarm_context,
    assert_ships,
    due,
    end_of,
    local,
    texts_to,
)


def test_ships_with_raisable_severity() -> None:
    profile = assert_ships("hospitality")
    assert profile.severity_rules.raisable
    assert profile.category("key_customer").default_severity == "major"


async def test_a_key_customer_goes_to_the_general_manager_at_once(db_url: str) -> None:
    walk = await Walk.of("hospitality")
    complaint = await walk.file(MONDAY, "key_customer")
    assert complaint.severity == "major"  # 重要客人的投诉，要立即上报总经理
    assert due(complaint, "manager_notice") == MONDAY
    sent = await walk.sweep(MONDAY)
    assert sent["supervisor"] == ["manager-notice"] and sent["centre_head"] == ["manager-notice"]


async def test_raised_to_major_while_open_then_followed_up_in_three_days(db_url: str) -> None:
    walk = await Walk.of("hospitality")
    complaint = await walk.handle(await walk.file(MONDAY, "room_product"), MONDAY)
    assert complaint.severity != "major"
    assert due(complaint, "resolution") == end_of("2026-11-03")  # ours: 1 WD
    raised = local("2026-11-02T14:00")
    complaint = await walk.act(complaint, Action.SET_SEVERITY, "handler", raised, severity="major")
    assert due(complaint, "manager_notice") == raised
    assert (await walk.sweep(raised))["supervisor"] == ["manager-notice"]
    complaint = await walk.reply(complaint, local("2026-11-03T10:00"))
    assert due(complaint, "revisit") == end_of("2026-11-06")  # 處理后3個工作日內
    assert await walk.sweep(end_of("2026-11-04")) == {"chat-u1": ["survey"]}
    outcome = await walk.survey(complaint, 9, 9, local("2026-11-05T10:00"))
    assert outcome.status == "closed"
