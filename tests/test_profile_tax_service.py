"""The tax-service profile walked on the injectable clock (R6, REGIMES.md §2.3): 即时办结 as a
staff finding at acceptance, the 自然人/单位 question, 非税收入 and 其他重大政策落实 in 3 WD, the
5/10-WD classes, and the one extension of at most 10 WD."""

from __future__ import annotations

import pytest

from config.profiles import load_profile
from models.actions import Actor, act, submit_complaint
from models.alarms import iso
from models.entities import Channel, Complaint
from models.workflow import Action, Role
from scheduler.deadlines import Duration
from tests.dialog_chat import Chat
from tests.profile_walk import alarm_context  # noqa: F401 (autouse fixture)
from tests.scheduler_support import ANSWERS, clock, end_of, file, local, make_org

TAX = load_profile("tax-service")
WD = "working_days"


def test_a_citizen_cannot_pick_on_the_spot_settlement_online() -> None:
    chat = Chat(profile=TAX, lang="zh_CN")
    chat.command("start")
    chat.choose("screen:none")
    assert chat.where == ("intake", "category")
    assert "opt:on_the_spot" not in chat.choice_ids
    assert "opt:non_tax_revenue" in chat.choice_ids and "opt:major_policy" in chat.choice_ids


def test_the_taxpayer_kind_is_asked_right_after_the_category() -> None:
    chat = Chat(profile=TAX, lang="zh_CN")
    chat.command("start")
    chat.choose("screen:none")
    chat.choose("opt:individual_income_tax")
    chat.choose("opt:annual_settlement")
    assert chat.where == ("intake", "taxpayer_kind")
    assert {"opt:natural_person", "opt:organisation"} <= set(chat.choice_ids)


async def test_staff_record_on_the_spot_settlement_at_acceptance(db_url: str) -> None:
    org = await make_org()
    complaint = await file(TAX, local("2026-10-12T10:00"))
    accepted = local("2026-10-12T10:20")
    await act(
        complaint.id,
        Action.ACCEPT,
        Actor(Role.INTAKE_CLERK, org.clerk),
        profile=TAX,
        clock=clock(accepted),
        payload={"category": "on_the_spot", "subcategory": "batch", "severity": "ordinary"},
    )
    stored = await Complaint.get(id=complaint.id)
    assert (stored.category, stored.subcategory) == ("on_the_spot", "batch")
    assert stored.deadlines["resolution"]["due"] == iso(accepted)  # settled at once


async def test_the_answers_the_3_wd_rule_depends_on_are_kept(db_url: str) -> None:
    complaint = await submit_complaint(
        profile=TAX,
        channel=Channel.TELEGRAM,
        external_id="u1",
        chat_id="chat-u1",
        answers={
            **ANSWERS,
            "category": "non_tax_revenue",
            "taxpayer_kind": "natural_person",
            "request_type": "fix",
        },
        clock=clock(local("2026-10-12T10:00")),
    )
    assert complaint.intake_extra == {"taxpayer_kind": "natural_person", "request_option": "fix"}
    org = await make_org()
    await act(
        complaint.id,
        Action.ACCEPT,
        Actor(Role.INTAKE_CLERK, org.clerk),
        profile=TAX,
        clock=clock(local("2026-10-12T11:00")),
        payload={"severity": "ordinary"},
    )
    stored = await Complaint.get(id=complaint.id)
    assert stored.deadlines["resolution"]["due"] == iso(end_of("2026-10-15"))  # 3 WD


def test_every_class_has_its_limit() -> None:
    for three in ("non_tax_revenue", "major_policy", "social_insurance", "preferential_policy"):
        assert TAX.deadline_for("resolution", three) == Duration(3, WD)
    assert TAX.deadline_for("resolution", "service_conduct") == Duration(5, WD)
    assert TAX.deadline_for("resolution", "service_quality") == Duration(10, WD)
    subs = {s.id for s in TAX.category("service_quality").subcategories}
    assert {"overdue", "first_ask", "openness"} <= subs  # R6 服务质效 sub-types
    assert TAX.extension is not None and TAX.extension.max.to_duration() == Duration(10, WD)


async def test_the_batch_rule_settles_at_once_with_the_earlier_decision(db_url: str) -> None:
    """R6 即时办结 (2) "一定时期内集中发生的同一投诉事项且已有明确处理意见的": staff settle the
    new case at acceptance as already decided — linked to the earlier case, its reply sent at
    once."""
    from models.actions import ActionRefused
    from models.notifications import build_card
    from tests.profile_walk import Walk, texts_to

    walk = Walk(TAX, await make_org())
    monday = local("2026-11-02T10:00")
    earlier = await walk.handle(
        await walk.file(monday, "service_quality", taxpayer_kind="organisation"), monday
    )
    decision = "电子税务局11月1日故障已修复，逾期申报不予处罚。"
    earlier = await walk.reply(earlier, local("2026-11-02T16:00"), decision)
    again = await walk.file(
        local("2026-11-03T09:00"), "service_quality", user="u2", taxpayer_kind="organisation"
    )
    # Offered to the intake desk on this profile, refused where the profile does not enable it.
    card, _ = await build_card(again, walk.org.clerk, TAX, None)
    assert "settle_as_decided" in card.actions
    gov = Walk(load_profile("gov-window"), walk.org)
    with pytest.raises(ActionRefused) as refused:
        await gov.act(
            again,
            Action.SETTLE_AS_DECIDED,
            "clerk",
            local("2026-11-03T09:30"),
            decided_number=earlier.number,
        )
    assert refused.value.refusal.reason_code == "not_enabled_by_profile"
    # An unknown number, or a case not decided yet, is refused input.
    undecided = await walk.file(
        local("2026-11-03T09:00"), "service_quality", user="u3", taxpayer_kind="organisation"
    )
    for number in ("209901-0001", undecided.number, again.number):
        with pytest.raises(ValueError):
            await walk.act(
                again,
                Action.SETTLE_AS_DECIDED,
                "clerk",
                local("2026-11-03T09:30"),
                decided_number=number,
            )
    settled = await walk.act(
        again,
        Action.SETTLE_AS_DECIDED,
        "clerk",
        local("2026-11-03T09:30"),
        decided_number=earlier.number,
    )
    assert settled.state == "resolved" and settled.reply_text == decision
    assert settled.intake_extra["decided_as"] == earlier.number
    assert settled.deadlines["acceptance"]["done"]
    settled = await walk.act(settled, Action.NOTIFY_RESULT, "clerk", local("2026-11-03T09:30"))
    assert settled.state == "replied"
    assert decision in (await texts_to("chat-u2"))[-1]
