"""gov-centre (R2, 政务服务中心 投诉处理管理制度; extends first-ask) walked on the injectable
clock: an oral complaint is looked into at once, a written one answered within 2 working days,
a complex or multi-department one within 5; staff misconduct is accepted (scope (6)); a disputed
result is checked again (reinvestigate) — with the messages each person receives."""

from __future__ import annotations

from datetime import timedelta

from handlers.dialog import render_disputed
from models.actions import Actor, act
from models.entities import Complainant
from models.workflow import Action, Role, State
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
from tests.scheduler_support import clock


def test_ships_from_r2_with_its_sources() -> None:
    profile = assert_ships("gov-centre")
    assert profile.reply.written_reply_for_written_complaint  # 书面投诉必须书面答复
    assert profile.reply.disputed_result == "reinvestigate"  # 不服的…重新进行核实
    assert "address" in [f.id for f in profile.intake.fields]  # R3 通讯地址


async def test_oral_at_once_written_in_two_working_days_complex_in_five(db_url: str) -> None:
    walk = await Walk.of("gov-centre")
    simple = await walk.file(MONDAY, "attitude")
    # 口头投诉，应马上进行调查: the acceptance answer is owed at once; first-ask: 1 WD to pass
    # it to the responsible department.
    assert due(simple, "acceptance") == MONDAY
    assert due(simple, "dispatch") == end_of("2026-11-03")
    simple = await walk.accept(simple, MONDAY + timedelta(minutes=30))
    assert due(simple, "resolution") == end_of("2026-11-04")  # 2 WD
    [accepted] = await texts_to("chat-u1")
    assert "已受理" in accepted and "2026年11月4日 23:59" in accepted
    # Staff judge this one complex (two departments): 5 WD.
    complex_case = await walk.file(MONDAY, "attitude", user="u2")
    complex_case = await walk.accept(complex_case, MONDAY, complexity="complex")
    assert due(complex_case, "resolution") == end_of("2026-11-09")
    assert "2026年11月9日 23:59" in (await texts_to("chat-u2"))[0]


async def test_a_missed_answer_reaches_the_handler_then_the_heads(db_url: str) -> None:
    walk = await Walk.of("gov-centre")
    complaint = await walk.handle(await walk.file(MONDAY, "six_openness"), MONDAY)
    assert await walk.sweep(end_of("2026-11-04") - timedelta(hours=2)) == {"handler": ["remind"]}
    assert await walk.sweep(end_of("2026-11-04")) == {
        "unit_head": ["escalate"],
        "handler": ["overdue"],
    }
    assert complaint.number in (await texts_to("unit_head"))[-1]
    # One working day later nobody new has acted: the centre's head, then the supervisors.
    later = await walk.sweep(end_of("2026-11-05"))
    assert later == {"centre_head": ["escalate"]}


async def test_misconduct_of_window_staff_is_accepted_as_major_and_complex(db_url: str) -> None:
    walk = await Walk.of("gov-centre")
    complaint = await walk.file(MONDAY, "misconduct")
    assert complaint.state == State.SUBMITTED and complaint.severity == "major"
    complaint = await walk.accept(complaint, MONDAY)
    assert due(complaint, "resolution") == end_of("2026-11-09")  # complex: 5 WD


async def test_a_disputed_result_is_checked_again(db_url: str) -> None:
    walk = await Walk.of("gov-centre")
    complaint = await walk.handle(await walk.file(MONDAY, "attitude"), MONDAY)
    complaint = await walk.reply(complaint, local("2026-11-03T15:00"))
    owner = await Complainant.get(id=complaint.complainant_id)  # type: ignore[attr-defined]
    disputed = local("2026-11-04T09:00")
    result = await act(
        complaint.id,
        Action.DISPUTE,
        Actor(Role.COMPLAINANT, complainant=owner),
        profile=walk.profile,
        clock=clock(disputed),
        payload={"reason": "窗口仍未解释所需材料"},
    )
    # reinvestigate: reopened, with a fresh 2-WD limit; the handler and supervisors are told.
    assert result.complaint.state == State.REOPENED
    assert "supervisor_revisit_due" not in result.extra
    complaint = await walk.fresh(complaint)
    assert due(complaint, "resolution") == end_of("2026-11-06")
    assert "重新" in (await texts_to("handler"))[-1]
    assert complaint.number in (await texts_to("supervisor"))[-1]
    [told] = render_disputed(complaint.number, "zh_CN")
    assert "重新" in told.text or "再次" in told.text or "looked" in told.text
