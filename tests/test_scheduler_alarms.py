"""Alarm planning without a database: reminder points, escalation instants, watches."""

from __future__ import annotations

from config.profiles import load_profile
from models.alarms import (
    AlarmKind,
    CaseView,
    Watch,
    acknowledgement_watch,
    escalation_instant,
    iso,
    next_alarm,
    pending_alarms,
    reminder_points,
    watches,
)
from models.workflow import State
from tests.scheduler_support import CALENDAR, SHANGHAI, end_of, local

GOV = load_profile("gov-window")
PROPERTY = load_profile("property")


def entry(start: str, due: object, **extra: object) -> dict[str, object]:
    return {"start": start, "amount": 3, "unit": "working_days", "due": due, **extra}


def test_reminders_count_back_from_the_office_close_of_a_day_deadline() -> None:
    watch = Watch("resolution", local("2026-09-30T10:30"), end_of("2026-10-10"))
    assert reminder_points(watch, GOV, CALENDAR, SHANGHAI) == [
        local("2026-10-09T17:00"),  # 1 working day before (Friday; Saturday 10 Oct is 调休)
        local("2026-10-10T15:00"),  # 2 hours before the office closes
    ]


def test_reminder_points_before_the_start_are_skipped() -> None:
    watch = Watch("dispatch", local("2026-10-03T22:01"), local("2026-10-03T22:06"))
    assert reminder_points(watch, PROPERTY, CALENDAR, SHANGHAI) == []


def test_escalation_levels_step_by_the_interval_in_working_days() -> None:
    watch = Watch("resolution", local("2026-09-29T10:00"), end_of("2026-09-30"))
    levels = [escalation_instant(watch, n, GOV, CALENDAR, SHANGHAI) for n in (1, 2, 3)]
    # National Day: 1–7 Oct are holidays, so the next working days are 8 and 9 Oct.
    assert levels == [end_of("2026-09-30"), end_of("2026-10-08"), end_of("2026-10-09")]


def test_acknowledgement_watch_uses_the_dispatch_limit_from_the_assignment() -> None:
    deadlines = {
        "dispatch": {
            "start": iso(local("2026-10-03T22:01")),
            "amount": 5,
            "unit": "minutes",
            "due": iso(local("2026-10-03T22:06")),
            "done": iso(local("2026-10-03T22:04")),
        },
        "resolution": entry(iso(local("2026-10-03T22:01")), iso(local("2026-10-04T22:01"))),
    }
    watch = acknowledgement_watch(deadlines, CALENDAR, SHANGHAI)
    assert watch == Watch("acknowledgement", local("2026-10-03T22:04"), local("2026-10-03T22:09"))
    # Reopened later: that old dispatch belongs to the earlier round.
    deadlines["resolution"] = entry(iso(local("2026-10-05T09:00")), iso(local("2026-10-06T09:00")))
    assert acknowledgement_watch(deadlines, CALENDAR, SHANGHAI) is None


def test_paused_complaints_and_done_stages_have_no_watch() -> None:
    deadlines = {"resolution": entry(iso(local("2026-09-30T10:30")), iso(end_of("2026-10-10")))}
    running = CaseView(State.IN_PROGRESS, deadlines, {})
    assert [w.stage for w in watches(running, CALENDAR, SHANGHAI)] == ["resolution"]
    paused = CaseView(State.WAITING_FOR_COMPLAINANT, deadlines, {}, paused=True)
    assert watches(paused, CALENDAR, SHANGHAI) == []
    deadlines["resolution"]["done"] = iso(local("2026-10-05T10:00"))
    assert watches(running, CALENDAR, SHANGHAI) == []


def test_progress_in_alarm_state_moves_the_next_alarm() -> None:
    due = end_of("2026-10-10")
    deadlines = {"resolution": entry(iso(local("2026-09-30T10:30")), iso(due))}
    slot = f"resolution@{iso(due)}"
    fresh = CaseView(State.IN_PROGRESS, deadlines, {})
    assert next_alarm(fresh, GOV, CALENDAR, SHANGHAI) == local("2026-10-09T17:00")
    reminded = CaseView(
        State.IN_PROGRESS,
        deadlines,
        {slot: {"reminded": [iso(local("2026-10-09T17:00")), iso(local("2026-10-10T15:00"))]}},
    )
    assert next_alarm(reminded, GOV, CALENDAR, SHANGHAI) == due
    escalated = CaseView(State.IN_PROGRESS, deadlines, {slot: {"escalated": 1}})
    alarms = pending_alarms(escalated, GOV, CALENDAR, SHANGHAI)
    assert [(a.kind, a.level) for a in alarms] == [(AlarmKind.ESCALATE, 2)]
    done = CaseView(State.IN_PROGRESS, deadlines, {slot: {"escalated": 3, "exhausted": True}})
    assert next_alarm(done, GOV, CALENDAR, SHANGHAI) is None


def test_survey_alarms_follow_the_revisit_table() -> None:
    reply = local("2026-10-09T10:00")
    replied = CaseView(State.REPLIED, {"revisit": entry(iso(reply), iso(end_of("2026-10-10")))}, {})
    assert [(a.kind, a.at) for a in pending_alarms(replied, GOV, CALENDAR, SHANGHAI)] == [
        (AlarmKind.SEND_SURVEY, end_of("2026-10-10"))
    ]
    started = iso(end_of("2026-10-10"))
    deadlines = {
        "survey_reminder": entry(started, iso(end_of("2026-10-12"))),
        "auto_close": entry(started, iso(end_of("2026-10-13"))),
    }
    revisit = CaseView(State.REVISIT, deadlines, {})
    kinds = [a.kind for a in pending_alarms(revisit, GOV, CALENDAR, SHANGHAI)]
    assert kinds == [AlarmKind.SURVEY_REMINDER, AlarmKind.NO_RESPONSE_CLOSE]
    answered = CaseView(State.REVISIT, deadlines, {"survey": {"answered": True}})
    assert pending_alarms(answered, GOV, CALENDAR, SHANGHAI) == []
