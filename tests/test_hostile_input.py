"""Hostile input at the HTTP edge, against the real aiohttp server: every case a red-team run
answered with a 500 now gets a 4xx or a clear reply (issue 12, item 3).

- POST /telegram/webhook (FakeTelegram in webhook mode): bodies over 256 KB, JSON nested deeper
  than 32, updates python-telegram-bot cannot read, a photo Telegram will not give;
- /wechat (FakeWeChat): absurd timestamps and nonces, plaintext in safe mode, bad signatures,
  duplicate MsgIds;
- the web chat: garbage in multipart part headers, uploads where no photo is asked for, the
  per-session and per-address upload caps, oversized and deeply nested bodies; stored bytes no
  upload names expire.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, FormData
from aiohttp.test_utils import TestClient, TestServer
from tortoise import Tortoise

from bot.app import create_app
from bot.attachments import expire_orphans
from bot.storage import DatabaseStore
from config.settings import Settings
from models.entities import Attachment, AttachmentBlob, Channel, DialogSession
from tests.fakes import FakeTelegram
from tests.fakes.wechat_server import sign
from tests.images import jpeg
from tests.intake_script import GOV_WINDOW_FILING, PHOTOS_STEP
from tests.test_telegram_channel import CITIZEN, Citizen, Desk
from tests.wechat_harness import running_desk

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
JPEG = jpeg("hostile")
SECRET = "hostile-secret-1"
SECRET_HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}


# ---------------------------------------------------------------- Telegram webhook


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@asynccontextmanager
async def telegram_desk(tg: FakeTelegram, db_url: str, tmp_path: Path) -> AsyncIterator[Desk]:
    desk = Desk(tg, db_url, tmp_path / "data", webhook=True, telegram_webhook_secret=SECRET)
    await desk.start()
    try:
        yield desk
    finally:
        await desk.stop()


async def post_raw(url: str, body: bytes, headers: dict[str, str] = SECRET_HEADERS) -> int:
    async with ClientSession() as session, session.post(url, data=body, headers=headers) as got:
        await got.read()
        return got.status


async def test_webhook_bodies_are_bounded_in_size_and_depth(
    tg: FakeTelegram, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with telegram_desk(tg, db_url, tmp_path) as desk:
        update = tg.push_message(CITIZEN, CITIZEN, text="/start", enqueue=False)
        padded = {**update, "padding": "x" * (300 * 1024)}
        assert await post_raw(desk.url, json.dumps(padded).encode()) == 413
        deep = '{"update_id": 5, "message": ' + "[" * 10_000 + "]" * 10_000 + "}"
        with caplog.at_level(logging.WARNING, logger="bot.telegram"):
            assert await post_raw(desk.url, deep.encode()) == 400
        assert "nested deeper than 32" in caplog.text
        # 33 levels are refused, 32 are parsed (and then refused as no update at all).
        assert await post_raw(desk.url, ("[" * 33 + "]" * 33).encode()) == 400
        brackets_in_text = {**update, "message": {**update["message"], "text": "[" * 5000}}
        assert await post_raw(desk.url, json.dumps(brackets_in_text).encode()) == 200
        assert await post_raw(desk.url, b"\xff\xfe not utf-8") == 400
        assert tg.texts_to(CITIZEN), "the update with brackets in its text was answered"


UNREADABLE: dict[str, Any] = {
    "sticker-is-a-number": ("message", "sticker", 0),
    "date-out-of-range": ("message", "date", 10**20),
    "date-is-text": ("message", "date", "yesterday"),
    "text-is-a-number": ("message", "text", 3),
    "photo-is-text": ("message", "photo", "x"),
    "sender-is-a-number": ("message", "from", 3),
    "entity-without-length": ("message", "entities", [{"type": "bot_command", "offset": 0}]),
    "callback-data-is-a-number": ("callback_query", "data", 12345),
    "callback-data-is-a-list": ("callback_query", "data", ["menu:new"]),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
async def test_an_update_python_telegram_bot_cannot_read_is_400_with_a_warning(
    tg: FakeTelegram, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    where, key, value = UNREADABLE[case]
    async with telegram_desk(tg, db_url, tmp_path):
        if where == "message":
            update = tg.push_message(CITIZEN, CITIZEN, text="/start", enqueue=False)
        else:
            update = tg.push_callback(CITIZEN, CITIZEN, "menu:new", 1, enqueue=False)
        update[where][key] = value
        with caplog.at_level(logging.WARNING, logger="bot.telegram"):
            assert await tg.deliver_webhook(None, update) == 400
        refused = [r for r in caplog.records if "unreadable" in r.getMessage()]
        assert refused and refused[0].levelno == logging.WARNING
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # The worker is unharmed: the next proper update is answered.
        fine = tg.push_message(CITIZEN, CITIZEN, text="/start", enqueue=False)
        assert await tg.deliver_webhook(None, fine) == 200
        assert tg.texts_to(CITIZEN)


ASK_AGAIN = {"zh-hans": "照片未能接收，请重新发送", "zh-hant": "照片未能接收，請重新傳送"}
ASK_AGAIN["en"] = "The photo could not be received. Please send it again."


@pytest.mark.parametrize("language_code", sorted(ASK_AGAIN))
@pytest.mark.parametrize("status", [400, 502])
async def test_a_photo_telegram_will_not_give_is_asked_for_again(
    tg: FakeTelegram, db_url: str, tmp_path: Path, language_code: str, status: int
) -> None:
    async with telegram_desk(tg, db_url, tmp_path) as desk:
        person = Citizen(tg, desk, language_code=language_code)
        for kind, value in GOV_WINDOW_FILING[:PHOTOS_STEP]:
            if kind == "command":
                await person.command(value)
            elif kind == "choice":
                await person.choose(value)
            else:
                await person.text(value)
        before = await DialogSession.get(channel=Channel.TELEGRAM, external_id=str(CITIZEN))
        assert before.state["step"] == "photos"
        description = "Bad Request: wrong file_id or the file is temporarily unavailable"
        tg.fail_next("getFile", status, description=description if status == 400 else None)
        update = person._message(photo=JPEG)
        assert await tg.deliver_webhook(None, update) == 200  # no redelivery loop
        assert tg.texts_to(CITIZEN)[-1].startswith(ASK_AGAIN[language_code])
        after = await DialogSession.get(channel=Channel.TELEGRAM, external_id=str(CITIZEN))
        assert (after.state, after.version) == (before.state, before.version)
        assert not await Attachment.exists()
        # Sent again, the photo is taken.
        received = await person.photo(JPEG)
        assert received and not received[-1].startswith(ASK_AGAIN[language_code])
        assert await Attachment.filter(channel=Channel.TELEGRAM).count() == 1


# ---------------------------------------------------------------- WeChat


async def test_wechat_absurd_timestamps_and_nonces_are_403_not_500(
    db_url: str, tmp_path: Path
) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        fake = desk.fake
        body = fake.text_xml("o-hostile", "/start").encode()
        huge = "9" * 20
        for timestamp, nonce in ((huge, "12345"), ("²", "12345"), ("１７", "1"), ("", "1")):
            signed = fake.signed_params(nonce=nonce) | {"timestamp": timestamp}
            signed["signature"] = sign(fake.token, timestamp, nonce)
            assert (await fake.post_raw(desk.url, body, params=signed)).status == 403
            unsigned = {"timestamp": timestamp, "nonce": nonce, "signature": "0" * 40}
            assert (await fake.post_raw(desk.url, body, params=unsigned)).status == 403
        for nonce in ("1" * 2_000, "bad nonce<>"):
            params = fake.signed_params(nonce=nonce)
            assert (await fake.post_raw(desk.url, body, params=params)).status == 403
        odd = {"timestamp": huge, "nonce": "1", "signature": "é" * 40}
        assert (await fake.post_raw(desk.url, body, params=odd)).status == 403
        async with ClientSession() as session:
            query = fake.signed_params() | {"timestamp": huge, "echostr": "x"}
            async with session.get(desk.url, params=query) as response:
                assert response.status == 403
        assert not await DialogSession.exists()


@pytest.mark.parametrize("accept_plaintext", [False, True], ids=["safe-only", "compatibility"])
async def test_wechat_safe_mode_refuses_plaintext_unless_told_otherwise(
    db_url: str, tmp_path: Path, accept_plaintext: bool
) -> None:
    async with running_desk(db_url, tmp_path, accept_plaintext=accept_plaintext) as desk:
        plain = await desk.fake.push_text(desk.url, "o-plain", "/help", safe=False)
        assert plain.status == (200 if accept_plaintext else 403)
        sealed = await desk.fake.push_text(desk.url, "o-sealed", "/help", safe=True)
        assert sealed.status == 200 and sealed.text
        tampered = await desk.fake.push_text(desk.url, "o-sealed", "/help", tamper=True)
        assert tampered.status == 403
    plain_rows = await DialogSession.filter(external_id="o-plain").count()
    assert plain_rows == (1 if accept_plaintext else 0)


def test_the_compatibility_setting_comes_from_the_environment_and_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().wechat_accept_plaintext is False
    config = tmp_path / "complaintdesk.toml"
    config.write_text("wechat_accept_plaintext = true\n", encoding="utf-8")
    monkeypatch.setenv("COMPLAINTDESK_CONFIG", str(config))
    assert Settings().wechat_accept_plaintext is True
    monkeypatch.setenv("COMPLAINTDESK_WECHAT_ACCEPT_PLAINTEXT", "false")
    assert Settings().wechat_accept_plaintext is False


async def test_wechat_numbers_int_refuses_are_answered(db_url: str, tmp_path: Path) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        started = await desk.fake.push_text(desk.url, "o-digits", "/start")
        assert started.status == 200 and started.text
        for typed in ("²", "9" * 5000, "１"):
            answered = await desk.fake.push_text(desk.url, "o-digits", typed)
            assert answered.status == 200 and answered.text


async def test_wechat_duplicate_msgid_deliveries_are_answered_once(
    db_url: str, tmp_path: Path
) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        xml = desk.fake.text_xml("o-twice", "/help", msg_id=777)
        first = await desk.fake.deliver(desk.url, xml)
        again = await desk.fake.deliver(desk.url, xml)
        assert first.status == again.status == 200
        row = await DialogSession.get(channel=Channel.WECHAT, external_id="o-twice")
        assert row.version == 1, "the redelivery did not run the turn again"
        assert again.text in (None, first.text)


# ---------------------------------------------------------------- web chat


SESSION = "hostile-session-0001"


@asynccontextmanager
async def webchat(db_url: str, tmp_path: Path, **extra: Any) -> AsyncIterator[TestClient]:
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data", **extra)
    app = create_app(settings, now=lambda: NOW, manage_db=False)
    async with TestClient(TestServer(app)) as client:
        yield client


async def say(client: TestClient, session: str = SESSION, **body: Any) -> dict[str, Any]:
    response = await client.post("/webchat/api/message", json={"session_id": session, **body})
    data = await response.json()
    assert response.status == 200, data
    return data


async def walk_to_photos(client: TestClient, session: str = SESSION) -> None:
    for kind, value in GOV_WINDOW_FILING[:PHOTOS_STEP]:
        if kind == "command":
            await say(client, session, text=f"/{value}")
        else:
            await say(client, session, **{kind: value})


async def upload(
    client: TestClient, session: str = SESSION, data: bytes = JPEG, **headers: str
) -> tuple[int, dict[str, Any]]:
    form = FormData()
    form.add_field("session_id", session)
    form.add_field("file", data, filename="door.jpg", content_type="image/jpeg")
    response = await client.post("/webchat/api/upload", data=form, headers=headers)
    return response.status, await response.json()


def raw_multipart(part_headers: bytes, content: bytes = b"\xff\xd8\xff\xe0jpeg") -> bytes:
    boundary = b"--hostileboundary"
    return (
        boundary + b'\r\nContent-Disposition: form-data; name="session_id"\r\n\r\n'
        + SESSION.encode() + b"\r\n"
        + boundary + b"\r\n" + part_headers + b"\r\n\r\n" + content + b"\r\n"
        + boundary + b"--\r\n"
    )  # fmt: skip


GARBAGE_HEADERS = {
    "nul-in-filename": b'Content-Disposition: form-data; name="file"; filename="a\x00.jpg"',
    "nul-in-type": b'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
    b"Content-Type: image/jpeg\x00",
    "control-in-name": b'Content-Disposition: form-data; name="fi\x01le"; filename="a.jpg"',
    "no-colon": b'Content-Disposition form-data name="file"',
    "invalid-utf8": b'Content-Disposition: form-data; name="file"; filename="\xff\xfe.jpg"',
    "huge-header": b'Content-Disposition: form-data; name="file"; filename="' + b"a" * 9000 + b'"',
}


@pytest.mark.parametrize("case", sorted(GARBAGE_HEADERS))
async def test_garbage_in_a_multipart_part_header_is_400(
    db_url: str, tmp_path: Path, case: str
) -> None:
    async with webchat(db_url, tmp_path) as client:
        await walk_to_photos(client)
        body = raw_multipart(GARBAGE_HEADERS[case])
        headers = {"Content-Type": "multipart/form-data; boundary=hostileboundary"}
        response = await client.post("/webchat/api/upload", data=body, headers=headers)
        answer = await response.json()
        # Refused outright, or (a header aiohttp reads as no file field at all) "no file".
        assert response.status == 400, answer
        assert answer["error"] in ("invalid_part_header", "invalid_body", "missing_file")
        assert not await Attachment.exists()


async def test_uploads_are_taken_only_where_the_dialog_asks_for_photos(
    db_url: str, tmp_path: Path
) -> None:
    async with webchat(db_url, tmp_path) as client:
        status, answer = await upload(client)  # a new session: no dialog at all
        assert status == 409 and answer["error"] == "not_expecting_files"
        assert "要求发送照片时" in answer["detail"]
        await say(client, text="/start")
        await say(client, text="/lang")
        await say(client, choice="lang:en")
        status, answer = await upload(client)  # screening: no photo asked for
        assert status == 409
        assert answer["detail"].startswith("Files are taken only when the conversation asks")
        assert not await Attachment.exists()
        await say(client, text="/cancel")
        await walk_to_photos(client)
        status, answer = await upload(client)
        assert status == 200, answer
        assert await Attachment.filter(uploader=SESSION).count() == 1


async def test_a_supplement_takes_uploads_while_it_collects(db_url: str, tmp_path: Path) -> None:
    async with webchat(db_url, tmp_path) as client:
        await walk_to_photos(client)
        await say(client, choice="done")
        filed = await say(client, choice="confirm")
        found = re.search(r"\d{6}-\d{4}", "\n".join(m["text"] for m in filed["messages"]))
        assert found, filed
        number = found.group()
        await say(client, text="/supplement")
        await say(client, choice=f"complaint:{number}")
        status, answer = await upload(client)
        assert status == 200, answer
        await say(client, choice="done")
        status, _answer = await upload(client)  # the supplement is over
        assert status == 409


async def test_uploads_are_capped_per_session_and_per_client_address(
    db_url: str, tmp_path: Path
) -> None:
    caps = {"uploads_per_session": 2, "uploads_per_client": 3, "max_photos": 6}
    async with webchat(db_url, tmp_path, **caps) as client:
        others = ["hostile-session-0002", "hostile-session-0003"]
        for session in (SESSION, *others):
            await walk_to_photos(client, session)
        for index in range(2):
            status, answer = await upload(client, data=jpeg(f"photo {index}"))
            assert status == 200, answer
        status, answer = await upload(client, data=jpeg("one too many"))
        assert status == 429 and answer["error"] == "session_upload_limit"
        assert "短时间内发送的文件过多" in answer["detail"]
        status, answer = await upload(client, others[0], data=jpeg("third from this address"))
        assert status == 200, answer
        status, answer = await upload(client, others[1], data=jpeg("fourth from this address"))
        assert status == 429 and answer["error"] == "client_upload_limit"
        assert await Attachment.filter(channel=Channel.WEB).count() == 3


async def test_upload_bytes_are_capped_and_a_proxy_hop_names_the_client(
    db_url: str, tmp_path: Path
) -> None:
    photo = jpeg("a big one") + b"\x00" * 300_000  # ~0.3 MB
    caps = {"upload_mb_per_session": 0.5, "upload_mb_per_client": 100, "forwarded_hops": 1}
    async with webchat(db_url, tmp_path, **caps) as client:
        await walk_to_photos(client)
        forwarded = {"X-Forwarded-For": "203.0.113.7"}
        assert (await upload(client, data=photo, **forwarded))[0] == 200
        status, answer = await upload(client, data=photo + b"\x01", **forwarded)
        assert status == 429 and answer["error"] == "session_upload_limit"
        stored = await Attachment.get(uploader=SESSION)
        assert stored.client_address == "203.0.113.7"


async def test_oversized_and_deeply_nested_bodies_are_answered_clearly(
    db_url: str, tmp_path: Path
) -> None:
    async with webchat(db_url, tmp_path) as client:
        await say(client, text="/start")
        response = await client.post(
            "/webchat/api/message", json={"session_id": SESSION, "text": "x" * 25_000}
        )
        answer = await response.json()
        assert response.status == 400 and answer["error"] == "text_too_long"
        assert "25000" in answer["detail"] and "20000" in answer["detail"]
        assert "一次最多只能发送" in answer["detail"]
        huge = json.dumps({"session_id": SESSION, "text": "x" * 70_000})
        response = await client.post("/webchat/api/message", data=huge)
        answer = await response.json()
        assert response.status == 413 and answer["detail"] == "该消息过大，无法发送。"
        deep = '{"session_id": "' + SESSION + '", "text": ' + "[" * 20_000 + "]" * 20_000 + "}"
        response = await client.post("/webchat/api/message", data=deep)
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_json"
        response = await client.post("/webchat/api/hello", data=b"\xff\xfe\x00")
        assert response.status == 400


async def test_stored_bytes_no_upload_names_expire(db_url: str) -> None:
    store = DatabaseStore()
    now = datetime.now(UTC)
    await store.put("a" * 64, b"left behind by a crash")
    await store.put("b" * 64, b"named by an upload")
    await store.put("c" * 64, b"stored a moment ago")
    await Attachment.create(
        channel=Channel.WEB, size=1, sha256="b" * 64, stored_path="db:" + "b" * 64
    )
    conn = Tortoise.get_connection("default")
    old = now - timedelta(hours=30)
    placeholder = "$1" if conn.capabilities.dialect == "postgres" else "?"
    sql = f"UPDATE attachment_blob SET created_at = {placeholder} WHERE sha256 <> 'ccc'"
    await conn.execute_query(sql.replace("'ccc'", "'" + "c" * 64 + "'"), [old])
    # The upload itself is young: only the copy nobody names goes.
    assert await expire_orphans(now, timedelta(hours=24)) == 1
    left = set(await AttachmentBlob.all().values_list("sha256", flat=True))
    assert left == {"b" * 64, "c" * 64}
    # The same content stored again refreshes its age, so it is not swept from under its row.
    await conn.execute_query(sql.replace("'ccc'", "'" + "c" * 64 + "'"), [old])
    await store.put("b" * 64, b"named by an upload")
    assert await expire_orphans(now, timedelta(hours=24)) == 0


@pytest.mark.parametrize("depth", [31, 32, 33])
def test_json_nesting_is_bounded_at_the_limit_whatever_the_bracket_count(depth: int) -> None:
    """load_json skips the scan only when too few brackets exist to nest past the limit."""
    from bot.guards import MAX_JSON_DEPTH, BadJson, load_json

    nested = ("[" * depth + "]" * depth).encode()
    flat = ("[" + ",".join(["[]"] * 40) + "]").encode()  # 41 brackets, two levels deep
    assert len(load_json(flat)) == 40
    if depth <= MAX_JSON_DEPTH:
        assert json.dumps(load_json(nested)).replace(", ", ",") == nested.decode()
    else:
        with pytest.raises(BadJson):
            load_json(nested)
