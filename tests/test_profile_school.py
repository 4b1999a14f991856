"""school (R15, 中心校投诉处理制度) walked on the injectable clock: 15 working days from acceptance
to the decision, across holidays; discipline matters screened out with guidance; a major
complaint brought to the leadership; an unsatisfied survey reopens the case."""

from __future__ import annotations

from datetime import timedelta

from tests.profile_walk import (  # noqa: F401 (alarm_context: autouse fixture)
    MONDAY,
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


def test_ships_from_r15() -> None:
    assert_ships("school")


def test_fifteen_working_days_across_national_day() -> None:
    profile = assert_ships("school")
    # 28 September + 15 WD: 29, 30 Sep, then 9, 10 (调休 Saturday), 12 … 23 October.
    start = local("2026-09-28T10:00")
    assert due_of(profile, "resolution", start, "teaching") == end_of("2026-10-23")


def test_discipline_matters_are_not_this_procedure_and_say_where_to_go() -> None:
    chat = screen(assert_ships("school"), "discipline")
    assert "纪检监察" in chat.said
    # The guidance comes with a way out and a way on (let staff decide); leaving files nothing.
    assert chat.where == ("screening", "screening.exclusion")
    chat.choose("screen:leave")
    assert chat.where == ("idle", None) and chat.commands == []


async def test_decision_in_fifteen_days_and_a_major_case_goes_to_the_leadership(
    db_url: str,
) -> None:
    walk = await Walk.of("school")
    complaint = await walk.handle(await walk.file(MONDAY, "safety"), MONDAY, severity="major")
    assert due(complaint, "resolution") == end_of("2026-11-23")
    assert due(complaint, "manager_notice") == end_of("2026-11-03")  # 班子成员会讨论, ours: 1 WD
    [accepted, passed_on] = await texts_to("chat-u1")
    assert "2026年11月23日 23:59" in accepted and "已交由科室办理" in passed_on
    told = await walk.sweep(end_of("2026-11-03"))
    assert told == {
        "unit_head": ["manager-notice"],
        "centre_head": ["manager-notice"],
        "supervisor": ["manager-notice"],
    }
    assert "重大投诉" in (await texts_to("centre_head"))[0]


async def test_unsatisfied_reopens_for_another_fifteen_days(db_url: str) -> None:
    walk = await Walk.of("school")
    complaint = await walk.handle(await walk.file(MONDAY, "teaching"), MONDAY)
    complaint = await walk.reply(complaint, local("2026-11-05T10:00"))
    assert await walk.sweep(end_of("2026-11-06")) == {"chat-u1": ["survey"]}
    outcome = await walk.survey(complaint, 3, 9, local("2026-11-07T10:00"))  # a Saturday
    assert outcome.status == "reopened"
    complaint = await walk.fresh(complaint)
    # Counted again from the reopening: Monday 9 November is day 1, Friday 27th day 15.
    assert due(complaint, "resolution") == end_of("2026-11-27")
    assert "已重新开启" in (await texts_to("handler"))[-1]
    assert await walk.sweep(end_of("2026-11-27") + timedelta(seconds=1)) == {
        "unit_head": ["escalate"],
        "handler": ["overdue"],
    }
