"""The web chat: a mobile page at /webchat and the small JSON API it talks to.

For the demo and for people with neither Telegram nor WeChat. The browser keeps a random session
id (crypto.randomUUID, in localStorage) that plays the part of a platform user id; all dialog
state is server-side in the database, like every other channel.

    POST /webchat/api/message  {"session_id", "text" | "choice" | "location", "message_id"?}
    POST /webchat/api/upload   multipart: session_id, file, message_id?
    POST /webchat/api/hello    {"session_id"}: waiting notifications, then the opening menu
    POST /webchat/api/updates  {"session_id"}: notifications queued for this browser since
    → 200 {"messages": [{"text", "choices": [{"id", "label"}], "ask", "remove_keyboard"}]}
    → 400/413 {"error": "<code>", "detail": "<what is wrong>"} for a malformed request

The web has no push: notifications the workflow queues for a web complainant (outbox rows on
channel "web", chat id = session id) are handed over when the page asks, and marked sent then.

A text starting with "/" is a command ("/status"). `message_id` (optional, client-generated)
makes a retried request harmless: the same id is processed once.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from bot.attachments import AttachmentTooLarge, max_attachment_bytes
from bot.conversation import Conversation
from bot.logs import current_context
from bot.replies import Replies, mark_all_sent, wall_clock
from config.settings import Settings
from handlers.dialog import DialogState, render_menu
from handlers.i18n import supported
from handlers.messages import FileRef, Incoming, Outgoing
from models.entities import Channel, DialogSession, OutboxMessage, OutboxStatus
from models.outbox import outgoing_from_json

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
MESSAGE_ID = re.compile(r"[A-Za-z0-9_:.-]{1,100}")
COMMAND = re.compile(r"/([A-Za-z_]{1,32})(?:@\S+)?(?:\s+(.*))?", re.DOTALL)
# JSON bodies: generous for a 10 000-character text in Chinese (3 bytes a character).
MESSAGE_BODY_LIMIT = 64 * 1024
# Hard cap on typed text; the dialog's own, friendlier limit (max_text_length) is far below.
TEXT_LIMIT = 20_000
CHOICE_LIMIT = 200
SMALL_FIELD_LIMIT = 256
CHUNK = 64 * 1024
# The "platform file id" of a browser upload: the browser has none of its own.
WEB_UPLOAD = "web-upload"
# Past this many bytes an upload is cut off (413) rather than read to learn its size.
UPLOAD_CUTOFF_FACTOR = 4

PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
    ),
}


class BadRequest(Exception):
    """A malformed request: answered with a JSON error, the conversation is not touched."""

    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status


def outgoing_json(message: Outgoing) -> dict[str, Any]:
    return {
        "text": message.text,
        "choices": [{"id": c.id, "label": c.label} for c in message.choices],
        "ask": message.ask,
        "remove_keyboard": message.remove_keyboard,
    }


def messages_json(messages: list[Outgoing]) -> dict[str, Any]:
    return {"messages": [outgoing_json(m) for m in messages]}


def error_response(error: BadRequest) -> web.Response:
    return web.json_response({"error": error.code, "detail": error.detail}, status=error.status)


def _session_id(value: Any) -> str:
    if value is None or value == "":
        raise BadRequest("missing_session_id", "session_id is required")
    if not isinstance(value, str) or not SESSION_ID.fullmatch(value):
        raise BadRequest(
            "invalid_session_id", "session_id must be 8-64 letters, digits, '-' or '_'"
        )
    return value


def _message_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not MESSAGE_ID.fullmatch(value):
        raise BadRequest("invalid_message_id", "message_id must be 1-100 plain characters")
    return value


def text_incoming(session_id: str, text: str, message_id: str | None) -> Incoming:
    """Typed text, or a command when it starts with "/" ("/status", "/start CODE")."""
    command = COMMAND.fullmatch(text.strip())
    if command:
        return Incoming(
            channel=Channel.WEB,
            user_id=session_id,
            kind="command",
            command=command.group(1).lower(),
            command_args=(command.group(2) or "").strip(),
            message_id=message_id,
        )
    return Incoming(
        channel=Channel.WEB, user_id=session_id, kind="text", text=text, message_id=message_id
    )


def parse_message(data: Any) -> Incoming:
    """The Incoming a JSON message body stands for; BadRequest when it stands for nothing."""
    if not isinstance(data, dict):
        raise BadRequest("invalid_body", "the body must be a JSON object")
    session_id = _session_id(data.get("session_id"))
    message_id = _message_id(data.get("message_id"))
    given = [key for key in ("text", "choice", "location") if data.get(key) is not None]
    if len(given) != 1:
        raise BadRequest("invalid_body", "send exactly one of text, choice or location")
    if "text" in given:
        text = data["text"]
        if not isinstance(text, str):
            raise BadRequest("invalid_text", "text must be a string")
        if not text.strip():
            raise BadRequest("empty_text", "text must not be empty")
        if len(text) > TEXT_LIMIT:
            raise BadRequest("text_too_long", f"text is limited to {TEXT_LIMIT} characters")
        return text_incoming(session_id, text, message_id)
    if "choice" in given:
        choice = data["choice"]
        if not isinstance(choice, str) or not choice or len(choice) > CHOICE_LIMIT:
            raise BadRequest("invalid_choice", "choice must be a choice id from a message")
        return Incoming(
            channel=Channel.WEB,
            user_id=session_id,
            kind="choice",
            choice=choice,
            message_id=message_id,
        )
    return _location_incoming(session_id, data["location"], message_id)


def _location_incoming(session_id: str, location: Any, message_id: str | None) -> Incoming:
    if not isinstance(location, dict):
        raise BadRequest("invalid_location", "location must be {latitude, longitude}")
    latitude, longitude = location.get("latitude"), location.get("longitude")
    numbers = all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in (latitude, longitude)
    )
    if not numbers or not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise BadRequest("invalid_location", "latitude and longitude must be valid degrees")
    return Incoming(
        channel=Channel.WEB,
        user_id=session_id,
        kind="location",
        latitude=float(latitude),
        longitude=float(longitude),
        message_id=message_id,
    )


@dataclass
class Upload:
    session_id: str | None = None
    message_id: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    data: bytes | None = None
    size: int = 0  # bytes received; may exceed len(data) when the file was over the limit


async def take_notices(session_id: str, now: datetime) -> list[Outgoing]:
    """The due notifications queued for this browser, oldest first, marked sent as handed over;
    with them any chat reply whose request died between its commit and its response (its row
    left `sending` past its claim: bot.replies)."""
    async with in_transaction() as conn:
        query = OutboxMessage.filter(
            Q(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=OutboxStatus.SENDING, claimed_until__lt=wall_clock()),
            channel=Channel.WEB,
            chat_id=session_id,
        ).using_db(conn)
        if conn.capabilities.dialect == "postgres":
            # Two tabs asking at once: each row goes to one of them.
            query = query.select_for_update(skip_locked=True)
        rows = await query.order_by("id")
        if rows:
            await (
                OutboxMessage.filter(id__in=[row.id for row in rows])
                .using_db(conn)
                .update(status=OutboxStatus.SENT, sent_at=now, attempts=F("attempts") + 1)
            )
    return [outgoing_from_json(row.payload) for row in rows]


class WebChat:
    """The request handlers, bound to one Conversation."""

    def __init__(self, conversation: Conversation, settings: Settings) -> None:
        self.conversation = conversation
        self.settings = settings
        self.max_file_bytes = max_attachment_bytes(settings.max_photo_mb)
        self.upload_cutoff = self.max_file_bytes * UPLOAD_CUTOFF_FACTOR
        conversation.keep_replies_in_outbox(Channel.WEB)

    async def page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "webchat.html", headers=PAGE_HEADERS)

    async def message(self, request: web.Request) -> web.Response:
        try:
            incoming = parse_message(await self._json_body(request))
        except BadRequest as error:
            return error_response(error)
        return await self._answer(request, incoming)

    async def hello(self, request: web.Request) -> web.Response:
        """An empty chat window: waiting notifications, then the menu; the dialog is untouched."""
        try:
            session_id = await self._session_only(request)
        except BadRequest as error:
            return error_response(error)
        row = await DialogSession.filter(channel=Channel.WEB, external_id=session_id).first()
        state = DialogState.from_json(row.state) if row and row.state else None
        lang = supported((state.language if state else None) or self.settings.language)
        notices = await take_notices(session_id, self.conversation.now())
        return web.json_response(messages_json(notices + render_menu(lang)))

    async def updates(self, request: web.Request) -> web.Response:
        """Notifications queued for this browser since it last asked (the page polls)."""
        try:
            session_id = await self._session_only(request)
        except BadRequest as error:
            return error_response(error)
        notices = await take_notices(session_id, self.conversation.now())
        return web.json_response(messages_json(notices))

    async def _session_only(self, request: web.Request) -> str:
        data = await self._json_body(request)
        if not isinstance(data, dict):
            raise BadRequest("invalid_body", "the body must be a JSON object")
        return _session_id(data.get("session_id"))

    async def upload(self, request: web.Request) -> web.Response:
        try:
            upload = await self._read_upload(request)
            session_id = _session_id(upload.session_id)
            message_id = _message_id(upload.message_id)
            if upload.data is None and upload.size == 0:
                raise BadRequest("missing_file", "a non-empty file field is required")
        except BadRequest as error:
            return error_response(error)
        kind = "photo" if (upload.mime_type or "").startswith("image/") else "file"
        try:
            if upload.size > self.max_file_bytes:
                raise AttachmentTooLarge(upload.size, self.max_file_bytes)
            file = await self.conversation.store_file(
                Channel.WEB,
                FileRef(
                    file_id=WEB_UPLOAD,
                    file_name=upload.file_name,
                    mime_type=upload.mime_type,
                    size=upload.size,
                    data=upload.data,
                ),
            )
            # What the bytes are, not what the browser said (a stored file is typed by content).
            kind = "photo" if (file.mime_type or "").startswith("image/") else "file"
        except AttachmentTooLarge as refused:
            # Nothing stored; the dialog tells the person the size and the limit in context.
            file = FileRef(
                file_id=WEB_UPLOAD,
                file_name=upload.file_name,
                mime_type=upload.mime_type,
                size=refused.size,
            )
        incoming = Incoming(
            channel=Channel.WEB, user_id=session_id, kind=kind, file=file, message_id=message_id
        )
        return await self._answer(request, incoming)

    async def _answer(self, request: web.Request, incoming: Incoming) -> web.StreamResponse:
        """The replies are the response. With a message_id they are outbox rows committed with
        the turn, marked sent once the response is written: a request that dies in between is
        answered again by its retry (same message_id), or by the page's next /updates."""
        try:
            replies = await self.conversation.handle(incoming)
        except Exception:
            # The turn was rolled back, so nothing is lost; say so instead of a bare 500.
            log.exception("web chat turn failed for session %s", incoming.user_id)
            body = messages_json(self.conversation.failure_reply())
            return web.json_response({**body, "error": "internal"}, status=500)
        if not isinstance(replies, Replies) or not replies.claimed:
            return web.json_response(messages_json(list(replies)))
        response = web.json_response(messages_json([c.message for c in replies.claimed]))
        request_id = current_context().get("request")
        if request_id:  # written before the middleware could add it
            response.headers["X-Request-Id"] = request_id
        await response.prepare(request)
        await response.write_eof()
        await mark_all_sent(replies.claimed, self.conversation.now())
        return response

    async def _json_body(self, request: web.Request) -> Any:
        if request.content_length is not None and request.content_length > MESSAGE_BODY_LIMIT:
            raise BadRequest("too_large", f"the body is limited to {MESSAGE_BODY_LIMIT} bytes", 413)
        raw = bytearray()
        # read() returns what has arrived so far: keep reading to the end (or past the limit).
        while chunk := await request.content.read(MESSAGE_BODY_LIMIT + 1 - len(raw)):
            raw += chunk
            if len(raw) > MESSAGE_BODY_LIMIT:
                limit = MESSAGE_BODY_LIMIT
                raise BadRequest("too_large", f"the body is limited to {limit} bytes", 413)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("invalid_json", "the body must be JSON (UTF-8)") from None

    async def _read_upload(self, request: web.Request) -> Upload:
        if not request.content_type.startswith("multipart/"):
            raise BadRequest("invalid_body", "send the file as multipart/form-data")
        try:
            reader = await request.multipart()
            upload = Upload()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise BadRequest("invalid_body", "nested multipart is not accepted")
                if part.name == "file":
                    await self._read_file(part, upload)
                elif part.name in ("session_id", "message_id"):
                    value = await self._small_field(part)
                    setattr(upload, part.name, value)
                else:
                    await part.release()
            return upload
        except (ValueError, AssertionError) as error:  # malformed multipart framing
            raise BadRequest("invalid_body", f"malformed multipart body: {error}") from None

    async def _small_field(self, part: BodyPartReader) -> str:
        data = bytearray()
        while chunk := await part.read_chunk(SMALL_FIELD_LIMIT):
            data += chunk
            if len(data) > SMALL_FIELD_LIMIT:
                raise BadRequest("invalid_body", f"field {part.name} is too long")
        return data.decode("utf-8", errors="replace").strip()

    async def _read_file(self, part: BodyPartReader, upload: Upload) -> None:
        """Keep the bytes up to the limit; past it only count (to tell the size), then cut off."""
        kept = bytearray()
        size = 0
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > self.upload_cutoff:
                limit_mb = self.settings.max_photo_mb
                raise BadRequest("too_large", f"files are limited to {limit_mb:g} MB", 413)
            if size <= self.max_file_bytes:
                kept += chunk
        upload.size = size
        upload.data = bytes(kept) if 0 < size <= self.max_file_bytes else None
        name = Path(part.filename or "").name[:255]
        upload.file_name = name or None
        mime = part.headers.get("Content-Type", "")
        upload.mime_type = mime.split(";")[0].strip()[:100] or None


def setup_webchat(app: web.Application, conversation: Conversation, settings: Settings) -> None:
    chat = WebChat(conversation, settings)
    app.router.add_get("/webchat", chat.page)
    app.router.add_static("/webchat/static", STATIC_DIR)
    app.router.add_post("/webchat/api/message", chat.message)
    app.router.add_post("/webchat/api/hello", chat.hello)
    app.router.add_post("/webchat/api/updates", chat.updates)
    app.router.add_post("/webchat/api/upload", chat.upload)
