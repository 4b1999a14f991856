"""tourism (R22, scenic-area 投诉部) walked on the injectable clock: the 游客投诉记录表 reported
to the complaints manager the next day; handled within 3 working days (ours); escalation
reception → complaints manager → company head; a major case told within the hour."""

from __future__ import annotations

from datetime import timedelta

from tests.profile_walk import (  # noqa: F401 (alarm_context: autouse fixture)
    Walk,
    alarm_context,
    assert_ships,
    due,
    end_of,
    local,
    texts_to,
)

MONDAY = local("2026-11-02T15:00")


def test_ships_from_r22() -> None:
    assert_ships("tourism")


async def test_reported_next_day_handled_in_three_and_escalated_up(db_url: str) -> None:
    walk = await Walk.of("tourism")
    complaint = await walk.file(MONDAY, "tickets")
    assert due(complaint, "acceptance") == end_of("2026-11-03")  # 于次日上报投诉部经理
    # Not reported in time: the reception (intake) hears it is overdue, the supervisors (the
    # complaints department's managers) are escalated to.
    assert await walk.sweep(end_of("2026-11-03")) == {
        "clerk": ["overdue"],
        "supervisor": ["escalate"],
    }
    complaint = await walk.handle(await walk.file(MONDAY, "service", user="u2"), MONDAY)
    assert due(complaint, "resolution") == end_of("2026-11-05")
    sent = await walk.sweep(end_of("2026-11-05"))
    assert sent["handler"] == ["overdue"] and sent["unit_head"] == ["escalate"]
    # 接待人员 → 投诉部经理 → 公司负责人: a working day later, the head above.
    assert "centre_head" in await walk.sweep(end_of("2026-11-06"))


async def test_a_major_complaint_is_told_within_the_hour(db_url: str) -> None:
    walk = await Walk.of("tourism")
    complaint = await walk.accept(await walk.file(MONDAY, "safety"), MONDAY, severity="major")
    assert due(complaint, "manager_notice") == MONDAY + timedelta(hours=1)
    sent = await walk.sweep(MONDAY + timedelta(hours=1))
    assert sent["supervisor"] == ["manager-notice"]
