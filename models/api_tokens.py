"""API tokens for the REST API and Open311, and the idempotency records of POST requests.

- A token belongs to one staff member and acts as them: the same rule book
  (models.workflow.decide through models.actions.act), the same case scope
  (models.notifications.case_scope) and the same masking as their desk. Its scopes narrow what
  the token may do, never widen it: `read` (lists, cases, events, files, departments, staff,
  statistics), `act` (workflow actions), `file` (file a complaint for someone, as the desk's
  record form; the staff member must be allowed to record), `admin` (every staff member's
  tokens; only for staff who may manage staff).
- The token is `cdk_` + 32 random bytes (256 bits), shown once when created. The database keeps
  its SHA-256 only. A slow password hash (argon2, as for desk passwords) protects secrets
  people choose, which are few enough to guess; a 256-bit random token cannot be guessed from
  its hash, so one fast SHA-256 suffices and lets every request find its token by an indexed
  lookup. A copy of the database therefore authenticates nobody.
- Revoked tokens stay listed (with who revoked them when) and authenticate nobody; so do the
  tokens of a disabled staff member. `last_used_at` is written at most once a minute per token.
- Idempotency: a POST with an `Idempotency-Key` header stores its answer under (token, key)
  with the SHA-256 of method, path and body; the same key with the same request gets the stored
  answer again, with a different request it is refused (422).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from tortoise import fields
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from models.callbacks import may_record
from models.entities import Staff
from models.staffing import may_manage_staff

TOKEN_PREFIX = "cdk_"
TOKEN_BYTES = 32
SHOWN_PREFIX = 12  # the first characters kept in the clear, to tell tokens apart
TOUCH_EVERY = timedelta(minutes=1)
MAX_NAME = 100
IDEMPOTENCY_KEY_MAX = 200
IDEMPOTENCY_TTL = timedelta(hours=24)


class Scope(StrEnum):
    READ = "read"
    ACT = "act"
    FILE = "file"
    ADMIN = "admin"


ALL_SCOPES: tuple[Scope, ...] = tuple(Scope)


class ApiToken(Model):
    """One staff member's API token, kept as the SHA-256 of the token only."""

    id = fields.IntField(primary_key=True)
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="api_tokens", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=MAX_NAME)
    token_hash = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=16)
    scopes = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    created_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="api_tokens_made", null=True, on_delete=fields.SET_NULL
    )
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    revoked_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="api_tokens_revoked", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "api_token"
        indexes = (("staff_id",),)


class ApiIdempotency(Model):
    """The stored answer to one POST made with an Idempotency-Key."""

    id = fields.BigIntField(primary_key=True)
    token: fields.ForeignKeyRelation[ApiToken] = fields.ForeignKeyField(
        "models.ApiToken", related_name="idempotency", on_delete=fields.CASCADE
    )
    key = fields.CharField(max_length=IDEMPOTENCY_KEY_MAX)
    request_hash = fields.CharField(max_length=64)
    status = fields.IntField()
    content_type = fields.CharField(max_length=100)
    body = fields.TextField()
    created_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "api_idempotency"
        unique_together = (("token_id", "key"),)


# -- pure rules ---------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def scopes_refused(staff: Staff, scopes: list[str] | tuple[str, ...]) -> str | None:
    """Why `staff` may not hold a token with `scopes` (None when they may)."""
    if not scopes:
        return "a token needs at least one scope"
    for scope in scopes:
        if scope not in {str(s) for s in Scope}:
            return f"unknown scope {scope!r} (scopes: {', '.join(ALL_SCOPES)})"
    if Scope.FILE in scopes and not may_record(staff):
        return "this staff member may not record complaints (scope file)"
    if Scope.ADMIN in scopes and not may_manage_staff(staff):
        return "only staff who manage staff may hold the admin scope"
    if not staff.active:
        return "the staff member is disabled"
    return None


def may_manage_tokens_of(viewer: Staff, owner_id: int) -> bool:
    """A staff member manages their own tokens; those who manage staff manage everyone's."""
    return viewer.active and (viewer.id == owner_id or may_manage_staff(viewer))


