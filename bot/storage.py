"""Where attachment bytes live, chosen by one setting (`COMPLAINTDESK_ATTACHMENT_STORAGE`):

* `database` (the default) — in the `attachment_blob` table of the product's own database:
  PostgreSQL `bytea`, or the SQLite file of the embedded default; every worker on the database
  reads them, and a `pg_dump` backs them up with the rest;
* `s3://BUCKET[/PREFIX][?endpoint=URL&region=R]` — an S3-compatible object store (MinIO, Ceph,
  a cloud bucket) through aiobotocore; credentials the usual way (AWS_ACCESS_KEY_ID and
  AWS_SECRET_ACCESS_KEY, or an instance role);
* `file` — content-addressed files under DATA_DIR/attachments: one host only (the layout before
  this setting existed).

An Attachment row's `stored_path` is its *location*: `db:<sha256>`, `s3://bucket/key`, or a file
path. Reading goes by the location, not the setting, so rows stored before a change of setting
stay readable until `complaintdesk attachments migrate` moves them.

The API is small: `put` (idempotent: the same bytes twice are stored once), `read`, `remove`.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient

DB_PREFIX = "db:"
S3_PREFIX = "s3://"


class StorageError(RuntimeError):
    """The bytes cannot be stored or read (missing, unreachable store)."""


class BlobStore(Protocol):
    """Content-addressed bytes; `conn` lets the database store write in the caller's transaction."""

    def describe(self) -> str: ...

    def owns(self, location: str) -> bool: ...

    async def put(self, sha256: str, data: bytes, conn: BaseDBAsyncClient | None = None) -> str: ...


def _connection(conn: BaseDBAsyncClient | None) -> BaseDBAsyncClient:
    return conn or Tortoise.get_connection("default")


def _placeholders(conn: BaseDBAsyncClient, count: int) -> list[str]:
    if conn.capabilities.dialect == "postgres":
        return [f"${i}" for i in range(1, count + 1)]
    return ["?"] * count


# -- database -----------------------------------------------------------------------------


class DatabaseStore:
    def describe(self) -> str:
        return "database"

    def owns(self, location: str) -> bool:
        return location.startswith(DB_PREFIX)

    async def put(self, sha256: str, data: bytes, conn: BaseDBAsyncClient | None = None) -> str:
        db = _connection(conn)
        a, b, c = _placeholders(db, 3)
        # Two workers storing the same photo at once: the second insert is a no-op.
        await db.execute_query(
            # The same photo again refreshes created_at, so a stray copy about to be swept
            # (`remove_unreferenced_blobs`) is kept for the row about to name it.
            f"INSERT INTO attachment_blob (sha256, data, created_at) VALUES ({a}, {b}, {c}) "
            "ON CONFLICT (sha256) DO UPDATE SET created_at = excluded.created_at",
            [sha256, data, datetime.now(UTC)],
        )
        return f"{DB_PREFIX}{sha256}"


async def _read_db(location: str, conn: BaseDBAsyncClient | None) -> bytes:
    db = _connection(conn)
    (a,) = _placeholders(db, 1)
    _, rows = await db.execute_query(
        f"SELECT data FROM attachment_blob WHERE sha256 = {a}", [location.removeprefix(DB_PREFIX)]
    )
    if not rows:
        raise StorageError(f"{location}: not in the database")
    return bytes(rows[0]["data"])


async def _remove_db(location: str, conn: BaseDBAsyncClient | None) -> None:
    db = _connection(conn)
    (a,) = _placeholders(db, 1)
    await db.execute_query(
        f"DELETE FROM attachment_blob WHERE sha256 = {a}", [location.removeprefix(DB_PREFIX)]
    )


async def remove_unreferenced_blobs(cutoff: datetime) -> int:
    """Delete bytes in the database that no Attachment row names and that were stored before
    `cutoff` (a crash between storing the bytes and recording the row leaves such a copy)."""
    db = _connection(None)
    (a,) = _placeholders(db, 1)
    count, _ = await db.execute_query(
        f"DELETE FROM attachment_blob WHERE created_at < {a} AND NOT EXISTS "
        "(SELECT 1 FROM attachment WHERE attachment.sha256 = attachment_blob.sha256)",
        [cutoff],
    )
    return int(count or 0)


# -- files --------------------------------------------------------------------------------


def file_location(data_dir: Path, sha256: str) -> Path:
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


@dataclass
class FileStore:
    data_dir: Path

    def describe(self) -> str:
        return f"files under {self.data_dir / 'attachments'}"

    def owns(self, location: str) -> bool:
        return not location.startswith((DB_PREFIX, S3_PREFIX))

    async def put(self, sha256: str, data: bytes, conn: BaseDBAsyncClient | None = None) -> str:
        path = file_location(self.data_dir, sha256)
        # Off the event loop: a 10 MB fsync must not stall other conversations.
        await asyncio.to_thread(_write_once, path, data)
        return str(path)


