"""The staff desk shell: one staff message → handlers.staff → models.actions.act, atomically.

    replies = await handle_staff_message(incoming, profile=profile, clock=clock)

Call it for every incoming message *before* the citizen dialog: it redeems staff invites
("/start inv_..." deep links, or the code sent as text on WeChat) and answers the chats bound
to an active staff member. It returns None for everybody else, so the caller passes the
message on to the citizen dialog.

For a staff member, one transaction holds: the dialog state (DialogSession, keyed
"staff:<id>" so it follows the person, not the chat), the case card shown (and its
viewed_identity audit event), every action run through models.actions.act with its event and
outbox rows. A worker that loses the optimistic race on the dialog state retries the whole
turn. The replies are returned for the adapter to send as the answer to this message.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from bot.attachments import attachment_ids, max_attachment_bytes
from config.profiles import Profile
from config.settings import get_settings
from handlers.i18n import normalise_language, supported
from handlers.messages import Incoming, Outgoing
from handlers.staff import (
    STALE,
    CaseCard,
    DepartmentOption,
    HandlerOption,
    StaffAct,
    StaffContext,
    StaffMember,
    complaint_in_question,
    handle,
    render_done,
    render_invite_refusal,
    render_refused,
    render_welcome,
    wants_case_list,
)
from handlers.turn import DialogState
from models.actions import ActionRefused, Actor, Clock, act
from models.entities import Attachment, Channel, Complaint, Department, DialogSession, Staff
from models.notifications import build_card, case_version, desk_cases, record_identity_view
from models.staffing import looks_like_invite, redeem_invite, staff_for_chat
from models.workflow import Action, Role

ATTEMPTS = 3


class _Conflict(Exception):
    """Another worker stored this person's dialog state first; run the turn again."""


def invite_code_in(incoming: Incoming) -> str | None:
    """The invite code a message carries: a /start payload, or the bare code as text."""
    if incoming.kind == "command" and incoming.command == "start":
        payload = incoming.command_args.strip()
        return payload if looks_like_invite(payload) else None
    if incoming.kind == "text" and incoming.text and looks_like_invite(incoming.text.strip()):
        return incoming.text.strip()
    return None


@dataclass(frozen=True, slots=True)
class StaffDeskMessage:
    """Why a message is the staff desk's: the invite code it carries, or else the active staff
    member its chat is bound to."""

    code: str | None = None
    staff: Staff | None = None


async def for_staff_desk(incoming: Incoming) -> StaffDeskMessage | None:
    """Why the staff desk takes this message, or None when it is a citizen's (one read)."""
    code = invite_code_in(incoming)
    if code is not None:
        return StaffDeskMessage(code=code)
    staff = await staff_for_chat(incoming.channel, incoming.user_id)
    return StaffDeskMessage(staff=staff) if staff is not None else None


async def handle_staff_message(
    incoming: Incoming, *, profile: Profile, clock: Clock
) -> list[Outgoing] | None:
    """The replies to a staff member's message, or None when it is not for the staff desk."""
    desk = await for_staff_desk(incoming)
    if desk is None:
        return None
    return await answer_staff_message(incoming, desk, profile=profile, clock=clock)


async def answer_staff_message(
    incoming: Incoming, desk: StaffDeskMessage, *, profile: Profile, clock: Clock
) -> list[Outgoing]:
    """The replies to a message `for_staff_desk` found to be the staff desk's."""
    if desk.code is not None:
        return [await _redeem(incoming, desk.code, clock)]
    assert desk.staff is not None
    for attempt in range(ATTEMPTS):
        try:
            async with in_transaction() as conn:
                return await _turn(incoming, desk.staff, profile, clock, conn)
        except _Conflict:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _write_first(conn: BaseDBAsyncClient) -> None:
    """On SQLite, become a writer with the first statement (as BEGIN IMMEDIATE would), so
    concurrent processes queue on the write lock instead of failing to upgrade a read."""
    if conn.capabilities.dialect == "sqlite":
        await conn.execute_query("UPDATE dialog_session SET version = version WHERE id < 0")


