"""The gov-window profile walked on the injectable clock (R1, R2, R4; REGIMES.md §2.2):
complexity judged per case, misconduct accepted, R4's extension told with reason and date, and
the 补正 count either resumed (default) or restarted from the next day (R4's own rule)."""

from __future__ import annotations

import pytest

from config.profiles import Counting, load_profile
from models.actions import ActionRefused, Actor, act
from models.alarms import iso as iso_of
from models.entities import Complainant, Complaint, OutboxMessage
from models.outbox import outgoing_from_json
from models.workflow import Action, Role
from tests.profile_walk import Walk, alarm_context  # noqa: F401 (autouse fixture)
from tests.scheduler_support import (
    acknowledge,
    assign,
    clock,
    end_of,
    file,
    local,
    make_org,
)

GOV = load_profile("gov-window")


async def accept_as(org, complaint, at, **payload) -> Complaint:  # type: ignore[no-untyped-def]
    await act(
        complaint.id,
        Action.ACCEPT,
        Actor(Role.INTAKE_CLERK, org.clerk),
        profile=GOV,
        clock=clock(at),
        payload=payload,
    )
    return await Complaint.get(id=complaint.id)


async def test_complexity_is_judged_per_case_at_acceptance(db_url: str) -> None:
    org = await make_org()
    filed = local("2026-10-12T10:00")  # Monday
    simple = await file(GOV, filed)
    assert simple.deadlines["acceptance"]["due"] == iso_of(end_of("2026-10-15"))  # 3 WD, R1
    simple = await accept_as(org, simple, local("2026-10-12T11:00"))
    assert simple.deadlines["resolution"]["due"] == iso_of(end_of("2026-10-15"))  # 3 WD
    # 服务态度 is a simple category, but this case needs investigation: 10 WD (R1 情节复杂).
    complex_case = await file(GOV, filed, user="u2")
    complex_case = await accept_as(
        org, complex_case, local("2026-10-12T11:00"), complexity="complex"
    )
    assert complex_case.complexity == "complex"
    assert complex_case.deadlines["resolution"]["due"] == iso_of(end_of("2026-10-26"))
    # The complainant is told when handling is due and that the result follows.
    rows = await OutboxMessage.filter(chat_id="chat-u2").order_by("id")
    text = outgoing_from_json(rows[-1].payload).text
    assert "办理期限为 2026年10月26日 23:59，办结后3个工作日内将处理结果告知您" in text


def test_misconduct_is_a_category_not_an_exclusion() -> None:
    category = GOV.category("misconduct")
    assert category.complexity == "complex" and category.default_severity == "serious"
    assert all("违纪" not in e.label["zh_CN"] for e in GOV.exclusions)


async def test_the_r4_extension_is_told_with_reason_and_new_date(db_url: str) -> None:
    org = await make_org()
    complaint = await file(GOV, local("2026-10-12T10:00"))
    await accept_as(org, complaint, local("2026-10-12T11:00"))
    await assign(GOV, org, complaint, local("2026-10-12T11:00"))
    await acknowledge(GOV, org, complaint, local("2026-10-12T11:30"))
    await act(
        complaint.id,
        Action.REQUEST_EXTENSION,
        Actor(Role.HANDLER, org.handler),
        profile=GOV,
        clock=clock(local("2026-10-14T10:00")),
        payload={"amount": 5, "reason": "需调取监控录像"},
    )
    await act(
        complaint.id,
        Action.APPROVE_EXTENSION,
        Actor(Role.DEPARTMENT_HEAD, org.unit_head),
        profile=GOV,
        clock=clock(local("2026-10-14T15:00")),
    )
    stored = await Complaint.get(id=complaint.id)
    assert stored.deadlines["resolution"]["due"] == iso_of(end_of("2026-10-22"))  # 15th + 5 WD
    rows = await OutboxMessage.filter(chat_id="chat-u1").order_by("id")
    told = outgoing_from_json(rows[-1].payload).text
    assert "2026年10月22日" in told and "需调取监控录像" in told


async def _waiting_then_supplied(profile, org) -> Complaint:  # type: ignore[no-untyped-def]
    complaint = await file(profile, local("2026-10-12T10:00"))
    await act(
        complaint.id,
        Action.ACCEPT,
        Actor(Role.INTAKE_CLERK, org.clerk),
        profile=profile,
        clock=clock(local("2026-10-12T11:00")),
        payload={"complexity": "complex"},
    )
    await assign(profile, org, complaint, local("2026-10-12T11:00"))
    await acknowledge(profile, org, complaint, local("2026-10-12T11:30"))
    await act(
        complaint.id,
        Action.REQUEST_MATERIAL,
        Actor(Role.HANDLER, org.handler),
        profile=profile,
        clock=clock(local("2026-10-13T09:00")),
        payload={"question": "请补充受理回执。"},
    )
    person = await Complainant.get(external_id="u1")
    await act(
        complaint.id,
        Action.SUPPLEMENT,
        Actor(Role.COMPLAINANT, complainant=person),
        profile=profile,
        clock=clock(local("2026-10-16T15:00")),
        payload={"text": "回执已上传"},
    )
    return await Complaint.get(id=complaint.id)


