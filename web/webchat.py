"""The web chat: a mobile page at /webchat and the small JSON API it talks to.

For the demo and for people with neither Telegram nor WeChat. The browser keeps a random session
id (crypto.randomUUID, in localStorage) that plays the part of a platform user id; all dialog
state is server-side in the database, like every other channel.

    POST /webchat/api/message  {"session_id", "text" | "choice" | "location", "message_id"?}
    POST /webchat/api/upload   multipart: session_id, file, message_id?
    POST /webchat/api/hello    {"session_id"}: waiting notifications, then the opening menu
    POST /webchat/api/updates  {"session_id"}: notifications queued for this browser since
    → 200 {"messages": [{"text", "choices": [{"id", "label"}], "ask", "remove_keyboard"}],
           "drafting"?: bool (message/upload: a draft would be lost by cancelling)}
    → 400/413 {"error": "<code>", "detail": "<what is wrong>"} for a malformed request
    GET  /webchat/api/events?session_id=…  server-sent events: {"messages": [...]} per event
    POST /webchat/api/find     {"session_id", "number", "proof"}: phone or access code →
         200 {"complaint": {...}} (put on this session's list) | 404 | 429 (rate-limited)
    POST /webchat/api/mine     {"session_id"}: the complaints filed or found in this session
    → 409 for an upload the dialog did not ask for (only a photos step or a supplement takes
      files), 429 past the upload caps (files and bytes per session and per client address
      within `upload_window_minutes`); `detail` is then in the person's language

Notifications the workflow queues for a web complainant (outbox rows on channel "web", chat id
= session id) are pushed over the event stream as soon as they are due, and handed over by the
poll when the stream is down; each row is marked sent when handed over, so it comes once.
The page's chrome is rendered in the browser's language (handlers/webtexts.py); the progress
page /c/<number> and /privacy are in web/public.py.

A text starting with "/" is a command ("/status"). `message_id` (optional, client-generated)
makes a retried request harmless: the same id is processed once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from bot.attachments import (
    AttachmentTooLarge,
    attachment_ref,
    max_attachment_bytes,
    store_attachment,
)
from bot.conversation import Conversation
from bot.guards import BadJson, BodyTooLarge, load_json, read_body
from bot.logs import current_context
from bot.replies import Replies, mark_all_sent, wall_clock
from config.settings import Settings
from handlers import lookup as lookup_texts
from handlers.dialog import DialogState, expects_files, render_menu, render_refusal
from handlers.i18n import format_date, supported, translator
from handlers.messages import FileRef, Incoming, Outgoing
from handlers.selfservice import state_label
from handlers.turn import DRAFT_FLOWS
from handlers.webtexts import CHAT_TEXTS, texts
from models.entities import Attachment, Channel, DialogSession, OutboxMessage, OutboxStatus
from models.lookup import check, follow, followed, stages_of
from models.numbering import NUMBER_SOURCE, example_number, normalise_number
from models.outbox import outgoing_from_json
from web.public import (
    client_address,
    limited_text,
    limits_of,
    page_language,
    render,
    setup_public,
    split_proof,
)

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
PART_HEADER_LIMIT = 1024
MB = 1024 * 1024
# C0 controls (NUL, CR, LF...) and DEL; a tab is allowed.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# What aiohttp's multipart reader raises on a malformed body or part header.
MALFORMED_MULTIPART = (
    ValueError, AssertionError, LookupError, UnicodeError, HttpProcessingError, RuntimeError,
)  # fmt: skip
# The "platform file id" of a browser upload: the browser has none of its own.
WEB_UPLOAD = "web-upload"
# Past this many bytes an upload is cut off (413) rather than read to learn its size.
UPLOAD_CUTOFF_FACTOR = 4
# Server-sent events: how often the stream looks for queued notifications, when it sends a
# keep-alive comment, and how long one stream lives before the browser reconnects.
PUSH_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
STREAM_SECONDS = 300.0

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
    """A malformed request: answered with a JSON error, the conversation is not touched.

    `say` (a handlers.dialog.render_refusal code and its parameters) gives the person a
    translated `detail` instead of the technical one."""

    def __init__(
        self,
        code: str,
        detail: str,
        status: int = 400,
        *,
        say: str | None = None,
        **params: object,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.say = say
        self.params = params


def outgoing_json(message: Outgoing) -> dict[str, Any]:
    return {
        "text": message.text,
        "choices": [{"id": c.id, "label": c.label} for c in message.choices],
        "ask": message.ask,
        "remove_keyboard": message.remove_keyboard,
    }


def messages_json(messages: list[Outgoing], drafting: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [outgoing_json(m) for m in messages]}
    if drafting is not None:
        body["drafting"] = drafting  # the page asks before a draft is thrown away
    return body


def sse_event(body: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


def error_response(error: BadRequest, lang: str | None = None) -> web.Response:
    detail = error.detail
    if error.say is not None:
        detail = render_refusal(error.say, supported(lang), **error.params)
    return web.json_response({"error": error.code, "detail": detail}, status=error.status)


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
            raise BadRequest(
                "text_too_long",
                f"text is limited to {TEXT_LIMIT} characters",
                say="text_too_long",
                length=len(text),
                limit=TEXT_LIMIT,
            )
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
        self.caps = UploadCaps(settings)
        conversation.keep_replies_in_outbox(Channel.WEB)

    async def page(self, request: web.Request) -> web.StreamResponse:
        lang = page_language(request, self.settings.language)
        t = texts(CHAT_TEXTS, lang)
        response = render(
            "webchat.html",
            lang=lang,
            html_lang=lang.replace("_", "-"),
            t=t,
            texts_json=json.dumps(t, ensure_ascii=False).replace("</", "<\\/"),
            # The script recognises numbers by the server's one rule (models/numbering.py).
            number_source=NUMBER_SOURCE,
            number_example=example_number(self.conversation.profile.numbering.format),
        )
        response.headers.update(PAGE_HEADERS)
        return response

    async def _dialog_row(self, session_id: str) -> DialogSession | None:
        return await DialogSession.filter(channel=Channel.WEB, external_id=session_id).first()

    async def _drafting(self, session_id: str) -> bool:
        row = await self._dialog_row(session_id)
        return bool(row and row.state and row.state.get("flow") in DRAFT_FLOWS)

    async def find(self, request: web.Request) -> web.Response:
        """A complaint by number plus phone or access code, from this or any other browser:
        a match goes on this session's "my complaints" list (rate-limited per address and
        per number; 429 past the limit)."""
        try:
            data = await self._json_body(request)
            if not isinstance(data, dict):
                raise BadRequest("invalid_body", "the body must be a JSON object")
            session_id = _session_id(data.get("session_id"))
            number = normalise_number(str(data.get("number") or ""))
            proof = data.get("proof")
            if not isinstance(proof, str) or not proof.strip():
                raise BadRequest("missing_proof", "send the phone number or the access code")
        except BadRequest as error:
            return error_response(error)
        lang = await self._language(session_id)
        _ = translator(lang)
        phone, code = split_proof(proof)
        if number is None or not (phone or code):
            detail = _("That phone number or code does not match this complaint.")
            return web.json_response({"error": "not_found", "detail": detail}, status=404)
        now = self.conversation.now()
        outcome = await check(
            number=number,
            phone=phone,
            code=code,
            address=f"ip:{client_address(request, self.settings.forwarded_hops)}",
            now=now,
            limits=limits_of(self.settings),
        )
        if outcome.status == "limited":
            return web.json_response(
                {
                    "error": "rate_limited",
                    "detail": limited_text(lang, outcome.retry_after),
                    "retry_after": outcome.retry_after,
                },
                status=429,
                headers={"Retry-After": str(outcome.retry_after)},
            )
        if outcome.status != "ok" or outcome.complaint is None:
            detail = _("That phone number or code does not match this complaint.")
            return web.json_response({"error": "not_found", "detail": detail}, status=404)
        await follow(Channel.WEB, session_id, outcome.complaint, now)
        return web.json_response({"complaint": self._summary(outcome.complaint, lang)})

    async def mine(self, request: web.Request) -> web.Response:
        """This session's complaints: those it filed and those it found again."""
        try:
            session_id = await self._session_only(request)
        except BadRequest as error:
            return error_response(error)
        lang = await self._language(session_id)
        rows = await followed(Channel.WEB, session_id)
        return web.json_response({"complaints": [self._summary(c, lang) for c in rows]})

    def _summary(self, complaint: Any, lang: str) -> dict[str, Any]:
        tz = self.settings.tz
        return {
            "number": complaint.number,
            "state": str(complaint.state),
            "state_label": state_label(translator(lang), str(complaint.state)),
            "filed": (
                format_date(complaint.submitted_at, lang, tz) if complaint.submitted_at else ""
            ),
            "stages": lookup_texts.stage_lines(stages_of(complaint), lang, tz),
            "link": lookup_texts.progress_path(complaint.number),
        }

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: notifications for this browser as soon as they are queued.

        The page's poll stays as the fallback (a proxy that buffers, an old browser); a row
        goes to whichever asks first, once (take_notices marks it sent).
        """
        try:
            session_id = _session_id(request.query.get("session_id"))
        except BadRequest as error:
            return error_response(error)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 3000\n: connected\n\n")
        loop = asyncio.get_running_loop()
        started = last_write = loop.time()
        try:
            while loop.time() - started < STREAM_SECONDS:
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                notices = await take_notices(session_id, self.conversation.now())
                if notices:
                    await response.write(sse_event(messages_json(notices)))
                    last_write = loop.time()
                elif loop.time() - last_write >= HEARTBEAT_SECONDS:
                    await response.write(b": ping\n\n")
                    last_write = loop.time()
                await asyncio.sleep(PUSH_SECONDS)
        except (ConnectionResetError, ConnectionError):
            pass  # the browser went away; what was not written is still pending
        return response

    async def message(self, request: web.Request) -> web.Response:
        data: Any = None
        try:
            data = await self._json_body(request)
            incoming = parse_message(data)
        except BadRequest as error:
            given = data.get("session_id") if error.say and isinstance(data, dict) else None
            return error_response(error, await self._language(given))
        return await self._answer(request, incoming)

    async def _state(self, session_id: str) -> DialogState | None:
        row = await DialogSession.filter(channel=Channel.WEB, external_id=session_id).first()
        return DialogState.from_json(row.state) if row and row.state else None

    async def _language(self, session_id: object) -> str:
        """The session's language (for a refusal's text), else the default one."""
        state = None
        if isinstance(session_id, str) and SESSION_ID.fullmatch(session_id):
            state = await self._state(session_id)
        return supported((state.language if state else None) or self.settings.language)

    async def hello(self, request: web.Request) -> web.Response:
        """An empty chat window: waiting notifications, then the menu; the dialog is untouched."""
        try:
            session_id = await self._session_only(request)
        except BadRequest as error:
            return error_response(error)
        state = await self._state(session_id)
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
        """A photo or file: stored only when the dialog asks for files (409 otherwise) and the
        session and the client address are within their caps (429 otherwise)."""
        state: DialogState | None = None
        client = client_address(request, self.settings.forwarded_hops)
        try:
            upload = await self._read_upload(request)
            session_id = _session_id(upload.session_id)
            message_id = _message_id(upload.message_id)
            if upload.data is None and upload.size == 0:
                raise BadRequest("missing_file", "a non-empty file field is required")
            state = await self._state(session_id)
            if not expects_files(state, self.conversation.profile):
                raise BadRequest(
                    "not_expecting_files",
                    "files are taken only at a step that asks for photos",
                    409,
                    say="not_expecting_files",
                )
            await self.caps.admit(session_id, client, min(upload.size, self.max_file_bytes))
        except BadRequest as error:
            lang = (state.language if state else None) or self.settings.language
            return error_response(error, lang)
        kind = "photo" if (upload.mime_type or "").startswith("image/") else "file"
        try:
            if upload.size > self.max_file_bytes:
                raise AttachmentTooLarge(upload.size, self.max_file_bytes)
            stored = await store_attachment(
                Channel.WEB,
                FileRef(
                    file_id=WEB_UPLOAD,
                    file_name=upload.file_name,
                    mime_type=upload.mime_type,
                    size=upload.size,
                    data=upload.data,
                ),
                max_bytes=self.max_file_bytes,
                uploader=session_id,
                client_address=client,
            )
            file = attachment_ref(stored)
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
        drafting = await self._drafting(incoming.user_id)
        if not isinstance(replies, Replies) or not replies.claimed:
            return web.json_response(messages_json(list(replies), drafting))
        response = web.json_response(messages_json([c.message for c in replies.claimed], drafting))
        request_id = current_context().get("request")
        if request_id:  # written before the middleware could add it
            response.headers["X-Request-Id"] = request_id
        await response.prepare(request)
        await response.write_eof()
        await mark_all_sent(replies.claimed, self.conversation.now())
        return response

    async def _json_body(self, request: web.Request) -> Any:
        try:
            return load_json(await read_body(request, MESSAGE_BODY_LIMIT))
        except BodyTooLarge:
            limit = MESSAGE_BODY_LIMIT
            raise BadRequest(
                "too_large", f"the body is limited to {limit} bytes", 413, say="body_too_large"
            ) from None
        except BadJson as error:
            raise BadRequest("invalid_json", f"the body must be JSON (UTF-8): {error}") from None

    async def _read_upload(self, request: web.Request) -> Upload:
        if not request.content_type.startswith("multipart/"):
            raise BadRequest("invalid_body", "send the file as multipart/form-data")
        try:
            reader = await request.multipart()
            upload = Upload()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise BadRequest("invalid_body", "nested multipart is not accepted")
                _check_part_headers(part)
                if part.name == "file":
                    await self._read_file(part, upload)
                elif part.name in ("session_id", "message_id"):
                    value = await self._small_field(part)
                    setattr(upload, part.name, value)
                else:
                    await part.release()
            return upload
        except MALFORMED_MULTIPART as error:  # malformed multipart framing or part headers
            detail = f"malformed multipart body: {type(error).__name__}"
            raise BadRequest("invalid_body", detail) from None

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
        name = CONTROL_CHARS.sub("", Path(part.filename or "").name)[:255]
        upload.file_name = name or None
        mime = part.headers.get("Content-Type", "")
        upload.mime_type = CONTROL_CHARS.sub("", mime.split(";")[0].strip())[:100] or None


def _check_part_headers(part: BodyPartReader) -> None:
    """A part header carrying a NUL or another control character is no browser's: refuse it
    before its values reach a file name, a log line or the database."""
    for name, value in part.headers.items():
        if CONTROL_CHARS.search(name) or CONTROL_CHARS.search(value):
            raise BadRequest("invalid_part_header", "a part header holds a control character")
        if len(value) > PART_HEADER_LIMIT:
            raise BadRequest("invalid_part_header", "a part header is too long")
        try:  # bytes that are not UTF-8 arrive as lone surrogates, which nothing can store
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("invalid_part_header", "a part header is not UTF-8") from None


class UploadCaps:
    """The web chat's upload caps: files and bytes per browser session and per client address
    within a sliding window, counted from the stored Attachment rows, so every worker sees the
    same counts."""

    def __init__(self, settings: Settings) -> None:
        self.window = timedelta(minutes=settings.upload_window_minutes)
        self.session_files = settings.uploads_per_session
        self.session_bytes = int(settings.upload_mb_per_session * MB)
        self.client_files = settings.uploads_per_client
        self.client_bytes = int(settings.upload_mb_per_client * MB)

    async def admit(self, session_id: str, client: str, size: int) -> None:
        """BadRequest(429) when one more file of `size` bytes would pass a cap."""
        # created_at is stamped by the database layer on the wall clock: compare with that.
        since = datetime.now(UTC) - self.window
        recent = Attachment.filter(channel=Channel.WEB, created_at__gte=since)
        for who, files, total, reason in (
            ({"uploader": session_id}, self.session_files, self.session_bytes, "session"),
            ({"client_address": client}, self.client_files, self.client_bytes, "client"),
        ):
            sizes = await recent.filter(**who).limit(files + 1).values_list("size", flat=True)
            if len(sizes) + 1 > files or sum(sizes) + size > total:
                log.warning("web chat upload refused: %s cap reached (%s)", reason, client)
                raise BadRequest(
                    f"{reason}_upload_limit",
                    f"upload cap per {reason} reached: {files} files or "
                    f"{total // MB} MB per {self.window}",
                    429,
                    say=f"{reason}_upload_limit",
                )


def setup_webchat(app: web.Application, conversation: Conversation, settings: Settings) -> None:
    chat = WebChat(conversation, settings)
    app.router.add_get("/webchat", chat.page)
    app.router.add_static("/webchat/static", STATIC_DIR)
    app.router.add_post("/webchat/api/message", chat.message)
    app.router.add_post("/webchat/api/hello", chat.hello)
    app.router.add_post("/webchat/api/updates", chat.updates)
    app.router.add_post("/webchat/api/upload", chat.upload)
    app.router.add_post("/webchat/api/find", chat.find)
    app.router.add_post("/webchat/api/mine", chat.mine)
    app.router.add_get("/webchat/api/events", chat.events)
    setup_public(app, settings, conversation.profile, conversation.now)
