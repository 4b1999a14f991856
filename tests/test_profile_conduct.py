"""conduct (R32, 某财政局作风投诉处理办法) walked on the injectable clock: accepted within 1
working day and handled within 10; what is outside the scope explained with where to turn
(a staff refusal with guidance); anonymous complaints allowed; the complaints against each staff
member counted per calendar year with the regulation's consequences — reported, not enforced."""

from __future__ import annotations

from config.profiles import load_profile
from models.conduct import conduct_lines, conduct_report
from models.entities import Complaint, Staff
from models.workflow import Action, Role
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
from tests.scheduler_support import SHANGHAI


def test_ships_and_allows_anonymous_complaints() -> None:
    assert assert_ships("conduct").anonymous_allowed  # 提倡投诉人署真实姓名


async def test_accepted_in_a_day_handled_in_ten(db_url: str) -> None:
    walk = await Walk.of("conduct")
    complaint = await walk.file(MONDAY, "delay")
    assert due(complaint, "acceptance") == end_of("2026-11-03")
    assert await walk.sweep(end_of("2026-11-03")) == {
        "clerk": ["overdue"],
        "supervisor": ["escalate"],
    }
    complaint = await walk.handle(complaint, local("2026-11-04T09:00"), severity="ordinary")
    assert due(complaint, "resolution") == end_of("2026-11-18")
    assert "2026年11月18日 23:59" in (await texts_to("chat-u1"))[0]


async def test_outside_the_scope_is_explained_with_where_to_turn(db_url: str) -> None:
    walk = await Walk.of("conduct")
    complaint = await walk.file(MONDAY, "other")
    complaint = await walk.act(
        complaint,
        Action.REFUSE,
        "clerk",
        MONDAY,
        reason="属于政策意见，不属作风投诉",
        guidance="请向市财政局政策法规科反映",
    )
    assert complaint.state == "refused"
    told = (await texts_to("chat-u1"))[-1]
    assert "政策法规科" in told  # 耐心说明，并指导其向有处理权的部门反映


def test_consequences_by_count() -> None:
    profile = load_profile("conduct")
    lines = conduct_lines(profile, {(1, "王"): 1, (2, "李"): 3, (3, "张"): 5, (4, "赵"): 2})
    assert [(x.staff_name, x.count, x.consequence) for x in lines] == [
        ("张", 5, "待岗（四次及以上）"),
        ("李", 3, "年度考核不合格"),
        ("赵", 2, "公开批评"),
        ("王", 1, "谈话提醒"),
    ]


async def test_the_year_report_counts_accepted_complaints_per_staff(db_url: str) -> None:
    walk = await Walk.of("conduct")
    target = await Staff.create(name="窗口甲", role=Role.HANDLER, department=walk.org.unit)
    for month, user in ((3, "a"), (6, "b"), (11, "c")):
        complaint = await walk.file(local(f"2026-{month:02d}-10T10:00"), "delay", user=user)
        await Complaint.filter(id=complaint.id).update(target_staff_id=target.id)
        await walk.accept(complaint, local(f"2026-{month:02d}-10T11:00"), severity="ordinary")
    # One more filed but never accepted does not count.
    stray = await walk.file(local("2026-12-01T10:00"), "delay", user="d")
    await Complaint.filter(id=stray.id).update(target_staff_id=target.id)
    [line] = await conduct_report(walk.profile, 2026, SHANGHAI)
    assert (line.staff_name, line.count, line.consequence) == ("窗口甲", 3, "年度考核不合格")
    assert await conduct_report(walk.profile, 2025, SHANGHAI) == []
