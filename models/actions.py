"""Workflow actions: every change of a complaint is one `do_*`/`act` call in one transaction.

As in Zulip's `zerver/actions/`: the rule book (`models.workflow.decide`) is asked first, then the
complaint row, its event and any outbox rows are written together, so the state stored on the
complaint is always the one its events prove.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from config.profiles import ENGINE_FIELDS, Profile
from models import statement as statement_rules
from models.actions_rules import recall_decision_pending, severity_raisable
from models.db import NewRow, insert_linked, select_values
from models.entities import (
    Attachment,
    Channel,
    Complainant,
    Complaint,
    Event,
    RequestType,
    Staff,
    TargetKind,
    log_created_event,
)
from models.lookup import HashedCode, access_row
from models.matters import (
    MATTER_COLUMNS,
    GroupStatus,
    LinkSource,
    MatterGroup,
    MatterGroupMember,
    RepeatLink,
    matter_of,
    matter_of_row,
)
from models.notifications import emit_notifications, recipients, written_reply_pending
from models.numbering import (
    DEFAULT_FORMAT,
    format_number,
    is_provisional,
    normalise_number,
    number_format,
    number_prefix,
    period_of,
    provisional_number,
)
from models.similarity import repeat_of as detect_repeat
from models.similarity import similarity
from models.targets import link_target
from models.workflow import (
    Action,
    CaseFacts,
    Effect,
    Refusal,
    RefusalReason,
    Role,
    State,
    Transition,
    decide,
    may_manage_matters,
)
from scheduler.calendar import WorkingCalendar
from scheduler.deadlines import Duration, Pause, compute_due, due_for_starts

# Which stage deadlines run while a complaint is in a state. The first listed stage the profile
# defines is the one the sweep watches (`next_due_at`).
ACTIVE_STAGES: dict[State, tuple[str, ...]] = {
    State.SUBMITTED: ("acceptance", "dispatch", "first_contact"),
    State.ACCEPTED: ("dispatch", "first_contact", "resolution"),
    State.ASSIGNED: ("first_contact", "action_plan", "resolution"),
    State.IN_PROGRESS: ("resolution",),
    State.REOPENED: ("resolution",),
    State.RESOLVED: ("result_notice",),
    State.REPLIED: ("revisit",),
    State.REVISIT: ("survey_reminder", "auto_close"),
}
# Stages whose clock starts when the case enters the state. Dispatch counts from receipt (a
# 24-hour desk dispatches within minutes of the call, before any formal acceptance) and runs
# until the case is assigned.
STAGE_STARTS: dict[State, tuple[str, ...]] = {
    State.SUBMITTED: ("acceptance", "dispatch", "manager_notice"),
    State.ACCEPTED: ("resolution", "manager_notice"),
    State.ASSIGNED: ("first_contact", "action_plan"),
    State.REOPENED: ("resolution",),
    State.RESOLVED: ("result_notice",),
    State.REPLIED: ("revisit",),
    State.REVISIT: ("survey_reminder", "auto_close"),
}


class ActionRefused(Exception):
    """The rule book said no; nothing was written."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class ComplaintNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Clock:
    """What deadline arithmetic needs: the calendar, the display zone and the current instant."""

    calendar: WorkingCalendar
    tz: ZoneInfo
    now: datetime

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("Clock.now must be timezone-aware")


@dataclass(frozen=True)
class Actor:
    role: Role
    staff: Staff | None = None
    complainant: Complainant | None = None


@dataclass
class ActionResult:
    complaint: Complaint
    transition: Transition
    event: Event
    extra: dict[str, Any] = field(default_factory=dict)


class Unread:
    """The caller has not read the complainant's row (`submit_complaint` reads it)."""


UNREAD = Unread()


# -- numbering ---------------------------------------------------------------------------


# The serial and the number in one statement (PostgreSQL): a filing holds the month's counter
# row from here to its COMMIT, so this is its last write (a filing through the chat writes its
# replies before it too: `chat`). The number is the format's prefix and the serial,
# zero-padded to the format's width and never cut (lpad cuts). The rows written under the
# provisional number — the filing's notifications, and the rows to `chat` (its replies) — get
# the number in the same statement. Only this transaction's rows can hold that provisional
# number: it is random, and no other transaction sees it.
_PG_NUMBER = """
WITH serial AS (
    INSERT INTO monthly_serial (month, last_serial) VALUES ($1, 1)
    ON CONFLICT (month) DO UPDATE SET last_serial = monthly_serial.last_serial + 1
    RETURNING last_serial
), numbered AS (
    UPDATE complaint
    SET number = $2 || lpad(serial.last_serial::text,
                            greatest($3, length(serial.last_serial::text)), '0')
    FROM serial WHERE complaint.id = $4
    RETURNING complaint.number
), rewritten AS (  -- run though nothing reads it: PostgreSQL runs every writing CTE
    UPDATE outbox SET payload = replace(outbox.payload::text, $5, numbered.number)::jsonb
    FROM numbered
    WHERE (outbox.complaint_id = $4 OR (outbox.channel = $6 AND outbox.chat_id = $7))
      AND strpos(outbox.payload::text, $5) > 0
)
SELECT number FROM numbered
"""
_SERIAL = (
    "INSERT INTO monthly_serial (month, last_serial) VALUES (?, 1) ON CONFLICT (month) "
    "DO UPDATE SET last_serial = monthly_serial.last_serial + 1 RETURNING last_serial"
)
_SQLITE_REWRITE = (
    "UPDATE outbox SET payload = replace(payload, ?, ?) "
    "WHERE (complaint_id = ? OR (channel = ? AND chat_id = ?)) AND instr(payload, ?) > 0"
)


async def number_complaint(
    conn: BaseDBAsyncClient,
    complaint: Complaint,
    period: str,
    fmt: str = DEFAULT_FORMAT,
    chat: tuple[str, str] | None = None,
) -> str:
    """Give `complaint` (saved in this transaction under a provisional number) the next number
    of `period` (YYYYMM) in format `fmt` (models/numbering.py), gap-free; returns it. The
    complaint's outbox rows, and the rows to `chat` (channel, chat id), that carry the
    provisional number get the number instead.

    Taking the serial locks the period's counter row until commit, so concurrent filings in
    every worker queue on it and a rolled-back filing gives its serial back: hence last, when
    everything else is written. Every shipped format counts per month, so they share the row:
    switching format mid-month continues the serial.
    """
    prefix = number_prefix(fmt, period)  # an unknown format fails before a serial is taken
    provisional = complaint.number
    assert complaint.id is not None and is_provisional(provisional), "saved, not yet numbered"
    channel, chat_id = chat or (None, None)
    if conn.capabilities.dialect == "postgres":
        width = number_format(fmt).serial_width
        rows = await conn.execute_query_dict(
            _PG_NUMBER, [period, prefix, width, complaint.id, provisional, channel, chat_id]
        )
        if not rows:
            raise LookupError(f"complaint {complaint.id} is not in this transaction")
        number = str(rows[0]["number"])
    else:  # SQLite runs one write transaction at a time: more statements hold nothing up
        rows = await conn.execute_query_dict(_SERIAL, [period])
        number = format_number(fmt, period, int(rows[0]["last_serial"]))
        await Complaint.filter(id=complaint.id).using_db(conn).update(number=number)
        await conn.execute_query(
            _SQLITE_REWRITE,
            [provisional, number, complaint.id, channel, chat_id, provisional],
        )
    complaint.number = number
    return number


