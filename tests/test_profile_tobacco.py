"""tobacco (R16 卷烟 客户投诉处理管理制度) walked on the injectable clock: a question that cannot
be answered on the spot is answered within 24 hours; suggestions and complaints get a promised
period (ours: 5 working days)."""

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


def test_ships_from_r16() -> None:
    assert {c.id for c in assert_ships("tobacco").categories} == {
        "question",
        "suggestion",
        "complaint",
    }


async def test_a_question_in_24_hours_a_complaint_in_five_working_days(db_url: str) -> None:
    walk = await Walk.of("tobacco")
    question = await walk.handle(await walk.file(MONDAY, "question"), MONDAY)
    assert due(question, "resolution") == MONDAY + timedelta(hours=24)  # 在24小时答复客户
    complaint = await walk.accept(await walk.file(MONDAY, "complaint", user="u2"), MONDAY)
    assert due(complaint, "resolution") == end_of("2026-11-09")
    assert "2026年11月3日 10:00" in (await texts_to("chat-u1"))[0]
    sent = await walk.sweep(MONDAY + timedelta(hours=24))
    assert sent == {"unit_head": ["escalate"], "handler": ["overdue"]}
