"""The outbox dispatcher against the fake Telegram server, on SQLite and PostgreSQL.

Time is virtual where the behaviour depends on it (retry_after, backoff, rate limits, claim
expiry): the dispatcher gets a `FakeClock`, whose sleep moves the clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from telegram import Bot

from bot.outbox import (
    DISPATCHER_KEY,
    TELEGRAM_LIMITS,
    UNREACHABLE,
    Dispatcher,
    PermanentFailure,
    RateLimiter,
    RateLimits,
    RetryLater,
    Send,
    TokenBucket,
    TransientFailure,
    backoff_delay,
    setup_dispatcher,
)
from bot.telegram import BotApi, TelegramSender
from config.profiles import load_profile
from handlers.messages import Outgoing
from models.actions import Clock, submit_complaint
from models.db import is_postgres
from models.entities import Channel, Complaint, Event, OutboxMessage, OutboxStatus, Staff
from models.outbox import DELIVERY_FAILED, enqueue, undeliverable_complaints
from scheduler.calendar import WorkingCalendar
from tests import waiting
from tests.fakes import FakeTelegram
from tests.outbox_support import peak_in_window, queue_round_robin

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai
GROUP = "-100777"  # Telegram group chats have negative ids


class FakeClock:
    """Virtual time: `sleep` advances the clock to the sleeper's wake-up instant."""

    def __init__(self, start: datetime = T0) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        wake = self.at + timedelta(seconds=max(seconds, 0.0))
        await asyncio.sleep(0)  # let concurrent sends interleave as they would in real time
        self.at = max(self.at, wake)

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass
class Attempt:
    chat_id: str
    text: str
    at: datetime
    outcome: str  # "sent" or the exception's class name


@dataclass
class RecordingSender:
    """The production `TelegramSender` (text through `BotApi`, files through a real
    python-telegram-bot `Bot`), recording each attempt's outcome at the instant of Telegram's
    answer (retry_after counts from there)."""

    bot: Bot
    api: BotApi
    clock: Callable[[], datetime]
    limits: RateLimits = TELEGRAM_LIMITS
    channel: Channel = Channel.TELEGRAM
    attempts: list[Attempt] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.inner = TelegramSender(self.bot, api=self.api)

    async def send(self, chat_id: str, message: Outgoing) -> None:
        try:
            await self.inner.send(chat_id, message)
        except (RetryLater, TransientFailure, PermanentFailure) as error:
            self._record(chat_id, message, type(error).__name__)
            raise
        self._record(chat_id, message, "sent")

    def _record(self, chat_id: str, message: Outgoing, outcome: str) -> None:
        self.attempts.append(Attempt(chat_id, message.text, self.clock(), outcome))

    def sent_at(self, chat_id: str) -> list[datetime]:
        return [a.at for a in self.attempts if a.chat_id == chat_id and a.outcome == "sent"]


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(tg.token, base_url=tg.api_url, base_file_url=tg.file_url) as client:
        yield client


@pytest.fixture
async def api(tg: FakeTelegram) -> AsyncIterator[BotApi]:
    client = BotApi(tg.token, tg.base_url, 5.0)
    yield client
    await client.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sender(bot: Bot, api: BotApi, clock: FakeClock) -> RecordingSender:
    return RecordingSender(bot, api, clock.now)


def dispatcher_for(sender: RecordingSender, clock: FakeClock, **options: object) -> Dispatcher:
    return Dispatcher(
        {Channel.TELEGRAM: sender},
        now=clock.now,
        sleep=clock.sleep,
        rng=lambda: 0.5,
        **options,  # type: ignore[arg-type]
    )


async def queue(chat_id: str, text: str, *, complaint: Complaint | None = None) -> None:
    await enqueue(
        channel=Channel.TELEGRAM,
        chat_id=chat_id,
        message=Outgoing(text=text),
        idempotency_key=f"test:{chat_id}:{text}",
        now=T0,
        complaint=complaint,
    )


async def queue_interleaved(chats: list[str], per_chat: int) -> dict[str, list[str]]:
    """Rows for several chats in round-robin order; returns each chat's texts in queue order."""
    return await queue_round_robin(
        chats, per_chat * len(chats), now=T0, key_prefix="test", text=_nth_message
    )


def _nth_message(chat: str, n: int) -> str:
    return f"{chat} message {n}"


async def drain(dispatcher: Dispatcher, clock: FakeClock, *, rounds: int = 2000) -> int:
    """Dispatch until no row is pending or sending, moving virtual time over idle gaps."""
    sent = 0
    for _ in range(rounds):
        sent += await dispatcher.dispatch_once()
        open_rows = OutboxMessage.filter(status__in=(OutboxStatus.PENDING, OutboxStatus.SENDING))
        if not await open_rows.exists():
            return sent
        clock.advance(0.25)
    raise AssertionError(f"outbox not drained after {rounds} rounds")


async def eventually(condition: Callable[[], bool], within: float = waiting.WITHIN_SECONDS) -> None:
    """Wait for something the sender records just after Telegram answered."""
    await waiting.eventually(condition, within=within, what="the sender's record")


async def statuses() -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in await OutboxMessage.all().values_list("status", flat=True):
        counts[str(status)] = counts.get(str(status), 0) + 1
    return counts


# --------------------------------------------------------------------------- pure parts


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    assert backoff_delay(1, base=2, rng=lambda: 0.0) == 1.0
    assert backoff_delay(1, base=2, rng=lambda: 1.0) == 2.0
    assert backoff_delay(4, base=2, rng=lambda: 1.0) == 16.0
    assert backoff_delay(4, base=2, rng=lambda: 0.5) == 12.0
    assert backoff_delay(30, base=2, cap=600, rng=lambda: 1.0) == 600.0


def test_token_bucket_spaces_sends_by_its_rate() -> None:
    bucket = TokenBucket(rate=20, per=60.0)  # a Telegram group: 20 a minute
    assert bucket.ready_at(100.0) == 100.0
    bucket.reserve(100.0)
    assert bucket.ready_at(100.0) == 103.0
    bucket.pause(200.0)
    assert bucket.ready_at(104.0) == 200.0


def test_token_bucket_capacity_allows_a_burst() -> None:
    bucket = TokenBucket(rate=1, capacity=3)
    for _ in range(3):
        assert bucket.ready_at(10.0) == 10.0
        bucket.reserve(10.0)
    assert bucket.ready_at(10.0) == 11.0


