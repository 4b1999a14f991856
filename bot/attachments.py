"""Stored photos and files: one Attachment row per upload, the bytes in the configured store.

The bytes go to the store `COMPLAINTDESK_ATTACHMENT_STORAGE` names (bot/storage.py: the
database by default, an S3-compatible bucket, or local files), content-addressed so the same
photo sent twice is stored once. Before storing, an upload's type is taken from its content
(not the sender's header) and an image loses its EXIF GPS location (Pillow). The row keeps the
platform's file id, name, MIME type, size and where the bytes are, and is linked to a complaint
when the complaint is filed or supplemented; uploads no complaint took expire
(`expire_orphans`, run by the daily retention job). The dialog only ever sees the neutral file
id "att:<row id>".
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import filetype
from PIL import Image
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from bot.storage import (
    DB_PREFIX,
    BlobStore,
    StorageError,
    configured_store,
    file_location,
    read_location,
    remove_location,
    remove_unreferenced_blobs,
)
from handlers.messages import FileRef
from models.entities import Attachment, Channel, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

ATTACHMENT_PREFIX = "att:"
MB = 1024 * 1024


class AttachmentTooLarge(ValueError):
    """Refused before anything was written; `size` and `limit` in bytes for the person's message."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"file of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


def max_attachment_bytes(max_photo_mb: float) -> int:
    return int(max_photo_mb * MB)


def attachment_file_id(attachment_id: int) -> str:
    return f"{ATTACHMENT_PREFIX}{attachment_id}"


def parse_attachment_id(file_id: str | None) -> int | None:
    """The Attachment row id in an "att:<id>" file id; None for anything else."""
    if not file_id or not file_id.startswith(ATTACHMENT_PREFIX):
        return None
    digits = file_id.removeprefix(ATTACHMENT_PREFIX)
    return int(digits) if digits.isdigit() else None


def attachment_ids(files: object) -> list[int]:
    """Row ids of the stored files in a draft's or a supplement's file records, in order."""
    ids: list[int] = []
    if not isinstance(files, list | tuple):
        return ids
    for record in files:
        file_id = record.get("file_id") if isinstance(record, dict) else None
        parsed = parse_attachment_id(file_id)
        if parsed is not None and parsed not in ids:
            ids.append(parsed)
    return ids


def stored_path(data_dir: Path, sha256: str) -> Path:
    """Where the `file` storage keeps a content (also the layout of older installations)."""
    return file_location(data_dir, sha256)


# -- what the upload really is ------------------------------------------------------------

GPS_IFD = 0x8825
# An XMP packet (Adobe's metadata, written by photo editors and some phones) can carry the
# position again, as exif:GPSLatitude / exif:GPSLongitude, next to or instead of the EXIF block.
XMP_TAG = 700  # where TIFF keeps the packet; the other formats have it in `image.info["xmp"]`
_XMP_LOCATION = (b"GPSLatitude", b"GPSLongitude")
GENERIC = "application/octet-stream"
# Images Pillow can rewrite without their location; others are kept as they came.
_REWRITABLE = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/tiff": "TIFF"}


@dataclass(frozen=True)
class Inspected:
    data: bytes
    mime_type: str
    location_removed: bool = False


def detect_type(data: bytes) -> str:
    """The MIME type the bytes themselves show (magic numbers), never the sender's claim."""
    kind = filetype.guess(data)
    if kind is not None:
        return str(kind.mime)
    head = data[:4096]
    if b"\x00" in head:
        return GENERIC
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut at the 4 KiB boundary is still text.
        if error.start < len(head) - 3:
            return GENERIC
    return "text/plain"


def _xmp_locates(xmp: object) -> bool:
    packet = xmp.encode() if isinstance(xmp, str) else xmp
    return isinstance(packet, bytes) and any(tag in packet for tag in _XMP_LOCATION)


def without_location(data: bytes, mime_type: str) -> tuple[bytes, bool] | None:
    """The image re-saved without its EXIF GPS block and without an XMP packet that gives the
    position; (data, False) when it had neither; None when Pillow cannot read it as the image
    its bytes claim to be."""
    fmt = _REWRITABLE.get(mime_type)
    if fmt is None:
        return data, False
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            exif = image.getexif()
            xmp_locates = _xmp_locates(image.info.get("xmp"))
            if GPS_IFD not in exif and not xmp_locates:
                return data, False
            exif.pop(GPS_IFD, None)
            if xmp_locates:
                # JPEG, PNG and WebP are re-saved without the packet unless it is passed on;
                # TIFF copies it from the file's own tags, so it is taken out there.
                exif.pop(XMP_TAG, None)
                tags = getattr(image, "tag_v2", None)
                if tags is not None and XMP_TAG in tags:
                    del tags[XMP_TAG]
            options: dict[str, Any] = {"exif": exif.tobytes()}
            if image.info.get("icc_profile"):
                options["icc_profile"] = image.info["icc_profile"]
            if fmt == "JPEG":
                options.update(quality="keep", subsampling="keep")
            if getattr(image, "n_frames", 1) > 1:
                options["save_all"] = True
            out = io.BytesIO()
            image.save(out, format=fmt, **options)
            return out.getvalue(), True
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def inspect_upload(data: bytes) -> Inspected:
    """Type by content; images lose their EXIF location (Pillow). Bytes that only pose as an
    image are kept as an opaque file, so no adapter shows them as a photo."""
    mime = detect_type(data)
    cleaned = without_location(data, mime)
    if cleaned is None:
        return Inspected(data, GENERIC)
    content, removed = cleaned
    return Inspected(content, mime, removed)


# -- storing and reading ------------------------------------------------------------------


