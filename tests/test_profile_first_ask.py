"""first-ask (R5 首问责任制实施细则, R4 首问负责制): the abstract rules any profile may extend —
walked through a profile that extends it as shipped (gov-centre) and one that takes its limits
unchanged (housekeeping): 3 working days for one's own matter, 1 working day to pass another
department's on (书面交接: the transfer), and 15 working days in all for major or difficult ones."""

from __future__ import annotations

from config.profiles import list_profiles, load_profile
from models.workflow import Action, State
from scheduler.deadlines import Duration
from tests.profile_walk import (  # noqa: F401 (alarm_context: autouse fixture)
    MONDAY,
    Walk,
    alarm_context,
    due,
    end_of,
    local,
    texts_to,
)

WD = "working_days"


def test_abstract_and_its_limits() -> None:
    assert "first-ask" not in list_profiles()
    base = load_profile("first-ask")
    assert base.abstract
    assert base.deadline_for("dispatch") == Duration(1, WD)
    assert base.deadline_for("resolution", complexity="simple") == Duration(3, WD)
    assert base.deadline_for("resolution", complexity="complex") == Duration(15, WD)
    assert base.acceptance.ask_complexity  # staff judge "重大疑难" per case
    heirs = [n for n in list_profiles() if load_profile(n).extends == "first-ask"]
    assert {"gov-centre", "housekeeping"} <= set(heirs)


async def test_the_first_asked_passes_it_on_within_a_day_to_the_responsible_one(
    db_url: str,
) -> None:
    walk = await Walk.of("housekeeping")
    complaint = await walk.file(MONDAY, "business")
    assert due(complaint, "dispatch") == end_of("2026-11-03")
    complaint = await walk.accept(complaint, MONDAY)
    # 流转至相应责任部门: the transfer is the 书面交接; the receiving department dispatches.
    complaint = await walk.act(
        complaint,
        Action.TRANSFER,
        "clerk",
        local("2026-11-03T10:00"),
        department_id=walk.org.unit.id,
    )
    assert complaint.state == State.ACCEPTED
    assert any("科室" in t for t in await texts_to("unit_head"))
    complaint = await walk.assign(complaint, local("2026-11-03T11:00"))
    assert complaint.deadlines["dispatch"]["done"]
    # 收到《记录单》后3个工作日内: 3 WD from the hand-over on the 3rd, not from the acceptance.
    assert due(complaint, "resolution") == end_of("2026-11-06")


async def test_a_major_or_difficult_matter_has_fifteen_working_days_in_all(db_url: str) -> None:
    walk = await Walk.of("housekeeping")
    complaint = await walk.accept(await walk.file(MONDAY, "general"), MONDAY, complexity="complex")
    assert due(complaint, "resolution") == end_of("2026-11-23")
