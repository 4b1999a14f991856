"""The shell around the pure dialog engine: one incoming message, one database transaction.

Every channel adapter (web chat, Telegram, WeChat) hands its neutral `Incoming` to
`Conversation.handle` and sends back the `Outgoing` list it returns. Staff invites and chats
bound to a staff member go to the staff desk (bot.staff_desk); everybody else talks to the
citizen dialog. Per citizen message, atomically:

1. de-duplicate on (channel, message id) through ProcessedUpdate — a re-delivery changes nothing;
2. load (or create) the person's DialogSession row, locked on PostgreSQL;
3. load the person's latest complaints for self-service;
4. ask `handlers.dialog.handle` what to answer;
5. carry out its commands (file, supplement, withdraw, dispute, language) with models.actions;
6. store the new dialog state (optimistic version check) and commit.

Nothing about a conversation lives in memory, so another worker — or this one after a restart —
continues any conversation where it stopped. A SQLite "database is locked" or a lost race with
another worker retries the whole turn.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError
from tortoise.fields.data import JSON_DUMPS
from tortoise.models import Model
from tortoise.transactions import in_transaction

from bot import turn_store
from bot.attachments import attachment_ids, attachment_ref, max_attachment_bytes, store_attachment
from bot.logs import log_context
from bot.metrics import INBOUND_UPDATES, REPLY_SECONDS
from bot.replies import (
    Replies,
    SessionSave,
    StaleSession,
    answer_again,
    reclaim_unsent,
    renumbered,
    wall_clock,
    write_replies,
)
from bot.staff_desk import answer_staff_message, for_staff_desk, invite_code_in
from config.profiles import Profile
from config.settings import Settings
from handlers import dialog, lookup, selfservice, survey
from handlers.commands import (
    Command,
    Dispute,
    LinkComplaint,
    SetLanguage,
    SubmitComplaint,
    Supplement,
    Withdraw,
)
from handlers.dialog import (
    ComplaintSummary,
    DialogContext,
    DialogState,
    render_command_failed,
    render_disputed,
    render_submitted,
    render_supplemented,
    render_withdrawn,
)
from handlers.i18n import format_datetime, supported, translator
from handlers.messages import FileRef, Incoming, Outgoing
from models.actions import (
    UNREAD,
    ActionRefused,
    ActionResult,
    Actor,
    Clock,
    ComplaintNotFound,
    PendingNumber,
    Unread,
    act,
    complainant_promise,
    submit_complaint,
)
from models.db import in_dialect, select_models
from models.entities import (
    Attachment,
    Channel,
    Complainant,
    Complaint,
    DialogSession,
    Event,
    ProcessedUpdate,
)
from models.lookup import (
    HashedCode,
    Limits,
    check,
    follow,
    hashed_code,
    private_view,
)
from models.lookup import display_code as display
from models.numbering import example_number
from models.workflow import Action, RefusalReason, Role, State
from scheduler.calendar import WorkingCalendar
from scheduler.callbacks import link_chat
from scheduler.survey import add_survey_comment, record_survey_answer

log = logging.getLogger(__name__)


# Whether a turn's replies can start with one carried by the response to the platform's request.
Carry = Callable[[Sequence[Outgoing]], bool]
# What the quick turn answers when the engine files a complaint: the full turn does it.
_FILES = object()


class AlreadyHandled(Replies):
    """The answer to an update handled before: told apart for the metrics. Empty, except
    for its committed replies still unsent (claimed for the caller to send now)."""


# The person's complaints shown in self-service (newest first).
RECENT_COMPLAINTS = 20
# Attempts at one turn when SQLite is locked by another process or another worker won a race.
TURN_ATTEMPTS = 5
RETRY_PAUSE_SECONDS = 0.05
# Where the dialog state remembers that the next text is a survey comment (a complaint id).
SURVEY_COMMENT_KEY = "survey_comment"
# ProcessedUpdate.update_key is 128 characters; longer platform ids are hashed to fit.
UPDATE_KEY_LENGTH = 128
# How long a worker takes a chat it found bound to no staff member for a citizen's without
# asking the database again. An invite redeemed on another worker takes effect there at once
# and here after at most this long (one redeemed here takes effect here at once); disabling a
# staff member is never delayed (only "not staff" is remembered).
CITIZEN_CACHE_SECONDS = 30.0
CITIZEN_CACHE_SIZE = 50_000
# How long a worker reuses the dialog session it stored for a person's next step instead of
# reading it again (bot.turn_store: the write's version check catches any other writer), and
# for how many people at most.
SESSION_CACHE_SECONDS = 30.0
SESSION_CACHE_SIZE = 10_000
# A person's dialog session and complainant row, by their channel identity (a unique key).
_SAME_PERSON = '"channel" = ? AND "external_id" = ?'


class _StaleSession(Exception):
    """Another worker saved this person's dialog state after we loaded it: redo the turn."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _is_lock_error(exc: Exception) -> bool:
    return "locked" in str(exc).lower() or "busy" in str(exc).lower()