def request_hash(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


# -- tokens -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


async def create_token(
    staff: Staff,
    name: str,
    scopes: list[str] | tuple[str, ...],
    *,
    now: datetime,
    created_by: Staff | None = None,
) -> NewToken:
    """A new token for `staff`. Raises ValueError naming what is wrong (scopes, name)."""
    name = name.strip()[:MAX_NAME]
    if not name:
        raise ValueError("a token needs a name (what it is for)")
    wanted = list(dict.fromkeys(str(s) for s in scopes))
    problem = scopes_refused(staff, wanted)
    if problem:
        raise ValueError(problem)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    token = await ApiToken.create(
        staff=staff,
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[:SHOWN_PREFIX],
        scopes=wanted,
        created_at=now,
        created_by=created_by or staff,
    )
    return NewToken(token, secret)


async def tokens_of(viewer: Staff, *, everyone: bool = False) -> list[ApiToken]:
    """The viewer's own tokens; with `everyone`, all tokens (for those who manage staff)."""
    query = (
        ApiToken.all()
        if everyone and may_manage_staff(viewer)
        else ApiToken.filter(staff_id=viewer.id)
    )
    return await query.order_by("-id").prefetch_related("staff")


async def revoke_token(token_id: int, by: Staff, *, now: datetime) -> ApiToken:
    """Revoke a token `by` may manage. LookupError when there is none they may see."""
    token = await ApiToken.filter(id=token_id).first()
    if token is None or not may_manage_tokens_of(by, token.staff_id):  # type: ignore[attr-defined]
        raise LookupError(f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = now
        token.revoked_by = by
        await token.save(update_fields=["revoked_at", "revoked_by_id"])
    return token


@dataclass(frozen=True)
class Authenticated:
    token: ApiToken
    staff: Staff

    def allows(self, scope: Scope) -> bool:
        return str(scope) in self.token.scopes


async def authenticate(secret: str | None, *, now: datetime) -> Authenticated | None:
    """The live token and its active staff member for `secret`, or None."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    token = await ApiToken.filter(token_hash=hash_token(secret)).prefetch_related("staff").first()
    if token is None or token.revoked_at is not None or not token.staff.active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        token.last_used_at = now
        await ApiToken.filter(id=token.id).update(last_used_at=now)
    return Authenticated(token, token.staff)


# -- idempotency ----------------------------------------------------------------------------------

PENDING = 0  # the status of a key whose first request is still being answered


@dataclass(frozen=True)
class StoredAnswer:
    request_hash: str
    status: int  # PENDING while the first request runs
    content_type: str
    body: str


def _answer(row: ApiIdempotency) -> StoredAnswer:
    return StoredAnswer(row.request_hash, row.status, row.content_type, row.body)


async def reserve_key(
    token: ApiToken, key: str, fingerprint: str, *, now: datetime
) -> StoredAnswer | None:
    """Claim `key` for this request (None: claimed, go ahead) or the earlier request's record:
    its answer, or PENDING while it runs. The unique (token, key) row decides between
    concurrent requests, so only one of them runs."""
    await ApiIdempotency.filter(
        token_id=token.id, key=key, created_at__lt=now - IDEMPOTENCY_TTL
    ).delete()
    try:
        async with in_transaction():
            await ApiIdempotency.create(
                token=token,
                key=key,
                request_hash=fingerprint,
                status=PENDING,
                content_type="",
                body="",
                created_at=now,
            )
        return None
    except IntegrityError:
        row = await ApiIdempotency.filter(token_id=token.id, key=key).first()
        if row is None:  # released meanwhile: the caller may try again
            return StoredAnswer(fingerprint, PENDING, "", "")
        return _answer(row)


async def finish_key(token: ApiToken, key: str, answer: StoredAnswer) -> None:
    await ApiIdempotency.filter(token_id=token.id, key=key, status=PENDING).update(
        status=answer.status, content_type=answer.content_type, body=answer.body
    )


async def release_key(token: ApiToken, key: str) -> None:
    """The request failed on our side: nothing to replay, a retry runs again."""
    await ApiIdempotency.filter(token_id=token.id, key=key, status=PENDING).delete()


async def prune_idempotency(now: datetime) -> int:
    return await ApiIdempotency.filter(created_at__lt=now - IDEMPOTENCY_TTL).delete()
