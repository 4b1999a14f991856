"""The outbox dispatcher: sends queued messages to people under each platform's limits.

Channel adapters implement `Sender`; they translate platform errors into the three exceptions
below so the dispatcher can decide, without knowing any platform, whether to wait, retry or give
up on a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, Protocol, TypeVar

import asyncpg
from aiohttp import web
from tortoise import connections
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q, Subquery
from tortoise.functions import Min
from tortoise.transactions import in_transaction

from bot.metrics import OUTBOX_SENDS
from handlers.messages import Outgoing
from models.entities import Channel, Complaint, Event, OutboxMessage, OutboxStatus, Staff
from models.outbox import DELIVERY_FAILED, outgoing_from_json
from models.workflow import Role

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """The platform asked us to wait (Telegram 429 `retry_after`): honour it exactly."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds} s")
        self.seconds = float(seconds)


class TransientFailure(Exception):
    """A 5xx or network error: retry with exponential backoff."""


# The failures that say the platform, not the message, is at fault (a 5xx, a network error, no
# answer in time): the channel is down, and its rows back off until it is up again.
_OUTAGE_ERRORS = (TransientFailure, TimeoutError)
# How `last_error` begins on a row backing off from such a failure. A 429's row keeps the
# platform's words (`str(RetryLater)`), so the recovery can tell the two waits apart (see
# `Dispatcher._recover`): there is no column for why a row waits.
UNREACHABLE = "platform unreachable: "
# While a channel is down, one of its rows backing off from the outage is tried this often (see
# `Dispatcher.probe_outages`): the platform's return is noticed within this, not at the earliest
# backoff, which after a few minutes down is minutes away.
OUTAGE_PROBE_SECONDS = 5.0


class PermanentFailure(Exception):
    """Retrying cannot help (bot blocked, chat not found, WeChat 45015 window closed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RateLimits:
    """A platform's sending limits; None means that limit does not apply."""

    per_chat_per_second: float | None = None
    global_per_second: float | None = None
    per_group_per_minute: float | None = None


# Telegram's documented broadcast limits (Bot API FAQ).
TELEGRAM_LIMITS = RateLimits(per_chat_per_second=1, global_per_second=30, per_group_per_minute=20)


class Sender(Protocol):
    """Delivers one neutral message on one channel; raises the exceptions above on failure."""

    channel: Channel
    limits: RateLimits

    async def send(self, chat_id: str, message: Outgoing) -> None: ...


def is_group_chat(chat_id: str) -> bool:
    """Telegram group and channel chats have negative ids; private chats positive ones."""
    return chat_id.startswith("-")