async def _redeem(incoming: Incoming, code: str, clock: Clock) -> Outgoing:
    async with in_transaction() as conn:
        await _write_first(conn)
        outcome = await redeem_invite(
            code, incoming.channel, incoming.user_id, now=clock.now, conn=conn
        )
    if isinstance(outcome, Staff):
        return render_welcome(outcome.name, supported(outcome.language))
    lang = supported(normalise_language(incoming.language))
    return render_invite_refusal(str(outcome), lang)


async def _turn(
    incoming: Incoming, staff: Staff, profile: Profile, clock: Clock, conn: BaseDBAsyncClient
) -> list[Outgoing]:
    await _write_first(conn)
    key = f"staff:{staff.id}"
    session = (
        await DialogSession.filter(channel=incoming.channel, external_id=key).using_db(conn).first()
    )
    state = DialogState.from_json(session.state) if session and session.state else None
    complaint_id = complaint_in_question(state, incoming)
    complaint = (
        await Complaint.filter(id=complaint_id).using_db(conn).first() if complaint_id else None
    )
    card, identity = (None, [])
    if complaint is not None:
        card, identity = await build_card(complaint, staff, profile, conn)
    settings = get_settings()
    ctx = StaffContext(
        profile=profile,
        now=clock.now,
        me=StaffMember(
            staff.id,
            staff.name,
            Role(staff.role),
            staff.department_id,  # type: ignore[attr-defined]
            supported(staff.language),
        ),
        tz=clock.tz,
        case=card,
        departments=await department_options(conn),
        handlers=await handler_options(conn),
        my_cases=await desk_cases(staff, conn) if wants_case_list(incoming) else (),
        max_files=settings.max_photos,
        max_file_bytes=max_attachment_bytes(settings.max_photo_mb),
    )
    result = handle(state, incoming, ctx)
    replies = list(result.replies)
    if complaint is not None and complaint.id in result.shown:
        await record_identity_view(
            complaint, staff, identity, via="case_card", now=clock.now, conn=conn
        )
    outcomes: list[Outgoing] = []
    for command in result.commands:
        message, done = await _run(command, staff, profile, clock, conn, incoming.channel)
        outcomes.append(message)
        if not done:
            break
    # Only the last outcome keeps buttons: earlier ones are already out of date.
    replies += [replace(m, choices=()) for m in outcomes[:-1]] + outcomes[-1:]
    await _save_state(session, incoming.channel, key, result.state, conn)
    return replies


async def department_options(conn: BaseDBAsyncClient | None = None) -> list[DepartmentOption]:
    """The departments a case may be assigned, transferred or joined to (both desks)."""
    return [
        DepartmentOption(d.id, d.name) for d in await Department.all().using_db(conn).order_by("id")
    ]


async def handler_options(conn: BaseDBAsyncClient | None = None) -> list[HandlerOption]:
    """The staff a case may be assigned to, with their departments (both desks)."""
    rows = (
        await Staff.filter(
            active=True,
            role__in=(Role.HANDLER, Role.DEPARTMENT_HEAD),
            department_id__not_isnull=True,
        )
        .using_db(conn)
        .order_by("id")
    )
    return [HandlerOption(s.id, s.name, s.department_id) for s in rows]  # type: ignore[attr-defined]


async def _save_state(
    session: DialogSession | None,
    channel: str,
    key: str,
    state: DialogState,
    conn: BaseDBAsyncClient,
) -> None:
    if session is None:
        try:
            await DialogSession.create(
                channel=channel, external_id=key, state=state.to_json(), version=1, using_db=conn
            )
        except IntegrityError as exc:
            raise _Conflict from exc
        return
    saved = (
        await DialogSession.filter(id=session.id, version=session.version)
        .using_db(conn)
        .update(state=state.to_json(), version=session.version + 1)
    )
    if not saved:
        raise _Conflict


