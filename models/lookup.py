"""Finding a complaint again from any browser or chat: its number plus a proof of ownership.

The proof is the phone number the complainant gave, or the access code printed on the receipt
(only its argon2 hash is stored). Before the check passes, the caller may show nothing but the
public view: the number, the state and the stage deadlines. After it, the case's history and
the replies. Checks are rate-limited per address (an IP, or channel:user for a chat) and per
number, counted in the database so every worker sees the same counts.

Pure parts first (code format, limit decision, what is public); the database shell below.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from models.entities import Channel, Complainant, Complaint, Event
from models.workflow import Action, Role

# No 0/O, 1/I/L: a code read off paper and typed on a phone.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
# Stage deadlines a complainant is owed, in the order a case meets them (internal targets such as
# dispatch, action_plan or manager_notice are never shown).
PUBLIC_STAGES = ("acceptance", "first_contact", "resolution", "result_notice")
# Events a complainant sees in the history: state changes and their own additions.
_OWN_ACTIONS = frozenset({Action.SUPPLEMENT, Action.DISPUTE, Action.WITHDRAW})

# argon2id at 1 pass over 2 MiB, 1 lane: the cost the code's entropy calls for, not a password's.
# The code is 8 letters of 31, 31^8 ≈ 2^39.6, so a guesser needs 2^39 tries on average. Online,
# 5 failures per number per 15 minutes allow 480 a day: 3 million years. Offline, with a stolen hash
# (from a database that holds the complaint itself anyway): 2^39 × ~0.85 ms of CPU per try (this
# setting, measured on the 2-core bench host; 2 passes over 19 MiB took 24 ms) ≈ 15 core-years
# per code, and 2 MiB per try keeps GPUs from running many at once. The 19 MiB setting made the
# hash the largest single cost of a filing (28 % of the server's CPU under load). Hashes made
# with earlier parameters still verify: argon2 keeps them in the hash.
_hasher = PasswordHasher(time_cost=1, memory_cost=2 * 1024, parallelism=1)

# ---------------------------------------------------------------- pure


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def display_code(code: str) -> str:
    """ "K7QM2XPA" → "K7QM-2XPA" (easier to read out and copy)."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def normalise_code(typed: str) -> str | None:
    """A typed access code in stored form, or None when it cannot be one."""
    cleaned = re.sub(r"[\s\-_.·]", "", typed or "").upper()
    if len(cleaned) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in cleaned):
        return None
    return cleaned


@dataclass(frozen=True)
class Limits:
    per_address: int
    per_number: int
    window: timedelta


def limit_reached(limits: Limits, by_address: int, failed_for_number: int) -> bool:
    """Whether one more check is refused: every check counts for the address, failed ones for
    the number (so a guesser cannot lock the owner out by succeeding, only by failing)."""
    return by_address >= limits.per_address or failed_for_number >= limits.per_number


@dataclass(frozen=True)
class StageDue:
    stage: str
    due: datetime
    provisional: bool
    done: bool
    paused: bool = False  # waiting for the complainant's material: the clock stands still


@dataclass(frozen=True)
class PublicView:
    """What anybody holding the number may see: nothing about the person or the facts."""

    number: str
    state: str
    stages: tuple[StageDue, ...]


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    action: str
    to_state: str | None
    by_complainant: bool
    said: str | None = None  # what staff asked the complainant (a request for material)


@dataclass(frozen=True)
class PrivateView:
    """What the complainant sees once the check passed (their own case; no staff identity)."""

    public: PublicView
    category: str | None
    submitted_at: datetime | None
    history: tuple[HistoryEntry, ...]
    reply_text: str | None
    contact_phone: str | None = None  # masked: "138****5678"


def public_stages(deadlines: dict[str, Any] | None, paused: bool = False) -> tuple[StageDue, ...]:
    """The owed stage deadlines; while the case waits for material (`paused`) the resolution
    stage is shown as paused, not as done (the workflow closes it until the clock resumes)."""
    out = []
    for stage in PUBLIC_STAGES:
        entry = (deadlines or {}).get(stage)
        if not isinstance(entry, dict) or not entry.get("due"):
            continue
        stands_still = paused and stage == "resolution"
        out.append(
            StageDue(
                stage,
                datetime.fromisoformat(entry["due"]),
                bool(entry.get("provisional")),
                bool(entry.get("done")) and not stands_still,
                stands_still,
            )
        )
    return tuple(out)


