"""Attachment storage: typed by content, no EXIF location, in the database / S3 / files, moved
between them, orphans expiring, and readable by a second worker process on PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import ClientError, ClientSession, ClientTimeout, FormData
from PIL import Image, PngImagePlugin

from bot.attachments import (
    GENERIC,
    attachment_file_id,
    detect_type,
    expire_orphans,
    inspect_upload,
    migrate_attachments,
    read_attachment,
    store_attachment,
)
from bot.storage import (
    DatabaseStore,
    FileStore,
    S3Store,
    S3Target,
    StorageError,
    configure_storage,
    read_location,
)
from handlers.messages import FileRef, Outgoing
from models.entities import Attachment, AttachmentBlob, Channel, Complaint
from models.outbox import enqueue
from tests.images import GPS_IFD, jpeg
from tests.intake_script import GOV_WINDOW_FILING, PHOTOS_STEP
from tests.waiting import WITHIN_SECONDS, eventually

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def test_the_type_comes_from_the_bytes_not_the_claim() -> None:
    assert detect_type(jpeg("x")) == "image/jpeg"
    assert detect_type(b"%PDF-1.7 letter") == "application/pdf"
    assert detect_type("投诉材料说明\n".encode()) == "text/plain"
    assert detect_type(b"MZ\x90\x00\x03\x00\x00\x00") == "application/x-msdownload"
    # Bytes that start like a JPEG but are not one are kept as an opaque file.
    fake = inspect_upload(b"\xff\xd8\xff\xe0 not really a photo")
    assert fake.mime_type == GENERIC and not fake.location_removed


def test_a_photo_loses_its_gps_location_and_keeps_the_rest() -> None:
    photo = jpeg("street", gps=True)
    with Image.open(io.BytesIO(photo)) as before:
        assert GPS_IFD in before.getexif()
    cleaned = inspect_upload(photo)
    assert cleaned.location_removed and cleaned.mime_type == "image/jpeg"
    with Image.open(io.BytesIO(cleaned.data)) as after:
        exif = after.getexif()
        assert GPS_IFD not in exif and exif[0x0110] == "Test Camera"
        assert after.size == (32, 24)
    plain = jpeg("street")
    assert inspect_upload(plain).data == plain  # nothing to remove: the bytes are untouched


XMP_WITH_POSITION = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="31,13.8N" '
    'exif:GPSLongitude="121,28.2E"/></rdf:RDF></x:xmpmeta>'
)


def image_with_xmp_position(fmt: str) -> bytes:
    """An image whose only location is in its XMP packet, as a photo editor saves it."""
    image = Image.new("RGB", (16, 12), (10, 120, 30))
    out = io.BytesIO()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP_WITH_POSITION)
        image.save(out, format=fmt, pnginfo=info)
    elif fmt == "TIFF":
        image.save(out, format=fmt, tiffinfo={700: XMP_WITH_POSITION.encode()})
    else:
        image.save(out, format=fmt, xmp=XMP_WITH_POSITION.encode())
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_a_position_in_the_xmp_packet_is_removed_too(fmt: str) -> None:
    photo = image_with_xmp_position(fmt)
    assert b"GPSLatitude" in photo
    cleaned = inspect_upload(photo)
    assert cleaned.location_removed
    assert cleaned.mime_type == f"image/{fmt.lower()}"
    assert b"GPSLatitude" not in cleaned.data and b"GPSLongitude" not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as after:
        assert after.size == (16, 12)


async def test_stored_photos_are_clean_and_in_the_database(db_url: str) -> None:
    configure_storage("database", Path("unused"))
    photo = jpeg("door", gps=True)
    stored = await store_attachment(
        Channel.WEB, FileRef("up", "door.jpg", "text/plain", data=photo), max_bytes=MB
    )
    assert stored.mime_type == "image/jpeg"  # the browser's claim is not kept
    assert stored.stored_path == f"db:{stored.sha256}"
    data = await read_attachment(stored)
    assert hashlib.sha256(data).hexdigest() == stored.sha256 and data != photo
    with Image.open(io.BytesIO(data)) as image:
        assert GPS_IFD not in image.getexif()
    # The same content twice is stored once.
    again = await store_attachment(
        Channel.TELEGRAM, FileRef("tg", "door.jpg", data=photo), max_bytes=MB
    )
    assert again.sha256 == stored.sha256
    assert await AttachmentBlob.all().count() == 1


@pytest.fixture
def s3_server() -> Iterator[str]:
    """A local S3-compatible server (moto), on loopback only."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = "test"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        configure_storage("database", Path("unused"))


async def test_s3_storage_round_trip_and_migration_from_files(
    db_url: str, tmp_path: Path, s3_server: str
) -> None:
    url = f"s3://complaints/prod?endpoint={s3_server}&region=us-east-1"
    assert S3Target.parse(url) == S3Target("complaints", "prod", s3_server, "us-east-1")
    store = configure_storage(url, tmp_path)
    assert isinstance(store, S3Store)
    async with store.client() as s3:
        await s3.create_bucket(Bucket="complaints")
    # One attachment from before (a file on this host), one stored now (in S3).
    old = await store_attachment(
        Channel.WEB,
        FileRef("up", "a.jpg", data=jpeg("old")),
        max_bytes=MB,
        store=FileStore(tmp_path / "data"),
    )
    new = await store_attachment(
        Channel.WEB, FileRef("up", "b.pdf", data=b"%PDF-1.4 x"), max_bytes=MB
    )
    assert new.stored_path == f"s3://complaints/prod/{new.sha256[:2]}/{new.sha256}"
    assert await read_attachment(new) == b"%PDF-1.4 x"
    report = await migrate_attachments(store)
    assert (report.moved, report.already, report.missing) == (1, 1, [])
    moved = await Attachment.get(id=old.id)
    assert moved.stored_path.startswith("s3://complaints/prod/")
    assert await read_attachment(moved) == jpeg("old")
    with pytest.raises(StorageError):
        await read_location(f"s3://complaints/prod/00/{'0' * 64}")


