"""The monthly report of the seeded world (tests/stats_world.py) as words and as a workbook
that prints: text in zh_CN / en, XLSX widths, frozen bold headers, date cells, charts, print
settings, the full complaint list."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import datetime

import pytest
from openpyxl import load_workbook

from models.alarms import set_alarm_context
from scheduler.reports import (
    ReportData,
    cli_text,
    gather_report,
    render_text,
    report_period,
    write_workbook,
)
from tests.scheduler_support import CALENDAR, CONTEXT, SHANGHAI
from tests.stats_world import NOW, PROFILE, World, seed


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


async def month(lang: str = "zh_CN") -> tuple[World, ReportData]:
    world = await seed()
    period = report_period("monthly", NOW, SHANGHAI)
    data = await gather_report(period, NOW, PROFILE, calendar=CALENDAR, tz=SHANGHAI, lang=lang)
    return world, data


async def test_monthly_text_reads_as_chinese(db_url: str) -> None:
    world, data = await month()
    text = render_text(data, PROFILE, "zh_CN", SHANGHAI)
    c2, c4 = world.cases["c2"].number, world.cases["c4"].number
    lines = text.splitlines()
    assert lines[0] == "📊 投诉处理月报 2026-11（2026-11-01至2026-11-30）"
    assert "新收投诉：5 件" in lines
    assert "按类别：拖延不办 2 件，吃、拿、卡、要 1 件，其他 1 件，态度蛮横粗暴 1 件" in lines
    assert "按承办部门：未分派 2 件，一科 2 件，二科 1 件" in lines
    assert "按时办结率：50%（2/4）" in lines
    assert "平均办理用时：6.3 个工作日" in lines
    assert "满意度：结果 6.0 分，态度 6.0 分（2 份评价，1 份未回复）" in lines
    assert "被投诉人员：2026年：王五（待岗（四次及以上））4 件" in lines
    assert "超期未办：2 件" in lines
    assert lines[-2].startswith(f"  · {c4} 受理，时限 2026年11月23日 23:59，未分派")
    assert lines[-1].startswith(f"  · {c2} 办结，时限 2026年11月24日 23:59，一科")
    # No raw ids, no half-width punctuation between Chinese words.
    for raw in (
        "submitted",
        "in_progress",
        "survey_reminder",
        "resolution",
        "delay",
        ": ",
        "(",
        ")",
    ):
        assert raw not in text, raw
    assert "按状态：已结案 1 件，办理中 1 件，不予受理 1 件，回访中 1 件，已提交 1 件" in lines
    assert "各环节按时率：受理 80%（4/5），办结 50%（2/4）" in lines
    p1, p2 = world.p1.id, world.p2.id
    assert f"重复投诉人：张*（#{p1}）3 件，李*（#{p2}）2 件" in lines


async def test_monthly_text_in_english(db_url: str) -> None:
    _world, data = await month()  # gathered once, rendered per manager's language
    text = render_text(data, PROFILE, "en", SHANGHAI)
    assert text.splitlines()[0] == "📊 Monthly complaint report 2026-11 (2026-11-01 – 2026-11-30)"
    assert "Complaints filed: 5" in text
    assert "By department: not assigned 2, 一科 2, 二科 1" in text
    assert "Resolved on time: 50% (2/4)" in text
    assert "Complaints per staff: 2026: 王五 (Suspension (4 or more)) 4" in text
    assert "survey_reminder" not in text and "in_progress" not in text


async def test_workbook_opens_and_prints(db_url: str) -> None:
    world, data = await month()
    content = write_workbook(data, PROFILE, "zh_CN", SHANGHAI)
    book = load_workbook(io.BytesIO(content))
    assert book.sheetnames[0] == "概况" and "投诉清单" in book.sheetnames
    assert "按类别" in book.sheetnames and "月度趋势" in book.sheetnames
    for sheet in book.worksheets:
        header_row = 2 if sheet.title == "概况" else 1
        assert sheet.freeze_panes == f"A{header_row + 1}", sheet.title
        assert all(c.font.b for c in sheet[header_row] if c.value is not None), sheet.title
        assert sheet.page_setup.orientation == "landscape", sheet.title
        assert sheet.page_setup.fitToWidth == 1 and sheet.page_setup.fitToHeight == 0
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        assert sheet.print_title_rows == f"${header_row}:${header_row}", sheet.title
        assert sheet.print_area, sheet.title
        for row in sheet.iter_rows(min_row=header_row):
            for cell in row:
                if cell.value is None:
                    continue
                width = sheet.column_dimensions[cell.column_letter].width
                shown = sum(2 if ord(ch) > 0x2E80 else 1 for ch in str(cell.value))
                if not isinstance(cell.value, datetime) and sheet.title != "概况":
                    assert width >= min(shown, 58), (sheet.title, cell.coordinate, width)
    listing = book["投诉清单"]
    rows = list(listing.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == [world.cases[k].number for k in ("c1", "c2", "c3", "c4", "c7")]
    assert isinstance(rows[0][1], datetime) and rows[0][1] == datetime(2026, 11, 2, 10, 0)
    assert listing["B2"].number_format == "yyyy-mm-dd hh:mm"
    assert rows[3][5] == "未分派"
    summary = book["概况"]
    assert summary["B3"].is_date and summary["B3"].value == datetime(2026, 11, 1)
    assert summary["B6"].value == 5 and summary["B7"].value == 0.5
    assert summary["B7"].number_format == "0%"
    overdue = book["超期未办"]
    assert [c.value for c in overdue[2]][:2] == [world.cases["c4"].number, "受理"]
    assert overdue["C2"].is_date
    names = zipfile.ZipFile(io.BytesIO(content)).namelist()
    assert len([n for n in names if n.startswith("xl/charts/chart")]) == 2
    # The chart lies inside the print area: that area reaches below the table.
    categories = book["按类别"]
    assert categories.print_area and int(categories.print_area.split("$")[-1]) > 10


def test_the_cli_says_what_it_did_in_words() -> None:
    assert cli_text("sent", "zh_CN", label="2026-11", n=1) == "2026-11：已发送给 1 位管理人员"
    assert cli_text("sent", "zh_TW", label="2026-11", n=2) == "2026-11：已發送給 2 位管理人員"
    assert cli_text("sent", "en", label="2026-11", n=1) == "2026-11: sent to 1 manager(s)"
