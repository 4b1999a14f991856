"""Signing in to the browser desk: passwords, sessions and the brake on guessing.

- A staff member sets a login name and password at /desk/invite/<code> with the same one-time
  invite code the chat redeems (models.staffing): the chat and the desk each use it once, until
  the invite's end (`Staff.invite_valid_until`), so one invite binds a chat, the browser or both.
- Passwords are stored as argon2id hashes (argon2-cffi); a hash made with older parameters is
  upgraded at the next successful sign-in.
- A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256, so a
  copy of the database signs nobody in. A session ends at sign-out, at sign-out everywhere, when
  unused for `idle` and in any case `lifetime` after sign-in. Each carries its own CSRF token.
- Failed sign-ins are counted per login name as typed (known or not, so the answer never tells
  whether a name exists): after FREE_FAILURES the next attempt must wait, doubling each time,
  and after LOCKOUT_FAILURES the name is locked for LOCKOUT. Every failure and lockout is logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from models.entities import Staff

log = logging.getLogger(__name__)

FREE_FAILURES = 3
LOCKOUT_FAILURES = 10
FIRST_WAIT = timedelta(seconds=2)
LOCKOUT = timedelta(minutes=30)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
LOGIN_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{1,39}")

_hasher = PasswordHasher()
# Verified against when the login is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class DeskCredential(Model):
    """A staff member's browser-desk login name and password hash."""

    id = fields.IntField(primary_key=True)
    staff: fields.OneToOneRelation[Staff] = fields.OneToOneField(
        "models.Staff", related_name="desk_credential", on_delete=fields.CASCADE
    )
    login = fields.CharField(max_length=40, unique=True)  # lower case
    password_hash = fields.CharField(max_length=255)
    # The invite code that set this password: the desk uses a code once.
    invite_code = fields.CharField(max_length=64, null=True)
    password_set_at = fields.DatetimeField()

    class Meta:
        table = "desk_credential"


class DeskSignInThrottle(Model):
    """Consecutive failed sign-ins for one login name as typed, known or not."""

    login = fields.CharField(max_length=64, primary_key=True)
    failures = fields.IntField(default=0)
    wait_until = fields.DatetimeField(null=True)
    last_failure_at = fields.DatetimeField(null=True)

    class Meta:
        table = "desk_sign_in_throttle"


class DeskSession(Model):
    """One signed-in browser. `token_hash` is the SHA-256 of the cookie's token."""

    token_hash = fields.CharField(max_length=64, primary_key=True)
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="desk_sessions", on_delete=fields.CASCADE
    )
    csrf_token = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)  # the absolute end
    user_agent = fields.CharField(max_length=200, null=True)

    class Meta:
        table = "desk_session"
        indexes = (("staff_id",),)


# -- pure rules ---------------------------------------------------------------------------


def normalise_login(login: str) -> str:
    return login.strip().lower()[:64]


def login_problem(login: str) -> str | None:
    """Why a chosen login name cannot be used (None when it can)."""
    if not LOGIN_PATTERN.fullmatch(login):
        return "login_format"
    return None


def password_problem(password: str, repeated: str) -> str | None:
    """Why a chosen password cannot be used (None when it can)."""
    if password != repeated:
        return "password_mismatch"
    if len(password) < MIN_PASSWORD_LENGTH:
        return "password_short"
    if len(password) > MAX_PASSWORD_LENGTH:
        return "password_long"
    return None


def wait_after(failures: int) -> timedelta | None:
    """How long the next attempt must wait after `failures` consecutive failures: nothing for
    the first few, then 2 s doubling each time, LOCKOUT once LOCKOUT_FAILURES is reached."""
    if failures >= LOCKOUT_FAILURES:
        return LOCKOUT
    if failures < FREE_FAILURES:
        return None
    return min(FIRST_WAIT * 2 ** (failures - FREE_FAILURES), LOCKOUT)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- passwords ------------------------------------------------------------------------------


async def hash_password(password: str) -> str:
    # argon2 takes tens of milliseconds of CPU on purpose: keep the event loop free meanwhile.
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


# -- invites --------------------------------------------------------------------------------


class DeskInviteRefusal(StrEnum):
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    DISABLED = "disabled"


