"""Survey answers: stored against the handler and department, then the profile's rule.

`record_survey_answer` is what the conversation shell calls for `handlers.survey.SurveyAnswer`;
`add_survey_comment` for `handlers.survey.SurveyComment`. The overall verdict is the worse of
the two scores' bands (a fair result delivered rudely is still a complaint about attitude):

* satisfied or neutral → the complaint is closed;
* unsatisfied → `profile.revisit.unsatisfied`: "reopen" (re-investigation) or
  "supervisor_revisit" (the case moves to the `supervisor_revisit` state; the supervisors are
  told and owe a revisit within `supervisor_revisit_due`, watched by the sweep like any
  deadline; they close or reopen) — except for a category marked `no_supervisor_revisit`
  (R19: SP complaints), where the unsatisfied answer is final and the case is closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from config.profiles import Profile, SatisfactionBands
from handlers.messages import Outgoing
from models.actions import ActionRefused, ActionResult, Actor, Clock, act
from models.alarms import SUPERVISOR_REVISIT, SURVEY, AlarmContext, alarm_context, iso
from models.callbacks import SURVEY_KINDS, cancel_callbacks
from models.entities import Complaint, Staff, SurveyResponse
from models.outbox import enqueue
from models.workflow import Action, Role, State
from scheduler.deadlines import Duration, compute_due
from scheduler.jobs import CLOSE_HELD, hold_close, staff_address
from scheduler.texts import lang_of, show_time, text

Band = Literal["unsatisfied", "neutral", "satisfied"]
_RANK: dict[str, int] = {"unsatisfied": 0, "neutral": 1, "satisfied": 2}
DEFAULT_SUPERVISOR_REVISIT = Duration(7, "calendar_days")


def overall_band(bands: SatisfactionBands, result_score: int, attitude_score: int) -> Band:
    """The worse band of the two scores (raises ValueError outside 0–10)."""
    return min(bands.band(result_score), bands.band(attitude_score), key=_RANK.__getitem__)


SurveyStatus = Literal[
    "closed",
    "close_held",  # satisfied, but a written complaint waits for its written reply
    "reopened",
    "supervisor_revisit",
    "not_open",
    "already_answered",
]


@dataclass(frozen=True)
class SurveyOutcome:
    status: SurveyStatus
    band: Band | None = None
    response_id: int | None = None
    number: str | None = None
    due: datetime | None = None  # the supervisor revisit owed to the complainant


async def record_survey_answer(
    complaint_id: int,
    result_score: int,
    attitude_score: int,
    comment: str | None,
    now: datetime,
    profile: Profile,
    *,
    complainant_id: int | None = None,
    context: AlarmContext | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> SurveyOutcome:
    """Store the complainant's answer and apply the profile's rule, in one transaction
    (`conn` joins the caller's, e.g. the conversation turn's).

    `complainant_id`, when given, must own the complaint (else "not_open": a forged button).
    A second answer, or one for a complaint no longer in revisit, changes nothing.
    """
    if conn is None:
        async with in_transaction() as tx:
            return await record_survey_answer(
                complaint_id,
                result_score,
                attitude_score,
                comment,
                now,
                profile,
                complainant_id=complainant_id,
                context=context,
                conn=tx,
            )
    if profile.revisit is None:
        raise ValueError(f"profile {profile.id!r} has no return visit")
    band = overall_band(profile.revisit.satisfaction, result_score, attitude_score)
    context = context or alarm_context()
    clock = Clock(context.calendar, context.tz, now)
    query = Complaint.filter(id=complaint_id).using_db(conn)
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update()
    complaint = await query.first()
    if complaint is None or (
        complainant_id is not None and complaint.complainant_id != complainant_id  # type: ignore[attr-defined]
    ):
        return SurveyOutcome("not_open")
    survey = dict((complaint.alarm_state or {}).get(SURVEY) or {})
    if survey.get("answered"):
        return SurveyOutcome("already_answered", band)
    if State(complaint.state) != State.REVISIT:
        return SurveyOutcome("not_open")
    response = await SurveyResponse.create(
        complaint=complaint,
        handler_id=complaint.handler_id,  # type: ignore[attr-defined]
        department_id=complaint.lead_department_id,  # type: ignore[attr-defined]
        result_score=result_score,
        attitude_score=attitude_score,
        comment=(comment or "").strip() or None,
        created_at=now,
        using_db=conn,
    )
    survey.update({"answered": True, "band": band, "response_id": response.id})
    complaint.alarm_state = {**(complaint.alarm_state or {}), SURVEY: survey}
    # However it was answered, the survey calls still open on the desk are moot.
    await cancel_callbacks(complaint, kinds=SURVEY_KINDS, reason="answered", now=now, conn=conn)
    await complaint.save(using_db=conn)
    payload = {
        "survey": band,
        "result_score": result_score,
        "attitude_score": attitude_score,
        "response_id": response.id,
    }
    actor = Actor(Role.SYSTEM)
    final = band == "unsatisfied" and _no_supervisor_revisit(profile, complaint)
    if final:
        # R19: an SP complaint still unsatisfied gets no supervisor revisit; the answer
        # stands as the final one and the case closes.
        payload["no_supervisor_revisit"] = True
    if band != "unsatisfied" or final:
        try:
            await act(
                complaint.id,
                Action.CLOSE,
                actor,
                profile=profile,
                clock=clock,
                payload=payload,
                conn=conn,
            )
        except ActionRefused as refused:
            await hold_close(complaint, refused, payload, now, conn)
            return SurveyOutcome("close_held", band, response.id)
        return SurveyOutcome("closed", band, response.id)
    if profile.revisit.unsatisfied == "reopen":
        await act(
            complaint.id,
            Action.REOPEN,
            actor,
            profile=profile,
            clock=clock,
            payload=payload,
            conn=conn,
        )
        return SurveyOutcome("reopened", band, response.id, complaint.number)
    limit = profile.revisit.supervisor_revisit_due
    duration = limit.to_duration() if limit else DEFAULT_SUPERVISOR_REVISIT
    due = compute_due(now, duration, context.calendar, context.tz).due
    complaint.alarm_state = {
        **complaint.alarm_state,
        SUPERVISOR_REVISIT: {"start": iso(now), "due": iso(due)},
    }
    await complaint.save(using_db=conn)
    supervisors = await Staff.filter(role=Role.SUPERVISOR, active=True).using_db(conn)
    # The survey is answered: the case leaves 回访中 for the supervisor revisit (its reminder
    # and no-response close stop with the state), which is what it now waits for.
    await act(
        complaint.id,
        Action.REQUEST_SUPERVISOR_REVISIT,
        actor,
        profile=profile,
        clock=clock,
        payload={**payload, "due": iso(due), "supervisor_ids": [s.id for s in supervisors]},
        conn=conn,
    )
    for person in supervisors:
        address = staff_address(person)
        if address is None:
            continue
        lang = lang_of(person.language)
        message = text(
            "supervisor_revisit",
            lang,
            number=complaint.number,
            result=result_score,
            attitude=attitude_score,
            due=show_time(due, context.tz, lang),
            comment=response.comment or "",
        )
        await enqueue(
            channel=address[0],
            chat_id=address[1],
            message=Outgoing(message),
            idempotency_key=f"supervisor-revisit:{complaint.id}:{response.id}:{person.id}",
            now=now,
            complaint=complaint,
            conn=conn,
        )
    return SurveyOutcome("supervisor_revisit", band, response.id, complaint.number, due)


def _no_supervisor_revisit(profile: Profile, complaint: Complaint) -> bool:
    """The profile sends the unsatisfied to a supervisor, but not for this category."""
    if profile.revisit is None or profile.revisit.unsatisfied != "supervisor_revisit":
        return False
    try:
        return (
            bool(complaint.category)
            and profile.category(str(complaint.category)).no_supervisor_revisit
        )
    except KeyError:
        return False


async def add_survey_comment(
    complaint_id: int,
    comment: str,
    *,
    complainant_id: int | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> bool:
    """Attach a comment to the complaint's latest answered survey; False when there is none."""
    query = SurveyResponse.filter(complaint_id=complaint_id, no_response=False).using_db(conn)
    if complainant_id is not None:
        query = query.filter(complaint__complainant_id=complainant_id)
    response = await query.order_by("-id").first()
    if response is None or not comment.strip():
        return False
    # No event: the case may be closed already, and the answer row is the record.
    response.comment = comment.strip()
    await response.save(update_fields=["comment"], using_db=conn)
    return True


async def issue_written_reply(
    ref: int | str,
    actor: Actor,
    *,
    profile: Profile,
    clock: Clock,
    conn: BaseDBAsyncClient | None = None,
) -> tuple[ActionResult, bool]:
    """Issue the 书面答复 (workflow action issue_written_reply); when the return visit had already
    decided to close the case and only the missing written reply held it, close it now.
    Returns the action's result and whether the case was closed."""
    if conn is None:
        async with in_transaction() as tx:
            return await issue_written_reply(ref, actor, profile=profile, clock=clock, conn=tx)
    result = await act(
        ref, Action.ISSUE_WRITTEN_REPLY, actor, profile=profile, clock=clock, conn=conn
    )
    survey = dict((result.complaint.alarm_state or {}).get(SURVEY) or {})
    held = survey.get(CLOSE_HELD)
    if held is None or State(result.complaint.state) != State.REVISIT:
        return result, False
    await act(
        result.complaint.id,
        Action.CLOSE,
        Actor(Role.SYSTEM),
        profile=profile,
        clock=clock,
        payload={**held, "after_written_reply": True},
        conn=conn,
    )
    return result, True