async def store_attachment(
    channel: Channel,
    file: FileRef,
    *,
    max_bytes: int,
    conn: BaseDBAsyncClient | None = None,
    store: BlobStore | None = None,
    uploader: str | None = None,
    client_address: str | None = None,
) -> Attachment:
    """Keep the downloaded bytes of `file` and record them; refuse over `max_bytes`.

    The recorded MIME type is the content's; an image is stored without its GPS location.
    `uploader` and `client_address` (the web chat's session and peer) feed its upload caps.
    """
    if file.data is None:
        raise ValueError("the file's bytes must be downloaded before it is stored")
    size = len(file.data)
    if size > max_bytes:
        raise AttachmentTooLarge(size, max_bytes)
    inspected = await asyncio.to_thread(inspect_upload, file.data)
    if inspected.location_removed:
        log.info("attachment from %s: EXIF location removed", channel)
    sha256 = hashlib.sha256(inspected.data).hexdigest()
    location = await (store or configured_store()).put(sha256, inspected.data, conn)
    return await Attachment.create(
        channel=channel,
        platform_file_id=file.file_id[:256] if file.file_id else None,
        file_name=(file.file_name or None) and file.file_name[:255],
        mime_type=inspected.mime_type[:100],
        size=len(inspected.data),
        sha256=sha256,
        stored_path=location,
        uploader=uploader[:128] if uploader else None,
        client_address=client_address[:64] if client_address else None,
        using_db=conn,
    )


async def read_attachment(attachment: Attachment, conn: BaseDBAsyncClient | None = None) -> bytes:
    """The stored bytes, from whichever store the row names (any worker can read them)."""
    return await read_location(attachment.stored_path, conn)


async def discard_attachments(
    attachments: Sequence[Attachment], conn: BaseDBAsyncClient
) -> list[str]:
    """Delete the rows in `conn`'s transaction; bytes in the database go with them. Returns
    the other stores' locations to remove once the transaction has committed (content shared
    with a row that stays is kept)."""
    later: list[str] = []
    leaving = [a.id for a in attachments]
    for attachment in attachments:
        shared = (
            await Attachment.filter(sha256=attachment.sha256)
            .exclude(id__in=leaving)
            .using_db(conn)
            .exists()
        )
        await attachment.delete(using_db=conn)
        if shared or attachment.stored_path in later:
            continue
        if attachment.stored_path.startswith(DB_PREFIX):
            await remove_location(attachment.stored_path, conn)
        else:
            later.append(attachment.stored_path)
    return later


async def remove_stored(locations: Sequence[str]) -> int:
    """Remove bytes after their rows are gone; a failure is logged (an orphan costs only space)."""
    removed = 0
    for location in locations:
        try:
            await remove_location(location)
            removed += 1
        except Exception:
            log.exception("could not remove stored attachment %s", location)
    return removed


def queued_attachment_ids(payloads: Sequence[Any]) -> set[int]:
    """Attachment row ids named by serialised Outgoing messages ("att:<id>" or "<id>")."""
    ids: set[int] = set()
    for payload in payloads:
        names = payload.get("attachments") if isinstance(payload, dict) else None
        for name in names or ():
            text = str(name)
            parsed = parse_attachment_id(text)
            if parsed is None and text.isdigit():
                parsed = int(text)
            if parsed is not None:
                ids.add(parsed)
    return ids


async def expire_orphans(now: datetime, keep_for: timedelta) -> int:
    """Delete uploads no complaint took within `keep_for` (abandoned drafts, stray files),
    except files a queued message still has to send (a report waiting for its manager), and
    bytes in the database that no upload names. Returns how many of both went."""
    cutoff = now - keep_for
    strays = await remove_unreferenced_blobs(cutoff)
    if strays:
        log.info("removed %d stored copies that no attachment names", strays)
    candidates = await Attachment.filter(complaint_id=None, created_at__lt=cutoff).order_by("id")
    if not candidates:
        return strays
    payloads = await OutboxMessage.filter(
        status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING]
    ).values_list("payload", flat=True)
    queued = queued_attachment_ids(list(payloads))
    expired = [a for a in candidates if a.id not in queued]
    if not expired:
        return strays
    async with in_transaction() as conn:
        later = await discard_attachments(expired, conn)
    await remove_stored(later)
    log.info("expired %d uploads that no complaint took", len(expired))
    return len(expired) + strays


@dataclass
class MigrationReport:
    moved: int = 0
    already: int = 0
    missing: list[int] = field(default_factory=list)


async def migrate_attachments(target: BlobStore, *, batch: int = 100) -> MigrationReport:
    """Copy every attachment not yet in `target` there and point its row at the copy.

    Safe to interrupt and re-run (a row moves only after its copy is stored); the old copies
    are left for the operator to delete once a backup of the new store exists.
    """
    report = MigrationReport()
    last_id = 0
    while True:
        rows = await Attachment.filter(id__gt=last_id).order_by("id").limit(batch)
        if not rows:
            return report
        for row in rows:
            last_id = row.id
            if target.owns(row.stored_path):
                report.already += 1
                continue
            try:
                data = await read_location(row.stored_path)
            except StorageError as error:
                log.warning("attachment %s: %s", row.id, error)
                report.missing.append(row.id)
                continue
            location = await target.put(row.sha256, data)
            await Attachment.filter(id=row.id).update(stored_path=location)
            report.moved += 1


def attachment_ref(attachment: Attachment) -> FileRef:
    """The neutral reference the dialog keeps for a stored attachment (no bytes)."""
    return FileRef(
        file_id=attachment_file_id(attachment.id),
        file_name=attachment.file_name,
        mime_type=attachment.mime_type,
        size=attachment.size,
    )
