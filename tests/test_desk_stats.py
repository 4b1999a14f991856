"""/desk/stats per role, the report downloads and the list exports (CSV with BOM, XLSX), with
masking as on screen and an audit row for every file; the export stays within a memory bound
(tracemalloc) however many rows it writes."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from models.alarms import set_alarm_context
from models.caselist import ALL, CaseFilter
from models.entities import Channel, Complaint, DeskExport
from models.exports import export_rows, start_export
from models.workflow import State
from tests.desk_support import MovableNow, desk_client, give_password, page, sign_in
from tests.scheduler_support import CALENDAR, CONTEXT, SHANGHAI
from tests.stats_world import NOW, World, seed

NOVEMBER = "/desk/stats?from=2026-11-01&to=2026-11-30"


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


async def _world() -> World:
    world = await seed()
    for person, login in (
        (world.supervisor, "sup"),
        (world.head1, "head1"),
        (world.h1, "h1"),
        (world.h2, "h2"),
        (world.target, "wang"),
    ):
        await give_password(person, login)
    return world


async def test_dashboard_per_role(db_url: str, tmp_path: Path) -> None:
    world = await _world()
    cases = world.cases
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile="conduct") as client:
        await sign_in(client, "sup")
        html = await page(client, NOVEMBER)
        assert html.count("<svg") >= 7 and "<script" not in html
        for words in ("拖延不办", "未分派", "一科", "待岗（四次及以上）", "张*（#", "50%"):
            assert words in html, words
        assert cases["c4"].number in html and cases["c2"].number in html
        assert "survey_reminder" not in html and "in_progress" not in html
        # Every chart's numbers as a table too.
        assert html.count("<table") >= 10
        filtered = await page(client, NOVEMBER + f"&department={world.d2.id}")
        assert cases["c4"].number not in filtered and cases["c2"].number not in filtered
        bad = await page(client, "/desk/stats?from=yesterday", status=400)
        assert "from" in bad
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile="conduct") as client:
        await sign_in(client, "head1")
        html = await page(client, NOVEMBER)
        assert cases["c2"].number in html and cases["c4"].number not in html  # not theirs
        assert "二科" not in html.split('name="department"')[1].split("</select>")[0]
        assert "张*" not in html  # a head sees a repeat complainant's number, not a name
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile="conduct") as client:
        await sign_in(client, "h1")
        await page(client, NOVEMBER, status=403)
        await page(client, "/desk/stats/report/monthly.xlsx", status=403)


async def test_report_downloads_are_the_viewers_and_audited(db_url: str, tmp_path: Path) -> None:
    world = await _world()
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile="conduct") as client:
        await sign_in(client, "head1")
        response = await client.get("/desk/stats/report/monthly.xlsx")
        assert response.status == 200
        assert "complaints-monthly-2026-11" in response.headers["Content-Disposition"]
        book = load_workbook(io.BytesIO(await response.read()))
        listed = [r[0] for r in book["投诉清单"].iter_rows(min_row=2, values_only=True)]
        assert sorted(listed) == sorted(world.cases[k].number for k in ("c1", "c2", "c3"))
        assert (await client.get("/desk/stats/report/yearly.xlsx")).status == 404
    audit = await DeskExport.get(staff_id=world.head1.id)
    assert (audit.kind, audit.rows, audit.finished) == ("report", 3, True)


async def test_csv_export_has_a_bom_masks_and_is_audited(db_url: str, tmp_path: Path) -> None:
    world = await _world()
    cases = world.cases
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile="conduct") as client:
        await sign_in(client, "sup")
        response = await client.get("/desk/cases.csv?state=all")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        body = await response.read()
        assert body.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert rows[0][:5] == ["编号", "提交时间", "渠道", "类别", "状态"]
        numbers = [r[0] for r in rows[1:]]
        assert sorted(numbers) == sorted(c.number for k, c in cases.items() if k != "draft")
        by_number = {r[0]: r for r in rows[1:]}
        assert by_number[cases["c3"].number][8] == "李四"  # a supervisor sees the name
        assert by_number[cases["c1"].number][4] == "已结案"
        assert by_number[cases["c1"].number][1] == "2026-11-02 10:00"
        # The audit page lists it.
        audit_page = await page(client, "/desk/audit?kind=exports")
        assert "CSV" in audit_page and "state=all" in audit_page
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile="conduct") as client:
        await sign_in(client, "wang")  # 王五: the complaints c3 (and c5) are about him
        body = await (await client.get("/desk/cases.csv?state=all")).read()
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        by_number = {r[0]: r for r in rows[1:]}
        assert set(by_number) == {cases["c3"].number, cases["c5"].number}
        c3 = by_number[cases["c3"].number]
        assert c3[8] == "***" and c3[9] == "***" and "李四" not in body.decode("utf-8-sig")
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile="conduct") as client:
        await sign_in(client, "h2")  # the handler of c3 sees who complained
        body = await (await client.get("/desk/cases.csv?state=all")).read()
        assert "李四" in body.decode("utf-8-sig")
        assert (await client.get("/desk/cases.csv?state=nonsense")).status == 400
    records = {e.staff_id: e for e in await DeskExport.all()}  # type: ignore[attr-defined]
    assert (records[world.supervisor.id].rows, records[world.supervisor.id].finished) == (7, True)
    assert records[world.supervisor.id].identity_rows == 5  # c1 c2 c3 c4 c7 name or phone
    assert (records[world.target.id].rows, records[world.target.id].identity_rows) == (2, 0)
    assert records[world.h2.id].identity_rows == 1


async def test_xlsx_export_has_date_cells_and_frozen_bold_header(
    db_url: str, tmp_path: Path
) -> None:
    world = await _world()
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile="conduct") as client:
        await sign_in(client, "sup")
        response = await client.get(f"/desk/cases.xlsx?state=all&department={world.d1.id}")
        assert response.status == 200
        book = load_workbook(io.BytesIO(await response.read()))
    sheet = book.active
    assert sheet.freeze_panes == "A2" and all(c.font.b for c in sheet[1])
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.column_dimensions["L"].width == 60  # the facts
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    numbers = {r[0] for r in rows}
    cases = world.cases
    assert numbers == {cases[k].number for k in ("c1", "c2", "c3", "c6")}
    first = next(r for r in rows if r[0] == cases["c1"].number)
    assert first[1] == datetime(2026, 11, 2, 10, 0)
    assert (await DeskExport.get(kind="xlsx")).rows == 4


async def test_export_memory_stays_bounded(db_url: str) -> None:
    """Rows are read and handed on chunk by chunk: peak memory does not grow with the list."""
    world = await seed()
    template = world.cases["c1"]

    async def add(n: int, offset: int) -> None:
        await Complaint.bulk_create(
            [
                Complaint(
                    number=f"bulk-{offset + i:06d}",
                    profile="conduct",
                    channel=Channel.WEB,
                    state=State.ACCEPTED,
                    facts="经办人员拖延不办。" * 20,
                    submitted_at=template.submitted_at,
                    contact_name="张三",
                )
                for i in range(n)
            ]
        )

    async def peak(chunk: int) -> tuple[int, int]:
        audit = await start_export(world.supervisor, "csv", {}, NOW)
        tracemalloc.start()
        rows = 0
        async for part in export_rows(
            world.supervisor, CaseFilter(states=ALL), now=NOW, calendar=CALENDAR,
            tz=SHANGHAI, audit=audit, chunk=chunk,
        ):  # fmt: skip
            rows += len(part)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return rows, top

    await add(600, 0)
    small_rows, small_peak = await peak(100)
    await add(2400, 600)
    large_rows, large_peak = await peak(100)
    assert large_rows == small_rows + 2400
    # Five times the rows, about the same peak (one chunk in memory at a time).
    assert large_peak < small_peak * 2
