"""What the outbox's tests and benchmarks share: rows queued round-robin over many chats, and
the checks on what the platform received — the most requests in any sliding window, and
messages lost, duplicated or out of order per chat.

Used by tests/test_outbox.py, bench/outbound.py and bench/outbox_storm.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from handlers.messages import Outgoing
from models.entities import Channel, OutboxMessage
from models.outbox import outgoing_to_json


def chat_ids(chats: int, groups: int = 0) -> list[str]:
    """`chats` Telegram chat ids, the last `groups` of them group chats (negative ids)."""
    private = [str(100_000 + n) for n in range(chats - groups)]
    return private + [str(-1_000_000 - n) for n in range(groups)]


def numbered(chat: str, n: int) -> str:
    """The `n`-th message's text for `chat` (1-based), unique over all chats."""
    return f"{chat}/{n}"


async def queue_round_robin(
    chats: list[str],
    messages: int,
    *,
    now: datetime,
    key_prefix: str,
    text: Callable[[str, int], str] = numbered,
) -> dict[str, list[str]]:
    """Queue `messages` rows over `chats` in turn (one INSERT per 1 000 rows, the rows
    `models.outbox.enqueue` would write, keyed "<key_prefix>:<chat>:<text>"); returns each
    chat's texts in queue order."""
    expected: dict[str, list[str]] = {chat: [] for chat in chats}
    rows = []
    for n in range(messages):
        chat = chats[n % len(chats)]
        body = text(chat, len(expected[chat]) + 1)
        expected[chat].append(body)
        rows.append(
            OutboxMessage(
                idempotency_key=f"{key_prefix}:{chat}:{body}",
                channel=Channel.TELEGRAM,
                chat_id=chat,
                payload=outgoing_to_json(Outgoing(text=body)),
                next_attempt_at=now,
            )
        )
    await OutboxMessage.bulk_create(rows, batch_size=1000)
    return expected


def peak_in_window(instants: Iterable[float], window: float) -> int:
    """Most instants inside any half-open window (t - window, t], as the platform counts."""
    times = sorted(instants)
    best, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - window:
            first += 1
        best = max(best, last - first + 1)
    return best


@dataclass(frozen=True, slots=True)
class Delivery:
    """What reached the chats, against what was queued."""

    lost: int  # queued messages never accepted
    duplicated: int  # accepted copies beyond the first
    out_of_order: int  # chats whose first copies did not come in queue order


def check_delivery(expected: dict[str, list[str]], accepted: Iterable[tuple[str, str]]) -> Delivery:
    """`accepted`: (chat, text) of each message the platform took, in the order it took them."""
    by_chat: dict[str, list[str]] = {}
    for chat, text in accepted:
        by_chat.setdefault(chat, []).append(text)
    copies = Counter((chat, text) for chat, texts in by_chat.items() for text in texts)
    wanted = {(chat, text) for chat, texts in expected.items() for text in texts}
    return Delivery(
        lost=len(wanted - set(copies)),
        duplicated=sum(n - 1 for n in copies.values() if n > 1),
        out_of_order=sum(
            1
            for chat, texts in expected.items()
            if list(dict.fromkeys(by_chat.get(chat, []))) != texts
        ),
    )
