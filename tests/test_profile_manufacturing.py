"""manufacturing (R9 electrical equipment, R17 PCB 客户投诉管理办法, R18 质量问题处理管理规定)
walked on the injectable clock: the order, part, quantities, ship date and defect count
recorded; in-province complaints handled within 2 days, out-of-province within 4; the report to
the general manager within 3 days of the handling; a batch or major incident told at once."""

from __future__ import annotations

from pathlib import Path

from bot.conversation import Conversation
from config.profiles import load_profile
from config.settings import Settings
from handlers.messages import Incoming
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
from tests.scheduler_support import CALENDAR

ORDER = {"order_number": "PO-2611 料号 A-17", "quantities": "500件，10月28日交运，不良20件"}


def test_the_form_records_the_order_after_the_facts() -> None:
    profile = assert_ships("manufacturing")
    ids = [f.id for f in profile.intake.fields]
    assert ids[ids.index("facts") + 1 : ids.index("facts") + 3] == ["order_number", "quantities"]
    assert profile.field("order_number").required and profile.field("quantities").required


async def test_two_days_in_province_four_outside_and_the_report_in_three(db_url: str) -> None:
    walk = await Walk.of("manufacturing")
    near = await walk.file(MONDAY, "in_province", **ORDER)
    assert near.intake_extra["order_number"].startswith("PO-2611")
    near = await walk.handle(near, MONDAY)
    assert due(near, "resolution") == end_of("2026-11-04")  # 省内不超过二天
    far = await walk.handle(await walk.file(MONDAY, "out_of_province", user="u2", **ORDER), MONDAY)
    assert due(far, "resolution") == end_of("2026-11-06")  # 省外不超过四天
    # Resolved on the 3rd: the report (the result notice) is due within 3 days.
    resolved = await walk.act(
        near, Action.RESOLVE, "handler", local("2026-11-03T10:00"), reply_text="换货"
    )
    assert due(resolved, "result_notice") == end_of("2026-11-06")
    sent = await walk.sweep(end_of("2026-11-06"))
    assert sent["handler"] == ["overdue", "overdue"]  # the report, and the other case


async def test_a_major_quality_incident_is_told_within_the_hour(db_url: str) -> None:
    walk = await Walk.of("manufacturing")
    complaint = await walk.accept(
        await walk.file(MONDAY, "in_province", **ORDER), MONDAY, severity="major"
    )
    assert due(complaint, "manager_notice") == local("2026-11-02T11:00")
    sent = await walk.sweep(local("2026-11-02T11:00"))
    assert sent["centre_head"] == ["manager-notice"] and sent["supervisor"] == ["manager-notice"]


# R17's 客户抱怨处理表 filed through the chat, step by step (what a channel sends).
FILING = [
    ("command", "start"),
    ("choice", "opt:in_province"),
    ("choice", "opt:department"),
    ("text", "品管部"),
    ("text", "昨天下午3点"),
    ("text", "苏州工厂"),
    ("text", "来料短路，整批不良，要求退换。"),
    ("text", ORDER["order_number"]),
    ("text", ORDER["quantities"]),
    ("choice", "opt:explanation"),
    ("choice", "skip"),
    ("choice", "skip"),
    ("choice", "opt:no"),
    ("choice", "privacy:ok"),
    ("text", "王工"),
    ("text", "138 1234 5678"),
    ("choice", "done"),
    ("choice", "confirm"),
]


async def test_numbers_are_r17s_year_month_serial_and_the_receipt_shows_it(
    db_url: str, tmp_path: Path
) -> None:
    december = local("2026-12-01T09:00")
    talk = Conversation(
        Settings(database_url=db_url, data_dir=tmp_path / "data"),
        load_profile("manufacturing"),
        CALENDAR,
        now=lambda: december,
    )
    replies = []
    for index, (kind, value) in enumerate(FILING):
        fields = {"command" if kind == "command" else kind: value}
        replies = await talk.handle(
            Incoming(channel="web", user_id="buyer-1", kind=kind, message_id=f"m{index}", **fields)
        )
    receipt = "\n".join(r.text for r in replies)
    assert "2612-01" in receipt and "202612" not in receipt, receipt  # 年度月份流水编号
    assert "/c/2612-01?k=" in receipt  # the progress link carries it too
    walk = await Walk.of("manufacturing")
    second = await walk.file(december, "out_of_province", user="u2", **ORDER)
    assert second.number == "2612-02"