@dataclass
class PendingNumber:
    """A filing whose number its caller takes last (`submit_complaint(numbering=…)`), after
    writing what it needs of its own under the provisional number (a chat's replies)."""

    complaint: Complaint
    period: str
    fmt: str
    events: list[Event]

    @property
    def provisional(self) -> str:
        return self.complaint.number

    async def take(self, conn: BaseDBAsyncClient, chat: tuple[str, str] | None = None) -> str:
        """Number the complaint (rewriting the rows to `chat` too) and log its events."""
        number = await number_complaint(conn, self.complaint, self.period, self.fmt, chat)
        for event in self.events:
            log_created_event(event)  # their log lines name the number
        return number


# -- deadlines ---------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def stage_deadline(
    profile: Profile,
    stage: str,
    complaint: Complaint,
    start: datetime,
    clock: Clock,
    *,
    pauses: list[Pause] | None = None,
    extension: Duration | None = None,
) -> dict[str, Any] | None:
    """The stored form of one stage deadline, or None when the profile sets none for it."""
    try:
        duration = profile.deadline_for(
            stage, complaint.category, complaint.severity, complaint.complexity
        )
    except (LookupError, ValueError):
        return None
    result = compute_due(
        start,
        duration,
        clock.calendar,
        clock.tz,
        office_hours=profile.clock_office_hours(),
        pauses=pauses or (),
        extension=extension,
        roll_to_working_day=profile.clock.roll_to_working_day,
    )
    entry: dict[str, Any] = {
        "start": _iso(start),
        "amount": duration.amount,
        "unit": duration.unit,
        "due": _iso(result.due),
        "provisional": result.provisional,
    }
    if pauses:
        entry["pauses"] = [[_iso(p.start), _iso(p.end)] for p in pauses]
    if extension is not None:
        entry["extension"] = {"amount": extension.amount, "unit": extension.unit}
    return entry


def recompute_stage(profile: Profile, complaint: Complaint, stage: str, clock: Clock) -> None:
    """Recount a stored stage deadline from its start, pauses and extension (e.g. after a
    resume, an approved extension, or official holiday data replacing a provisional year)."""
    entry = complaint.deadlines.get(stage)
    if not entry:
        return
    pauses = [Pause(_parse(a), _parse(b)) for a, b in entry.get("pauses", [])]
    ext = entry.get("extension")
    new = stage_deadline(
        profile,
        stage,
        complaint,
        _parse(entry["start"]),
        clock,
        pauses=pauses,
        extension=Duration(ext["amount"], ext["unit"]) if ext else None,
    )
    if new is not None:
        new["reminded"] = entry.get("reminded", [])
        if "restarted_from" in entry:  # R4: the first start, kept for the record
            new["restarted_from"] = entry["restarted_from"]
        complaint.deadlines[stage] = new


# What the complainant is promised on submission, in this order: the answer whether it is
# accepted, else the first contact (property: feedback within 24 h). Dispatch and the manager
# notice are internal targets, never presented as an answer.
PROMISE_STAGES = ("acceptance", "first_contact")


def complainant_promise(complaint: Complaint) -> tuple[str, datetime, bool] | None:
    """(stage, due, provisional) of what the complainant is owed first, or None."""
    for stage in PROMISE_STAGES:
        entry = (complaint.deadlines or {}).get(stage)
        if entry and not entry.get("done"):
            return stage, _parse(entry["due"]), bool(entry.get("provisional"))
    return None


def refresh_next_due(complaint: Complaint) -> None:
    """Copy the nearest running stage deadline to the indexed columns the sweep scans."""
    state = State(complaint.state)
    candidates = []
    for stage in ACTIVE_STAGES.get(state, ()):
        entry = complaint.deadlines.get(stage)
        if entry and not entry.get("done"):
            candidates.append((_parse(entry["due"]), stage, bool(entry.get("provisional"))))
    if state == State.SUPERVISOR_REVISIT:
        # R19: the supervisor's revisit is what the case waits for (card, lists, reports).
        owed = (complaint.alarm_state or {}).get("supervisor_revisit") or {}
        if owed.get("due") and not owed.get("done"):
            candidates.append((_parse(owed["due"]), "supervisor_revisit", False))
    if complaint.paused_at is not None or not candidates:
        complaint.next_due_at = None
        complaint.next_due_stage = None
    else:
        due, stage, _ = min(candidates)
        complaint.next_due_at = due
        complaint.next_due_stage = stage
    complaint.deadline_provisional = any(
        bool(e.get("provisional")) for e in complaint.deadlines.values() if isinstance(e, dict)
    )


# Stages owed once per complaint, never restarted: a major complaint's manager notice runs from
# its submission, or from the acceptance that rated it major (the profile sets the deadline for
# the major severity only, so a minor complaint starts none). The scheduler watches it in every
# open state (models/alarms.py), so it is not in ACTIVE_STAGES.
ONCE_STAGES = frozenset({"manager_notice"})


def start_stages(profile: Profile, complaint: Complaint, state: State, clock: Clock) -> None:
    stages = STAGE_STARTS.get(state, ())
    if state == State.SUBMITTED and profile.clock.first_contact_from_receipt:
        stages = (*stages, "first_contact")
    for stage in stages:
        if stage in ONCE_STAGES and stage in complaint.deadlines:
            continue
        if (
            stage == "first_contact"
            and profile.clock.first_contact_from_receipt
            and stage in complaint.deadlines
        ):
            continue  # counted from receipt; assignment does not restart it
        entry = stage_deadline(profile, stage, complaint, clock.now, clock)
        if entry is not None:
            complaint.deadlines[stage] = entry


# -- submission --------------------------------------------------------------------------


def _enum_or_none(enum: type[Any], value: Any) -> Any:
    if value in (None, ""):
        return None
    try:
        return enum(value)
    except ValueError:
        return enum("other")