def backoff_delay(
    attempt: int,
    *,
    base: float = 2.0,
    cap: float = 600.0,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after the `attempt`-th failed try (1-based): exponential, capped, and
    jittered into [half, full] of the step so retries of many rows do not arrive in lockstep."""
    step = min(cap, base * 2 ** max(attempt - 1, 0))
    return step / 2 + step / 2 * rng()


class TokenBucket:
    """A token bucket in its GCRA form: `tat` (theoretical arrival time) is when the next send
    would be exactly on schedule; with capacity C, up to C - 1 may come early.

    Capacity 1 (the default) spaces sends evenly, which keeps us under Telegram's limits
    whatever window Telegram measures them over.
    """

    def __init__(self, rate: float, per: float = 1.0, capacity: int = 1) -> None:
        self.interval = per / rate
        self.tolerance = (capacity - 1) * self.interval
        self.tat = 0.0

    def ready_at(self, now: float) -> float:
        return max(now, self.tat - self.tolerance)

    def reserve(self, at: float) -> None:
        """Take one token at instant `at` (not before `ready_at`)."""
        self.tat = max(self.tat, at) + self.interval

    def pause(self, until: float) -> None:
        self.tat = max(self.tat, until + self.tolerance)


@dataclass(slots=True)
class Send:
    """One send as the limiter counts it: from its start until its answer came back (`end`
    None while in flight). The platform saw the request at some instant in between.

    `answered` is when the platform's last answer to it arrived (status and headers in, as the
    sender's HTTP layer saw it via `answer_arrived`), which is earlier than the sender's return
    by the answer's parsing; `end` takes it when known."""

    channel: Channel
    chat_id: str
    start: float
    end: float | None = None
    answered: float | None = None


# The send the current task is making (set by the dispatcher around `Sender.send`), so that a
# sender's HTTP layer can stamp its answers without every `Sender` taking a callback.
_CURRENT_SEND: contextvars.ContextVar[tuple[RateLimiter, Send] | None] = contextvars.ContextVar(
    "outbox_current_send", default=None
)


def answer_arrived() -> None:
    """Called by a sender the moment a platform answer's status and headers are in, before the
    body is read or parsed: the limiter counts the send's window from here rather than from
    the sender's return. A no-op outside a dispatcher's send (immediate replies, tests)."""
    current = _CURRENT_SEND.get()
    if current is not None:
        limiter, send = current
        limiter.answered(send)


# How long a send waits to look again when the window is full of sends still in flight (their
# answers, not a clock, free the window).
IN_FLIGHT_RECHECK = 0.005


class RateLimiter:
    """Per-channel global buckets and per-chat buckets; times are POSIX seconds from `clock`.

    Reservations are made without awaiting in between, so concurrent sends share the buckets
    without a lock: each gets its own future slot and sleeps until it. `hold_back` then checks
    the actual sends, which a stalled event loop or a slow network can bunch together.

    The guarantee `hold_back` gives, whatever the latency: the platform counts a request at the
    instant it arrives, somewhere between our start and the answer (`Send.start`..`Send.end`).
    A send is counted against a window limit from its start until `window` after its answer,
    and a new one starts only while fewer than the limit are counted; so no sliding window of
    the platform's, measured at arrival, ever holds more than the limit (the last of any set of
    overlapping counting spans saw all the others when it started). Per chat: the next send
    starts one interval after the previous one's answer.

    Knowing only that the request arrived within [start, answer], this is also the tightest
    rule: each send counted at the check could have arrived at the answer we saw, and the new
    one at once, so all of them would share one window. Counting from the start alone (as if
    arrival followed it by a bounded delay) is not safe: requests held up on the way, or by a
    busy server before it counts them, arrive bunched. So the rate is at most
    limit / (1 + start-to-answer), and what tightens it is measuring the answer early: the
    sender's HTTP layer stamps it (`answer_arrived`) when the status and headers are in.
    """

    def __init__(self, clock: Callable[[], float], *, headroom: float = 1.0) -> None:
        self.clock = clock
        self.headroom = headroom  # the fraction of each published rate actually used
        self._global: dict[Channel, TokenBucket] = {}
        self._chats: dict[tuple[Channel, str], TokenBucket] = {}
        self._paused: dict[tuple[Channel, str | None], float] = {}
        self._sent: dict[Channel, deque[Send]] = {}  # sends that may count in the window
        self._last_to_chat: dict[tuple[Channel, str], Send] = {}

    def _global_bucket(self, channel: Channel, limits: RateLimits) -> TokenBucket | None:
        if limits.global_per_second is None:
            return None
        if channel not in self._global:
            self._global[channel] = TokenBucket(limits.global_per_second * self.headroom)
        return self._global[channel]

    def _chat_bucket(
        self, channel: Channel, chat_id: str, limits: RateLimits
    ) -> TokenBucket | None:
        key = (channel, chat_id)
        bucket = self._chats.get(key)
        if bucket is None:
            if limits.per_group_per_minute is not None and is_group_chat(chat_id):
                bucket = TokenBucket(limits.per_group_per_minute * self.headroom, per=60.0)
            elif limits.per_chat_per_second is not None:
                bucket = TokenBucket(limits.per_chat_per_second * self.headroom)
            else:
                return None
            self._chats[key] = bucket
        return bucket

    def reserve(self, channel: Channel, chat_id: str, limits: RateLimits) -> tuple[float, bool]:
        """The instant a message to `chat_id` may go, and whether that slot is booked.

        A slot is booked only when the channel-wide bucket is what it waits for: a chat that
        must wait longer (its own limit, a pause) takes no global token, so it cannot hold back
        other chats; the caller sleeps until the instant returned and asks again.
        """
        now = self.clock()
        overall = self._global_bucket(channel, limits)
        chat = self._chat_bucket(channel, chat_id, limits)
        chat_ready = max(now, self.paused_until(channel, chat_id))
        if chat is not None:
            chat_ready = max(chat_ready, chat.ready_at(now))
        at = max(chat_ready, overall.ready_at(now)) if overall is not None else chat_ready
        if chat_ready > now and (overall is None or chat_ready > overall.ready_at(now)):
            return chat_ready, False
        for bucket in (overall, chat):
            if bucket is not None:
                bucket.reserve(at)
        return at, True

    def hold_back(self, channel: Channel, chat_id: str, limits: RateLimits) -> float:
        """Seconds a booked send must still wait so that the guarantee in the class docstring
        holds: judged by the actual sends and their answers, not by the booked slots."""
        now = self.clock()
        wait = 0.0
        if limits.global_per_second is not None:
            window = self._sent.setdefault(channel, deque())
            horizon = now - 1.0
            while window and window[0].end is not None and window[0].end <= horizon:
                window.popleft()
            allowed = max(1, math.floor(limits.global_per_second * self.headroom))
            ended = sorted(s.end for s in window if s.end is not None and s.end > horizon)
            counted = len(ended) + sum(1 for s in window if s.end is None)
            if counted >= allowed:
                leave = counted - allowed + 1  # this many must drop out of the window first
                wait = ended[leave - 1] + 1.0 - now if leave <= len(ended) else IN_FLIGHT_RECHECK
        chat = self._chats.get((channel, chat_id))
        last = self._last_to_chat.get((channel, chat_id))
        if chat is not None and last is not None:
            if last.end is None:
                wait = max(wait, IN_FLIGHT_RECHECK)
            else:
                wait = max(wait, last.end + chat.interval - now)
        return max(wait, 0.0)

    def record(self, channel: Channel, chat_id: str) -> Send:
        """A send to `chat_id` starts now; pass what this returns to `finish` on its answer
        (until then it counts as in flight: against every window, indefinitely)."""
        send = Send(channel, chat_id, self.clock())
        if channel in self._global:  # a channel with a global limit
            self._sent.setdefault(channel, deque()).append(send)
        if (channel, chat_id) in self._chats:  # a chat with a limit of its own
            self._last_to_chat[(channel, chat_id)] = send
        return send

    def answered(self, send: Send) -> None:
        """An answer to `send` arrived now (the platform saw the request before this); the
        send still counts as in flight until `finish`, as it may make another request."""
        if send.end is None:
            send.answered = self.clock()

    def finish(self, send: Send) -> None:
        """The send is over (success or failure): its end is its last answer's arrival, else
        now (an error raised before any answer, a sender that does not stamp its answers)."""
        if send.end is None:
            send.end = send.answered if send.answered is not None else self.clock()

    @contextlib.contextmanager
    def sending(self, send: Send) -> Iterator[None]:
        """Around a sender's call: `answer_arrived` stamps `send`; `finish` on the way out."""
        token = _CURRENT_SEND.set((self, send))
        try:
            yield
        finally:
            _CURRENT_SEND.reset(token)
            self.finish(send)

    def paused_until(self, channel: Channel, chat_id: str) -> float:
        return max(
            self._paused.get((channel, None), 0.0), self._paused.get((channel, chat_id), 0.0)
        )

    def pause(self, channel: Channel, chat_id: str | None, until: float) -> None:
        """Nothing to `chat_id` (None: to anyone on the channel) before `until`."""
        key = (channel, chat_id)
        self._paused[key] = max(self._paused.get(key, 0.0), until)
        if chat_id is None:
            if channel in self._global:
                self._global[channel].pause(until)
        elif key in self._chats:
            self._chats[key].pause(until)

    def busy_chats(self) -> dict[Channel, set[str]]:
        """Chats that cannot take a message now; also forgets buckets that are full again."""
        now = self.clock()
        busy: dict[Channel, set[str]] = {}
        for key, bucket in list(self._chats.items()):
            ready = max(bucket.ready_at(now), self._paused.get(key, 0.0))
            last = self._last_to_chat.get(key)
            if last is not None:  # the previous send's answer holds the chat back too
                end = last.end if last.end is not None else now + IN_FLIGHT_RECHECK
                ready = max(ready, end + bucket.interval)
            if ready > now:
                busy.setdefault(key[0], set()).add(key[1])
            else:
                del self._chats[key]
                self._last_to_chat.pop(key, None)
        for key, until in list(self._paused.items()):
            if until <= now:
                del self._paused[key]
            elif key[1] is not None:
                busy.setdefault(key[0], set()).add(key[1])
        return busy

    def next_ready(self) -> float | None:
        """When the earliest busy chat or paused channel can take a message again (None: none
        is waiting)."""
        now = self.clock()
        times = [max(b.ready_at(now), self._paused.get(k, 0.0)) for k, b in self._chats.items()]
        times += self._paused.values()
        future = [t for t in times if t > now]
        return min(future) if future else None


# ------------------------------------------------------------------------- the dispatcher

_LOCK_KEY = 0x636F6D706C61696E  # "complain": the one outbox dispatcher lock per database
# Shortest wait: datetimes have microsecond resolution while bucket times are floats, so a
# sub-microsecond wait could leave the clock where it was and the loop spinning.
_MIN_WAIT = 0.001
_LOCK_CHECK_SECONDS = 1.0  # how stale our belief that the lock connection lives may be


@dataclass(frozen=True, slots=True)
class _Claim:
    """A row this dispatcher claimed; `until` doubles as the claim's token in every update."""

    id: int
    channel: Channel
    chat_id: str
    payload: dict[str, Any]
    attempts: int  # including this one
    complaint_id: int | None
    until: datetime
    after_outage: bool = False  # its last try found the platform unreachable
    # A probe's try (`Dispatcher.probe_outages`): the row's own next attempt, kept if it fails.
    scheduled: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Probe:
    """A row an outage probe made due: its attempts then, and when it was to be tried."""

    id: int
    attempts: int
    scheduled: datetime


class _AdvisoryLock:
    """`pg_try_advisory_lock` held on a connection of its own for as long as it stays open.

    Its own connection, not one of the pool's: the lock lives exactly as long as the session,
    and the pool keeps its full size for the work.
    """

    def __init__(self, client: AsyncpgDBClient) -> None:
        self._client = client
        self._conn: asyncpg.Connection | None = None

    def _connect_options(self) -> dict[str, Any]:
        """The pool's own settings (ssl, timeouts, server settings) that a single connection
        takes as well."""
        c = self._client
        accepted = inspect.signature(asyncpg.connect).parameters
        options = {key: value for key, value in c.extra.items() if key in accepted}
        return options | {
            "host": c.host,
            "port": c.port,
            "user": c.user,
            "password": c.password,
            "database": c.database,
            "server_settings": c.server_settings or None,
        }

    async def acquire(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(**self._connect_options())
        return bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY))

    async def held(self) -> bool:
        """True while our session lives (a lost connection has lost the lock with it)."""
        if self._conn is None or self._conn.is_closed():
            return False
        try:
            await self._conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            # Closing the session releases the lock too; unlocking first is only tidier.
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
                await conn.close()
            if not conn.is_closed():
                conn.terminate()


