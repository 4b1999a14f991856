"""Tortoise ORM models: the database is the only state of the product."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from enum import StrEnum

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model
from tortoise.signals import post_save, pre_save

from models.numbering import is_provisional
from models.workflow import Role, State

event_log = logging.getLogger("complaintdesk.events")


class Channel(StrEnum):
    WEB = "web"
    TELEGRAM = "telegram"
    WECHAT = "wechat"
    # Complaints staff record for someone (代录): received by phone, at the window, by letter or
    # by e-mail. Such a complainant has no chat; what the chat would tell them becomes a
    # call-back task on the desk (models/callbacks.py).
    PHONE = "phone"
    VISIT = "visit"
    LETTER = "letter"
    EMAIL = "email"


# Channels staff record on the desk; a complainant on one of them is reached by call-back.
RECORDED_CHANNELS: frozenset[Channel] = frozenset(
    {Channel.PHONE, Channel.VISIT, Channel.LETTER, Channel.EMAIL}
)


class CallbackStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"  # made moot: the survey closed, or the person linked a chat


class CallbackOutcome(StrEnum):
    REACHED = "reached"
    NOT_REACHED = "not_reached"


class TargetKind(StrEnum):
    DEPARTMENT = "department"
    STAFF = "staff"
    VEHICLE = "vehicle"
    OTHER = "other"


class RequestType(StrEnum):
    STOP_HARM = "stop_harm"
    APOLOGY = "apology"
    COMPENSATION = "compensation"
    EXPLANATION = "explanation"
    OTHER = "other"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # permanent: bot blocked, chat not found; surfaced to a human


class Department(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    # The escalation chain: a missed deadline goes one level up this link.
    parent: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="children", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "department"


class Staff(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    role = fields.CharEnumField(Role, max_length=32)
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="staff", null=True, on_delete=fields.SET_NULL
    )
    telegram_chat_id = fields.CharField(max_length=64, null=True, unique=True)
    wechat_openid = fields.CharField(max_length=64, null=True, unique=True)
    invite_code = fields.CharField(max_length=64, null=True, unique=True)
    invite_expires_at = fields.DatetimeField(null=True)
    # The invite's end, kept when a chat redeems the code (which clears invite_expires_at): one
    # invite may bind a chat and set a browser-desk password (models/desk_auth), each once.
    invite_valid_until = fields.DatetimeField(null=True)
    language = fields.CharField(max_length=8, default="zh_CN")
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "staff"


class Complainant(Model):
    """A person as one platform identity, name and phone optional (anonymous filing)."""

    id = fields.IntField(primary_key=True)
    channel = fields.CharEnumField(Channel, max_length=16)
    external_id = fields.CharField(max_length=128)  # Telegram user id, WeChat openid, web session
    chat_id = fields.CharField(max_length=128, null=True)  # where to reach them on that channel
    name = fields.CharField(max_length=200, null=True)
    phone = fields.CharField(max_length=32, null=True)
    language = fields.CharField(max_length=8, default="zh_CN")
    unsubscribed = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "complainant"
        unique_together = (("channel", "external_id"),)


class MonthlySerial(Model):
    """Last complaint serial handed out per month: the row lock makes numbers gap-free."""

    month = fields.CharField(max_length=6, primary_key=True)  # YYYYMM, every format
    last_serial = fields.IntField(default=0)

    class Meta:
        table = "monthly_serial"


class Complaint(Model):
    id = fields.IntField(primary_key=True)
    number = fields.CharField(max_length=20, unique=True)  # models/numbering.py formats
    profile = fields.CharField(max_length=64)
    category = fields.CharField(max_length=64, null=True)
    subcategory = fields.CharField(max_length=64, null=True)
    severity = fields.CharField(max_length=32, null=True)
    # simple/complex judged per case at acceptance; None: the category's complexity applies
    complexity = fields.CharField(max_length=16, null=True)
    # Answers to the profile's own form fields (理由, 通讯地址, 单位名称, 批号 …) and intake flags
    # (urgent), keyed by field id.
    intake_extra = fields.JSONField(default=dict, null=True)
    channel = fields.CharEnumField(Channel, max_length=16)
    complainant: fields.ForeignKeyNullableRelation[Complainant] = fields.ForeignKeyField(
        "models.Complainant", related_name="complaints", null=True, on_delete=fields.SET_NULL
    )
    anonymous = fields.BooleanField(default=False)
    contact_name = fields.CharField(max_length=200, null=True)
    contact_phone = fields.CharField(max_length=32, null=True)
    # 通讯地址 (the register's postal address; where a written reply is sent).
    contact_address = fields.CharField(max_length=500, null=True)
    target_kind = fields.CharEnumField(TargetKind, max_length=16, null=True)
    target_text = fields.CharField(max_length=500, null=True)
    target_department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="targeted_by", null=True, on_delete=fields.SET_NULL
    )
    target_staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="targeted_by", null=True, on_delete=fields.SET_NULL
    )
    incident_at = fields.DatetimeField(null=True)
    place_text = fields.CharField(max_length=500, null=True)
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    facts = fields.TextField(default="")
    request_type = fields.CharEnumField(RequestType, max_length=16, null=True)
    request_text = fields.TextField(null=True)
    witnesses = fields.TextField(null=True)
    written = fields.BooleanField(default=False)  # a written complaint gets a written reply
    confidential = fields.BooleanField(default=True)
    state = fields.CharEnumField(State, max_length=32, default=State.DRAFT)
    lead_department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="led_complaints", null=True, on_delete=fields.SET_NULL
    )
    handler: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="handled_complaints", null=True, on_delete=fields.SET_NULL
    )
    co_departments: fields.ManyToManyRelation[Department] = fields.ManyToManyField(
        "models.Department", related_name="co_handled_complaints", through="complaint_co_department"
    )
    # Stage deadlines: {stage: {"due": ISO UTC, "provisional": bool, ...}}; the nearest open one
    # is copied to next_due_at so a sweep is an index range scan over due rows only.
    deadlines = fields.JSONField(default=dict)
    next_due_at = fields.DatetimeField(null=True, db_index=True)
    next_due_stage = fields.CharField(max_length=32, null=True)
    deadline_provisional = fields.BooleanField(default=False)
    paused_at = fields.DatetimeField(null=True)
    # The scheduler's wake-up: the earliest pending reminder point, due instant, escalation,
    # survey send, survey reminder or no-response close (models/alarms.py). A sweep reads
    # only rows with next_alarm_at <= now, so its cost grows with due rows, not open rows.
    next_alarm_at = fields.DatetimeField(null=True)
    # What the scheduler has done per stage deadline (reminders sent, escalation level reached,
    # survey progress), keyed by stage and due instant so a recomputed deadline starts afresh.
    # Nullable so that adding it to a filled table works, read as {} when NULL.
    alarm_state = fields.JSONField(default=dict, null=True)
    extensions_used = fields.IntField(default=0)
    extension_pending = fields.JSONField(null=True)
    # The respondent's statement (R13 陈述和申辩; models.statement): who was asked, by when,
    # and what they said, or when the period lapsed. None: never asked for.
    statement = fields.JSONField(null=True)
    reply_text = fields.TextField(null=True)
    # When the 书面答复 (written reply letter) was issued; a written complaint cannot be closed
    # before (profile reply.written_reply_for_written_complaint).
    written_reply_at = fields.DatetimeField(null=True)
    # R26 决定是否启动产品回收程序: staff's decision whether to start the product recall (None:
    # not recorded yet), with their reason; who and when are on the record_recall_decision event.
    recall_decision = fields.BooleanField(null=True)
    recall_reason = fields.TextField(null=True)
    submitted_at = fields.DatetimeField(null=True)
    resolved_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    anonymised_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "complaint"
        # The desk's case list filters by these (models/caselist.py).
        indexes = (
            ("state", "next_due_at"),
            ("next_alarm_at",),
            ("submitted_at",),
            ("category",),
            ("lead_department_id",),
            ("handler_id",),
            # A new complaint looks for the earlier ones of the same person (by identity or by
            # phone) inside the repeat window (models.actions.link_repeat_at_submission).
            ("complainant_id", "submitted_at"),
            ("contact_phone", "submitted_at"),
        )


@pre_save(Complaint)
async def _plan_alarm(
    sender: type[Complaint],
    instance: Complaint,
    using_db: BaseDBAsyncClient | None,
    update_fields: Iterable[str] | None,
) -> None:
    """Every save recomputes when the scheduler must next look at the complaint, so no action
    needs to know about reminders (a save limited to other fields cannot store it: skipped)."""
    if update_fields is not None and "next_alarm_at" not in update_fields:
        return
    # Late: the planner reads the rule book (models.actions, models.callbacks), which imports
    # these entities. Planning lives in models/ so this hook never reaches up into scheduler/.
    from models.alarms import refresh_alarm

    refresh_alarm(instance)


class Attachment(Model):
    id = fields.IntField(primary_key=True)
    complaint: fields.ForeignKeyNullableRelation[Complaint] = fields.ForeignKeyField(
        "models.Complaint", related_name="attachments", null=True, on_delete=fields.CASCADE
    )
    channel = fields.CharEnumField(Channel, max_length=16)
    platform_file_id = fields.CharField(max_length=256, null=True)
    file_name = fields.CharField(max_length=255, null=True)
    mime_type = fields.CharField(max_length=100, null=True)
    size = fields.IntField(default=0)
    sha256 = fields.CharField(max_length=64, db_index=True)
    stored_path = fields.CharField(max_length=500)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Who sent it, for the web chat's upload caps: the browser session and the client address.
    uploader = fields.CharField(max_length=128, null=True)
    client_address = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "attachment"
        indexes = (("uploader", "created_at"), ("client_address", "created_at"))


class Event(Model):
    """Append-only timeline: the complaint's state is derived from these rows."""

    id = fields.BigIntField(primary_key=True)
    complaint: fields.ForeignKeyRelation[Complaint] = fields.ForeignKeyField(
        "models.Complaint", related_name="events", on_delete=fields.CASCADE
    )
    actor_role = fields.CharEnumField(Role, max_length=32)
    actor_staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="events", null=True, on_delete=fields.SET_NULL
    )
    action = fields.CharField(max_length=32)
    from_state = fields.CharField(max_length=32, null=True)
    to_state = fields.CharField(max_length=32, null=True)
    payload = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "event"
        ordering = ("id",)
        # Timelines, summaries and the outbox clean-up read a complaint's events by action.
        indexes = (("complaint_id", "action"),)