def mask_phone(phone: str | None) -> str | None:
    """ "+8613812345678" → "138****5678": enough to recognise, not to call."""
    if not phone:
        return None
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("86") and len(digits) > 11:
        digits = digits[2:]
    if len(digits) < 7:
        return "***"
    return f"{digits[:3]}****{digits[-4:]}"


def history_of(events: list[tuple[Any, ...]]) -> tuple[HistoryEntry, ...]:
    """(created_at, action, from_state, to_state, actor_role[, payload]) rows → what the
    complainant sees: state changes, the complainant's own steps and what staff asked them
    (the question of a request for material); staff notes and internal steps stay inside."""
    out = []
    for row in events:
        at, action, from_state, to_state, role = row[:5]
        payload = row[5] if len(row) > 5 and isinstance(row[5], dict) else {}
        mine = role == Role.COMPLAINANT
        said = payload.get("question") if action == Action.REQUEST_MATERIAL else None
        if (to_state and from_state != to_state) or (mine and action in _OWN_ACTIONS):
            out.append(HistoryEntry(at, action, to_state, mine, said or None))
    return tuple(out)


# ---------------------------------------------------------------- tables


class ComplaintAccess(Model):
    """The receipt's access code of one complaint, as an argon2 hash."""

    complaint: fields.OneToOneRelation[Complaint] = fields.OneToOneField(
        "models.Complaint", related_name="access", on_delete=fields.CASCADE
    )
    code_hash = fields.CharField(max_length=255)
    created_at = fields.DatetimeField()

    class Meta:
        table = "complaint_access"


class LookupAttempt(Model):
    """One check of a number and a proof, for the rate limits (old rows are pruned as we go)."""

    id = fields.BigIntField(primary_key=True)
    address = fields.CharField(max_length=128, db_index=True)
    number = fields.CharField(max_length=32, db_index=True)
    ok = fields.BooleanField()
    at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "lookup_attempt"


