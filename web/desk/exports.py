"""The case list as a file: /desk/cases.csv and /desk/cases.xlsx take the list's own query
string (web/desk/cases.py filters) and stream every matching case.

Streaming: rows come from the database in chunks (models.caselist.iter_cases, keyset by id);
the CSV goes out chunk by chunk (UTF-8 with a BOM, so Excel reads Chinese); the XLSX is built
by openpyxl in write-only mode in a temporary file (in a worker thread) and then sent in
pieces. Neither holds the whole list in memory. Masking and the audit row are
models.exports'.
"""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet

from handlers.i18n import N_
from handlers.staff import channel_label, stage_label, state_label
from models.exports import columns_for, export_rows, start_export
from scheduler.reports import XLSX_MIME
from web.desk.cases import category_label, parse_filter
from web.desk.core import PREFIX, Desk, Me, desk_of, signed_in
from web.desk.i18n import desk_gettext

CSV_MIME = "text/csv"
SEND_PIECE = 256 * 1024
HEADERS = {
    "number": N_("Number"),
    "submitted_at": N_("Filed at"),
    "channel": N_("Channel"),
    "category": N_("Category"),
    "state": N_("State"),
    "department": N_("Department"),
    "handler": N_("Handler"),
    "target": N_("About whom"),
    "complainant_name": N_("Complainant"),
    "complainant_phone": N_("Phone"),
    "place": N_("Place"),
    "facts": N_("What happened"),
    "next_due_stage": N_("Next deadline stage"),
    "next_due_at": N_("Next deadline"),
    "resolved_at": N_("Resolved"),
    "closed_at": N_("Closed"),
    "recall_decision": N_("Product recall"),
    "recall_reason": N_("Reason for the recall decision"),
}
RECALL_WORDS = {True: N_("Recall started"), False: N_("No recall")}
WIDTHS = {"number": 14, "facts": 60, "target": 24, "place": 24, "complainant_phone": 16}
DATE_COLUMNS = ("submitted_at", "next_due_at", "resolved_at", "closed_at")
LABELLED = frozenset({"state", "channel", "category", "next_due_stage"})


def _labeller(desk: Desk, lang: str, tz: ZoneInfo, *, text_dates: bool) -> Callable[..., list]:
    """Raw keys to words, instants to local time (text for CSV, date cells for XLSX)."""

    def local(value: datetime | None) -> Any:
        if value is None:
            return ""
        shown = value.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
        return shown.strftime("%Y-%m-%d %H:%M") if text_dates else shown

    columns = columns_for(desk.profile)
    gettext = desk_gettext(lang)
    labels: dict[tuple[str, Any], str] = {}  # a few states, channels, categories: look up once

    def label(column: str, value: Any) -> str:
        key = (column, value)
        if key not in labels:
            if column == "state":
                labels[key] = state_label(value, lang)
            elif column == "channel":
                labels[key] = channel_label(value, lang)
            elif column == "category":
                labels[key] = category_label(desk, value, lang)
            else:
                labels[key] = stage_label(value, lang) if value else ""
        return labels[key]

    def row(values: dict[str, Any]) -> list[Any]:
        out = []
        for column in columns:
            value = values[column]
            if column == "recall_decision" and value is not None:
                value = gettext(RECALL_WORDS[bool(value)])
            elif column in DATE_COLUMNS:
                value = local(value)
            elif column in LABELLED:
                value = label(column, value)
            out.append("" if value is None else value)
        return out

    return row


def _file_name(me: Me, desk: Desk, extension: str) -> str:
    return f"cases-{desk.now().astimezone(desk.settings.tz):%Y%m%d-%H%M}.{extension}"


async def _begin(request: web.Request, me: Me, kind: str) -> tuple[Any, Any, Any]:
    desk = desk_of(request)
    parsed = parse_filter(request.query, desk)
    if parsed.problems:
        raise web.HTTPBadRequest(text="filters not understood: " + ", ".join(parsed.problems))
    clock = desk.clock()
    audit = await start_export(me.staff, kind, parsed.values, clock.now)
    rows = export_rows(
        me.staff, parsed.filter, now=clock.now, calendar=clock.calendar, tz=clock.tz, audit=audit
    )
    return desk, clock, rows


@signed_in()
async def export_csv(request: web.Request, me: Me) -> web.StreamResponse:
    desk, clock, chunks = await _begin(request, me, "csv")
    label = _labeller(desk, me.lang, clock.tz, text_dates=True)
    response = web.StreamResponse(
        headers={
            "Content-Type": f"{CSV_MIME}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{_file_name(me, desk, "csv")}"',
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([me.gettext(HEADERS[c]) for c in columns_for(desk.profile)])
    await response.write(("\ufeff" + buffer.getvalue()).encode("utf-8"))
    async for rows in chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(label(row) for row in rows)
        await response.write(buffer.getvalue().encode("utf-8"))
    await response.write_eof()
    return response


def _xlsx_sheet(book: Workbook, me: Me, columns: tuple[str, ...]) -> WriteOnlyWorksheet:
    sheet = book.create_sheet(me.gettext("Cases")[:31])
    for index, column in enumerate(columns):
        letter = chr(ord("A") + index)
        sheet.column_dimensions[letter].width = WIDTHS.get(
            column, 18 if column in DATE_COLUMNS else 14
        )
    sheet.freeze_panes = "A2"
    sheet.print_title_rows = "1:1"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=me.gettext(HEADERS[column]))
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    return sheet


def _append_rows(
    sheet: WriteOnlyWorksheet, columns: tuple[str, ...], rows: list[list[Any]]
) -> None:
    for values in rows:
        cells = []
        for column, value in zip(columns, values, strict=True):
            if column in DATE_COLUMNS and isinstance(value, datetime):
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = "yyyy-mm-dd hh:mm"
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)


@signed_in()
async def export_xlsx(request: web.Request, me: Me) -> web.StreamResponse:
    desk, clock, chunks = await _begin(request, me, "xlsx")
    label = _labeller(desk, me.lang, clock.tz, text_dates=False)
    # Headers first: a large list takes a while to build, and the browser shows a download
    # in progress (instead of a page that seems to hang) while it is.
    response = web.StreamResponse(
        headers={
            "Content-Type": XLSX_MIME,
            "Content-Disposition": f'attachment; filename="{_file_name(me, desk, "xlsx")}"',
        }
    )
    await response.prepare(request)
    book = Workbook(write_only=True)
    columns = columns_for(desk.profile)
    sheet = _xlsx_sheet(book, me, columns)
    with tempfile.TemporaryFile() as spool:
        async for rows in chunks:
            await asyncio.to_thread(_append_rows, sheet, columns, [label(r) for r in rows])
        await asyncio.to_thread(book.save, spool)
        spool.seek(0)
        while piece := await asyncio.to_thread(spool.read, SEND_PIECE):
            await response.write(piece)
    await response.write_eof()
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PREFIX + "/cases.csv", export_csv)
    router.add_get(PREFIX + "/cases.xlsx", export_xlsx)
