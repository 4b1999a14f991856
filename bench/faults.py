"""Fault drills: kill -9 under load, the Bot API down for minutes, every update delivered twice.

    python bench/faults.py kill [--channel telegram|wechat] [--db sqlite|postgres] [--users 50]
                                [--kills 4] [--think 1.0] [--runs 1] [--seed 1]
    python bench/faults.py outage [--db ...] [--users 50] [--down-seconds 300]
    python bench/faults.py duplicates [--channel ...] [--db ...] [--users 50]

(`--channel` and `--db` may be given several times; default: both databases, Telegram.)
The real server (`complaintdesk run`) against a fresh database, in a subprocess; the fake Bot
API in a subprocess (bench/_inbound_support.py), the fake WeChat platform in this process.
Simulated people file the whole gov-window complaint, one step after the other.

- kill: every few seconds (random, 2-6 s) the server is killed with SIGKILL and started again
  on the same port. Telegram redelivers an update that got no 200 until it is taken; WeChat
  waits 5 s for an answer and retries a message three times, then gives up (the person then
  waits for a customer-service message and, if none comes, writes again).
- outage: the fake Bot API answers every call with 502 for `--down-seconds` while the people
  keep filing (paced so their filings span the outage), then comes back.
- duplicates: every update is delivered two or three times at once, and once more later (after
  the person's next step), to the same server.

Then the outbox drains and the drill prints, asserting nothing:

- every complaint whose number a person was told exists, once; numbers have no gaps;
- every dialog is resumable (its stored state loads) and each person finished the filing;
- turns run (dialog session versions) against the updates taken: a turn run twice shows here;
- every reply row delivered, none twice, in order per chat: what the people were shown (the
  fake API's sendMessage / customer-service calls, plus replies carried in a webhook response
  body — Telegram's `{"method": "sendMessage", ...}`, WeChat's passive reply) matched to the
  committed reply rows of each chat; other outbox rows (notifications) sent or not.

A reply told twice after a kill is a send the platform took just before the process died and
before its row was marked sent (the window bench/window.py measures; neither platform has an
idempotency key for sends).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _inbound_support import (
    GOV_WINDOW_FILING,
    SECRET,
    Server,
    database,
    helper,
    product,
    running,
    update_for,
)

from models.numbering import NUMBER_IN_TEXT as NUMBER

TELEGRAM_HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}

# The same filing typed in WeChat: options answered by their label (the dialog engine matches
# labels as well as the numbers shown), so a person whose reply was lost can still go on.
WECHAT_FILING: list[str] = [
    "/start",
    "都不是，继续投诉",
    "服务态度",
    "态度生硬、推诿扯皮",
    "工作人员",
    "3号窗口 工号1024",
    "昨天下午3点",
    "市民中心二楼",
    "工作人员拒绝受理我的材料，并且态度恶劣，大声呵斥。",
    "赔礼道歉",
    "跳过",
    "跳过",
    "跳过",
    "否，留下姓名和电话",
    "知道了，继续",
    "李雷",
    "138 1234 5678",
    "跳过",
    "完成",
    "提交",
]
WECHAT_WAIT = 5.0  # WeChat drops the connection after five seconds ...
WECHAT_RETRIES = 3  # ... and delivers the message again, three times


@dataclass
class Shown:
    """What each chat was shown, with the time (time.monotonic, one clock for every process on
    the host): webhook / passive replies recorded by the load generator, API sends by the fake."""

    # chat -> (when, text, how: "response" for a webhook / passive reply, "api" for a send)
    by_chat: dict[str, list[tuple[float, str, str]]] = field(default_factory=dict)

    def add(self, chat: str, text: str, at: float | None = None, how: str = "response") -> None:
        when = time.monotonic() if at is None else at
        self.by_chat.setdefault(chat, []).append((when, text, how))

    def texts(self, chat: str) -> list[str]:
        return [text for _, text, _ in sorted(self.by_chat.get(chat, []))]

    def hows(self, chat: str) -> list[str]:
        return [how for _, _, how in sorted(self.by_chat.get(chat, []))]

    def merged(self, other: Shown) -> Shown:
        both = Shown({chat: list(items) for chat, items in self.by_chat.items()})
        for chat, items in other.by_chat.items():
            both.by_chat.setdefault(chat, []).extend(items)
        return both


# ---------------------------------------------------------------- Telegram people


def webhook_reply(body: bytes) -> tuple[str, str] | None:
    """A reply carried in the webhook response (Telegram executes one method given there)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("method") == "sendMessage" and "text" in data:
        return str(data.get("chat_id")), str(data["text"])
    return None


