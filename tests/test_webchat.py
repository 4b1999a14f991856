"""The web chat over real HTTP (aiohttp's test server), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.attachments import read_attachment
from config.settings import Settings
from handlers.messages import Outgoing
from models.entities import (
    Attachment,
    Channel,
    Complaint,
    DialogSession,
    Event,
    OutboxMessage,
    OutboxStatus,
    ProcessedUpdate,
)
from models.outbox import enqueue
from models.workflow import State
from tests.images import jpeg
from tests.intake_script import GOV_WINDOW_FILING, PHOTOS_STEP

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai
LATER = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
SESSION = "0b9f3a52-5a43-4c1e-9d7e-3f1f2c8a9b10"
JPEG = jpeg("photo")
_ids = itertools.count(1)


def settings_for(db_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(database_url=db_url, data_dir=tmp_path / "data", **extra)


@asynccontextmanager
async def webchat(
    db_url: str, tmp_path: Path, *, manage_db: bool = False, **extra: Any
) -> AsyncIterator[TestClient]:
    app = create_app(settings_for(db_url, tmp_path, **extra), now=lambda: NOW, manage_db=manage_db)
    async with TestClient(TestServer(app)) as client:
        yield client


async def post(
    client: TestClient, status: int = 200, session_id: str = SESSION, **body: Any
) -> dict[str, Any]:
    body.setdefault("message_id", f"msg-{next(_ids)}")
    response = await client.post("/webchat/api/message", json={"session_id": session_id, **body})
    data = await response.json()
    assert response.status == status, data
    return data


def said(data: dict[str, Any]) -> str:
    return "\n".join(m["text"] for m in data["messages"])


async def send_step(client: TestClient, kind: str, value: str) -> dict[str, Any]:
    if kind == "command":
        return await post(client, text=f"/{value}")
    if kind == "choice":
        return await post(client, choice=value)
    return await post(client, text=value)


async def upload(
    client: TestClient,
    data: bytes = JPEG,
    *,
    session_id: str | None = SESSION,
    status: int = 200,
    name: str = "door.jpg",
    mime: str = "image/jpeg",
) -> dict[str, Any]:
    form = FormData()
    if session_id is not None:
        form.add_field("session_id", session_id)
    form.add_field("message_id", f"upload-{next(_ids)}")
    form.add_field("file", data, filename=name, content_type=mime)
    response = await client.post("/webchat/api/upload", data=form)
    body = await response.json()
    assert response.status == status, body
    return body


async def dialog_step() -> str | None:
    row = await DialogSession.get(channel=Channel.WEB, external_id=SESSION)
    return row.state.get("step")


async def test_a_complete_filing_through_the_web_chat(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path) as client:
        hello = await client.post("/webchat/api/hello", json={"session_id": SESSION})
        menu = (await hello.json())["messages"][0]
        assert {"id": "menu:new", "label": "我要投诉"} in menu["choices"]
        data: dict[str, Any] = {}
        for kind, value in GOV_WINDOW_FILING:
            data = await send_step(client, kind, value)
            assert data["messages"], (kind, value)
            for message in data["messages"]:
                assert set(message) >= {"text", "choices", "ask"}
                assert all(set(c) == {"id", "label"} for c in message["choices"])
    complaint = await Complaint.get(channel=Channel.WEB)
    assert f"您的投诉已提交。\n\n投诉编号：\n{complaint.number}\n" in said(data)
    # Received Wednesday 25 November: the acceptance answer is due by Monday 30 November.
    assert "我们将在3个工作日内（11月30日前）告知您是否受理" in said(data)
    assert complaint.state == State.SUBMITTED
    assert complaint.deadlines["acceptance"]["due"] == complaint.next_due_at.isoformat()
    assert complaint.next_due_stage == "acceptance"
    assert complaint.complainant_id is not None  # type: ignore[attr-defined]


async def test_the_photos_step_asks_for_a_photo_and_an_upload_is_kept(
    db_url: str, tmp_path: Path
) -> None:
    async with webchat(db_url, tmp_path) as client:
        for kind, value in GOV_WINDOW_FILING[:PHOTOS_STEP]:
            data = await send_step(client, kind, value)
        assert data["messages"][-1]["ask"] == "photo"
        answer = await upload(client)
        assert said(answer).startswith("已收到 1 张照片")
        assert answer["messages"][-1]["ask"] == "photo"
        for kind, value in GOV_WINDOW_FILING[PHOTOS_STEP:]:
            data = await send_step(client, kind, value)
    complaint = await Complaint.get(channel=Channel.WEB)
    attachment = await Attachment.get(complaint=complaint)
    assert attachment.size == len(JPEG) and attachment.mime_type == "image/jpeg"
    assert await read_attachment(attachment) == JPEG
    assert attachment.stored_path.startswith("db:")  # the default storage: the database


async def test_a_photo_over_the_limit_is_explained_and_not_stored(
    db_url: str, tmp_path: Path
) -> None:
    async with webchat(db_url, tmp_path, max_photo_mb=0.01) as client:
        for kind, value in GOV_WINDOW_FILING[:PHOTOS_STEP]:
            await send_step(client, kind, value)
        answer = await upload(client, b"\xff\xd8" + b"x" * 30_000)
        assert "MB" in said(answer)
        assert await dialog_step() == "photos"
        # Far over the limit the upload is cut off without reading it all.
        cut = await upload(client, b"x" * 200_000, status=413)
        assert cut["error"] == "too_large"
    assert await Attachment.all().count() == 0
    assert not (tmp_path / "data").exists()


async def test_a_duplicate_message_id_is_processed_once(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path) as client:
        first = await post(client, text="/start", message_id="retry-1")
        await post(client, choice="screen:none", message_id="retry-2")
        again = await post(client, choice="screen:none", message_id="retry-2")
        assert first["messages"] and again["messages"] == []
        assert await dialog_step() == "category"
    assert await ProcessedUpdate.filter(channel=Channel.WEB).count() == 2


async def test_restart_mid_dialog_resumes_at_the_same_step(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path) as client:
        for kind, value in GOV_WINDOW_FILING[:6]:
            before = await send_step(client, kind, value)
    question = before["messages"][-1]["text"]
    async with webchat(db_url, tmp_path) as client:  # a new application on the same database
        repeated = await post(client, text="/help")
        assert question in said(repeated)
        for kind, value in GOV_WINDOW_FILING[6:]:
            data = await send_step(client, kind, value)
    complaint = await Complaint.get(channel=Channel.WEB)
    assert complaint.number in said(data)
    assert complaint.target_text == "3号窗口 工号1024"


async def test_a_process_restart_on_sqlite_resumes(tmp_path: Path) -> None:
    """The application opening and closing the database itself, twice on the same file."""
    url = f"sqlite://{tmp_path / 'restart.sqlite3'}"
    async with webchat(url, tmp_path, manage_db=True) as client:
        health = await client.get("/healthz")
        assert health.status == 200 and (await health.json())["status"] == "ok"
        for kind, value in GOV_WINDOW_FILING[:4]:
            await send_step(client, kind, value)
    async with webchat(url, tmp_path, manage_db=True) as client:
        data = await post(client, choice="opt:staff")
        assert said(data).startswith("(2/13) 工作人员的姓名")
        for kind, value in GOV_WINDOW_FILING[5:]:
            data = await send_step(client, kind, value)
        number = (await Complaint.get(channel=Channel.WEB)).number
        assert number in said(data)


async def test_bad_requests_get_a_clear_error_and_lose_nothing(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path) as client:
        for kind, value in GOV_WINDOW_FILING[:8]:
            await send_step(client, kind, value)
        step = await dialog_step()
        assert step == "facts"
        api = "/webchat/api/message"
        cases: list[tuple[Any, int, str]] = [
            (b"not json", 400, "invalid_json"),
            (b"[1, 2]", 400, "invalid_body"),
            (b'{"text": "hi"}', 400, "missing_session_id"),
            (b'{"session_id": "../../etc", "text": "hi"}', 400, "invalid_session_id"),
            (b'{"session_id": "%s"}' % SESSION.encode(), 400, "invalid_body"),
            (b'{"session_id": "%s", "text": "a", "choice": "b"}' % SESSION.encode(), 400, ""),
            (b'{"session_id": "%s", "text": 5}' % SESSION.encode(), 400, "invalid_text"),
            (b'{"session_id": "%s", "text": "  "}' % SESSION.encode(), 400, "empty_text"),
            (b'{"session_id": "%s", "text": "%s"}' % (SESSION.encode(), b"x" * 70_000), 413, ""),
        ]
        for body, status, code in cases:
            response = await client.post(api, data=body)
            error = await response.json()
            assert response.status == status, (body[:60], error)
            assert error["detail"], error
            if code:
                assert error["error"] == code
        missing = await upload(client, session_id=None, status=400)
        assert missing["error"] == "missing_session_id"
        not_multipart = await client.post("/webchat/api/upload", json={"session_id": SESSION})
        assert not_multipart.status == 400
        assert await dialog_step() == step
        # A 10 000-character text is the dialog's to refuse, in its own words, at the same step.
        long = await post(client, text="长" * 10_000)
        assert "10000" in said(long) and "2000" in said(long)
        assert await dialog_step() == step
        # And the dialog continues from there with everything answered before.
        await send_step(client, *GOV_WINDOW_FILING[8])
        assert await dialog_step() == "request_type"
        row = await DialogSession.get(channel=Channel.WEB, external_id=SESSION)
        assert row.state["answers"]["place_text"] == "市民中心二楼"


async def test_status_after_filing_shows_the_complaint(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path) as client:
        for kind, value in GOV_WINDOW_FILING:
            await send_step(client, kind, value)
        number = (await Complaint.get(channel=Channel.WEB)).number
        status = await post(client, text="/status")
        assert number in said(status) and "已提交" in said(status)
        choice_ids = [c["id"] for c in status["messages"][-1]["choices"]]
        assert f"complaint:{number}" in choice_ids
        detail = await post(client, choice=f"complaint:{number}")
        assert "办理记录" in said(detail)
        # Someone else's browser sees nothing of it.
        other = await post(client, session_id="another-session-1", text="/status")
        assert number not in said(other)


async def test_withdraw_through_the_web_chat(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path) as client:
        for kind, value in GOV_WINDOW_FILING:
            await send_step(client, kind, value)
        complaint = await Complaint.get(channel=Channel.WEB)
        await post(client, text="/withdraw")
        confirm = await post(client, choice=f"complaint:{complaint.number}")
        assert "withdraw:yes" in [c["id"] for c in confirm["messages"][-1]["choices"]]
        done = await post(client, choice="withdraw:yes")
        assert complaint.number in said(done)
    await complaint.refresh_from_db()
    assert complaint.state == State.WITHDRAWN
    assert await Event.filter(complaint=complaint, action="withdraw").count() == 1


async def test_language_switch_and_location(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path) as client:
        await post(client, text="/lang")
        english = await post(client, choice="lang:en")
        assert "English" in said(english)
        hello = await client.post("/webchat/api/hello", json={"session_id": SESSION})
        assert (await hello.json())["messages"][0]["choices"][0]["label"] == "File a complaint"
        for kind, value in GOV_WINDOW_FILING[:7]:
            await send_step(client, kind, value)
        assert await dialog_step() == "place"
        bad = await post(client, status=400, location={"latitude": 123, "longitude": 0})
        assert bad["error"] == "invalid_location"
        await post(client, location={"latitude": 31.2304, "longitude": 121.4737})
        assert await dialog_step() == "facts"


async def test_page_redirect_health_and_static_files(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path) as client:
        root = await client.get("/", allow_redirects=False)
        assert root.status == 302 and root.headers["Location"] == "/webchat"
        page = await client.get("/webchat")
        html = await page.text()
        assert page.status == 200 and 'lang="zh-CN"' in html
        assert "width=device-width" in html and "/webchat/static/webchat.js" in html
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        script = await client.get("/webchat/static/webchat.js")
        source = await script.text()
        assert script.status == 200 and "/webchat/api/message" in source
        assert "crypto.randomUUID" in source and "localStorage" in source
        assert (await client.get("/webchat/static/webchat.css")).status == 200
        health = await client.get("/healthz")
        assert health.status == 200 and await health.json() == {"status": "ok"}


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is needed to run the page")
async def test_the_page_script_drives_the_api(db_url: str, tmp_path: Path) -> None:
    """webchat.js in Node with a stand-in DOM, against this server (tests/webchat_page_check.js)."""
    check = Path(__file__).parent / "webchat_page_check.js"
    async with webchat(db_url, tmp_path) as client:
        base = str(client.make_url("")).rstrip("/")
        node = await asyncio.create_subprocess_exec(
            "node", str(check), base, stdout=PIPE, stderr=STDOUT
        )
        output, _ = await node.communicate()
    assert node.returncode == 0, output.decode()
    assert output.decode().strip().endswith("ok")
    # One dialog: the first session's (the greeting of the new chat touches no dialog).
    assert await DialogSession.filter(channel=Channel.WEB).count() == 1


async def test_notifications_for_the_browser_are_handed_over_once(
    db_url: str, tmp_path: Path
) -> None:
    async with webchat(db_url, tmp_path) as client:
        for kind, value in GOV_WINDOW_FILING:
            await send_step(client, kind, value)
        complaint = await Complaint.get(channel=Channel.WEB)
        accepted = Outgoing(f"您的投诉 {complaint.number} 已受理。")
        later = Outgoing("明天再发的提醒")
        for key, message, when in (("accepted", accepted, NOW), ("later", later, LATER)):
            await enqueue(
                channel=Channel.WEB,
                chat_id=SESSION,
                message=message,
                idempotency_key=f"test:{key}",
                now=when,
                complaint=complaint,
            )
        other = await client.post("/webchat/api/updates", json={"session_id": "someone-else-1"})
        assert (await other.json())["messages"] == []
        hello = await client.post("/webchat/api/hello", json={"session_id": SESSION})
        texts = [m["text"] for m in (await hello.json())["messages"]]
        assert texts == [accepted.text, "请问您要办理什么？"]
        again = await client.post("/webchat/api/updates", json={"session_id": SESSION})
        assert (await again.json())["messages"] == []  # handed over once; "later" not yet due
        bad = await client.post("/webchat/api/updates", json={})
        assert bad.status == 400
    row = await OutboxMessage.get(idempotency_key="test:accepted")
    assert row.status == OutboxStatus.SENT and row.sent_at == NOW
    assert (await OutboxMessage.get(idempotency_key="test:later")).status == OutboxStatus.PENDING


async def test_a_body_arriving_in_pieces_is_read_whole(db_url: str, tmp_path: Path) -> None:
    body = json.dumps({"session_id": SESSION, "text": "/start"}).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]
            await asyncio.sleep(0)

    async with webchat(db_url, tmp_path) as client:
        response = await client.post(
            "/webchat/api/message", data=pieces(), headers={"Content-Type": "application/json"}
        )
        assert response.status == 200, await response.text()
        assert "screen:none" in [c["id"] for c in (await response.json())["messages"][0]["choices"]]
