"""The desk's case list: scope by role, filters, full-text search, keyset paging."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from models.actions import Actor, act, submit_complaint
from models.caselist import ALL, CaseFilter, Cursor, list_cases, search_terms
from models.entities import Channel, Complaint, Event
from models.workflow import Action, Role, State
from scheduler.time_left import due_window, time_left
from tests.desk_support import desk_client, give_password, page, sign_in
from tests.staff_world import ANSWERS, CALENDAR, SHANGHAI, T0, World, clock, make_world


async def _file(world: World, n: int, **answers: object) -> Complaint:
    return await submit_complaint(
        profile=world.profile,
        channel=Channel.TELEGRAM,
        external_id=f"p{n}",
        chat_id=f"p{n}",
        answers={**ANSWERS, **answers},
        clock=clock(n * 0.01),
    )


async def _listed(world: World, staff, flt: CaseFilter | None = None, **kw) -> list[str]:
    flt = flt or CaseFilter()
    page = await list_cases(
        staff, flt, now=kw.pop("now", clock(1).now), calendar=CALENDAR, tz=SHANGHAI, **kw
    )
    return [r.number for r in page.rows]


def test_time_left_counts_working_days_then_the_clock() -> None:
    now = T0  # Monday 10:00
    friday = T0 + timedelta(days=4)
    assert time_left(friday, now, CALENDAR, SHANGHAI).working_days == 4
    soon = time_left(now + timedelta(hours=5, minutes=30), now, CALENDAR, SHANGHAI)
    assert (soon.overdue, soon.working_days, soon.hours, soon.minutes) == (False, None, 5, 30)
    late = time_left(now - timedelta(hours=26), now, CALENDAR, SHANGHAI)
    assert late.overdue and late.hours == 26
    after, until = due_window("next_working_day", now, CALENDAR, SHANGHAI)
    assert after == now and until.astimezone(SHANGHAI).date() == date(2026, 11, 3)
    friday_evening = T0 + timedelta(days=4, hours=8)
    _after, until = due_window("next_working_day", friday_evening, CALENDAR, SHANGHAI)
    assert until.astimezone(SHANGHAI).date() == date(2026, 11, 9)  # over the weekend


def test_search_terms_and_cursor_round_trip() -> None:
    assert search_terms("  3栋2单元  漏水 3栋2单元 ") == ("3栋2单元", "漏水")
    cursor = Cursor(T0, 42)
    assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode(Cursor(None, 7).encode()) == Cursor(None, 7)
    assert Cursor.decode("!!garbage") is None


async def test_scope_filters_and_search(db_url: str) -> None:
    world = await make_world()
    first = await _file(world, 1, place_text="3栋2单元楼道", facts="楼道漏水严重，无人处理。")
    second = await _file(world, 2, facts="窗口排队时间过长。", category="social_insurance")
    third = await _file(world, 3, facts="工作人员态度恶劣。")
    clerk = Actor(Role.INTAKE_CLERK, world.clerk)
    await act(first.id, Action.ACCEPT, clerk, profile=world.profile, clock=clock(0.5))
    await act(
        first.id,
        Action.ASSIGN,
        clerk,
        profile=world.profile,
        clock=clock(0.6),
        payload={"department_id": world.registry.id, "handler_id": world.handler.id},
    )
    everything = {first.number, second.number, third.number}
    assert set(await _listed(world, world.supervisor)) == everything
    # The handler sees the case of his department, the tax head none, the intake desk those
    # not yet with a department (as the chat's /cases).
    assert await _listed(world, world.handler) == [first.number]
    assert await _listed(world, world.tax_head) == []
    assert set(await _listed(world, world.clerk)) == {second.number, third.number}
    sup = world.supervisor
    assert await _listed(world, sup, CaseFilter(text="3栋2单元")) == [first.number]
    assert await _listed(world, sup, CaseFilter(text="漏水")) == [first.number]  # 2 characters
    assert await _listed(world, sup, CaseFilter(text="楼道 严重")) == [first.number]
    assert await _listed(world, sup, CaseFilter(text="楼道 排队")) == []
    assert await _listed(world, sup, CaseFilter(text=second.number)) == [second.number]
    assert await _listed(world, sup, CaseFilter(text="100%_")) == []
    assert await _listed(world, sup, CaseFilter(category="social_insurance")) == [second.number]
    assert await _listed(world, sup, CaseFilter(states=(str(State.ASSIGNED),))) == [first.number]
    assert await _listed(world, sup, CaseFilter(handler_id=world.handler.id)) == [first.number]
    assert await _listed(world, sup, CaseFilter(department_id=world.registry.id)) == [first.number]
    assert await _listed(world, sup, CaseFilter(channel="web")) == []
    assert set(await _listed(world, sup, CaseFilter(channel="telegram"))) == everything
    assert await _listed(world, sup, CaseFilter(provisional=True)) == []
    assert await _listed(world, sup, CaseFilter(unreachable=True)) == []
    assert set(await _listed(world, sup, CaseFilter(submitted_from=date(2026, 11, 2)))) == (
        everything
    )
    assert await _listed(world, sup, CaseFilter(submitted_to=date(2026, 11, 1))) == []
    # A case whose complainant cannot be reached any more is marked and filterable.
    await Event.create(
        complaint=third,
        actor_role=Role.SYSTEM,
        action="delivery_failed",
        payload={"recipient": "complainant", "channel": "telegram", "chat_id": "p3"},
        created_at=clock(0.7).now,
    )
    assert await _listed(world, sup, CaseFilter(unreachable=True)) == [third.number]
    page = await list_cases(sup, CaseFilter(), now=clock(1).now, calendar=CALENDAR, tz=SHANGHAI)
    assert {r.number: r.unreachable for r in page.rows}[third.number] is True
    # Deadlines: the acceptance deadline of the untouched cases is days away.
    assert await _listed(world, sup, CaseFilter(due="overdue")) == []
    later = clock(24 * 30).now
    overdue = await _listed(world, sup, CaseFilter(due="overdue"), now=later)
    assert set(overdue) == everything
    assert set(await _listed(world, sup, CaseFilter(states=ALL))) == everything


async def test_keyset_pages_follow_the_next_deadline_without_gaps(db_url: str) -> None:
    world = await make_world()
    filed = [await _file(world, n) for n in range(7)]
    # Two cases lose their deadline (closed by hand here): they come last, newest first.
    await Complaint.filter(id__in=[filed[1].id, filed[4].id]).update(next_due_at=None)
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = await list_cases(
            world.supervisor,
            CaseFilter(),
            now=clock(1).now,
            calendar=CALENDAR,
            tz=SHANGHAI,
            after=after,
            page_size=2,
        )
        assert page.total == 7
        seen += [r.number for r in page.rows]
        if page.next_cursor is None:
            break
        after = Cursor.decode(page.next_cursor)
    with_due = [c for c in filed if c.id not in (filed[1].id, filed[4].id)]
    with_due.sort(key=lambda c: (c.next_due_at, c.id))
    assert seen == [c.number for c in with_due] + [filed[4].number, filed[1].number]


async def test_the_list_page_shows_rows_marks_and_bad_filters(db_url: str, tmp_path: Path) -> None:
    world = await make_world()
    case = await _file(world, 1, place_text="3栋2单元")
    await Complaint.filter(id=case.id).update(deadline_provisional=True)
    await give_password(world.supervisor, "sun")
    async with desk_client(db_url, tmp_path) as client:
        await sign_in(client, "sun")
        html = await page(client, "/desk/cases")
        assert (case.number in html and "已提交" in html) or "Submitted" in html
        assert "暂定" in html and "个工作日" in html
        html = await page(client, "/desk/cases?q=3栋2单元&state=all")
        assert case.number in html
        html = await page(client, "/desk/cases?q=不存在的内容")
        assert case.number not in html
        html = await page(client, "/desk/cases?from=yesterday&due=soonish", status=400)
        assert "from" in html and "due" in html and case.number in html
        await page(client, "/desk/cases?after=garbage")
