"""A fake Telegram Bot API server: a real aiohttp server on 127.0.0.1 for tests and benches.

python-telegram-bot talks to it over real HTTP through its custom base URLs::

    async with FakeTelegram() as tg:
        app = (ApplicationBuilder().token(tg.token)
               .base_url(f"{tg.base_url}/bot").base_file_url(f"{tg.base_url}/file/bot").build())

Tests play the people on the other side (`push_message`, `push_callback`, `press`) and assert
what each chat received (`sent_to`, `texts_to`, `calls`).

Faithful to the real Bot API (so the product meets the same behaviour it will meet in production):
- URL shapes `/bot<token>/<method>` (method names case-insensitive, GET or POST) and
  `/file/bot<token>/<file_path>`; bodies as JSON, form-urlencoded or multipart (file parts by
  field name or by `attach://<name>`), form values JSON-decoded as Telegram does.
- The response envelope `{"ok", "result"}` / `{"ok": false, "error_code", "description",
  "parameters": {"retry_after"}}` and the exact descriptions of the errors the product must handle:
  401 Unauthorized, 404 unknown method, 400 "message text is empty" / "message is too long"
  (4096 characters after entity parsing; captions 1024) / "chat not found" / "can't parse
  entities: ..." / "message is not modified: ..." / "message to edit not found" /
  "BUTTON_DATA_INVALID" (callback_data over 64 bytes) / "query is too old ..." /
  "file is too big" (getFile over 20 MB), 403 "Forbidden: bot was blocked by the user",
  409 for getUpdates while a webhook is set or when a newer getUpdates call supersedes it,
  429 "Too Many Requests: retry after N" with `parameters.retry_after`.
- getUpdates long polling: waits up to `timeout` seconds, returns updates with
  `update_id >= offset` and forgets (confirms) those below it, negative offsets, `limit`,
  `allowed_updates`; unconfirmed updates are redelivered, so a re-sent update_id reaches the bot
  twice exactly as a Telegram retry would.
- Update JSON as Telegram builds it: `bot_command` entities (UTF-16 offsets) for /commands, photo
  as several PhotoSize entries smallest first, contact with the sharer's user_id, per-chat
  message_id sequence shared by both sides, callback queries carrying the message they belong to.
- HTML parse mode: only Telegram's tags, balanced, entities decoded — unescaped `<` in user text
  fails just as it would on Telegram, and the returned message carries plain text + entities.

Simplified (documented so nobody relies on it):
- One bot per server (one token); chats are private unless their id is negative (a group).
- MarkdownV2 / Markdown are checked for the common mistakes only (unescaped reserved characters
  such as `.`, `!`, `-`; unclosed `*`, `_`, `~`, `` ` ``, `||`, links) — not tdlib's full grammar.
- Flood control is off unless `set_flood_limits` is called; it then uses plain sliding windows,
  not Telegram's undocumented burst allowances.
- Webhooks are not delivered automatically: tests call `deliver_webhook` (no retries, no TLS);
  a method in the webhook's JSON response is run as Telegram runs it.
- Sizes are checked for getFile (20 MB) and captions/text only; photo dimensions are invented.
- Edits by inline_message_id, media groups, payments, inline mode and business messages are
  not implemented (unknown methods answer 404 "Not Found", like Telegram does).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from tests.fakes.loopback import LoopbackServer
from tests.waiting import WITHIN_SECONDS

JSONDict = dict[str, Any]

DEFAULT_TOKEN = "123456789:AAFakeTelegramTokenForTestsOnly-000000"
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # Bot API getFile limit
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

# Parameters Telegram reads as strings even when they look like JSON numbers ("123" stays text).
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "file_id",
        "url",
        "secret_token",
        "language_code",
        "ip_address",
        "business_connection_id",
        "inline_message_id",
        "message_effect_id",
        "action",
    }
)
# Methods that put something into a chat: the ones flood control and chat errors apply to.
_SENDING_METHODS = frozenset({"sendmessage", "sendphoto", "senddocument", "sendchataction"})
_CHAT_METHODS = _SENDING_METHODS | frozenset(
    {"editmessagetext", "editmessagereplymarkup", "deletemessage"}
)

_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


class ApiError(Exception):
    """An error answer of the Bot API; raised inside method handlers, rendered as JSON."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def _bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class ApiCall:
    """One request the bot made, as the server understood it."""

    method: str  # canonical spelling, e.g. "sendMessage"
    params: JSONDict  # decoded values; uploaded files appear as {"filename", "content_type", ...}
    chat_id: int | str | None
    status: int  # HTTP status of the answer
    result: Any = None  # the `result` returned on success
    error: str | None = None  # the description returned on failure
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = 0.0  # event-loop time, for benches measuring send rates

    @property
    def ok(self) -> bool:
        return self.status == 200

    def as_dict(self) -> JSONDict:
        return {"method": self.method, "params": self.params, "status": self.status}


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    size: int
    content: bytes | None  # None: a declared size only, zero bytes are served on download


@dataclass
class _Chat:
    info: JSONDict
    next_message_id: int = 1
    messages: dict[int, JSONDict] = field(default_factory=dict)
    error: ApiError | None = None  # a standing error for every call to this chat


@dataclass
class _Failure:
    method: str  # lower-case method name or "*"
    status: int
    description: str
    retry_after: int | None
    remaining: int
    chat_id: int | str | None


_REGISTERED = object()  # deliver_webhook: use the secret_token given to setWebhook


