"""internet-reports (R21, ICP 用户举报和投诉处理制度) walked on the injectable clock: reports taken
and handled fast (ours: 8 office hours), those at night or on holidays from the next working
day; an ongoing major security incident handled first — an urgent, major case with the managers
told at once — and one extension where special circumstances call for it."""

from __future__ import annotations

from datetime import timedelta

from models.actions import submit_complaint
from models.entities import Channel
from tests.profile_walk import (  # noqa: F401 (alarm_context: autouse fixture)
    Walk,
    alarm_context,
    assert_ships,
    due,
    due_of,
    end_of,
    local,
    screen,
    texts_to,
)
from tests.scheduler_support import ANSWERS, clock


def test_a_night_report_waits_for_the_next_working_day() -> None:
    profile = assert_ships("internet-reports")
    # Friday 9 October 20:00: counted from Saturday 10 October (a 调休 working day) 09:00.
    friday_night = local("2026-10-09T20:00")
    assert due_of(profile, "resolution", friday_night, "harmful", "ordinary") == local(
        "2026-10-10T17:00"
    )
    # The eve of National Day: from Thursday 8 October, the first working day after it.
    assert due_of(profile, "resolution", local("2026-09-30T19:00"), "harmful", "ordinary") == (
        local("2026-10-08T17:00")
    )


def test_an_ongoing_incident_is_guided_and_goes_on_as_an_urgent_case() -> None:
    chat = screen(assert_ships("internet-reports"), "emergency")
    assert "12377" in chat.said or "110" in chat.said
    assert chat.where == ("intake", "category")
    assert chat.state is not None and chat.state.answers["urgent"] == "emergency"


async def test_an_urgent_incident_is_major_with_the_managers_told_at_once(db_url: str) -> None:
    walk = await Walk.of("internet-reports")
    filed = local("2026-11-02T23:00")  # at night
    complaint = await submit_complaint(
        profile=walk.profile,
        channel=Channel.TELEGRAM,
        external_id="u1",
        chat_id="chat-u1",
        answers={**ANSWERS, "category": "security", "urgent": "emergency"},
        clock=clock(filed),
    )
    assert complaint.severity == "major"
    assert due(complaint, "manager_notice") == filed  # 先处理后登记: at once
    sent = await walk.sweep(filed)
    assert sent["supervisor"] == ["manager-notice"]
    complaint = await walk.accept(complaint, filed + timedelta(minutes=5))
    # 1 office hour, from the next morning's opening.
    assert due(complaint, "resolution") == local("2026-11-03T10:00")


async def test_an_ordinary_report_in_office_hours_and_one_extension(db_url: str) -> None:
    walk = await Walk.of("internet-reports")
    monday = local("2026-11-02T10:00")
    complaint = await walk.handle(await walk.file(monday, "harmful"), monday, severity="ordinary")
    assert due(complaint, "resolution") == local("2026-11-02T18:00")  # 8 office hours (9–18)
    complaint = await walk.extend(
        complaint, 2, "需协调平台取证", local("2026-11-02T15:00"), local("2026-11-02T16:00")
    )
    assert due(complaint, "resolution") == end_of("2026-11-04")  # 可适当延长: 2 WD more
    assert await walk.sweep(end_of("2026-11-04")) == {
        "unit_head": ["escalate"],
        "handler": ["overdue"],
    }
