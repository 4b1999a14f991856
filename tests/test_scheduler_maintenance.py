"""Retention anonymisation, the provisional-deadline recount, old-row alarm planning and the
APScheduler set-up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from apscheduler.schedulers.base import STATE_STOPPED

from config.profiles import load_profile
from config.settings import Settings
from models.actions import Clock, submit_complaint
from models.alarms import AlarmContext, profile_loader, set_alarm_context
from models.entities import (
    Attachment,
    Channel,
    Complainant,
    Complaint,
    Event,
    OutboxMessage,
    SurveyResponse,
)
from models.workflow import State
from scheduler.calendar import HolidayOverrides, WorkingCalendar
from scheduler.jobs import rebuild_alarms, recompute_provisional, sweep
from scheduler.retention import anonymise_expired, retention_cutoff
from scheduler.runner import SCHEDULER_KEY, setup_scheduler
from scheduler.survey import record_survey_answer
from tests.scheduler_support import (
    CONTEXT,
    SHANGHAI,
    accept,
    acknowledge,
    assign,
    end_of,
    file,
    local,
    make_org,
    reply,
)


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


def test_retention_cutoff_counts_calendar_years() -> None:
    assert retention_cutoff(local("2026-03-10T10:00"), 3, SHANGHAI) == local("2023-03-10T10:00")
    assert retention_cutoff(local("2028-02-29T10:00"), 3, SHANGHAI) == local("2025-02-28T10:00")


async def closed_case(when: str, user: str, tmp_path: Path) -> Complaint:
    """A gov-window complaint filed, handled, surveyed (with a comment) and closed around
    `when` (a Monday), with a photo."""
    profile = load_profile("gov-window")
    org = await make_org(suffix=user)
    start = local(f"{when}T10:00")
    complaint = await file(profile, start, user=user)
    photo = tmp_path / f"{user}.jpg"
    await asyncio.to_thread(photo.write_bytes, user.encode())
    await Attachment.create(
        complaint=complaint,
        channel=Channel.TELEGRAM,
        sha256=user * 8,
        stored_path=str(photo),
        size=2,
    )
    await accept(profile, org, complaint, start + timedelta(hours=1))
    await assign(profile, org, complaint, start + timedelta(hours=1))
    await acknowledge(profile, org, complaint, start + timedelta(hours=1))
    await reply(profile, org, complaint, start + timedelta(hours=2))
    await sweep(start + timedelta(days=3), profile=profile, context=CONTEXT)
    outcome = await record_survey_answer(
        complaint.id, 9, 9, "谢谢张科长", start + timedelta(days=3), profile, context=CONTEXT
    )
    assert outcome.status == "closed"
    return await Complaint.get(id=complaint.id)


async def test_retention_anonymises_old_closed_complaints_and_logs_it(
    db_url: str, tmp_path: Path
) -> None:
    profile = load_profile("gov-window")
    old = await closed_case("2022-03-07", "old", tmp_path)
    recent = await closed_case("2024-03-04", "new", tmp_path)
    report = await anonymise_expired(local("2025-06-01T03:30"), profile, context=CONTEXT)
    assert report.anonymised == [old.number]
    assert report.files_removed == 1 and not (tmp_path / "old.jpg").exists()
    gone = await Complaint.get(id=old.id)
    assert gone.state == State.ARCHIVED and gone.anonymised_at == local("2025-06-01T03:30")
    assert (gone.contact_name, gone.contact_phone, gone.facts, gone.reply_text) == (
        None,
        None,
        "",
        None,
    )
    assert gone.complainant_id is None  # type: ignore[attr-defined]
    assert gone.category == "service_attitude" and gone.lead_department_id is not None  # type: ignore[attr-defined]
    survey = await SurveyResponse.get(complaint_id=old.id)
    assert (survey.result_score, survey.attitude_score, survey.comment) == (9, 9, None)
    assert not await Attachment.filter(complaint_id=old.id).exists()
    assert not await OutboxMessage.filter(complaint_id=old.id).exists()
    person = await Complainant.get(external_id=f"anonymised-{old.complainant_id}")  # type: ignore[attr-defined]
    assert person.name is None and person.phone is None and person.chat_id is None
    archive = await Event.get(complaint_id=old.id, action="archive")
    assert "contact_phone" in archive.payload["anonymised"]
    resolve = await Event.get(complaint_id=old.id, action="resolve")
    assert "reply_text" not in resolve.payload  # texts scrubbed from the log, effects kept
    kept = await Complaint.get(id=recent.id)
    assert kept.state == State.CLOSED and kept.contact_name == "张三"
    assert (tmp_path / "new.jpg").exists()
    again = await anonymise_expired(local("2025-06-02T03:30"), profile, context=CONTEXT)
    assert again.anonymised == []


async def test_provisional_deadlines_are_recounted_when_the_year_becomes_official(
    db_url: str,
) -> None:
    profile = load_profile("gov-window")
    provisional = WorkingCalendar(today=date(2026, 12, 1))
    set_alarm_context(AlarmContext(provisional, SHANGHAI, profile_loader()))
    # Filed Thu 31 Dec 2026: the count runs into 2027, a year without official data yet.
    complaint = await submit_complaint(
        profile=profile,
        channel=Channel.WEB,
        external_id="p1",
        answers={"category": "service_attitude", "facts": "窗口人员态度差，多次推诿。"},
        clock=Clock(provisional, SHANGHAI, local("2026-12-31T10:00")),
    )
    assert complaint.deadline_provisional
    # The State Council notice (illustrative data): 1 Jan and also 4–5 Jan are holidays.
    official = WorkingCalendar(
        HolidayOverrides(
            holidays={
                day: "New Year" for day in (date(2027, 1, 1), date(2027, 1, 4), date(2027, 1, 5))
            },
            official_years=frozenset({2027}),
        ),
        today=date(2026, 12, 1),
    )
    context = AlarmContext(official, SHANGHAI, profile_loader())
    set_alarm_context(context)
    changed = await recompute_provisional(local("2027-01-02T04:10"), context=context)
    assert changed == [complaint.number]
    stored = await Complaint.get(id=complaint.id)
    assert not stored.deadline_provisional
    # 3 working days after 31 Dec: 1 Jan holiday, weekend, 4–5 Jan holidays → 6, 7, 8 Jan.
    assert stored.deadlines["acceptance"]["due"] == end_of("2027-01-08").isoformat()
    assert stored.next_due_at == end_of("2027-01-08")
    assert await Event.filter(action="deadlines_recomputed").count() == 1
    assert await recompute_provisional(local("2027-01-02T04:20"), context=context) == []


async def test_rows_from_before_the_scheduler_get_their_alarm_planned(db_url: str) -> None:
    profile = load_profile("gov-window")
    await make_org()
    complaint = await file(profile, local("2026-09-30T10:00"))
    await Complaint.filter(id=complaint.id).update(alarm_state=None, next_alarm_at=None)
    assert await rebuild_alarms(CONTEXT) == 1
    stored = await Complaint.get(id=complaint.id)
    assert stored.next_alarm_at == local("2026-10-09T17:00") and stored.alarm_state == {}
    assert await rebuild_alarms(CONTEXT) == 0


async def test_setup_scheduler_registers_the_jobs_and_plans_old_rows(
    db_url: str, tmp_path: Path
) -> None:
    profile = load_profile("gov-window")
    await make_org()
    complaint = await file(profile, local("2026-09-30T10:00"))
    await Complaint.filter(id=complaint.id).update(alarm_state=None, next_alarm_at=None)
    app = web.Application()
    settings = Settings(data_dir=tmp_path, scheduler_interval_seconds=30)
    # Paused: the jobs are checked here, not run on the real clock.
    scheduler = setup_scheduler(app, settings, profile, calendar=CONTEXT.calendar, paused=True)
    assert app[SCHEDULER_KEY] is scheduler
    for on_startup in app.on_startup:
        await on_startup(app)
    try:
        assert scheduler.running
        assert {job.id for job in scheduler.get_jobs()} == {
            "deadline-sweep",
            "severity-upgrade",
            "mass-matters",
            "recompute-provisional",
            "retention",
            "reports",
        }
        assert scheduler.get_job("deadline-sweep").name == "deadline-sweep"  # type: ignore[union-attr]
        sweep_job = scheduler.get_job("deadline-sweep")
        assert sweep_job is not None and sweep_job.trigger.interval == timedelta(seconds=30)
        assert (await Complaint.get(id=complaint.id)).next_alarm_at is not None
    finally:
        for on_cleanup in app.on_cleanup:
            await on_cleanup(app)
        set_alarm_context(CONTEXT)
    await asyncio.sleep(0)  # AsyncIOScheduler.shutdown runs on the next loop iteration
    assert scheduler.state == STATE_STOPPED
