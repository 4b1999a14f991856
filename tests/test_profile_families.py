"""The regime families of REGIMES.md §1 (one profile each, extending `base` or `first-ask`):
each walked through its own seed rules on the statutory calendar. The three shipped profiles
have their own modules (test_profile_property/gov_window/tax_service)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from config.profiles import explain_rows, list_profiles, load_profile
from models.actions import Actor, act, submit_complaint
from models.entities import Channel, Complaint, Staff
from models.workflow import Action, Role
from scheduler.alarms import iso, set_alarm_context
from scheduler.conduct import conduct_lines, conduct_report
from scheduler.deadlines import Duration, compute_due
from tests.dialog_chat import Chat
from tests.scheduler_support import (
    ANSWERS,
    CALENDAR,
    CONTEXT,
    SHANGHAI,
    clock,
    end_of,
    local,
    make_org,
)

FAMILIES = [
    "gov-centre",
    "school",
    "enterprise",
    "transport",
    "call-centre",
    "utility",
    "petition",
    "manufacturing",
    "product-quality",
    "housekeeping",
    "tobacco",
    "internet-reports",
    "tourism",
    "hospitality",
    "conduct",
]
WD, CD = "working_days", "calendar_days"


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


def due(name: str, stage: str, start: datetime, category: str | None = None, **kw: str) -> datetime:
    profile = load_profile(name)
    duration = profile.deadline_for(stage, category, kw.get("severity"), kw.get("complexity"))
    return compute_due(
        start,
        duration,
        CALENDAR,
        SHANGHAI,
        office_hours=profile.clock_office_hours(),
        roll_to_working_day=profile.clock.roll_to_working_day,
    ).due


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_ships_with_sources_and_three_languages(name: str) -> None:
    profile = load_profile(name)
    assert name in list_profiles()
    assert profile.extends in ("base", "first-ask")
    rows = explain_rows(profile)
    own = [r for r in rows if r[3] and r[3] not in ("R11", "R13", "R19", "R7g")] or rows
    assert own, f"{name} names no seed rule"
    for category in profile.categories:
        assert set(category.label) == {"zh_CN", "zh_TW", "en"}
    # every category has a resolution limit (or the stage is deliberately absent)
    for category in profile.categories:
        profile.deadline_for(
            "resolution", category.id, profile.severities[0].id if profile.severities else None
        )


def test_first_ask_is_abstract_and_gives_its_limits() -> None:
    assert "first-ask" not in list_profiles()
    centre = load_profile("housekeeping")  # extends first-ask (R12 首问责任制)
    assert centre.deadline_for("dispatch") == Duration(1, WD)  # R5: 1 WD to the right dept
    assert centre.deadline_for("resolution", "business") == Duration(3, WD)
    assert centre.deadline_for("resolution", "media") == Duration(15, WD)  # major, difficult


def test_gov_centre_two_and_five_working_days() -> None:
    monday = local("2026-10-12T10:00")
    assert due("gov-centre", "resolution", monday, "attitude") == end_of("2026-10-14")
    assert due("gov-centre", "resolution", monday, "attitude", complexity="complex") == end_of(
        "2026-10-19"
    )
    assert due("gov-centre", "acceptance", monday) == monday  # oral: at once
    assert load_profile("gov-centre").reply.written_reply_for_written_complaint


def test_school_fifteen_working_days_and_discipline_excluded() -> None:
    assert due("school", "resolution", local("2026-09-28T10:00"), "teaching") == end_of(
        "2026-10-23"
    )  # across National Day (9-30, 10-08…)
    chat = Chat(profile=load_profile("school"), lang="zh_CN")
    chat.command("start")
    chat.choose("excl:discipline")
    assert "纪检监察" in chat.said and chat.where == ("screening", "screening.exclusion")
    chat.choose("screen:leave")
    assert chat.where == ("idle", None) and chat.commands == []


def test_enterprise_one_day_to_investigate_two_to_answer() -> None:
    monday = local("2026-10-12T10:00")
    assert due("enterprise", "first_contact", monday, "service") == end_of("2026-10-13")
    assert due("enterprise", "resolution", monday, "service") == end_of("2026-10-14")
    assert not load_profile("enterprise").anonymous_allowed


def test_transport_exclusions_with_guidance_plates_and_remedies() -> None:
    profile = load_profile("transport")
    guidance = {e.id: e.guidance["zh_CN"] for e in profile.exclusions}
    assert "122" in guidance["accident"] and "110" in guidance["crime"]
    assert [o.id for o in profile.field("target").options or []] == [
        "vehicle",
        "staff",
        "department",
    ]
    assert "车牌" in profile.field("target").prompt["zh_CN"]
    assert "compensation" in [o.id for o in profile.field("request_type").options or []]
    monday = local("2026-10-12T10:00")
    assert due("transport", "resolution", monday, "service") == end_of("2026-10-14")
    assert due("transport", "resolution", monday, "safe_driving") == end_of("2026-10-19")
    chat = Chat(profile=profile, lang="zh_CN")
    chat.command("start")
    chat.choose("excl:accident")
    assert "122" in chat.said


def test_call_centre_three_days_and_the_r19_bands() -> None:
    profile = load_profile("call-centre")
    assert profile.revisit is not None
    assert profile.revisit.satisfaction.band(4) == "unsatisfied"
    assert profile.revisit.unsatisfied == "supervisor_revisit"
    assert due("call-centre", "resolution", local("2026-10-12T10:00"), "technical") == end_of(
        "2026-10-15"
    )


def test_utility_three_days_for_complaints_five_for_reports() -> None:
    monday = local("2026-10-12T10:00")
    assert due("utility", "resolution", monday, "supply") == end_of("2026-10-15")
    assert due("utility", "resolution", monday, "report") == end_of("2026-10-19")
    assert due("utility", "first_contact", monday, "supply") == local("2026-10-12T12:00")


def test_petition_periods_roll_past_holidays() -> None:
    # 16 September + 15 days = 1 October, National Day: the period ends on 8 October.
    assert due("petition", "resolution", local("2026-09-16T10:00"), "petition") == end_of(
        "2026-10-08"
    )
    # Not on a holiday: no roll.
    assert due("petition", "resolution", local("2026-11-02T10:00"), "petition") == end_of(
        "2026-11-17"
    )
    assert due("petition", "resolution", local("2026-11-02T10:00"), "result_report") == end_of(
        "2027-01-04"  # 1 January 2027 + … : 60 days end on New Year's Day, rolled
    )
    profile = load_profile("petition")
    assert profile.category("collective").default_severity == "major"  # R30
    assert profile.deadline_for("resolution", "about_handling") == Duration(10, WD)  # R28


def test_manufacturing_two_days_in_province_four_outside_and_order_fields() -> None:
    monday = local("2026-10-12T10:00")
    assert due("manufacturing", "resolution", monday, "in_province") == end_of("2026-10-14")
    assert due("manufacturing", "resolution", monday, "out_of_province") == end_of("2026-10-16")
    ids = [f.id for f in load_profile("manufacturing").intake.fields]
    assert ids[ids.index("facts") + 1 : ids.index("facts") + 3] == ["order_number", "quantities"]


async def test_product_quality_records_product_batch_and_place(db_url: str) -> None:
    profile = load_profile("product-quality")
    assert "place" not in [f.id for f in profile.intake.fields]
    complaint = await submit_complaint(
        profile=profile,
        channel=Channel.TELEGRAM,
        external_id="u1",
        chat_id="chat-u1",
        answers={
            **ANSWERS,
            "category": "adverse_reaction",
            "product": "维生素C片 批号20260901",
            "purchase_place": "城东药店 2026-10-01",
        },
        clock=clock(local("2026-10-12T10:00")),
    )
    assert complaint.severity == "major"  # adverse reactions are major (R10, R24)
    assert complaint.intake_extra["product"].endswith("20260901")
    # R23: a major incident reported within 12 hours.
    assert complaint.deadlines["manager_notice"]["due"] == iso(local("2026-10-12T22:00"))


def test_tobacco_questions_in_24_hours() -> None:
    start = local("2026-10-12T10:00")
    assert due("tobacco", "resolution", start, "question") == local("2026-10-13T10:00")


def test_internet_reports_at_night_wait_for_the_next_working_day() -> None:
    # Friday 9 October 20:00, after hours: counted from Saturday 10 October (a 调休 working
    # day) 09:00; 8 office hours end at 17:00.
    friday_night = local("2026-10-09T20:00")
    assert due("internet-reports", "resolution", friday_night, "harmful", severity="ordinary") == (
        local("2026-10-10T17:00")
    )
    profile = load_profile("internet-reports")
    assert next(e for e in profile.exclusions if e.id == "emergency").urgent_case


def test_tourism_reported_next_day() -> None:
    assert due("tourism", "acceptance", local("2026-10-12T15:00")) == end_of("2026-10-13")


def test_hospitality_gm_at_once_and_follow_up_in_three_days() -> None:
    profile = load_profile("hospitality")
    assert profile.category("key_customer").default_severity == "major"
    assert profile.deadline_for("manager_notice", "service", "major") == Duration(0, "minutes")
    assert profile.deadline_for("revisit") == Duration(3, WD)
    assert profile.severity_rules.raisable


def test_conduct_consequences_by_count() -> None:
    profile = load_profile("conduct")
    lines = conduct_lines(profile, {(1, "王"): 1, (2, "李"): 3, (3, "张"): 5, (4, "赵"): 2})
    assert [(x.staff_name, x.count, x.consequence) for x in lines] == [
        ("张", 5, "待岗（四次及以上）"),
        ("李", 3, "年度考核不合格"),
        ("赵", 2, "公开批评"),
        ("王", 1, "谈话提醒"),
    ]


async def test_conduct_report_counts_accepted_complaints_per_staff_in_the_year(
    db_url: str,
) -> None:
    profile = load_profile("conduct")
    org = await make_org()
    target = await Staff.create(name="窗口甲", role=Role.HANDLER, department=org.unit)
    for month, user in ((3, "a"), (6, "b"), (11, "c")):
        complaint = await submit_complaint(
            profile=profile,
            channel=Channel.TELEGRAM,
            external_id=user,
            chat_id=f"chat-{user}",
            answers={**ANSWERS, "category": "delay"},
            clock=clock(local(f"2026-{month:02d}-10T10:00")),
        )
        await Complaint.filter(id=complaint.id).update(target_staff_id=target.id)
        await act(
            complaint.id,
            Action.ACCEPT,
            Actor(Role.INTAKE_CLERK, org.clerk),
            profile=profile,
            clock=clock(local(f"2026-{month:02d}-10T11:00")),
            payload={"severity": "ordinary"},
        )
    [line] = await conduct_report(profile, 2026, SHANGHAI)
    assert (line.staff_name, line.count, line.consequence) == ("窗口甲", 3, "年度考核不合格")
    assert await conduct_report(profile, 2025, SHANGHAI) == []


def test_profiles_explain_prints_rule_seed_and_key(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["profiles", "explain", "petition"]) == 0
    out = capsys.readouterr().out
    assert "deadlines.resolution = 15 calendar_days" in out
    assert "R28 · 003_dab1bd914f4d2c30.txt · 收到信訪事項后，須在15日內及時辦理" in out
    assert "ours:" in out
    assert main(["profiles", "explain", "property", "--markdown"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| config key | value | seed file | regime |")
    assert "| deadlines.first_contact | 24 hours | 004_3088d8cc6c892c4f.txt | R7g |" in table