class FollowedComplaint(Model):
    """A chat or web-chat session that proved a complaint theirs: its "my complaints" list."""

    id = fields.IntField(primary_key=True)
    channel = fields.CharEnumField(Channel, max_length=16)
    external_id = fields.CharField(max_length=128)
    complaint: fields.ForeignKeyRelation[Complaint] = fields.ForeignKeyField(
        "models.Complaint", related_name="followers", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField()

    class Meta:
        table = "followed_complaint"
        unique_together = (("channel", "external_id", "complaint"),)


# ---------------------------------------------------------------- shell


@dataclass(frozen=True)
class HashedCode:
    """A fresh access code and its hash, made before the code has a complaint: hashing takes
    about a millisecond of CPU, which a filing should not spend while it holds the number's
    lock (or SQLite's write lock)."""

    code: str
    hashed: str


async def hashed_code() -> HashedCode:
    code = new_code()
    # ~1 ms of CPU even at this cost: off the event loop (argon2-cffi releases the GIL).
    return HashedCode(code, await asyncio.to_thread(_hasher.hash, code))


async def store_code(
    complaint: Complaint,
    code: HashedCode,
    now: datetime,
    conn: BaseDBAsyncClient,
    *,
    first: bool = False,
) -> str:
    """Give `complaint` the access code `code` (replacing any earlier one); only its hash is
    kept. Returns the code, for the receipt. `first`: the complaint was filed in this
    transaction, so it has no code to replace."""
    if not first:
        await ComplaintAccess.filter(complaint_id=complaint.id).using_db(conn).delete()
    row = access_row(code, now)
    row.complaint_id = complaint.id
    await row.save(using_db=conn, force_create=True)
    return code.code


def access_row(code: HashedCode, now: datetime) -> ComplaintAccess:
    """The row keeping `code`'s hash, for the caller to link to its complaint and insert."""
    return ComplaintAccess(code_hash=code.hashed, created_at=now)


async def issue_code(complaint: Complaint, now: datetime, conn: BaseDBAsyncClient) -> str:
    """A fresh access code for `complaint` (replacing any earlier one); only its hash is kept."""
    return await store_code(complaint, await hashed_code(), now, conn)


async def _code_matches(complaint_id: int, code: str, conn: BaseDBAsyncClient | None) -> bool:
    access = await ComplaintAccess.filter(complaint_id=complaint_id).using_db(conn).first()
    if access is None:
        return False
    try:
        return await asyncio.to_thread(_hasher.verify, access.code_hash, code)
    except (VerificationError, InvalidHashError):
        return False


@dataclass
class CheckOutcome:
    status: Literal["ok", "wrong", "limited"]
    complaint: Complaint | None = None
    retry_after: int = 0  # seconds, when limited
    extra: dict[str, Any] = field(default_factory=dict)


async def check(
    *,
    number: str,
    phone: str | None,
    code: str | None,
    address: str,
    now: datetime,
    limits: Limits,
    conn: BaseDBAsyncClient | None = None,
) -> CheckOutcome:
    """Whether `phone` (normalised, as the dialog stores it) or `code` proves `number` theirs.

    A number that does not exist and a wrong proof give the same "wrong": the answer tells a
    guesser nothing. Over the limits nothing is checked ("limited", with when to try again).
    """
    since = now - limits.window
    await LookupAttempt.filter(at__lt=since).using_db(conn).delete()
    by_address = await LookupAttempt.filter(address=address, at__gte=since).using_db(conn).count()
    failed = (
        await LookupAttempt.filter(number=number, ok=False, at__gte=since).using_db(conn).count()
    )
    if limit_reached(limits, by_address, failed):
        oldest = (
            await LookupAttempt.filter(at__gte=since)
            .filter(address=address)
            .using_db(conn)
            .order_by("at")
            .first()
        )
        wait = (oldest.at + limits.window - now) if oldest else limits.window
        return CheckOutcome("limited", retry_after=max(1, int(wait.total_seconds()) + 1))
    complaint = await Complaint.filter(number=number).using_db(conn).first()
    ok = False
    if complaint is not None:
        if phone and complaint.contact_phone and complaint.contact_phone == phone:
            ok = True
        elif phone and complaint.complainant_id:  # type: ignore[attr-defined]
            owner = await Complainant.filter(id=complaint.complainant_id).using_db(conn).first()  # type: ignore[attr-defined]
            ok = owner is not None and owner.phone == phone
        if not ok and code:
            ok = await _code_matches(complaint.id, code, conn)
    await LookupAttempt.create(address=address, number=number, ok=ok, at=now, using_db=conn)
    return CheckOutcome("ok", complaint) if ok else CheckOutcome("wrong")


async def public_view(number: str, conn: BaseDBAsyncClient | None = None) -> PublicView | None:
    complaint = await Complaint.filter(number=number).using_db(conn).first()
    if complaint is None or complaint.submitted_at is None:
        return None
    return _public(complaint)


def _public(complaint: Complaint) -> PublicView:
    return PublicView(complaint.number, str(complaint.state), stages_of(complaint))


def stages_of(complaint: Complaint) -> tuple[StageDue, ...]:
    return public_stages(complaint.deadlines, paused=complaint.paused_at is not None)


async def private_view(complaint: Complaint, conn: BaseDBAsyncClient | None = None) -> PrivateView:
    rows = (
        await Event.filter(complaint_id=complaint.id)
        .using_db(conn)
        .order_by("id")
        .values_list("created_at", "action", "from_state", "to_state", "actor_role", "payload")
    )
    return PrivateView(
        public=_public(complaint),
        category=complaint.category,
        submitted_at=complaint.submitted_at,
        history=history_of([tuple(r) for r in rows]),  # type: ignore[misc]
        reply_text=complaint.reply_text,
        contact_phone=mask_phone(complaint.contact_phone),
    )


async def follow(
    channel: Channel, external_id: str, complaint: Complaint, now: datetime, conn: Any = None
) -> None:
    """Put `complaint` on this session's "my complaints" list (once)."""
    await FollowedComplaint.get_or_create(
        channel=channel,
        external_id=external_id,
        complaint_id=complaint.id,
        defaults={"created_at": now},
        using_db=conn,
    )


async def followed(
    channel: Channel, external_id: str, conn: BaseDBAsyncClient | None = None
) -> list[Complaint]:
    """The session's own complaints and those it proved theirs, newest first."""
    own = Complaint.filter(
        complainant__channel=channel, complainant__external_id=external_id
    ).using_db(conn)
    found_ids = (
        await FollowedComplaint.filter(channel=channel, external_id=external_id)
        .using_db(conn)
        .values_list("complaint_id", flat=True)
    )
    rows = {c.id: c for c in await own}
    if found_ids:
        for c in await Complaint.filter(id__in=list(found_ids)).using_db(conn):
            rows[c.id] = c
    listed = [c for c in rows.values() if c.submitted_at is not None]
    return sorted(listed, key=lambda c: (c.submitted_at, c.id), reverse=True)
