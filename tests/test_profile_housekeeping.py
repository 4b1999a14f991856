"""housekeeping (R12 博思特家政 投诉管理办法, extends first-ask R5) walked on the injectable clock:
whoever takes the complaint answers it (谁受理谁完结), passed on within 1 working day where it is
another department's; 3 working days for an ordinary matter, 15 for a major one; VIP, batch and
media complaints are major and the managers told within 2 hours."""

from __future__ import annotations

from datetime import timedelta

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


def test_ships_on_first_ask() -> None:
    assert assert_ships("housekeeping").extends == "first-ask"


async def test_passed_on_in_a_day_answered_in_three(db_url: str) -> None:
    walk = await Walk.of("housekeeping")
    complaint = await walk.file(MONDAY, "service")
    assert due(complaint, "dispatch") == end_of("2026-11-03")
    complaint = await walk.accept(complaint, MONDAY)
    assert due(complaint, "resolution") == end_of("2026-11-05")
    # Not passed on in time: the first-asked desk's case is overdue (谁受理谁完结: it stays
    # theirs), and the supervisors hear of it.
    sent = await walk.sweep(end_of("2026-11-03"))
    assert sent == {"supervisor": ["escalate"], "clerk": ["overdue"]}
    complaint = await walk.assign(complaint, local("2026-11-04T09:00"))
    assert complaint.deadlines["dispatch"]["done"]
    assert "2026年11月5日 23:59" in (await texts_to("chat-u1"))[0]


async def test_a_media_complaint_is_major_with_fifteen_days(db_url: str) -> None:
    walk = await Walk.of("housekeeping")
    complaint = await walk.file(MONDAY, "media")  # 社会新闻媒体…转办
    assert complaint.severity == "major"
    assert due(complaint, "manager_notice") == MONDAY + timedelta(hours=2)
    complaint = await walk.accept(complaint, MONDAY)
    assert due(complaint, "resolution") == end_of("2026-11-23")  # 15 WD, first-ask's major
    sent = await walk.sweep(MONDAY + timedelta(hours=2))
    assert sent["supervisor"] == ["manager-notice"]
