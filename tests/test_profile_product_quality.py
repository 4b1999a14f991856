"""product-quality (R10 health products, R23 pharmacy GSP, R24 cosmetics, R26 food/FMCG) walked
on the injectable clock: product, batch and place of purchase recorded; adverse reactions major,
reported within 12 hours and settled within 7 days; an ordinary case answered within 2 working
days after a handling opinion within 1; the recall decision (a staff decision, R26) recorded
before the result."""

from __future__ import annotations

import pytest

from models.actions import ActionRefused
from models.entities import Event
from models.workflow import Action
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

PRODUCT = {"product": "维生素C片 批号20260901", "purchase_place": "城东药店 2026-10-01"}


def test_the_form_asks_product_batch_and_place_of_purchase() -> None:
    profile = assert_ships("product-quality")
    ids = [f.id for f in profile.intake.fields]
    assert ids[ids.index("category") + 1 : ids.index("category") + 3] == [
        "product",
        "purchase_place",
    ]
    assert "place" not in ids  # the place is where it was bought
    assert not profile.anonymous_allowed  # 投诉人详情(姓名、一切可能的联系方法)


async def test_an_adverse_reaction_is_major_reported_in_twelve_hours(db_url: str) -> None:
    walk = await Walk.of("product-quality")
    complaint = await walk.file(MONDAY, "adverse_reaction", **PRODUCT)
    assert complaint.severity == "major"  # 服用中的不良反应 / 消费者过敏投诉
    assert complaint.intake_extra["product"].endswith("20260901")
    assert due(complaint, "manager_notice") == local("2026-11-02T22:00")  # 12小时内报公司
    sent = await walk.sweep(local("2026-11-02T22:00"))
    assert sent["supervisor"] == ["manager-notice"]
    complaint = await walk.accept(complaint, MONDAY)
    assert due(complaint, "resolution") == end_of("2026-11-09")  # 书面汇报…不得超过7天


async def test_an_ordinary_case_opinion_in_one_day_answer_in_two_recall_decided(
    db_url: str,
) -> None:
    walk = await Walk.of("product-quality")
    complaint = await walk.file(MONDAY, "product", **PRODUCT)
    complaint = await walk.accept(complaint, MONDAY, severity="ordinary")
    assert due(complaint, "resolution") == end_of("2026-11-04")  # 2个工作日内报
    complaint = await walk.assign(complaint, MONDAY)
    assert due(complaint, "first_contact") == end_of("2026-11-03")  # 1个工作日内作出处理意见
    complaint = await walk.act(complaint, Action.ACKNOWLEDGE, "handler", MONDAY)
    # R26 决定是否启动产品回收程序: no result before the decision is on record.
    with pytest.raises(ActionRefused) as refused:
        await walk.reply(complaint, local("2026-11-03T09:00"), "已退换并致歉")
    assert refused.value.refusal.reason_code == "recall_decision_missing"
    complaint = await walk.act(
        complaint, Action.RECORD_RECALL_DECISION, "handler", MONDAY, recall=False,
        reason="单瓶受潮，同批次无其他投诉",
    )  # fmt: skip
    assert (complaint.recall_decision, complaint.recall_reason) == (
        False,
        "单瓶受潮，同批次无其他投诉",
    )
    complaint = await walk.reply(complaint, local("2026-11-03T10:00"), "已退换并致歉")
    event = await Event.get(complaint_id=complaint.id, action="record_recall_decision")
    assert event.payload["recall"] is False and event.actor_staff_id == walk.staff("handler").id  # type: ignore[attr-defined]
    assert "已退换并致歉" in (await texts_to("chat-u1"))[-1]