async def get_or_create_complainant(
    channel: Channel,
    external_id: str,
    *,
    chat_id: str | None = None,
    language: str | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> Complainant:
    person = (
        await Complainant.filter(channel=channel, external_id=external_id).using_db(conn).first()
    )
    if person is None:
        person = await Complainant.create(
            channel=channel,
            external_id=external_id,
            chat_id=chat_id or external_id,
            language=language or "zh_CN",
            using_db=conn,
        )
    return person


async def submit_complaint(
    *,
    profile: Profile,
    channel: Channel,
    external_id: str,
    answers: dict[str, Any],
    clock: Clock,
    chat_id: str | None = None,
    language: str = "zh_CN",
    attachment_ids: list[int] | None = None,
    recorded_by: Staff | None = None,
    conn: BaseDBAsyncClient | None = None,
    complainant: Complainant | Unread | None = UNREAD,
    access: HashedCode | None = None,
    numbering: list[PendingNumber] | None = None,
) -> Complaint:
    """File a complaint: number, row, acceptance deadline and the submit event, atomically.

    `recorded_by`: the staff member who records it for the complainant (代录: phone, window,
    letter, e-mail); the complainant then has no chat (`chat_id` stays empty) and the address
    they gave is kept (`answers["address"]`). The profile decides whether the channel makes
    it a written complaint.

    `complainant`: the person's row (None: they have none) as the caller already read it in
    `conn`, so it is not read again. `access`: the access code to give it, stored before the
    number (see below). `numbering`: the caller takes the number (`PendingNumber.take`, in
    `conn`, before it commits): the complaint is returned under its provisional number, and
    what is written with that number is rewritten when it is taken.
    """
    if conn is None:
        async with in_transaction() as tx:
            return await submit_complaint(
                profile=profile,
                channel=channel,
                external_id=external_id,
                answers=answers,
                clock=clock,
                chat_id=chat_id,
                language=language,
                attachment_ids=attachment_ids,
                recorded_by=recorded_by,
                conn=tx,
                complainant=complainant,
                access=access,
                numbering=numbering,
            )
    if recorded_by is not None:
        actor = Actor(Role(recorded_by.role), staff=recorded_by)
        transition = decide(State.DRAFT, Action.SUBMIT, actor.role)
    else:
        actor = Actor(Role.COMPLAINANT)
        transition = decide(State.DRAFT, Action.SUBMIT, Role.COMPLAINANT, CaseFacts(True))
    if isinstance(transition, Refusal):
        raise ActionRefused(transition)
    known = (
        await Complainant.filter(channel=channel, external_id=external_id).using_db(conn).first()
        if isinstance(complainant, Unread)
        else complainant
    )
    if recorded_by is not None:
        person = known or await Complainant.create(
            channel=channel, external_id=external_id, chat_id=None, language=language, using_db=conn
        )
    else:
        person = known or Complainant(
            channel=channel,
            external_id=external_id,
            chat_id=chat_id or external_id,
            language=language or "zh_CN",
        )
        actor = Actor(Role.COMPLAINANT, complainant=person)
    anonymous = bool(answers.get("anonymous"))
    # The name and phone given are kept on the person: inserted with a new row, written to an
    # existing one only where they differ.
    given = {} if anonymous else {k: answers[k] for k in ("name", "phone") if answers.get(k)}
    changed = [k for k, value in given.items() if getattr(person, k) != value]
    for key in changed:
        setattr(person, key, given[key])
    if person.id is None:  # a first complaint: one INSERT, name and phone included
        await person.save(using_db=conn)
    elif changed:
        await person.save(using_db=conn, update_fields=changed)
    incident = answers.get("incident_time")
    complaint = Complaint(
        profile=profile.id,
        category=answers.get("category"),
        subcategory=answers.get("subcategory"),
        severity=None,
        channel=channel,
        complainant=person,
        anonymous=anonymous,
        contact_name=None if anonymous else answers.get("name"),
        contact_phone=None if anonymous else answers.get("phone"),
        contact_address=None if anonymous else answers.get("address"),
        written=str(channel) in profile.reply.written_channels,
        target_kind=_enum_or_none(TargetKind, answers.get("target_kind")),
        target_text=answers.get("target_text"),
        incident_at=datetime.fromisoformat(incident) if incident else None,
        place_text=answers.get("place_text"),
        latitude=answers.get("latitude"),
        longitude=answers.get("longitude"),
        facts=answers.get("facts") or "",
        request_type=_enum_or_none(RequestType, answers.get("request_type")),
        request_text=answers.get("request_text"),
        witnesses=answers.get("witnesses"),
        state=State.SUBMITTED,
        submitted_at=clock.now,
        deadlines={},
    )
    if complaint.category is not None:
        try:
            complaint.severity = profile.category(complaint.category).default_severity
        except KeyError:
            complaint.category = None
    complaint.intake_extra = intake_extra(profile, answers)
    repeat = await repeat_at_submission(profile, complaint, person, clock, conn)
    upgrade = await severity_at_submission(
        profile, complaint, person, answers, clock, conn, repeat=repeat
    )
    if upgrade is not None:
        complaint.severity = upgrade
        complaint.intake_extra["severity_upgrade"] = upgrade_reason(profile, answers)
    start_stages(profile, complaint, State.SUBMITTED, clock)
    refresh_next_due(complaint)
    await link_target(complaint, conn)  # before notifications, so the cards mask for the target
    # Who hears of it is read before the serial too (a filing's staff depend on no number).
    told = await recipients(transition.effects, complaint, {}, conn)
    # The number last: taking the serial locks the month's counter until commit, and every
    # filing in every worker queues on that lock, so everything that needs no number is
    # written before it, under a provisional number no one else can see.
    period = period_of(clock.now.astimezone(clock.tz))
    complaint.number = provisional_number()
    payload: dict[str, Any] = {"channel": str(channel), "effects": list(transition.effects)}
    if recorded_by is not None:
        payload["recorded_for"] = True
    event = Event(
        actor_role=actor.role,
        actor_staff=actor.staff,
        action=Action.SUBMIT,
        from_state=State.DRAFT,
        to_state=State.SUBMITTED,
        payload=payload,
        created_at=clock.now,
    )
    # The complaint, its submit event and its access code: one statement on PostgreSQL.
    rows = [NewRow(complaint), NewRow(event, (("complaint", 0),))]
    if access is not None:
        rows.append(NewRow(access_row(access, clock.now), (("complaint", 0),)))
    await insert_linked(conn, rows)
    if attachment_ids:
        await (
            Attachment.filter(id__in=attachment_ids)
            .using_db(conn)
            .update(complaint_id=complaint.id)
        )
    # The notifications and the repeat link are written under the provisional number too: the
    # number's statement rewrites them, so the lock is held over none of them.
    await emit_notifications(
        complaint, transition, actor, clock, profile, conn, event=event, people=told, version=1
    )
    events = [event]
    if repeat is not None:
        events += await _store_repeat_link(complaint, repeat, clock, conn)
    pending = PendingNumber(complaint, period, profile.numbering.format, events)
    if numbering is not None:
        numbering.append(pending)
    else:
        await pending.take(conn)
    return complaint


# -- repeat complaints -------------------------------------------------------------------

# The most earlier complaints of one person a submission compares with: the newest first, so
# the check stays one bounded index range read (complainant or phone, then submitted_at).
REPEAT_CANDIDATES = 200
# A repeat found at submission means the complaint row not yet saved: the detector skips equal
# ids, so the new complaint's Matter carries one no row has.
_UNSAVED = -1


@dataclass(frozen=True)
class RepeatFound:
    """The earlier complaint a new one repeats (read as values, not as a model: see below)."""

    earlier_id: int
    earlier_number: str
    earlier_state: str
    score: float


def _window_bound(window: Duration, now: datetime) -> datetime:
    """An instant surely before the window's start (working days, holidays included): the SQL
    reads from here, the calendar then counts exactly."""
    days = {"minutes": 1, "hours": 2}.get(window.unit, window.amount * 2 + 30)
    return now - timedelta(days=days)


async def repeat_at_submission(
    profile: Profile,
    complaint: Complaint,
    person: Complainant,
    clock: Clock,
    conn: BaseDBAsyncClient,
) -> RepeatFound | None:
    """The earlier complaint `complaint` (being submitted) repeats: the same person by identity
    or by phone, on any channel, inside the profile's `[repeats] within`, text alike by
    `models.similarity.repeat_of`. None for an anonymous complaint (nobody to recognise)."""
    if complaint.anonymous:
        return None
    rules = profile.repeats
    window = rules.within.to_duration()
    phone = complaint.contact_phone or person.phone
    same_person = '"complainant_id" = ? OR "contact_phone" = ?' if phone else '"complainant_id" = ?'
    # Values, not models: up to 200 rows on every filing, whose other columns (the deadlines,
    # alarm and intake JSON) nothing here reads. Written out: read on every filing.
    rows = await select_values(
        Complaint,
        conn,
        (*MATTER_COLUMNS, "number", "state"),
        f'({same_person}) AND "profile" = ? AND "submitted_at" >= ? AND NOT "anonymous"',
        [
            person.id,
            *([phone] if phone else []),
            profile.id,
            _window_bound(window, clock.now).astimezone(UTC),
        ],
        tail=f' ORDER BY "submitted_at" DESC LIMIT {REPEAT_CANDIDATES}',
    )
    reach = due_for_starts(window, clock.calendar, clock.tz)
    earlier = [
        row
        for row in rows
        if row["submitted_at"] is not None and reach(row["submitted_at"]) >= clock.now
    ]
    if not earlier:
        return None
    complaint.id = _UNSAVED
    complaint.submitted_at = clock.now
    try:
        new = matter_of(complaint, person.phone)
    finally:
        complaint.id = None  # type: ignore[assignment]
    by_id = {row["id"]: row for row in earlier}
    found = detect_repeat(
        new,
        [matter_of_row(row) for row in earlier],
        within=clock.now - min(r["submitted_at"] for r in earlier) + timedelta(1),
        threshold=rules.threshold,
    )
    if found is None:
        return None
    row = by_id[found.id]
    return RepeatFound(row["id"], row["number"], row["state"], round(similarity(new, found), 4))


async def _store_repeat_link(
    complaint: Complaint, found: RepeatFound, clock: Clock, conn: BaseDBAsyncClient
) -> list[Event]:
    """The detected link and its event (returned: logged once the complaint is numbered)."""
    transition = decide(State(complaint.state), Action.LINK_REPEAT, Role.SYSTEM)
    if isinstance(transition, Refusal):
        return []
    await RepeatLink.create(
        complaint=complaint,
        repeat_of_id=found.earlier_id,
        score=found.score,
        source=LinkSource.DETECTED,
        created_at=clock.now,
        using_db=conn,
    )
    event = await Event.create(
        complaint=complaint,
        actor_role=Role.SYSTEM,
        action=str(Action.LINK_REPEAT),
        from_state=transition.from_state,
        to_state=transition.to_state,
        payload={"repeat_of": found.earlier_number, "score": found.score, "source": "detected"},
        created_at=clock.now,
        using_db=conn,
    )
    return [event]


def intake_extra(profile: Profile, answers: dict[str, Any]) -> dict[str, Any]:
    """The answers to the profile's own fields (not the engine's columns), kept on the case."""
    engine = set(ENGINE_FIELDS)
    extra: dict[str, Any] = {
        f.id: answers[f.id]
        for f in profile.intake.fields
        if f.id not in engine and answers.get(f.id) not in (None, "")
    }
    request = answers.get("request_type")
    if request and request not in RequestType.__members__.values():
        extra["request_option"] = request  # a profile's own option (e.g. 尽快办结我的事项)
    if answers.get("urgent"):
        extra["urgent"] = answers["urgent"]  # the emergency exclusion it came through
    if answers.get("screening") == "staff":
        # "不确定，请工作人员判断": staff screen it (accept, or refuse with reason and guidance).
        extra["screening"] = "staff"
    precision = answers.get("incident_time_precision")
    if precision not in (None, "minute"):
        extra["incident_time_precision"] = precision  # period / day / week / month / unknown
    return extra


def upgrade_reason(profile: Profile, answers: dict[str, Any]) -> str:
    return "urgent" if answers.get("urgent") else "repeat"


async def severity_at_submission(
    profile: Profile,
    complaint: Complaint,
    person: Complainant,
    answers: dict[str, Any],
    clock: Clock,
    conn: BaseDBAsyncClient,
    *,
    repeat: RepeatFound | None = None,
) -> str | None:
    """The severity a new complaint gets by the profile's own rules, or None to keep it.

    An emergency (urgent exclusion) is urgent. Where `[repeats] counts_toward_severity`, a
    complaint that repeats an earlier, still answerable one (`repeat`: same person, similar
    text, inside the window) is upgraded (R7g 多次提出而得不到解決); elsewhere the older rule: the
    same complainant raising the same category again within `repeat_within` of an earlier one.
    """
    rules = profile.severity_rules
    if answers.get("urgent") and rules.urgent is not None:
        return rules.urgent
    if profile.repeats.counts_toward_severity:
        if repeat is None or rules.upgrade_to is None:
            return None
        if State(repeat.earlier_state) in (State.REFUSED, State.WITHDRAWN):
            return None  # not a matter left unsettled: turned away, or taken back
        return rules.upgrade_to
    if rules.repeat_within is None or rules.upgrade_to is None or complaint.anonymous:
        return None
    earlier = (
        await Complaint.filter(
            complainant_id=person.id, profile=profile.id, category=complaint.category
        )
        .exclude(state__in=[State.REFUSED, State.WITHDRAWN])
        .using_db(conn)
        .values_list("submitted_at", flat=True)
    )
    reach = due_for_starts(rules.repeat_within.to_duration(), clock.calendar, clock.tz)
    for submitted in earlier:
        if submitted is not None and reach(submitted) >= clock.now:
            return rules.upgrade_to
    return None


# -- transitions -------------------------------------------------------------------------


async def _lock_complaint(conn: BaseDBAsyncClient, ref: int | str) -> Complaint:
    query = Complaint.filter(number=ref) if isinstance(ref, str) else Complaint.filter(id=ref)
    query = query.using_db(conn)
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update()
    complaint = await query.first()
    if complaint is None:
        raise ComplaintNotFound(f"no complaint {ref!r}")
    return complaint


# States in which a case's result has been decided and may stand for a later, same matter.
DECIDED_STATES = frozenset(
    {
        State.RESOLVED,
        State.REPLIED,
        State.REVISIT,
        State.SUPERVISOR_REVISIT,
        State.CLOSED,
        State.ARCHIVED,
    }
)


async def decided_case(
    complaint: Complaint, number: Any, conn: BaseDBAsyncClient | None = None
) -> Complaint:
    """The earlier case, by number, whose decision settles `complaint` (`settle_as_decided`);
    ValueError (the staff desk shows it as refused input) when it is unknown, is this case, or
    has no decided reply yet."""
    typed = str(number or "").strip()
    if not typed:
        raise ValueError("the number of the case already decided is required")
    number = normalise_number(typed) or typed  # any shipped format; else reported as unknown
    decided = await Complaint.filter(number=number).using_db(conn).first()
    if decided is None or decided.id == complaint.id:
        raise ValueError(f"no other complaint numbered {number}")
    if State(decided.state) not in DECIDED_STATES or not decided.reply_text:
        raise ValueError(f"complaint {number} has no decided result yet")
    return decided


def recall_decision_of(payload: dict[str, Any]) -> tuple[bool, str]:
    """(start the recall?, the reason) from a record_recall_decision payload; ValueError (refused
    input) unless `recall` is a yes/no and a reason is given."""
    recall = payload.get("recall")
    if isinstance(recall, str):
        recall = {"yes": True, "true": True, "no": False, "false": False}.get(recall.lower())
    if not isinstance(recall, bool):
        raise ValueError("recall is yes or no")
    reason = str(payload.get("reason") or "").strip()
    if not reason:
        raise ValueError("the reason for the recall decision is required")
    return recall, reason


async def _earlier_case(
    complaint: Complaint, number: Any, conn: BaseDBAsyncClient | None
) -> Complaint:
    """The earlier case, by number, staff say `complaint` repeats (`link_repeat`); ValueError
    when it is unknown, this case, or was filed after it."""
    number = str(number or "").strip()
    if not number:
        raise ValueError("the number of the earlier complaint is required")
    earlier = await Complaint.filter(number=number).using_db(conn).first()
    if earlier is None or earlier.id == complaint.id or earlier.submitted_at is None:
        raise ValueError(f"no other complaint numbered {number}")
    if complaint.submitted_at is not None and earlier.submitted_at > complaint.submitted_at:
        raise ValueError(f"complaint {number} was filed after {complaint.number}")
    return earlier


async def case_facts(complaint: Complaint, actor: Actor, profile: Profile) -> CaseFacts:
    staff = actor.staff
    is_lead = staff is not None and complaint.handler_id == staff.id  # type: ignore[attr-defined]
    is_co = False
    if staff is not None and staff.department_id is not None and not is_lead:  # type: ignore[attr-defined]
        co_ids = await complaint.co_departments.all().values_list("id", flat=True)
        is_co = staff.department_id in co_ids  # type: ignore[attr-defined]
    pending = complaint.extension_pending or None
    max_ext = profile.extension.max_count if profile.extension is not None else 0
    statement = statement_rules.statement_facts(profile, complaint, staff.id if staff else None)
    return CaseFacts(
        actor_is_complainant_owner=(
            actor.complainant is not None and complaint.complainant_id == actor.complainant.id  # type: ignore[attr-defined]
        ),
        actor_is_assignee=is_lead or is_co,
        actor_is_lead=is_lead,
        extension_pending=pending is not None,
        actor_is_extension_requester=(
            pending is not None and staff is not None and pending.get("staff_id") == staff.id
        ),
        extensions_used=complaint.extensions_used,
        max_extensions=max_ext,
        written_reply_pending=written_reply_pending(complaint, profile),
        severity_raisable=severity_raisable(profile, complaint),
        dispute_to_supervisor=profile.reply.disputed_result == "supervisor_revisit",
        settle_as_decided_enabled=profile.acceptance.settle_as_decided,
        recall_decision_enabled=profile.resolution.requires_recall_decision,
        recall_decision_pending=recall_decision_pending(profile, complaint),
        statement_required=statement.statement_required,
        statement_open=statement.statement_open,
        statement_settled=statement.statement_settled,
        actor_is_respondent=statement.actor_is_respondent,
    )


async def act(
    ref: int | str,
    action: Action,
    actor: Actor,
    *,
    profile: Profile,
    clock: Clock,
    payload: dict[str, Any] | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> ActionResult:
    """Apply one workflow action to a complaint (by id or number) in one transaction.

    Raises `ActionRefused` (nothing written) when the rule book refuses, `ComplaintNotFound`
    for an unknown reference. `payload` carries the action's data: reason, reply text,
    department ids, extension amount, severity, ...
    """
    if conn is None:
        async with in_transaction() as tx:
            return await act(
                ref, action, actor, profile=profile, clock=clock, payload=payload, conn=tx
            )
    payload = dict(payload or {})
    complaint = await _lock_complaint(conn, ref)
    if action == Action.RESOLVE and statement_rules.lapsed(complaint, clock.now):
        # The statement period ran out before the sweep recorded it: the waiver goes on
        # record first, so a decision never rests on a lapse nobody logged.
        await act(
            complaint.id,
            Action.WAIVE_STATEMENT,
            Actor(Role.SYSTEM),
            profile=profile,
            clock=clock,
            payload={"cause": "lapsed"},
            conn=conn,
        )
        complaint = await _lock_complaint(conn, ref)
    facts = await case_facts(complaint, actor, profile)
    decision = decide(State(complaint.state), action, actor.role, facts)
    if isinstance(decision, Refusal):
        raise ActionRefused(decision)
    extra = await _apply_effects(complaint, decision, actor, payload, profile, clock, conn)
    complaint.state = decision.to_state
    refresh_next_due(complaint)
    await complaint.save(using_db=conn)
    event = await Event.create(
        complaint=complaint,
        actor_role=actor.role,
        actor_staff=actor.staff,
        action=str(action),
        from_state=decision.from_state,
        to_state=decision.to_state,
        payload={**payload, "effects": list(decision.effects)},
        created_at=clock.now,
        using_db=conn,
    )
    await emit_notifications(complaint, decision, actor, clock, profile, conn, event=event)
    return ActionResult(complaint, decision, event, extra)


async def _apply_effects(
    complaint: Complaint,
    transition: Transition,
    actor: Actor,
    payload: dict[str, Any],
    profile: Profile,
    clock: Clock,
    conn: BaseDBAsyncClient,
) -> dict[str, Any]:
    """Write what the transition's effects mean for the complaint row (not notifications)."""
    effects = set(transition.effects)
    extra: dict[str, Any] = {}
    action = transition.action
    if action == Action.SETTLE_AS_DECIDED:
        decided = await decided_case(complaint, payload.get("decided_number"), conn)
        # R6 batch rule: the earlier decision is this case's reply, given at once.
        payload["decided_number"] = decided.number
        payload["reply_text"] = decided.reply_text
        complaint.intake_extra = {**(complaint.intake_extra or {}), "decided_as": decided.number}
        complaint.reply_text = decided.reply_text
        complaint.resolved_at = clock.now
        extra["decided_complaint_id"] = decided.id
    if action == Action.LINK_REPEAT:
        earlier = await _earlier_case(complaint, payload.get("repeat_of"), conn)
        await RepeatLink.filter(complaint_id=complaint.id).using_db(conn).delete()
        await RepeatLink.create(
            complaint=complaint,
            repeat_of=earlier,
            score=None,
            source=LinkSource.STAFF if actor.staff is not None else LinkSource.DETECTED,
            linked_by=actor.staff,
            created_at=clock.now,
            using_db=conn,
        )
        payload["repeat_of"] = earlier.number
    if action == Action.UNLINK_REPEAT:
        link = (
            await RepeatLink.filter(complaint_id=complaint.id)
            .using_db(conn)
            .prefetch_related("repeat_of")
            .first()
        )
        if link is None:
            raise ValueError(f"complaint {complaint.number} is linked as no repeat")
        payload["repeat_of"] = link.repeat_of.number
        await link.delete(using_db=conn)
    if action == Action.DECIDE_WITH_GROUP:
        if not str(payload.get("reply_text") or "").strip():
            raise ValueError("the group's decision text is required")
        complaint.reply_text = payload["reply_text"]
        complaint.resolved_at = clock.now
    if action == Action.ACCEPT:
        if payload.get("category"):
            profile.category(payload["category"])  # KeyError names an unknown category
            # Staff confirming the complainant's own category keep their sub-category.
            if payload["category"] != complaint.category or payload.get("subcategory"):
                complaint.subcategory = payload.get("subcategory")
            complaint.category = payload["category"]
        if payload.get("severity"):
            if payload["severity"] not in profile.severity_ids():
                raise KeyError(f"profile {profile.id!r} has no severity {payload['severity']!r}")
            complaint.severity = payload["severity"]
        if payload.get("complexity"):
            if payload["complexity"] not in ("simple", "complex"):
                raise ValueError(f"complexity is simple or complex, not {payload['complexity']!r}")
            complaint.complexity = payload["complexity"]
    if action == Action.SET_SEVERITY:
        extra["previous_severity"] = complaint.severity
        apply_severity(
            profile,
            complaint,
            payload.get("severity"),
            clock,
            automatic=actor.role == Role.SYSTEM,
        )
    if action == Action.TRANSFER and complaint.lead_department_id is not None:  # type: ignore[attr-defined]
        # Kept on the event: the 转办部门 hears of a later extension (R6).
        payload["from_department_id"] = complaint.lead_department_id  # type: ignore[attr-defined]
    if action in (Action.ASSIGN, Action.TRANSFER) and payload.get("department_id") is not None:
        complaint.lead_department_id = int(payload["department_id"])  # type: ignore[attr-defined]
        complaint.handler_id = payload.get("handler_id")  # type: ignore[attr-defined]
    if action == Action.ADD_CO_HANDLER and payload.get("department_id") is not None:
        from models.entities import Department

        department = await Department.get(id=int(payload["department_id"])).using_db(conn)
        await complaint.co_departments.add(department, using_db=conn)
    if action == Action.HAND_BACK:
        complaint.handler_id = None  # type: ignore[attr-defined]
    if action == Action.RESOLVE:
        complaint.reply_text = payload.get("reply_text")
        complaint.resolved_at = clock.now
    if action == Action.ISSUE_WRITTEN_REPLY:
        complaint.written_reply_at = clock.now
    if action == Action.RECORD_RECALL_DECISION:
        complaint.recall_decision, complaint.recall_reason = recall_decision_of(payload)
        payload["recall"], payload["reason"] = complaint.recall_decision, complaint.recall_reason
    if action == Action.REQUEST_STATEMENT:
        await _request_statement(complaint, actor, payload, profile, clock, conn)
        extra["statement_due"] = complaint.statement["due"]
    if action == Action.RECORD_STATEMENT:
        by = actor.staff.id if actor.staff else None
        on_behalf = by is None or statement_rules.respondent_staff_id(complaint) != by
        complaint.statement = statement_rules.recorded(
            dict(complaint.statement or {}),
            str(payload.get("text") or ""),
            by=by,
            on_behalf=on_behalf,
            now=clock.now,
        )
        payload["on_behalf"] = on_behalf
    if action == Action.WAIVE_STATEMENT:
        complaint.statement = statement_rules.waived(dict(complaint.statement or {}), clock.now)
        payload.setdefault("cause", "lapsed")
        payload["due"] = complaint.statement["due"]
    if action == Action.REQUEST_EXTENSION:
        complaint.extension_pending = {
            "staff_id": actor.staff.id if actor.staff else None,
            "amount": int(payload["amount"]),
            "unit": payload.get("unit") or _extension_unit(profile),
            "reason": payload.get("reason", ""),
            "requested_at": _iso(clock.now),
        }
        _check_extension_amount(profile, complaint.extension_pending)
    if Effect.CANCEL_EXTENSION_REQUEST in effects or action == Action.DENY_EXTENSION:
        extra["extension_request"] = complaint.extension_pending
        complaint.extension_pending = None
    if action == Action.APPROVE_EXTENSION:
        pending = complaint.extension_pending or {}
        extra["extension_request"] = pending
        payload["extension"] = dict(pending)  # the request's amount and reason, on the event
        entry = complaint.deadlines.get("resolution")
        if entry is not None:
            entry["extension"] = {"amount": pending["amount"], "unit": pending["unit"]}
            recompute_stage(profile, complaint, "resolution", clock)
            extra["new_due"] = complaint.deadlines["resolution"]["due"]
        complaint.extensions_used += 1
        complaint.extension_pending = None
    if Effect.PAUSE_CLOCK in effects:
        complaint.paused_at = clock.now
    if Effect.RESUME_CLOCK in effects and complaint.paused_at is not None:
        pause = Pause(complaint.paused_at, clock.now)
        for stage in ACTIVE_STAGES.get(transition.to_state, ()):
            entry = complaint.deadlines.get(stage)
            if entry is None:
                continue
            if profile.clock.supplement_restarts and action == Action.SUPPLEMENT:
                # R4: the count starts again from the day after the material arrived (the day
                # of arrival, like a day of receipt, is not counted).
                entry["restarted_from"] = entry["start"]
                entry["start"] = _iso(clock.now)
                entry.pop("pauses", None)
            else:
                entry.setdefault("pauses", []).append([_iso(pause.start), _iso(pause.end)])
            recompute_stage(profile, complaint, stage, clock)
        complaint.paused_at = None
    if Effect.COMPUTE_DEADLINES in effects or transition.changes_state:
        for stage in ACTIVE_STAGES.get(transition.from_state, ()):
            if stage not in ACTIVE_STAGES.get(transition.to_state, ()):
                entry = complaint.deadlines.get(stage)
                if entry is not None:
                    entry["done"] = _iso(clock.now)
        if transition.to_state == State.REOPENED:
            complaint.deadlines.pop("resolution", None)
        start_stages(profile, complaint, transition.to_state, clock)
    if transition.to_state == State.CLOSED:
        complaint.closed_at = clock.now
    if action == Action.DISPUTE and transition.to_state == State.SUPERVISOR_REVISIT:
        # [reply] disputed_result = "supervisor_revisit": a supervisor owes the complainant a
        # revisit within the profile's limit (R19's 7 days by default), as after an unsatisfied
        # survey.
        limit = profile.revisit.supervisor_revisit_due if profile.revisit else None
        duration = limit.to_duration() if limit else Duration(7, "calendar_days")
        due = compute_due(clock.now, duration, clock.calendar, clock.tz).due
        complaint.alarm_state = {
            **(complaint.alarm_state or {}),
            "supervisor_revisit": {"start": _iso(clock.now), "due": _iso(due)},
        }
        extra["supervisor_revisit_due"] = _iso(due)
    if transition.from_state == State.SUPERVISOR_REVISIT and transition.changes_state:
        owed = (complaint.alarm_state or {}).get("supervisor_revisit")
        if isinstance(owed, dict) and not owed.get("done"):
            complaint.alarm_state = {
                **complaint.alarm_state,
                "supervisor_revisit": {**owed, "done": _iso(clock.now)},
            }
    return extra


async def _request_statement(
    complaint: Complaint,
    actor: Actor,
    payload: dict[str, Any],
    profile: Profile,
    clock: Clock,
    conn: BaseDBAsyncClient,
) -> None:
    """Ask the respondent: the linked staff member, else the person the handler names (by
    default the target as the complainant typed it)."""
    staff_id = complaint.target_staff_id  # type: ignore[attr-defined]
    respondent = await Staff.filter(id=staff_id).using_db(conn).first() if staff_id else None
    name = respondent.name if respondent else str(payload.get("respondent") or "").strip()
    name = name or (complaint.target_text or "").strip()
    if not name:
        raise ValueError("name the respondent whose statement is asked for")
    result = compute_due(
        clock.now,
        profile.statement.due.to_duration(),
        clock.calendar,
        clock.tz,
        office_hours=profile.clock_office_hours(),
        roll_to_working_day=profile.clock.roll_to_working_day,
    )
    complaint.statement = statement_rules.requested(
        respondent=name[:200],
        respondent_staff=respondent.id if respondent else None,
        requested_by=actor.staff.id if actor.staff else None,
        now=clock.now,
        due=result.due,
        provisional=result.provisional,
        profile=profile,
    )
    payload["respondent"] = name[:200]
    payload["due"] = complaint.statement["due"]


def apply_severity(
    profile: Profile,
    complaint: Complaint,
    severity: str | None,
    clock: Clock,
    *,
    automatic: bool = False,
) -> None:
    """Rate or raise `complaint`'s severity and recount what depends on it.

    `automatic`: one of the profile's own upgrade rules, which apply even where staff may not
    change the rating. Raises ValueError when the profile does not let severity change, or when
    `severity` would lower an existing rating (the seeds only ever upgrade: R7g 重大).
    Running stage deadlines are recounted from their own start under the new rating; a stage the
    new rating adds (the major complaint's manager notice) starts now.
    """
    if severity not in profile.severity_ids():
        raise KeyError(f"profile {profile.id!r} has no severity {severity!r}")
    if complaint.severity is not None and not (profile.severity_rules.raisable or automatic):
        raise ValueError(f"profile {profile.id!r} does not let the severity change once rated")
    if profile.severity_rank(severity) < profile.severity_rank(complaint.severity):
        raise ValueError("the severity may be raised, not lowered")
    complaint.severity = severity
    for stage, entry in list(complaint.deadlines.items()):
        if isinstance(entry, dict) and not entry.get("done"):
            recompute_stage(profile, complaint, stage, clock)
    for stage in ONCE_STAGES:
        if stage not in complaint.deadlines:
            entry = stage_deadline(profile, stage, complaint, clock.now, clock)
            if entry is not None:
                complaint.deadlines[stage] = entry


def _extension_unit(profile: Profile) -> str:
    if profile.extension is None:
        return "working_days"
    return profile.extension.max.unit


def _check_extension_amount(profile: Profile, pending: dict[str, Any]) -> None:
    if profile.extension is None:
        raise ValueError(f"profile {profile.id!r} provides for no extension")
    limit = profile.extension.max
    if pending["unit"] != limit.unit:
        raise ValueError(f"extension must be counted in {limit.unit}")
    if not 0 < pending["amount"] <= limit.amount:
        raise ValueError(f"an extension may add 1 to {limit.amount} {limit.unit}")


async def complaint_history(complaint: Complaint) -> list[tuple[str, str]]:
    """The state changes among the complaint's events, oldest first, as (from, to) pairs.

    Events that record something without moving the case (notes, identity views, delivery
    failures, a supplement nobody asked for) are not part of the chain `derive_state` checks.
    """
    rows = (
        await Event.filter(complaint=complaint).order_by("id").values_list("from_state", "to_state")
    )
    return [(a, b) for a, b in rows if a is not None and b is not None and a != b]


# -- mass matters ------------------------------------------------------------------------
#
# The detector proposes (scheduler.matters.propose_mass_matters); a supervisor confirms or
# dismisses the proposal, may take members out, and decides the group: one decision text,
# which each member gets as its own reply through the rule book's `decide_with_group` and the
# result notice, so each complainant is told (a written reply where the complaint was written)
# and surveyed on their own. Who may do any of it: `models.workflow.may_manage_matters`.


@dataclass
class GroupDecision:
    group: MatterGroup
    resolved: list[str] = field(default_factory=list)  # numbers resolved and told
    # Members whose state admits no decision now (waiting for material, already resolved,
    # withdrawn, ...): (number, state, the rule book's reason).
    not_resolved: list[tuple[str, str, str]] = field(default_factory=list)
    # Resolved members that are written complaints: their 书面答复 is to issue.
    written: list[str] = field(default_factory=list)


def _refuse_matters(actor: Actor, verb: str) -> None:
    if not may_manage_matters(actor.role):
        raise ActionRefused(
            Refusal(
                RefusalReason.ROLE_NOT_PERMITTED,
                f"only a supervisor or an admin may {verb} a group of complaints",
            )
        )


async def _lock_group(conn: BaseDBAsyncClient, group_id: int) -> MatterGroup:
    query = MatterGroup.filter(id=group_id).using_db(conn)
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update()
    group = await query.first()
    if group is None:
        raise LookupError(f"no group {group_id}")
    return group


async def _members(group: MatterGroup, conn: BaseDBAsyncClient) -> list[Complaint]:
    ids = (
        await MatterGroupMember.filter(group_id=group.id, removed_at__isnull=True)
        .using_db(conn)
        .order_by("complaint_id")
        .values_list("complaint_id", flat=True)
    )
    return await Complaint.filter(id__in=list(ids)).using_db(conn).order_by("id")


async def _note_members(
    members: list[Complaint],
    actor: Actor,
    action: str,
    payload: dict[str, Any],
    clock: Clock,
    conn: BaseDBAsyncClient,
) -> None:
    """One event per member (no change of state), so each timeline shows what the group did."""
    for member in members:
        await Event.create(
            complaint=member,
            actor_role=actor.role,
            actor_staff=actor.staff,
            action=action,
            from_state=member.state,
            to_state=member.state,
            payload=payload,
            created_at=clock.now,
            using_db=conn,
        )


async def propose_group(
    profile: Profile, complaint_ids: list[int], clock: Clock, conn: BaseDBAsyncClient
) -> MatterGroup:
    """Store the detector's proposal (the system's act); members join as proposed."""
    group = await MatterGroup.create(
        profile=profile.id, status=GroupStatus.PROPOSED, proposed_at=clock.now, using_db=conn
    )
    for complaint_id in sorted(complaint_ids):
        await MatterGroupMember.create(
            group=group, complaint_id=complaint_id, added_at=clock.now, using_db=conn
        )
    members = await Complaint.filter(id__in=complaint_ids).using_db(conn).order_by("id")
    await _note_members(
        members, Actor(Role.SYSTEM), "group_proposed", {"group_id": group.id}, clock, conn
    )
    return group


async def confirm_group(
    group_id: int, actor: Actor, *, clock: Clock, conn: BaseDBAsyncClient | None = None
) -> MatterGroup:
    """A supervisor confirms a proposed group: its members are one matter."""
    if conn is None:
        async with in_transaction() as tx:
            return await confirm_group(group_id, actor, clock=clock, conn=tx)
    _refuse_matters(actor, "confirm")
    group = await _lock_group(conn, group_id)
    if group.status != GroupStatus.PROPOSED:
        raise ValueError(f"group {group_id} is {group.status}, not proposed")
    group.status = GroupStatus.CONFIRMED
    group.reviewed_by = actor.staff
    group.reviewed_at = clock.now
    await group.save(using_db=conn)
    members = await _members(group, conn)
    await _note_members(members, actor, "group_confirmed", {"group_id": group.id}, clock, conn)
    return group


async def dismiss_group(
    group_id: int, actor: Actor, *, clock: Clock, conn: BaseDBAsyncClient | None = None
) -> MatterGroup:
    """A supervisor dismisses a proposed (or not yet decided) group: not one matter. Its
    members are not proposed together again."""
    if conn is None:
        async with in_transaction() as tx:
            return await dismiss_group(group_id, actor, clock=clock, conn=tx)
    _refuse_matters(actor, "dismiss")
    group = await _lock_group(conn, group_id)
    if group.status == GroupStatus.DISMISSED or group.decided_at is not None:
        raise ValueError(f"group {group_id} is dismissed or decided already")
    group.status = GroupStatus.DISMISSED
    group.reviewed_by = actor.staff
    group.reviewed_at = clock.now
    await group.save(using_db=conn)
    members = await _members(group, conn)
    await _note_members(members, actor, "group_dismissed", {"group_id": group.id}, clock, conn)
    return group


async def remove_from_group(
    group_id: int,
    complaint_id: int,
    actor: Actor,
    *,
    clock: Clock,
    conn: BaseDBAsyncClient | None = None,
) -> MatterGroup:
    """A supervisor takes one complaint out of a group (not the same matter after all)."""
    if conn is None:
        async with in_transaction() as tx:
            return await remove_from_group(group_id, complaint_id, actor, clock=clock, conn=tx)
    _refuse_matters(actor, "change")
    group = await _lock_group(conn, group_id)
    if group.status == GroupStatus.DISMISSED:
        raise ValueError(f"group {group_id} is dismissed")
    member = (
        await MatterGroupMember.filter(
            group_id=group.id, complaint_id=complaint_id, removed_at__isnull=True
        )
        .using_db(conn)
        .first()
    )
    if member is None:
        raise ValueError(f"complaint {complaint_id} is no member of group {group_id}")
    member.removed_at = clock.now
    member.removed_by = actor.staff
    await member.save(using_db=conn)
    complaint = await Complaint.get(id=complaint_id).using_db(conn)
    await _note_members([complaint], actor, "group_removed", {"group_id": group.id}, clock, conn)
    return group


async def decide_group(
    group_id: int,
    actor: Actor,
    decision_text: str,
    *,
    profile: Profile,
    clock: Clock,
    conn: BaseDBAsyncClient | None = None,
) -> GroupDecision:
    """One decision answers a confirmed group (R6 集中发生的同一投诉事项): each member still
    without a result is resolved with `decision_text` (`decide_with_group`) and the result is
    told to its own complainant (`notify_result`: their reply, their revisit and survey after,
    a written reply where the complaint was written). Members whose state admits no decision
    are reported in `not_resolved`, never skipped in silence. One transaction."""
    if conn is None:
        async with in_transaction() as tx:
            return await decide_group(
                group_id, actor, decision_text, profile=profile, clock=clock, conn=tx
            )
    _refuse_matters(actor, "decide")
    text = (decision_text or "").strip()
    if not text:
        raise ValueError("the group's decision text is required")
    group = await _lock_group(conn, group_id)
    if group.status != GroupStatus.CONFIRMED:
        raise ValueError(f"group {group_id} is {group.status}: only a confirmed group is decided")
    outcome = GroupDecision(group)
    payload = {"reply_text": text, "group_id": group.id}
    for member in await _members(group, conn):
        try:
            await act(
                member.id,
                Action.DECIDE_WITH_GROUP,
                actor,
                profile=profile,
                clock=clock,
                payload=payload,
                conn=conn,
            )
            told = await act(
                member.id, Action.NOTIFY_RESULT, actor, profile=profile, clock=clock, conn=conn
            )
        except ActionRefused as refused:
            outcome.not_resolved.append(
                (member.number, str(member.state), str(refused.refusal.reason_code))
            )
            continue
        outcome.resolved.append(member.number)
        if told.complaint.written:
            outcome.written.append(member.number)
    group.decision_text = text
    group.decided_by = actor.staff
    group.decided_at = clock.now
    await group.save(using_db=conn)
    return outcome