async def post_update(
    session: Any, url: str, update: dict[str, Any], shown: Shown, counts: Counter[str]
) -> int:
    """One delivery of `update`; the HTTP status (0: refused, cut or timed out)."""
    import aiohttp

    try:
        async with session.post(url, data=json.dumps(update), headers=TELEGRAM_HEADERS) as answer:
            body = await answer.read()
            status = answer.status
    except (aiohttp.ClientError, TimeoutError, OSError):
        status, body = 0, b""
    counts[f"http {status}"] += 1
    reply = webhook_reply(body) if status == 200 else None
    if reply is not None:
        counts["replies in webhook responses"] += 1
        shown.add(*reply)
    return status


async def telegram_delivery(
    session: Any, url: str, update: dict[str, Any], shown: Shown, counts: Counter[str]
) -> None:
    """Telegram: the same update again until it gets a 200."""
    while await post_update(session, url, update, shown, counts) != 200:
        counts["redeliveries"] += 1
        await asyncio.sleep(0.3)


async def telegram_person(
    session: Any,
    url: str,
    uid: int,
    shown: Shown,
    counts: Counter[str],
    *,
    pause: Callable[[], Awaitable[None]] | None = None,
    copies: Callable[[], int] | None = None,
) -> None:
    """One person's filing. `pause` between steps (outage pacing); `copies`: each update is
    delivered that many times at once, and the previous one once more later."""
    previous: dict[str, Any] | None = None
    for kind, value in GOV_WINDOW_FILING:
        update = update_for(uid, kind, value)
        times = copies() if copies else 1
        await asyncio.gather(
            *(telegram_delivery(session, url, update, shown, counts) for _ in range(times))
        )
        if copies:
            counts["deliveries beyond the first"] += times - 1
        if copies and previous is not None:  # a late copy: the dialog has moved on
            await telegram_delivery(session, url, previous, shown, counts)
            counts["deliveries beyond the first"] += 1
        previous = update
        if pause:
            await pause()


async def telegram_shown(api_port: int, webhook: Shown) -> Shown:
    """The fake Bot API's sendMessage calls plus the replies carried in webhook responses."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{api_port}/stats") as response,
    ):
        stats = await response.json()
    sent = Shown()
    for chat, items in stats["told_at"].items():
        for at, text in items:
            sent.add(chat, text, at, "api")
    return webhook.merged(sent)


# ---------------------------------------------------------------- WeChat people


def timed_fake_wechat() -> Any:
    """The fake WeChat platform, noting when each customer-service message was accepted."""
    from tests.fakes.wechat_server import FakeWeChat

    class TimedFakeWeChat(FakeWeChat):
        def __init__(self) -> None:
            super().__init__()
            self.shown = Shown()

        async def _custom_send(self, request: Any) -> Any:
            response = await super()._custom_send(request)
            if json.loads(response.text).get("errcode") == 0:  # accepted: the person sees it
                message = json.loads(await request.read())  # aiohttp keeps the body read
                self.shown.add(str(message["touser"]), message["text"]["content"], how="api")
            return response

    return TimedFakeWeChat()


async def wechat_message(
    fake: Any, url: str, openid: str, text: str, shown: Shown, counts: Counter[str]
) -> str:
    """One message as WeChat delivers it: up to 5 s for an answer, then three retries of the
    same MsgId. Returns "passive", "success" or "given up"."""
    import aiohttp

    xml = fake.text_xml(openid, text)
    for attempt in range(1 + WECHAT_RETRIES):
        started = time.monotonic()
        try:
            answer = await fake.deliver(url, xml, wait_seconds=WECHAT_WAIT)
            status = answer.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            answer, status = None, 0
        counts[f"http {status}"] += 1
        if attempt:
            counts["retries by WeChat"] += 1
        if answer is not None and status == 200:
            if answer.text:
                counts["passive replies"] += 1
                shown.add(openid, answer.text)
                return "passive"
            return "success"
        await asyncio.sleep(max(0.0, WECHAT_WAIT - (time.monotonic() - started)))
    counts["messages WeChat gave up on"] += 1
    return "given up"


async def wechat_copies(
    fake: Any, url: str, xml: str, times: int, counts: Counter[str]
) -> tuple[str, str | None]:
    """The same message delivered `times` times at once (no retries): WeChat shows one answer
    per message, so one outcome and text are returned; the copies' answers are compared."""
    answers = await asyncio.gather(
        *(fake.deliver(url, xml, wait_seconds=60.0) for _ in range(times))
    )
    for answer in answers:
        counts[f"http {answer.status}"] += 1
    texts = {answer.text for answer in answers}
    counts["copies answered differently"] += len(texts) - 1
    first = answers[0]
    if first.status == 200 and first.text:
        return "passive", first.text
    return ("success" if first.status == 200 else "given up"), None


