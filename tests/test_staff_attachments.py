"""Staff attach photos or documents to a case's result; the complainant's result carries them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.attachments import attachment_ref, store_attachment
from bot.staff_desk import handle_staff_message
from config.profiles import load_profile
from handlers.messages import FileRef, Incoming
from handlers.staff import (
    DONE,
    FILES,
    MB,
    CaseCard,
    StaffAct,
    StaffContext,
    StaffMember,
    handle,
)
from handlers.turn import DialogState
from models.entities import Attachment, Channel, Event, OutboxMessage
from models.notifications import case_version
from models.outbox import outgoing_from_json
from models.workflow import Action, Role, State
from tests.scheduler_support import accept, acknowledge, assign, clock, file, local, make_org

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
PROFILE = load_profile("tax-service")
ME = StaffMember(7, "Handler Wang", Role.HANDLER, 2, "en")
CARD = CaseCard(
    id=11,
    number="202611-0001",
    state="in_progress",
    version=4,
    actions=("add_note", "resolve", "hand_back"),
)


def ctx(**extra: object) -> StaffContext:
    return StaffContext(
        profile=PROFILE,
        now=NOW,
        me=ME,
        tz=ZoneInfo("Asia/Shanghai"),
        case=CARD,
        max_files=2,
        max_file_bytes=5 * MB,
        **extra,  # type: ignore[arg-type]
    )


def press(choice: str) -> Incoming:
    return Incoming("telegram", "w1", "choice", choice=choice)


def text(value: str) -> Incoming:
    return Incoming("telegram", "w1", "text", text=value)


def photo(file_id: str, size: int = 1000, kind: str = "photo") -> Incoming:
    return Incoming("telegram", "w1", kind, file=FileRef(file_id, "p.jpg", "image/jpeg", size))  # type: ignore[arg-type]


def asking_reply() -> DialogState:
    result = handle(None, press("cs:resolve:11:4"), ctx())
    assert result.state.step == "reply"
    assert [c.id for c in result.replies[0].choices] == [FILES, "cancel"]
    return result.state


def record(file_id: str, size: int = 1000) -> dict[str, object]:
    return {"file_id": file_id, "file_name": "p.jpg", "mime_type": "image/jpeg", "size": size}


def test_files_sent_before_the_reply_go_with_the_resolution() -> None:
    state = asking_reply()
    first = handle(state, photo("att:5"), ctx())
    assert first.commands == [] and first.state.step == "reply_files"
    assert first.replies[0].text == ("1 of at most 2 photos received. Send another, or press Done.")
    assert [c.id for c in first.replies[0].choices] == [DONE, "cancel"]
    again = handle(first.state, photo("att:5"), ctx())  # the same upload twice counts once
    document = handle(again.state, photo("att:6", kind="file"), ctx())
    assert document.replies[0].text.startswith("2 of at most 2 photos received.")
    done = handle(document.state, press(DONE), ctx())
    assert done.replies[0].text == "Type the reply the complainant will receive:"
    assert [c.id for c in done.replies[0].choices] == ["cancel"]  # the limit is reached
    resolved = handle(done.state, text(" 已维修完毕，见照片。 "), ctx())
    assert resolved.commands == [
        StaffAct(
            11,
            "resolve",
            {"reply_text": "已维修完毕，见照片。", "files": [record("att:5"), record("att:6")]},
            4,
        ),
        StaffAct(11, "notify_result", {}, None),
    ]
    assert resolved.state.flow == "idle" and resolved.state.scratch == {}


def test_the_reply_typed_while_sending_files_finishes_the_result() -> None:
    state = handle(asking_reply(), press(FILES), ctx()).state
    assert state.step == "reply_files"
    # Text-only channels number the options: "1" is the "Photos" option, not a reply.
    assert handle(asking_reply(), text("1"), ctx()).state.step == "reply_files"
    sent = handle(state, photo("att:9"), ctx())
    resolved = handle(sent.state, text("已处理。"), ctx())
    assert [c.action for c in resolved.commands] == ["resolve", "notify_result"]
    assert resolved.commands[0].payload == {"reply_text": "已处理。", "files": [record("att:9")]}


def test_too_many_or_too_large_files_are_refused_and_the_step_goes_on() -> None:
    state = asking_reply()
    big = handle(state, photo("att:1", size=6 * MB), ctx())
    assert big.replies[0].text == (
        "That file is 6 MB; each photo may be at most 5 MB. Please send a smaller one."
    )
    assert big.state.scratch["payload"].get("files", []) == []
    state = handle(handle(state, photo("att:1"), ctx()).state, photo("att:2"), ctx()).state
    third = handle(state, photo("att:3"), ctx())
    assert third.replies[0].text == (
        "You have already sent 2 photos, the most we accept. Press Done."
    )
    assert [f["file_id"] for f in third.state.scratch["payload"]["files"]] == ["att:1", "att:2"]
    nothing = handle(third.state, press("sf:whatever"), ctx())
    assert nothing.replies[0].text == "Please send a photo, or press Done."
    assert nothing.commands == [] and nothing.state.step == "reply_files"


def test_a_reply_without_files_is_unchanged_and_cancel_drops_the_files() -> None:
    resolved = handle(asking_reply(), text("已道歉。"), ctx())
    assert resolved.commands[0].payload == {"reply_text": "已道歉。"}
    with_file = handle(asking_reply(), photo("att:4"), ctx())
    cancelled = handle(with_file.state, press("cancel"), ctx())
    assert cancelled.commands == [] and cancelled.state.scratch == {}


async def test_the_complainants_result_carries_the_attached_files(
    db_url: str, tmp_path: Path
) -> None:
    org = await make_org()
    complaint = await file(PROFILE, local("2026-11-02T10:00"))
    await accept(PROFILE, org, complaint, local("2026-11-02T10:05"))
    await assign(PROFILE, org, complaint, local("2026-11-02T10:10"))
    await acknowledge(PROFILE, org, complaint, local("2026-11-02T10:15"))
    other = await file(PROFILE, local("2026-11-02T10:20"), user="u2")

    async def stored(data: bytes, channel: Channel = Channel.TELEGRAM) -> Attachment:
        upload = FileRef("tg-file", "photo.jpg", "image/jpeg", len(data), data)
        return await store_attachment(channel, upload, max_bytes=MB)

    repair, receipt = await stored(b"repair photo"), await stored(b"receipt scan")
    elsewhere = await stored(b"other case's photo")
    await Attachment.filter(id=elsewhere.id).update(complaint_id=other.id)
    wechat = await stored(b"another channel", Channel.WECHAT)

    chat = org.handler.telegram_chat_id
    assert chat is not None
    at = clock(local("2026-11-02T11:00"))

    async def send(incoming: Incoming) -> None:
        assert await handle_staff_message(incoming, profile=PROFILE, clock=at) is not None

    version = await case_version(complaint.id)
    await send(Incoming("telegram", chat, "choice", choice=f"cs:resolve:{complaint.id}:{version}"))
    for attachment in (repair, receipt, elsewhere, wechat):  # the last two are not this case's
        await send(Incoming("telegram", chat, "photo", file=attachment_ref(attachment)))
    await send(Incoming("telegram", chat, "text", text="已维修完毕，见照片。"))

    await complaint.refresh_from_db()
    assert complaint.state == State.REPLIED
    resolution = await Event.get(complaint_id=complaint.id, action=str(Action.RESOLVE))
    assert resolution.payload["attachment_ids"] == [repair.id, receipt.id]
    assert "files" not in resolution.payload
    linked = await Attachment.filter(complaint_id=complaint.id).order_by("id")
    assert [a.id for a in linked] == [repair.id, receipt.id]
    assert (await Attachment.get(id=elsewhere.id)).complaint_id == other.id  # type: ignore[attr-defined]
    assert (await Attachment.get(id=wechat.id)).complaint_id is None  # type: ignore[attr-defined]

    row = await OutboxMessage.filter(chat_id="chat-u1").order_by("-id").first()
    assert row is not None
    result = outgoing_from_json(row.payload)
    assert "已维修完毕，见照片。" in result.text
    assert result.attachments == (str(repair.id), str(receipt.id))
