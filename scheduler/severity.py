"""Automatic severity upgrades a profile declares (`[severity_rules]`), run by the scheduler.

R7g: a complaint "在一個月內得不到合理解決" becomes 重大. `unsettled_upgrade_due` is the pure
rule; `upgrade_unsettled` applies it through the one workflow action (`set_severity` by the
system), so the manager notice and the shorter limits follow exactly as when staff raise it.
The upgrade on a repeated complaint happens at submission (models.actions).
"""

from __future__ import annotations

import logging
from datetime import datetime

from config.profiles import Profile
from models.actions import ActionRefused, Actor, Clock, act
from models.alarms import AlarmContext, alarm_context
from models.entities import Complaint
from models.workflow import Action, Role, State
from scheduler.calendar import WorkingCalendar
from scheduler.deadlines import compute_due

log = logging.getLogger(__name__)

# States in which a case is not yet settled: the result has not been told.
UNSETTLED_STATES = (
    State.SUBMITTED,
    State.ACCEPTED,
    State.ASSIGNED,
    State.IN_PROGRESS,
    State.WAITING_FOR_COMPLAINANT,
    State.RESOLVED,
    State.REOPENED,
)


def unsettled_upgrade_due(
    profile: Profile,
    severity: str | None,
    submitted_at: datetime,
    now: datetime,
    calendar: WorkingCalendar,
    tz: object,
) -> bool:
    """True when a case rated `severity`, filed at `submitted_at` and still unsettled at `now`,
    must be raised to `severity_rules.upgrade_to`."""
    rules = profile.severity_rules
    if rules.unresolved_after is None or rules.upgrade_to is None:
        return False
    if profile.severity_rank(severity) >= profile.severity_rank(rules.upgrade_to):
        return False
    due = compute_due(submitted_at, rules.unresolved_after.to_duration(), calendar, tz).due  # type: ignore[arg-type]
    return now >= due


async def upgrade_unsettled(
    now: datetime, *, profile: Profile, context: AlarmContext | None = None
) -> list[str]:
    """Raise every unsettled case of `profile` past its `unresolved_after`; their numbers."""
    rules = profile.severity_rules
    if rules.unresolved_after is None or rules.upgrade_to is None:
        return []
    context = context or alarm_context()
    clock = Clock(context.calendar, context.tz, now)
    rows = await Complaint.filter(profile=profile.id, state__in=list(UNSETTLED_STATES)).values_list(
        "id", "number", "severity", "submitted_at"
    )
    raised = []
    for complaint_id, number, severity, submitted_at in rows:
        if submitted_at is None or not unsettled_upgrade_due(
            profile, severity, submitted_at, now, context.calendar, context.tz
        ):
            continue
        try:
            await act(
                complaint_id,
                Action.SET_SEVERITY,
                Actor(Role.SYSTEM),
                profile=profile,
                clock=clock,
                payload={"severity": rules.upgrade_to, "reason": "unresolved_after"},
            )
        except (ActionRefused, ValueError) as exc:  # moved on meanwhile: nothing to raise
            log.info("no severity upgrade for %s: %s", number, exc)
            continue
        raised.append(number)
    return raised