# -- S3 -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Target:
    bucket: str
    prefix: str
    endpoint: str | None
    region: str | None

    @classmethod
    def parse(cls, url: str) -> S3Target:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3://BUCKET[/PREFIX] URL: {url!r}")
        query = parse_qs(parts.query)
        return cls(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint=(query.get("endpoint") or [None])[0],
            region=(query.get("region") or [None])[0],
        )

    def key(self, sha256: str) -> str:
        name = f"{sha256[:2]}/{sha256}"
        return f"{self.prefix}/{name}" if self.prefix else name


def _split_s3(location: str) -> tuple[str, str]:
    bucket, _, key = location.removeprefix(S3_PREFIX).partition("/")
    return bucket, key


class S3Store:
    """aiobotocore, imported only when this store is configured (it is an optional extra)."""

    def __init__(self, url: str) -> None:
        self.target = S3Target.parse(url)
        self._session: Any = None

    def describe(self) -> str:
        where = f" at {self.target.endpoint}" if self.target.endpoint else ""
        return f"s3://{self.target.bucket}/{self.target.prefix}{where}"

    def owns(self, location: str) -> bool:
        return location.startswith(f"{S3_PREFIX}{self.target.bucket}/")

    def client(self) -> Any:
        if self._session is None:
            try:
                from aiobotocore.session import get_session
            except ImportError as error:  # pragma: no cover - depends on the installation
                raise StorageError(
                    "S3 storage needs aiobotocore: pip install 'complaintdesk[s3]'"
                ) from error
            self._session = get_session()
        return self._session.create_client(
            "s3", endpoint_url=self.target.endpoint, region_name=self.target.region or "us-east-1"
        )

    async def put(self, sha256: str, data: bytes, conn: BaseDBAsyncClient | None = None) -> str:
        key = self.target.key(sha256)
        async with self.client() as s3:
            await s3.put_object(Bucket=self.target.bucket, Key=key, Body=data)
        return f"{S3_PREFIX}{self.target.bucket}/{key}"

    async def read(self, location: str) -> bytes:
        bucket, key = _split_s3(location)
        async with self.client() as s3:
            try:
                response = await s3.get_object(Bucket=bucket, Key=key)
            except s3.exceptions.NoSuchKey as error:
                raise StorageError(f"{location}: no such object") from error
            async with response["Body"] as body:
                return bytes(await body.read())

    async def remove(self, location: str) -> None:
        bucket, key = _split_s3(location)
        async with self.client() as s3:
            await s3.delete_object(Bucket=bucket, Key=key)


# -- the configured store -----------------------------------------------------------------

_configured: BlobStore = DatabaseStore()
_s3_stores: dict[str, S3Store] = {}


def store_for(setting: str, data_dir: Path) -> BlobStore:
    if setting == "database":
        return DatabaseStore()
    if setting == "file":
        return FileStore(data_dir)
    return S3Store(setting)


def configure_storage(setting: str, data_dir: Path) -> BlobStore:
    """Make `setting` the store new attachments go to in this process."""
    global _configured
    _configured = store_for(setting, data_dir)
    if isinstance(_configured, S3Store):
        _s3_stores[_configured.target.bucket] = _configured
    return _configured


def configured_store() -> BlobStore:
    return _configured


def _s3_for(location: str) -> S3Store:
    bucket, _ = _split_s3(location)
    store = _s3_stores.get(bucket)
    if store is None:  # a row from an earlier setting: same credentials, default endpoint
        store = _s3_stores[bucket] = S3Store(f"s3://{bucket}")
    return store


async def read_location(location: str, conn: BaseDBAsyncClient | None = None) -> bytes:
    """The bytes at `location`, whichever store it names."""
    if location.startswith(DB_PREFIX):
        return await _read_db(location, conn)
    if location.startswith(S3_PREFIX):
        return await _s3_for(location).read(location)
    try:
        return await asyncio.to_thread(Path(location).read_bytes)
    except OSError as error:
        raise StorageError(f"{location}: {error.strerror or error}") from error


async def remove_location(location: str, conn: BaseDBAsyncClient | None = None) -> None:
    """Delete the bytes at `location` (gone already is fine)."""
    if location.startswith(DB_PREFIX):
        await _remove_db(location, conn)
    elif location.startswith(S3_PREFIX):
        await _s3_for(location).remove(location)
    else:
        await asyncio.to_thread(Path(location).unlink, missing_ok=True)
