"""One case in the browser desk: intake answers, masking, the chat's actions and refusals."""

from __future__ import annotations

import io
from pathlib import Path

from aiohttp import FormData
from PIL import Image

from models.entities import Attachment, Complaint, Event, OutboxMessage, Staff
from models.notifications import VIEWED_IDENTITY
from models.workflow import Role, State
from tests.desk_support import csrf_in, desk_client, form_post, give_password, page, sign_in
from tests.staff_world import ANSWERS, make_world
from tests.staff_world import file_complaint as file_in_chat


def _jpeg() -> bytes:
    """A real (tiny) JPEG: stored files are typed by their content."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


JPEG = _jpeg()
PROPERTY_ANSWERS = {**ANSWERS, "place_text": "3栋2单元", "witnesses": "邻居李四"}


async def act_form(client, case_id: int, action: str, status: int = 303, **fields: str):
    html = await page(client, f"/desk/cases/{case_id}")
    version = html.split('name="version" value="')[1].split('"')[0]
    data = [("action", action), ("version", version), *fields.items()]
    return await form_post(
        client, f"/desk/cases/{case_id}/act", data, csrf_from=f"/desk/cases/{case_id}",
        status=status,
    )  # fmt: skip


async def test_the_case_from_acceptance_to_the_reply_on_the_desk(
    db_url: str, tmp_path: Path
) -> None:
    world = await make_world()
    complaint = await file_in_chat(world, answers=PROPERTY_ANSWERS)
    for staff, login in ((world.clerk, "clerk"), (world.handler, "wang")):
        await give_password(staff, login)
    async with desk_client(db_url, tmp_path) as clerk, desk_client(db_url, tmp_path) as handler:
        await sign_in(clerk, "clerk")
        html = await page(clerk, f"/desk/cases/{complaint.id}")
        # Every intake answer, the complainant unmasked for the intake desk (and audited).
        for shown in ("3栋2单元", "邻居李四", "赔礼道歉", "张三", "138 1234 5678", "Telegram"):
            assert shown in html, shown
        audits = await Event.filter(complaint_id=complaint.id, action=VIEWED_IDENTITY)
        assert any(
            a.payload["via"] == "desk_case_page" and a.actor_staff_id == world.clerk.id  # type: ignore[attr-defined]
            for a in audits
        )
        # Acceptance asks the severity, as the chat does; without it the form is refused.
        response = await act_form(clerk, complaint.id, "accept", status=400)
        assert "请填写“严重程度”" in await response.text()
        await act_form(clerk, complaint.id, "accept", severity="ordinary")
        assert (await Complaint.get(id=complaint.id)).state == State.ACCEPTED
        # A form from before the acceptance is refused with the stale button's reason.
        stale = [("action", "accept"), ("version", "1"), ("severity", "ordinary")]
        response = await form_post(
            clerk, f"/desk/cases/{complaint.id}/act", stale,
            csrf_from=f"/desk/cases/{complaint.id}", status=409,
        )  # fmt: skip
        assert "此按钮已过期" in await response.text()
        # A handler from another department is refused by the form check.
        response = await act_form(
            clerk, complaint.id, "assign", status=400,
            department_id=str(world.tax.id), handler_id=str(world.handler.id),
        )  # fmt: skip
        assert "承办人必须属于所选部门" in await response.text()
        response = await act_form(
            clerk, complaint.id, "assign",
            department_id=str(world.registry.id), handler_id=str(world.handler.id),
            co_department_ids=str(world.tax.id),
        )  # fmt: skip
        assert response.headers["Location"].endswith("?done=assign")
        case = await Complaint.get(id=complaint.id).prefetch_related("co_departments")
        assert case.state == State.ASSIGNED and case.handler_id == world.handler.id
        assert [d.id for d in case.co_departments] == [world.tax.id]
        # The handler: acknowledge, ask for material is possible, resolve with a photo.
        await sign_in(handler, "wang")
        await act_form(handler, complaint.id, "acknowledge")
        html = await page(handler, f"/desk/cases/{complaint.id}")
        token = csrf_in(html)
        version = html.split('name="version" value="')[1].split('"')[0]
        form = FormData()
        for name, value in (
            ("csrf", token), ("action", "resolve"), ("version", version),
            ("reply_text", "已安排维修，漏水已处理。"),
        ):  # fmt: skip
            form.add_field(name, value)
        form.add_field("files", JPEG, filename="fixed.jpg", content_type="image/jpeg")
        response = await handler.post(
            f"/desk/cases/{complaint.id}/act", data=form, allow_redirects=False
        )
        assert response.status == 303, await response.text()
        case = await Complaint.get(id=complaint.id)
        assert case.state == State.REPLIED and case.reply_text == "已安排维修，漏水已处理。"
        [photo] = await Attachment.filter(complaint_id=complaint.id)
        html = await page(handler, f"/desk/cases/{complaint.id}")
        assert f"/desk/attachments/{photo.id}?inline=1" in html and "已安排维修" in html
        download = await handler.get(f"/desk/attachments/{photo.id}")
        assert download.status == 200 and await download.read() == JPEG
        assert "attachment;" in download.headers["Content-Disposition"]
        # The complainant heard of each step in their chat, through the outbox.
        told = await OutboxMessage.filter(chat_id="42").count()
        assert told >= 3


async def test_the_target_sees_the_case_masked_and_not_the_files(
    db_url: str, tmp_path: Path
) -> None:
    world = await make_world()
    complaint = await file_in_chat(world, answers=PROPERTY_ANSWERS)
    await Complaint.filter(id=complaint.id).update(target_staff_id=world.handler.id)
    await Attachment.create(
        complaint=complaint, channel="telegram", sha256="0" * 64,
        stored_path=str(tmp_path / "x.jpg"), mime_type="image/jpeg",
    )  # fmt: skip
    (tmp_path / "x.jpg").write_bytes(JPEG)
    await give_password(world.handler, "wang")
    outsider = await Staff.create(name="Tax Handler", role=Role.HANDLER, department=world.tax)
    await give_password(outsider, "zhao")
    async with desk_client(db_url, tmp_path) as client:
        await sign_in(client, "wang")
        html = await page(client, f"/desk/cases/{complaint.id}")
        assert "张三" not in html and "13812345678" not in html and "***" in html
        assert "3栋2单元" in html  # the target still reads the facts of the case
        viewed = Event.filter(action=VIEWED_IDENTITY, actor_staff_id=world.handler.id)
        assert not await viewed.exists()
    async with desk_client(db_url, tmp_path) as client:
        await sign_in(client, "zhao")  # a handler of another department: no facts, no files
        html = await page(client, f"/desk/cases/{complaint.id}")
        assert "3栋2单元" not in html and "楼道" not in html
        [attachment] = await Attachment.all()
        await page(client, f"/desk/attachments/{attachment.id}", status=404)
        await page(client, "/desk/cases/99999", status=404)
        await page(client, "/desk/cases/abc", status=404)


async def test_refusal_material_extension_and_its_approval_on_the_desk(
    db_url: str, tmp_path: Path
) -> None:
    world = await make_world()
    refused = await file_in_chat(world, answers=PROPERTY_ANSWERS)
    complaint = await file_in_chat(world, answers=PROPERTY_ANSWERS)
    for staff, login in ((world.clerk, "clerk"), (world.handler, "wang"), (world.head, "li")):
        await give_password(staff, login)
    exclusion = world.profile.exclusions[0].id
    async with desk_client(db_url, tmp_path) as clerk:
        await sign_in(clerk, "clerk")
        await act_form(clerk, refused.id, "refuse", exclusion=exclusion)
        assert (await Complaint.get(id=refused.id)).state == State.REFUSED
        response = await act_form(clerk, complaint.id, "refuse", status=400)  # no reason
        assert "请填写“理由”" in await response.text()
        await act_form(clerk, complaint.id, "accept", severity="ordinary")
        await act_form(
            clerk, complaint.id, "assign",
            department_id=str(world.registry.id), handler_id=str(world.handler.id),
        )  # fmt: skip
    async with desk_client(db_url, tmp_path) as handler, desk_client(db_url, tmp_path) as head:
        await sign_in(handler, "wang")
        await act_form(handler, complaint.id, "acknowledge")
        await act_form(handler, complaint.id, "request_material", question="请提供维修单照片。")
        assert (await Complaint.get(id=complaint.id)).state == State.WAITING_FOR_COMPLAINANT
        await act_form(handler, complaint.id, "resume")
        response = await act_form(
            handler, complaint.id, "request_extension", status=400, amount="99", reason="r"
        )
        assert "超出允许范围" in await response.text()
        await act_form(
            handler, complaint.id, "request_extension", amount="3", reason="需要厂家配件。"
        )
        await sign_in(head, "li")
        html = await page(head, f"/desk/cases/{complaint.id}")
        assert "需要厂家配件" in html and "批准延期" in html
        before = (await Complaint.get(id=complaint.id)).next_due_at
        await act_form(head, complaint.id, "approve_extension")
        case = await Complaint.get(id=complaint.id)
        assert case.extensions_used == 1 and case.extension_pending is None
        assert case.next_due_at is not None and before is not None and case.next_due_at > before
        html = await page(handler, f"/desk/cases/{complaint.id}")
        assert "请提供维修单照片" in html and "需要厂家配件" in html  # on the timeline
