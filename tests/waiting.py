"""Waiting for background work in tests: on a condition, with a generous deadline.

CI runs on a shared 2-core machine that may be busy with other jobs, so no test waits a
fixed time or a fixed number of rounds for something asynchronous: it polls the condition
until a deadline far beyond what a quiet machine needs, and on expiry says what was still
missing. Nothing here measures speed.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

# Far beyond any quiet-machine need (most waits end in milliseconds); only a hang reaches it.
WITHIN_SECONDS = 60.0

Condition = Callable[[], bool | Awaitable[bool]]


async def eventually(
    condition: Condition,
    *,
    within: float = WITHIN_SECONDS,
    what: str | Callable[[], object] = "the condition",
    poll: float = 0.02,
) -> None:
    """Return once `condition()` (sync or async) is true; AssertionError after `within` s.

    `what` names what is awaited, or is a callable whose result (the current state) is
    reported when the deadline passes, so a failure shows what was still missing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if loop.time() >= deadline:
            state = what() if callable(what) else what
            if inspect.isawaitable(state):
                state = await state
            raise AssertionError(f"still not so after {within:.0f} s: {state}")
        await asyncio.sleep(poll)
