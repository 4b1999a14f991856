"""enterprise (R8 regional customer service, R11 卓达 工单) walked on the injectable clock: the
investigation starts within 1 working day, the customer is answered within 2; named complaints
only; a customer who never answers the survey is closed after 2 working days (R11)."""

from __future__ import annotations

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


def test_ships_from_r8_and_names_are_required() -> None:
    profile = assert_ships("enterprise")
    assert not profile.anonymous_allowed  # 《客户投诉记录表》 records the customer


async def test_investigation_in_one_day_answer_in_two(db_url: str) -> None:
    walk = await Walk.of("enterprise")
    complaint = await walk.accept(await walk.file(MONDAY, "service"), MONDAY)
    assert due(complaint, "resolution") == end_of("2026-11-04")  # 二个工作日内给予客户满意回复
    complaint = await walk.assign(complaint, MONDAY)
    assert due(complaint, "first_contact") == end_of("2026-11-03")  # 一个工作日内展开调查
    assert complaint.next_due_stage == "first_contact"
    # Nobody started: the handler is told it is overdue (and reminded that the answer is due
    # in a working day), the department head escalated to.
    assert await walk.sweep(end_of("2026-11-03")) == {
        "unit_head": ["escalate"],
        "handler": ["overdue", "remind"],
    }
    assert "2026年11月4日 23:59" in (await texts_to("chat-u1"))[0]


async def test_a_silent_customer_is_closed_after_two_working_days(db_url: str) -> None:
    walk = await Walk.of("enterprise")
    complaint = await walk.handle(await walk.file(MONDAY, "staff"), MONDAY)
    complaint = await walk.reply(complaint, local("2026-11-03T10:00"))
    assert await walk.sweep(end_of("2026-11-04")) == {"chat-u1": ["survey"]}
    assert (await walk.sweep(end_of("2026-11-05")))["chat-u1"] == ["survey-remind"]
    closed = await walk.sweep(end_of("2026-11-06"))
    assert list(closed) == ["chat-u1"]
    complaint = await walk.fresh(complaint)
    assert complaint.state == "closed"
