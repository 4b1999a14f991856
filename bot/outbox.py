"""The outbox dispatcher: sends queued messages to people under each platform's limits.

Channel adapters implement `Sender`; they translate platform errors into the three exceptions
below so the dispatcher can decide, without knowing any platform, whether to wait, retry or give
up on a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from handlers.messages import Outgoing
from models.entities import Channel


class RetryLater(Exception):
    """The platform asked us to wait (Telegram 429 `retry_after`): honour it exactly."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds} s")
        self.seconds = float(seconds)


class TransientFailure(Exception):
    """A 5xx or network error: retry with exponential backoff."""


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