def _utcnow() -> datetime:
    return datetime.now(UTC)


_T = TypeVar("_T")


def _finish_on_cancel(
    method: Callable[..., Awaitable[_T]],
) -> Callable[..., Awaitable[_T]]:
    """Let a database step finish when the dispatcher task is cancelled (shutdown, a simulated
    crash): cancelling Tortoise mid-transaction can leave SQLite's connection lock held, which
    would stall every other query in the process. The cancellation still propagates."""

    @functools.wraps(method)
    async def finishing(*args: Any, **kwargs: Any) -> _T:
        step = asyncio.ensure_future(method(*args, **kwargs))
        try:
            return await asyncio.shield(step)
        except asyncio.CancelledError:
            await asyncio.wait([step])
            raise

    return finishing


class Dispatcher:
    """Sends due outbox rows through `senders`, one channel each.

    Claiming: a short transaction selects the due rows (PostgreSQL: `FOR UPDATE SKIP LOCKED`;
    SQLite: its single writer) and marks them `sending` with `claimed_until`; the sends happen
    outside it, and each outcome is written right after its send. Only the oldest unsent row of
    each chat is claimable, so a chat receives its messages in queue order even across retries.
    A row left `sending` past `claimed_until` (the dispatcher died) is claimed again.

    The one window: if the process dies after the platform accepted a message and before the
    row is marked sent, that row is sent again once its claim expires (Telegram's sendMessage
    has no idempotency key). The window is one HTTP response plus at most two UPDATEs (sent
    rows are marked by group commit: one answered while an UPDATE runs waits for it, then goes
    in the next), for the rows in flight at that instant — at most one per chat and `batch` in
    all. A send that gets no
    answer within `claim_seconds / 4` is retried as a transient failure; if the platform did
    take it, that is the same window.

    On PostgreSQL `run_forever` sends only while holding an advisory lock, so one dispatcher in
    the whole deployment paces the bot's global limit; the others stand by and retry the lock.
    SQLite deployments are one process, so there is nothing to coordinate.

    Pacing: a token bucket per channel and per chat (per group for negative chat ids) books
    each send a slot, and `RateLimiter.hold_back` counts every send from its start until a
    window after its answer, so network jitter cannot bunch more than a limit's worth into any
    sliding window the platform measures (`headroom` below 1 leaves a margin on top). A 429
    pauses the chat and the channel for exactly its retry_after and costs the row no attempt;
    other failures back off exponentially with jitter, and after `max_attempts` the row fails
    like a permanent failure: status failed, `last_error`, and a `delivery_failed` event on
    its complaint.

    Recovery: while a platform is down every chat's head backs off, by the end of a few minutes'
    outage 2–4 minutes at a time. When a row that had found the platform unreachable gets
    through, the platform is back: the channel's rows backing off from the outage become due at
    once (`_recover`, one idempotent UPDATE), so the backlog goes out at the limiters' pace
    instead of at each head's next backoff. Only a row that had failed proves it: a fresh row
    getting through while some chats' sends fail (one Telegram data centre down) says nothing
    about those chats, and resetting them at every such success would spend their attempts in
    seconds. Rows waiting for a 429 keep their wait, and the attempt counts stay, so
    `max_attempts` still bounds a row that keeps failing on its own.

    Probing: that first success would otherwise wait for the earliest backoff, minutes away
    after a few minutes down. So while a channel is in an outage, `run_forever` makes one of
    its backed-off heads due every `outage_probe_seconds` (`probe_outages`); the return is
    seen within that, and the recovery does the rest.
    """

    def __init__(
        self,
        senders: Mapping[Channel, Sender],
        *,
        now: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        batch: int = 30,
        claim_seconds: float = 60.0,
        max_attempts: int = 8,
        backoff_base: float = 2.0,
        backoff_cap: float = 600.0,
        poll_seconds: float = 1.0,
        lock_retry_seconds: float = 5.0,
        rng: Callable[[], float] = random.random,
        headroom: float = 1.0,
        outage_probe_seconds: float = OUTAGE_PROBE_SECONDS,
        connection: str = "default",
    ) -> None:
        self.senders = {Channel(channel): sender for channel, sender in senders.items()}
        self._now = now
        self._sleep = sleep
        self.batch = batch
        self.claim_seconds = claim_seconds
        self.send_timeout = claim_seconds / 4
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.poll_seconds = poll_seconds
        self.lock_retry_seconds = lock_retry_seconds
        self.outage_probe_seconds = outage_probe_seconds
        self._rng = rng
        self._connection = connection
        self.limiter = RateLimiter(lambda: self._now().timestamp(), headroom=headroom)
        self._wake = asyncio.Event()
        self._lock: _AdvisoryLock | None = None
        self._lock_checked_at = 0.0
        self.holds_lock = False
        self._to_mark: list[tuple[_Claim, asyncio.Future[None]]] = []  # sent, not yet recorded
        self._marking: asyncio.Task[None] | None = None
        # Channels whose outage-backed-off rows are to be made due on the platform's return.
        # All of them at the start: rows may be backing off from an outage that another
        # dispatcher (or this process before a restart) saw; the first return costs one UPDATE.
        self._recovery_owed: set[Channel] = set(self.senders)
        # Channels in an outage (a subset of those owed a recovery: leaving it when nothing
        # of theirs backs off from one) and when each is to be probed next: at once for all
        # at the start, for the same reason. See `probe_outages`.
        self._next_probe: dict[Channel, datetime] = {
            channel: datetime.min.replace(tzinfo=UTC) for channel in self.senders
        }
        # The row each channel's last probe made due, until we claim it. One per channel: a
        # probe made before we claimed the previous one's row (its chat busy, older rows due
        # first) turns that row's try into a normal, counted one; the rotation (`_probe`)
        # makes that at most one attempt per round of the channel's heads.
        self._probed: dict[Channel, _Probe] = {}
        self._probe_cursor: dict[Channel, int] = {}  # its id: the next probe takes a later head
        # Unreachable failures recorded per channel, so a probe that found nothing can tell
        # whether one was written while it looked.
        self._outage_failures: dict[Channel, int] = dict.fromkeys(self.senders, 0)

    def wake(self) -> None:
        """Look for due rows now (after an enqueue in this process) instead of at the next poll."""
        self._wake.set()

    # -- one round ---------------------------------------------------------------------

    async def dispatch_once(self) -> int:
        """Claim up to `batch` due rows, send them, record each outcome; returns how many were
        sent. Rows of different chats go out concurrently, each when the limits allow.

        One round, for tests and one-off runs: it does not take the PostgreSQL dispatcher lock
        (claims alone still keep two rounds from sending the same row) nor probe outages
        (`probe_outages`); deployments run `run_forever`."""
        return await self._send(await self._claim(self.batch))

    async def _send(self, claims: list[_Claim]) -> int:
        results = await asyncio.gather(
            *(self._deliver(claim) for claim in claims), return_exceptions=True
        )
        for claim, result in zip(claims, results, strict=True):
            if isinstance(result, BaseException):
                # Its outcome was not recorded (the database failed us): the claim expires and
                # the row goes out again, the one resend the class docstring allows.
                log.error("outbox row %s: outcome not recorded", claim.id, exc_info=result)
        return sum(result is True for result in results)

    def _open_channels(self) -> list[Channel]:
        """The channels this dispatcher serves that no 429 holds back right now."""
        now = self._now().timestamp()
        return [c for c in self.senders if self.limiter.paused_until(c, None) <= now]

    @_finish_on_cancel
    async def _claim(self, limit: int) -> list[_Claim]:
        now = self._now()
        channels = self._open_channels()
        if not channels:
            return []
        busy = self.limiter.busy_chats()
        # Busy chats' heads may come first: ask for enough rows to fill `limit` without them.
        wanted = limit + sum(len(chats) for chats in busy.values())
        until = now + timedelta(seconds=self.claim_seconds)
        async with in_transaction(self._connection) as conn:
            heads = await _chat_heads(conn, channels, due=(now, wanted))
            # Lock only the rows we will send: locking busy chats' heads as well would hide
            # them from a second worker that could send them.
            ids = await _lock_due(conn, [head.id for head in _free(heads, busy)[:limit]], now)
            if not ids:
                return []
            rows = await OutboxMessage.filter(id__in=ids).using_db(conn).order_by("id")
            await (
                OutboxMessage.filter(id__in=ids)
                .using_db(conn)
                .update(
                    status=OutboxStatus.SENDING, claimed_until=until, attempts=F("attempts") + 1
                )
            )
        return [
            _Claim(
                id=row.id,
                channel=Channel(row.channel),
                chat_id=row.chat_id,
                payload=row.payload,
                attempts=row.attempts + 1,
                complaint_id=row.complaint_id,  # type: ignore[attr-defined]
                until=until,
                after_outage=(row.last_error or "").startswith(UNREACHABLE),
                scheduled=self._probe_of(row),
            )
            for row in rows
        ]

    def _probe_of(self, row: OutboxMessage) -> datetime | None:
        """The row's own next attempt if our probe made it due and no one has tried it since
        (its attempts unchanged: another dispatcher's try of it counts as usual)."""
        channel = Channel(row.channel)
        probe = self._probed.get(channel)
        if probe is None or probe.id != row.id:
            return None
        del self._probed[channel]
        return probe.scheduled if probe.attempts == row.attempts else None

    async def _deliver(self, claim: _Claim) -> bool:
        sender = self.senders[claim.channel]
        slot = await self._wait_for_slot(claim, sender.limits)
        if slot is None:
            return False
        try:
            message = outgoing_from_json(claim.payload)
        except (KeyError, TypeError, ValueError) as error:
            self.limiter.finish(slot)
            await self._fail(claim, f"unreadable payload: {error!r}")
            return False
        try:
            # Bounded so the send ends while the claim is ours: no other dispatcher can take
            # the row over mid-send. No answer in time counts as a transient failure.
            async with asyncio.timeout(self.send_timeout):
                with self.limiter.sending(slot):  # finished when the answer (or its absence) is in
                    await sender.send(claim.chat_id, message)
        except RetryLater as error:
            OUTBOX_SENDS.labels(channel=str(claim.channel), result="429").inc()
            await self._retry_later(claim, error)
        except PermanentFailure as error:
            OUTBOX_SENDS.labels(channel=str(claim.channel), result="permanent").inc()
            await self._fail(claim, error.reason)
        except Exception as error:  # TransientFailure, or a sender's bug: retried, then given up
            if not isinstance(error, TransientFailure | TimeoutError):
                log.exception(
                    "outbox row %s: unexpected error from the %s sender", claim.id, claim.channel
                )
            OUTBOX_SENDS.labels(channel=str(claim.channel), result="retry").inc()
            await self._transient(claim, error)
        else:
            OUTBOX_SENDS.labels(channel=str(claim.channel), result="ok").inc()
            # Right after the send: this UPDATE closes the resend-after-crash window.
            await self._mark_sent(claim)
            if claim.after_outage and claim.channel in self._recovery_owed:
                # Taken out at once, before any await: concurrent successes reset only once.
                self._recovery_owed.discard(claim.channel)
                self._next_probe.pop(claim.channel, None)  # the outage is over
                await self._recover(claim.channel)
            return True
        return False

    @_finish_on_cancel
    async def _recover(self, channel: Channel) -> None:
        """The platform of `channel` is reachable again: its rows backing off from the outage
        are due now, and the loop is woken to claim them (in `run_forever` the finished send
        turns it as well; `wake` keeps that from depending on where this runs). Idempotent,
        so dispatchers and workers may each run it. Rows waiting for a 429 are not touched
        (their `last_error` is the platform's), nor are the attempt counts."""
        now = self._now()
        try:
            reset = await (
                OutboxMessage.filter(
                    channel=channel,
                    status=OutboxStatus.PENDING,
                    next_attempt_at__gt=now,
                    last_error__startswith=UNREACHABLE,
                )
                .using_db(connections.get(self._connection))
                .update(next_attempt_at=now)
            )
        except Exception:  # the rows keep their backoff; the next return tries again
            self._recovery_owed.add(channel)
            self._probe_soon(channel)
            log.exception("outbox: could not make %s's backed-off rows due", channel)
            return
        if reset:
            log.info("outbox: %s reachable again; %d backed-off rows due now", channel, reset)
            self.wake()

    async def _mark_sent(self, claim: _Claim) -> None:
        """Record `claim` sent. Group commit: rows answered while an UPDATE is under way go
        together in the next one, so a busy dispatcher marks many rows with one statement and
        a row waits at most one UPDATE longer than if it had its own."""
        marked = asyncio.get_running_loop().create_future()
        self._to_mark.append((claim, marked))
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._mark_waiting(), name="outbox-mark-sent")
        # Cancelling this wait (shutdown, a simulated crash) does not cancel the UPDATE.
        await marked

    async def _mark_waiting(self) -> None:
        while self._to_mark:
            batch, self._to_mark = self._to_mark, []
            try:
                await self._settle_sent([claim for claim, _ in batch])
            except Exception as error:  # each waiter's task reports it (see `_send`, `_reap`)
                for _, marked in batch:
                    if not marked.done():
                        marked.set_exception(error)
            else:
                for _, marked in batch:
                    if not marked.done():
                        marked.set_result(None)

    async def _settle_sent(self, claims: list[_Claim]) -> None:
        """One UPDATE per claim round among `claims` (its `until` is the claim's token)."""
        rounds: dict[datetime, list[int]] = {}
        for claim in claims:
            rounds.setdefault(claim.until, []).append(claim.id)
        now = self._now()
        for until, ids in rounds.items():
            updated = await OutboxMessage.filter(
                id__in=ids, status=OutboxStatus.SENDING, claimed_until=until
            ).update(status=OutboxStatus.SENT, sent_at=now, last_error=None, claimed_until=None)
            if updated < len(ids):
                log.warning(
                    "outbox: %d of rows %s: claim expired before they were recorded sent",
                    len(ids) - updated,
                    ids,
                )

    async def _wait_for_slot(self, claim: _Claim, limits: RateLimits) -> Send | None:
        """Sleep until the limits allow a send to this chat and start it (what `finish` takes
        once answered); None (row released) when the send could then outlast the claim, so
        another round picks the row up afresh."""
        # A send starts in the first half of its claim and may last a quarter of it, which
        # leaves a quarter for the UPDATE recording its outcome.
        margin = self.claim_seconds / 2
        while True:
            at, booked = self.limiter.reserve(claim.channel, claim.chat_id, limits)
            if at > claim.until.timestamp() - margin:
                await self._release(claim)
                return None
            now = self._now().timestamp()
            if at > now:
                await self._sleep(max(at - now, _MIN_WAIT))
            # A 429 seen by a concurrent send while we slept moves our slot past its pause.
            if not booked or self.limiter.paused_until(claim.channel, claim.chat_id) > at:
                continue
            while (wait := self.limiter.hold_back(claim.channel, claim.chat_id, limits)) > 0:
                if self._now().timestamp() + wait > claim.until.timestamp() - margin:
                    # Held back so long the send could outlast the claim: release the row.
                    await self._release(claim)
                    return None
                await self._sleep(max(wait, _MIN_WAIT))
            if self.limiter.paused_until(claim.channel, claim.chat_id) <= self._now().timestamp():
                return self.limiter.record(claim.channel, claim.chat_id)

    async def _release(self, claim: _Claim) -> None:
        """Give an untried claim back: due as it was, its attempt not spent."""
        settled = await self._settle(
            claim, status=OutboxStatus.PENDING, attempts=claim.attempts - 1
        )
        if settled and claim.scheduled is not None:
            # Still a probe's row (due at once, the probe's doing): its own schedule is kept.
            self._probed.setdefault(
                claim.channel, _Probe(claim.id, claim.attempts - 1, claim.scheduled)
            )

    async def _retry_later(self, claim: _Claim, error: RetryLater) -> None:
        now = self._now()
        until = now + timedelta(seconds=error.seconds)
        # Telegram does not say which limit a 429 is for; like PTB's AIORateLimiter we hold the
        # whole bot back, and the chat itself, for the time it names.
        self.limiter.pause(claim.channel, None, until.timestamp())
        self.limiter.pause(claim.channel, claim.chat_id, until.timestamp())
        # A 429 is the platform's pacing, not a fault of this message: it costs no attempt.
        await self._settle(
            claim,
            status=OutboxStatus.PENDING,
            next_attempt_at=until,
            attempts=claim.attempts - 1,
            last_error=str(error),
        )

    async def _transient(self, claim: _Claim, error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"
        outage = isinstance(error, _OUTAGE_ERRORS)
        if outage and claim.scheduled is not None:
            # A probe that found the platform still down: the channel's try, not the row's.
            # The row keeps its count and its own next attempt, as if the probe had not been,
            # so probes never bring a row nearer to `max_attempts` (see `probe_outages`).
            settled = await self._settle(
                claim,
                status=OutboxStatus.PENDING,
                next_attempt_at=claim.scheduled,
                attempts=claim.attempts - 1,
                last_error=UNREACHABLE + reason,
            )
            if settled:
                self._outage_seen(claim.channel)
            return
        if claim.attempts >= self.max_attempts:
            await self._fail(claim, f"gave up after {claim.attempts} attempts; last: {reason}")
            return
        delay = backoff_delay(
            claim.attempts, base=self.backoff_base, cap=self.backoff_cap, rng=self._rng
        )
        settled = await self._settle(
            claim,
            status=OutboxStatus.PENDING,
            next_attempt_at=self._now() + timedelta(seconds=delay),
            last_error=UNREACHABLE + reason if outage else reason,
        )
        if settled and outage:
            # Owed only once the backoff is written: a return seen before that would reset
            # the channel's rows without this one.
            self._outage_seen(claim.channel)

    def _outage_seen(self, channel: Channel) -> None:
        """A row of `channel` backs off from an outage: recovery is owed, and probing on."""
        self._recovery_owed.add(channel)
        self._outage_failures[channel] = self._outage_failures.get(channel, 0) + 1
        self._probe_soon(channel)

    def _probe_soon(self, channel: Channel) -> None:
        """Probe `channel` one interval from now, unless its next probe is already set."""
        self._next_probe.setdefault(
            channel, self._now() + timedelta(seconds=self.outage_probe_seconds)
        )

    # -- outage probes -------------------------------------------------------------------

    def next_probe(self) -> datetime | None:
        """When `probe_outages` has work next (None: no channel is in an outage)."""
        return min(self._next_probe.values(), default=None)

    async def probe_outages(self) -> int:
        """For each channel in an outage whose probe is due: make one of its heads backing off
        from the outage due now, so the next claim tries it; returns how many were made due.

        The platform's return is then seen within `outage_probe_seconds`, and the probe's
        success recovers the rest (`_recover`). Only a chat's head is probed, the one row of
        the chat that may be sent, so no message overtakes an older one; the heads are taken
        in turn (by id, after the last one probed), so a chat whose own sends fail (its data
        centre down) does not hide the return from the others.

        Budget: a probe is the channel's try, not the row's. A failed probe leaves the row its
        attempt count and its own next attempt (`_transient`), so a row meets exactly its
        normal schedule however long the outage: with the app's 16 attempts that spans at
        least 38 minutes, which a 30-minute outage probed every 5 s (360 probes) does not
        shorten. Counting probes would give a chat up after 16 probes, 80 s, when it is the
        only one waiting; rotating alone does not help a handful of chats.

        Cost: the channel's chat heads read (the claim's query) and an UPDATE per interval,
        only while the channel is down and only in the dispatcher sending (on PostgreSQL the
        lock holder); a channel with nothing backing off from an outage is not probed again until a
        row is."""
        now = self._now()
        due = [channel for channel, at in self._next_probe.items() if at <= now]
        if not due:
            return 0
        open_channels = self._open_channels()
        probed = 0
        for channel in due:
            self._next_probe[channel] = now + timedelta(seconds=self.outage_probe_seconds)
            if channel not in open_channels:  # a 429 holds it: no try may go out sooner
                continue
            failures = self._outage_failures.get(channel, 0)
            try:
                found = await self._probe(channel, now)
            except Exception:  # the rows keep their backoff; the next interval tries again
                log.exception("outbox: could not probe %s", channel)
                continue
            if found is None:
                if self._outage_failures.get(channel, 0) == failures:
                    # Nothing backs off from an outage (any head that will try is due or in
                    # flight, and its failure turns probing back on): stop probing.
                    self._next_probe.pop(channel, None)
            elif found:
                probed += 1
        return probed

    @_finish_on_cancel
    async def _probe(self, channel: Channel, now: datetime) -> bool | None:
        """Make `channel`'s next head backing off from an outage due now: True if made due,
        False if it changed meanwhile (claimed, recovered), None if there is none."""
        conn = connections.get(self._connection)
        after = self._probe_cursor.get(channel, 0)
        waiting = [h for h in await _chat_heads(conn, [channel]) if h.backs_off_from_outage(now)]
        if not waiting:
            return None
        # The next head after the last one probed, else round again from the oldest.
        head = min([h for h in waiting if h.id > after] or waiting, key=attrgetter("id"))
        self._probe_cursor[channel] = head.id
        # Still pending, untried and backed off: the SELECT took no lock.
        made_due = await (
            OutboxMessage.filter(
                id=head.id,
                status=OutboxStatus.PENDING,
                attempts=head.attempts,
                next_attempt_at__gt=now,
            )
            .using_db(conn)
            .update(next_attempt_at=now)
        )
        if not made_due:
            return False
        self._probed[channel] = _Probe(head.id, head.attempts, head.next_attempt_at)
        log.info("outbox: %s unreachable; probing with row %s", channel, head.id)
        return True

    @_finish_on_cancel
    async def _fail(self, claim: _Claim, reason: str) -> None:
        """Give the row up and leave a trace a person will see on the complaint."""
        now = self._now()
        async with in_transaction(self._connection) as conn:
            settled = await self._settle(
                claim, status=OutboxStatus.FAILED, last_error=reason, conn=conn
            )
            if settled and claim.complaint_id is not None:
                recipient = await _recipient_kind(claim, conn)
                await Event.create(
                    complaint_id=claim.complaint_id,
                    actor_role=Role.SYSTEM,
                    action=DELIVERY_FAILED,
                    # Not a transition: from/to stay empty, as for other non-transition events.
                    payload={
                        "outbox_id": claim.id,
                        "channel": str(claim.channel),
                        "chat_id": claim.chat_id,
                        "recipient": recipient,
                        "reason": reason,
                    },
                    created_at=now,
                    using_db=conn,
                )
        log.warning(
            "outbox row %s to %s:%s failed: %s", claim.id, claim.channel, claim.chat_id, reason
        )

    @_finish_on_cancel
    async def _settle(
        self, claim: _Claim, *, conn: BaseDBAsyncClient | None = None, **changes: Any
    ) -> bool:
        """Write an outcome if the claim is still ours (status sending, our `claimed_until`)."""
        updated = await (
            OutboxMessage.filter(
                id=claim.id, status=OutboxStatus.SENDING, claimed_until=claim.until
            )
            .using_db(conn)
            .update(claimed_until=None, **changes)
        )
        if not updated:
            log.warning("outbox row %s: claim expired before its outcome was recorded", claim.id)
        return bool(updated)

    # -- running -------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set; on PostgreSQL only while holding the dispatcher lock.

        A pipeline rather than rounds: up to `batch` rows are in flight, and more are claimed
        as soon as half of them are done, so one slow answer never idles the bot's global
        budget. On `stop` the sends in flight finish and record their outcomes; cancelling the
        task instead abandons them like a crash would (their claims expire).
        """
        client = connections.get(self._connection)
        if isinstance(client, AsyncpgDBClient):
            self._lock = _AdvisoryLock(client)
        in_flight: set[asyncio.Task[bool]] = set()
        try:
            while not stop.is_set():
                if self._lock is not None and not await self._hold_lock():
                    await self._pause(self.lock_retry_seconds, stop, in_flight)
                    continue
                delay: float | None = None  # None: wait for a send in flight to finish
                if len(in_flight) <= self.batch // 2:
                    room = self.batch - len(in_flight)
                    try:
                        await self.probe_outages()  # makes a row due for the claim below
                        claims = await self._claim(room)
                        in_flight.update(asyncio.create_task(self._deliver(c)) for c in claims)
                        if len(claims) < room:  # nothing more is due right now
                            delay = await self._idle_delay()
                    except Exception:  # the rows are safe in the database; outlive a bad round
                        log.exception("outbox dispatch round failed; retrying")
                        delay = self.poll_seconds
                await self._pause(delay, stop, in_flight)
                in_flight = self._reap(in_flight)
            if in_flight:
                await asyncio.wait(in_flight)
                self._reap(in_flight)
        except asyncio.CancelledError:
            for task in in_flight:
                task.cancel()
            raise
        finally:
            if self._lock is not None:
                await self._lock.release()
                self.holds_lock = False

    @staticmethod
    def _reap(tasks: set[asyncio.Task[bool]]) -> set[asyncio.Task[bool]]:
        """The tasks still running; a finished one that raised is logged (its outcome was not
        recorded: the claim expires and the row goes out again)."""
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("outbox send: outcome not recorded", exc_info=task.exception())
        return {task for task in tasks if not task.done()}

    async def _hold_lock(self) -> bool:
        assert self._lock is not None
        # Checked at most once a second: the loop turns once per finished send.
        clock = asyncio.get_running_loop().time()
        if self.holds_lock and clock - self._lock_checked_at < _LOCK_CHECK_SECONDS:
            return True
        self._lock_checked_at = clock
        if self.holds_lock and await self._lock.held():
            return True
        if self.holds_lock:
            log.warning("outbox dispatcher lost its lock connection; standing by")
            self.holds_lock = False
        try:
            self.holds_lock = await self._lock.acquire()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.exception("outbox dispatcher could not reach PostgreSQL for its lock")
            self.holds_lock = False
        return self.holds_lock

    async def _idle_delay(self) -> float:
        """Until the next row falls due or a busy chat frees up, at most `poll_seconds`."""
        now = self._now()
        delay = self.poll_seconds
        channels = self._open_channels()
        if channels:
            conn = connections.get(self._connection)
            heads = _free(
                await _chat_heads(conn, channels),
                self.limiter.busy_chats(),
            )
            for head in heads:
                due = (
                    head.next_attempt_at
                    if head.status == OutboxStatus.PENDING
                    else head.claimed_until
                )
                if due is not None:
                    delay = min(delay, (due - now).total_seconds())
        ready = self.limiter.next_ready()
        if ready is not None:
            delay = min(delay, ready - now.timestamp())
        probe_at = self.next_probe()
        if probe_at is not None:
            delay = min(delay, (probe_at - now).total_seconds())
        return max(delay, _MIN_WAIT)

    async def _pause(
        self, seconds: float | None, stop: asyncio.Event, in_flight: set[asyncio.Task[bool]]
    ) -> None:
        """`sleep(seconds)` (None: no timer), cut short by `stop`, `wake()` or a finished send."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        if seconds is not None:
            waits.append(asyncio.ensure_future(self._sleep(seconds)))
        try:
            await asyncio.wait([*waits, *in_flight], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
            self._wake.clear()


# ------------------------------------------------------------------------- chat heads


@dataclass(frozen=True, slots=True)
class _Head:
    """The oldest unsent row of a chat: the only one of the chat that may be sent now."""

    id: int
    channel: Channel
    chat_id: str
    status: OutboxStatus
    next_attempt_at: datetime
    claimed_until: datetime | None
    attempts: int
    last_error: str | None

    def backs_off_from_outage(self, now: datetime) -> bool:
        """Waiting, at `now`, for its retry after finding the platform unreachable (a row
        waiting for a 429's retry_after is not)."""
        return (
            self.status is OutboxStatus.PENDING
            and self.next_attempt_at > now
            and (self.last_error or "").startswith(UNREACHABLE)
        )


_OPEN = (OutboxStatus.PENDING, OutboxStatus.SENDING)
# PostgreSQL: ARRAY(...) makes the per-chat minimum an InitPlan computed once. Written as
# `id IN (subquery)` the planner, misled by a freshly filled table's statistics, can rescan the
# aggregate for every candidate row (measured: 290 ms instead of 2 ms for 2000 rows).
_HEADS_SQL = """
SELECT id, channel, chat_id, status, next_attempt_at, claimed_until, attempts, last_error
FROM outbox
WHERE id = ANY(ARRAY(
        SELECT MIN(id) FROM outbox WHERE status IN ('pending', 'sending')
        GROUP BY channel, chat_id))
    AND channel = ANY($1::text[])
"""
_DUE = """((status = 'pending' AND next_attempt_at <= $2)
    OR (status = 'sending' AND claimed_until < $2))"""
_DUE_SQL = f"AND {_DUE} ORDER BY id LIMIT $3"
# Rows another worker holds are skipped, not waited for; the condition is checked again on
# the row's latest version, so a row claimed or sent meanwhile drops out. A row that was its
# chat's head and is still open is still the head: rows never reopen.
_LOCK_SQL = f"""
SELECT id FROM outbox WHERE id = ANY($1::bigint[]) AND {_DUE}
ORDER BY id FOR UPDATE SKIP LOCKED
"""


async def _chat_heads(
    conn: BaseDBAsyncClient,
    channels: list[Channel],
    *,
    due: tuple[datetime, int] | None = None,
) -> list[_Head]:
    """Heads of the chats on `channels`. With `due` = (instant, limit): only the heads due
    then (a pending row whose time has come, or a `sending` row whose claim has expired),
    oldest first, at most `limit`."""
    if conn.capabilities.dialect == "postgres":
        values: list[Any] = [[str(c) for c in channels]]
        sql = _HEADS_SQL
        if due is not None:
            sql += _DUE_SQL
            values += [*due]
        _, records = await conn.execute_query(sql, values)
        rows = [dict(record) for record in records]
    else:
        query = OutboxMessage.filter(
            id__in=Subquery(
                OutboxMessage.filter(status__in=_OPEN)
                .group_by("channel", "chat_id")
                .annotate(head=Min("id"))
                .values("head")
            ),
            channel__in=channels,
        )
        if due is not None:
            at, limit = due
            query = (
                query.filter(
                    Q(status=OutboxStatus.PENDING, next_attempt_at__lte=at)
                    | Q(status=OutboxStatus.SENDING, claimed_until__lt=at)
                )
                .order_by("id")
                .limit(limit)
            )
        rows = await query.using_db(conn).values(
            "id", "channel", "chat_id", "status", "next_attempt_at", "claimed_until", "attempts",
            "last_error",
        )  # fmt: skip
    return [
        _Head(
            id=row["id"],
            channel=Channel(row["channel"]),
            chat_id=row["chat_id"],
            status=OutboxStatus(row["status"]),
            next_attempt_at=row["next_attempt_at"],
            claimed_until=row["claimed_until"],
            attempts=row["attempts"],
            last_error=row["last_error"],
        )
        for row in rows
    ]


async def _lock_due(conn: BaseDBAsyncClient, ids: list[int], now: datetime) -> list[int]:
    """Those of `ids` still due, locked for the claim's transaction. SQLite has one writer at
    a time: there the transaction itself is the lock."""
    if not ids:
        return []
    if conn.capabilities.dialect == "postgres":
        _, records = await conn.execute_query(_LOCK_SQL, [ids, now])
        return [record["id"] for record in records]
    return list(
        await OutboxMessage.filter(
            Q(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=OutboxStatus.SENDING, claimed_until__lt=now),
            id__in=ids,
        )
        .using_db(conn)
        .order_by("id")
        .values_list("id", flat=True)
    )


def _free(heads: list[_Head], busy: dict[Channel, set[str]]) -> list[_Head]:
    """Heads whose chat may take a message now. Filtered here rather than in SQL: the busy
    list changes every round, and as SQL parameters it would make every claim a new statement
    to prepare and plan."""
    return [head for head in heads if head.chat_id not in busy.get(head.channel, ())]


# ------------------------------------------------------------------------- surfacing failures


async def _recipient_kind(claim: _Claim, conn: BaseDBAsyncClient) -> str:
    """Who a failed message was for: "complainant" (the case's complainant on that chat: staff
    lists then mark the case unreachable), "staff" or "other"."""
    complaint = (
        await Complaint.filter(id=claim.complaint_id)
        .using_db(conn)
        .select_related("complainant")
        .first()
    )
    person = complaint.complainant if complaint is not None else None
    if person is not None and person.channel == claim.channel and person.chat_id == claim.chat_id:
        return "complainant"
    staff_field = {Channel.TELEGRAM: "telegram_chat_id", Channel.WECHAT: "wechat_openid"}.get(
        claim.channel
    )
    if staff_field and await Staff.filter(**{staff_field: claim.chat_id}).using_db(conn).exists():
        return "staff"
    return "other"


# ------------------------------------------------------------------------- aiohttp wiring

DISPATCHER_KEY = web.AppKey("outbox_dispatcher", Dispatcher)


def setup_dispatcher(
    app: web.Application, senders: Mapping[Channel, Sender], **options: Any
) -> Dispatcher:
    """Run a dispatcher for as long as `app` runs; `app[DISPATCHER_KEY]` lets handlers `wake()`
    it after they queue messages. `options` go to `Dispatcher`."""
    dispatcher = Dispatcher(senders, **options)
    app[DISPATCHER_KEY] = dispatcher

    async def run(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run_forever(stop), name="outbox-dispatcher")
        yield
        stop.set()
        if task.done():
            # It ended before the app (cancelled, or an error it could not outlive): nothing is
            # in flight, and its end must not abort the app's other cleanups (database, bot).
            if not task.cancelled() and task.exception() is not None:
                log.error("outbox dispatcher had stopped early", exc_info=task.exception())
            return
        try:
            # A round in progress finishes its sends so their outcomes are recorded.
            await asyncio.wait_for(task, timeout=dispatcher.claim_seconds / 2)
        except TimeoutError:
            log.warning("outbox dispatcher did not stop in time; its claimed rows will expire")

    app.cleanup_ctx.append(run)
    return dispatcher