class AttachmentBlob(Model):
    """Attachment bytes kept in the database (the default storage): one row per content."""

    sha256 = fields.CharField(max_length=64, primary_key=True)
    data = fields.BinaryField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "attachment_blob"


def log_created_event(instance: Event) -> None:
    """One INFO line per complaint event: number, action, actor role, state change — never the
    payload (it may hold personal data). Also for events written in bulk (no signal fires)."""
    if not event_log.isEnabledFor(logging.INFO):
        return
    # No query here: this runs inside the caller's transaction, and a log line must never be
    # able to break it. The number when the caller has the complaint at hand, else its id.
    cached = instance.__dict__.get("_complaint")
    number = getattr(cached, "number", None) or f"#{instance.complaint_id}"  # type: ignore[attr-defined]
    if is_provisional(number):
        return  # a filing not numbered yet: models.actions.PendingNumber.take logs it once it is
    change = f"{instance.from_state} → {instance.to_state}" if instance.to_state else "no change"
    event_log.info(
        "complaint %s: %s by %s (%s)", number, instance.action, instance.actor_role, change
    )


@post_save(Event)
async def _log_event(
    sender: type[Event],
    instance: Event,
    created: bool,
    using_db: BaseDBAsyncClient | None,
    update_fields: Iterable[str] | None,
) -> None:
    if created:
        log_created_event(instance)


