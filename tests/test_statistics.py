"""models.statistics on a seeded world (tests/stats_world.py) — every figure counted by hand.

November 2026, asked at 1 December 09:00. Filed in the period: c1 c2 c3 c4 c7 (c5 was filed in
October, c6 on 1 December, the draft never).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.alarms import set_alarm_context
from models.statistics import (
    Count,
    IdCount,
    MonthPoint,
    Satisfaction,
    StageRate,
    StatsQuery,
    compute_statistics,
    trend_months,
)
from tests.scheduler_support import CALENDAR, CONTEXT, SHANGHAI
from tests.stats_world import END, NOW, PROFILE, START, World, seed


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


async def figures(world: World, staff: object = None, department_id: int | None = None):  # type: ignore[no-untyped-def]
    return await compute_statistics(
        StatsQuery(START, END, now=NOW, department_id=department_id),
        staff=staff,  # type: ignore[arg-type]
        profile=PROFILE,
        calendar=CALENDAR,
        tz=SHANGHAI,
    )


def test_trend_months_are_the_twelve_ending_with_the_period() -> None:
    months = trend_months(END, SHANGHAI)
    assert months[0] == "2025-12" and months[-1] == "2026-11" and len(months) == 12


async def test_everything_counted_by_hand(db_url: str) -> None:
    world = await seed()
    cases = world.cases
    stats = await figures(world)
    assert stats.total == 5
    assert stats.by_state == [
        Count("closed", 1), Count("in_progress", 1), Count("refused", 1),
        Count("revisit", 1), Count("submitted", 1),
    ]  # fmt: skip
    assert stats.by_category == [
        Count("delay", 2),
        Count("favours", 1),
        Count("other", 1),
        Count("rudeness", 1),
    ]
    assert stats.by_channel == [
        Count("telegram", 2),
        Count("phone", 1),
        Count("web", 1),
        Count("wechat", 1),
    ]
    d1, d2 = world.d1, world.d2
    assert stats.by_department == [
        IdCount(None, None, 2),
        IdCount(d1.id, "一科", 2),
        IdCount(d2.id, "二科", 1),
    ]
    # acceptance: c1 c2 c3 c7 done on time, c4 fell due 23 Nov undone; resolution: c1 c3 on
    # time, c5 done a day late, c2 fell due 24 Nov undone. c3's survey reminder is not counted.
    assert stats.stages == [StageRate("acceptance", 5, 4), StageRate("resolution", 4, 2)]
    assert stats.resolution_rate and stats.resolution_rate.rate == 0.5
    assert stats.on_time_rate == 6 / 9
    # Overdue now: c4 (acceptance) and c2 (resolution); not c3, whose survey is answered.
    assert [(o.number, o.stage, o.department) for o in stats.overdue] == [
        (cases["c4"].number, "acceptance", None),
        (cases["c2"].number, "resolution", "一科"),
    ]
    # Resolved in November: c1 (3–4 Nov: 2 WD), c3 (13–18 Nov: 4 WD), c5 (21 Oct–6 Nov: 13 WD).
    assert stats.resolved == 3
    assert stats.average_working_days == 6.3
    assert stats.satisfaction == Satisfaction(None, None, 2, 6.0, 6.0)
    assert stats.no_response == 1
    assert stats.result_bands == [
        Count("satisfied", 1),
        Count("neutral", 0),
        Count("unsatisfied", 1),
    ]
    assert stats.attitude_bands == [
        Count("satisfied", 0),
        Count("neutral", 2),
        Count("unsatisfied", 0),
    ]
    assert stats.satisfaction_by_department == [
        Satisfaction(d1.id, "一科", 1, 3.0, 5.0),
        Satisfaction(d2.id, "二科", 1, 9.0, 7.0),
    ]
    assert stats.satisfaction_by_handler == [
        Satisfaction(world.h1.id, "赵一", 1, 3.0, 5.0),
        Satisfaction(world.h2.id, "钱二", 1, 9.0, 7.0),
    ]
    trend = {m.month: m for m in stats.trend}
    assert trend["2026-10"] == MonthPoint("2026-10", 1, 0)
    assert trend["2026-11"] == MonthPoint("2026-11", 5, 3)
    assert sum(m.filed for m in stats.trend) == 6 and len(stats.trend) == 12
    # c1, c7 (张三's identity) and c2 (the same phone on WeChat); c3, c4 (李四).
    assert [(r.label, r.count, r.numbers) for r in stats.repeat_complainants] == [
        (f"张*（#{world.p1.id}）", 3,
         tuple(sorted([cases["c1"].number, cases["c2"].number, cases["c7"].number]))),
        (f"李*（#{world.p2.id}）", 2, tuple(sorted([cases["c3"].number, cases["c4"].number]))),
    ]  # fmt: skip
    # 2026 about 王五: c1 c3 c5 c6 (c4 is not accepted yet); 赵一's c7 was refused.
    assert [(r.year, r.staff_name, r.count, r.consequence) for r in stats.respondents] == [
        (2026, "王五", 4, "待岗（四次及以上）")
    ]
    assert [c.number for c in stats.complaints] == [
        cases[k].number for k in ("c1", "c2", "c3", "c4", "c7")
    ]


async def test_department_head_sees_own_department_only(db_url: str) -> None:
    world = await seed()
    cases = world.cases
    stats = await figures(world, world.head1)
    # 一科 leads c1 and c2 and co-handles c3; c6 is December's.
    assert stats.total == 3
    assert {c.number for c in stats.complaints} == {cases[k].number for k in ("c1", "c2", "c3")}
    assert [o.number for o in stats.overdue] == [cases["c2"].number]
    assert [(r.staff_name, r.count, r.consequence) for r in stats.respondents] == [
        ("王五", 3, "年度考核不合格")
    ]
    # Not a supervisor: a repeat complainant is a number, not a name.
    assert [(r.label, r.count) for r in stats.repeat_complainants] == [(f"#{world.p1.id}", 2)]
    assert stats.satisfaction.answers == 2


async def test_department_filter(db_url: str) -> None:
    world = await seed()
    stats = await figures(world, world.supervisor, department_id=world.d2.id)
    assert [c.number for c in stats.complaints] == [world.cases["c3"].number]
    assert stats.stages == [StageRate("acceptance", 1, 1), StageRate("resolution", 2, 1)]
    assert stats.overdue == []
    # A handler's department filter cannot reach beyond their scope.
    other = await figures(world, world.h2, department_id=world.d1.id)
    assert [c.number for c in other.complaints] == [world.cases["c3"].number]