def test_rate_limiter_applies_telegram_limits() -> None:
    now = [1000.0]
    limiter = RateLimiter(lambda: now[0])
    tg = Channel.TELEGRAM
    assert limiter.reserve(tg, "42", TELEGRAM_LIMITS) == (1000.0, True)
    assert limiter.reserve(tg, "42", TELEGRAM_LIMITS) == (1001.0, False)  # 1 a second per chat
    assert limiter.reserve(tg, GROUP, TELEGRAM_LIMITS) == (pytest.approx(1000 + 1 / 30), True)
    assert limiter.busy_chats() == {tg: {"42", GROUP}}
    now[0] = 1001.0
    assert limiter.reserve(tg, "42", TELEGRAM_LIMITS) == (1001.0, True)
    assert limiter.reserve(tg, GROUP, TELEGRAM_LIMITS)[0] == pytest.approx(1003 + 1 / 30)
    assert limiter.busy_chats() == {tg: {"42", GROUP}}  # 20 a minute per group: 3 s apart
    # Across 300 chats the global bucket spaces sends 1/30 s apart: 30 in any second.
    fresh = RateLimiter(lambda: now[0])
    slots = [fresh.reserve(tg, str(chat), TELEGRAM_LIMITS)[0] for chat in range(300)]
    assert slots[-1] - slots[0] == pytest.approx(299 / 30)
    assert max(sum(1 for s in slots if t <= s < t + 0.999) for t in slots) == 30


def test_rate_limiter_pause_holds_a_chat_or_the_whole_channel() -> None:
    now = [0.0]
    limiter = RateLimiter(lambda: now[0])
    tg = Channel.TELEGRAM
    limiter.pause(tg, "7", 30.0)
    assert limiter.reserve(tg, "7", TELEGRAM_LIMITS) == (30.0, False)
    assert limiter.reserve(tg, "8", TELEGRAM_LIMITS) == (0.0, True)  # other chats go on
    limiter.pause(tg, None, 10.0)
    assert limiter.reserve(tg, "9", TELEGRAM_LIMITS) == (10.0, True)  # first after the pause
    assert limiter.reserve(tg, "10", TELEGRAM_LIMITS) == (pytest.approx(10 + 1 / 30), True)
    assert limiter.next_ready() is not None
    now[0] = 100.0
    assert limiter.busy_chats() == {}
    assert limiter.next_ready() is None


def test_rate_limiter_holds_back_sends_bunched_by_a_stalled_loop() -> None:
    now = [0.0]
    limiter = RateLimiter(lambda: now[0])
    tg = Channel.TELEGRAM
    # 30 booked sends whose slots passed while the event loop was busy all wake at t = 1.
    slots = [limiter.reserve(tg, str(chat), TELEGRAM_LIMITS)[0] for chat in range(60)]
    now[0] = slots[29] + 0.001
    for chat in range(30):
        assert limiter.hold_back(tg, str(chat), TELEGRAM_LIMITS) == 0.0
        limiter.finish(limiter.record(tg, str(chat)))  # answered at once
    # The next ones' slots have come too, but 30 went out in the last second.
    now[0] = slots[35]
    assert limiter.hold_back(tg, "35", TELEGRAM_LIMITS) == pytest.approx(slots[29] + 1.001 - now[0])
    now[0] = slots[29] + 1.002
    assert limiter.hold_back(tg, "35", TELEGRAM_LIMITS) == 0.0
    # Per chat too: one a second after the previous send's answer.
    limiter.reserve(tg, "35", TELEGRAM_LIMITS)
    limiter.finish(limiter.record(tg, "35"))
    now[0] += 0.25
    assert limiter.hold_back(tg, "35", TELEGRAM_LIMITS) == pytest.approx(0.75)


@pytest.mark.parametrize("seed", range(8))
def test_rate_limiter_never_exceeds_a_sliding_window_whatever_the_latency(seed: int) -> None:
    """Pure simulation on an injected clock: sends with random latencies (mostly up to 0.4 s,
    now and then stuck in flight for up to 1.5 s, longer than the window), each answer stamped
    when it arrives (`answered`, as the HTTP layer does) and the sender returning a little
    later (`finish`, after parsing). Wherever the platform sees each request between its start
    and its answer, no 1-second window holds more than 30, and no chat gets two within a
    second (a group: 20 within a minute)."""
    rng = random.Random(seed)
    now = [0.0]
    limiter = RateLimiter(lambda: now[0])
    tg = Channel.TELEGRAM
    chats = [str(n) for n in range(40)] + [GROUP]
    waiting = {chat: 0.0 for chat in chats}  # when each chat's next send asks again
    booked: set[str] = set()  # chats holding a booked slot (as the dispatcher's `_wait_for_slot`)
    # What happens to the sends in flight, in time order: (instant, step, send, chat); step 0
    # is the answer's arrival, 1 the sender's return.
    pending: list[tuple[float, int, Send, str]] = []
    spans: list[tuple[str, float, float]] = []  # (chat, start, answer): where the platform saw it
    while len(spans) < 1500:
        # Whatever happens next, in time order: an answer or a return, or a chat asks.
        chat = min(waiting, key=waiting.__getitem__)
        ask_at = waiting[chat]
        if pending and min(pending, key=lambda item: item[0])[0] <= ask_at:
            pending.sort(key=lambda item: (item[0], item[1]))
            at, step, send, done_chat = pending.pop(0)
            now[0] = at
            if step == 0:
                limiter.answered(send)
                parsing = rng.choice([0.0, 0.001, 0.05, 0.3]) * rng.random()
                pending.append((at + parsing, 1, send, done_chat))
            else:
                limiter.finish(send)
                assert send.answered is not None and send.end == send.answered
                spans.append((done_chat, send.start, send.answered))
                waiting[done_chat] = at + rng.random() * 0.05
            continue
        now[0] = max(now[0], ask_at)
        if chat not in booked:
            at, ok = limiter.reserve(tg, chat, TELEGRAM_LIMITS)
            if ok:
                booked.add(chat)
            if at > now[0] or not ok:
                waiting[chat] = max(at, now[0] + 0.001)
                continue
        wait = limiter.hold_back(tg, chat, TELEGRAM_LIMITS)
        if wait > 0:
            waiting[chat] = now[0] + wait
            continue
        booked.discard(chat)
        send = limiter.record(tg, chat)
        stuck = rng.random() < 0.02
        latency = rng.uniform(0.4, 1.5) if stuck else rng.choice([0.001, 0.01, 0.05, 0.2, 0.4])
        pending.append((now[0] + latency * (1 if stuck else rng.random()), 0, send, chat))
        waiting[chat] = float("inf")
    # The platform's view: each request arrives anywhere within its span; try the extremes
    # (earlier ones late, later ones early: the bunching a plain bucket misses) and at random.
    for pick in (
        lambda start, end: start,
        lambda start, end: end,
        lambda start, end: rng.uniform(start, end),
    ):
        arrivals = [(chat, pick(start, end)) for chat, start, end in spans]
        assert peak_in_window([at for _, at in arrivals], 1.0) <= 30
        for chat in chats:
            mine = [at for c, at in arrivals if c == chat]
            if chat == GROUP:
                assert peak_in_window(mine, 60.0) <= 20
            else:
                assert peak_in_window(mine, 1.0) <= 1
    # And the worst case over all arrival choices: the counting spans [start, answer + 1).
    events = sorted([(s, 1) for _, s, _ in spans] + [(e + 1.0, -1) for _, _, e in spans])
    overlap = peak = 0
    for _, step in events:
        overlap += step
        peak = max(peak, overlap)
    assert peak <= 30
    # It did not just stall: counted from the answers, not the returns, the sends kept the
    # global limit as busy as the latency allows (30 / (1 + mean latency)).
    mean_latency = sum(end - start for _, start, end in spans) / len(spans)
    last_answer = max(end for _, _, end in spans)
    assert len(spans) / last_answer > 0.98 * 30 / (1 + mean_latency)


