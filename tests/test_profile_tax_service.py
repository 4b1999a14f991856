"""The tax-service profile walked on the injectable clock (R6, REGIMES.md §2.3): 即时办结 as a
staff finding at acceptance, the 自然人/单位 question, 非税收入 and 其他重大政策落实 in 3 WD, the
5/10-WD classes, and the one extension of at most 10 WD."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.profiles import load_profile
from models.actions import Actor, act, submit_complaint
from models.entities import Channel, Complaint
from models.workflow import Action, Role
from scheduler.alarms import iso, set_alarm_context
from scheduler.deadlines import Duration
from tests.dialog_chat import Chat
from tests.scheduler_support import ANSWERS, CONTEXT, clock, end_of, file, local, make_org

TAX = load_profile("tax-service")
WD = "working_days"


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


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
