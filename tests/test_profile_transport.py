"""transport (R13 道路运输服务质量投诉, R14 公交投诉服务管理制度) walked on the injectable clock:
what is not accepted, with where to go instead; the plate, time, place and facts asked; the
legal-remedy requests R13 lists; oral complaints at once, written ones in 2 working days, complex
or serious ones in 5."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from handlers.staff import render_card, render_refused
from models.actions import ActionRefused, Actor, act
from models.entities import Complaint, Department, Event, Staff
from models.lookup import private_view
from models.notifications import build_card
from models.workflow import Action, Role
from tests.desk_support import (
    MovableNow,
    csrf_in,
    desk_client,
    form_post,
    give_password,
    page,
    sign_in,
)
from tests.profile_walk import (  # noqa: F401 (alarm_context: autouse fixture)
    MONDAY,
    Walk,
    alarm_context,
    assert_ships,
    due,
    end_of,
    local,
    screen,
    texts_to,
)
from tests.scheduler_support import SHANGHAI, clock

HOUR_LATER = MONDAY + timedelta(hours=1)


@pytest.mark.parametrize(
    ("exclusion", "words"),
    [
        ("accident", "122"),  # 交通事故
        ("crime", "110"),  # 治安和刑事案件
        ("force_majeure", "人民法院"),  # 不可抗力
        ("other_authority", "受理机构"),  # 国家法律、法规已经明确规定由其它机构受理
    ],
)
def test_not_accepted_matters_get_their_guidance(exclusion: str, words: str) -> None:
    chat = screen(assert_ships("transport"), exclusion)
    assert words in chat.said
    # The guidance comes with a way out and a way on (let staff decide); leaving files nothing.
    assert chat.where == ("screening", "screening.exclusion")
    chat.choose("screen:leave")
    assert chat.where == ("idle", None) and chat.commands == []


def test_the_form_asks_for_the_vehicle_and_offers_r13_requests() -> None:
    profile = assert_ships("transport")
    target = profile.field("target")
    assert [o.id for o in target.options or []] == ["vehicle", "staff", "department"]
    assert "车牌" in target.prompt["zh_CN"]
    requests = [o.id for o in profile.field("request_type").options or []]
    assert {"stop_harm", "accountability", "compensation"} <= set(requests)
    ids = [f.id for f in profile.intake.fields]
    assert {"incident_time", "place", "facts"} <= set(ids)
    assert all(profile.field(f).required for f in ("target", "incident_time", "place", "facts"))


async def test_at_once_then_two_or_five_working_days(db_url: str) -> None:
    walk = await Walk.of("transport")
    service = await walk.file(MONDAY, "service")
    assert due(service, "acceptance") == MONDAY  # 口头投诉，应立即进行调查
    service = await walk.accept(service, MONDAY)
    assert due(service, "resolution") == end_of("2026-11-04")  # 一般书面投诉 2 WD
    driving = await walk.accept(await walk.file(MONDAY, "safe_driving", user="u2"), MONDAY)
    assert due(driving, "resolution") == end_of("2026-11-09")  # 较为复杂和严重 5 WD
    serious = await walk.file(MONDAY, "vehicle", user="u3")
    serious = await walk.accept(serious, MONDAY, severity="major")
    assert due(serious, "resolution") == end_of("2026-11-09")
    assert "2026年11月9日 23:59" in (await texts_to("chat-u2"))[0]
    await walk.handle(await walk.file(MONDAY, "suggestion", user="u4"), MONDAY)
    sent = await walk.sweep(end_of("2026-11-04"))
    assert sent["unit_head"] == ["escalate"] and sent["handler"] == ["overdue"]


# -- R13 4.3 "被投诉人有就被投诉案件进行陈述和申辩的权利" ------------------------------------------

STATEMENT = "当天乘客拒绝出示乘车卡，我按规定提醒，并未辱骂乘客。"


async def driver_complained_about(walk: Walk) -> tuple[Staff, Complaint]:
    """A complaint about a driver who is on staff (linked by name), taken up on Monday."""
    fleet = await Department.create(code="fleet", name="第一车队")
    driver = await Staff.create(
        name="王建国", role=Role.HANDLER, department=fleet, telegram_chat_id="driver"
    )
    complaint = await walk.file(
        MONDAY, "service", target_kind="staff", target_text="王建国", facts="司机辱骂乘客。"
    )
    assert complaint.target_staff_id == driver.id  # type: ignore[attr-defined]
    return driver, await walk.handle(complaint, MONDAY)


async def test_the_decision_waits_for_the_drivers_statement(db_url: str) -> None:
    walk = await Walk.of("transport")
    driver, complaint = await driver_complained_about(walk)
    with pytest.raises(ActionRefused) as refused:
        await walk.act(complaint, Action.RESOLVE, "handler", HOUR_LATER, reply_text="已批评教育")
    code = refused.value.refusal.reason_code
    assert code == "statement_not_requested"
    told = render_refused(code, complaint.number, complaint.state, "zh_CN").text
    assert "陈述和申辩" in told and "先请其陈述" in told

    complaint = await walk.act(complaint, Action.REQUEST_STATEMENT, "handler", HOUR_LATER)
    assert complaint.statement["respondent"] == "王建国"  # the linked staff member
    assert datetime.fromisoformat(complaint.statement["due"]) == end_of("2026-11-03")  # ours: 1 WD
    # The driver is asked in their chat, with the facts but never who complained.
    [asked] = await texts_to("driver")
    assert "陈述和申辩" in asked and "2026年11月3日 23:59" in asked and "司机辱骂乘客" in asked
    assert "张三" not in asked and "13812345678" not in asked
    with pytest.raises(ActionRefused) as refused:
        await walk.act(complaint, Action.RESOLVE, "handler", HOUR_LATER, reply_text="已批评教育")
    assert refused.value.refusal.reason_code == "statement_pending"

    # The driver answers from their own chat or desk: the rule book knows them as respondent.
    card, _ = await build_card(complaint, driver, walk.profile, None)
    assert card.actions == ("record_statement",)
    await act(
        complaint.id,
        Action.RECORD_STATEMENT,
        Actor(Role.HANDLER, driver),
        profile=walk.profile,
        clock=clock(local("2026-11-03T09:00")),
        payload={"text": STATEMENT},
    )
    complaint = await walk.fresh(complaint)
    assert complaint.statement["status"] == "recorded"
    assert complaint.statement["on_behalf"] is False
    heard = (await texts_to("handler"))[-1]
    assert "陈述已记录" in heard and STATEMENT in heard
    # The handler's chat card shows the statement; the decision may now be made.
    card, _ = await build_card(complaint, walk.staff("handler"), walk.profile, None)
    assert f"被投诉人陈述（王建国）：{STATEMENT}" in render_card(card, "zh_CN", SHANGHAI)
    complaint = await walk.reply(complaint, local("2026-11-03T10:00"))
    assert complaint.state == "replied"
    # The complainant hears the result, never the respondent's statement.
    assert all(STATEMENT not in text for text in await texts_to("chat-u1"))
    private = await private_view(complaint)
    assert STATEMENT not in repr(private)
    assert [h.action for h in private.history if "statement" in h.action] == []


async def test_an_unanswered_statement_lapses_and_the_waiver_is_recorded(db_url: str) -> None:
    walk = await Walk.of("transport")
    complaint = await walk.handle(
        await walk.file(MONDAY, "vehicle", target_kind="vehicle", target_text="闽A12345"), MONDAY
    )
    # Nobody on staff is linked: the handler names the respondent and records for them.
    complaint = await walk.act(
        complaint, Action.REQUEST_STATEMENT, "handler", HOUR_LATER, respondent="闽A12345驾驶员李四"
    )
    assert complaint.statement["respondent_staff_id"] is None
    # Reminder points (base: 1 WD and 2 hours before the close of Tuesday): the handler, who
    # records the statement on the respondent's behalf, is reminded once.
    sent = await walk.sweep(local("2026-11-03T15:30"))
    assert sent == {"handler": ["statement-remind"]}
    reminder = (await texts_to("handler"))[-1]
    assert "闽A12345驾驶员李四" in reminder and "代为记录" in reminder
    assert (await walk.sweep(local("2026-11-03T16:00"))) == {}
    # At the close of Tuesday the period lapses: an event, and the handler is told.
    await walk.sweep(end_of("2026-11-03"))
    complaint = await walk.fresh(complaint)
    assert complaint.statement["status"] == "waived"
    waived = await Event.filter(complaint_id=complaint.id, action="waive_statement").first()
    assert waived is not None and waived.payload["cause"] == "lapsed"
    assert any("未在 2026年11月3日 23:59 前陈述" in t for t in await texts_to("handler"))
    complaint = await walk.reply(complaint, local("2026-11-04T09:00"))
    assert complaint.state == "replied"


async def test_a_lapse_the_sweep_has_not_seen_is_recorded_before_the_decision(
    db_url: str,
) -> None:
    walk = await Walk.of("transport")
    complaint = await walk.handle(
        await walk.file(MONDAY, "vehicle", target_kind="vehicle", target_text="闽A12345"), MONDAY
    )
    complaint = await walk.act(complaint, Action.REQUEST_STATEMENT, "handler", HOUR_LATER)
    assert complaint.statement["respondent"] == "闽A12345"  # the target as typed
    complaint = await walk.reply(complaint, local("2026-11-04T09:00"))  # no sweep ran
    actions = await (
        Event.filter(complaint_id=complaint.id)
        .exclude(action="viewed_identity")
        .values_list("action", flat=True)
    )
    assert actions[-3:] == ["waive_statement", "resolve", "notify_result"]


async def test_the_desk_shows_the_statement_and_the_respondent_records_it(
    db_url: str, tmp_path: Path
) -> None:
    walk = await Walk.of("transport")
    driver, complaint = await driver_complained_about(walk)
    await give_password(walk.staff("handler"), "handler1")
    await give_password(driver, "driver1")
    now = MovableNow(HOUR_LATER)
    async with desk_client(db_url, tmp_path, now, profile="transport") as client:
        await sign_in(client, "handler1")
        path = f"/desk/cases/{complaint.id}"
        html = await page(client, path)
        assert "请被投诉人陈述申辩" in html
        await form_post(client, path + "/act", {"action": "resolve", "version": version(html),
                        "reply_text": "已处理"}, csrf_from=path, status=409)  # fmt: skip
        refused = await page(client, path)
        assert "陈述" in refused
        await form_post(
            client, path + "/act", {"action": "request_statement", "version": version(html)},
            csrf_from=path,
        )  # fmt: skip
        html = await page(client, path)
        assert 'id="statement"' in html and "2026年11月3日" in html
        await client.post("/desk/signout", data={"csrf": csrf_in(html)})
        await sign_in(client, "driver1")
        html = await page(client, path)
        assert "记录被投诉人陈述" in html and "张三" not in html
        await form_post(
            client, path + "/act",
            {"action": "record_statement", "version": version(html), "text": STATEMENT},
            csrf_from=path,
        )  # fmt: skip
        assert STATEMENT in await page(client, path)
    complaint = await walk.fresh(complaint)
    assert complaint.statement["status"] == "recorded" and not complaint.statement["on_behalf"]
    # The complainant's progress page never shows it.
    async with desk_client(db_url, tmp_path, now, profile="transport") as client:
        public = await client.post(f"/c/{complaint.number}", data={"proof": "13812345678"})
        html = await public.text()
        assert public.status == 200 and 'id="private"' in html
        assert STATEMENT not in html and "陈述" not in html


def version(html: str) -> str:
    found = re.search(r'name="version" value="(\d+)"', html)
    assert found, "no case version on the page"
    return found.group(1)