async def wechat_person(
    fake: Any,
    url: str,
    openid: str,
    shown: Shown,
    counts: Counter[str],
    *,
    copies: Callable[[], int] | None = None,
    pause: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """One person's filing, `pause` between steps. `copies`: each message delivered that many
    times at once, and the previous one once more later (its answer not shown: WeChat asks
    again only for an answer it did not get)."""
    previous: str | None = None
    for text in WECHAT_FILING:
        while True:
            seen = len(fake.shown.by_chat.get(openid, []))
            if copies is None:
                outcome = await wechat_message(fake, url, openid, text, shown, counts)
            else:
                xml = fake.text_xml(openid, text)
                times = copies()
                counts["deliveries beyond the first"] += times - 1
                outcome, passive = await wechat_copies(fake, url, xml, times, counts)
                if passive:
                    counts["passive replies"] += 1
                    shown.add(openid, passive)
                if previous is not None:
                    late, _ = await wechat_copies(fake, url, previous, 1, counts)
                    counts["deliveries beyond the first"] += 1
                    counts[f"late copies answered {late}"] += 1
                previous = xml
            if outcome == "passive":
                break
            # "success" (the turn missed the deadline) or no answer at all: the person waits
            # for the customer-service message; none within 40 s, they write again.
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                if len(fake.shown.by_chat.get(openid, [])) > seen:
                    break
                await asyncio.sleep(0.5)
            else:
                counts["written again by the person"] += 1
                continue
            break
        if pause:
            await pause()


# ---------------------------------------------------------------- accounting


def reply_text(channel: str, payload: dict[str, Any]) -> str:
    """A reply row's text as the person is shown it."""
    from models.outbox import outgoing_from_json

    message = outgoing_from_json(payload)
    if channel == "wechat":
        from bot.wechat import render_text

        return render_text([message])
    return message.text


def match_shown(rows: list[str], shown: list[str]) -> tuple[list[tuple[int, int]], int, int]:
    """Each text shown matched to the chat's reply rows (in order): a text equal to a row, or
    (a passive reply) to a run of consecutive rows joined as render_text joins them. Returns the
    row indices in the order they were first shown (with the position of the text that showed
    them), the texts shown again, the texts matching no row."""
    delivered: list[tuple[int, int]] = []
    taken: set[int] = set()
    again = unmatched = 0
    for position, text in enumerate(shown):
        run = _run_for(rows, text, taken)
        if run is None:
            unmatched += 1
            continue
        if all(i in taken for i in run):
            again += 1
            continue
        for i in run:
            if i not in taken:
                taken.add(i)
                delivered.append((i, position))
    return delivered, again, unmatched


def _run_for(rows: list[str], text: str, taken: set[int]) -> list[int] | None:
    """The rows `text` shows: the first not yet shown, else the first (a repeat)."""
    candidates: list[list[int]] = []
    for start in range(len(rows)):
        joined = rows[start]
        end = start
        while True:
            if joined == text:
                candidates.append(list(range(start, end + 1)))
                break
            end += 1
            if end >= len(rows) or len(joined) >= len(text):
                break
            joined = f"{joined}\n\n{rows[end]}"
    fresh = [c for c in candidates if not any(i in taken for i in c)]
    return (fresh or candidates or [None])[0]  # type: ignore[list-item]


async def check(
    db_url: str,
    channel: str,
    chats: list[str],
    shown_after: Callable[[], Awaitable[Shown]],
    *,
    api_up_at: float | None = None,
) -> dict[str, Any]:
    """Waits for the outbox to drain, then counts; `shown_after` gives what the people were
    shown by then."""
    from handlers.dialog import DialogState
    from models.db import close_db, init_db
    from models.entities import (
        Complaint,
        DialogSession,
        OutboxMessage,
        OutboxStatus,
        ProcessedUpdate,
    )

    await init_db(db_url, apply_migrations=False)
    try:
        # The outbox drains: rows a kill left `sending` go out once their claim expires, rows
        # of the outage once their backoff has passed.
        started = time.monotonic()
        deadline = started + 600
        while time.monotonic() < deadline:
            unsent = await OutboxMessage.filter(
                status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING]
            ).count()
            if not unsent:
                break
            await asyncio.sleep(1)
        drained = time.monotonic() - started
        shown = await shown_after()
        complaints = await Complaint.all().values_list("number", flat=True)
        stored = Counter(complaints)
        sequence = sorted(int(n.split("-")[1]) for n in stored)
        gaps = sorted(set(range(1, len(sequence) + 1)) - set(sequence))
        sessions = await DialogSession.all()
        unreadable = 0
        for row in sessions:
            try:
                DialogState.from_json(row.state) if row.state else None
            except Exception:
                unreadable += 1
        taken = await ProcessedUpdate.all().count()
        rows = await OutboxMessage.all().order_by("id")
        replies = [r for r in rows if r.idempotency_key.startswith(("reply:", "wechat:reply:"))]
        others = [r for r in rows if r not in replies]
        by_chat: dict[str, list[str]] = {}
        for row in replies:
            by_chat.setdefault(row.chat_id, []).append(reply_text(channel, row.payload))
        missing = again = unmatched = disordered = worst = 0
        late: Counter[str] = Counter()  # how the rows shown after a newer one came
        for chat in set(by_chat) | set(shown.by_chat):
            expected = by_chat.get(chat, [])
            delivered, repeats, strays = match_shown(expected, shown.texts(chat))
            missing += len(expected) - len(delivered)
            again += repeats
            unmatched += strays
            worst = max(worst, repeats)
            hows = shown.hows(chat)
            newest = -1
            for index, position in delivered:
                if index < newest:
                    late[hows[position]] += 1
                newest = max(newest, index)
            order = [index for index, _ in delivered]
            disordered += order != sorted(order)
        numbers_told = {
            m.group(0)
            for items in shown.by_chat.values()
            for _, text, _ in items
            for m in NUMBER.finditer(text)
        }
        finished = sum(1 for chat in chats if NUMBER.search(" ".join(shown.texts(chat))))
    finally:
        await close_db()
    status = Counter(str(r.status) for r in replies)
    recovery: dict[str, Any] = {
        "most attempts of one reply row": max((r.attempts for r in replies), default=0)
    }
    if api_up_at is not None:  # wall clock, as the rows' times
        backlog = [r for r in replies if r.created_at.timestamp() < api_up_at and r.sent_at]
        last = max((r.sent_at.timestamp() for r in backlog), default=api_up_at)
        recovery["backlog sent within s of API up"] = round(last - api_up_at)
    return {
        "outbox drained after s": int(drained),
        "numbers told": len(numbers_told),
        "told but not stored": len(numbers_told - set(stored)),
        "stored twice": sum(1 for c in stored.values() if c > 1),
        "complaints stored": len(stored),
        "stored but never told": len(set(stored) - numbers_told),
        "number gaps": len(gaps),
        "dialogs": len(sessions),
        "dialogs unreadable": unreadable,
        "people who finished": f"{finished}/{len(chats)}",
        "updates taken": taken,
        "turns run (session versions)": sum(s.version for s in sessions),
        "reply rows": len(replies),
        "reply rows by status": dict(status),
        "replies never shown": missing,
        "replies shown twice": again,
        "most repeats in one chat": worst,
        "chats out of order": disordered,
        "rows shown after a newer one, by": dict(late),
        "texts matching no row": unmatched,
        "other outbox rows (sent/all)": f"{sum(r.status == 'sent' for r in others)}/{len(others)}",
        **recovery,
    }


