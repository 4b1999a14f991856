"""Shared walk for the per-profile modules (tests/test_profile_<name>.py): one organisation
(tests.scheduler_support.make_org: centre ← unit, one person per role, each with a chat named
after the role), complaints moved by the real workflow actions on the injectable clock, the
sweep run at chosen instants, and what each person received read back from the outbox.

Chats: the complainant is "chat-<user>"; staff are "clerk", "handler", "unit_head",
"centre_head", "supervisor" and "admin".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from config.profiles import Profile, load_profile
from models.actions import Actor, act, submit_complaint
from models.alarms import set_alarm_context
from models.entities import Channel, Complaint, OutboxMessage, Staff
from models.outbox import outgoing_from_json
from models.workflow import Action, Role
from scheduler.deadlines import compute_due
from scheduler.jobs import sweep
from scheduler.survey import SurveyOutcome, record_survey_answer
from tests.dialog_chat import Chat
from tests.scheduler_support import (
    ANSWERS,
    CALENDAR,
    CONTEXT,
    SHANGHAI,
    Org,
    clock,
    end_of,
    local,
    make_org,
)

__all__ = [
    "MONDAY",
    "Walk",
    "alarm_context",
    "assert_ships",
    "due",
    "due_of",
    "end_of",
    "local",
    "screen",
    "texts_to",
]

# Where most walks start: a Monday morning in Shanghai, a working day.
MONDAY = local("2026-11-02T10:00")

ROLES = {
    "clerk": Role.INTAKE_CLERK,
    "handler": Role.HANDLER,
    "unit_head": Role.DEPARTMENT_HEAD,
    "centre_head": Role.DEPARTMENT_HEAD,
    "supervisor": Role.SUPERVISOR,
    "admin": Role.ADMIN,
}


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    """Alarms planned on the statutory calendar in Shanghai, with the shipped profiles."""
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


def due_of(
    profile: Profile,
    stage: str,
    start: datetime,
    category: str | None = None,
    severity: str | None = None,
    complexity: str | None = None,
) -> datetime:
    """A stage's due instant as the profile's rule and counting options give it (pure)."""
    duration = profile.deadline_for(stage, category, severity, complexity)
    return compute_due(
        start,
        duration,
        CALENDAR,
        SHANGHAI,
        office_hours=profile.clock_office_hours(),
        roll_to_working_day=profile.clock.roll_to_working_day,
    ).due


def screen(profile: Profile, exclusion: str) -> Chat:
    """A citizen who starts the intake dialog and picks `exclusion` at the screening step."""
    chat = Chat(profile=profile, lang="zh_CN")
    chat.command("start")
    chat.choose(f"excl:{exclusion}")
    return chat


@dataclass
class Walk:
    profile: Profile
    org: Org

    @classmethod
    async def of(cls, name: str) -> Walk:
        return cls(load_profile(name), await make_org())

    def staff(self, who: str) -> Staff:
        return getattr(self.org, who)  # type: ignore[no-any-return]

    async def file(
        self, at: datetime, category: str, user: str = "u1", **answers: Any
    ) -> Complaint:
        """A complaint filed by `user` (chat "chat-<user>") at `at`."""
        return await submit_complaint(
            profile=self.profile,
            channel=Channel.TELEGRAM,
            external_id=user,
            chat_id=f"chat-{user}",
            answers={**ANSWERS, "category": category, **answers},
            clock=clock(at),
        )

    async def act(
        self, complaint: Complaint, action: Action, who: str, at: datetime, **payload: Any
    ) -> Complaint:
        """`who` (a role's chat name, see the module docstring) takes `action` at `at`."""
        person = self.staff(who)
        await act(
            complaint.id,
            action,
            Actor(ROLES[who], person),
            profile=self.profile,
            clock=clock(at),
            payload=payload,
        )
        return await Complaint.get(id=complaint.id)

    async def accept(self, complaint: Complaint, at: datetime, **payload: Any) -> Complaint:
        return await self.act(complaint, Action.ACCEPT, "clerk", at, **payload)

    async def assign(self, complaint: Complaint, at: datetime) -> Complaint:
        return await self.act(
            complaint,
            Action.ASSIGN,
            "clerk",
            at,
            department_id=self.org.unit.id,
            handler_id=self.org.handler.id,
        )

    async def handle(self, complaint: Complaint, at: datetime, **accept: Any) -> Complaint:
        """Accepted, assigned to the unit's handler and acknowledged, all at `at`."""
        complaint = await self.accept(complaint, at, **accept)
        complaint = await self.assign(complaint, at)
        return await self.act(complaint, Action.ACKNOWLEDGE, "handler", at)

    async def reply(self, complaint: Complaint, at: datetime, text: str = "已处理") -> Complaint:
        """Resolved and the result told at `at` (the complaint ends `replied`)."""
        complaint = await self.act(complaint, Action.RESOLVE, "handler", at, reply_text=text)
        return await self.act(complaint, Action.NOTIFY_RESULT, "handler", at)

    async def extend(
        self, complaint: Complaint, amount: int, reason: str, asked: datetime, approved: datetime
    ) -> Complaint:
        """The handler asks for `amount` more (the profile's unit), the unit's head approves."""
        complaint = await self.act(
            complaint, Action.REQUEST_EXTENSION, "handler", asked, amount=amount, reason=reason
        )
        return await self.act(complaint, Action.APPROVE_EXTENSION, "unit_head", approved)

    async def sweep(self, at: datetime) -> dict[str, list[str]]:
        """Run the sweep at `at`; the outbox rows it added as {chat: [kind, ...]}."""
        before = set(await OutboxMessage.all().values_list("id", flat=True))
        await sweep(at, profile=self.profile, context=CONTEXT)
        found: dict[str, list[str]] = {}
        for row in await OutboxMessage.all().order_by("id"):
            if row.id not in before:
                found.setdefault(row.chat_id, []).append(row.idempotency_key.split(":")[0])
        return found

    async def survey(
        self, complaint: Complaint, result: int, attitude: int, at: datetime
    ) -> SurveyOutcome:
        """The complainant answers the return-visit survey (0–10 for result and attitude)."""
        return await record_survey_answer(
            complaint.id, result, attitude, None, at, self.profile, context=CONTEXT
        )

    async def fresh(self, complaint: Complaint) -> Complaint:
        return await Complaint.get(id=complaint.id)


async def texts_to(chat: str) -> list[str]:
    """Every message queued to `chat`, oldest first."""
    rows = await OutboxMessage.filter(chat_id=chat).order_by("id")
    return [outgoing_from_json(r.payload).text for r in rows]


def due(complaint: Complaint, stage: str) -> datetime:
    """The stored due instant of a complaint's stage."""
    return datetime.fromisoformat(complaint.deadlines[stage]["due"])


def assert_ships(name: str) -> Profile:
    """The family is listed, extends a base, names its seed rules (profiles explain) and labels
    every category in the three languages; every category has a resolution rule."""
    from config.profiles import explain_rows, list_profiles

    profile = load_profile(name)
    assert name in list_profiles()
    assert profile.extends in ("base", "first-ask")
    rows = explain_rows(profile)
    own = [r for r in rows if r[3] and r[3] not in ("R11", "R13", "R19", "R7g")]
    assert own, f"{name} names no seed rule of its own"
    for category in profile.categories:
        assert set(category.label) == {"zh_CN", "zh_TW", "en"}
        profile.deadline_for(
            "resolution", category.id, profile.severities[0].id if profile.severities else None
        )
    return profile
