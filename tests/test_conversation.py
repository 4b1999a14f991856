"""The shell around the dialog engine, on SQLite and PostgreSQL: one transaction per message."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from asyncio.subprocess import PIPE
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tortoise.exceptions import OperationalError, TransactionManagementError

from bot.attachments import AttachmentTooLarge, read_attachment
from bot.conversation import Conversation
from config.profiles import load_profile
from config.settings import Settings
from handlers.messages import FileRef, Incoming, Outgoing
from models.actions import Actor, Clock, act
from models.db import database, migrate
from models.entities import (
    Attachment,
    Channel,
    Complainant,
    Complaint,
    Department,
    DialogSession,
    Event,
    ProcessedUpdate,
    Staff,
)
from models.staffing import create_invite
from models.workflow import Action, Role, State
from scheduler.calendar import WorkingCalendar
from tests.images import jpeg
from tests.intake_script import GOV_WINDOW_FILING, PHOTOS_STEP

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai
CALENDAR = WorkingCalendar()
PROFILE = load_profile("gov-window")
PROFILE_TZ = ZoneInfo("Asia/Shanghai")
JPEG = jpeg("photo")


def make_settings(tmp_path: Path, db_url: str, **extra: object) -> Settings:
    return Settings(database_url=db_url, data_dir=tmp_path / "data", **extra)  # type: ignore[arg-type]


class Person:
    """One citizen talking to a Conversation, with fresh message ids per message."""

    _ids = itertools.count(1)

    def __init__(self, conversation: Conversation, user_id: str = "web-user-1") -> None:
        self.conversation = conversation
        self.user_id = user_id
        self.replies: list[Outgoing] = []

    async def send(self, kind: str, value: str = "", **fields: object) -> list[Outgoing]:
        if kind == "command":
            fields.update(command=value)
        elif kind == "choice":
            fields.update(choice=value)
        elif kind == "text":
            fields.update(text=value)
        fields.setdefault("message_id", f"m{next(self._ids)}")
        incoming = Incoming(channel="web", user_id=self.user_id, kind=kind, **fields)  # type: ignore[arg-type]
        self.replies = await self.conversation.handle(incoming)
        return self.replies

    @property
    def said(self) -> str:
        return "\n".join(r.text for r in self.replies)

    def choice_ids(self) -> list[str]:
        return [c.id for c in self.replies[-1].choices]

    async def file_complaint(self, photos: Sequence[FileRef] = ()) -> Complaint:
        for index, (kind, value) in enumerate(GOV_WINDOW_FILING):
            if index == PHOTOS_STEP:
                for photo in photos:
                    await self.send("photo", file=photo)
            await self.send(kind, value)
        complaint = await Complaint.filter(complainant__external_id=self.user_id).order_by("-id")
        assert complaint, self.said
        return complaint[0]


async def session_state(user_id: str = "web-user-1") -> dict:
    row = await DialogSession.get(channel=Channel.WEB, external_id=user_id)
    return row.state


def conversation(tmp_path: Path, db_url: str, now: datetime = NOW) -> Conversation:
    return Conversation(make_settings(tmp_path, db_url), PROFILE, CALENDAR, now=lambda: now)


async def test_a_complete_filing_creates_a_submitted_complaint_with_its_deadline(
    db_url: str, tmp_path: Path
) -> None:
    person = Person(conversation(tmp_path, db_url))
    complaint = await person.file_complaint()
    assert complaint.state == State.SUBMITTED
    assert complaint.number == "202611-0001"
    assert complaint.number in person.said
    assert complaint.category == "service_attitude"
    assert complaint.contact_phone == "+8613812345678"
    assert complaint.next_due_stage == "acceptance"
    assert complaint.next_due_at is not None and complaint.next_due_at > NOW
    # The reply names the date the acceptance answer is due, in Shanghai time.
    due_day = complaint.next_due_at.astimezone(PROFILE_TZ)
    assert f"{due_day.month}月{due_day.day}日" in person.said
    events = await Event.filter(complaint=complaint).values_list("action", flat=True)
    assert events == ["submit"]
    state = await session_state()
    assert state["flow"] == "idle"
    owner = await Complainant.get(channel=Channel.WEB, external_id="web-user-1")
    assert owner.language == "zh_CN" and owner.name == "李雷"


async def test_a_duplicate_message_id_is_processed_once(db_url: str, tmp_path: Path) -> None:
    person = Person(conversation(tmp_path, db_url))
    first = await person.send("command", "start", message_id="update-7")
    before = await session_state()
    again = await person.send("command", "start", message_id="update-7")
    assert first and again == []
    assert await session_state() == before
    assert await ProcessedUpdate.filter(update_key="update-7").count() == 1
    # A long platform id still de-duplicates (hashed to fit the column).
    long_id = "x" * 300
    assert await person.send("choice", "screen:none", message_id=long_id)
    assert await person.send("choice", "screen:none", message_id=long_id) == []


async def test_two_workers_alternate_on_the_same_person(db_url: str, tmp_path: Path) -> None:
    worker_a = conversation(tmp_path, db_url)
    worker_b = conversation(tmp_path, db_url)
    a, b = Person(worker_a), Person(worker_b)
    for index, (kind, value) in enumerate(GOV_WINDOW_FILING):
        await (a if index % 2 == 0 else b).send(kind, value)
    last = a if (len(GOV_WINDOW_FILING) - 1) % 2 == 0 else b
    complaint = await Complaint.get(number="202611-0001")
    assert complaint.state == State.SUBMITTED
    assert complaint.number in last.said
    row = await DialogSession.get(channel=Channel.WEB, external_id="web-user-1")
    assert row.version == len(GOV_WINDOW_FILING)


async def test_a_restart_mid_dialog_resumes_at_the_same_step(db_url: str, tmp_path: Path) -> None:
    before = Person(conversation(tmp_path, db_url))
    for kind, value in GOV_WINDOW_FILING[:6]:
        await before.send(kind, value)
    asked = before.said
    assert (await session_state())["step"] == "incident_time"
    after = Person(conversation(tmp_path, db_url))  # a new process: nothing in memory
    await after.send("command", "back")
    assert (await session_state())["step"] == "target.text"
    await after.send("text", "3号窗口 工号1024")
    assert (await session_state())["step"] == "incident_time"
    assert after.said.splitlines()[-1] in asked


async def test_status_lists_the_complaint_and_its_timeline(db_url: str, tmp_path: Path) -> None:
    person = Person(conversation(tmp_path, db_url))
    complaint = await person.file_complaint()
    await person.send("command", "status")
    assert complaint.number in person.said
    assert "已提交" in person.said or "Submitted" in person.said
    await person.send("choice", f"complaint:{complaint.number}")
    assert complaint.number in person.said
    # Received Wednesday 25 November: three working days end Monday 30 November.
    assert "下一办理时限：2026年11月30日 23:59" in person.said
    assert "办理记录" in person.said and "10:00  已提交" in person.said


async def test_withdraw_with_confirmation(db_url: str, tmp_path: Path) -> None:
    person = Person(conversation(tmp_path, db_url))
    complaint = await person.file_complaint()
    await person.send("command", "withdraw")
    await person.send("choice", f"complaint:{complaint.number}")
    assert "withdraw:yes" in person.choice_ids()
    await person.send("choice", "withdraw:yes")
    assert complaint.number in person.said
    await complaint.refresh_from_db()
    assert complaint.state == State.WITHDRAWN
    actions = await Event.filter(complaint=complaint).values_list("action", flat=True)
    assert actions == ["submit", "withdraw"]


async def test_a_refused_command_is_told_and_the_dialog_goes_on(
    db_url: str, tmp_path: Path
) -> None:
    person = Person(conversation(tmp_path, db_url))
    complaint = await person.file_complaint()
    await person.send("command", "withdraw")
    await person.send("choice", f"complaint:{complaint.number}")
    # Meanwhile the intake desk refuses the complaint: withdrawing is no longer possible.
    clock = Clock(CALENDAR, PROFILE_TZ, NOW)
    await act(
        complaint.number, Action.REFUSE, Actor(Role.INTAKE_CLERK), profile=PROFILE, clock=clock
    )
    await person.send("choice", "withdraw:yes")
    assert person.said == "该投诉当前的状态不允许此操作。"
    await complaint.refresh_from_db()
    assert complaint.state == State.REFUSED
    assert (await session_state())["flow"] == "idle"
    await person.send("command", "status")  # the conversation carries on
    assert complaint.number in person.said


async def test_photos_are_stored_and_linked_to_the_complaint(db_url: str, tmp_path: Path) -> None:
    talk = conversation(tmp_path, db_url)
    stored = await talk.store_file(
        Channel.WEB, FileRef("upload-1", "door.jpg", "image/jpeg", data=JPEG)
    )
    assert stored.file_id.startswith("att:") and stored.size == len(JPEG) and stored.data is None
    person = Person(talk)
    complaint = await person.file_complaint(photos=[stored])
    attachment = await Attachment.get(id=int(stored.file_id.removeprefix("att:")))
    assert attachment.complaint_id == complaint.id  # type: ignore[attr-defined]
    assert attachment.mime_type == "image/jpeg" and attachment.file_name == "door.jpg"
    # The default storage is the database: any worker on it reads the same bytes.
    assert attachment.stored_path == f"db:{attachment.sha256}"
    assert await read_attachment(attachment) == JPEG


async def test_a_file_over_the_limit_is_refused_before_anything_is_written(
    db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, db_url, max_photo_mb=0.001)
    talk = Conversation(settings, PROFILE, CALENDAR, now=lambda: NOW)
    with pytest.raises(AttachmentTooLarge) as refused:
        await talk.store_file(Channel.WEB, FileRef("big", data=b"x" * 5000))
    assert refused.value.size == 5000 and refused.value.limit == 1048
    assert await Attachment.all().count() == 0
    assert not (tmp_path / "data").exists()


async def _in_progress(complaint: Complaint) -> Staff:
    """Take a complaint to in_progress with a handler, as the staff side would."""
    clock = Clock(CALENDAR, PROFILE_TZ, NOW)
    department = await Department.create(code="window", name="窗口服务科")
    handler = await Staff.create(name="王五", role=Role.HANDLER, department=department)
    clerk = Actor(Role.INTAKE_CLERK)
    await act(complaint.id, Action.ACCEPT, clerk, profile=PROFILE, clock=clock)
    payload = {"department_id": department.id, "handler_id": handler.id}
    await act(complaint.id, Action.ASSIGN, clerk, profile=PROFILE, clock=clock, payload=payload)
    actor = Actor(Role.HANDLER, staff=handler)
    await act(complaint.id, Action.ACKNOWLEDGE, actor, profile=PROFILE, clock=clock)
    return handler


async def test_supplement_while_waiting_for_material_resumes_handling(
    db_url: str, tmp_path: Path
) -> None:
    talk = conversation(tmp_path, db_url)
    person = Person(talk)
    complaint = await person.file_complaint()
    handler = await _in_progress(complaint)
    clock = Clock(CALENDAR, PROFILE_TZ, NOW)
    await act(
        complaint.id,
        Action.REQUEST_MATERIAL,
        Actor(Role.HANDLER, staff=handler),
        profile=PROFILE,
        clock=clock,
        payload={"question": "请提供受理回执照片"},
    )
    photo = await talk.store_file(
        Channel.WEB, FileRef("u2", "receipt.jpg", "image/jpeg", data=JPEG)
    )
    await person.send("command", "supplement")
    await person.send("choice", f"complaint:{complaint.number}")
    await person.send("text", "这是受理回执。")
    await person.send("photo", file=photo)
    await person.send("choice", "done")
    assert complaint.number in person.said
    await complaint.refresh_from_db()
    assert complaint.state == State.IN_PROGRESS and complaint.paused_at is None
    event = await Event.filter(complaint=complaint).order_by("-id").first()
    assert event is not None and event.action == "supplement"
    assert event.from_state == State.WAITING_FOR_COMPLAINANT
    assert event.payload["text"] == "这是受理回执。"
    attachment = await Attachment.get(id=int(photo.file_id.removeprefix("att:")))
    assert attachment.complaint_id == complaint.id  # type: ignore[attr-defined]
    assert event.payload["attachment_ids"] == [attachment.id]


async def test_unsolicited_supplement_is_recorded_without_moving_the_case(
    db_url: str, tmp_path: Path
) -> None:
    person = Person(conversation(tmp_path, db_url))
    complaint = await person.file_complaint()
    await person.send("command", "supplement")
    await person.send("choice", f"complaint:{complaint.number}")
    await person.send("text", "补充：当时还有另一位工作人员在场。")
    await person.send("choice", "done")
    assert complaint.number in person.said
    await complaint.refresh_from_db()
    assert complaint.state == State.SUBMITTED
    event = await Event.filter(complaint=complaint).order_by("-id").first()
    assert event is not None and event.action == "supplement"
    assert (event.from_state, event.to_state) == (State.SUBMITTED, State.SUBMITTED)
    assert event.actor_role == Role.COMPLAINANT
    # The person sees their addition in the timeline.
    await person.send("command", "status")
    await person.send("choice", f"complaint:{complaint.number}")
    assert "补充" in person.said


async def test_dispute_of_a_replied_complaint_reopens_it(db_url: str, tmp_path: Path) -> None:
    person = Person(conversation(tmp_path, db_url))
    complaint = await person.file_complaint()
    handler = await _in_progress(complaint)
    clock = Clock(CALENDAR, PROFILE_TZ, NOW)
    actor = Actor(Role.HANDLER, staff=handler)
    reply = {"reply_text": "已对相关人员批评教育。"}
    await act(complaint.id, Action.RESOLVE, actor, profile=PROFILE, clock=clock, payload=reply)
    await act(complaint.id, Action.NOTIFY_RESULT, actor, profile=PROFILE, clock=clock)
    await person.send("command", "dispute")
    await person.send("choice", f"complaint:{complaint.number}")
    await person.send("text", "处理结果没有回应我的诉求，工作人员没有道歉。")
    assert complaint.number in person.said
    await complaint.refresh_from_db()
    assert complaint.state == State.REOPENED, person.said
    event = await Event.filter(complaint=complaint).order_by("-id").first()
    assert event is not None and event.action == "dispute"
    assert "道歉" in event.payload["reason"]


async def test_someone_elses_complaint_is_not_found(db_url: str, tmp_path: Path) -> None:
    talk = conversation(tmp_path, db_url)
    owner = Person(talk, "owner")
    complaint = await owner.file_complaint()
    stranger = Person(talk, "stranger")
    await stranger.send("command", "withdraw")
    assert complaint.number not in stranger.said
    await complaint.refresh_from_db()
    assert complaint.state == State.SUBMITTED


async def test_language_choice_is_remembered_for_the_person(db_url: str, tmp_path: Path) -> None:
    person = Person(conversation(tmp_path, db_url))
    await person.file_complaint()
    await person.send("command", "lang")
    await person.send("choice", "lang:en")
    assert "English" in person.said
    owner = await Complainant.get(channel=Channel.WEB, external_id="web-user-1")
    assert owner.language == "en"
    await person.send("command", "status")
    assert "Your complaints" in person.said


async def test_an_idle_draft_expires_with_a_message(db_url: str, tmp_path: Path) -> None:
    earlier = Person(conversation(tmp_path, db_url))
    for kind, value in GOV_WINDOW_FILING[:5]:
        await earlier.send(kind, value)
    later = Person(conversation(tmp_path, db_url, now=NOW + timedelta(hours=2)))
    await later.send("text", "3号窗口")
    assert "60" in later.said
    state = await session_state()
    assert state["flow"] == "idle" and state["answers"] == {}


async def test_simultaneous_messages_from_one_person_take_turns(
    db_url: str, tmp_path: Path
) -> None:
    worker_a = conversation(tmp_path, db_url)
    worker_b = conversation(tmp_path, db_url)

    def incoming(message_id: str, choice: str | None = None) -> Incoming:
        if choice:
            return Incoming("web", "web-user-1", "choice", choice=choice, message_id=message_id)
        return Incoming("web", "web-user-1", "command", command="start", message_id=message_id)

    await worker_a.handle(incoming("first"))
    # The same update delivered to both workers at once: handled exactly once.
    both = await asyncio.gather(
        worker_a.handle(incoming("twice", "screen:none")),
        worker_b.handle(incoming("twice", "screen:none")),
    )
    assert sorted(len(replies) for replies in both)[0] == 0 and any(both)
    # Two different messages at once: both applied, one after the other.
    await asyncio.gather(
        worker_a.handle(incoming("cat", "opt:service_attitude")),
        worker_b.handle(incoming("start-again")),
    )
    row = await DialogSession.get(channel=Channel.WEB, external_id="web-user-1")
    assert row.version == 4
    assert row.state["answers"].get("category") == "service_attitude"
    assert await ProcessedUpdate.filter(channel=Channel.WEB).count() == 4


async def test_a_locked_database_retries_the_whole_turn(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    talk = conversation(tmp_path, db_url)
    real_turn = talk._turn
    failures = [OperationalError("database is locked"), TransactionManagementError("locked")]

    async def busy_then_real(*args: object) -> list[Outgoing]:
        if failures:
            raise failures.pop(0)  # what SQLite says while another process writes
        return await real_turn(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(talk, "_turn", busy_then_real)
    monkeypatch.setattr("bot.conversation.RETRY_PAUSE_SECONDS", 0)
    replies = await Person(talk).send("command", "start")
    assert replies and failures == []
    assert (await session_state())["flow"] == "screening"


async def test_other_database_errors_are_not_retried(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    talk = conversation(tmp_path, db_url)
    calls = []

    async def broken(*args: object) -> list[Outgoing]:
        calls.append(args)
        raise OperationalError("no such table: dialog_session")

    monkeypatch.setattr(talk, "_turn", broken)
    with pytest.raises(OperationalError):
        await Person(talk).send("command", "start")
    assert len(calls) == 1


async def test_worker_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    """Several processes on one SQLite file, all talking for the same person: no turn lost."""
    url = f"sqlite://{tmp_path / 'shared.sqlite3'}"
    await migrate(url)
    worker = Path(__file__).parent / "conversation_worker.py"
    root = str(Path(__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": root}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(worker), url, name, "40", env=env, stderr=PIPE
        )
        for name in ("w1", "w2", "w3", "w4")
    ]
    results = [await process.communicate() for process in processes]
    for process, (_, errors) in zip(processes, results, strict=True):
        assert process.returncode == 0, errors.decode()
    async with database(url):
        row = await DialogSession.get(channel=Channel.WEB, external_id="shared-person")
        assert row.version == 160
        assert await ProcessedUpdate.all().count() == 160


async def test_a_known_person_without_a_session_keeps_their_language(
    db_url: str, tmp_path: Path
) -> None:
    person = Person(conversation(tmp_path, db_url))
    await person.file_complaint()
    await person.send("command", "lang")
    await person.send("choice", "lang:en")
    await DialogSession.filter(external_id="web-user-1").delete()  # e.g. sessions were pruned
    await person.send("command", "status")
    assert "Your complaints" in person.said


async def test_staff_invites_and_staff_chats_go_to_the_staff_desk(
    db_url: str, tmp_path: Path
) -> None:
    talk = conversation(tmp_path, db_url)
    invite = await create_invite(now=NOW, name="王五", role=Role.HANDLER, language="zh_CN")
    start = Incoming(
        "telegram", "555", "command", command="start", command_args=invite.code, message_id="1"
    )
    [welcome] = await talk.handle(start)
    assert "王五" in welcome.text
    staff = await Staff.get(id=invite.staff.id)
    assert staff.telegram_chat_id == "555"
    assert await talk.handle(start) == []  # a re-delivered update is answered once
    cases = Incoming("telegram", "555", "command", command="cases", message_id="2")
    replies = await talk.handle(cases)
    assert replies and "我要投诉" not in [c.label for r in replies for c in r.choices]
    # The staff member's dialog is the desk's; the citizen dialog never saw this chat.
    assert await DialogSession.filter(external_id=f"staff:{staff.id}").exists()
    assert not await DialogSession.filter(channel=Channel.TELEGRAM, external_id="555").exists()
    # Citizens on the same channel still reach the citizen dialog.
    citizen = Incoming("telegram", "42", "command", command="start", message_id="3")
    assert "欢迎使用" in (await talk.handle(citizen))[0].text