# ---------------------------------------------------------------- the drills


def think(args: argparse.Namespace) -> Callable[[], Awaitable[None]]:
    """A person's pause before the next step: 0.5-1.5 x `--think` seconds (the kills fall
    inside the filings, not after them)."""
    rng = random.Random(args.seed)

    async def pause() -> None:
        await asyncio.sleep(rng.uniform(0.5, 1.5) * args.think)

    return pause


async def killer(server: Server, kills: int, rng: random.Random, counts: Counter[str]) -> None:
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(2.0, 6.0))
        server.kill()
        counts["kills"] += 1
        server.start()
        await server.ready()


async def under_fire(
    people: list[Awaitable[None]], server: Server | None, kills: int, rng: random.Random
) -> Counter[str]:
    counts: Counter[str] = Counter()
    chaos = asyncio.create_task(killer(server, kills, rng, counts)) if server else None
    started = time.perf_counter()
    await asyncio.gather(*people)
    counts["seconds"] = int(time.perf_counter() - started)
    if chaos is not None:
        chaos.cancel()
        await asyncio.gather(chaos, return_exceptions=True)
        if server is not None and (server.proc is None or server.proc.poll() is not None):
            server.start()  # cancelled between kill and restart
    return counts


async def telegram_drill(db: str, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    import aiohttp

    api = helper("fake-api")
    api.start()
    with running(api):
        await api.ready()
        async with database(db) as url:
            server = product(url, api.port, Path(tempfile.mkdtemp(prefix="cd_faults_")))
            with running(server):
                server.start()
                await server.ready()
                webhook = f"http://127.0.0.1:{server.port}/telegram/webhook"
                uids = [700_000 + i for i in range(args.users)]
                shown = Shown()
                counts: Counter[str] = Counter()
                timeout = aiohttp.ClientTimeout(total=60)
                async with aiohttp.ClientSession(timeout=timeout) as session:
                    up_at: float | None = None  # when the API came back (outage)
                    if args.drill == "kill":
                        people = [
                            telegram_person(session, webhook, uid, shown, counts, pause=think(args))
                            for uid in uids
                        ]
                        counts.update(await under_fire(people, server, args.kills, rng))
                    elif args.drill == "duplicates":
                        people = [
                            telegram_person(
                                session,
                                webhook,
                                uid,
                                shown,
                                counts,
                                copies=lambda: rng.choice((2, 3)),
                            )
                            for uid in uids
                        ]
                        counts.update(await under_fire(people, None, 0, rng))
                    else:
                        paced, up_at = await outage(session, webhook, api.port, uids, shown, args)
                        counts.update(paced)
                chats = [str(u) for u in uids]
                figures = await check(
                    url, "telegram", chats, lambda: telegram_shown(api.port, shown), api_up_at=up_at
                )
    return {**counts, **figures}


async def outage(
    session: Any,
    webhook: str,
    api_port: int,
    uids: list[int],
    shown: Shown,
    args: argparse.Namespace,
) -> tuple[Counter[str], float]:
    """The Bot API down for `args.down_seconds` while the people keep filing: their steps
    paced so the filings span 10 s before, the outage, and 10 s after. Returns the counts and
    when (wall clock, as the rows' times) the API came back."""
    counts: Counter[str] = Counter()
    up_at = 0.0
    down = args.down_seconds
    step_pause = (down + 20) / len(GOV_WINDOW_FILING)
    rng = random.Random(args.seed)

    async def pause() -> None:
        await asyncio.sleep(rng.uniform(0.5, 1.5) * step_pause)

    async def switch(is_down: bool) -> None:
        async with session.post(f"http://127.0.0.1:{api_port}/down", json={"down": is_down}):
            pass

    async def api_down() -> None:
        nonlocal up_at
        await asyncio.sleep(10)
        await switch(True)
        await asyncio.sleep(down)
        await switch(False)
        up_at = time.time()

    chaos = asyncio.create_task(api_down())
    started = time.perf_counter()
    await asyncio.gather(
        *(telegram_person(session, webhook, uid, shown, counts, pause=pause) for uid in uids)
    )
    await chaos
    counts["seconds"] = int(time.perf_counter() - started)
    counts["API down s"] = down
    return counts, up_at


def wechat_product(db_url: str, fake: Any, data_dir: Path) -> Server:
    server = product(db_url, 1, data_dir)  # no Bot API: the Telegram settings go
    for name in list(server.env):
        if name.startswith("COMPLAINTDESK_TELEGRAM_"):
            del server.env[name]
    server.env.update(
        {
            "COMPLAINTDESK_WECHAT_APPID": fake.appid,
            "COMPLAINTDESK_WECHAT_SECRET": fake.secret,
            "COMPLAINTDESK_WECHAT_TOKEN": fake.token,
            "COMPLAINTDESK_WECHAT_AES_KEY": fake.aes_key,
            "COMPLAINTDESK_WECHAT_API_BASE": fake.base_url,
        }
    )
    return server


async def wechat_drill(db: str, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    fake = timed_fake_wechat()
    async with fake, database(db) as url:
        server = wechat_product(url, fake, Path(tempfile.mkdtemp(prefix="cd_faults_")))
        with running(server):
            server.start()
            await server.ready()
            endpoint = f"http://127.0.0.1:{server.port}/wechat"
            openids = [f"oBenchFaults{i:016d}" for i in range(args.users)]
            shown = Shown()
            counts: Counter[str] = Counter()
            if args.drill == "kill":
                people = [
                    wechat_person(fake, endpoint, o, shown, counts, pause=think(args))
                    for o in openids
                ]
                counts.update(await under_fire(people, server, args.kills, rng))
            else:
                people = [
                    wechat_person(
                        fake, endpoint, o, shown, counts, copies=lambda: rng.choice((2, 3))
                    )
                    for o in openids
                ]
                counts.update(await under_fire(people, None, 0, rng))

            async def shown_after() -> Shown:
                """Passive replies plus the customer-service messages sent by now."""
                return shown.merged(fake.shown)

            figures = await check(url, "wechat", openids, shown_after)
    counts["customer-service messages"] = len(fake.sent)
    return {**counts, **figures}


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    channels = getattr(args, "channel", None) or ["telegram"]
    for run in range(args.runs):
        for channel in channels:
            for db in args.db or ["sqlite", "postgres"]:
                drill = wechat_drill if channel == "wechat" else telegram_drill
                figures = await drill(db, args, rng)
                what = f"{args.drill} {channel} {db}, run {run + 1}: {args.users} users"
                if args.drill == "kill":
                    what += f", {figures.get('kills', 0)} kills -9"
                print(f"-- {what}", flush=True)
                for key, value in figures.items():
                    print(f"   {key:<34} {value}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    drills = parser.add_subparsers(dest="drill", required=True)
    for name in ("kill", "outage", "duplicates"):
        sub = drills.add_parser(name)
        sub.add_argument("--users", type=int, default=50)
        sub.add_argument("--db", action="append", choices=["sqlite", "postgres"])
        sub.add_argument("--runs", type=int, default=1)
        sub.add_argument("--seed", type=int, default=1)
        if name != "outage":
            sub.add_argument("--channel", action="append", choices=["telegram", "wechat"])
        if name == "kill":
            sub.add_argument("--kills", type=int, default=4)
            sub.add_argument("--think", type=float, default=1.0, help="seconds between steps")
        if name == "outage":
            sub.add_argument("--down-seconds", type=float, default=300.0)
    asyncio.run(main(parser.parse_args()))