async def _take_sqlite_write_lock(conn: BaseDBAsyncClient) -> None:
    """Make the turn a writer from its first statement (what BEGIN IMMEDIATE would do).

    A deferred SQLite transaction that reads first cannot become a writer once another process
    has committed since its read: that fails at once, past any busy timeout. Writing first makes
    concurrent turns queue on the write lock (honouring the busy timeout) instead.
    """
    await conn.execute_query("UPDATE dialog_session SET version = version WHERE id < 0")


def _may_be_survey(incoming: Incoming, state: DialogState | None, lang: str) -> bool:
    """Whether the return-visit survey answers this message (`Conversation._survey`)."""
    if incoming.kind == "choice" and incoming.choice:
        return survey.handle_survey_choice(incoming.choice, lang) is not None
    return (
        incoming.kind == "text"
        and bool(incoming.text)
        and state is not None
        and SURVEY_COMMENT_KEY in state.scratch
    )


def update_key(message_id: str) -> str:
    if len(message_id) <= UPDATE_KEY_LENGTH:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()


class Conversation:
    """Binds the dialog engine to the database; one instance per worker, shared by channels."""

    def __init__(
        self,
        settings: Settings,
        profile: Profile,
        calendar: WorkingCalendar,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.profile = profile
        self.calendar = calendar
        self.tz = settings.tz
        self._now = now
        # Channels whose adapters send a turn's replies from the outbox (bot.replies).
        self.outbox_channels: set[Channel] = set()
        # Of those, the channels whose platform takes the answer in its request's response and
        # asks again when it got none (WeChat), with how each shapes a turn's replies into rows.
        self._in_response: dict[Channel, Callable[[list[Outgoing]], list[Outgoing]] | None] = {}
        # (channel, user id) → monotonic instant until which the chat counts as a citizen's.
        self._citizens: dict[tuple[Channel, str], float] = {}
        # (channel, user id) → the dialog session as this worker last stored it, and until when
        # (monotonic) it may stand in for a read (oldest first, for the size bound).
        self._sessions: dict[tuple[Channel, str], tuple[float, turn_store.Snapshot]] = {}

    def keep_replies_in_outbox(
        self,
        channel: Channel | str,
        *,
        in_response: bool = False,
        shape: Callable[[list[Outgoing]], list[Outgoing]] | None = None,
    ) -> None:
        """Write `channel`'s replies as outbox rows committed with the turn: its adapter then
        sends `Replies.claimed` (bot.replies.deliver) instead of the plain list.

        `in_response`: the rows are meant for the answer to the platform's request, and a
        redelivery gets them again (bot.replies.answer_again); `shape` turns the turn's replies
        into the rows to write (e.g. cut to what one response can carry)."""
        self.outbox_channels.add(Channel(channel))
        if in_response:
            self._in_response[Channel(channel)] = shape

    def now(self) -> datetime:
        """The current instant as this conversation counts it (aware UTC)."""
        return self._now()

    # -- the turn ----------------------------------------------------------------------------

    async def handle(
        self,
        incoming: Incoming,
        *,
        chat_id: str | None = None,
        carry: Carry | None = None,
    ) -> Replies:
        """Answer one message; a message id seen before on this channel returns [] (with its
        committed replies still unsent, on an outbox channel). `chat_id`: where the replies go
        (default: the person's id, a private chat). `carry`: on an outbox channel, whether the
        turn's first reply can go in the response to the platform's request (then it is
        committed as sent and returned as `Replies.answer`).

        Counted and timed for /metrics; everything logged inside names the update.
        """
        channel = Channel(incoming.channel)
        started = time.perf_counter()
        outcome = "failed"
        try:
            update = f"{channel}:{incoming.message_id}" if incoming.message_id else None
            with log_context(update=update):
                replies = await self._handle(channel, incoming, chat_id or incoming.user_id, carry)
            outcome = "duplicate" if isinstance(replies, AlreadyHandled) else "answered"
            return replies
        finally:
            INBOUND_UPDATES.labels(channel=str(channel), outcome=outcome).inc()
            REPLY_SECONDS.labels(channel=str(channel)).observe(time.perf_counter() - started)

    async def _handle(
        self, channel: Channel, incoming: Incoming, chat_id: str, carry: Carry | None
    ) -> Replies:
        if incoming.received_at is None:
            incoming = replace(incoming, received_at=self._now())
        key = update_key(incoming.message_id) if incoming.message_id else None
        for attempt in range(1, TURN_ATTEMPTS + 1):
            last = attempt == TURN_ATTEMPTS
            try:
                return await self._answer(channel, incoming, key, chat_id, carry)
            except IntegrityError:
                # A concurrent delivery of the same update committed first, or two workers
                # created the same person's session at once (then the retry finds it).
                if key is not None and await self._processed(channel, key):
                    return await self._redelivered(channel, key, chat_id)
                if last:
                    raise
            except _StaleSession:
                if last:
                    raise
            except (OperationalError, TransactionManagementError) as exc:
                if last or not _is_lock_error(exc):
                    raise
                log.info("database busy; retrying turn for %s:%s", channel, incoming.user_id)
            await asyncio.sleep(RETRY_PAUSE_SECONDS * attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _answer(
        self,
        channel: Channel,
        incoming: Incoming,
        key: str | None,
        chat_id: str,
        carry: Carry | None,
    ) -> Replies:
        # A citizen's one duplicate check is the turn's own (its read of the session with the
        # update id, or its insert of the update id under a unique key).
        if self._known_citizen(channel, incoming):
            return await self._turn(channel, incoming, key, chat_id, carry)
        desk = await for_staff_desk(incoming)
        if desk is None:
            self._remember_citizen(channel, incoming)
            return await self._turn(channel, incoming, key, chat_id, carry)
        # The staff desk keeps no update ids of its own: checked before it runs.
        if key is not None and await self._processed(channel, key):
            return await self._redelivered(channel, key, chat_id)
        clock = Clock(self.calendar, self.tz, self._now())
        staff_replies = await answer_staff_message(
            incoming, desk, profile=self.profile, clock=clock
        )
        self._citizens.pop((channel, incoming.user_id), None)
        if key is not None:
            await self._remember_update(channel, key)
        return Replies(staff_replies)

    def _known_citizen(self, channel: Channel, incoming: Incoming) -> bool:
        until = self._citizens.get((channel, incoming.user_id))
        if until is None or invite_code_in(incoming) is not None:
            return False
        if until < time.monotonic():
            del self._citizens[(channel, incoming.user_id)]
            return False
        return True

    def _remember_citizen(self, channel: Channel, incoming: Incoming) -> None:
        if len(self._citizens) >= CITIZEN_CACHE_SIZE:
            self._citizens.clear()  # a crude bound; refilled one lookup per chat
        self._citizens[(channel, incoming.user_id)] = time.monotonic() + CITIZEN_CACHE_SECONDS

    async def _redelivered(self, channel: Channel, key: str, chat_id: str) -> AlreadyHandled:
        """A redelivery never re-runs its turn; on an outbox channel it hands back the turn's
        committed replies that nobody has sent yet (claimed, for the caller to send now)."""
        if channel not in self.outbox_channels:
            return AlreadyHandled()
        again = answer_again if channel in self._in_response else reclaim_unsent
        found = await again(channel=channel, chat_id=chat_id, update_key=key, now=self._now())
        return AlreadyHandled(
            found,
            claimed=found.claimed,
            queued=found.queued,
            in_outbox=found.in_outbox,
            answer=found.answer,
            answer_id=found.answer_id,
        )

    async def _remember_update(self, channel: Channel, key: str) -> None:
        """Record a staff update as handled (the staff desk keeps its own transaction).

        A concurrent delivery of the same update may have recorded it first; this answer stands
        (a repeated button press is refused as stale by the staff desk's case version).
        """
        try:
            await ProcessedUpdate.create(channel=channel, update_key=key)
        except IntegrityError:
            log.info("staff update %s:%s was delivered twice at once", channel, key)

    async def _turn(
        self,
        channel: Channel,
        incoming: Incoming,
        key: str | None,
        chat_id: str,
        carry: Carry | None = None,
    ) -> Replies:
        # Channels answering in the HTTP response (WeChat's passive reply) keep the full turn:
        # their reply rows carry `in_response`, which the short write does not set.
        if key is not None and channel in self.outbox_channels and channel not in self._in_response:
            quick = await self._quick_turn(channel, incoming, key, chat_id, carry)
            if isinstance(quick, Replies):
                return quick
            if quick is _FILES:
                # Hashed before the full turn's transaction: on SQLite that holds the one write
                # lock, on PostgreSQL the filing then holds the month's number lock.
                code = await hashed_code()
                return await self._full_turn(channel, incoming, key, chat_id, carry, code)
        return await self._full_turn(channel, incoming, key, chat_id, carry)

    async def _quick_turn(
        self,
        channel: Channel,
        incoming: Incoming,
        key: str,
        chat_id: str,
        carry: Carry | None = None,
    ) -> Replies | object | None:
        """An ordinary step in two statements (bot.turn_store): read, the engine, one atomic
        write (a person's first message creates the session row first). None when the step
        needs the full turn: a survey message, or the engine asked for a command (self-service,
        a language change); _FILES when one of those commands files a complaint."""
        now = self._now()
        person = (channel, incoming.user_id)
        until, snapshot = self._sessions.pop(person, (0.0, None))
        if snapshot is None or until < time.monotonic():
            snapshot = await turn_store.load(channel, incoming.user_id, key)
        if snapshot.seen:
            return await self._redelivered(channel, key, chat_id)
        if snapshot.session_id is None:  # a person's first message
            snapshot = await turn_store.open_session(channel, incoming.user_id, snapshot, now)
        state = DialogState.from_json(snapshot.state) if snapshot.state else None
        if state is None and snapshot.person_id is not None:
            state = DialogState(language=supported(snapshot.person_language))
        lang = supported(state.language if state else None)
        if _may_be_survey(incoming, state, lang):
            return None
        summaries = (
            await self._summaries(snapshot.person_id, lang, None)
            if snapshot.person_id is not None
            else []
        )
        ctx = DialogContext.from_settings(self.settings, self.profile, now, summaries)
        result = dialog.handle(state, incoming, ctx)
        if result.commands:
            return _FILES if any(isinstance(c, SubmitComplaint) for c in result.commands) else None
        try:
            replies, stored = await turn_store.save(
                channel=channel,
                chat_id=chat_id,
                snapshot=snapshot,
                state=result.state.to_json(),
                key=key,
                replies=result.replies,
                now=now,
                answer_first=carry is not None and carry(result.replies),
            )
        except StaleSession as stale:
            raise _StaleSession(str(stale)) from stale  # the retry reads the session afresh
        self._remember_session(person, stored)
        return replies

    def _remember_session(self, person: tuple[Channel, str], snapshot: turn_store.Snapshot) -> None:
        """Keep the session as this worker stored it, for the person's next step: a read saved.
        Never trusted beyond the write's version check (another worker's turn in between fails
        it and the step is redone from the database); forgotten after SESSION_CACHE_SECONDS."""
        while len(self._sessions) >= SESSION_CACHE_SIZE:
            self._sessions.pop(next(iter(self._sessions)))
        self._sessions[person] = (time.monotonic() + SESSION_CACHE_SECONDS, snapshot)

    async def _full_turn(
        self,
        channel: Channel,
        incoming: Incoming,
        key: str | None,
        chat_id: str,
        carry: Carry | None = None,
        code: HashedCode | None = None,
    ) -> Replies:
        """The turn in one transaction, for whatever the quick one cannot do. `code`: the access
        code for a complaint this turn files, hashed beforehand."""
        self._sessions.pop((channel, incoming.user_id), None)  # this turn changes it
        now = self._now()
        async with in_transaction() as conn:
            if conn.capabilities.dialect == "postgres":
                # One round trip: the update id, the session (locked), the person.
                session, person = await _open_turn_postgres(channel, incoming.user_id, key, conn)
            else:
                if key is not None:
                    # The turn's first statement is a write (on SQLite that takes the write
                    # lock, as BEGIN IMMEDIATE would); a concurrent delivery that committed
                    # first makes it a unique violation.
                    await conn.execute_query(
                        turn_store.RECORD_UPDATE, [channel.value, key, wall_clock()]
                    )
                else:
                    await _take_sqlite_write_lock(conn)
                session = await self._session(channel, incoming.user_id, conn)
                person = await self._person(channel, incoming.user_id, conn)
            state = DialogState.from_json(session.state) if session.state else None
            if state is None and person is not None:
                state = DialogState(language=supported(person.language))  # a known person
            lang = supported(state.language if state else None)
            summaries = await self._summaries(person.id, lang, conn) if person else []
            survey_turn = await self._survey(incoming, state, person, lang, now, conn)
            if survey_turn is not None:
                survey_replies, survey_state = survey_turn
                await self._save_session(session, survey_state, now, conn)
                return await self._keep(conn, channel, chat_id, key, survey_replies, now, carry)
            ctx = DialogContext.from_settings(self.settings, self.profile, now, summaries)
            result = dialog.handle(state, incoming, ctx)
            replies = list(result.replies)
            lang = supported(result.state.language)
            clock = Clock(self.calendar, self.tz, now)
            # PostgreSQL stores the state with the replies, in their statement (_keep), after
            # the commands (linking changes it: it asks again by it). SQLite stores it first
            # where no command changes it.
            postgres = conn.capabilities.dialect == "postgres"
            saved_first = not postgres and not any(
                isinstance(c, LinkComplaint) for c in result.commands
            )
            if saved_first:
                await self._save_session(session, result.state, now, conn)
            # A filing here takes its number last, after its replies are written (PostgreSQL:
            # the month's number lock is then held over one statement and the COMMIT).
            numbering: list[PendingNumber] | None = (
                [] if conn.capabilities.dialect == "postgres" else None
            )
            for command in result.commands:
                if isinstance(command, lookup.FindComplaint):
                    replies += await self._find(command, channel, incoming, lang, now, conn)
                    continue
                if isinstance(command, LinkComplaint):
                    replies += await self._link(
                        command, channel, incoming, result.state, clock, conn
                    )
                    continue
                replies += await self._execute(
                    command, channel, incoming, lang, clock, conn, code, person, numbering
                )
            unsaved = None if saved_first else (session, result.state)
            kept = await self._keep(conn, channel, chat_id, key, replies, now, carry, unsaved)
            for pending in numbering or ():
                provisional = pending.provisional
                number = await pending.take(conn, chat=(channel.value, chat_id))
                kept = renumbered(kept, provisional, number)
            return kept

    async def _keep(
        self,
        conn: BaseDBAsyncClient,
        channel: Channel,
        chat_id: str,
        key: str | None,
        replies: list[Outgoing],
        now: datetime,
        carry: Carry | None = None,
        unsaved: tuple[DialogSession, DialogState] | None = None,
    ) -> Replies:
        """The replies, written to the outbox inside the turn's transaction on outbox channels
        (a turn without an update id cannot be recognised again, so it has nothing to resend).
        `unsaved`: the session and the state to store too — on PostgreSQL in the replies'
        statement (one round trip fewer), else by a statement of its own first."""
        kept = key is not None and channel in self.outbox_channels
        if kept:
            in_response = channel in self._in_response
            shape = self._in_response.get(channel)
            replies = shape(replies) if shape else replies
        together = kept and bool(replies) and conn.capabilities.dialect == "postgres"
        if unsaved is not None and not together:
            await self._save_session(unsaved[0], unsaved[1], now, conn)
        if not kept:
            return Replies(replies)
        assert key is not None
        saving = None
        if unsaved is not None and together:
            session, state = unsaved
            saving = SessionSave(session.id, session.version, JSON_DUMPS(state.to_json()))
        try:
            return await write_replies(
                conn,
                channel=channel,
                chat_id=chat_id,
                update_key=key,
                replies=replies,
                now=now,
                in_response=in_response,
                answer_first=not in_response and carry is not None and carry(replies),
                session=saving,
            )
        except StaleSession as stale:
            raise _StaleSession(str(stale)) from stale

    async def _survey(
        self,
        incoming: Incoming,
        state: DialogState | None,
        person: Complainant | None,
        lang: str,
        now: datetime,
        conn: BaseDBAsyncClient,
    ) -> tuple[list[Outgoing], DialogState] | None:
        """The return-visit survey: its buttons carry their own state (handlers.survey), and
        only the optional comment needs `survey_comment` kept in the dialog state. None: not a
        survey message, the dialog engine answers it."""
        state = state.copy() if state is not None else DialogState(language=lang)
        awaiting = state.scratch.pop(SURVEY_COMMENT_KEY, None)
        turn = None
        if incoming.kind == "choice" and incoming.choice:
            turn = survey.handle_survey_choice(incoming.choice, lang)
        elif awaiting is not None and incoming.kind == "text" and incoming.text:
            turn = survey.handle_survey_comment(int(awaiting), incoming.text, lang)
        if turn is None:
            return None
        if person is None:
            return [survey.render_survey_refused("not_open", lang)], state
        for command in turn.commands:
            if isinstance(command, survey.SurveyAnswer):
                outcome = await record_survey_answer(
                    command.complaint_id,
                    command.result_score,
                    command.attitude_score,
                    None,
                    now,
                    self.profile,
                    complainant_id=person.id,
                    conn=conn,
                )
                if outcome.status in ("not_open", "already_answered"):
                    return [survey.render_survey_refused(outcome.status, lang)], state
                told = survey.render_survey_outcome(
                    outcome.status,
                    outcome.number or "",
                    format_datetime(outcome.due, lang, self.tz) if outcome.due else None,
                    lang,
                )
                if told is not None:
                    turn.replies.insert(0, told)
            else:
                await add_survey_comment(
                    command.complaint_id, command.comment, complainant_id=person.id, conn=conn
                )
        if turn.awaiting_comment is not None:
            state.scratch[SURVEY_COMMENT_KEY] = turn.awaiting_comment
        state.updated_at = now.isoformat()
        return turn.replies, state

    async def _processed(
        self, channel: Channel, key: str, conn: BaseDBAsyncClient | None = None
    ) -> bool:
        return await ProcessedUpdate.filter(channel=channel, update_key=key).using_db(conn).exists()

    async def _session(
        self, channel: Channel, user_id: str, conn: BaseDBAsyncClient
    ) -> DialogSession:
        found = await select_models(
            DialogSession, conn, _SAME_PERSON, [channel.value, user_id], tail=" LIMIT 1"
        )
        return found[0] if found else await _new_session(channel, user_id, conn)

    async def _save_session(
        self, session: DialogSession, state: DialogState, now: datetime, conn: BaseDBAsyncClient
    ) -> None:
        # The version check catches a writer the row lock cannot (SQLite across processes).
        dialect = conn.capabilities.dialect
        sql = turn_store.SAVE_SESSION_PG if dialect == "postgres" else turn_store.SAVE_SESSION
        saved, _ = await conn.execute_query(
            in_dialect(sql, dialect),
            [JSON_DUMPS(state.to_json()), now.astimezone(UTC), session.id, session.version],
        )
        if saved != 1:
            raise _StaleSession(f"dialog session {session.id} changed under us")

    async def _person(
        self, channel: Channel, user_id: str, conn: BaseDBAsyncClient
    ) -> Complainant | None:
        found = await select_models(
            Complainant, conn, _SAME_PERSON, [channel.value, user_id], tail=" LIMIT 1"
        )
        return found[0] if found else None

    # -- what the person has filed -----------------------------------------------------------

    async def _summaries(
        self, person_id: int, lang: str, conn: BaseDBAsyncClient | None
    ) -> list[ComplaintSummary]:
        complaints = (
            await Complaint.filter(complainant_id=person_id)
            .using_db(conn)
            .order_by("-submitted_at", "-id")
            .limit(RECENT_COMPLAINTS)
        )
        if not complaints:
            return []
        events = (
            await Event.filter(complaint_id__in=[c.id for c in complaints])
            .using_db(conn)
            .order_by("id")
        )
        _ = translator(lang)
        timelines: dict[int, list[tuple[datetime, str]]] = {c.id: [] for c in complaints}
        for event in events:
            what = self._timeline_entry(event, _)
            if what is not None:
                timelines[event.complaint_id].append((event.created_at, what))  # type: ignore[attr-defined]
        return [
            ComplaintSummary(
                number=c.number,
                state=str(c.state),
                category_label=self._category_label(c, lang),
                next_deadline=c.next_due_at,
                provisional=c.deadline_provisional,
                submitted_at=c.submitted_at or c.created_at,
                timeline=tuple(timelines[c.id]),
            )
            for c in complaints
        ]

    @staticmethod
    def _timeline_entry(event: Event, _: Callable[[str], str]) -> str | None:
        """What the complainant sees of an event: state changes and their own additions.

        Staff notes and other internal steps stay internal.
        """
        if event.from_state != event.to_state and event.to_state:
            return selfservice.state_label(_, event.to_state)
        if event.actor_role == Role.COMPLAINANT and event.action == Action.SUPPLEMENT:
            return _("Add information")
        return None

    def _category_label(self, complaint: Complaint, lang: str) -> str:
        if not complaint.category:
            return "—"
        try:
            return self.profile.label("category", complaint.category, lang)
        except KeyError:
            return complaint.category  # filed under a profile since changed

    # -- the engine's commands ---------------------------------------------------------------

    async def _execute(
        self,
        command: Command,
        channel: Channel,
        incoming: Incoming,
        lang: str,
        clock: Clock,
        conn: BaseDBAsyncClient,
        code: HashedCode | None = None,
        person: Complainant | Unread | None = UNREAD,
        numbering: list[PendingNumber] | None = None,
    ) -> list[Outgoing]:
        """`person`: the complainant's row as the turn read it (None: they have none).
        `numbering`: a filing's number is left to the caller (see `_submit`)."""
        if isinstance(command, SubmitComplaint):
            return await self._submit(
                command, channel, incoming.user_id, clock, conn, code, person, numbering
            )
        if isinstance(command, SetLanguage):
            await (
                Complainant.filter(channel=channel, external_id=incoming.user_id)
                .using_db(conn)
                .update(language=command.lang)
            )
            return []
        # Self-service on an existing complaint: a refusal is told, the dialog goes on.
        if isinstance(person, Unread):
            person = await self._person(channel, incoming.user_id, conn)
        try:
            if isinstance(command, Supplement):
                return await self._supplement(command, channel, person, lang, clock, conn)
            if isinstance(command, Withdraw):
                complaint = await self._own_complaint(command.number, person, conn)
                await self._act(complaint, Action.WITHDRAW, person, clock, {}, conn)
                return render_withdrawn(command.number, lang)
            if isinstance(command, Dispute):
                complaint = await self._own_complaint(command.number, person, conn)
                payload = {"reason": command.reason}
                done = await self._act(complaint, Action.DISPUTE, person, clock, payload, conn)
                owed = done.extra.get("supervisor_revisit_due")  # [reply] disputed_result
                due = format_datetime(datetime.fromisoformat(owed), lang, self.tz) if owed else None
                return render_disputed(command.number, lang, supervisor_due=due)
        except ComplaintNotFound:
            return render_command_failed("not_found", lang)
        except ActionRefused as refused:
            reason = refused.refusal.reason_code
            code = "invalid_state" if reason == RefusalReason.ILLEGAL_STATE else "not_allowed"
            return render_command_failed(code, lang)
        raise TypeError(f"unknown dialog command {command!r}")

    async def _submit(
        self,
        command: SubmitComplaint,
        channel: Channel,
        user_id: str,
        clock: Clock,
        conn: BaseDBAsyncClient,
        code: HashedCode | None = None,
        person: Complainant | Unread | None = UNREAD,
        numbering: list[PendingNumber] | None = None,
    ) -> list[Outgoing]:
        """File the complaint; its receipt. With `numbering`, the complaint is filed under its
        provisional number, which the receipt carries until the caller takes the number
        (models.actions.PendingNumber) and rewrites it (bot.replies.renumbered)."""
        ids = await self._unlinked_attachments(command.answers.get("photos"), channel, conn)
        access_code = code or await hashed_code()  # before the number's lock (submit_complaint)
        complaint = await submit_complaint(
            profile=self.profile,
            channel=channel,
            external_id=user_id,
            answers=command.answers,
            clock=clock,
            language=supported(command.language),
            attachment_ids=ids,
            conn=conn,
            complainant=person,
            access=access_code,  # stored before the number, the lock's start
            numbering=numbering,
        )
        lang = supported(command.language)
        person = complaint.complainant  # the row submit_complaint read or created
        if person.language != lang:  # one created by this filing already speaks it
            await Complainant.filter(id=person.id).using_db(conn).update(language=lang)
        promise = complainant_promise(complaint)
        stage, due, provisional = promise if promise is not None else (None, None, False)
        entry = (complaint.deadlines or {}).get(stage or "") or {}
        term = (int(entry["amount"]), str(entry["unit"])) if "amount" in entry else None
        receipt = render_submitted(
            complaint.number, due, provisional, lang, self.tz, stage, term=term, now=clock.now
        )
        # The receipt's access code and progress link: finding it again from any device.
        code = access_code.code
        link = lookup.progress_link(self.settings.public_url, complaint.number, code)
        access = lookup.render_access(complaint.number, display(code), link, lang)
        # The receipt's buttons (the menu) move to the last message, where the page offers them.
        last = receipt[-1]
        access = replace(access, choices=last.choices, remove_keyboard=last.remove_keyboard)
        return [*receipt[:-1], replace(last, choices=()), access]

    def lookup_limits(self) -> Limits:
        return Limits(
            per_address=self.settings.lookup_per_address,
            per_number=self.settings.lookup_per_number,
            window=timedelta(minutes=self.settings.lookup_window_minutes),
        )

    async def _find(
        self,
        command: lookup.FindComplaint,
        channel: Channel,
        incoming: Incoming,
        lang: str,
        now: datetime,
        conn: BaseDBAsyncClient,
    ) -> list[Outgoing]:
        """/find: the number and the phone or code, checked (rate-limited per chat and per
        number); a match shows the case here and puts it on this chat's list."""
        outcome = await check(
            number=command.number,
            phone=command.phone,
            code=command.code,
            address=f"{channel}:{incoming.user_id}",
            now=now,
            limits=self.lookup_limits(),
            conn=conn,
        )
        if outcome.status == "limited":
            return lookup.render_limited(lang, -(-outcome.retry_after // 60))
        if outcome.status != "ok" or outcome.complaint is None:
            return lookup.render_not_found(lang)
        await follow(channel, incoming.user_id, outcome.complaint, now, conn)
        view = await private_view(outcome.complaint, conn)
        link = lookup.progress_link(self.settings.public_url, command.number)
        return lookup.render_found(view, lang, self.tz, link)

    async def _link(
        self,
        command: LinkComplaint,
        channel: Channel,
        incoming: Incoming,
        state: DialogState,
        clock: Clock,
        conn: BaseDBAsyncClient,
    ) -> list[Outgoing]:
        """Link a complaint recorded on the desk to this chat (scheduler.callbacks.link_chat);
        a wrong pair asks again, a few times, in the same flow."""
        lang = supported(state.language)
        _ = translator(lang)
        outcome = await link_chat(
            channel=channel,
            external_id=incoming.user_id,
            chat_id=None,
            number=command.number,
            phone=command.phone,
            language=lang,
            clock=clock,
            conn=conn,
        )
        if outcome.status == "linked":
            text = _(
                "Complaint {number} is now followed in this chat: we will tell you here how it "
                "goes. Send /status to see it."
            ).format(number=outcome.number)
            return [Outgoing(text)]
        text, again = selfservice.render_link_failed(command.tries, _)
        if again:
            state.flow, state.step = "link", "number"
            state.scratch = {"tries": command.tries + 1}
            example = example_number(self.profile.numbering.format)
            text += "\n\n" + _(
                "Please send the complaint number you were given (for example {example})."
            ).format(example=example)
        return [Outgoing(text)]

    async def _supplement(
        self,
        command: Supplement,
        channel: Channel,
        person: Complainant | None,
        lang: str,
        clock: Clock,
        conn: BaseDBAsyncClient,
    ) -> list[Outgoing]:
        complaint = await self._own_complaint(command.number, person, conn)
        ids = await self._unlinked_attachments(list(command.files), channel, conn)
        payload: dict[str, Any] = {"attachment_ids": ids}
        if command.text:
            payload["text"] = command.text
        state = State(complaint.state)
        if state == State.WAITING_FOR_COMPLAINANT:
            # The material asked for: the case goes back in progress and its clock resumes.
            await self._act(complaint, Action.SUPPLEMENT, person, clock, payload, conn)
            resumed = True
        elif state in selfservice.OPEN_STATES:
            # Nobody asked, so nothing moves: the rule book gives the complainant no note
            # action; the addition is kept as a supplement event that leaves the state as is.
            await Event.create(
                complaint=complaint,
                actor_role=Role.COMPLAINANT,
                action=str(Action.SUPPLEMENT),
                from_state=state,
                to_state=state,
                payload={**payload, "unsolicited": True},
                created_at=clock.now,
                using_db=conn,
            )
            resumed = False
        else:
            return render_command_failed("invalid_state", lang)
        if ids:
            await Attachment.filter(id__in=ids).using_db(conn).update(complaint_id=complaint.id)
        return render_supplemented(command.number, resumed, lang)

    async def _act(
        self,
        complaint: Complaint,
        action: Action,
        person: Complainant | None,
        clock: Clock,
        payload: dict[str, Any],
        conn: BaseDBAsyncClient,
    ) -> ActionResult:
        actor = Actor(Role.COMPLAINANT, complainant=person)
        profile = self.profile
        return await act(
            complaint.id, action, actor, profile=profile, clock=clock, payload=payload, conn=conn
        )

    async def _own_complaint(
        self, number: str, person: Complainant | None, conn: BaseDBAsyncClient
    ) -> Complaint:
        """The person's complaint by number; someone else's is "not found", never revealed."""
        complaint = None
        if person is not None:
            complaint = (
                await Complaint.filter(number=number, complainant_id=person.id)
                .using_db(conn)
                .first()
            )
        if complaint is None:
            raise ComplaintNotFound(f"no complaint {number!r} of this person")
        return complaint

    async def _unlinked_attachments(
        self, files: Sequence[Any] | None, channel: Channel, conn: BaseDBAsyncClient
    ) -> list[int]:
        """Stored files named in the engine's file records that no complaint has yet."""
        wanted = attachment_ids(list(files or []))
        if not wanted:
            return []
        found = set(
            await Attachment.filter(id__in=wanted, channel=channel, complaint_id=None)
            .using_db(conn)
            .values_list("id", flat=True)
        )
        return [i for i in wanted if i in found]

    # -- files -------------------------------------------------------------------------------

    async def store_file(self, channel: Channel, file: FileRef) -> FileRef:
        """Store a downloaded photo or file; the returned FileRef names it "att:<id>".

        Raises `bot.attachments.AttachmentTooLarge` over `max_photo_mb` (nothing is written);
        adapters then pass the person's message on with its size so the dialog explains.
        """
        attachment = await store_attachment(
            Channel(channel),
            file,
            max_bytes=max_attachment_bytes(self.settings.max_photo_mb),
        )
        return attachment_ref(attachment)

    # -- for adapters ------------------------------------------------------------------------

    def failure_reply(self, lang: str | None = None) -> list[Outgoing]:
        """What to say when a turn failed unexpectedly (it was rolled back: nothing is lost)."""
        return render_command_failed("error", supported(lang or self.settings.language))


async def _new_session(channel: Channel, user_id: str, conn: BaseDBAsyncClient) -> DialogSession:
    return await DialogSession.create(
        channel=channel, external_id=user_id, state={}, version=0, using_db=conn
    )


def _prefixed(model: type[Model], alias: str) -> str:
    """`model`'s columns as `alias`.col AS alias_col."""
    columns = model._meta.fields_db_projection.values()
    return ", ".join(f'{alias}."{c}" AS "{alias}_{c}"' for c in columns)


@lru_cache(maxsize=1)
def _open_turn_sql() -> str:
    # The session's lock is taken in a sub-select: FOR UPDATE cannot reach the nullable side
    # of an outer join. The update id's INSERT runs though nothing reads it (PostgreSQL runs
    # every data-modifying CTE); a concurrent delivery that committed first makes it a unique
    # violation.
    return f"""
WITH seen AS (
    INSERT INTO processed_update (channel, update_key, created_at)
    SELECT $1, $3::text, $4 WHERE $3::text IS NOT NULL
)
SELECT {_prefixed(DialogSession, "s")}, {_prefixed(Complainant, "c")}
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT * FROM dialog_session WHERE channel = $1 AND external_id = $2 LIMIT 1 FOR UPDATE
) AS s ON true
LEFT JOIN complainant AS c ON c.channel = $1 AND c.external_id = $2
"""


def _part(row: dict[str, Any], alias: str) -> dict[str, Any]:
    start = len(alias) + 1
    return {k[start:]: v for k, v in row.items() if k.startswith(alias + "_")}


async def _open_turn_postgres(
    channel: Channel, user_id: str, key: str | None, conn: BaseDBAsyncClient
) -> tuple[DialogSession, Complainant | None]:
    """A full turn's first statement on PostgreSQL: its update id recorded (when it has one),
    the person's dialog session read and locked (two workers with messages from the same
    person take turns on it), their complainant row read. Creates the session if missing."""
    _, rows = await conn.execute_query(
        _open_turn_sql(), [channel.value, user_id, key, wall_clock()]
    )
    row = dict(rows[0])
    session_row, person_row = _part(row, "s"), _part(row, "c")
    person = Complainant._init_from_db(**person_row) if person_row["id"] is not None else None
    if session_row["id"] is None:
        return await _new_session(channel, user_id, conn), person
    return DialogSession._init_from_db(**session_row), person
