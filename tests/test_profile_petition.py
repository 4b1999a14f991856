"""petition (R28 阳光农廉网 信访, R29 国税局, R30 劳动保障) walked on the injectable clock: 15 days
to handle and answer, 60 where a result report is asked for, calendar periods that end on a
statutory holiday rolled to the next working day; collective visits as major; complaints about
the handling within 5–10 working days."""

from __future__ import annotations

import pytest

from scheduler.deadlines import Duration
from tests.profile_walk import (  # noqa: F401 (alarm_context: autouse fixture)
    Walk,
    alarm_context,
    assert_ships,
    due,
    due_of,
    end_of,
    local,
    texts_to,
)


def test_ships_with_the_holiday_roll() -> None:
    profile = assert_ships("petition")
    assert profile.clock.roll_to_working_day
    assert profile.deadline_for("resolution", "about_handling") == Duration(10, "working_days")


def test_fifteen_and_sixty_days_roll_past_holidays() -> None:
    profile = assert_ships("petition")
    # 16 September + 15 days = 1 October, National Day: the period ends on 8 October.
    assert due_of(profile, "resolution", local("2026-09-16T10:00"), "petition") == end_of(
        "2026-10-08"
    )
    assert due_of(profile, "resolution", local("2026-11-02T10:00"), "petition") == end_of(
        "2026-11-17"
    )  # not on a holiday: no roll
    # 2 November + 60 days = 1 January 2027, New Year's Day: rolled to Monday 4 January.
    assert due_of(profile, "resolution", local("2026-11-02T10:00"), "result_report") == end_of(
        "2027-01-04"
    )


async def test_a_collective_visit_is_major_and_the_leaders_told(db_url: str) -> None:
    walk = await Walk.of("petition")
    filed = local("2026-11-02T10:00")
    complaint = await walk.file(filed, "collective")
    assert complaint.severity == "major"  # 集體來訪應列為重要案件
    assert due(complaint, "acceptance") == end_of("2026-11-17")  # 15日內給予書面答復
    complaint = await walk.handle(complaint, filed)
    assert due(complaint, "resolution") == end_of("2026-11-17")
    assert due(complaint, "manager_notice") == end_of("2026-11-03")
    sent = await walk.sweep(end_of("2026-11-03"))
    assert sent["unit_head"] == ["manager-notice"] and sent["supervisor"] == ["manager-notice"]
    assert "2026年11月17日 23:59" in (await texts_to("chat-u1"))[0]


@pytest.mark.parametrize(
    ("category", "answered_by"),
    [("about_handling", "2026-11-16"), ("result_report", "2027-01-04")],
)
async def test_handling_complaints_and_result_reports(
    db_url: str, category: str, answered_by: str
) -> None:
    walk = await Walk.of("petition")
    filed = local("2026-11-02T10:00")
    complaint = await walk.handle(await walk.file(filed, category), filed)
    assert due(complaint, "resolution") == end_of(answered_by)
    sent = await walk.sweep(end_of(answered_by))
    assert sent["handler"] == ["overdue"] and sent["unit_head"] == ["escalate"]


def test_profiles_explain_prints_rule_seed_and_key(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["profiles", "explain", "petition"]) == 0
    out = capsys.readouterr().out
    assert "deadlines.resolution = 15 calendar_days" in out
    assert "R28 · 003_dab1bd914f4d2c30.txt · 收到信訪事項后，須在15日內及時辦理" in out
    assert "ours:" in out
