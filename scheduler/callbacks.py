"""Finishing call-back tasks, and a chat-less complainant linking a chat to their case.

`complete_callback` is what the desk's "to call back" list calls with the outcome of a call. For
a return-visit call it records the scores through `scheduler.survey.record_survey_answer` — the
very function the chat's survey buttons call — so the profile's bands close, reopen or send the
case to a supervisor revisit exactly as after a chat answer.

`link_chat` is what the conversation shell calls when a person proves in the chat that a
phoned-in complaint is theirs (its number and the phone number it was recorded with): the
complaint moves to their chat identity, so everything later goes to the chat, and the calls
still owed become chat messages instead (the survey with its buttons).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from config.profiles import Profile
from handlers import survey as survey_dialog
from handlers.messages import Outgoing
from models.actions import Clock, get_or_create_complainant
from models.alarms import SURVEY, AlarmContext
from models.callbacks import SURVEY_KINDS, cancel_callbacks, is_chatless, may_call_back, unwatch
from models.entities import (
    CallbackOutcome,
    CallbackStatus,
    CallbackTask,
    Channel,
    Complainant,
    Complaint,
    Event,
    Staff,
)
from models.outbox import enqueue
from models.workflow import Role, State
from scheduler.survey import SurveyOutcome, record_survey_answer

CallbackStatusCode = Literal[
    "done",  # recorded
    "not_found",
    "not_allowed",  # this staff member may not call this complainant
    "already_done",  # someone entered the outcome first (or the task was cancelled)
    "scores_needed",  # a reached survey call needs both scores
    "survey_closed",  # the return visit ended meanwhile (answered in a chat, closed)
]
SCORE_RANGE = range(0, 11)
MAX_NOTE = 1000


@dataclass(frozen=True)
class CallbackResult:
    status: CallbackStatusCode
    survey: SurveyOutcome | None = None


async def _lock_task(task_id: int, conn: BaseDBAsyncClient) -> CallbackTask | None:
    query = CallbackTask.filter(id=task_id).using_db(conn)
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update()
    return await query.first()


async def complete_callback(
    task_id: int,
    staff: Staff,
    *,
    outcome: CallbackOutcome,
    profile: Profile,
    clock: Clock,
    result_score: int | None = None,
    attitude_score: int | None = None,
    comment: str | None = None,
    context: AlarmContext | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> CallbackResult:
    """Record the outcome of one call, in one transaction (nothing is written on a refusal)."""
    if conn is None:
        async with in_transaction() as tx:
            return await complete_callback(
                task_id,
                staff,
                outcome=outcome,
                profile=profile,
                clock=clock,
                result_score=result_score,
                attitude_score=attitude_score,
                comment=comment,
                context=context,
                conn=tx,
            )
    task = await _lock_task(task_id, conn)
    if task is None:
        return CallbackResult("not_found")
    query = Complaint.filter(id=task.complaint_id).using_db(conn)  # type: ignore[attr-defined]
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update()
    complaint = await query.first()
    if complaint is None:
        return CallbackResult("not_found")
    if not await may_call_back(staff, complaint, conn):
        return CallbackResult("not_allowed")
    if task.status != CallbackStatus.OPEN:
        return CallbackResult("already_done")
    note = (comment or "").strip()[:MAX_NOTE] or None
    is_survey = task.kind in SURVEY_KINDS
    answered: SurveyOutcome | None = None
    if is_survey and outcome == CallbackOutcome.REACHED:
        if result_score not in SCORE_RANGE or attitude_score not in SCORE_RANGE:
            return CallbackResult("scores_needed")
        if State(complaint.state) != State.REVISIT or (complaint.alarm_state or {}).get(
            SURVEY, {}
        ).get("answered"):
            return CallbackResult("survey_closed")
    task.status = CallbackStatus.DONE
    task.outcome = outcome
    task.done_at = clock.now
    task.done_by = staff
    task.note = note
    await task.save(using_db=conn)
    unwatch(complaint, [task.id])
    await complaint.save(update_fields=["alarm_state", "next_alarm_at"], using_db=conn)
    await Event.create(
        complaint=complaint,
        actor_role=Role(staff.role),
        actor_staff=staff,
        action="callback_done",
        from_state=complaint.state,
        to_state=complaint.state,
        payload={"task_id": task.id, "kind": task.kind, "outcome": str(outcome), "note": note},
        created_at=clock.now,
        using_db=conn,
    )
    if is_survey and outcome == CallbackOutcome.REACHED:
        assert result_score is not None and attitude_score is not None
        # The chat's own path: bands → close / reopen / supervisor revisit.
        answered = await record_survey_answer(
            complaint.id,
            result_score,
            attitude_score,
            note,
            clock.now,
            profile,
            context=context,
            conn=conn,
        )
        if answered.response_id is not None:
            await (
                CallbackTask.filter(id=task.id)
                .using_db(conn)
                .update(survey_response_id=answered.response_id)
            )
        # Reached for the return visit, they have heard how it ended: earlier calls still
        # owed (accepted, passed on, the result) are moot.
        fresh = await Complaint.get(id=complaint.id).using_db(conn)
        if await cancel_callbacks(
            fresh, kinds=None, reason="reached_for_return_visit", now=clock.now, conn=conn
        ):
            await fresh.save(update_fields=["alarm_state", "next_alarm_at"], using_db=conn)
    return CallbackResult("done", answered)


# -- linking a chat --------------------------------------------------------------------------

LinkStatus = Literal["linked", "not_found"]


@dataclass(frozen=True)
class LinkOutcome:
    status: LinkStatus
    number: str | None = None
    messages: int = 0  # calls owed that became chat messages


async def link_chat(
    *,
    channel: Channel,
    external_id: str,
    chat_id: str | None,
    number: str,
    phone: str,
    language: str,
    clock: Clock,
    conn: BaseDBAsyncClient,
) -> LinkOutcome:
    """Move a phoned-in complaint to the chat of the person who proved it theirs: its number
    and the (normalised) phone it was recorded with must both match, and it must still be
    chat-less. Anything else is "not_found", so the answer tells a guesser nothing."""
    complaint = await Complaint.filter(number=number.strip()).using_db(conn).first()
    if complaint is None or not phone or complaint.contact_phone != phone:
        return LinkOutcome("not_found")
    owner = (
        await Complainant.filter(id=complaint.complainant_id).using_db(conn).first()  # type: ignore[attr-defined]
        if complaint.complainant_id  # type: ignore[attr-defined]
        else None
    )
    if not is_chatless(owner):
        return LinkOutcome("not_found")
    person = await get_or_create_complainant(
        channel, external_id, chat_id=chat_id, language=language, conn=conn
    )
    if not person.name and complaint.contact_name:
        person.name = complaint.contact_name
    if not person.phone:
        person.phone = phone
    await person.save(using_db=conn)
    complaint.complainant = person
    cancelled = await cancel_callbacks(
        complaint, kinds=None, reason="chat_linked", now=clock.now, conn=conn
    )
    await complaint.save(using_db=conn)
    await Event.create(
        complaint=complaint,
        actor_role=Role.COMPLAINANT,
        action="chat_linked",
        from_state=complaint.state,
        to_state=complaint.state,
        payload={"channel": str(channel), "cancelled_callbacks": [t.id for t in cancelled]},
        created_at=clock.now,
        using_db=conn,
    )
    lang = person.language or language
    sent = 0
    survey_open = State(complaint.state) == State.REVISIT and not (
        (complaint.alarm_state or {}).get(SURVEY, {}).get("answered")
    )
    for task in cancelled:
        if task.kind in SURVEY_KINDS:
            if not survey_open:
                continue
            message = survey_dialog.survey_invitation(complaint.id, complaint.number, lang)
            survey_open = False  # one invitation is enough
        else:
            message = Outgoing(task.script)
        await enqueue(
            channel=person.channel,
            chat_id=person.chat_id or external_id,
            message=message,
            idempotency_key=f"linked:{task.id}",
            now=clock.now,
            complaint=complaint,
            conn=conn,
        )
        sent += 1
    return LinkOutcome("linked", complaint.number, sent)
