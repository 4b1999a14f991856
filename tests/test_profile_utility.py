"""utility (R27, 95598 電力客戶來信、來訪及投訴處理制度) walked on the injectable clock: the
customer contacted first (第一時間聯系客戶), complaints settled within 3 working days, reports
within 5, a complex case extended once with the customer told, then the closing return visit."""

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


def test_ships_from_r27() -> None:
    profile = assert_ships("utility")
    assert profile.extension is not None and profile.extension.notify_complainant


async def test_contact_first_three_days_for_complaints_five_for_reports(db_url: str) -> None:
    walk = await Walk.of("utility")
    supply = await walk.accept(await walk.file(MONDAY, "supply"), MONDAY)
    assert due(supply, "resolution") == end_of("2026-11-05")  # 3个工作日内查处完毕
    report = await walk.accept(await walk.file(MONDAY, "report", user="u2"), MONDAY)
    assert due(report, "resolution") == end_of("2026-11-09")  # 舉報應在5個工作日內辦結
    supply = await walk.assign(supply, MONDAY + timedelta(minutes=30))
    # ours: "第一時間" as 2 hours from the hand-over to the handler.
    assert due(supply, "first_contact") == MONDAY + timedelta(hours=2, minutes=30)
    missed = await walk.sweep(MONDAY + timedelta(hours=2, minutes=30))
    assert missed == {"unit_head": ["escalate"], "handler": ["overdue"]}
    assert "2026年11月5日 23:59" in (await texts_to("chat-u1"))[0]


async def test_a_complex_case_is_extended_once_and_the_customer_told(db_url: str) -> None:
    walk = await Walk.of("utility")
    complaint = await walk.handle(await walk.file(MONDAY, "billing"), MONDAY)
    complaint = await walk.extend(
        complaint, 5, "需现场核查表计", local("2026-11-04T10:00"), local("2026-11-04T11:00")
    )
    assert due(complaint, "resolution") == end_of("2026-11-12")  # 5 Nov + 5 WD
    told = (await texts_to("chat-u1"))[-1]
    assert "2026年11月12日" in told and "需现场核查表计" in told
    complaint = await walk.reply(complaint, local("2026-11-10T10:00"))
    assert await walk.sweep(end_of("2026-11-11")) == {"chat-u1": ["survey"]}
    outcome = await walk.survey(complaint, 10, 10, local("2026-11-12T10:00"))
    assert outcome.status == "closed"  # 受理、處理、回訪…形成閉環