class FakeTelegram(LoopbackServer):
    """The fake Bot API server; use as `async with FakeTelegram() as tg:`."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "complaintdesk_bot",
        bot_first_name: str = "ComplaintDesk",
        first_update_id: int = 100_001,
        known_chats_only: bool = False,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user: JSONDict = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        # Telegram answers "chat not found" for chats that never talked to the bot; off by default
        # so notification tests need not script a /start for every recipient.
        self.known_chats_only = known_chats_only
        self.calls: list[ApiCall] = []
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.webhook: JSONDict | None = None
        self.webhook_deliveries: list[tuple[JSONDict, int]] = []
        self.answered_callbacks: dict[str, JSONDict] = {}

        self._update_ids = itertools.count(first_update_id)
        self._pending: list[JSONDict] = []  # updates not yet confirmed by an offset
        self._chats: dict[int | str, _Chat] = {}
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._file_seq = itertools.count(1)
        self._callbacks: dict[str, JSONDict] = {}  # query id -> the callback_query pushed
        self._callback_seq = itertools.count(1)
        self._failures: list[_Failure] = []
        self._flood: dict[str, float | None] = {}
        self._sent_times: dict[int | str, deque[float]] = {}
        self._global_sent_times: deque[float] = deque()

        self._changed = asyncio.Event()  # replaced after every set: wakes long polls and waiters
        self._poll_generation = 0
        self.waiting_polls = 0  # getUpdates calls currently held open (long polling)
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._method_table = self._methods()
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`; PTB wants `{base_url}/bot` and `{base_url}/file/bot`."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/bot"

    @property
    def file_url(self) -> str:
        return f"{self.base_url}/file/bot"

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        return app

    async def stop(self) -> None:
        self._closing = True
        self._notify()  # release long polls so shutdown does not wait for their timeouts
        await super().stop()

    # ------------------------------------------------------------------ simulating people

    def push_message(
        self,
        chat_id: int,
        user_id: int,
        text: str | None = None,
        *,
        language_code: str | None = "zh-hans",
        first_name: str | None = None,
        username: str | None = None,
        contact: str | JSONDict | None = None,
        location: tuple[float, float] | None = None,
        photo: bytes | int | None = None,
        document: bytes | int | None = None,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        sticker: bool = False,
        update_id: int | None = None,
        date: int | datetime | None = None,
        enqueue: bool = True,
    ) -> JSONDict:
        """A person writes to the bot; returns the Update (queued for getUpdates if `enqueue`).

        `photo` / `document` are the file's bytes, or just a size in bytes (the download then
        serves that many zero bytes) to test limits without building big buffers.
        `contact` is a phone number (shared by the sender, as request_contact does) or a full
        Contact dict. Pass an earlier `update_id` to re-deliver a duplicate.
        """
        user = self._user(user_id, first_name, username, language_code)
        chat = self._chat_for(chat_id, user)
        message: JSONDict = {
            "message_id": self._next_message_id(chat_id),
            "from": user,
            "chat": chat.info,
            "date": self._timestamp(date),
        }
        if text is not None:
            message["text"] = text
            entities = _command_entities(text)
            if entities:
                message["entities"] = entities
        if contact is not None:
            message["contact"] = (
                contact
                if isinstance(contact, dict)
                else {
                    "phone_number": contact,
                    "first_name": user["first_name"],
                    "user_id": user_id,
                }
            )
        if location is not None:
            message["location"] = {"latitude": location[0], "longitude": location[1]}
        if photo is not None:
            message["photo"] = self._photo_sizes(photo)
        if document is not None:
            stored = self._store_file(document, "documents", file_name)
            message["document"] = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": stored.size,
            }
        if sticker:
            stored = self._store_file(b"RIFF\x00\x00\x00\x00WEBPVP8 ", "stickers", "sticker.webp")
            message["sticker"] = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": "👍",
                "file_size": stored.size,
            }
        if caption is not None:
            message["caption"] = caption
        chat.messages[message["message_id"]] = message
        update = {"update_id": self._take_update_id(update_id), "message": message}
        if enqueue:
            self.push_update(update)
        return update

    def push_callback(
        self,
        chat_id: int,
        user_id: int,
        data: str,
        message_id: int,
        *,
        language_code: str | None = "zh-hans",
        first_name: str | None = None,
        update_id: int | None = None,
        enqueue: bool = True,
    ) -> JSONDict:
        """A person presses an inline button with `data` under the bot's message `message_id`."""
        user = self._user(user_id, first_name, None, language_code)
        chat = self._chat_for(chat_id, user)
        message = chat.messages.get(message_id) or {
            "message_id": message_id,
            "from": self.bot_user,
            "chat": chat.info,
            "date": self._timestamp(None),
            "text": "",
        }
        query_id = f"{self.bot_id}{next(self._callback_seq):08d}"
        query = {
            "id": query_id,
            "from": user,
            "message": message,
            "chat_instance": f"{self.bot_id}{abs(chat_id)}",
            "data": data,
        }
        self._callbacks[query_id] = query
        update = {"update_id": self._take_update_id(update_id), "callback_query": query}
        if enqueue:
            self.push_update(update)
        return update

    def press(self, chat_id: int, user_id: int, label: str, **kwargs: Any) -> JSONDict:
        """Press the inline button labelled `label` on the latest bot message that shows it."""
        for message in reversed(list(self._chat(chat_id).messages.values())):
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            for button in itertools.chain.from_iterable(rows):
                if button.get("text") == label and "callback_data" in button:
                    return self.push_callback(
                        chat_id, user_id, button["callback_data"], message["message_id"], **kwargs
                    )
        raise LookupError(f"no inline button {label!r} in chat {chat_id}")

    def push_update(self, update: JSONDict) -> None:
        """Queue a ready-made Update for getUpdates (its update_id may repeat an earlier one)."""
        self._pending.append(update)
        self._notify()

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates the bot has not confirmed yet (by asking for a higher offset)."""
        return list(self._pending)

    async def deliver_webhook(
        self,
        url: str | None,
        update: JSONDict,
        secret_token: str | object | None = _REGISTERED,
    ) -> int:
        """POST `update` to a webhook the way Telegram does; returns the HTTP status.

        `url=None` uses the URL given to setWebhook; `secret_token` defaults to the registered
        one and `None` sends no X-Telegram-Bot-Api-Secret-Token header at all.
        """
        if url is None:
            if self.webhook is None:
                raise RuntimeError("no webhook set and no url given")
            url = self.webhook["url"]
        if secret_token is _REGISTERED:
            secret_token = (self.webhook or {}).get("secret_token")
        headers = {"Content-Type": "application/json"}
        if isinstance(secret_token, str):
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
        async with (
            ClientSession(timeout=ClientTimeout(total=30)) as session,
            session.post(url, data=json.dumps(update), headers=headers) as response,
        ):
            body = await response.read()
            status = response.status
            replied_json = response.content_type == "application/json"
        self.webhook_deliveries.append((update, status))
        if status == 200 and replied_json:
            await self._webhook_reply(body)
        return status

    async def _webhook_reply(self, body: bytes) -> None:
        """Telegram runs one Bot API method given as a webhook's JSON response ("method" and
        its parameters) and tells the bot nothing about its outcome; it is recorded in `calls`
        like any other call."""
        try:
            params = json.loads(body)
        except ValueError:
            return
        if not isinstance(params, dict) or not isinstance(params.get("method"), str):
            return
        handler = self._method_table.get(params.pop("method").lower())
        if handler is not None and handler[0] not in ("getUpdates", "getFile", "getMe"):
            await self._run_method(handler, params, {})

    # ------------------------------------------------------------------ files and chat state

    def add_file(self, content: bytes | int, file_name: str = "file.bin") -> str:
        """Register a downloadable file (bytes, or a size only); returns its file_id."""
        return self._store_file(content, "documents", file_name).file_id

    def file_content(self, file_id: str) -> bytes:
        """What the bot uploaded (or a test registered) under `file_id`."""
        stored = self._files[file_id]
        return stored.content if stored.content is not None else bytes(stored.size)

    def block_chat(self, chat_id: int | str) -> None:
        """The person blocked the bot: every call to this chat answers 403."""
        self._chat(chat_id).error = ApiError(403, "Forbidden: bot was blocked by the user")

    def lose_chat(self, chat_id: int | str) -> None:
        """The chat is gone (deleted account, wrong id): every call answers 400 chat not found."""
        self._chat(chat_id).error = _bad_request("chat not found")

    def restore_chat(self, chat_id: int | str) -> None:
        self._chat(chat_id).error = None

    def fail_next(
        self,
        method: str,
        status: int = 429,
        *,
        retry_after: int | None = 2,
        count: int = 1,
        description: str | None = None,
        chat_id: int | str | None = None,
    ) -> None:
        """The next `count` calls of `method` ("*" for any but getUpdates) fail with `status`.

        429 carries `parameters.retry_after`; 500 answers JSON; 502/504 answer an HTML page the
        way Telegram's front proxies do. `chat_id` limits the failure to calls for that chat.
        """
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                400: "Bad Request: chat not found",
                403: "Forbidden: bot was blocked by the user",
                500: "Internal Server Error",
                502: "Bad Gateway",
                504: "Gateway Timeout",
            }.get(status, f"Error {status}")
        self._failures.append(
            _Failure(
                method=method.lower(),
                status=status,
                description=description,
                retry_after=retry_after if status == 429 else None,
                remaining=count,
                chat_id=_normalise_chat_id(chat_id) if chat_id is not None else None,
            )
        )

    def set_flood_limits(
        self,
        *,
        per_chat_per_second: float | None = 1.0,
        global_per_second: float | None = 30.0,
        per_group_per_minute: float | None = 20.0,
    ) -> None:
        """Answer 429 when sends exceed these sliding-window rates (Telegram's published ones)."""
        self._flood = {
            "chat": per_chat_per_second,
            "global": global_per_second,
            "group": per_group_per_minute,
        }

    # ------------------------------------------------------------------ what the bot did

    def sent_to(self, chat_id: int | str, *, include_failed: bool = False) -> list[JSONDict]:
        """Calls addressed to `chat_id`, in order, as {"method", "params", "status"} dicts."""
        wanted = _normalise_chat_id(chat_id)
        return [
            call.as_dict()
            for call in self.calls
            if call.chat_id == wanted and (include_failed or call.ok)
        ]

    def texts_to(self, chat_id: int | str) -> list[str]:
        """The texts and captions a person actually received, in order."""
        return [
            call["params"].get("text") or call["params"].get("caption") or ""
            for call in self.sent_to(chat_id)
            if call["method"] in {"sendMessage", "sendPhoto", "sendDocument"}
        ]

    def calls_of(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def messages_in(self, chat_id: int | str) -> list[JSONDict]:
        """The chat as the person sees it now: both sides, after edits and deletions."""
        return list(self._chat(chat_id).messages.values())

    def last_bot_message(self, chat_id: int | str) -> JSONDict | None:
        for message in reversed(self.messages_in(chat_id)):
            if message.get("from", {}).get("id") == self.bot_id:
                return message
        return None

    async def wait_for(
        self, condition: Callable[[], bool], *, within: float = WITHIN_SECONDS
    ) -> None:
        """Wait until `condition()` holds (checked after each request); AssertionError naming
        the calls received so far otherwise. The deadline is generous: CI may be busy."""
        try:
            async with asyncio.timeout(within):
                while not condition():
                    changed = self._changed
                    await changed.wait()
        except TimeoutError:
            seen = [(call.method, call.chat_id, call.status) for call in self.calls[-20:]]
            raise AssertionError(
                f"still not so after {within:.0f} s; the last calls received: {seen}"
            ) from None

    async def wait_sent(
        self, chat_id: int | str, count: int = 1, *, within: float = WITHIN_SECONDS
    ) -> list[JSONDict]:
        """Wait until `chat_id` has received at least `count` successful calls; returns them."""
        await self.wait_for(lambda: len(self.sent_to(chat_id)) >= count, within=within)
        return self.sent_to(chat_id)

    # ------------------------------------------------------------------ HTTP layer

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error_response(ApiError(401, "Unauthorized"))
        method_name = request.match_info["method"]
        handler = self._method_table.get(method_name.lower())
        if handler is None:
            return _error_response(ApiError(404, "Not Found"))
        try:
            params, files = await _read_params(request)
        except ValueError:
            return _error_response(_bad_request("can't parse JSON object"))
        return await self._run_method(handler, params, files)

    async def _run_method(
        self,
        handler: tuple[str, Callable[..., Any]],
        params: JSONDict,
        files: dict[str, bytes],
    ) -> web.Response:
        canonical, func = handler
        chat_id = self._call_chat_id(canonical, params)
        call = ApiCall(
            method=canonical,
            params=params,
            chat_id=chat_id,
            status=200,
            files=files,
            at=asyncio.get_running_loop().time(),
        )
        try:
            self._check_injected(canonical, chat_id)
            result = await func(params, files)
        except ApiError as exc:
            call.status, call.error = exc.status, exc.description
            self._record(call)
            return _error_response(exc)
        call.result = result
        self._record(call)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401, text="Unauthorized")
        stored = self._files_by_path.get(request.match_info["file_path"])
        if stored is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=self.file_content(stored.file_id))

    def _record(self, call: ApiCall) -> None:
        self.calls.append(call)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def clear_failures(self, chat_ids: Iterable[int | str]) -> None:
        """Forget the injected failures for these chats that no call has met yet."""
        chats = {str(chat) for chat in chat_ids}
        self._failures = [f for f in self._failures if str(f.chat_id) not in chats]

    def _check_injected(self, method: str, chat_id: int | str | None) -> None:
        lower = method.lower()
        for failure in self._failures:
            if failure.remaining <= 0:
                continue
            if failure.method not in (lower, "*") or (
                failure.method == "*" and lower == "getupdates"
            ):
                continue
            if failure.chat_id is not None and failure.chat_id != chat_id:
                continue
            failure.remaining -= 1
            raise ApiError(failure.status, failure.description, failure.retry_after)
        if lower in _CHAT_METHODS and chat_id is not None:
            chat = self._chats.get(chat_id)
            if chat is not None and chat.error is not None:
                raise chat.error
            if chat is None and self.known_chats_only:
                raise _bad_request("chat not found")
        if lower in _SENDING_METHODS and lower != "sendchataction" and chat_id is not None:
            self._check_flood(chat_id)

    def _check_flood(self, chat_id: int | str) -> None:
        if not self._flood:
            return
        now = asyncio.get_running_loop().time()
        is_group = isinstance(chat_id, int) and chat_id < 0
        limits: list[tuple[deque[float], float | None, float]] = [
            (self._global_sent_times, self._flood.get("global"), 1.0),
            (
                self._sent_times.setdefault(chat_id, deque()),
                self._flood.get("group") if is_group else self._flood.get("chat"),
                60.0 if is_group else 1.0,
            ),
        ]
        for times, rate, window in limits:
            while times and times[0] <= now - window:
                times.popleft()
            if rate is not None and len(times) >= rate * window:
                wait = math.ceil(times[0] + window - now)
                raise ApiError(429, f"Too Many Requests: retry after {wait}", max(wait, 1))
        for times, _, _ in limits:
            times.append(now)

    def _call_chat_id(self, method: str, params: JSONDict) -> int | str | None:
        if method == "answerCallbackQuery":
            query = self._callbacks.get(str(params.get("callback_query_id")))
            return query["message"]["chat"]["id"] if query else None
        if "chat_id" in params:
            return _normalise_chat_id(params["chat_id"])
        return None

    def _methods(self) -> dict[str, tuple[str, Callable[..., Any]]]:
        table: dict[str, Callable[..., Any]] = {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendChatAction": self._send_chat_action,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "getFile": self._get_file,
        }
        return {name.lower(): (name, func) for name, func in table.items()}

    # ------------------------------------------------------------------ Bot API methods

    async def _true(self, params: JSONDict, files: dict[str, bytes]) -> bool:
        return True

    async def _get_me(self, params: JSONDict, files: dict[str, bytes]) -> JSONDict:
        return self.bot_user

    async def _get_updates(self, params: JSONDict, files: dict[str, bytes]) -> list[JSONDict]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = params.get("allowed_updates")
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()  # an older long poll now learns it has been superseded
        if offset > 0:
            # Asking for `offset` confirms every update below it: they are gone for good.
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if allowed:
                # Updates of kinds the bot did not ask for are dropped, not kept for later.
                self._pending = [u for u in self._pending if any(kind in u for kind in allowed)]
            ready = self._pending
            if offset < 0:
                ready = ready[offset:]
            if ready or self._closing:
                return ready[:limit]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return []
            self.waiting_polls += 1
            self._notify()  # observers learn a poll waits; we wait on the event made after it
            # (taken before _notify, the event was already set: a loop that never yielded, which
            # hung the suite on Python 3.12+, where wait_for of a ready awaitable does not yield)
            changed = self._changed
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
            finally:
                self.waiting_polls -= 1

    async def _set_webhook(self, params: JSONDict, files: dict[str, bytes]) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params, files)
        if not url.startswith("https://") and not url.startswith("http://"):
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._pending.clear()
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": params.get("allowed_updates"),
            "max_connections": params.get("max_connections", 40),
        }
        self._notify()
        return True

    async def _delete_webhook(self, params: JSONDict, files: dict[str, bytes]) -> bool:
        if params.get("drop_pending_updates"):
            self._pending.clear()
        self.webhook = None
        return True

    async def _get_webhook_info(self, params: JSONDict, files: dict[str, bytes]) -> JSONDict:
        info: JSONDict = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self.webhook:
            info["max_connections"] = self.webhook["max_connections"]
            if self.webhook["allowed_updates"]:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    @staticmethod
    def _commands_key(params: JSONDict) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def _set_my_commands(self, params: JSONDict, files: dict[str, bytes]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad_request("can't parse commands JSON object")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                raise _bad_request("command description must be non-empty")
        language = params.get("language_code")
        if language and not re.fullmatch(r"[a-z]{2}", str(language)):
            raise _bad_request("invalid language code specified")
        self.commands[self._commands_key(params)] = commands
        return True

    async def _get_my_commands(self, params: JSONDict, files: dict[str, bytes]) -> list[JSONDict]:
        return self.commands.get(self._commands_key(params), [])

    async def _delete_my_commands(self, params: JSONDict, files: dict[str, bytes]) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def my_commands(self, language_code: str = "", scope: JSONDict | None = None) -> list[str]:
        """The command names set for a language (and scope), as the client would list them."""
        key = self._commands_key({"scope": scope, "language_code": language_code})
        return [command["command"] for command in self.commands.get(key, [])]

    async def _send_message(self, params: JSONDict, files: dict[str, bytes]) -> JSONDict:
        chat = self._target_chat(params)
        text, entities = _formatted(params.get("text"), params.get("parse_mode"), "text")
        message = self._bot_message(chat, params)
        message["text"] = text
        if entities:
            message["entities"] = entities
        return self._store_bot_message(chat, message)

    async def _send_photo(self, params: JSONDict, files: dict[str, bytes]) -> JSONDict:
        chat = self._target_chat(params)
        stored = self._media(params, files, "photo", "photos")
        message = self._bot_message(chat, params)
        message["photo"] = self._sizes_for_upload(stored)
        self._add_caption(message, params)
        return self._store_bot_message(chat, message)

    async def _send_document(self, params: JSONDict, files: dict[str, bytes]) -> JSONDict:
        chat = self._target_chat(params)
        stored = self._media(params, files, "document", "documents")
        message = self._bot_message(chat, params)
        upload = params.get("document")
        name = upload.get("filename") if isinstance(upload, dict) else None
        message["document"] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": name or stored.file_path.rsplit("/", 1)[-1],
            "file_size": stored.size,
        }
        if isinstance(upload, dict) and upload.get("content_type"):
            message["document"]["mime_type"] = upload["content_type"]
        self._add_caption(message, params)
        return self._store_bot_message(chat, message)

    async def _send_chat_action(self, params: JSONDict, files: dict[str, bytes]) -> bool:
        self._target_chat(params)
        return True

    async def _edit_message_text(self, params: JSONDict, files: dict[str, bytes]) -> JSONDict:
        message = self._editable(params)
        text, entities = _formatted(params.get("text"), params.get("parse_mode"), "text")
        markup = _validated_markup(params.get("reply_markup"), inline_only=True)
        if (
            message.get("text") == text
            and message.get("entities", []) == entities
            and message.get("reply_markup") == markup
        ):
            raise _bad_request(_NOT_MODIFIED.removeprefix("Bad Request: "))
        message["text"] = text
        _set_or_drop(message, "entities", entities or None)
        _set_or_drop(message, "reply_markup", markup)
        message["edit_date"] = self._timestamp(None)
        return message

    async def _edit_message_reply_markup(
        self, params: JSONDict, files: dict[str, bytes]
    ) -> JSONDict:
        message = self._editable(params)
        markup = _validated_markup(params.get("reply_markup"), inline_only=True)
        if message.get("reply_markup") == markup:
            raise _bad_request(_NOT_MODIFIED.removeprefix("Bad Request: "))
        _set_or_drop(message, "reply_markup", markup)
        message["edit_date"] = self._timestamp(None)
        return message

    async def _delete_message(self, params: JSONDict, files: dict[str, bytes]) -> bool:
        chat = self._target_chat(params)
        if chat.messages.pop(int(params.get("message_id") or 0), None) is None:
            raise _bad_request("message to delete not found")
        return True

    async def _answer_callback_query(self, params: JSONDict, files: dict[str, bytes]) -> bool:
        query_id = str(params.get("callback_query_id"))
        if query_id not in self._callbacks or query_id in self.answered_callbacks:
            raise _bad_request(_QUERY_TOO_OLD.removeprefix("Bad Request: "))
        if len(str(params.get("text") or "")) > 200:
            raise _bad_request("MESSAGE_TOO_LONG")
        self.answered_callbacks[query_id] = params
        return True

    async def _get_file(self, params: JSONDict, files: dict[str, bytes]) -> JSONDict:
        stored = self._files.get(str(params.get("file_id")))
        if stored is None:
            raise _bad_request("wrong file_id or the file is temporarily unavailable")
        if stored.size > MAX_DOWNLOAD_BYTES:
            raise _bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    # ------------------------------------------------------------------ helpers

    def _chat(self, chat_id: int | str) -> _Chat:
        key = _normalise_chat_id(chat_id)
        if key not in self._chats:
            if isinstance(key, int) and key < 0:
                info: JSONDict = {"id": key, "type": "group", "title": f"Group {-key}"}
            else:
                info = {"id": key, "type": "private", "first_name": f"User{key}"}
            self._chats[key] = _Chat(info=info)
        return self._chats[key]

    def _chat_for(self, chat_id: int, user: JSONDict) -> _Chat:
        chat = self._chat(chat_id)
        if chat.info["type"] == "private":
            chat.info.update(
                {k: v for k, v in user.items() if k in ("first_name", "last_name", "username")}
            )
        return chat

    def _target_chat(self, params: JSONDict) -> _Chat:
        if params.get("chat_id") in (None, ""):
            raise _bad_request("chat_id is empty")
        return self._chat(params["chat_id"])

    def _user(
        self, user_id: int, first_name: str | None, username: str | None, language: str | None
    ) -> JSONDict:
        user: JSONDict = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name or f"User{user_id}",
        }
        if username:
            user["username"] = username
        if language:
            user["language_code"] = language
        return user

    def _next_message_id(self, chat_id: int | str) -> int:
        chat = self._chat(chat_id)
        message_id = chat.next_message_id
        chat.next_message_id += 1
        return message_id

    def _take_update_id(self, update_id: int | None) -> int:
        return next(self._update_ids) if update_id is None else update_id

    @staticmethod
    def _timestamp(date: int | datetime | None) -> int:
        if date is None:
            return int(time.time())
        return int(date.timestamp()) if isinstance(date, datetime) else date

    def _bot_message(self, chat: _Chat, params: JSONDict) -> JSONDict:
        message: JSONDict = {
            "message_id": self._next_message_id(chat.info["id"]),
            "from": self.bot_user,
            "chat": chat.info,
            "date": self._timestamp(None),
        }
        markup = _validated_markup(params.get("reply_markup"), inline_only=False)
        if markup is not None and "inline_keyboard" in markup:
            # Telegram echoes only inline keyboards; reply keyboards live on the client.
            message["reply_markup"] = markup
        return message

    def _store_bot_message(self, chat: _Chat, message: JSONDict) -> JSONDict:
        chat.messages[message["message_id"]] = message
        return message

    def _editable(self, params: JSONDict) -> JSONDict:
        if params.get("inline_message_id"):
            raise _bad_request("inline messages are not supported by the fake")
        chat = self._target_chat(params)
        message = chat.messages.get(int(params.get("message_id") or 0))
        if message is None:
            raise _bad_request("message to edit not found")
        if message["from"]["id"] != self.bot_id:
            raise _bad_request("message can't be edited")
        return message

    def _add_caption(self, message: JSONDict, params: JSONDict) -> None:
        if params.get("caption") in (None, ""):
            return
        caption, entities = _formatted(params["caption"], params.get("parse_mode"), "caption")
        message["caption"] = caption
        if entities:
            message["caption_entities"] = entities

    def _media(
        self, params: JSONDict, files: dict[str, bytes], field_name: str, folder: str
    ) -> _StoredFile:
        """The file a send* call refers to: an upload (by field or attach://) or a file_id."""
        value = params.get(field_name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
            field_name = str(params.get(field_name)).removeprefix("attach://")
        if isinstance(value, dict) and field_name in files:
            if not files[field_name]:
                raise _bad_request("file must be non-empty")
            return self._store_file(files[field_name], folder, value.get("filename") or "file")
        if isinstance(value, str) and value in self._files:
            return self._files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            raise _bad_request("failed to get HTTP URL content")
        raise _bad_request(f"there is no {field_name} in the request")

    def _store_file(self, content: bytes | int, folder: str, name: str) -> _StoredFile:
        seq = next(self._file_seq)
        data = None if isinstance(content, int) else content
        size = content if isinstance(content, int) else len(content)
        digest = hashlib.sha256(data if data is not None else str(seq).encode()).hexdigest()
        extension = name.rsplit(".", 1)[-1] if "." in name else "bin"
        stored = _StoredFile(
            file_id=f"BQACAgUAAxk{seq:06d}{digest[:20]}",
            file_unique_id=f"AgAD{digest[:12]}",
            file_path=f"{folder}/file_{seq}.{extension}",
            size=size,
            content=data,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _photo_sizes(self, photo: bytes | int) -> list[JSONDict]:
        return self._sizes_for_upload(self._store_file(photo, "photos", "photo.jpg"))

    def _sizes_for_upload(self, full: _StoredFile) -> list[JSONDict]:
        # Telegram lists a thumbnail first and the full size last; clients take photo[-1].
        thumb = self._store_file(full.content[:1024] if full.content else 1024, "photos", "t.jpg")
        return [
            {
                "file_id": thumb.file_id,
                "file_unique_id": thumb.file_unique_id,
                "width": 90,
                "height": 67,
                "file_size": thumb.size,
            },
            {
                "file_id": full.file_id,
                "file_unique_id": full.file_unique_id,
                "width": 1280,
                "height": 960,
                "file_size": full.size,
            },
        ]


# ---------------------------------------------------------------------- request decoding


def _normalise_chat_id(value: Any) -> int | str:
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _decode_form_value(name: str, value: str) -> Any:
    """Form values are strings; Telegram reads structured and numeric ones as JSON."""
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def _read_params(request: web.Request) -> tuple[JSONDict, dict[str, bytes]]:
    params: JSONDict = {k: _decode_form_value(k, v) for k, v in request.query.items()}
    files: dict[str, bytes] = {}
    if request.method != "POST" or not request.can_read_body:
        return params, files
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
        return params, files
    form = await request.post()
    for name, value in form.items():
        if isinstance(value, web.FileField):
            data = value.file.read()
            files[name] = data
            params[name] = {
                "filename": value.filename,
                "content_type": value.content_type,
                "size": len(data),
            }
        else:
            text = value if isinstance(value, str) else bytes(value).decode()
            params[name] = _decode_form_value(name, text)
    return params, files


def _error_response(error: ApiError) -> web.Response:
    if error.status in (502, 504):
        # Telegram's front proxies answer these with an HTML page, not the JSON envelope.
        title = "502 Bad Gateway" if error.status == 502 else "504 Gateway Time-out"
        page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        return web.Response(status=error.status, text=page, content_type="text/html")
    body: JSONDict = {"ok": False, "error_code": error.status, "description": error.description}
    if error.retry_after is not None:
        body["parameters"] = {"retry_after": error.retry_after}
    return web.json_response(body, status=error.status)


def _set_or_drop(target: JSONDict, key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


# ---------------------------------------------------------------------- reply markup

_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def _validated_markup(markup: Any, *, inline_only: bool) -> JSONDict | None:
    """Check reply_markup as Telegram does; returns the markup (None when absent)."""
    if markup is None or markup == "":
        return None
    if isinstance(markup, str):
        try:
            markup = json.loads(markup)
        except ValueError:
            raise _bad_request("can't parse reply keyboard markup JSON object") from None
    if not isinstance(markup, dict):
        raise _bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _check_inline_keyboard(markup["inline_keyboard"])
        return markup
    if inline_only:
        raise _bad_request("inline keyboard expected")
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        for button in itertools.chain.from_iterable(rows):
            label = button if isinstance(button, str) else button.get("text")
            if not label:
                raise _bad_request("can't parse keyboard button: Text must be non-empty")
        return markup
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return markup
    raise _bad_request("can't parse reply keyboard markup JSON object")


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad_request("can't parse inline keyboard markup JSON object")
    for button in itertools.chain.from_iterable(rows):
        if not isinstance(button, dict) or not button.get("text"):
            raise _bad_request("can't parse inline keyboard button: Text must be non-empty")
        actions = [key for key in _INLINE_ACTIONS if key in button]
        if not actions:
            raise _bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in the inline "
                "keyboard"
            )
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise _bad_request("BUTTON_DATA_INVALID")


# ---------------------------------------------------------------------- text and entities


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _command_entities(text: str) -> list[JSONDict]:
    """bot_command entities as Telegram attaches them to /commands (offsets in UTF-16 units)."""
    entities = []
    for match in re.finditer(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?", text):
        entities.append(
            {
                "type": "bot_command",
                "offset": _utf16_len(text[: match.start()]),
                "length": _utf16_len(match.group()),
            }
        )
    return entities


def _formatted(raw: Any, parse_mode: Any, kind: str) -> tuple[str, list[JSONDict]]:
    """Parse text or a caption like Telegram: markup removed, limits checked on the result."""
    text = "" if raw is None else str(raw)
    mode = str(parse_mode or "")
    if mode.lower() == "html":
        text, entities = _parse_html(text)
    elif mode.lower() in ("markdownv2", "markdown"):
        text, entities = _parse_markdown(text, v2=mode.lower() == "markdownv2")
    elif mode:
        raise _bad_request("unsupported parse_mode")
    else:
        entities = []
    limit = MAX_TEXT_LENGTH if kind == "text" else MAX_CAPTION_LENGTH
    if kind == "text" and not text.strip():
        raise _bad_request("message text is empty")
    if len(text) > limit:
        raise _bad_request(
            "message is too long" if kind == "text" else "message caption is too long"
        )
    return text, entities


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_RE = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)?((?:\s+[a-zA-Z-]+(?:=(?:\"[^\"]*\"|'[^']*'|[^\s>]*))?)*)\s*(>?)"
)
_ATTR_RE = re.compile(r"([a-zA-Z-]+)(?:=(?:\"([^\"]*)\"|'([^']*)'|([^\s>]*)))?")


def _parse_html(source: str) -> tuple[str, list[JSONDict]]:
    """Telegram's HTML: supported tags only, properly nested; `&`-entities decoded."""
    out: list[str] = []
    entities: list[JSONDict] = []
    stack: list[tuple[str, int, JSONDict]] = []  # tag, utf-16 start, entity extras
    i = 0

    def position() -> int:
        return _utf16_len("".join(out))

    def byte_offset(index: int) -> int:
        return len(source[:index].encode())

    while i < len(source):
        char = source[i]
        if char == "&":
            match = re.match(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);", source[i:])
            if match:
                name = match.group(1)
                if name.startswith("#x"):
                    out.append(chr(int(name[2:], 16)))
                elif name.startswith("#"):
                    out.append(chr(int(name[1:])))
                elif name in _HTML_ENTITIES:
                    out.append(_HTML_ENTITIES[name])
                else:
                    out.append(match.group())
                i += match.end()
                continue
            out.append(char)  # Telegram tolerates a bare '&'
            i += 1
            continue
        if char != "<":
            out.append(char)
            i += 1
            continue
        match = _TAG_RE.match(source, i)
        closing, name = (match.group(1), (match.group(2) or "").lower()) if match else ("", "")
        if match is None or not name or not match.group(4):
            if closing:
                raise _bad_request(
                    f"can't parse entities: Unclosed end tag at byte offset {byte_offset(i)}"
                )
            raise _bad_request(
                f'can\'t parse entities: Unsupported start tag "{name}" at byte offset '
                f"{byte_offset(i)}"
            )
        if closing:
            if not stack:
                raise _bad_request(
                    f"can't parse entities: Unexpected end tag at byte offset {byte_offset(i)}"
                )
            open_tag, start, extras = stack.pop()
            if open_tag != name:
                raise _bad_request(
                    "can't parse entities: Can't find end tag corresponding to start tag "
                    f'"{open_tag}"'
                )
            length = position() - start
            if length > 0:
                entities.append(
                    {"type": extras.pop("type"), "offset": start, "length": length} | extras
                )
        else:
            if name not in _HTML_TAGS:
                raise _bad_request(
                    f'can\'t parse entities: Unsupported start tag "{name}" at byte offset '
                    f"{byte_offset(i)}"
                )
            attrs = {
                m.group(1).lower(): next((g for g in m.groups()[1:] if g is not None), "")
                for m in _ATTR_RE.finditer(match.group(3) or "")
            }
            extras: JSONDict = {"type": _HTML_TAGS[name]}
            if name == "a":
                extras["url"] = attrs.get("href", "")
            elif name == "span" and attrs.get("class") != "tg-spoiler":
                raise _bad_request(
                    f'can\'t parse entities: Tag "span" must have class "tg-spoiler" at byte '
                    f"offset {byte_offset(i)}"
                )
            elif name == "blockquote" and "expandable" in attrs:
                extras["type"] = "expandable_blockquote"
            elif name == "tg-emoji":
                extras["custom_emoji_id"] = attrs.get("emoji-id", "")
            stack.append((name, position(), extras))
        i = match.end()
    if stack:
        raise _bad_request(
            "can't parse entities: Can't find end tag corresponding to start tag "
            f'"{stack[-1][0]}"'
        )
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


_MD_V2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD_NAMES = {"*": "Bold", "_": "Italic", "__": "Underline", "~": "Strikethrough", "||": "Spoiler"}
_MD_TYPES = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}


def _parse_markdown(source: str, *, v2: bool) -> tuple[str, list[JSONDict]]:
    """The common Markdown(V2) rules: paired markers, code spans, links, escaping."""
    out: list[str] = []
    entities: list[JSONDict] = []
    stack: list[tuple[str, int, int]] = []  # marker, utf-16 start, byte offset
    link_start: tuple[int, int] | None = None
    markers = ("__", "||", "*", "_", "~") if v2 else ("*", "_")
    i = 0

    def position() -> int:
        return _utf16_len("".join(out))

    def byte_offset(index: int) -> int:
        return len(source[:index].encode())

    while i < len(source):
        char = source[i]
        if v2 and char == "\\" and i + 1 < len(source):
            out.append(source[i + 1])
            i += 2
            continue
        if char == "`":
            fence = "```" if source.startswith("```", i) else "`"
            end = source.find(fence, i + len(fence))
            if end < 0:
                raise _bad_request(
                    "can't parse entities: Can't find end of "
                    f"{'Pre' if fence == '```' else 'Code'} entity at byte offset {byte_offset(i)}"
                )
            body = source[i + len(fence) : end]
            if v2:
                body = re.sub(r"\\([`\\])", r"\1", body)
            start = position()
            out.append(body)
            if body:
                kind = "pre" if fence == "```" else "code"
                entities.append({"type": kind, "offset": start, "length": _utf16_len(body)})
            i = end + len(fence)
            continue
        marker = next((m for m in markers if source.startswith(m, i)), None)
        if marker is not None:
            if stack and stack[-1][0] == marker:
                _, start, _ = stack.pop()
                if position() > start:
                    entities.append(
                        {"type": _MD_TYPES[marker], "offset": start, "length": position() - start}
                    )
            else:
                stack.append((marker, position(), byte_offset(i)))
            i += len(marker)
            continue
        if char == "[":
            link_start = (position(), byte_offset(i))
            i += 1
            continue
        if char == "]" and link_start is not None:
            match = re.match(r"\]\(((?:\\.|[^)\\])*)\)", source[i:])
            if match is None:
                raise _bad_request(
                    f"can't parse entities: Can't find end of a URL at byte offset {byte_offset(i)}"
                )
            url = re.sub(r"\\(.)", r"\1", match.group(1))
            start, _ = link_start
            if position() > start:
                entities.append(
                    {"type": "text_link", "offset": start, "length": position() - start, "url": url}
                )
            link_start = None
            i += match.end()
            continue
        if (
            v2
            and char in _MD_V2_RESERVED
            and not (char == ">" and (i == 0 or source[i - 1] == "\n"))
        ):
            raise _bad_request(
                f"can't parse entities: Character '{char}' is reserved and must be escaped with "
                "the preceding '\\'"
            )
        out.append(char)
        i += 1
    if stack:
        marker, _, offset = stack[-1]
        if v2:
            raise _bad_request(
                f"can't parse entities: Can't find end of {_MD_NAMES[marker]} entity at byte "
                f"offset {offset}"
            )
        raise _bad_request(
            f"can't parse entities: Can't find end of the entity starting at byte offset {offset}"
        )
    if link_start is not None:
        raise _bad_request(
            f"can't parse entities: Can't find end of TextUrl entity at byte offset {link_start[1]}"
        )
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))
