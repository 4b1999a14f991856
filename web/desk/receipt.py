"""The window's printed receipt: the number, a fresh access code and a QR code of the progress
link, for a complaint recorded at the desk (by phone, at the window, by letter).

Printing issues a new code (models.lookup.issue_code; only its hash is kept, so an earlier
receipt's code stops working). Who may print is who may record (models.callbacks.may_record);
the page renders, it decides nothing.
"""

from __future__ import annotations

from aiohttp import web
from tortoise.transactions import in_transaction

from handlers import lookup as lookup_texts
from handlers.i18n import N_, pick_label
from models.callbacks import may_record
from models.entities import Complaint
from models.lookup import display_code, issue_code, stages_of
from web.desk.core import PREFIX, Me, desk_of, error_page, render, signed_in
from web.public import qr_svg


@signed_in(allowed=may_record)
async def receipt_post(request: web.Request, me: Me) -> web.StreamResponse:
    desk = desk_of(request)
    complaint_id = int(request.match_info["complaint_id"])
    async with in_transaction() as conn:
        complaint = await Complaint.filter(id=complaint_id).using_db(conn).first()
        if complaint is None or complaint.submitted_at is None:
            return error_page(request, 404, N_("There is no such case."), me=me)
        code = await issue_code(complaint, desk.clock().now, conn)
    base = (desk.settings.public_url or f"{request.scheme}://{request.host}").rstrip("/")
    link = base + lookup_texts.progress_path(complaint.number, code)
    return render(
        request,
        me,
        "receipt.html",
        {
            "c": complaint,
            "organisation": pick_label(desk.profile.name, me.lang),
            "code": display_code(code),
            "link": link,
            "qr": qr_svg(link),
            "stages": lookup_texts.stage_lines(stages_of(complaint), me.lang, desk.settings.tz),
            "privacy": base + "/privacy",
        },
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(PREFIX + r"/cases/{complaint_id:\d+}/receipt", receipt_post)
