"""The desk's casework pages under aiohttp's test client: recording a complaint for someone,
the call-back list and its outcome form, the register and the written reply (HTML and PDF),
for every role, with CSRF."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from PIL import Image

from bot.attachments import read_attachment
from models.actions import Actor, act
from models.entities import (
    Attachment,
    CallbackStatus,
    CallbackTask,
    Channel,
    Complaint,
    Event,
    Staff,
)
from models.workflow import Action, Role, State
from tests.desk_support import (
    MovableNow,
    csrf_in,
    desk_client,
    form_post,
    give_password,
    page,
    sign_in,
)
from tests.images import jpeg
from tests.scheduler_support import Org, clock, local, make_org

NOW = local("2026-11-02T10:00")  # Monday
PROFILE = "gov-window"
FORM = {
    "channel": "phone",
    "screening": "none",
    "category": "service_attitude",
    "category.sub": "rude",
    "target": "department",
    "target.text": "3号窗口",
    "incident_time": "今天 9:30",
    "place": "市民中心 3 楼",
    "facts": "工作人员态度恶劣，拒绝解释材料要求。",
    "request_type": "apology",
    "name": "李四",
    "phone": "13900139000",
    "address": "幸福路 8 号 2 单元 301",
}
ROLES = ("clerk", "handler", "unit_head", "centre_head", "supervisor", "admin")


async def _org() -> Org:
    org = await make_org()
    for login in ROLES:
        await give_password(getattr(org, login), login, now=NOW)
    return org


def _form(**changes: str) -> dict[str, str]:
    from config.profiles import load_profile

    profile = load_profile(PROFILE)
    category = profile.category(FORM["category"])
    sub = category.subcategories[0].id if category.subcategories else ""
    return {**FORM, "category.sub": sub, **changes}


async def _record(client: TestClient, **changes: str) -> Complaint:
    response = await form_post(client, "/desk/record", _form(**changes))
    number = response.headers["Location"].split("recorded=")[1]
    return await Complaint.get(number=number)


async def _signed_in(client: TestClient, login: str) -> None:
    client.session.cookie_jar.clear()
    await sign_in(client, login)


@pytest.mark.parametrize("login", ROLES)
async def test_every_role_records_by_phone_and_sees_its_call_back_list(
    db_url: str, tmp_path: Path, login: str
) -> None:
    org = await _org()
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile=PROFILE) as client:
        await sign_in(client, login)
        html = await page(client, "/desk/record")
        assert "代录投诉" in html and "受理范围" in html and 'name="category.sub"' in html
        complaint = await _record(client)
        assert complaint.channel == Channel.PHONE and complaint.contact_phone == "+8613900139000"
        submit = await Event.get(complaint_id=complaint.id, action="submit")
        assert submit.actor_staff_id == getattr(org, login).id  # type: ignore[attr-defined]
        done = await page(client, f"/desk/record?recorded={complaint.number}")
        assert complaint.number in done
        listed = await page(client, "/desk/callbacks")
        assert "待回电" in listed


async def test_a_recorded_letter_keeps_its_scanned_photo(db_url: str, tmp_path: Path) -> None:
    """A clerk records a letter with its scan attached; the photo is stored with the complaint
    (GPS stripped) and is offered on the case page."""
    await _org()
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile=PROFILE) as client:
        await sign_in(client, "clerk")
        form = FormData()
        form.add_field("csrf", csrf_in(await page(client, "/desk/record")))
        for name, value in _form(channel="letter").items():
            form.add_field(name, value)
        form.add_field(
            "photos", jpeg("letter scan", gps=True), filename="scan.jpg", content_type="image/jpeg"
        )
        response = await client.post("/desk/record", data=form, allow_redirects=False)
        assert response.status == 303, (await response.text())[:2000]
        number = response.headers["Location"].split("recorded=")[1]
        complaint = await Complaint.get(number=number)
        [stored] = await Attachment.filter(complaint_id=complaint.id)
        assert stored.mime_type == "image/jpeg" and stored.file_name == "scan.jpg"
        with Image.open(io.BytesIO(await read_attachment(stored))) as image:
            assert 0x8825 not in image.getexif()  # the GPS IFD
        assert f"/desk/attachments/{stored.id}" in await page(client, f"/desk/cases/{complaint.id}")
        # The phone as people read it (D9), not as stored (+8613900139000).
        await _signed_in(client, "supervisor")
        shown = await page(client, f"/desk/cases/{complaint.id}")
        assert "139 0013 9000" in shown and "+8613900139000" not in shown


async def test_the_form_shows_the_chats_refusals_and_the_screening(
    db_url: str, tmp_path: Path
) -> None:
    await _org()
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile=PROFILE) as client:
        await sign_in(client, "clerk")
        response = await form_post(
            client, "/desk/record", _form(facts="太短", phone="12345"), status=400
        )
        html = await response.text()
        assert "至少 10 个字" in html and "这不像是电话号码" in html
        assert 'value="市民中心 3 楼"' in html  # what was typed stays
        excluded = await form_post(
            client, "/desk/record", {"channel": "visit", "screening": "petition"}, status=200
        )
        text = await excluded.text()
        assert "本次未提交投诉" in text
        assert await Complaint.all().count() == 0
        # No CSRF token: refused before the handler runs.
        raw = await client.post("/desk/record", data=_form(), allow_redirects=False)
        assert raw.status == 403 and await Complaint.all().count() == 0


async def test_signed_out_pages_send_to_sign_in(db_url: str, tmp_path: Path) -> None:
    await _org()
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile=PROFILE) as client:
        for path in ("/desk/record", "/desk/callbacks", "/desk/cases/1/register"):
            response = await client.get(path, allow_redirects=False)
            assert response.status == 303 and "/desk/signin" in response.headers["Location"]


async def test_call_back_outcome_on_the_desk_closes_the_case(db_url: str, tmp_path: Path) -> None:
    from config.profiles import load_profile

    profile = load_profile(PROFILE)
    org = await _org()
    now = MovableNow(NOW)
    async with desk_client(db_url, tmp_path, now, profile=PROFILE) as client:
        await sign_in(client, "clerk")
        complaint = await _record(client)
        clerk = Actor(Role.INTAKE_CLERK, org.clerk)
        at = clock(NOW)
        await act(complaint.id, Action.ACCEPT, clerk, profile=profile, clock=at)
        listed = await page(client, "/desk/callbacks")
        assert "您的投诉" in listed and "已受理" in listed and "李四" in listed
        task = await CallbackTask.get(complaint_id=complaint.id, kind="accept")
        bad = await form_post(
            client, f"/desk/callbacks/{task.id}", {}, csrf_from="/desk/callbacks", status=400
        )
        assert "是否联系上" in await bad.text()
        await form_post(
            client,
            f"/desk/callbacks/{task.id}",
            {"outcome": "reached", "comment": "已告知"},
            csrf_from="/desk/callbacks",
        )
        repeat = await form_post(
            client,
            f"/desk/callbacks/{task.id}",
            {"outcome": "reached"},
            csrf_from="/desk/callbacks",
            status=409,
        )
        assert "已有人登记" in await repeat.text()
        # Handle it to the return visit; the survey call closes it through the survey path.
        await act(
            complaint.id,
            Action.ASSIGN,
            clerk,
            profile=profile,
            clock=at,
            payload={"department_id": org.unit.id, "handler_id": org.handler.id},
        )
        worker = Actor(Role.HANDLER, org.handler)
        await act(complaint.id, Action.ACKNOWLEDGE, worker, profile=profile, clock=at)
        await act(
            complaint.id,
            Action.RESOLVE,
            worker,
            profile=profile,
            clock=at,
            payload={"reply_text": "已对窗口人员批评教育。"},
        )
        await act(complaint.id, Action.NOTIFY_RESULT, worker, profile=profile, clock=at)
        await act(complaint.id, Action.START_REVISIT, Actor(Role.SYSTEM), profile=profile, clock=at)
        survey = await CallbackTask.create(
            idempotency_key="test-survey",
            complaint=complaint,
            kind="survey",
            script="回访",
            created_at=NOW,
            due_at=NOW,
        )
        html = await page(client, "/desk/callbacks")
        assert 'name="result_score"' in html and f"task-{survey.id}" in html
        missing = await form_post(
            client,
            f"/desk/callbacks/{survey.id}",
            {"outcome": "reached"},
            csrf_from="/desk/callbacks",
            status=400,
        )
        assert "两项评分" in await missing.text()
        response = await form_post(
            client,
            f"/desk/callbacks/{survey.id}",
            {"outcome": "reached", "result_score": "9", "attitude_score": "10"},
            csrf_from="/desk/callbacks",
        )
        assert response.headers["Location"].endswith("saved=closed&band=satisfied")
        assert (await Complaint.get(id=complaint.id)).state == State.CLOSED
        done = await page(client, "/desk/callbacks?show=done")
        assert "已联系上" in done
        assert (await CallbackTask.get(id=survey.id)).status == CallbackStatus.DONE


async def test_register_and_letter_pages_and_pdfs_by_role(db_url: str, tmp_path: Path) -> None:
    from config.profiles import load_profile

    profile = load_profile(PROFILE)
    org = await _org()
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile=PROFILE) as client:
        await sign_in(client, "clerk")
        complaint = await _record(client, channel="letter")
        register = await page(client, f"/desk/cases/{complaint.id}/register")
        assert "投诉登记表" in register and "李四" in register and "幸福路" in register
        assert "来信" in register and "clerk" in register
        pdf = await client.get(f"/desk/cases/{complaint.id}/register.pdf")
        body = await pdf.read()
        assert pdf.status == 200 and pdf.content_type == "application/pdf"
        assert body.startswith(b"%PDF")
        await page(client, f"/desk/cases/{complaint.id}/letter", status=409)  # not resolved
        # Not on the handler's desk before it is assigned: not found, nothing shown.
        await _signed_in(client, "handler")
        await page(client, f"/desk/cases/{complaint.id}/register", status=404)
        at = clock(NOW)
        await act(
            complaint.id,
            Action.ACCEPT,
            Actor(Role.INTAKE_CLERK, org.clerk),
            profile=profile,
            clock=at,
        )
        await act(
            complaint.id,
            Action.ASSIGN,
            Actor(Role.INTAKE_CLERK, org.clerk),
            profile=profile,
            clock=at,
            payload={"department_id": org.unit.id, "handler_id": org.handler.id},
        )
        worker = Actor(Role.HANDLER, org.handler)
        await act(complaint.id, Action.ACKNOWLEDGE, worker, profile=profile, clock=at)
        await act(
            complaint.id,
            Action.RESOLVE,
            worker,
            profile=profile,
            clock=at,
            payload={"reply_text": "经核查，已对窗口人员批评教育。"},
        )
        letter = await page(client, f"/desk/cases/{complaint.id}/letter")
        assert "投诉书面答复" in letter and "经核查" in letter and "李四：" in letter
        pdf = await client.get(f"/desk/cases/{complaint.id}/letter.pdf")
        assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF")
        # The unit head is not the lead handler ... but a department head may issue it.
        await _signed_in(client, "unit_head")
        await form_post(
            client,
            f"/desk/cases/{complaint.id}/letter/issue",
            {},
            csrf_from=f"/desk/cases/{complaint.id}/letter",
        )
        issued = await Complaint.get(id=complaint.id)
        assert issued.written_reply_at is not None
        assert await Event.filter(complaint_id=issued.id, action="issue_written_reply").exists()
        # Issued once: the form is gone, the page says when.
        assert "已出具" in await page(client, f"/desk/cases/{complaint.id}/letter")
        # Supervisors and admins see every case; the register audits the identity shown.
        for login in ("supervisor", "admin"):
            await _signed_in(client, login)
            await page(client, f"/desk/cases/{complaint.id}/register")
        views = await Event.filter(complaint_id=complaint.id, action="viewed_identity")
        assert {v.payload["via"] for v in views} >= {"register", "letter"}
        staff = await Staff.get(id=org.supervisor.id)
        assert any(v.actor_staff_id == staff.id for v in views)  # type: ignore[attr-defined]


async def test_csrf_guards_every_casework_post(db_url: str, tmp_path: Path) -> None:
    await _org()
    async with desk_client(db_url, tmp_path, MovableNow(NOW), profile=PROFILE) as client:
        await sign_in(client, "clerk")
        complaint = await _record(client)
        token = csrf_in(await page(client, "/desk/callbacks"))
        for path in (
            "/desk/record",
            "/desk/callbacks/1",
            f"/desk/cases/{complaint.id}/letter/issue",
        ):
            wrong = await client.post(path, data={"csrf": token + "x"}, allow_redirects=False)
            assert wrong.status == 403, path