async def test_supplement_resumes_the_count_by_default(db_url: str) -> None:
    org = await make_org()
    stored = await _waiting_then_supplied(GOV, org)
    # Paused 13th 09:00 – 16th 15:00: the 14th and 15th were wholly paused and are added back
    # to the 10 WD from the 12th (due 26th) → 28th.
    assert stored.deadlines["resolution"]["due"] == iso_of(end_of("2026-10-28"))


async def test_supplement_restarts_the_count_where_the_profile_says_so(db_url: str) -> None:
    org = await make_org()
    restarting = GOV.model_copy(update={"clock": Counting(supplement_restarts=True)})
    stored = await _waiting_then_supplied(restarting, org)
    # R4 "从…补正材料的次日起计算": 10 WD counted afresh from the 16th → 30th.
    assert stored.deadlines["resolution"]["due"] == iso_of(end_of("2026-10-30"))
    assert stored.deadlines["resolution"]["restarted_from"]


async def _disputed(profile, name: str):  # type: ignore[no-untyped-def]
    from models.entities import Complainant
    from tests.profile_walk import Walk

    walk = Walk(profile, await make_org(name))
    monday = local("2026-11-02T10:00")
    complaint = await walk.handle(await walk.file(monday, "service_attitude"), monday)
    complaint = await walk.reply(complaint, local("2026-11-03T10:00"))
    owner = await Complainant.get(id=complaint.complainant_id)  # type: ignore[attr-defined]
    result = await act(
        complaint.id,
        Action.DISPUTE,
        Actor(Role.COMPLAINANT, complainant=owner),
        profile=profile,
        clock=clock(local("2026-11-04T10:00")),
        payload={"reason": "有新的证明材料：当日排队叫号记录"},
    )
    return walk, result


async def test_disputed_result_reinvestigate_reopens_with_a_fresh_limit(db_url: str) -> None:
    """R1 "对处理意见不服并能够提出充分理由的，监督室重新进行调查核实": [reply] disputed_result =
    "reinvestigate" (asked for the grounds) reopens the case with a new handling limit."""
    from handlers.dialog import render_disputed
    from models.workflow import State
    from tests.profile_walk import texts_to

    assert GOV.reply.disputed_result == "reinvestigate"
    _walk, result = await _disputed(GOV, "")
    assert result.complaint.state == State.REOPENED
    assert result.event.payload["reason"].startswith("有新的证明材料")
    assert result.complaint.deadlines["resolution"]["due"] == iso_of(end_of("2026-11-09"))
    assert any("重新" in t for t in await texts_to("handler"))
    assert await texts_to("supervisor")
    [told] = render_disputed(result.complaint.number, "zh_CN")
    assert result.complaint.number in told.text


async def test_disputed_result_supervisor_revisit_goes_to_a_supervisor(db_url: str) -> None:
    """The other value the format offers: the dispute goes to a supervisor revisit (the case
    leaves for supervisor_revisit with the profile's 7 days); the complainant is told when."""
    from handlers.dialog import render_disputed
    from models.notifications import desk_cases
    from models.workflow import State

    profile = GOV.model_copy(
        update={"reply": GOV.reply.model_copy(update={"disputed_result": "supervisor_revisit"})}
    )
    walk, result = await _disputed(profile, "")
    assert result.complaint.state == State.SUPERVISOR_REVISIT
    assert result.extra["supervisor_revisit_due"] == iso_of(end_of("2026-11-11"))
    assert result.complaint.next_due_stage == "supervisor_revisit"
    assert [c.id for c in await desk_cases(walk.org.supervisor)] == [result.complaint.id]
    [told] = render_disputed(result.complaint.number, "zh_CN", supervisor_due="2026年11月11日")
    assert "2026年11月11日" in told.text
    closed = await walk.act(result.complaint, Action.CLOSE, "supervisor", local("2026-11-05T10:00"))
    assert closed.state == State.CLOSED


async def test_a_statement_is_offered_not_required_and_awaited_once_asked(db_url: str) -> None:
    """R4 第七条 陈述权、申辩权 belongs to the accountability decision: a reply needs no statement
    (ours), but once the handler asks the window staff member, the decision waits for it."""
    walk = Walk(GOV, await make_org())
    monday = local("2026-11-02T10:00")
    plain = await walk.handle(await walk.file(monday, "service_attitude"), monday)
    assert (await walk.reply(plain, monday)).state == "replied"  # not required
    asked = await walk.handle(await walk.file(monday, "service_attitude", user="u2"), monday)
    asked = await walk.act(asked, Action.REQUEST_STATEMENT, "handler", monday)
    assert asked.statement["respondent"] == "窗口"  # the target as typed; nobody linked
    with pytest.raises(ActionRefused) as refused:
        await walk.reply(asked, monday)
    assert refused.value.refusal.reason_code == "statement_pending"
    asked = await walk.act(
        asked, Action.RECORD_STATEMENT, "handler", monday, text="当日按规定一次性告知了补正材料。"
    )
    assert asked.statement["on_behalf"] is True  # 代录 by the handler
    assert (await walk.reply(asked, monday)).state == "replied"
