"""Stored photos and files: content-addressed bytes on disk, one Attachment row per upload.

Bytes live under `<data_dir>/attachments/<sha[:2]>/<sha256>` so the same photo sent twice is
stored once; the row keeps the platform's file id, name, MIME type and size, and is linked to a
complaint when the complaint is filed or supplemented. The dialog only ever sees the neutral
file id "att:<row id>".
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

from tortoise.backends.base.client import BaseDBAsyncClient

from handlers.messages import FileRef
from models.entities import Attachment, Channel

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
    return data_dir / "attachments" / sha256[:2] / sha256


def _write_once(path: Path, data: bytes) -> None:
    """Write atomically (temporary file, then rename) unless the content is already there."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


async def store_attachment(
    data_dir: Path,
    channel: Channel,
    file: FileRef,
    *,
    max_bytes: int,
    conn: BaseDBAsyncClient | None = None,
) -> Attachment:
    """Keep the downloaded bytes of `file` and record them; refuse over `max_bytes`."""
    if file.data is None:
        raise ValueError("the file's bytes must be downloaded before it is stored")
    size = len(file.data)
    if size > max_bytes:
        raise AttachmentTooLarge(size, max_bytes)
    sha256 = hashlib.sha256(file.data).hexdigest()
    path = stored_path(data_dir, sha256)
    # Disk writes off the event loop: a 10 MB fsync must not stall other conversations.
    await asyncio.to_thread(_write_once, path, file.data)
    return await Attachment.create(
        channel=channel,
        platform_file_id=file.file_id[:256] if file.file_id else None,
        file_name=(file.file_name or None) and file.file_name[:255],
        mime_type=(file.mime_type or None) and file.mime_type[:100],
        size=size,
        sha256=sha256,
        stored_path=str(path),
        using_db=conn,
    )


def attachment_ref(attachment: Attachment) -> FileRef:
    """The neutral reference the dialog keeps for a stored attachment (no bytes)."""
    return FileRef(
        file_id=attachment_file_id(attachment.id),
        file_name=attachment.file_name,
        mime_type=attachment.mime_type,
        size=attachment.size,
    )