# --------------------------------------------------------------------------- sending


async def test_rows_are_sent_in_order_and_marked(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    expected = await queue_interleaved(["101", "102", GROUP], per_chat=3)
    dispatcher = dispatcher_for(sender, clock)
    assert await drain(dispatcher, clock) == 9
    for chat, texts in expected.items():
        assert tg.texts_to(chat) == texts
    rows = await OutboxMessage.all().order_by("id")
    assert {row.status for row in rows} == {OutboxStatus.SENT}
    assert all(row.sent_at is not None and row.claimed_until is None for row in rows)
    assert all(row.attempts == 1 for row in rows)
    # Limits held in virtual time: a private chat 1 s apart, the group 3 s apart.
    for chat, gap in (("101", 1.0), (GROUP, 3.0)):
        times = sender.sent_at(chat)
        assert all((b - a).total_seconds() >= gap for a, b in pairwise(times))


async def test_dispatch_once_sends_one_row_per_chat_and_nothing_twice(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    await queue_interleaved(["201", "202"], per_chat=2)
    dispatcher = dispatcher_for(sender, clock)
    assert await dispatcher.dispatch_once() == 2  # the head of each chat
    assert await dispatcher.dispatch_once() == 0  # both chats just had their one a second
    clock.advance(1.5)
    assert await dispatcher.dispatch_once() == 2
    assert await dispatcher.dispatch_once() == 0
    clock.advance(60)
    assert await dispatcher.dispatch_once() == 0
    assert tg.texts_to("201") == ["201 message 1", "201 message 2"]
    assert len(tg.calls_of("sendMessage")) == 4


async def test_rows_of_channels_without_a_sender_stay_queued(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    await enqueue(
        channel=Channel.WECHAT,
        chat_id="openid-1",
        message=Outgoing(text="微信消息"),
        idempotency_key="wx:1",
        now=T0,
    )
    await queue("301", "telegram message")
    dispatcher = dispatcher_for(sender, clock)
    assert await dispatcher.dispatch_once() == 1
    wechat = await OutboxMessage.get(idempotency_key="wx:1")
    assert wechat.status == OutboxStatus.PENDING and wechat.attempts == 0


# --------------------------------------------------------------------------- failures


async def test_retry_after_is_honoured_exactly_and_pauses_the_bot(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    await queue("401", "first")
    await queue("401", "second")
    tg.fail_next("sendMessage", 429, retry_after=7, chat_id=401)
    dispatcher = dispatcher_for(sender, clock)
    await dispatcher.dispatch_once()
    row = await OutboxMessage.get(idempotency_key="test:401:first")
    refused_at = sender.attempts[0].at
    assert sender.attempts[0].outcome == "RetryLater"
    assert row.status == OutboxStatus.PENDING
    assert row.next_attempt_at == refused_at + timedelta(seconds=7)
    assert row.attempts == 0  # a 429 is pacing, not a fault of the message
    assert "retry after 7" in (row.last_error or "")  # the Bot API's description

    await queue("402", "other chat")
    await drain(dispatcher, clock)
    assert tg.texts_to("401") == ["first", "second"]
    assert tg.texts_to("402") == ["other chat"]
    retried = [a for a in sender.attempts if a.chat_id == "401" and a.outcome == "sent"]
    assert retried[0].at >= refused_at + timedelta(seconds=7)
    # The whole bot held back too: Telegram does not say which limit the 429 was for.
    assert sender.sent_at("402")[0] >= refused_at + timedelta(seconds=7)


async def test_a_pause_longer_than_the_claim_releases_waiting_rows(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    await queue("451", "flooded")
    await queue("452", "bystander")
    tg.fail_next("sendMessage", 429, retry_after=100, chat_id=451)

    async def sleep_after_the_429(seconds: float) -> None:
        # The bystander's slot is 1/30 s after the first send: it sleeps until the 429 is in.
        await eventually(lambda: bool(sender.attempts))
        await clock.sleep(seconds)

    dispatcher = Dispatcher(
        {Channel.TELEGRAM: sender}, now=clock.now, sleep=sleep_after_the_429, claim_seconds=60
    )
    assert await dispatcher.dispatch_once() == 0
    bystander = await OutboxMessage.get(idempotency_key="test:452:bystander")
    # It waited for the bot-wide pause, which outlasts its claim: handed back, not held.
    assert bystander.status == OutboxStatus.PENDING
    assert bystander.attempts == 0 and bystander.claimed_until is None
    await drain(dispatcher, clock)
    assert sender.attempts[0].outcome == "RetryLater"
    assert sender.sent_at("452")[0] >= sender.attempts[0].at + timedelta(seconds=100)
    assert tg.texts_to("451") == ["flooded"] and tg.texts_to("452") == ["bystander"]


async def test_a_send_without_an_answer_times_out_and_is_retried(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    class Hangs:
        """Never answers the first time (the request is lost), then works."""

        channel = Channel.TELEGRAM
        limits = TELEGRAM_LIMITS
        calls = 0

        async def send(self, chat_id: str, message: Outgoing) -> None:
            Hangs.calls += 1
            if Hangs.calls == 1:
                await asyncio.Event().wait()
            await sender.send(chat_id, message)

    await queue("461", "eventually")
    dispatcher = Dispatcher(
        {Channel.TELEGRAM: Hangs()}, now=clock.now, sleep=clock.sleep, claim_seconds=2
    )
    await dispatcher.dispatch_once()  # gives up after claim_seconds / 4 (real time: 0.5 s)
    row = await OutboxMessage.get(idempotency_key="test:461:eventually")
    assert row.status == OutboxStatus.PENDING and row.attempts == 1
    assert (row.last_error or "").startswith(UNREACHABLE + "TimeoutError")  # no answer: down?
    await drain(dispatcher, clock)
    assert tg.texts_to("461") == ["eventually"]


async def test_transient_failures_back_off_then_succeed(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    await queue("501", "after a bad gateway")
    tg.fail_next("sendMessage", 502, count=2)
    dispatcher = dispatcher_for(sender, clock, backoff_base=2.0)
    await dispatcher.dispatch_once()
    row = await OutboxMessage.get(idempotency_key="test:501:after a bad gateway")
    # rng 0.5: attempt 1 waits 0.75 × 2 s.
    assert row.next_attempt_at == sender.attempts[0].at + timedelta(seconds=1.5)
    await drain(dispatcher, clock)
    outcomes = [a.outcome for a in sender.attempts]
    assert outcomes == ["TransientFailure", "TransientFailure", "sent"]
    gaps = [(b.at - a.at).total_seconds() for a, b in pairwise(sender.attempts)]
    assert gaps[0] >= 1.5 and gaps[1] >= 3.0  # doubled
    assert tg.texts_to("501") == ["after a bad gateway"]
    row = await OutboxMessage.get(id=row.id)
    assert row.status == OutboxStatus.SENT and row.attempts == 3


async def test_transient_failures_give_up_after_max_attempts(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    complaint = await file_complaint("601")
    await queue("601", "never arrives", complaint=complaint)
    tg.fail_next("sendMessage", 500, count=10)
    dispatcher = dispatcher_for(sender, clock, max_attempts=3)
    await drain(dispatcher, clock)
    row = await OutboxMessage.get(idempotency_key="test:601:never arrives")
    assert row.status == OutboxStatus.FAILED
    assert row.attempts == 3
    assert (row.last_error or "").startswith("gave up after 3 attempts")
    assert len(sender.attempts) == 3
    event = await Event.get(complaint=complaint, action=DELIVERY_FAILED)
    assert event.payload["recipient"] == "complainant"


async def file_complaint(chat_id: str) -> Complaint:
    """A complaint filed on Telegram from `chat_id` (private chat: user id == chat id)."""
    return await submit_complaint(
        profile=load_profile("gov-window"),
        channel=Channel.TELEGRAM,
        external_id=chat_id,
        chat_id=chat_id,
        answers=ANSWERS,
        clock=Clock(WorkingCalendar(), ZoneInfo("Asia/Shanghai"), T0),
    )


ANSWERS = {
    "category": "service_attitude",
    "subcategory": "rude",
    "target_kind": "department",
    "target_text": "不动产登记窗口",
    "incident_time": "2026-10-29T02:00:00+00:00",
    "place_text": "市民中心 3 楼",
    "facts": "窗口工作人员态度恶劣，拒绝解释材料要求。",
    "request_type": "apology",
    "name": "张三",
    "phone": "+8613812345678",
}


async def test_blocked_complainant_fails_the_row_and_marks_the_case(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    complaint = await file_complaint("701")
    other = await file_complaint("702")
    await queue("701", "您的投诉已受理", complaint=complaint)
    await queue("701", "处理结果", complaint=complaint)
    await queue("702", "您的投诉已受理", complaint=other)
    tg.block_chat(701)
    dispatcher = dispatcher_for(sender, clock)
    await drain(dispatcher, clock)

    rows = await OutboxMessage.filter(chat_id="701")
    assert {row.status for row in rows} == {OutboxStatus.FAILED}
    assert all(row.last_error == "Forbidden: bot was blocked by the user" for row in rows)
    assert all(row.attempts == 1 for row in rows)  # never retried
    events = await Event.filter(complaint=complaint, action=DELIVERY_FAILED)
    assert len(events) == 2
    assert events[0].payload == {
        "outbox_id": rows[0].id,
        "channel": "telegram",
        "chat_id": "701",
        "recipient": "complainant",
        "reason": "Forbidden: bot was blocked by the user",
    }
    assert events[0].actor_role == "system"
    assert events[0].from_state is None and events[0].to_state is None

    unreachable = await undeliverable_complaints()
    assert set(unreachable) == {complaint.id}
    assert unreachable[complaint.id].reason == "Forbidden: bot was blocked by the user"
    assert await undeliverable_complaints([other.id]) == {}

    # The person unblocks the bot and a later message gets through: reachable again.
    tg.restore_chat(701)
    clock.advance(10)
    await enqueue(
        channel=Channel.TELEGRAM,
        chat_id="701",
        message=Outgoing(text="回访"),
        idempotency_key="test:701:revisit",
        now=clock.now(),
        complaint=complaint,
    )
    await drain(dispatcher, clock)
    assert tg.texts_to("701") == ["回访"]
    assert await undeliverable_complaints() == {}


async def test_failed_message_to_staff_is_recorded_but_does_not_mark_the_case(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    complaint = await file_complaint("801")
    await Staff.create(name="李四", role="handler", telegram_chat_id="802")
    await queue("802", "新案件待处理", complaint=complaint)
    tg.lose_chat(802)
    await drain(dispatcher_for(sender, clock), clock)
    event = await Event.get(complaint=complaint, action=DELIVERY_FAILED)
    assert event.payload["recipient"] == "staff"
    assert event.payload["reason"] == "Bad Request: chat not found"  # the Bot API's wording
    assert await undeliverable_complaints() == {}


# --------------------------------------------------------------------------- an outage's end

OUTAGE_CHATS = ["2101", "2102", "2103", "2104"]
WECHAT_CHAT = "openid-outage"


class DownWeChat:
    """A WeChat API the network cannot reach until `up` is set."""

    channel = Channel.WECHAT
    limits = RateLimits()

    def __init__(self) -> None:
        self.up = False
        self.sent: list[tuple[str, str]] = []

    async def send(self, chat_id: str, message: Outgoing) -> None:
        if not self.up:
            raise TransientFailure("WeChat unreachable: Cannot connect to host api.weixin.qq.com")
        self.sent.append((chat_id, message.text))


async def run_until_told(
    tg: FakeTelegram, dispatcher: Dispatcher, expected: dict[str, list[str]]
) -> None:
    """Run `dispatcher` as a deployment does until every chat has been told its texts."""
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run_forever(stop))
    try:
        await tg.wait_for(lambda: all(tg.texts_to(c) == t for c, t in expected.items()))
    finally:
        stop.set()
        await task


async def queue_before_the_outage(spacing: float = 5.0) -> dict[str, list[str]]:
    """Two Telegram rows per chat, each chat's due `spacing` s after the previous chat's (so
    their backoffs never fall due together), and one WeChat row; returns each Telegram chat's
    texts in queue order."""
    expected: dict[str, list[str]] = {}
    for n, chat in enumerate(OUTAGE_CHATS):
        expected[chat] = [f"{chat} message {i}" for i in (1, 2)]
        for text in expected[chat]:
            await enqueue(
                channel=Channel.TELEGRAM,
                chat_id=chat,
                message=Outgoing(text=text),
                idempotency_key=f"test:{chat}:{text}",
                now=T0 + timedelta(seconds=spacing * n),
            )
    await enqueue(
        channel=Channel.WECHAT,
        chat_id=WECHAT_CHAT,
        message=Outgoing(text="微信通知"),
        idempotency_key="test:wechat:outage",
        now=T0 + timedelta(seconds=12),
    )
    return expected


async def heads() -> dict[str, OutboxMessage]:
    """Each chat's oldest open row (the only one the dispatcher may send), by chat id."""
    first: dict[str, OutboxMessage] = {}
    for row in await OutboxMessage.filter(
        status__in=(OutboxStatus.PENDING, OutboxStatus.SENDING)
    ).order_by("id"):
        first.setdefault(row.chat_id, row)
    return first


async def through_outage(dispatcher: Dispatcher, clock: FakeClock, until: datetime) -> None:
    """Try each head of the dispatcher's channels as it falls due before `until`, jumping the
    clock from one to the next."""
    while True:
        due = min(
            (
                row.next_attempt_at
                for row in (await heads()).values()
                if row.channel in dispatcher.senders
            ),
            default=None,
        )
        if due is None or due >= until:
            return
        clock.at = max(clock.at, due)
        await dispatcher.dispatch_once()


async def both_channels_down(
    tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> tuple[dict[str, list[str]], DownWeChat, Dispatcher]:
    """The rows queued before the outage, Telegram failing every send to OUTAGE_CHATS, WeChat
    down, and a dispatcher over both (the app's 16 tries, the middle of each backoff)."""
    expected = await queue_before_the_outage()
    for chat in OUTAGE_CHATS:
        tg.fail_next("sendMessage", 502, count=1000, chat_id=chat)
    wechat = DownWeChat()
    dispatcher = Dispatcher(
        {Channel.TELEGRAM: sender, Channel.WECHAT: wechat},
        now=clock.now,
        sleep=clock.sleep,
        rng=lambda: 0.5,
        max_attempts=16,
    )
    return expected, wechat, dispatcher


async def test_the_platforms_return_makes_the_backed_off_rows_due_at_once(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    """Five minutes down (the bench's outage): every head backs off to ~3 minutes. The first
    head to get through after the return brings the others' retries forward to that instant,
    except a row a 429 holds and the rows of the channel still down."""
    expected, wechat, dispatcher = await both_channels_down(tg, sender, clock)
    back = T0 + timedelta(minutes=5)
    await through_outage(dispatcher, clock, back)
    waiting = await heads()
    assert {row.attempts for row in waiting.values()} == {8}
    # Tries at 0, 1.5, 4.5 … 190.5 s: the ninth is 192 s after the eighth, well after the return.
    assert all(row.next_attempt_at > back + timedelta(seconds=80) for row in waiting.values())

    tg.clear_failures(OUTAGE_CHATS)  # Telegram is back; WeChat is still unreachable
    flooded, recovering, *behind = OUTAGE_CHATS
    # Another worker's send to the first chat due meets a flood wait of 15 minutes.
    tg.fail_next("sendMessage", 429, retry_after=900, chat_id=flooded)
    clock.at = waiting[flooded].next_attempt_at
    assert await dispatcher_for(sender, clock).dispatch_once() == 0
    flood_wait = (await OutboxMessage.get(id=waiting[flooded].id)).next_attempt_at
    assert flood_wait == sender.attempts[-1].at + timedelta(seconds=900)

    clock.at = waiting[recovering].next_attempt_at
    assert await dispatcher.dispatch_once() == 1  # the only head due: the platform is back
    returned = clock.now()
    now_heads = await heads()
    for chat in behind:
        assert now_heads[chat].next_attempt_at == returned  # due at once, not in ~10 s
        assert now_heads[chat].attempts == 8  # the count stays: max_attempts still bounds it
    assert now_heads[flooded].next_attempt_at == flood_wait  # a 429's wait is kept exactly
    wechat_row = now_heads[WECHAT_CHAT]
    assert wechat_row.next_attempt_at == waiting[WECHAT_CHAT].next_attempt_at > returned

    assert await dispatcher.dispatch_once() == len(behind)  # the backlog goes out now
    for chat in behind:  # at the global limit's pace (1/30 s apart), not at their backoffs
        (sent,) = sender.sent_at(chat)
        assert sent - returned < timedelta(seconds=1)
    assert tg.texts_to(flooded) == []

    wechat.up = True
    clock.at = flood_wait - timedelta(seconds=1)
    await drain(dispatcher, clock)
    for chat, texts in expected.items():
        assert tg.texts_to(chat) == texts  # each chat in queue order, nothing twice
    assert sender.sent_at(flooded)[0] >= flood_wait
    assert wechat.sent == [(WECHAT_CHAT, "微信通知")]
    assert await statuses() == {"sent": 9}


class RunningClock:
    """Virtual time running at real time's pace from `start`, for `run_forever`, whose waits
    are real."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.began = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)


async def test_a_dispatcher_started_after_the_outage_sends_the_backlog_at_the_first_return(
    db_url: str, tg: FakeTelegram, bot: Bot, api: BotApi, sender: RecordingSender, clock: FakeClock
) -> None:
    """The worker that saw the outage is gone (restarted, or its lock taken over). Its
    successor's loop, polling only every 30 s, sends every chat's backlog as soon as the first
    backed-off head gets through, not at the heads' backoffs 30, 60 and 90 s later."""
    expected = await queue_before_the_outage(spacing=30.0)
    for chat in OUTAGE_CHATS:
        tg.fail_next("sendMessage", 502, count=1000, chat_id=chat)
    await through_outage(
        dispatcher_for(sender, clock, max_attempts=16), clock, T0 + timedelta(minutes=5)
    )
    tg.clear_failures(OUTAGE_CHATS)
    first_due = min(
        row.next_attempt_at for row in (await heads()).values() if row.channel == Channel.TELEGRAM
    )
    running = RunningClock(first_due)
    live = RecordingSender(bot, api, running.now)
    successor = Dispatcher(
        {Channel.TELEGRAM: live}, now=running.now, rng=lambda: 0.5, max_attempts=16, poll_seconds=30
    )
    await run_until_told(tg, successor, expected)
    firsts = [live.sent_at(chat)[0] for chat in OUTAGE_CHATS]
    assert max(firsts) - first_due < timedelta(seconds=10)


async def test_a_fresh_row_getting_through_leaves_a_failing_chats_backoff(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    """One chat's sends fail (its Telegram data centre is down) while others' go out: a new
    row's success says nothing about that chat, whose backoff keeps spacing its tries."""
    await queue("2201", "to a chat that cannot be reached")
    tg.fail_next("sendMessage", 502, count=1000, chat_id=2201)
    dispatcher = dispatcher_for(sender, clock, max_attempts=16)
    for _ in range(4):
        clock.at = (await heads())["2201"].next_attempt_at
        await dispatcher.dispatch_once()
    backing_off = (await heads())["2201"]
    assert backing_off.attempts == 4 and backing_off.next_attempt_at > clock.now()

    await queue("2202", "to a chat served as usual")
    assert await dispatcher.dispatch_once() == 1
    assert (await heads())["2201"].next_attempt_at == backing_off.next_attempt_at


async def probing_through(dispatcher: Dispatcher, clock: FakeClock, until: datetime) -> None:
    """`run_forever`'s turns in virtual time: probe, then claim what is due, at each head's
    due time and each probe's, up to `until` included; the clock ends at `until`."""
    while True:
        await dispatcher.probe_outages()
        await dispatcher.dispatch_once()
        due = min(
            (
                row.next_attempt_at
                for row in (await heads()).values()
                if row.channel in dispatcher.senders
            ),
            default=until,
        )
        if due <= clock.at:  # due, but its chat's limit holds it: look again shortly
            due = clock.at + timedelta(seconds=0.25)
        probe = dispatcher.next_probe()
        turn = min(due, probe) if probe is not None else due
        if turn > until:
            clock.at = until
            return
        clock.at = max(clock.at, turn)


def failed_tries(sender: RecordingSender, chat: str) -> int:
    return sum(a.outcome == "TransientFailure" for a in sender.attempts if a.chat_id == chat)


async def test_a_probe_sees_the_platforms_return_within_one_interval(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    """Five minutes down with probing: the heads' own schedules and attempt counts are those
    of an outage without probes (8 tries, the next ~3 minutes after the return), yet a probe
    finds the platform back within 5 s and the backlog follows at once, in each chat's
    order; the channel still down keeps its schedule."""
    expected, wechat, dispatcher = await both_channels_down(tg, sender, clock)
    assert dispatcher.outage_probe_seconds == 5.0
    back = T0 + timedelta(minutes=5)
    await probing_through(dispatcher, clock, back)
    waiting = await heads()
    assert {row.attempts for row in waiting.values()} == {8}  # probes are not counted
    assert all(row.next_attempt_at > back + timedelta(seconds=80) for row in waiting.values())
    # About 60 probes went out, taken in turn: every chat was probed, beyond its 8 tries.
    assert all(failed_tries(sender, chat) > 8 for chat in OUTAGE_CHATS)
    assert sum(failed_tries(sender, chat) for chat in OUTAGE_CHATS) > 4 * 8 + 40

    tg.clear_failures(OUTAGE_CHATS)  # Telegram is back; WeChat is still unreachable
    tried_before = len(sender.attempts)
    await probing_through(dispatcher, clock, back + timedelta(seconds=5))
    probe = sender.attempts[tried_before]
    assert probe.outcome == "sent" and probe.at <= back + timedelta(seconds=5)
    await probing_through(dispatcher, clock, probe.at + timedelta(seconds=1))
    for chat in OUTAGE_CHATS:  # every chat's first message right after the probe's success
        assert sender.sent_at(chat)[0] - probe.at < timedelta(seconds=1)
    assert {a.outcome for a in sender.attempts[tried_before:]} == {"sent"}
    wechat_row = (await heads())[WECHAT_CHAT]
    assert wechat_row.next_attempt_at == waiting[WECHAT_CHAT].next_attempt_at
    assert wechat_row.attempts == 8

    wechat.up = True
    await drain(dispatcher, clock)
    for chat, texts in expected.items():
        assert tg.texts_to(chat) == texts  # each chat in queue order, nothing twice
    assert wechat.sent == [(WECHAT_CHAT, "微信通知")]
    assert await statuses() == {"sent": 9}


async def test_probing_a_half_hour_outage_gives_no_row_up(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    """One chat alone waiting, so every probe tries its head (about 360 in 30 minutes), at
    the shortest backoffs (jitter 0) and the app's attempt limit: the row is still pending
    after the outage, its count where its own schedule put it, and goes out, in order."""
    from bot.app import OUTBOX_MAX_ATTEMPTS

    await queue("2301", "您的投诉已受理")
    await queue("2301", "请补充材料")
    tg.fail_next("sendMessage", 502, count=10_000, chat_id=2301)
    dispatcher = Dispatcher(
        {Channel.TELEGRAM: sender},
        now=clock.now,
        sleep=clock.sleep,
        rng=lambda: 0.0,
        max_attempts=OUTBOX_MAX_ATTEMPTS,
    )
    back = T0 + timedelta(minutes=30)
    await probing_through(dispatcher, clock, back)
    assert failed_tries(sender, "2301") > 300
    head = (await heads())["2301"]
    # Own tries at 0, 1, 3, 7 … 1711 s: the 15th would be at 2011 s, the last (16th) at 2311 s.
    assert head.status == OutboxStatus.PENDING and head.attempts == 14
    assert await statuses() == {"pending": 2}
    assert not await Event.filter(action=DELIVERY_FAILED).exists()

    tg.clear_failures(["2301"])
    await probing_through(dispatcher, clock, back + timedelta(seconds=5))
    assert tg.texts_to("2301") == ["您的投诉已受理"]
    assert sender.sent_at("2301")[0] <= back + timedelta(seconds=5)
    await drain(dispatcher, clock)
    assert tg.texts_to("2301") == ["您的投诉已受理", "请补充材料"]


async def test_probes_never_shorten_a_429s_wait(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    """Probing takes only rows backing off from an outage: a flood wait another worker met
    is kept exactly, through the probes and the recovery a probe's success brings; and a
    probe that meets a 429 waits the 429's time, not its row's backoff."""
    await queue("2401", "held by a flood wait")
    await queue("2402", "behind a down platform")
    tg.fail_next("sendMessage", 429, retry_after=900, chat_id=2401)
    tg.fail_next("sendMessage", 502, count=1000, chat_id=2402)
    assert await dispatcher_for(sender, clock).dispatch_once() == 0  # another worker's round
    flood_wait = (await heads())["2401"].next_attempt_at
    assert flood_wait == sender.attempts[0].at + timedelta(seconds=900)

    dispatcher = dispatcher_for(sender, clock, max_attempts=16)
    await probing_through(dispatcher, clock, T0 + timedelta(minutes=2))
    assert failed_tries(sender, "2402") > 10  # probed all along
    assert (await heads())["2401"].next_attempt_at == flood_wait
    assert tg.texts_to("2401") == []

    tg.clear_failures(["2402"])
    await probing_through(dispatcher, clock, T0 + timedelta(minutes=2, seconds=5))
    assert tg.texts_to("2402") == ["behind a down platform"]  # the probe got through
    assert (await heads())["2401"].next_attempt_at == flood_wait  # the recovery left it too
    assert tg.texts_to("2401") == []

    # Down again for a new row, which backs off to 12 s after its 4th try; its probe meets a
    # 429: it waits the 60 s asked, and nothing goes out meanwhile.
    await queue("2403", "probed into a flood wait")
    tg.fail_next("sendMessage", 502, count=4, chat_id=2403)
    for _ in range(4):
        clock.at = max(clock.at, (await heads())["2403"].next_attempt_at)
        await dispatcher.dispatch_once()
    backoff = (await heads())["2403"].next_attempt_at
    tg.fail_next("sendMessage", 429, retry_after=60, chat_id=2403)
    clock.advance(1)  # the chat's 1/s limit frees it
    assert await dispatcher.probe_outages() == 1
    await dispatcher.dispatch_once()
    paused_until = sender.attempts[-1].at + timedelta(seconds=60)
    assert (await heads())["2403"].next_attempt_at == paused_until != backoff
    tried = len(sender.attempts)
    await probing_through(dispatcher, clock, paused_until - timedelta(seconds=1))
    assert len(sender.attempts) == tried
    await probing_through(dispatcher, clock, paused_until + timedelta(seconds=1))
    assert tg.texts_to("2403") == ["probed into a flood wait"]


async def test_the_loop_probes_a_channel_whose_backoffs_are_far_off(
    db_url: str, tg: FakeTelegram, bot: Bot, api: BotApi, sender: RecordingSender, clock: FakeClock
) -> None:
    """`run_forever`, polling only every 30 s, with every head's retry minutes away: its probes
    see Telegram's return and the backlog goes out seconds later, not at the backoffs."""
    expected = await queue_before_the_outage()
    for chat in OUTAGE_CHATS:
        tg.fail_next("sendMessage", 502, count=1000, chat_id=chat)
    back = T0 + timedelta(minutes=5)
    await through_outage(dispatcher_for(sender, clock, max_attempts=16), clock, back)
    first_due = min(
        row.next_attempt_at for row in (await heads()).values() if row.channel == Channel.TELEGRAM
    )
    assert first_due > back + timedelta(seconds=80)
    running = RunningClock(back)
    live = RecordingSender(bot, api, running.now)
    worker = Dispatcher(
        {Channel.TELEGRAM: live},
        now=running.now,
        rng=lambda: 0.5,
        max_attempts=16,
        poll_seconds=30,
        outage_probe_seconds=0.5,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    try:
        await eventually(lambda: len(live.attempts) >= 2)  # probes while Telegram is still down
        assert {a.outcome for a in live.attempts} == {"TransientFailure"}
        tg.clear_failures(OUTAGE_CHATS)
        returned = running.now()
        await tg.wait_for(lambda: all(tg.texts_to(c) == t for c, t in expected.items()))
    finally:
        stop.set()
        await task
    firsts = [live.sent_at(chat)[0] for chat in OUTAGE_CHATS]
    assert max(firsts) - returned < timedelta(seconds=10)
    for chat in OUTAGE_CHATS:  # 8 tries in the outage and the one that got through
        row = await OutboxMessage.get(idempotency_key=f"test:{chat}:{expected[chat][0]}")
        assert row.attempts == 9


# --------------------------------------------------------------------------- storms and crashes


async def test_429_and_5xx_storm_delivers_everything_once_in_order(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    chats = ["901", "902", "903", "904", "905", "906", "907", GROUP]
    expected = await queue_interleaved(chats, per_chat=10)
    # The storm is harsher than Telegram ever is: allow the rows enough attempts to get through.
    dispatcher = dispatcher_for(sender, clock, max_attempts=30)
    storm = random.Random(4)
    for _ in range(40):  # failures injected between rounds, mixed kinds
        tg.fail_next("sendMessage", 429, retry_after=storm.choice((1, 2, 5)))
        tg.fail_next("sendMessage", storm.choice((500, 502, 504)), count=storm.randint(1, 2))
        await dispatcher.dispatch_once()
        clock.advance(0.5)
    await drain(dispatcher, clock)

    failed_calls = [call for call in tg.calls_of("sendMessage") if not call.ok]
    assert {call.status for call in failed_calls} >= {429, 500}
    assert len(failed_calls) > 40
    for chat, texts in expected.items():
        assert tg.texts_to(chat) == texts  # every message, once, in queue order
    assert await statuses() == {"sent": 80}


class Gate:
    """A sender wrapper that lets `open_for` sends through, then parks every later send
    before it reaches Telegram: the process "dies" between rows."""

    def __init__(
        self, inner: RecordingSender, open_for: int, *, park_after_send: bool = False
    ) -> None:
        self.inner = inner
        self.channel = inner.channel
        self.limits = inner.limits
        self.open_for = open_for
        self.park_after_send = park_after_send
        self.admitted = 0
        self.passed = 0
        self.parked = 0

    async def send(self, chat_id: str, message: Outgoing) -> None:
        if self.admitted >= self.open_for:
            if self.park_after_send:  # the platform accepted; we die before recording it
                await self.inner.send(chat_id, message)
            self.parked += 1
            await asyncio.Event().wait()
        self.admitted += 1  # counted before the send: concurrent sends see it at once
        await self.inner.send(chat_id, message)
        self.passed += 1


async def run_until_parked(dispatcher: Dispatcher, gate: Gate) -> None:
    """Run the dispatcher until every claimed row waits at the gate, then kill it."""
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run_forever(stop))

    async def parked() -> bool:
        sending = await OutboxMessage.filter(status=OutboxStatus.SENDING).count()
        return gate.passed >= gate.open_for and bool(sending) and gate.parked == sending

    await waiting.eventually(
        parked, what=lambda: f"passed {gate.passed}/{gate.open_for}, parked {gate.parked}"
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_crash_between_rows_loses_nothing_and_sends_nothing_twice(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    expected = await queue_interleaved(["1001", "1002", "1003", "1004"], per_chat=5)
    gate = Gate(sender, open_for=7)
    first = Dispatcher(
        {Channel.TELEGRAM: gate}, now=clock.now, sleep=clock.sleep, batch=3, claim_seconds=60
    )
    await run_until_parked(first, gate)
    assert len(tg.calls_of("sendMessage")) == 7
    stranded = await OutboxMessage.filter(status=OutboxStatus.SENDING).count()
    assert stranded >= 1  # claimed by the dead dispatcher

    second = dispatcher_for(sender, clock)
    clock.advance(10)
    await second.dispatch_once()
    # Those chats wait: their claimed rows may still be in someone's hands until the claim ends.
    assert await OutboxMessage.filter(status=OutboxStatus.SENDING).count() == stranded
    clock.advance(60)
    await drain(second, clock)
    for chat, texts in expected.items():
        assert tg.texts_to(chat) == texts
    assert await statuses() == {"sent": 20}


async def test_crash_after_the_platform_accepted_resends_only_that_row(
    db_url: str, tg: FakeTelegram, sender: RecordingSender, clock: FakeClock
) -> None:
    """The documented window: accepted by Telegram, process gone before the row was marked."""
    await queue_interleaved(["1101"], per_chat=3)
    gate = Gate(sender, open_for=1, park_after_send=True)
    first = Dispatcher({Channel.TELEGRAM: gate}, now=clock.now, sleep=clock.sleep, batch=1)
    await run_until_parked(first, gate)
    clock.advance(61)
    await drain(dispatcher_for(sender, clock), clock)
    assert tg.texts_to("1101") == [
        "1101 message 1",
        "1101 message 2",
        "1101 message 2",  # the one row in flight at the crash
        "1101 message 3",
    ]


async def test_concurrent_rounds_never_send_a_row_twice(
    db_url: str, tg: FakeTelegram, bot: Bot, api: BotApi, clock: FakeClock
) -> None:
    """Two dispatchers' rounds at once (no lock): claims alone keep rows apart."""
    chats = [str(1200 + n) for n in range(30)]
    expected = await queue_interleaved(chats, per_chat=2)
    fast = RateLimits(per_chat_per_second=1000, global_per_second=1000)
    one = Dispatcher(
        {Channel.TELEGRAM: RecordingSender(bot, api, clock.now, limits=fast)},
        now=clock.now,
        batch=10,
    )
    two = Dispatcher(
        {Channel.TELEGRAM: RecordingSender(bot, api, clock.now, limits=fast)},
        now=clock.now,
        batch=10,
    )
    for _ in range(20):
        await asyncio.gather(one.dispatch_once(), two.dispatch_once())
        if not await OutboxMessage.filter(status=OutboxStatus.PENDING).exists():
            break
    for chat, texts in expected.items():
        assert tg.texts_to(chat) == texts
    assert len(tg.calls_of("sendMessage")) == 60


# --------------------------------------------------------------------------- real time


async def test_fake_telegram_flood_limits_are_respected_in_real_time(
    db_url: str, tg: FakeTelegram, bot: Bot, api: BotApi
) -> None:
    """Real clock, the fake's flood control on: the limiter paces, any 429 is absorbed."""
    limits = RateLimits(per_chat_per_second=20, global_per_second=60, per_group_per_minute=1200)
    tg.set_flood_limits(per_chat_per_second=20, global_per_second=60, per_group_per_minute=1200)
    expected = await queue_interleaved(["1301", "1302", "1303", GROUP], per_chat=12)
    sender = RecordingSender(bot, api, lambda: datetime.now(UTC), limits=limits)
    dispatcher = Dispatcher({Channel.TELEGRAM: sender}, poll_seconds=0.05)
    await run_until_told(tg, dispatcher, expected)
    assert await statuses() == {"sent": 48}


async def test_one_dispatcher_holds_the_postgres_lock_and_the_other_takes_over(
    db_url: str, tg: FakeTelegram, bot: Bot, api: BotApi
) -> None:
    if not is_postgres(db_url):
        pytest.skip("the dispatcher lock is PostgreSQL's; SQLite deployments are one process")
    fast = RateLimits(per_chat_per_second=100, global_per_second=200)
    senders = [RecordingSender(bot, api, lambda: datetime.now(UTC), limits=fast) for _ in range(2)]
    dispatchers = [
        Dispatcher({Channel.TELEGRAM: s}, poll_seconds=0.05, lock_retry_seconds=0.05)
        for s in senders
    ]
    stops = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(d.run_forever(s)) for d, s in zip(dispatchers, stops, strict=True)]
    try:
        first = await queue_interleaved([str(1400 + n) for n in range(20)], per_chat=2)
        await tg.wait_for(lambda: all(tg.texts_to(c) == t for c, t in first.items()))
        await eventually(lambda: sum(len(s.attempts) for s in senders) == 40)
        holders = [d.holds_lock for d in dispatchers]
        assert sorted(holders) == [False, True]
        active = holders.index(True)
        standby = 1 - active
        assert len(senders[active].attempts) == 40 and senders[standby].attempts == []

        stops[active].set()  # the active worker shuts down: its lock goes with it
        await tasks[active]
        second = {"1499": ["after failover"]}
        await queue("1499", "after failover")
        await tg.wait_for(lambda: tg.texts_to("1499") == second["1499"])
        await eventually(lambda: len(senders[standby].attempts) == 1)
        assert dispatchers[standby].holds_lock
        assert [a.text for a in senders[standby].attempts] == ["after failover"]
    finally:
        for stop in stops:
            stop.set()
        await asyncio.gather(*tasks)
    assert len(tg.calls_of("sendMessage")) == 41


async def test_setup_dispatcher_runs_with_the_aiohttp_app(
    db_url: str, tg: FakeTelegram, bot: Bot, api: BotApi
) -> None:
    app = web.Application()
    sender = RecordingSender(bot, api, lambda: datetime.now(UTC))
    dispatcher = setup_dispatcher(app, {Channel.TELEGRAM: sender}, poll_seconds=30)
    assert app[DISPATCHER_KEY] is dispatcher
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await enqueue(
            channel=Channel.TELEGRAM,
            chat_id="1501",
            message=Outgoing(text="您的投诉已受理"),
            idempotency_key="app:1",
            now=datetime.now(UTC),
        )
        dispatcher.wake()  # no 30 s poll wait: the enqueuer nudges the dispatcher
        await tg.wait_for(lambda: tg.texts_to("1501") == ["您的投诉已受理"])
    finally:
        await runner.cleanup()
    row = await OutboxMessage.get(idempotency_key="app:1")
    assert row.status == OutboxStatus.SENT


def test_an_outgoing_message_round_trips_through_its_json_with_every_field() -> None:
    """outgoing_to_json is written field by field (for speed): a field added to Outgoing must
    be added there too."""
    from dataclasses import fields

    from handlers.messages import Choice, Outgoing
    from models.outbox import outgoing_from_json, outgoing_to_json

    message = Outgoing("问题", (Choice("a", "甲"),), "contact", True, ("att:1",))
    data = outgoing_to_json(message)
    assert set(data) == {f.name for f in fields(Outgoing)}
    assert outgoing_from_json(data) == message
