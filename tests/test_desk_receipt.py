"""The window's printed receipt: a complaint recorded at the desk gets a fresh access code and a
QR code of its progress link; the code then opens the progress page, an earlier one no longer."""

from __future__ import annotations

import re
from pathlib import Path

from models.entities import Complaint
from models.lookup import ComplaintAccess
from tests.desk_support import MovableNow, desk_client, form_post, page, sign_in
from tests.test_desk_casework import NOW, PROFILE, _form, _org


async def test_a_recorded_complaint_gets_a_printed_receipt_with_a_code_and_qr(
    db_url: str, tmp_path: Path
) -> None:
    await _org()
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile=PROFILE) as client:
        await sign_in(client, "clerk")
        response = await form_post(client, "/desk/record", _form())
        number = response.headers["Location"].split("recorded=")[1]
        complaint = await Complaint.get(number=number)
        done = f"/desk/record?recorded={number}"
        assert f"/desk/cases/{complaint.id}/receipt" in await page(client, done)

        printed = await form_post(
            client, f"/desk/cases/{complaint.id}/receipt", {}, csrf_from=done, status=200
        )
        html = await printed.text()
        assert number in html and "<svg" in html and "查询码" in html
        code = re.search(r"\?k=([A-Z0-9]{8})", html)
        assert code, html
        access = await ComplaintAccess.get(complaint_id=complaint.id)
        assert code.group(1) not in access.code_hash

        client.session.cookie_jar.clear()  # the complainant, not signed in
        opened = await client.get(f"/c/{number}?k={code.group(1)}")
        assert opened.status == 200 and 'id="private"' in await opened.text()

        await sign_in(client, "clerk")
        await form_post(
            client, f"/desk/cases/{complaint.id}/receipt", {}, csrf_from=done, status=200
        )
        stale = await client.get(f"/c/{number}?k={code.group(1)}")
        assert stale.status == 403  # a reprint replaces the code

        refused = await client.post(f"/desk/cases/{complaint.id}/receipt", data={})
        assert refused.status in (400, 403)  # no CSRF token: nothing issued