class SurveyResponse(Model):
    id = fields.IntField(primary_key=True)
    complaint: fields.ForeignKeyRelation[Complaint] = fields.ForeignKeyField(
        "models.Complaint", related_name="surveys", on_delete=fields.CASCADE
    )
    handler: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="surveys", null=True, on_delete=fields.SET_NULL
    )
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="surveys", null=True, on_delete=fields.SET_NULL
    )
    result_score = fields.IntField(null=True)
    attitude_score = fields.IntField(null=True)
    comment = fields.TextField(null=True)
    no_response = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "survey_response"


class CallbackTask(Model):
    """A call the desk owes a complainant who has no chat: the message the chat would have
    carried (the script to read), or the return-visit survey to ask by phone."""

    id = fields.BigIntField(primary_key=True)
    idempotency_key = fields.CharField(max_length=200, unique=True)  # as the outbox's
    complaint: fields.ForeignKeyRelation[Complaint] = fields.ForeignKeyField(
        "models.Complaint", related_name="callbacks", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=32)  # a milestone action, progress, survey, ...
    script = fields.TextField()
    status = fields.CharEnumField(CallbackStatus, max_length=16, default=CallbackStatus.OPEN)
    created_at = fields.DatetimeField()
    due_at = fields.DatetimeField()
    done_at = fields.DatetimeField(null=True)
    done_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="callbacks_done", null=True, on_delete=fields.SET_NULL
    )
    outcome = fields.CharEnumField(CallbackOutcome, max_length=16, null=True)
    note = fields.TextField(null=True)
    survey_response: fields.ForeignKeyNullableRelation[SurveyResponse] = fields.ForeignKeyField(
        "models.SurveyResponse", related_name="callbacks", null=True, on_delete=fields.SET_NULL
    )
    # The one person who owes this call (a return visit in person: the order-taker, the
    # station chief); None: whoever may call the complainant back.
    assignee: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="callbacks_assigned", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "callback_task"
        indexes = (("status", "due_at"),)