async def test_files_from_before_move_into_the_database(db_url: str, tmp_path: Path) -> None:
    legacy = FileStore(tmp_path / "data")
    rows = [
        await store_attachment(
            Channel.WEB, FileRef("up", f"{n}.jpg", data=jpeg(n)), max_bytes=MB, store=legacy
        )
        for n in ("one", "two")
    ]
    gone = await store_attachment(
        Channel.WEB, FileRef("up", "gone.txt", data=b"lost text"), max_bytes=MB, store=legacy
    )
    await asyncio.to_thread(Path(gone.stored_path).unlink)
    report = await migrate_attachments(DatabaseStore())
    assert (report.moved, report.missing) == (2, [gone.id])
    for row in rows:
        fresh = await Attachment.get(id=row.id)
        assert fresh.stored_path == f"db:{row.sha256}"
        assert await read_attachment(fresh) == await asyncio.to_thread(
            Path(row.stored_path).read_bytes
        )
    again = await migrate_attachments(DatabaseStore())
    assert (again.moved, again.already) == (0, 2)


async def test_uploads_no_complaint_took_expire(db_url: str) -> None:
    now = datetime.now(UTC)

    async def upload(label: str) -> Attachment:
        return await store_attachment(
            Channel.WEB, FileRef("up", f"{label}.jpg", data=jpeg(label)), max_bytes=MB
        )

    abandoned, filed, queued, fresh = [await upload(n) for n in ("a", "b", "c", "d")]
    complaint = await Complaint.create(number="202612-0001", profile="gov-window", channel="web")
    await Attachment.filter(id=filed.id).update(complaint_id=complaint.id)
    await enqueue(
        channel="telegram",
        chat_id="1",
        message=Outgoing("report", attachments=(attachment_file_id(queued.id),)),
        idempotency_key="orphan-test",
        now=now,
    )
    old = now - timedelta(days=2)
    await Attachment.filter(id__in=[abandoned.id, filed.id, queued.id]).update(created_at=old)
    assert await expire_orphans(now, timedelta(hours=24)) == 1
    left = set(await Attachment.all().values_list("id", flat=True))
    assert left == {filed.id, queued.id, fresh.id}
    assert not await AttachmentBlob.filter(sha256=abandoned.sha256).exists()
    assert await AttachmentBlob.filter(sha256=filed.sha256).exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


READ_BY_ANOTHER_PROCESS = """
import asyncio, hashlib, json, sys
from bot.attachments import read_attachment
from models.db import database
from models.entities import Attachment

async def main():
    async with database(sys.argv[1]):
        rows = await Attachment.all().order_by("id")
        print(json.dumps([[r.id, r.mime_type, hashlib.sha256(await read_attachment(r)).hexdigest()]
                          for r in rows]))

asyncio.run(main())
"""


async def test_a_photo_uploaded_through_one_worker_is_read_by_another_process(
    db_url: str, db_kind: str, tmp_path: Path
) -> None:
    """Worker A is a real `complaintdesk run` process; worker B a second process on the same
    PostgreSQL. Neither shares a disk: A's data directory stays empty."""
    if db_kind != "postgres":
        pytest.skip("several workers share a PostgreSQL database; SQLite is the one-host default")
    port = _free_port()
    data_dir = tmp_path / "worker-a-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env.update(
        PYTHONPATH=str(ROOT),
        COMPLAINTDESK_DATABASE_URL=db_url,
        COMPLAINTDESK_PORT=str(port),
        COMPLAINTDESK_DATA_DIR=str(data_dir),
    )
    worker_a = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    photo = jpeg("pothole", gps=True)
    try:
        async with ClientSession(timeout=ClientTimeout(total=30)) as http:

            async def ready() -> bool:
                assert worker_a.returncode is None, "worker A exited"
                try:
                    async with http.get(f"{base}/readyz") as response:
                        return response.status == 200
                except (ClientError, OSError):
                    return False

            await eventually(ready, what="worker A's /readyz")
            # Uploads are taken where the dialog asks for photos: walk the filing there.
            for kind, value in GOV_WINDOW_FILING[:PHOTOS_STEP]:
                body: dict[str, str] = {"session_id": "worker-a-session-1"}
                body[kind if kind != "command" else "text"] = (
                    f"/{value}" if kind == "command" else value
                )
                async with http.post(f"{base}/webchat/api/message", json=body) as response:
                    assert response.status == 200, await response.text()
            form = FormData()
            form.add_field("session_id", "worker-a-session-1")
            form.add_field("file", photo, filename="pothole.jpg", content_type="image/jpeg")
            async with http.post(f"{base}/webchat/api/upload", data=form) as response:
                assert response.status == 200, await response.text()
    finally:
        worker_a.terminate()
        await asyncio.wait_for(worker_a.communicate(), WITHIN_SECONDS)
    worker_b = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        READ_BY_ANOTHER_PROCESS,
        db_url,
        env={**env, "COMPLAINTDESK_DATA_DIR": str(tmp_path / "worker-b-data")},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(worker_b.communicate(), 2 * WITHIN_SECONDS)
    assert worker_b.returncode == 0, err.decode()
    [[row_id, mime, digest]] = json.loads(out)
    stored = await Attachment.get(id=row_id)
    assert mime == "image/jpeg" and digest == stored.sha256
    with Image.open(io.BytesIO(await read_attachment(stored))) as image:
        assert GPS_IFD not in image.getexif()
    assert not data_dir.exists() or not any(data_dir.rglob("*"))
