"""Recording a complaint for someone (代录), call-back tasks instead of chat messages, their
outcome through the chat's survey path, reminders and escalation of unmade calls, linking a
chat by number + phone, and the written-reply gate."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from config.profiles import Profile, load_profile
from handlers.desk_form import validate_desk_form
from handlers.intake import request_type_labels
from handlers.messages import Incoming
from handlers.turn import DialogContext
from models.actions import ActionRefused, Actor, act, complaint_history, submit_complaint
from models.alarms import set_alarm_context
from models.callbacks import CALLBACKS, SURVEY_KINDS, callback_list, may_call_back, may_record
from models.entities import (
    CallbackOutcome,
    CallbackStatus,
    CallbackTask,
    Channel,
    Complainant,
    Complaint,
    Event,
    OutboxMessage,
    Staff,
    SurveyResponse,
)
from models.paper import register_of
from models.workflow import Action, RefusalReason, Role, State, derive_state
from scheduler.callbacks import complete_callback, link_chat
from scheduler.deadlines import compute_due
from scheduler.jobs import sweep
from scheduler.survey import issue_written_reply
from tests.scheduler_support import (
    CALENDAR,
    CATEGORY,
    CONTEXT,
    SHANGHAI,
    Org,
    accept,
    acknowledge,
    assign,
    clock,
    local,
    make_org,
    outbox_keys,
)

FORM = {
    "channel": "phone",
    "screening": "none",
    "target": "department",
    "target.text": "3号窗口",
    "incident_time": "2026-11-02 09:30",
    "place": "市民中心 3 楼",
    "facts": "工作人员态度恶劣，拒绝解释材料要求。",
    "request_type": "apology",
    "name": "李四",
    "phone": "139 0013 9000",
    "address": "幸福路 8 号 2 单元 301",
}
# The built-in request types' labels the desk passes to the register (models.paper).
ZH_REQUESTS = request_type_labels("zh_CN")


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


def _ctx(profile: Profile, now: datetime) -> DialogContext:
    return DialogContext(profile=profile, now=now)


async def record(
    profile: Profile, org: Org, at: datetime, *, channel: str = "phone", **changes: str
) -> Complaint:
    """What /desk/record does: the desk form, validated as the chat validates, then filed."""
    category = profile.category(CATEGORY[profile.id])
    sub = {"category.sub": category.subcategories[0].id} if category.subcategories else {}
    form = {**FORM, "channel": channel, "category": category.id, **sub, **changes}
    result = validate_desk_form(_ctx(profile, at), "zh_CN", form)
    assert result.ok, result.errors
    return await submit_complaint(
        profile=profile,
        channel=Channel(result.channel),
        external_id=f"desk:{result.answers['phone']}",
        answers=result.answers,
        clock=clock(at),
        recorded_by=org.clerk,
    )


async def tasks(complaint: Complaint, status: CallbackStatus | None = None) -> list[CallbackTask]:
    query = CallbackTask.filter(complaint_id=complaint.id)
    if status is not None:
        query = query.filter(status=status)
    return await query.order_by("id")


async def to_revisit(profile: Profile, org: Org, complaint: Complaint, at: datetime) -> None:
    await accept(profile, org, complaint, at)
    await assign(profile, org, complaint, at)
    await acknowledge(profile, org, complaint, at)
    worker = Actor(Role.HANDLER, org.handler)
    await act(
        complaint.id,
        Action.RESOLVE,
        worker,
        profile=profile,
        clock=clock(at),
        payload={"reply_text": "经核查，已对窗口人员批评教育。\n今后将加强培训。"},
    )
    await act(complaint.id, Action.NOTIFY_RESULT, worker, profile=profile, clock=clock(at))
    # The sweep starts the return visit when the profile's delay has passed.
    replied = await Complaint.get(id=complaint.id)
    assert profile.revisit is not None
    start = datetime.fromisoformat(replied.deadlines["revisit"]["start"])
    send = compute_due(start, profile.revisit.delay.to_duration(), CALENDAR, SHANGHAI).due
    report = await sweep(send, profile=profile, context=CONTEXT)
    assert report.surveys_sent == 1


# -- the form ----------------------------------------------------------------------------------


def test_desk_form_refuses_what_the_chat_refuses_with_the_same_words() -> None:
    profile = load_profile("gov-window")
    now = local("2026-11-02T10:00")
    bad = {**FORM, "category": "no_such", "incident_time": "明天", "facts": "太短", "phone": "12"}
    result = validate_desk_form(_ctx(profile, now), "en", bad)
    assert not result.ok
    assert set(result.errors) >= {"category", "incident_time", "facts", "phone"}
    assert "future" in result.errors["incident_time"] or "read" in result.errors["incident_time"]
    assert "at least 10 characters" in result.errors["facts"]
    assert "phone number" in result.errors["phone"]
    # A letter needs the address its written reply goes to.
    letter = validate_desk_form(
        _ctx(profile, now), "en", {**FORM, "channel": "letter", "address": ""}
    )
    assert "address" in letter.errors


def test_desk_form_screening_gives_the_chats_reason_and_guidance_and_files_nothing() -> None:
    profile = load_profile("property")
    result = validate_desk_form(
        _ctx(profile, local("2026-11-02T10:00")),
        "zh_CN",
        {"channel": "visit", "screening": "owners_assembly"},
    )
    assert result.excluded == "owners_assembly" and not result.ok
    assert result.out_of_scope is not None
    assert "业主委员会" in result.out_of_scope and "本次未提交投诉" in result.out_of_scope
    unanswered = validate_desk_form(_ctx(profile, local("2026-11-02T10:00")), "zh_CN", {})
    assert {"channel", "screening"} <= set(unanswered.errors)


def test_desk_form_sub_steps_follow_the_chat() -> None:
    profile = load_profile("property")
    form = {**FORM, "category": "equipment", "place": "3栋2单元"}
    missing_sub = validate_desk_form(_ctx(profile, local("2026-11-02T10:00")), "zh_CN", form)
    assert "category.sub" in missing_sub.errors  # the category has sub-categories: required
    ok = validate_desk_form(
        _ctx(profile, local("2026-11-02T10:00")), "zh_CN", {**form, "category.sub": "lift"}
    )
    assert ok.ok, ok.errors
    assert ok.answers["subcategory"] == "lift" and ok.answers["phone"] == "+8613900139000"
    assert ok.answers["place_text"] == "3栋2单元" and ok.answers["address"]


# -- recording and call-backs ------------------------------------------------------------------


async def test_recorded_complaint_has_its_channel_recorder_and_no_chat(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    complaint = await record(profile, org, local("2026-11-02T10:00"))
    assert complaint.channel == Channel.PHONE and complaint.state == State.SUBMITTED
    assert complaint.contact_address == FORM["address"] and not complaint.written
    person = await Complainant.get(id=complaint.complainant_id)  # type: ignore[attr-defined]
    assert person.chat_id is None and person.channel == Channel.PHONE
    submit = await Event.get(complaint_id=complaint.id, action="submit")
    assert submit.actor_staff_id == org.clerk.id and submit.actor_role == Role.INTAKE_CLERK  # type: ignore[attr-defined]
    assert may_record(org.clerk) and may_record(org.handler)
    letter = await record(profile, org, local("2026-11-02T10:05"), channel="letter")
    assert letter.written  # the profile's written channels: letter, e-mail


async def test_milestones_become_call_back_tasks_not_outbox_rows(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    at = local("2026-11-02T10:00")
    complaint = await record(profile, org, at)
    await accept(profile, org, complaint, at + timedelta(minutes=5))
    await assign(profile, org, complaint, at + timedelta(minutes=6))
    found = await tasks(complaint, CallbackStatus.OPEN)
    assert [t.kind for t in found] == ["accept", "assign"]
    assert "已受理" in found[0].script and complaint.number in found[0].script
    # Nothing was queued for the complainant (staff notifications only).
    rows = await OutboxMessage.filter(complaint_id=complaint.id).values_list("chat_id", flat=True)
    assert all(chat in {"clerk", "handler", "unit_head", "centre_head"} for chat in rows)
    # Due one working day later (the profile's callbacks.due), watched by the scheduler.
    assert found[0].due_at == datetime.fromisoformat("2026-11-03T23:59:59.999999+08:00")
    reloaded = await Complaint.get(id=complaint.id)
    assert set((reloaded.alarm_state or {})[CALLBACKS]) == {str(t.id) for t in found}
    # The intake clerk sees the phone number, so the clerk may call; the list says so.
    listed = await callback_list(org.clerk, at)
    assert [row.task.id for row in listed] == [t.id for t in found]
    result = await complete_callback(
        found[0].id,
        org.clerk,
        outcome=CallbackOutcome.REACHED,
        profile=profile,
        clock=clock(at + timedelta(hours=1)),
        comment="已电话告知",
    )
    assert result.status == "done"
    again = await complete_callback(
        found[0].id,
        org.clerk,
        outcome=CallbackOutcome.REACHED,
        profile=profile,
        clock=clock(at + timedelta(hours=1)),
    )
    assert again.status == "already_done"
    done = await CallbackTask.get(id=found[0].id)
    assert done.status == CallbackStatus.DONE and done.done_by_id == org.clerk.id  # type: ignore[attr-defined]
    assert (await Event.filter(complaint_id=complaint.id, action="callback_done").count()) == 1
    reloaded = await Complaint.get(id=complaint.id)
    assert set((reloaded.alarm_state or {})[CALLBACKS]) == {str(found[1].id)}


async def test_unmade_call_is_reminded_then_escalated(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    at = local("2026-11-02T10:00")  # Monday
    complaint = await record(profile, org, at)
    await accept(profile, org, complaint, at)
    task = (await tasks(complaint))[0]
    due = task.due_at
    # Reminder points before the call's due instant (profile [reminders]), then escalation.
    await sweep(due - timedelta(hours=1), profile=profile, context=CONTEXT)
    reminders = await Event.filter(complaint_id=complaint.id, action="reminder_sent")
    assert any(e.payload["stage"] == "callback" for e in reminders)
    await sweep(due + timedelta(minutes=1), profile=profile, context=CONTEXT)
    escalations = [
        e
        for e in await Event.filter(complaint_id=complaint.id, action="escalated")
        if e.payload["stage"] == "callback"
    ]
    assert escalations and escalations[0].payload["level"] == 1
    assert await outbox_keys("escalate:") and any(
        ":callback:" in k for k in await outbox_keys("escalate:")
    )
    # Once the call is made its watch ends: no further escalation of it.
    await complete_callback(
        task.id,
        org.clerk,
        outcome=CallbackOutcome.NOT_REACHED,
        profile=profile,
        clock=clock(due + timedelta(minutes=2)),
    )
    before = await Event.filter(complaint_id=complaint.id, action="escalated").count()
    await sweep(due + timedelta(days=5), profile=profile, context=CONTEXT)
    after = [
        e
        for e in await Event.filter(complaint_id=complaint.id, action="escalated")
        if e.payload["stage"] == "callback"
    ]
    assert len(after) == len(escalations)
    assert await Event.filter(complaint_id=complaint.id, action="escalated").count() >= before


@pytest.mark.parametrize(
    ("scores", "state", "status"),
    [
        ((9, 8), State.CLOSED, "closed"),
        ((2, 8), State.REOPENED, "reopened"),  # gov-window: unsatisfied → re-investigation
    ],
)
async def test_return_visit_by_phone_goes_through_the_survey_path(
    db_url: str, scores: tuple[int, int], state: State, status: str
) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    at = local("2026-11-02T10:00")
    complaint = await record(profile, org, at)
    await to_revisit(profile, org, complaint, at)
    survey = [t for t in await tasks(complaint, CallbackStatus.OPEN) if t.kind == "survey"]
    assert len(survey) == 1
    assert "0 最不满意" in survey[0].script and "服务态度" in survey[0].script
    refused = await complete_callback(
        survey[0].id,
        org.clerk,
        outcome=CallbackOutcome.REACHED,
        profile=profile,
        clock=clock(at + timedelta(hours=2)),
    )
    assert refused.status == "scores_needed"
    result = await complete_callback(
        survey[0].id,
        org.clerk,
        outcome=CallbackOutcome.REACHED,
        profile=profile,
        clock=clock(at + timedelta(hours=2)),
        result_score=scores[0],
        attitude_score=scores[1],
        comment="满意度回访",
    )
    assert result.status == "done" and result.survey is not None
    assert result.survey.status == status
    final = await Complaint.get(id=complaint.id)
    assert final.state == state
    response = await SurveyResponse.get(complaint_id=complaint.id)
    assert (response.result_score, response.attitude_score) == scores
    assert response.comment == "满意度回访"
    assert (await CallbackTask.get(id=survey[0].id)).survey_response_id == response.id  # type: ignore[attr-defined]
    assert derive_state(await complaint_history(final)) == state


async def test_property_unsatisfied_phone_answer_goes_to_a_supervisor(db_url: str) -> None:
    profile = load_profile("property")
    org = await make_org()
    at = local("2026-11-02T10:00")
    complaint = await record(profile, org, at, **{"category.sub": "lift", "place": "3栋2单元"})
    await to_revisit(profile, org, complaint, at)
    # Property's return visit is the order-taker's own (R7g): the survey is asked in it.
    (survey,) = [t for t in await tasks(complaint) if t.kind in SURVEY_KINDS]
    assert survey.kind == "revisit_visit" and survey.assignee_id == org.clerk.id  # type: ignore[attr-defined]
    result = await complete_callback(
        survey.id,
        org.clerk,
        outcome=CallbackOutcome.REACHED,
        profile=profile,
        clock=clock(at + timedelta(hours=1)),
        result_score=3,
        attitude_score=3,
    )
    assert result.survey is not None and result.survey.status == "supervisor_revisit"
    assert await Event.filter(
        complaint_id=complaint.id, action="request_supervisor_revisit"
    ).exists()


async def test_survey_by_sweep_unreached_calls_then_no_response_close(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    at = local("2026-11-02T10:00")
    complaint = await record(profile, org, at)
    await accept(profile, org, complaint, at)
    await assign(profile, org, complaint, at)
    await acknowledge(profile, org, complaint, at)
    worker = Actor(Role.HANDLER, org.handler)
    await act(
        complaint.id,
        Action.RESOLVE,
        worker,
        profile=profile,
        clock=clock(at),
        payload={"reply_text": "已处理"},
    )
    await act(complaint.id, Action.NOTIFY_RESULT, worker, profile=profile, clock=clock(at))
    # The sweep starts the revisit: a survey call instead of the chat's survey message.
    report = await sweep(at + timedelta(days=2), profile=profile, context=CONTEXT)
    assert report.surveys_sent == 1 and await outbox_keys("survey:") == []
    survey = [t for t in await tasks(complaint, CallbackStatus.OPEN) if t.kind == "survey"]
    assert len(survey) == 1
    await complete_callback(
        survey[0].id,
        org.clerk,
        outcome=CallbackOutcome.NOT_REACHED,
        profile=profile,
        clock=clock(at + timedelta(days=2, hours=1)),
    )
    # The survey reminder becomes a second call; then no answer closes the case.
    await sweep(at + timedelta(days=4), profile=profile, context=CONTEXT)
    second = [t for t in await tasks(complaint) if t.kind == "survey_reminder"]
    assert len(second) == 1 and second[0].status == CallbackStatus.OPEN
    await sweep(at + timedelta(days=10), profile=profile, context=CONTEXT)
    closed = await Complaint.get(id=complaint.id)
    assert closed.state == State.CLOSED
    assert (await CallbackTask.get(id=second[0].id)).status == CallbackStatus.CANCELLED
    assert await SurveyResponse.filter(complaint_id=complaint.id, no_response=True).exists()


async def test_only_who_may_see_the_phone_may_call(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    at = local("2026-11-02T10:00")
    complaint = await record(profile, org, at, **{"target": "staff", "target.text": "handler"})
    await accept(profile, org, complaint, at)
    task = (await tasks(complaint))[0]
    # The complaint is about the handler (typed name match): they never see who complained.
    assert not await may_call_back(org.handler, complaint)
    result = await complete_callback(
        task.id,
        org.handler,
        outcome=CallbackOutcome.REACHED,
        profile=profile,
        clock=clock(at),
    )
    assert result.status == "not_allowed"
    assert await callback_list(org.handler, at) == []
    assert await may_call_back(org.supervisor, complaint)


# -- linking a chat -----------------------------------------------------------------------------


async def test_linking_by_number_and_phone_moves_messages_to_the_chat(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    at = local("2026-11-02T10:00")
    complaint = await record(profile, org, at)
    await accept(profile, org, complaint, at)
    from tortoise.transactions import in_transaction

    async with in_transaction() as conn:
        wrong = await link_chat(
            channel=Channel.TELEGRAM,
            external_id="777",
            chat_id=None,
            number=complaint.number,
            phone="+8613800000000",
            language="zh_CN",
            clock=clock(at),
            conn=conn,
        )
    assert wrong.status == "not_found"
    async with in_transaction() as conn:
        linked = await link_chat(
            channel=Channel.TELEGRAM,
            external_id="777",
            chat_id=None,
            number=complaint.number,
            phone="+8613900139000",
            language="zh_CN",
            clock=clock(at),
            conn=conn,
        )
    assert linked.status == "linked" and linked.messages == 1
    # The owed call (accepted) went to the chat instead; no open task is left.
    assert await tasks(complaint, CallbackStatus.OPEN) == []
    sent = await OutboxMessage.filter(chat_id="777").values_list("idempotency_key", flat=True)
    assert sent and sent[0].startswith("linked:")
    moved = await Complaint.get(id=complaint.id)
    person = await Complainant.get(id=moved.complainant_id)  # type: ignore[attr-defined]
    assert person.channel == Channel.TELEGRAM and person.chat_id == "777"
    # Later milestones go to the chat, not to the desk.
    await assign(profile, org, complaint, at + timedelta(hours=1))
    assert [t.kind for t in await tasks(complaint) if t.status == CallbackStatus.OPEN] == []
    assert await OutboxMessage.filter(chat_id="777").count() == 2
    # A second link of the same case finds nothing (it is no longer chat-less).
    async with in_transaction() as conn:
        repeat = await link_chat(
            channel=Channel.WEB,
            external_id="web-1",
            chat_id=None,
            number=complaint.number,
            phone="+8613900139000",
            language="zh_CN",
            clock=clock(at),
            conn=conn,
        )
    assert repeat.status == "not_found"


async def test_chat_dialog_links_a_phoned_in_complaint(db_url: str, tmp_path) -> None:
    from bot.conversation import Conversation
    from config.settings import Settings

    profile = load_profile("gov-window")
    org = await make_org()
    at = local("2026-11-02T10:00")
    complaint = await record(profile, org, at)
    conversation = Conversation(
        Settings(database_url=db_url, data_dir=tmp_path), profile, CALENDAR, now=lambda: at
    )

    async def say(kind: str, **values: str) -> str:
        replies = await conversation.handle(
            Incoming(channel="web", user_id="browser-1", kind=kind, **values)  # type: ignore[arg-type]
        )
        return "\n".join(r.text for r in replies)

    await say("command", command="status")
    await say("choice", choice="status:link")
    await say("text", text=complaint.number)
    wrong = await say("text", text="13800000000")
    assert "没有找到" in wrong or "could not find" in wrong
    await say("text", text=complaint.number)
    answer = await say("text", text="139-0013-9000")
    assert complaint.number in answer
    moved = await Complaint.get(id=complaint.id)
    person = await Complainant.get(id=moved.complainant_id)  # type: ignore[attr-defined]
    assert person.channel == Channel.WEB and person.external_id == "browser-1"
    assert await Event.filter(complaint_id=complaint.id, action="chat_linked").exists()


# -- the written reply gate ---------------------------------------------------------------------


async def test_written_complaint_cannot_close_before_its_written_reply(db_url: str) -> None:
    profile = load_profile("gov-window")  # written_reply_for_written_complaint = true
    assert profile.reply.written_reply_for_written_complaint
    org = await make_org()
    at = local("2026-11-02T10:00")
    complaint = await record(profile, org, at, channel="letter", taxpayer_kind="natural_person")
    await to_revisit(profile, org, complaint, at)
    supervisor = Actor(Role.SUPERVISOR, org.supervisor)
    with pytest.raises(ActionRefused) as refused:
        await act(complaint.id, Action.CLOSE, supervisor, profile=profile, clock=clock(at))
    assert refused.value.refusal.reason_code == RefusalReason.WRITTEN_REPLY_MISSING
    # A satisfied phone answer is kept, and the close waits for the letter.
    survey = next(t for t in await tasks(complaint) if t.kind == "survey")
    result = await complete_callback(
        survey.id,
        org.clerk,
        outcome=CallbackOutcome.REACHED,
        profile=profile,
        clock=clock(at + timedelta(hours=1)),
        result_score=9,
        attitude_score=9,
    )
    assert result.survey is not None and result.survey.status == "close_held"
    assert (await Complaint.get(id=complaint.id)).state == State.REVISIT
    assert await SurveyResponse.filter(complaint_id=complaint.id).count() == 1
    # Issuing the written reply (the lead handler) closes the case the survey decided to close.
    _, closed = await issue_written_reply(
        complaint.id,
        Actor(Role.HANDLER, org.handler),
        profile=profile,
        clock=clock(at + timedelta(hours=2)),
    )
    assert closed
    final = await Complaint.get(id=complaint.id)
    assert final.state == State.CLOSED and final.written_reply_at is not None
    assert derive_state(await complaint_history(final)) == State.CLOSED
    register = await register_of(
        final, org.supervisor, profile, "zh_CN", at, request_types=ZH_REQUESTS
    )
    assert register.written_reply_required and register.recorded_by == "clerk"
    assert register.visits and register.visits[0].by == "clerk"


async def test_no_response_close_of_a_written_complaint_waits_for_the_letter(
    db_url: str,
) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    at = local("2026-11-02T10:00")
    complaint = await record(profile, org, at, channel="email")
    await to_revisit(profile, org, complaint, at)
    await sweep(at + timedelta(days=10), profile=profile, context=CONTEXT)
    held = await Complaint.get(id=complaint.id)
    assert held.state == State.REVISIT  # nothing loops: the sweep is done with it
    assert held.next_alarm_at is None or held.next_alarm_at > at + timedelta(days=10)
    assert await Event.filter(
        complaint_id=complaint.id, action="close_awaits_written_reply"
    ).exists()
    _, closed = await issue_written_reply(
        complaint.id,
        Actor(Role.SUPERVISOR, org.supervisor),
        profile=profile,
        clock=clock(at + timedelta(days=11)),
    )
    assert closed and (await Complaint.get(id=complaint.id)).state == State.CLOSED


async def test_written_reply_not_required_by_profile_or_channel(db_url: str) -> None:
    profile = load_profile("tax-service")  # the flag is off
    org = await make_org()
    at = local("2026-11-02T10:00")
    complaint = await record(profile, org, at, channel="letter", taxpayer_kind="natural_person")
    await to_revisit(profile, org, complaint, at)
    await act(
        complaint.id,
        Action.CLOSE,
        Actor(Role.SUPERVISOR, org.supervisor),
        profile=profile,
        clock=clock(at),
    )
    assert (await Complaint.get(id=complaint.id)).state == State.CLOSED


async def test_register_is_masked_for_the_person_complained_about(db_url: str) -> None:
    profile = load_profile("gov-window")
    org = await make_org()
    at = local("2026-11-02T10:00")
    complaint = await record(profile, org, at, **{"target": "staff", "target.text": "handler"})
    register = await register_of(
        complaint, org.handler, profile, "zh_CN", at, request_types=ZH_REQUESTS
    )
    assert register.identity_masked and register.complainant_phone is None
    assert register.complainant_address is None
    supervisor_view = await register_of(
        complaint, org.supervisor, profile, "zh_CN", at, request_types=ZH_REQUESTS
    )
    assert supervisor_view.complainant_phone == "+8613900139000"
    views = [
        v
        for v in await Event.filter(complaint_id=complaint.id, action="viewed_identity")
        if v.payload["via"] == "register"
    ]
    assert [v.actor_staff_id for v in views] == [org.supervisor.id]  # type: ignore[attr-defined]
    assert isinstance(org.handler, Staff)


async def test_register_words_the_request_as_the_form_offered_it(db_url: str) -> None:
    """The profile's option label when the form lists it, else the built-in request type in the
    reader's words (injected by the caller: the models translate nothing), then what was typed."""
    profile = load_profile("gov-window")
    org = await make_org()
    at = local("2026-11-02T10:00")
    complaint = await record(profile, org, at)
    complaint.request_text = "请当面道歉"
    await complaint.save()
    register = await register_of(complaint, org.supervisor, profile, "zh_CN", at, request_types={})
    assert register.request == "赔礼道歉：请当面道歉"  # the form's option, then what was typed
    # A built-in request type the gov-window form does not list (filed under another profile).
    complaint.request_type = "compensation"
    await complaint.save()
    chinese = await register_of(
        complaint, org.supervisor, profile, "zh_CN", at, request_types=ZH_REQUESTS
    )
    assert chinese.request == "赔偿损失：请当面道歉"
    english = await register_of(
        complaint, org.supervisor, profile, "en", at, request_types=request_type_labels("en")
    )
    assert english.request == "Compensation：请当面道歉"