class OutboxMessage(Model):
    """A message to a person, written in the same transaction as the change that caused it."""

    id = fields.BigIntField(primary_key=True)
    idempotency_key = fields.CharField(max_length=200, unique=True)
    channel = fields.CharEnumField(Channel, max_length=16)
    chat_id = fields.CharField(max_length=128)
    payload = fields.JSONField()  # a serialised Outgoing
    status = fields.CharEnumField(OutboxStatus, max_length=16, default=OutboxStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(db_index=True)
    claimed_until = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)
    # Carried by the answer to the platform's own request (WeChat's passive reply), not by an
    # API call: a retry of that request is answered with it again (bot.replies.answer_again).
    in_response = fields.BooleanField(default=False)
    complaint: fields.ForeignKeyNullableRelation[Complaint] = fields.ForeignKeyField(
        "models.Complaint", related_name="outbox", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox"
        indexes = (("status", "next_attempt_at"),)


class DialogSession(Model):
    """Where each person is in a conversation: any worker continues it from here."""

    id = fields.IntField(primary_key=True)
    channel = fields.CharEnumField(Channel, max_length=16)
    external_id = fields.CharField(max_length=128)
    state = fields.JSONField(default=dict)
    version = fields.IntField(default=0)  # optimistic concurrency between workers
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "dialog_session"
        unique_together = (("channel", "external_id"),)


class ProcessedUpdate(Model):
    """Platform update ids already handled, so a re-delivered update is processed once."""

    id = fields.BigIntField(primary_key=True)
    channel = fields.CharEnumField(Channel, max_length=16)
    update_key = fields.CharField(max_length=128)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "processed_update"
        unique_together = (("channel", "update_key"),)


class KeyValue(Model):
    """Small shared facts between workers (e.g. a platform access token and its expiry)."""

    key = fields.CharField(max_length=128, primary_key=True)
    value = fields.JSONField()
    expires_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "key_value"


class DeskExport(Model):
    """Audit: a staff member downloaded a list of cases (CSV / XLSX) or a report workbook —
    who, when, with which filters, how many rows, and in how many the complainant's identity
    was shown unmasked. Shown on the desk's audit page."""

    id = fields.BigIntField(primary_key=True)
    staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="exports", null=True, on_delete=fields.SET_NULL
    )
    kind = fields.CharField(max_length=16)  # csv, xlsx, report
    filters = fields.JSONField(default=dict)
    rows = fields.IntField(default=0)
    identity_rows = fields.IntField(default=0)
    finished = fields.BooleanField(default=False)  # False: the download broke off
    created_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "desk_export"