async def staff_for_desk_invite(code: str, now: datetime) -> Staff | DeskInviteRefusal:
    """The staff member a desk invite code belongs to, if the desk may still use it."""
    code = code.strip()
    # Longer than any code (the column's 64): no row, and tortoise refuses to even ask.
    staff = await Staff.filter(invite_code=code).first() if 0 < len(code) <= 64 else None
    if staff is None:
        return DeskInviteRefusal.UNKNOWN
    if not staff.active:
        return DeskInviteRefusal.DISABLED
    credential = await DeskCredential.filter(staff_id=staff.id).first()
    if credential is not None and credential.invite_code == staff.invite_code:
        return DeskInviteRefusal.USED
    if staff.invite_valid_until is None or staff.invite_valid_until <= now:
        return DeskInviteRefusal.EXPIRED
    return staff


@dataclass(frozen=True)
class CredentialSet:
    staff: Staff
    login: str


async def set_password_from_invite(
    code: str, login: str, password: str, repeated: str, *, now: datetime
) -> CredentialSet | DeskInviteRefusal | str:
    """Set (or reset) the desk login and password with an invite code. Returns the refusal of
    the code, a problem code for the login or password, or what was set. Every existing
    session of the staff member ends (a reset after a lost password locks the old ones out)."""
    found = await staff_for_desk_invite(code, now)
    if not isinstance(found, Staff):
        return found
    login = normalise_login(login)
    problem = login_problem(login) or password_problem(password, repeated)
    if problem:
        return problem
    password_hash = await hash_password(password)
    try:
        async with in_transaction() as conn:
            taken = DeskCredential.filter(login=login).exclude(staff_id=found.id)
            if await taken.using_db(conn).exists():
                return "login_taken"
            # The conditional update makes a second use of the code at the same time lose.
            staff = (
                await Staff.filter(id=found.id, invite_code=found.invite_code, active=True)
                .using_db(conn)
                .first()
            )
            if staff is None:
                return DeskInviteRefusal.UNKNOWN
            credential = await DeskCredential.filter(staff_id=staff.id).using_db(conn).first()
            if credential is None:
                await DeskCredential.create(
                    staff=staff,
                    login=login,
                    password_hash=password_hash,
                    invite_code=staff.invite_code,
                    password_set_at=now,
                    using_db=conn,
                )
            else:
                updated = (
                    await DeskCredential.filter(id=credential.id)
                    .exclude(invite_code=staff.invite_code)
                    .using_db(conn)
                    .update(
                        login=login,
                        password_hash=password_hash,
                        invite_code=staff.invite_code,
                        password_set_at=now,
                    )
                )
                if not updated:
                    return DeskInviteRefusal.USED
            await DeskSession.filter(staff_id=staff.id).using_db(conn).delete()
    except IntegrityError:  # the same login chosen by someone else a moment ago, or a race
        return "login_taken"
    log.info("desk: staff #%s set the desk password for login %r", found.id, login)
    return CredentialSet(found, login)


# -- signing in -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    staff: Staff
    token: str  # for the cookie; only its hash is stored
    session: DeskSession


@dataclass(frozen=True)
class SignInRefused:
    reason: str  # "wait" (back-off or lockout) or "invalid"
    retry_after: timedelta | None = None


async def _throttle(login: str, conn: BaseDBAsyncClient | None = None) -> DeskSignInThrottle:
    row = await DeskSignInThrottle.filter(login=login).using_db(conn).first()
    if row is None:
        try:
            row = await DeskSignInThrottle.create(login=login, using_db=conn)
        except IntegrityError:
            row = await DeskSignInThrottle.get(login=login)
    return row


async def _record_failure(login: str, now: datetime, remote: str | None) -> timedelta | None:
    async with in_transaction() as conn:
        row = await _throttle(login, conn)
        failures = row.failures + 1
        wait = wait_after(failures)
        await (
            DeskSignInThrottle.filter(login=login)
            .using_db(conn)
            .update(
                failures=failures,
                last_failure_at=now,
                wait_until=now + wait if wait is not None else None,
            )
        )
    if failures >= LOCKOUT_FAILURES:
        log.warning(
            "desk: login %r locked for %s after %d failed sign-ins (last from %s)",
            login,
            LOCKOUT,
            failures,
            remote,
        )
    else:
        log.warning(
            "desk: failed sign-in %d for login %r from %s; next attempt waits %s",
            failures,
            login,
            remote,
            wait or timedelta(0),
        )
    return wait