async def _card(
    complaint: Complaint, staff: Staff, profile: Profile, conn: BaseDBAsyncClient
) -> CaseCard:
    card, _identity = await build_card(complaint, staff, profile, conn)
    return card


async def _with_attachments(
    payload: dict[str, Any], channel: str, conn: BaseDBAsyncClient
) -> tuple[dict[str, Any], list[int]]:
    """The payload with the dialog's file records ("files") as attachment_ids: only files this
    channel stored that no complaint has yet, so nobody can attach another case's files."""
    if "files" not in payload:
        return payload, []
    wanted = attachment_ids(payload["files"])
    found = set(
        await Attachment.filter(id__in=wanted, channel=Channel(channel), complaint_id=None)
        .using_db(conn)
        .values_list("id", flat=True)
    )
    ids = [i for i in wanted if i in found]
    rest = {key: value for key, value in payload.items() if key != "files"}
    if ids:
        rest["attachment_ids"] = ids
    return rest, ids


@dataclass(frozen=True)
class ActOutcome:
    """What became of one StaffAct: done, or refused with the reason code of the chat desk's
    refusal texts (handlers.staff.REFUSAL_TEXTS): the rule book's, STALE, not_found, invalid."""

    complaint: Complaint | None
    done: bool
    refusal: str | None = None
    detail: str = ""


async def carry_out(
    command: StaffAct,
    staff: Staff,
    profile: Profile,
    clock: Clock,
    conn: BaseDBAsyncClient,
    channel: str,
) -> ActOutcome:
    """Run one StaffAct through models.actions.act: the case locked, its version checked
    against the one the staff member saw, the staff member's uploaded files attached. The chat
    desk and the browser desk both act through here."""
    query = Complaint.filter(id=command.complaint_id).using_db(conn)
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update()  # the version check and the action see one state
    complaint = await query.first()
    if complaint is None:
        return ActOutcome(None, False, "not_found")
    if command.expected_version is not None:
        if await case_version(complaint.id, conn) != command.expected_version:
            return ActOutcome(complaint, False, STALE)
    payload, attached = await _with_attachments(command.payload, channel, conn)
    try:
        result = await act(
            complaint.id,
            Action(command.action),
            Actor(Role(staff.role), staff),
            profile=profile,
            clock=clock,
            payload=payload,
            conn=conn,
        )
    except ActionRefused as refused:
        return ActOutcome(complaint, False, refused.refusal.reason_code)
    except (ValueError, KeyError) as invalid:  # e.g. an extension beyond the profile's limit
        detail = str(invalid.args[0]) if invalid.args else type(invalid).__name__
        await complaint.refresh_from_db(using_db=conn)
        return ActOutcome(complaint, False, "invalid", detail)
    if attached:  # the files now belong to the case (kept, shown and pruned with it)
        await (
            Attachment.filter(id__in=attached)
            .using_db(conn)
            .update(complaint_id=result.complaint.id)
        )
    return ActOutcome(result.complaint, True)


async def _run(
    command: StaffAct,
    staff: Staff,
    profile: Profile,
    clock: Clock,
    conn: BaseDBAsyncClient,
    channel: str,
) -> tuple[Outgoing, bool]:
    """Carry out one StaffAct; the message for the staff member and whether it was done."""
    lang = supported(staff.language)
    outcome = await carry_out(command, staff, profile, clock, conn, channel)
    complaint = outcome.complaint
    if complaint is None:
        return render_refused("not_found", None, None, lang), False
    card = await _card(complaint, staff, profile, conn)
    if not outcome.done:
        message = render_refused(
            outcome.refusal or "invalid",
            complaint.number,
            complaint.state,
            lang,
            detail=outcome.detail,
            card=card,
        )
        return message, False
    return render_done(command.action, card, complaint.number, lang, clock.tz), True
