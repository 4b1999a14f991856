"""An escalation that reaches nobody (no one holds any rung's role) is never silent: the case
page on the browser desk shows it, and the weekly/monthly report lists it."""

from __future__ import annotations

from pathlib import Path

from models.alarms import unheard_escalations
from models.entities import Complaint, Staff
from scheduler.reports import gather_report, render_text, report_period
from tests.desk_support import MovableNow, desk_client, give_password, page, sign_in
from tests.profile_walk import (  # noqa: F401 (alarm_context: autouse fixture)
    Walk,
    alarm_context,
    end_of,
    local,
)
from tests.scheduler_support import SHANGHAI


async def _unheard(walk: Walk) -> Complaint:
    """Filed on Monday 2 November, never accepted; at the acceptance deadline only the intake
    clerk — the person responsible — is still active, so the escalation has nobody to reach."""
    complaint = await walk.file(local("2026-11-02T10:00"), "service_quality",
                                taxpayer_kind="natural_person")  # fmt: skip
    await Staff.exclude(id=walk.org.clerk.id).update(active=False)
    sent = await walk.sweep(end_of("2026-11-03"))
    assert sent == {"clerk": ["overdue"]}  # told it is overdue; no escalation anywhere
    return await walk.fresh(complaint)


async def test_the_case_page_shows_an_escalation_that_reached_nobody(
    db_url: str, tmp_path: Path
) -> None:
    walk = await Walk.of("tax-service")
    complaint = await _unheard(walk)
    [(stage, due)] = unheard_escalations(complaint.alarm_state)
    assert stage == "acceptance" and due == end_of("2026-11-03")
    await give_password(walk.org.clerk, "clerk")
    async with desk_client(db_url, tmp_path, MovableNow(local("2026-11-04T09:00"))) as client:
        await sign_in(client, "clerk")
        html = await page(client, f"/desk/cases/{complaint.id}")
    assert 'role="alert"' in html and "2026年11月3日 23:59" in html


async def test_the_report_lists_it(db_url: str) -> None:
    walk = await Walk.of("tax-service")
    complaint = await _unheard(walk)
    period = report_period("weekly", local("2026-11-09T08:00"), SHANGHAI)
    data = await gather_report(period, local("2026-11-09T08:00"), walk.profile)
    assert [item.number for item in data.unheard] == [complaint.number]
    text = render_text(data, walk.profile, "zh_CN", SHANGHAI)
    assert (
        "超期升级无人接收：1 件" in text and complaint.number in text.split("超期升级无人接收")[1]
    )
    assert "Escalations that reached nobody: 1" in render_text(data, walk.profile, "en", SHANGHAI)
