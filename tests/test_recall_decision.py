"""R26 决定是否启动产品回收程序 as a recorded staff decision (product-quality's
`[resolution] requires_recall_decision`): through the one set of workflow actions on SQLite and
PostgreSQL, on the staff chat's card, in the API's complaint and the desk's export, and on the
desk's case page."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from handlers.staff import render_card
from models.actions import ActionRefused, Actor, act
from models.api_tokens import create_token
from models.entities import Complaint, Event, Staff
from models.notifications import build_card
from models.workflow import Action, Role, State
from tests.desk_support import desk_client, give_password, page, sign_in
from tests.profile_walk import Walk, alarm_context, local  # noqa: F401 (autouse fixture)
from tests.scheduler_support import clock
from tests.test_desk_case import act_form

MONDAY = local("2026-11-02T10:00")
PRODUCT = {"product": "维生素C片 批号20260901", "purchase_place": "城东药店 2026-10-01"}
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def in_progress(walk: Walk) -> Complaint:
    complaint = await walk.file(MONDAY, "product", **PRODUCT)
    return await walk.handle(complaint, MONDAY, severity="ordinary")


async def refused(
    walk: Walk, complaint: Complaint, action: Action, who: str, **payload: object
) -> str:
    with pytest.raises(ActionRefused) as caught:
        await walk.act(complaint, action, who, MONDAY, **payload)
    return str(caught.value.refusal.reason_code)


async def test_resolve_waits_for_the_recorded_decision_and_the_latest_stands(db_url: str) -> None:
    walk = await Walk.of("product-quality")
    complaint = await in_progress(walk)
    assert await refused(walk, complaint, Action.RESOLVE, "handler", reply_text="已退换") == (
        "recall_decision_missing"
    )
    # Who may decide: the lead handler, the department head, a supervisor; not the intake desk
    # and not a handler off the case.
    yes = {"recall": True, "reason": "同批次三起"}
    other = await Staff.create(name="other", role=Role.HANDLER, department=walk.org.unit)
    with pytest.raises(ActionRefused) as caught:
        await act(
            complaint.id,
            Action.RECORD_RECALL_DECISION,
            Actor(Role.HANDLER, other),
            profile=walk.profile,
            clock=clock(MONDAY),
            payload=yes,
        )
    assert caught.value.refusal.reason_code == "not_lead_handler"
    assert await refused(walk, complaint, Action.RECORD_RECALL_DECISION, "clerk", **yes) == (
        "role_not_permitted"
    )
    complaint = await walk.act(
        complaint, Action.RECORD_RECALL_DECISION, "supervisor", MONDAY, **yes
    )
    assert (complaint.recall_decision, complaint.recall_reason) == (True, "同批次三起")
    # Recorded again by the lead handler (as a yes/no word, as a form sends it): it stands.
    complaint = await walk.act(
        complaint, Action.RECORD_RECALL_DECISION, "handler", MONDAY, recall="no",
        reason=" 经检测为单瓶受潮 ",
    )  # fmt: skip
    assert (complaint.recall_decision, complaint.recall_reason) == (False, "经检测为单瓶受潮")
    assert complaint.state == State.IN_PROGRESS
    events = await Event.filter(complaint_id=complaint.id, action="record_recall_decision")
    assert [(e.payload["recall"], e.payload["reason"]) for e in events] == [
        (True, "同批次三起"),
        (False, "经检测为单瓶受潮"),
    ]
    assert [(e.from_state, e.to_state) for e in events] == [("in_progress", "in_progress")] * 2
    complaint = await walk.act(complaint, Action.RESOLVE, "handler", MONDAY, reply_text="已退换")
    assert complaint.state == State.RESOLVED


async def test_a_decision_needs_a_yes_or_no_and_a_reason(db_url: str) -> None:
    walk = await Walk.of("product-quality")
    complaint = await in_progress(walk)
    for payload in ({"reason": "未说明"}, {"recall": "maybe", "reason": "x"}, {"recall": True}):
        with pytest.raises(ValueError):
            await walk.act(complaint, Action.RECORD_RECALL_DECISION, "handler", MONDAY, **payload)
    fresh = await walk.fresh(complaint)
    assert fresh.recall_decision is None and fresh.recall_reason is None
    assert not await Event.filter(complaint_id=complaint.id, action="record_recall_decision")


async def test_other_profiles_neither_ask_nor_offer_it(db_url: str) -> None:
    walk = await Walk.of("manufacturing")
    complaint = await walk.handle(
        await walk.file(MONDAY, "in_province", order_number="PO-1", quantities="5"),
        MONDAY,
        severity="ordinary",
    )
    card, _ = await build_card(complaint, walk.staff("handler"), walk.profile, None)
    assert "record_recall_decision" not in card.actions and "resolve" in card.actions
    assert "recall" not in render_card(card, "en", SHANGHAI)
    assert await refused(
        walk, complaint, Action.RECORD_RECALL_DECISION, "handler", recall=True, reason="x"
    ) == ("not_enabled_by_profile")
    complaint = await walk.act(complaint, Action.RESOLVE, "handler", MONDAY, reply_text="换货")
    assert complaint.state == State.RESOLVED


async def test_the_staff_card_shows_the_decision_and_offers_it_first(db_url: str) -> None:
    walk = await Walk.of("product-quality")
    complaint = await in_progress(walk)
    handler = walk.staff("handler")
    card, _ = await build_card(complaint, handler, walk.profile, None)
    assert "record_recall_decision" in card.actions and "resolve" not in card.actions
    assert "Product recall: not decided yet (needed before resolving)" in render_card(
        card, "en", SHANGHAI
    )
    assert "产品回收：尚未决定（结案前须作出）" in render_card(card, "zh_CN", SHANGHAI)
    complaint = await walk.act(
        complaint, Action.RECORD_RECALL_DECISION, "handler", MONDAY, recall=True, reason="批次问题"
    )
    card, _ = await build_card(complaint, handler, walk.profile, None)
    assert "resolve" in card.actions
    assert "Product recall: started. Reason: 批次问题" in render_card(card, "en", SHANGHAI)
    assert "產品回收：已啟動。理由：批次问题" in render_card(card, "zh_TW", SHANGHAI)


async def test_the_api_and_the_export_carry_the_decision(db_url: str, tmp_path: Path) -> None:
    walk = await Walk.of("product-quality")
    complaint = await in_progress(walk)
    handler = walk.staff("handler")
    await give_password(handler, "handler")
    token = (await create_token(handler, "erp", ["read", "act"], now=MONDAY)).secret
    auth = {"Authorization": f"Bearer {token}"}
    async with desk_client(db_url, tmp_path, profile="product-quality") as client:
        path = f"/api/v1/complaints/{complaint.id}"
        before = await (await client.get(path, headers=auth)).json()
        assert before["recall_decision"] is None and "record_recall_decision" in before["actions"]
        done = await client.post(
            path + "/actions",
            headers=auth,
            json={"action": "record_recall_decision", "recall": True, "reason": "同批次三起"},
        )
        body = await done.json()
        assert done.status == 200, body
        assert (body["complaint"]["recall_decision"], body["complaint"]["recall_reason"]) == (
            True,
            "同批次三起",
        )
        await sign_in(client, "handler")
        exported = await client.get("/desk/cases.csv")
        rows = list(csv.reader(io.StringIO((await exported.text()).lstrip("\ufeff"))))
    header, (row,) = rows[0], rows[1:]
    assert header[-2:] == ["产品回收", "回收决定的理由"]
    assert row[-2:] == ["启动回收", "同批次三起"]


async def test_the_desk_case_page_records_it_and_resolve_explains_why_not(
    db_url: str, tmp_path: Path
) -> None:
    walk = await Walk.of("product-quality")
    complaint = await in_progress(walk)
    await give_password(walk.staff("handler"), "handler")
    async with desk_client(db_url, tmp_path, profile="product-quality") as client:
        await sign_in(client, "handler")
        html = await page(client, f"/desk/cases/{complaint.id}")
        assert "产品回收：尚未决定（结案前须作出）" in html
        assert 'value="record_recall_decision"' in html and 'value="resolve"' not in html
        # A resolve form sent anyway is refused with the reason, in the page's language.
        response = await act_form(client, complaint.id, "resolve", status=409, reply_text="已退换")
        assert "请先记录是否启动产品回收" in await response.text()
        response = await act_form(
            client, complaint.id, "record_recall_decision", status=400, reason="同批次三起"
        )
        assert "请填写“产品回收”" in await response.text()
        await act_form(
            client, complaint.id, "record_recall_decision", recall="yes", reason="同批次三起"
        )
        html = await page(client, f"/desk/cases/{complaint.id}")
        assert "产品回收：已启动。理由：同批次三起" in html
        assert "已记录回收决定" in html  # the timeline entry
        assert 'value="resolve"' in html
        await act_form(client, complaint.id, "resolve", reply_text="已退换并致歉")
    assert (await walk.fresh(complaint)).state == State.REPLIED
