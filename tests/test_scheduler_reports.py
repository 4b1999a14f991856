"""Weekly/monthly reports: the figures, the message and a valid XLSX workbook."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.attachments import read_attachment
from config.profiles import load_profile
from models.actions import Actor, act
from models.alarms import set_alarm_context
from models.entities import Attachment, Complaint, OutboxMessage
from models.outbox import outgoing_from_json
from models.workflow import Action, Role
from scheduler.jobs import sweep
from scheduler.reports import (
    XLSX_MIME,
    due_report_period,
    gather_report,
    last_send_time,
    mask_name,
    render_text,
    report_period,
    send_report,
)
from scheduler.runner import report_catch_up
from scheduler.survey import record_survey_answer
from tests.scheduler_support import (
    CONTEXT,
    SHANGHAI,
    accept,
    acknowledge,
    assign,
    clock,
    end_of,
    file,
    local,
    make_org,
)

REPORT_AT = local("2026-11-09T08:00")  # Monday: the week 2–8 November is reported


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


def test_report_periods_are_the_last_complete_week_and_month() -> None:
    week = report_period("weekly", REPORT_AT, SHANGHAI)
    assert (week.start, week.end, week.label) == (
        local("2026-11-02T00:00"),
        local("2026-11-09T00:00"),
        "2026-W45",
    )
    month = report_period("monthly", local("2026-11-01T08:00"), SHANGHAI)
    assert (month.start, month.end, month.label) == (
        local("2026-10-01T00:00"),
        local("2026-11-01T00:00"),
        "2026-10",
    )
    january = report_period("monthly", local("2027-01-01T08:00"), SHANGHAI)
    assert january.label == "2026-12"
    assert mask_name("张三", 7) == "张* (#7)" and mask_name(None, 7) == "#7"


async def build_week() -> dict[str, Complaint]:
    profile = load_profile("gov-window")
    org = await make_org()
    earlier = await file(profile, local("2026-10-28T10:00"), user="u3")  # last week
    a = await file(profile, local("2026-11-02T10:00"), user="u1")
    await Complaint.filter(id=a.id).update(target_staff_id=org.handler.id)
    await accept(profile, org, a, local("2026-11-02T11:00"))
    await assign(profile, org, a, local("2026-11-02T11:30"))
    await acknowledge(profile, org, a, local("2026-11-02T12:00"))
    worker = Actor(Role.HANDLER, org.handler)
    resolved_at = local("2026-11-03T15:00")
    payload = {"reply_text": "已处理"}
    at = clock(resolved_at)
    await act(a.id, Action.RESOLVE, worker, profile=profile, clock=at, payload=payload)
    await act(a.id, Action.NOTIFY_RESULT, worker, profile=profile, clock=clock(resolved_at))
    await sweep(end_of("2026-11-04"), profile=profile, context=CONTEXT)
    outcome = await record_survey_answer(
        a.id, 8, 6, None, local("2026-11-05T10:00"), profile, context=CONTEXT
    )
    assert outcome.status == "closed"
    b = await file(profile, local("2026-11-03T09:00"), user="u1")  # the same person again
    await Complaint.filter(id=b.id).update(category="efficiency")
    await accept(profile, org, b, local("2026-11-03T10:00"))
    c = await file(profile, local("2026-11-04T09:00"), user="u2")
    return {"earlier": earlier, "a": a, "b": b, "c": c}


async def test_weekly_figures(db_url: str) -> None:
    cases = await build_week()
    profile = load_profile("gov-window")
    period = report_period("weekly", REPORT_AT, SHANGHAI)
    data = await gather_report(period, REPORT_AT, profile)
    stats = data.stats
    assert stats.total == 3
    assert [(c.key, c.count) for c in stats.by_category] == [
        ("service_attitude", 2),
        ("efficiency", 1),
    ]
    assert [(c.name, c.count) for c in stats.by_department] == [(None, 2), ("科室", 1)]
    assert [(c.key, c.count) for c in stats.by_state] == [
        ("accepted", 1),
        ("closed", 1),
        ("submitted", 1),
    ]
    resolution = stats.resolution_rate
    # a was resolved on time; b's resolution fell due on 6 November, undone: late.
    assert resolution is not None and (resolution.settled, resolution.on_time) == (2, 1)
    # Overdue now: last week's acceptance (due 2 Nov) and b's resolution (due 6 Nov).
    assert [(o.number, o.stage) for o in stats.overdue] == [
        (cases["earlier"].number, "acceptance"),
        (cases["b"].number, "resolution"),
    ]
    assert (stats.satisfaction.answers, stats.no_response) == (1, 0)
    assert (stats.satisfaction.average_result, stats.satisfaction.average_attitude) == (8.0, 6.0)
    person = cases["a"].complainant_id  # type: ignore[attr-defined]
    # a and b by the same identity, c (another chat) by the same phone number.
    assert [(r.label, r.count) for r in stats.repeat_complainants] == [(f"张*（#{person}）", 3)]
    text = render_text(data, profile, "zh_CN", SHANGHAI)
    assert text.startswith("📊 投诉处理周报 2026-W45（2026-11-02至2026-11-08）")
    assert "按类别：服务态度 2 件，办事效率 1 件" in text
    assert "按承办部门：未分派 2 件，科室 1 件" in text
    assert "按时办结率：50%（1/2）" in text and cases["b"].number in text


async def test_an_answered_survey_is_not_overdue(db_url: str) -> None:
    """D19: a case in 回访中 whose survey is answered waits for no one."""
    cases = await build_week()
    profile = load_profile("gov-window")
    a = cases["a"]
    # As the supervisor path leaves it: answered, still in revisit, a reminder pending.
    due = local("2026-11-06T17:00").isoformat()
    deadlines = {**(await Complaint.get(id=a.id)).deadlines, "survey_reminder": {"due": due}}
    await Complaint.filter(id=a.id).update(
        state="revisit", deadlines=deadlines, next_due_at=local("2026-11-06T17:00"),
        next_due_stage="survey_reminder", closed_at=None,
    )  # fmt: skip
    data = await gather_report(report_period("weekly", REPORT_AT, SHANGHAI), REPORT_AT, profile)
    assert a.number not in [o.number for o in data.stats.overdue]
    assert "survey_reminder" not in render_text(data, profile, "zh_CN", SHANGHAI)


async def test_send_report_queues_once_to_managers_with_the_workbook(
    db_url: str, tmp_path: Path
) -> None:
    await build_week()
    profile = load_profile("gov-window")
    result = await send_report("weekly", REPORT_AT, profile, SHANGHAI)
    assert result is not None and len(result.recipients) == 2  # supervisor and admin
    rows = await OutboxMessage.filter(idempotency_key__startswith="report:").order_by("id")
    assert [r.chat_id for r in rows] == ["supervisor", "admin"]
    message = outgoing_from_json(rows[0].payload)
    attachment = await Attachment.get(id=int(message.attachments[0].removeprefix("att:")))
    assert attachment.file_name == "complaints-weekly-2026-W45-zh_CN.xlsx"
    # A readable workbook in the store, typed by its content.
    assert attachment.mime_type == XLSX_MIME
    load_workbook(io.BytesIO(await read_attachment(attachment)))
    assert await send_report("weekly", REPORT_AT, profile, SHANGHAI) is None
    later: datetime = local("2026-11-16T08:00")
    assert await send_report("weekly", later, profile, SHANGHAI) is not None


def test_the_due_period_is_the_one_whose_sending_time_has_passed() -> None:
    # Before Monday 08:00 the week before last is still the one due; from 08:00 the last week.
    assert last_send_time("weekly", local("2026-11-09T07:59"), SHANGHAI) == local(
        "2026-11-02T08:00"
    )
    assert due_report_period("weekly", local("2026-11-09T07:59"), SHANGHAI).label == "2026-W44"
    assert due_report_period("weekly", local("2026-11-09T08:00"), SHANGHAI).label == "2026-W45"
    # A worker back on Wednesday after being down over Monday morning: last week is due.
    assert due_report_period("weekly", local("2026-11-11T15:00"), SHANGHAI).label == "2026-W45"
    assert due_report_period("monthly", local("2026-12-01T07:00"), SHANGHAI).label == "2026-10"
    assert due_report_period("monthly", local("2026-12-03T10:00"), SHANGHAI).label == "2026-11"
    assert due_report_period("monthly", local("2027-01-01T08:00"), SHANGHAI).label == "2026-12"


async def test_reports_missed_during_downtime_are_sent_when_a_worker_is_back(
    db_url: str,
) -> None:
    await build_week()
    profile = load_profile("gov-window")
    # Down from Sunday to Wednesday afternoon: Monday 08:00 passed with no worker up.
    back = local("2026-11-11T15:00")
    catch_up = report_catch_up(lambda: back, profile, SHANGHAI)
    assert await catch_up() == {"weekly": "2026-W45", "monthly": "2026-10"}
    reports = OutboxMessage.filter(idempotency_key__startswith="report:")
    keys = set(await reports.values_list("idempotency_key", flat=True))
    assert {k.rsplit(":", 1)[0] for k in keys} == {
        "report:weekly:2026-W45",
        "report:monthly:2026-10",
    }
    # The next hourly run (or another worker) sends nothing again.
    assert await catch_up() == {"weekly": None, "monthly": None}
    assert await reports.count() == len(keys)