async def sign_in(
    login: str,
    password: str,
    *,
    now: datetime,
    lifetime: timedelta,
    user_agent: str | None = None,
    remote: str | None = None,
) -> SignedIn | SignInRefused:
    """Check a login and password and open a session, honouring the back-off."""
    login = normalise_login(login)
    throttle = await DeskSignInThrottle.filter(login=login).first()
    if throttle is not None and throttle.wait_until is not None and throttle.wait_until > now:
        log.warning("desk: sign-in for login %r refused while it waits (from %s)", login, remote)
        return SignInRefused("wait", throttle.wait_until - now)
    credential = await DeskCredential.filter(login=login).first() if login else None
    valid = await _verify(credential.password_hash if credential else _DUMMY_HASH, password)
    staff = await Staff.filter(id=credential.staff_id).first() if credential and valid else None  # type: ignore[attr-defined]
    if staff is None or not staff.active:
        wait = await _record_failure(login, now, remote)
        return SignInRefused("wait" if wait and wait >= LOCKOUT else "invalid", wait)
    assert credential is not None
    if _hasher.check_needs_rehash(credential.password_hash):
        credential.password_hash = await hash_password(password)
        await credential.save(update_fields=["password_hash"])
    if throttle is not None:
        await DeskSignInThrottle.filter(login=login).delete()
    token = secrets.token_urlsafe(32)
    session = await DeskSession.create(
        token_hash=token_hash(token),
        staff=staff,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        user_agent=(user_agent or "")[:200] or None,
    )
    log.info("desk: staff #%s signed in as %r from %s", staff.id, login, remote)
    return SignedIn(staff, token, session)


# Re-writing last_seen_at on every request would make each page view a write; a minute's
# precision is enough for an idle limit counted in tens of minutes.
_TOUCH_EVERY = timedelta(minutes=1)


async def session_for_token(
    token: str | None, *, now: datetime, idle: timedelta
) -> tuple[DeskSession, Staff] | None:
    """The live session a cookie's token opens, and its (active) staff member."""
    if not token or len(token) > 128:
        return None
    session = await DeskSession.filter(token_hash=token_hash(token)).first()
    if session is None:
        return None
    if session.expires_at <= now or session.last_seen_at + idle <= now:
        await DeskSession.filter(token_hash=session.token_hash).delete()
        return None
    staff = await Staff.filter(id=session.staff_id, active=True).first()  # type: ignore[attr-defined]
    if staff is None:
        return None
    if now - session.last_seen_at >= _TOUCH_EVERY:
        session.last_seen_at = now
        await DeskSession.filter(token_hash=session.token_hash).update(last_seen_at=now)
    return session, staff


async def sign_out(session: DeskSession) -> None:
    await DeskSession.filter(token_hash=session.token_hash).delete()


async def sign_out_everywhere(staff_id: int) -> int:
    """End every desk session of a staff member; how many there were."""
    ended = await DeskSession.filter(staff_id=staff_id).delete()
    log.info("desk: staff #%s signed out everywhere (%d sessions)", staff_id, ended)
    return ended


async def prune_sessions(now: datetime) -> int:
    """Delete sessions past their absolute end (the daily retention job); idle ones go then
    too, as the end is at most `desk_session_hours` after sign-in."""
    return await DeskSession.filter(expires_at__lte=now).delete()


async def set_password(staff: Staff, login: str, password: str, *, now: datetime) -> str | None:
    """Set a staff member's desk login and password directly (the demo's accounts; staff set
    their own through an invite). Returns a problem code, or None when set."""
    login = normalise_login(login)
    problem = login_problem(login) or password_problem(password, password)
    if problem:
        return problem
    password_hash = await hash_password(password)
    async with in_transaction() as conn:
        if (
            await DeskCredential.filter(login=login)
            .exclude(staff_id=staff.id)
            .using_db(conn)
            .exists()
        ):
            return "login_taken"
        updated = (
            await DeskCredential.filter(staff_id=staff.id)
            .using_db(conn)
            .update(login=login, password_hash=password_hash, password_set_at=now)
        )
        if not updated:
            await DeskCredential.create(
                staff=staff, login=login, password_hash=password_hash, password_set_at=now,
                using_db=conn,
            )  # fmt: skip
        await DeskSession.filter(staff_id=staff.id).using_db(conn).delete()
    return None
