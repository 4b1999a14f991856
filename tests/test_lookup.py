"""Finding a complaint again: the access code on the receipt, /find in the chat, the progress page
/c/<number> (nothing personal before the check), the web chat's "my complaints", the rate
limits, server-sent events and the privacy page. Engine tests, then HTTP on SQLite/PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

from handlers.lookup import FindComplaint
from handlers.messages import Outgoing
from models.entities import Channel, Complaint
from models.lookup import (
    CODE_ALPHABET,
    ComplaintAccess,
    Limits,
    LookupAttempt,
    display_code,
    history_of,
    limit_reached,
    mask_phone,
    new_code,
    normalise_code,
    public_stages,
)
from models.numbering import normalise_number
from models.outbox import enqueue
from models.workflow import Role
from tests.dialog_chat import Chat
from tests.intake_script import GOV_WINDOW_FILING
from tests.test_webchat import post, said, send_step, webchat
from tests.waiting import eventually

PHONE_TYPED = "138 1234 5678"  # what GOV_WINDOW_FILING gives
NAME = "李雷"
FACTS = "态度恶劣"
OTHER = "other-device-0000-0001"

# ---------------------------------------------------------------- pure


def test_codes_are_typed_forgivingly_and_never_use_lookalike_letters() -> None:
    code = new_code()
    assert len(code) == 8 and set(code) <= set(CODE_ALPHABET)
    assert not set(code) & set("01OIL")
    assert normalise_code(display_code(code).lower()) == code
    assert normalise_code(" k7qm - 2xpa ") == "K7QM2XPA"
    assert normalise_code("K7QM2XP") is None  # too short
    assert normalise_code("K7QM2XP0") is None  # 0 is not in the alphabet
    assert normalise_number(" 202612－0001 ") == "202612-0001"
    assert normalise_number("2026120001") is None


def test_the_limits_count_every_check_per_address_and_failures_per_number() -> None:
    limits = Limits(per_address=3, per_number=2, window=timedelta(minutes=15))
    assert not limit_reached(limits, 2, 1)
    assert limit_reached(limits, 3, 0)
    assert limit_reached(limits, 0, 2)


def test_the_history_shows_state_changes_and_own_steps_not_staff_notes() -> None:
    at = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    rows = [
        (at, "submit", "draft", "submitted", Role.COMPLAINANT),
        (at, "add_note", "submitted", "submitted", Role.HANDLER),
        (at, "accept", "submitted", "accepted", Role.INTAKE_CLERK),
        (at, "supplement", "accepted", "accepted", Role.COMPLAINANT),
    ]
    history = history_of(rows)
    assert [h.action for h in history] == ["submit", "accept", "supplement"]
    assert history[-1].by_complainant


def test_phones_are_masked_and_only_owed_stages_are_public() -> None:
    assert mask_phone("+8613812345678") == "138****5678"
    assert mask_phone(None) is None
    stages = public_stages(
        {
            "acceptance": {"due": "2026-11-30T15:59:00+00:00", "done": True},
            "dispatch": {"due": "2026-11-25T02:05:00+00:00"},
            "resolution": {"due": "2026-12-16T15:59:00+00:00", "provisional": True},
        }
    )
    assert [s.stage for s in stages] == ["acceptance", "resolution"]


def test_find_asks_for_the_number_then_the_phone_or_the_code() -> None:
    chat = Chat()
    chat.command("find")
    assert "202612-0001" in chat.said
    chat.text("不是编号")
    assert "202612-0001" in chat.said and chat.where[0] == "find"
    chat.text("202611-0007")
    assert "202611-0007" in chat.said
    chat.text("hello")  # neither a phone nor a code
    assert chat.where == ("find", "proof")
    chat.text("138 1234 5678")
    assert chat.commands[-1] == FindComplaint("202611-0007", "+8613812345678", None)
    assert chat.where[0] == "idle"


def test_find_in_one_go_with_a_code_and_by_the_word_查询() -> None:
    chat = Chat()
    chat.command("find", "202611-0007 k7qm-2xpa")
    assert chat.commands[-1] == FindComplaint("202611-0007", None, "K7QM2XPA")
    chat = Chat()
    chat.command("start")
    chat.command("cancel")
    chat.text("查询")
    assert chat.where == ("find", "number")


# ---------------------------------------------------------------- over HTTP


async def file_complaint(client: TestClient) -> tuple[Complaint, str, str]:
    """File the scripted complaint; (complaint, access code, the receipt's text)."""
    data: dict[str, Any] = {}
    for kind, value in GOV_WINDOW_FILING:
        data = await send_step(client, kind, value)
    text = said(data)
    complaint = await Complaint.get(channel=Channel.WEB)
    match = re.search(r"/c/(\d{6}-\d{4,})\?k=([A-Z0-9]{8})", text)
    assert match, text
    assert match.group(1) == complaint.number
    return complaint, match.group(2), text


def personal_in(html: str) -> list[str]:
    return [s for s in (NAME, FACTS, "13812345678", "138 1234 5678", "138****5678") if s in html]


async def test_the_receipt_carries_a_code_whose_hash_alone_is_stored(
    db_url: str, tmp_path: Path
) -> None:
    async with webchat(db_url, tmp_path) as client:
        complaint, code, text = await file_complaint(client)
    assert f"查询码：{display_code(code)}" in text
    assert "/find" in text
    access = await ComplaintAccess.get(complaint_id=complaint.id)
    assert code not in access.code_hash and access.code_hash.startswith("$argon2")


async def test_a_code_hashed_with_the_earlier_argon2_cost_still_proves_the_complaint(
    db_url: str, tmp_path: Path
) -> None:
    """Codes on receipts printed before the cost was lowered: argon2 keeps each hash's own
    parameters (2 passes over 19 MiB then), so they verify as before."""
    async with webchat(db_url, tmp_path) as client:
        complaint, code, _ = await file_complaint(client)
        earlier = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        await ComplaintAccess.filter(complaint_id=complaint.id).update(code_hash=earlier.hash(code))
        page = await client.get(f"/c/{complaint.number}?k={code}")
        assert page.status == 200
        assert 'id="private"' in await page.text()


async def test_the_progress_page_shows_nothing_personal_until_the_check(
    db_url: str, tmp_path: Path
) -> None:
    async with webchat(db_url, tmp_path) as client:
        complaint, code, _ = await file_complaint(client)
        page = await client.get(f"/c/{complaint.number}?k=none")
        html = await page.text()
        assert page.status == 200
        assert complaint.number in html and "已提交" in html
        assert "前告知是否受理" in html  # the acceptance deadline in plain words
        assert "<svg" in html  # the QR code to open it on another phone
        assert personal_in(html) == []
        assert 'id="private"' not in html

        wrong = await client.post(f"/c/{complaint.number}", data={"proof": "139 0000 0000"})
        html = await wrong.text()
        assert wrong.status == 403
        assert "电话号码或查询码与该投诉不符" in html and personal_in(html) == []

        right = await client.post(f"/c/{complaint.number}", data={"proof": "13812345678"})
        html = await right.text()
        assert right.status == 200
        assert 'id="private"' in html and "已提交" in html
        assert "138****5678" in html and "13812345678" not in html  # masked

        by_code = await client.get(f"/c/{complaint.number}?k={code}")
        assert by_code.status == 200 and 'id="private"' in await by_code.text()
        bad_code = await client.get(f"/c/{complaint.number}?k=ZZZZZZZZ")
        assert bad_code.status == 403 and 'id="private"' not in await bad_code.text()

        unknown = await client.get("/c/209901-0001")
        assert unknown.status == 404 and "没有这个编号的投诉" in await unknown.text()
        english = await client.get(f"/c/{complaint.number}?lang=en")
        assert "Progress of complaint" in await english.text()

        qr = await client.get(f"/c/{complaint.number}/qr.svg?k={code}")
        assert qr.status == 200 and qr.content_type == "image/svg+xml"
        assert (await qr.text()).lstrip().startswith("<svg")


async def test_the_page_check_is_rate_limited_per_number(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path, lookup_per_number=2) as client:
        complaint, _code, _ = await file_complaint(client)
        for _ in range(2):
            wrong = await client.post(f"/c/{complaint.number}", data={"proof": "13900000000"})
            assert wrong.status == 403
        limited = await client.post(f"/c/{complaint.number}", data={"proof": "13812345678"})
        html = await limited.text()
        assert limited.status == 429
        assert "尝试次数过多" in html and int(limited.headers["Retry-After"]) > 0
        assert personal_in(html) == [] and 'id="private"' not in html
        assert await LookupAttempt.filter(number=complaint.number, ok=False).count() == 2
        # Another number is not blocked by these failures (it is merely unknown).
        other = await client.post("/c/202611-0999", data={"proof": "13812345678"})
        assert other.status == 404


async def test_the_web_chat_finds_a_complaint_from_another_device(
    db_url: str, tmp_path: Path
) -> None:
    async with webchat(db_url, tmp_path) as client:
        complaint, code, _ = await file_complaint(client)
        mine = await client.post("/webchat/api/mine", json={"session_id": OTHER})
        assert (await mine.json())["complaints"] == []

        wrong = await client.post(
            "/webchat/api/find",
            json={"session_id": OTHER, "number": complaint.number, "proof": "13900000000"},
        )
        body = await wrong.json()
        assert wrong.status == 404 and body["error"] == "not_found"
        assert "complaint" not in body

        found = await client.post(
            "/webchat/api/find",
            json={"session_id": OTHER, "number": complaint.number, "proof": PHONE_TYPED},
        )
        body = await found.json()
        assert found.status == 200, body
        assert body["complaint"]["number"] == complaint.number
        assert body["complaint"]["state_label"] == "已提交"
        assert any("前告知是否受理" in line for line in body["complaint"]["stages"])
        assert NAME not in json.dumps(body, ensure_ascii=False)

        listed = await (await client.post("/webchat/api/mine", json={"session_id": OTHER})).json()
        assert [c["number"] for c in listed["complaints"]] == [complaint.number]
        # The filing session lists its own complaint too.
        own = await client.post(
            "/webchat/api/mine", json={"session_id": "0b9f3a52-5a43-4c1e-9d7e-3f1f2c8a9b10"}
        )
        assert [c["number"] for c in (await own.json())["complaints"]] == [complaint.number]

        by_code = await client.post(
            "/webchat/api/find",
            json={"session_id": "third-device-1", "number": complaint.number, "proof": code},
        )
        assert by_code.status == 200


async def test_the_web_chat_lookup_is_rate_limited_per_address(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path, lookup_per_address=3, lookup_per_number=50) as client:
        complaint, _code, _ = await file_complaint(client)
        for n in range(3):
            response = await client.post(
                "/webchat/api/find",
                json={"session_id": OTHER, "number": f"202611-{n:04d}", "proof": "13900000000"},
            )
            assert response.status == 404
        limited = await client.post(
            "/webchat/api/find",
            json={"session_id": OTHER, "number": complaint.number, "proof": PHONE_TYPED},
        )
        body = await limited.json()
        assert limited.status == 429 and body["error"] == "rate_limited"
        assert "尝试次数过多" in body["detail"] and body["retry_after"] > 0
        assert limited.headers["Retry-After"] == str(body["retry_after"])


async def test_find_in_the_chat_from_another_session(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path, lookup_per_number=3) as client:
        complaint, code, _ = await file_complaint(client)
        data = await post(client, session_id=OTHER, text=f"/find {complaint.number} 13900000000")
        assert "没有找到" in said(data)
        await post(client, session_id=OTHER, text="/find")
        await post(client, session_id=OTHER, text=complaint.number)
        data = await post(client, session_id=OTHER, text=display_code(code))
        text = said(data)
        assert f"投诉 {complaint.number} · 已提交" in text
        assert "办理记录" in text and f"/c/{complaint.number}" in text
        assert NAME not in text
        for _ in range(2):
            await post(client, session_id=OTHER, text=f"/find {complaint.number} 13900000000")
        data = await post(client, session_id=OTHER, text=f"/find {complaint.number} {code}")
        assert "尝试次数过多" in said(data)


async def test_server_sent_events_push_a_notice(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path) as client:
        stream = await client.get("/webchat/api/events", params={"session_id": OTHER})
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert (await stream.content.readline()).startswith(b"retry:")
        await enqueue(
            channel=Channel.WEB,
            chat_id=OTHER,
            message=Outgoing("您的投诉已受理。"),
            idempotency_key="test:sse",
            now=datetime(2026, 11, 25, 1, 0, tzinfo=UTC),
        )

        async def event() -> dict[str, Any]:
            while True:
                line = await stream.content.readline()
                if line.startswith(b"data: "):
                    return json.loads(line[6:])

        body = await asyncio.wait_for(event(), timeout=30)
        assert [m["text"] for m in body["messages"]] == ["您的投诉已受理。"]
        stream.close()
        # Handed over once: the fallback poll does not repeat it.
        polled = await client.post("/webchat/api/updates", json={"session_id": OTHER})
        assert (await polled.json())["messages"] == []
        bad = await client.get("/webchat/api/events", params={"session_id": "x"})
        assert bad.status == 400


async def test_the_privacy_page(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path) as client:
        page = await client.get("/privacy")
        html = await page.text()
        assert page.status == 200 and "个人信息保护说明" in html
        assert "投诉办结后保存 3 年" in html  # the profile's retention
        chat = await (await client.get("/webchat")).text()
        assert 'href="/privacy?lang=zh_CN"' in chat
    own = tmp_path / "privacy.txt"
    own.write_text("本机关个人信息保护政策全文……", encoding="utf-8")
    async with webchat(db_url, tmp_path, privacy_file=own) as client:
        assert "政策全文" in await (await client.get("/privacy")).text()
    async with webchat(db_url, tmp_path, privacy_url="https://example.org/privacy") as client:
        moved = await client.get("/privacy", allow_redirects=False)
        assert moved.status == 302 and moved.headers["Location"] == "https://example.org/privacy"


async def test_the_page_chrome_follows_the_browser_language(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path) as client:
        zh = await (await client.get("/webchat")).text()
        assert "新会话" in zh and "我的投诉" in zh and 'lang="zh-CN"' in zh
        tw = await (await client.get("/webchat", headers={"Accept-Language": "zh-TW"})).text()
        assert "新對話" in tw and 'lang="zh-TW"' in tw
        en = await (await client.get("/webchat?lang=en")).text()
        assert "New chat" in en and "My complaints" in en


async def test_a_reply_sent_while_nobody_listens_waits_for_the_poll(
    db_url: str, tmp_path: Path
) -> None:
    """The poll stays as the fallback: without a stream the notice is still handed over."""
    async with webchat(db_url, tmp_path) as client:
        await enqueue(
            channel=Channel.WEB,
            chat_id=OTHER,
            message=Outgoing("请补充材料。"),
            idempotency_key="test:poll",
            now=datetime(2026, 11, 25, 1, 0, tzinfo=UTC),
        )

        got: list[str] = []

        async def polled() -> bool:
            response = await client.post("/webchat/api/updates", json={"session_id": OTHER})
            got.extend(m["text"] for m in (await response.json())["messages"])
            return bool(got)

        await eventually(polled, what=lambda: got)
        assert got == ["请补充材料。"]
