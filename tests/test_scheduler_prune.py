"""Platform update ids are forgotten after a week, by the daily retention job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from config.profiles import load_profile
from models.alarms import set_alarm_context
from models.entities import Channel, ProcessedUpdate
from scheduler import runner
from scheduler.jobs import PROCESSED_UPDATE_RETENTION, prune_processed_updates
from tests.scheduler_support import CONTEXT, local

NOW = local("2026-10-12T03:30")


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


async def seen(key: str, at: datetime, channel: Channel = Channel.TELEGRAM) -> None:
    await ProcessedUpdate.create(channel=channel, update_key=key, created_at=at)


async def remaining() -> list[str]:
    return sorted(await ProcessedUpdate.all().values_list("update_key", flat=True))


async def test_update_ids_older_than_a_week_are_pruned(db_url: str) -> None:
    assert PROCESSED_UPDATE_RETENTION == timedelta(days=7)
    await seen("month-old", NOW - timedelta(days=30))
    await seen("just-over-a-week", NOW - timedelta(days=7, seconds=1))
    await seen("exactly-a-week", NOW - timedelta(days=7))
    await seen("yesterday", NOW - timedelta(days=1), Channel.WECHAT)
    await seen("just-now", NOW)
    assert await prune_processed_updates(NOW) == 2
    assert await remaining() == ["exactly-a-week", "just-now", "yesterday"]
    assert await prune_processed_updates(NOW) == 0  # nothing twice
    assert await prune_processed_updates(NOW, keep=timedelta(hours=1)) == 2
    assert await remaining() == ["just-now"]


async def test_prune_needs_an_aware_instant() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await prune_processed_updates(datetime(2026, 10, 12, 3, 30))


async def test_the_daily_retention_job_prunes_even_when_anonymising_fails(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = load_profile("gov-window")
    await seen("old", NOW - timedelta(days=8))
    job = runner.daily_retention(lambda: NOW, profile, CONTEXT)
    done = await job()
    assert done["processed_updates_pruned"] == 1
    assert done["anonymised"] != "failed"

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(runner, "anonymise_expired", broken)
    await seen("old-too", NOW - timedelta(days=9))
    done = await job()
    assert done == {
        "anonymised": "failed",
        "processed_updates_pruned": 1,
        "sent_outbox_pruned": 0,
        "orphan_uploads_expired": 0,
        "desk_sessions_pruned": 0,
        "api_idempotency_pruned": 0,
        "planner_statistics": done["planner_statistics"],
    }
    assert done["planner_statistics"] is (db_url.startswith("sqlite"))
    assert await remaining() == []
