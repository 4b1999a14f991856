"""The `mass-matters` job: propose groups of complaints about one matter to the supervisors.

Each run reads the open complaints of the profile that still await a result, were filed inside
the profile's `[repeats] within` and belong to no group yet (a member taken out of a group, or
of a dismissed one, is not proposed again), newest first and at most `BATCH` of them; the pure
detector (`models.similarity.propose_groups`) groups them; each group is stored as a proposal
in its own transaction (`models.actions.propose_group`) with one outbox message to every
supervisor (admins where there is none), who confirm or dismiss it on the desk. Nothing is
merged by itself. Running it twice proposes nothing twice: the members are then in a group.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from config.profiles import Profile
from handlers.i18n import supported, translator
from handlers.messages import Outgoing
from models.actions import Clock, propose_group
from models.alarms import AlarmContext, alarm_context
from models.entities import Complaint
from models.matters import GROUPABLE_STATES, MatterGroupMember, matter_of
from models.notifications import reach, supervisors
from models.outbox import enqueue
from models.similarity import propose_groups

log = logging.getLogger("complaintdesk.scheduler")

# The most complaints one run compares: the newest of the window. The detector's candidate
# pairs grow about linearly (rare shared bigrams), so this bounds a run's time and memory.
BATCH = 2000


def _window_start(profile: Profile, now: datetime) -> datetime:
    within = profile.repeats.within
    days = {"minutes": 1, "hours": 2}.get(within.unit, within.amount * 2 + 30)
    return now - timedelta(days=days)


def proposal_text(numbers: list[str], lang: str) -> Outgoing:
    _ = translator(lang)
    return Outgoing(
        _(
            "{n} complaints look like one matter: {numbers}. Confirm or dismiss the group on "
            "the desk; once confirmed, one decision answers them all."
        ).format(n=len(numbers), numbers="、".join(numbers))
    )


async def propose_mass_matters(
    now: datetime, *, profile: Profile, context: AlarmContext | None = None
) -> list[int]:
    """Store the detector's new proposals for `profile`; the new groups' ids."""
    context = context or alarm_context()
    clock = Clock(context.calendar, context.tz, now)
    grouped = MatterGroupMember.all().values_list("complaint_id", flat=True)
    rows = (
        await Complaint.filter(
            profile=profile.id,
            state__in=[str(s) for s in GROUPABLE_STATES],
            submitted_at__gte=_window_start(profile, now),
        )
        .exclude(id__in=await grouped)
        .order_by("-submitted_at")
        .limit(BATCH)
    )
    matters = [matter_of(row) for row in rows if row.submitted_at is not None]
    proposals = propose_groups(
        matters,
        threshold=profile.repeats.group_threshold,
        min_size=profile.repeats.group_min_size,
    )
    numbers = {row.id: row.number for row in rows}
    created: list[int] = []
    for ids in proposals:
        async with in_transaction() as conn:
            group = await propose_group(profile, ids, clock, conn)
            names = [numbers[i] for i in ids]
            for person in await supervisors(conn):
                address = reach(person)
                if address is None:
                    continue
                await enqueue(
                    channel=address[0],
                    chat_id=address[1],
                    message=proposal_text(names, supported(person.language)),
                    idempotency_key=f"group:{group.id}:proposed:{person.id}",
                    now=now,
                    conn=conn,
                )
        created.append(group.id)
    if created:
        log.info("mass-matters: %d groups proposed among %d complaints", len(created), len(rows))
    return created
