"""Per-staff complaint counts in a calendar year with the regulation's consequences (R32).

Reported, never enforced: the product tells supervisors that a staff member has reached, say,
"三次…年度考核不合格"; what follows is for the organisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from config.profiles import Profile, pick
from models.entities import Complaint, Staff
from models.workflow import State

# A refused or withdrawn complaint counts against nobody.
_NOT_COUNTED = (State.REFUSED, State.WITHDRAWN, State.SUBMITTED)


@dataclass(frozen=True)
class ConductLine:
    staff_id: int
    staff_name: str
    count: int
    consequence: str | None  # the regulation's words for that count, or None


def conduct_lines(
    profile: Profile, counts: dict[tuple[int, str], int], lang: str = "zh_CN"
) -> list[ConductLine]:
    """Pure: the report lines for counts per (staff id, name), most complaints first."""
    lines = []
    for (staff_id, name), count in counts.items():
        consequence = profile.conduct_consequence(count)
        lines.append(
            ConductLine(
                staff_id, name, count, pick(consequence.label, lang) if consequence else None
            )
        )
    return sorted(lines, key=lambda line: (-line.count, line.staff_name))


async def conduct_report(
    profile: Profile, year: int, tz: ZoneInfo, lang: str = "zh_CN"
) -> list[ConductLine]:
    """Accepted complaints of `profile` about each staff member submitted in calendar `year`."""
    start = datetime(year, 1, 1, tzinfo=tz)
    end = datetime(year + 1, 1, 1, tzinfo=tz)
    rows = (
        await Complaint.filter(
            profile=profile.id,
            target_staff_id__not_isnull=True,
            submitted_at__gte=start,
            submitted_at__lt=end,
        )
        .exclude(state__in=[str(s) for s in _NOT_COUNTED])
        .values_list("target_staff_id", flat=True)
    )
    names = dict(await Staff.filter(id__in=set(rows)).values_list("id", "name"))
    counts: dict[tuple[int, str], int] = {}
    for staff_id in rows:
        key = (int(staff_id), str(names.get(staff_id, staff_id)))
        counts[key] = counts.get(key, 0) + 1
    return conduct_lines(profile, counts, lang)
