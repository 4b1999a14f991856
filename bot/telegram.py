"""The Telegram channel: Bot API updates in, neutral messages through the conversation, replies out.

    Telegram → (long polling | POST /telegram/webhook) → bot.telegram_updates → files
    fetched and stored → `Conversation.handle` (one transaction, de-duplicated on "tg:<update_id>")
    → `render` → sendMessage, or in webhook mode a single plain reply as the webhook's
    response (committed as sent with the turn; a redelivery carries it again)

`render` is pure: a neutral `Outgoing` becomes one or more Bot API messages —
- choices as an inline keyboard, one button a row except back/skip/cancel, which share the last
  row; callback_data is the choice id itself when it fits Telegram's 64 bytes, otherwise
  "~" + a hash of it, which bot.telegram_updates resolves through the pressed button's label
  (the dialog engine accepts an offered choice's label as the answer), so nothing has to be
  remembered between the message and the press;
- ask="contact" / "location" as a reply keyboard: the request_contact / request_location button,
  then the choices (back, cancel, skip) as plain buttons whose labels the engine understands;
- text over 4096 characters split on line boundaries, the keyboard on the last part only;
- plain text, never a parse mode, so whatever a person typed is shown as typed and cannot break
  Telegram's HTML/Markdown parser.

`TelegramSender` is the outbox's sender for this channel; it maps Bot API errors onto the
outbox's RetryLater / TransientFailure / PermanentFailure.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import mimetypes
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any, Protocol

import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout, web
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.warnings import PTBDeprecationWarning

from bot.attachments import AttachmentTooLarge, parse_attachment_id, read_attachment
from bot.guards import BadJson, BodyTooLarge, load_json, read_body
from bot.outbox import (
    DISPATCHER_KEY,
    TELEGRAM_LIMITS,
    PermanentFailure,
    RateLimiter,
    RateLimits,
    RetryLater,
    TransientFailure,
    answer_arrived,
)
from bot.replies import REPLY_CLAIM_SECONDS, Replies, answer_written, deliver
from bot.storage import StorageError
from bot.telegram_updates import (
    HASHED_CHOICE,
    ButtonPress,
    PressedMessage,
    TelegramUpdate,
    from_json,
    from_ptb,
)
from config.settings import Settings
from handlers.dialog import command_descriptions, render_command_failed, render_file_unavailable
from handlers.i18n import N_, normalise_language, supported, translator
from handlers.messages import Choice, FileRef, Incoming, Outgoing
from models.entities import Attachment, Channel
from models.outbox import enqueue

log = logging.getLogger(__name__)

CHANNEL = Channel.TELEGRAM
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT_UTF16 = 4096  # Bot API: 1-4096 characters of message text
MAX_CALLBACK_DATA_BYTES = 64
MAX_BOT_DOWNLOAD_BYTES = 20 * 1024 * 1024  # getFile refuses larger files ("file is too big")
# Telegram's updates are a few KB; a photo arrives as a file id, never as bytes.
WEBHOOK_BODY_LIMIT = 256 * 1024
# What python-telegram-bot raises on an update of the wrong shape (found by fuzzing).
UNREADABLE_UPDATE = (
    AttributeError, KeyError, TypeError, ValueError, OverflowError, RecursionError, IndexError,
)  # fmt: skip
_JSON_HEADERS = {"Content-Type": "application/json"}
ALLOWED_UPDATES = ("message", "callback_query")
# Choice ids that navigate rather than answer; they share one row under the answers.
_NAV_CHOICES = frozenset({"back", "skip", "cancel"})
# A chosen button's label is kept on its message as "✔ label" when the text leaves room.
_CHOSEN_MARK = "✔ "
# How many update ids a worker remembers to skip a redelivery without a database round trip.
_RECENT_UPDATES = 2048
# Telegram-side flood waits longer than this are not slept through for an interactive reply
# (a third of the reply's claim, so the wait and the send end while the claim is ours).
_MAX_REPLY_WAIT_SECONDS = REPLY_CLAIM_SECONDS / 3

# Labels of the reply-keyboard buttons that share a contact / location (message ids of the
# catalogs; only Telegram has such buttons).
_SHARE_LABELS: dict[str, str] = {
    "contact": N_("📱 Share my phone number"),
    "location": N_("📍 Share my location"),
}
# Bot API language codes (two-letter ISO 639-1) for our languages; zh_TW cannot be told apart
# from zh_CN that way, so its command list is the Chinese one.
_COMMAND_LANGUAGE_CODES = {"zh_CN": "zh", "en": "en"}


class FileUnavailable(Exception):
    """Telegram did not give a file a person sent (getFile or its download failed)."""


ReplyMarkup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


class Conversation(Protocol):
    """What the channel needs from bot.conversation.Conversation."""

    async def handle(self, incoming: Incoming, *, chat_id: str | None = None) -> list[Outgoing]: ...

    def now(self) -> datetime: ...

    async def store_file(self, channel: Channel, file: FileRef) -> FileRef: ...


# ------------------------------------------------------------------------- rendering (pure)


@dataclass(frozen=True, slots=True)
class TelegramMessage:
    """One sendMessage call; `attach_inline` is added by editMessageReplyMarkup right after.

    A message carries one reply_markup when sent. When a reply keyboard must go away
    (ReplyKeyboardRemove) and the same message offers choices, it is sent with the removal and
    then given its inline keyboard by an edit — one message, as the person expects.
    """

    text: str
    reply_markup: ReplyMarkup | None = None
    attach_inline: InlineKeyboardMarkup | None = None
    # The JSON of the above, made once: a rendered message is kept (`render`'s cache).
    _params: dict[str, Any] = field(init=False, repr=False, compare=False)
    _attach_params: dict[str, Any] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        params: dict[str, Any] = {"text": self.text}
        if self.reply_markup is not None:
            params["reply_markup"] = self.reply_markup.to_dict()
        attach = self.attach_inline.to_dict() if self.attach_inline is not None else None
        object.__setattr__(self, "_params", params)
        object.__setattr__(self, "_attach_params", attach)

    def api_params(self) -> dict[str, Any]:
        """The sendMessage parameters as JSON (what goes over the wire, for tests and logs).
        A new dict each time; its nested values are shared and must not be changed."""
        return dict(self._params)

    def attach_params(self) -> dict[str, Any] | None:
        """The reply_markup of the editMessageReplyMarkup that follows, as JSON (shared)."""
        return self._attach_params


def render(message: Outgoing, lang: str | None = None) -> list[TelegramMessage]:
    """The Bot API messages showing `message`; `lang` only names the share-contact/location
    button (the rest of the text arrives translated)."""
    return list(_rendered(message, lang))


# The questions of a form are the same for everyone who files: rendered once each (building
# python-telegram-bot's keyboard objects and their JSON was ~5 % of a loaded worker's CPU).
@lru_cache(maxsize=4096)
def _rendered(message: Outgoing, lang: str | None) -> tuple[TelegramMessage, ...]:
    parts = split_text(message.text)
    reply_keyboard = _reply_keyboard(message, supported(lang)) if message.ask else None
    inline = None if reply_keyboard is not None else inline_keyboard(message.choices)
    removal = ReplyKeyboardRemove() if message.remove_keyboard and reply_keyboard is None else None

    rendered: list[TelegramMessage] = []
    for index, text in enumerate(parts):
        first, last = index == 0, index == len(parts) - 1
        markup: ReplyMarkup | None = None
        attach: InlineKeyboardMarkup | None = None
        if first and removal is not None:
            markup = removal
            if last:
                attach = inline
        elif last:
            markup = reply_keyboard or inline
        rendered.append(TelegramMessage(text, markup, attach))
    return tuple(rendered)


def inline_keyboard(choices: Sequence[Choice]) -> InlineKeyboardMarkup | None:
    if not choices:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    navigation: list[InlineKeyboardButton] = []
    for choice in choices:
        button = InlineKeyboardButton(choice.label, callback_data=callback_data(choice.id))
        if choice.id in _NAV_CHOICES:
            navigation.append(button)
        else:
            rows.append([button])
    if navigation:
        rows.append(navigation)
    return InlineKeyboardMarkup(rows)


def _reply_keyboard(message: Outgoing, lang: str) -> ReplyKeyboardMarkup | None:
    if message.ask not in _SHARE_LABELS:
        return None  # ask="photo": the person uses Telegram's own attachment button
    label = translator(lang)(_SHARE_LABELS[message.ask])
    share = KeyboardButton(
        label,
        request_contact=True if message.ask == "contact" else None,
        request_location=True if message.ask == "location" else None,
    )
    rows: list[list[KeyboardButton]] = [[share]]
    answers = [c for c in message.choices if c.id not in _NAV_CHOICES]
    navigation = [c for c in message.choices if c.id in _NAV_CHOICES]
    rows.extend([KeyboardButton(c.label)] for c in answers)
    if navigation:
        rows.append([KeyboardButton(c.label) for c in navigation])
    # one_time: the keyboard folds away after use; the next question removes it for good.
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)


def callback_data(choice_id: str) -> str:
    """The callback_data for a choice: the id itself, or "~<hash>" when it would not fit."""
    if choice_id.startswith(HASHED_CHOICE) or not 0 < _utf8_len(choice_id) <= 64:
        return HASHED_CHOICE + hashlib.sha256(choice_id.encode()).hexdigest()[:40]
    return choice_id


def split_text(text: str, limit: int = MAX_TEXT_UTF16) -> list[str]:
    """`text` in parts of at most `limit` UTF-16 units, cut at line ends where possible.

    Telegram counts UTF-16 code units, so an emoji counts twice. Parts that would hold only
    whitespace are dropped (Telegram refuses empty messages); a text with no visible character
    stays one part, for the caller to notice.
    """
    if _utf16_len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        if _utf16_len(current) + _utf16_len(line) <= limit:
            current += line
            continue
        if current:
            parts.append(current)
            current = ""
        while _utf16_len(line) > limit:
            head, line = _cut_line(line, limit)
            parts.append(head)
        current = line
    if current:
        parts.append(current)
    kept = [part.strip("\n") for part in parts if part.strip()]
    return kept or [text[:limit]]


def _cut_line(line: str, limit: int) -> tuple[str, str]:
    """Cut an over-long line at the last space that fits, else at the limit itself."""
    end = _prefix_fitting(line, limit)
    space = line.rfind(" ", 0, end)
    if space > end // 2:
        end = space + 1
    return line[:end], line[end:]


def _prefix_fitting(text: str, limit: int) -> int:
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _utf8_len(text: str) -> int:
    return len(text.encode())


def command_language_code(lang: str) -> str | None:
    """The Bot API language_code under which `lang`'s command list is set (None: none)."""
    return _COMMAND_LANGUAGE_CODES.get(lang)


# ------------------------------------------------------------------------- updates → Incoming


@dataclass(frozen=True, slots=True)
class Handled:
    """What `TelegramChannel.process` did with an update: the method for the webhook's
    response (None: a plain 200), and the Bot API calls left to make after it."""

    method: ResponseMethod | None = None
    calls: Sequence[Callable[[], Awaitable[None]]] = ()


@dataclass(frozen=True, slots=True)
class ResponseMethod:
    """The Bot API method for the webhook's response body; `answer_id`: the outbox row of the
    reply it carries, if it carries one."""

    params: dict[str, Any]
    answer_id: int | None = None


class _Carried:
    """Asked by the conversation before it commits a turn: can the turn's replies start with one
    carried by the webhook response? Only a turn's single reply that is one plain sendMessage
    (no attachment, no keyboard added by an edit after it): Telegram runs one method from the
    response, and a second reply sent by a call could overtake it."""

    def __init__(self, lang: str, allowed: bool) -> None:
        self.lang = lang
        self.allowed = allowed
        self._rendered: tuple[Outgoing, TelegramMessage] | None = None

    def __call__(self, replies: Sequence[Outgoing]) -> bool:
        if not self.allowed or len(replies) != 1 or replies[0].attachments:
            return False
        parts = render(replies[0], self.lang)
        if len(parts) != 1 or parts[0].attach_inline is not None:
            return False
        self._rendered = (replies[0], parts[0])
        return True

    def params(self, answer: Outgoing) -> dict[str, Any]:
        """The sendMessage parameters of the carried reply (rendered once, when asked)."""
        if self._rendered is not None and self._rendered[0] is answer:
            return self._rendered[1].api_params()
        return render(answer, self.lang)[0].api_params()  # a redelivery's stored answer


# ------------------------------------------------------------------------- sending


async def send_rendered(bot: Bot, chat_id: int | str, parts: Sequence[TelegramMessage]) -> None:
    for part in parts:
        sent = await bot.send_message(chat_id, part.text, reply_markup=part.reply_markup)
        if part.attach_inline is not None:
            await bot.edit_message_reply_markup(
                chat_id, sent.message_id, reply_markup=part.attach_inline
            )


def retry_seconds(error: RetryAfter) -> float:
    """RetryAfter's wait in seconds (PTB 22 gives int or timedelta depending on PTB_TIMEDELTA)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        delay = error.retry_after
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


def outbox_failure(error: TelegramError) -> Exception:
    """The outbox exception for a Bot API error: wait, retry with backoff, or give up."""
    if isinstance(error, RetryAfter):
        return RetryLater(retry_seconds(error), str(error))
    if isinstance(error, ChatMigrated):
        # The group became a supergroup: the recipient's chat id must be updated by a human.
        return PermanentFailure(f"chat migrated to {error.new_chat_id}")
    if isinstance(error, InvalidToken):
        # Our configuration, not the recipient: keep the rows until the token is fixed.
        return TransientFailure(f"invalid bot token: {error}")
    if isinstance(error, Forbidden):
        return PermanentFailure(error.message)  # blocked by the user, kicked, deactivated
    if isinstance(error, BadRequest):
        # "chat not found", and any request Telegram refuses as such: sending it again is futile.
        return PermanentFailure(error.message)
    if isinstance(error, NetworkError):
        return TransientFailure(str(error))  # timeouts, 5xx, connection errors
    return TransientFailure(str(error))  # Conflict and other server-side states


class BotApi:
    """Bot API calls for the interactive path (a turn's replies, marking the pressed button)
    over one reused aiohttp session, with plain JSON in and out: no python-telegram-bot objects
    built for requests and answers (measured: a third of a worker's CPU went to PTB's client
    stack and to re-building each answer as a Message). Errors map as `outbox_failure` maps
    PTB's: 429 → RetryLater, 400/403 → PermanentFailure, anything else → TransientFailure."""

    def __init__(self, token: str, api_base: str | None, timeout: float) -> None:
        base = (api_base or "https://api.telegram.org").rstrip("/")
        self._url = f"{base}/bot{token}/"
        self._timeout = timeout
        self._session: ClientSession | None = None

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        if self._session is None or self._session.closed:
            self._session = ClientSession(timeout=ClientTimeout(total=self._timeout))
        body = orjson.dumps(params)  # UTF-8 as it is, as json.dumps(ensure_ascii=False) would
        try:
            async with self._session.post(
                self._url + method, data=body, headers=_JSON_HEADERS
            ) as response:
                answer_arrived()  # status and headers are in: the outbox's pacing counts from here
                status, body = response.status, await response.read()
        except (ClientError, TimeoutError, OSError) as error:
            raise TransientFailure(f"{method}: {type(error).__name__}: {error}") from error
        try:
            data = orjson.loads(body)
        except ValueError:
            raise TransientFailure(f"{method}: HTTP {status}, not a Bot API answer") from None
        if data.get("ok"):
            return data.get("result")
        code = int(data.get("error_code") or status)
        description = str(data.get("description") or f"HTTP {status}")
        parameters = data.get("parameters") or {}
        if "retry_after" in parameters:
            raise RetryLater(float(parameters["retry_after"]), description)
        if "migrate_to_chat_id" in parameters:
            raise PermanentFailure(f"chat migrated to {parameters['migrate_to_chat_id']}")
        if code in (400, 403):
            raise PermanentFailure(description)
        raise TransientFailure(f"{method}: {description}")

    async def send(self, chat_id: str, message: Outgoing, lang: str) -> None:
        for part in render(message, lang):
            sent = await self.call("sendMessage", {"chat_id": chat_id, **part.api_params()})
            markup = part.attach_params()
            if markup is not None:
                await self.call(
                    "editMessageReplyMarkup",
                    {"chat_id": chat_id, "message_id": sent["message_id"], "reply_markup": markup},
                )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class TelegramSender:
    """The outbox's sender for Telegram: `send` raises only the outbox's exceptions.

    With `api`, text goes through that plain-JSON client (a few times cheaper in CPU than PTB's
    stack, which is what paces the outbox under load); attachments are uploaded through `bot`.
    """

    channel = CHANNEL
    limits: RateLimits = TELEGRAM_LIMITS

    def __init__(self, bot: Bot, *, language: str = "zh_CN", api: BotApi | None = None) -> None:
        self.bot = bot
        self.language = language
        self.api = api

    async def send(self, chat_id: str, message: Outgoing) -> None:
        """Send `message` and its attachments. A message split in parts is sent part by part,
        so a failure after the first part resends the earlier parts on retry."""
        if self.api is not None:
            await self.api.send(chat_id, message, self.language)
        try:
            if self.api is None:
                await send_rendered(self.bot, chat_id, render(message, self.language))
            for attachment_id in message.attachments:
                await self._send_attachment(chat_id, attachment_id)
        except TelegramError as error:
            raise outbox_failure(error) from error

    async def _send_attachment(self, chat_id: str, attachment_id: str) -> None:
        row_id = parse_attachment_id(attachment_id)
        if row_id is None and attachment_id.isdigit():
            row_id = int(attachment_id)
        attachment = await Attachment.get_or_none(id=row_id) if row_id is not None else None
        if attachment is None:
            raise PermanentFailure(f"attachment {attachment_id} does not exist")
        # Uploaded from our copy: a platform file id may belong to another bot or another type.
        try:
            content = await read_attachment(attachment)
        except StorageError as error:
            raise PermanentFailure(f"attachment {attachment_id}: {error}") from error
        mime = attachment.mime_type or mimetypes.guess_type(attachment.file_name or "")[0] or ""
        if mime.startswith("image/") and attachment.size <= 10 * 1024 * 1024:
            await self.bot.send_photo(chat_id, content)
        else:
            await self.bot.send_document(chat_id, content, filename=attachment.file_name)


# ------------------------------------------------------------------------- the channel


def webhook_secret(settings: Settings) -> str:
    """The configured secret, else one derived from the bot token: stable across workers,
    unguessable without the token, and made of the characters Telegram allows."""
    if settings.telegram_webhook_secret:
        return settings.telegram_webhook_secret
    token = settings.telegram_token or ""
    return hmac.new(token.encode(), b"complaintdesk telegram webhook", hashlib.sha256).hexdigest()


def build_application(settings: Settings, *, webhook: bool) -> Application:  # type: ignore[type-arg]
    if not settings.telegram_token:
        raise ValueError("COMPLAINTDESK_TELEGRAM_TOKEN is not set")
    builder = ApplicationBuilder().token(settings.telegram_token)
    if settings.telegram_api_base:
        base = settings.telegram_api_base.rstrip("/")
        builder = builder.base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
    if webhook:
        builder = builder.updater(None)  # updates arrive through our own aiohttp route
    return builder.build()


def _polling_error(error: TelegramError) -> None:
    """A failed getUpdates round (a 502, a time-out): PTB retries it; one line, no traceback."""
    log.warning("Telegram polling failed, retrying: %s: %s", type(error).__name__, error)


class TelegramChannel:
    """One bot: receives updates (long polling or webhook), answers through the conversation."""

    def __init__(
        self, conversation: Conversation, settings: Settings, *, poll_timeout: float = 10.0
    ) -> None:
        self.conversation = conversation
        self.settings = settings
        self.webhook_mode = bool(settings.public_url)
        self.secret = webhook_secret(settings)
        self.poll_timeout = poll_timeout
        self.application = build_application(settings, webhook=self.webhook_mode)
        self.application.add_handler(TypeHandler(Update, self._on_polled_update))
        self._recent: OrderedDict[int, None] = OrderedDict()
        self._in_flight: set[int] = set()  # update ids this worker is handling right now
        self._running = False
        self.wake_outbox: Callable[[], None] | None = None  # the dispatcher's wake(), if any
        self.limiter: RateLimiter | None = None  # the dispatcher's, if any (its flood waits)
        self.api = BotApi(
            settings.telegram_token or "", settings.telegram_api_base, _MAX_REPLY_WAIT_SECONDS
        )

    @property
    def bot(self) -> Bot:
        return self.application.bot

    def sender(self) -> TelegramSender:
        """The outbox's sender sharing this channel's Bot API clients (and their connections)."""
        return TelegramSender(self.bot, language=self.settings.language, api=self.api)

    @property
    def webhook_url(self) -> str:
        return (self.settings.public_url or "").rstrip("/") + WEBHOOK_PATH

    async def start(self) -> None:
        await self.application.initialize()
        await self.set_commands()
        if self.webhook_mode:
            await self.bot.set_webhook(
                self.webhook_url, secret_token=self.secret, allowed_updates=list(ALLOWED_UPDATES)
            )
        else:
            await self.application.start()
            updater = self.application.updater
            assert updater is not None  # built with one in polling mode
            # start_polling deletes any webhook first, so switching modes needs no manual step.
            await updater.start_polling(
                poll_interval=0,
                timeout=timedelta(seconds=self.poll_timeout),
                allowed_updates=list(ALLOWED_UPDATES),
                error_callback=_polling_error,
            )
        self._running = True

    async def stop(self) -> None:
        """Stop taking updates. In webhook mode the webhook stays set: other workers (or this
        one after a restart) keep serving it, and Telegram retries while none answers."""
        await self.api.close()
        if not self._running:
            return
        self._running = False
        if not self.webhook_mode:
            updater = self.application.updater
            if updater is not None and updater.running:
                await updater.stop()
            await self.application.stop()
        await self.application.shutdown()

    async def set_commands(self) -> None:
        """The /command menu in each language Telegram can tell apart, and a default one."""
        lists: list[tuple[str | None, str]] = [(None, self.settings.language)]
        lists += [(code, lang) for lang, code in _COMMAND_LANGUAGE_CODES.items()]
        for code, lang in lists:
            commands = [BotCommand(name, text) for name, text in command_descriptions(lang)]
            try:
                await self.bot.set_my_commands(commands, language_code=code)
            except TelegramError as error:  # a cosmetic menu must not keep the bot down
                log.warning("setMyCommands(%s) failed: %s", code or "default", error)

    # -- receiving -------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        """POST /telegram/webhook: 403 without the right secret, 413 for a body over
        WEBHOOK_BODY_LIMIT, 400 for a body that is not an update we can read (invalid or deeply
        nested JSON, a shape python-telegram-bot refuses), 500 when it could not be handled
        (Telegram then delivers it again), else 200."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self.secret.encode()):
            return web.Response(status=403, text="forbidden")
        try:
            data = load_json(await read_body(request, WEBHOOK_BODY_LIMIT))
        except BodyTooLarge as error:
            log.warning("Telegram webhook refused (413): %s", error)
            return web.Response(status=413, text="body too large")
        except BadJson as error:
            log.warning("Telegram webhook refused (400): %s", error)
            return web.Response(status=400, text="body is not JSON")
        update = self._readable_update(data)
        if update is None:
            return web.Response(status=400, text="body is not a Telegram update")
        try:
            handled = await self.process(update, respond=True)
        except Exception:  # the conversation's transaction did not commit: let Telegram retry
            log.exception(
                "Telegram update %s failed; Telegram will deliver it again", update.update_id
            )
            return web.Response(status=500, text="try again")
        method = handled.method
        if method is None:
            response = web.Response(status=200, text="ok")
        else:  # Telegram runs one method given as the webhook's response: no call of our own.
            body = orjson.dumps(method.params)
            response = web.Response(body=body, content_type="application/json")
        # The answer first: the calls left (answering the press, marking the pressed button)
        # need not hold up the person's next question.
        await response.prepare(request)
        await response.write_eof()
        if method is not None and method.answer_id is not None:
            # Written out before the row says so: until then a delivery again carries it again.
            await answer_written(method.answer_id, self.conversation.now())
        try:
            await self._complete(update.update_id, handled.calls)
        except Exception:  # answered already; what is unsent stays in the outbox
            log.exception("Telegram update %s: a call after the response failed", update.update_id)
        return response

    def _readable_update(self, data: Any) -> TelegramUpdate | None:
        """The update in `data`, or None (logged) when it is not one we can read: the wrong
        shape for python-telegram-bot (a sticker that is a number, a date out of range) or for
        `from_ptb`. Telegram itself never sends such updates; no retry helps."""
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            log.warning("Telegram webhook refused (400): no update_id")
            return None
        try:
            # The common updates straight from the JSON; the others through PTB's objects.
            update = from_json(data) or from_ptb(Update.de_json(data, self.bot))
        except UNREADABLE_UPDATE as error:
            log.warning(
                "Telegram webhook refused (400): update %s unreadable: %s: %s",
                data.get("update_id"),
                type(error).__name__,
                str(error)[:200],
            )
            return None
        return update

    async def _on_polled_update(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert isinstance(update, Update)
        try:
            handled = await self.process(from_ptb(update))
            await self._complete(update.update_id, handled.calls)
        except Exception:
            # A polled update is already confirmed to Telegram: apologise instead of losing it
            # silently, so the person sends it again.
            log.exception("Telegram update %s failed", update.update_id)
            chat = update.effective_chat
            if chat is not None:
                user = update.effective_user
                lang = self._language(user.language_code if user is not None else None)
                await self._reply(chat.id, render_command_failed("error", lang), lang)

    async def process(self, update: TelegramUpdate, *, respond: bool = False) -> Handled:
        """Handle one update. Raises only when the conversation did not take it (nothing was
        committed), so the caller may have it delivered again. The caller then runs the
        Bot API calls left (`Handled.calls`) through `_complete`.

        With `respond` (webhook mode) the returned method is for the webhook's response body,
        which Telegram runs instead of a call of our own: a turn's only reply when it is one
        plain message (committed as sent with the turn, so a redelivery — Telegram got no
        response, so it ran nothing — carries it again), or else the answer to a button press.
        Every other reply is committed with the turn as an outbox row and sent here right after
        the commit.
        """
        # A redelivery goes to the conversation as well: it never re-runs the turn, and hands
        # back whatever of the turn's committed replies is still unsent.
        incoming = update.incoming
        chat_id = update.chat_id
        query = update.press
        if incoming is None or chat_id is None:
            return Handled(await self._answer_query(query, respond))
        lang = self._language(update.language_hint)
        if incoming.file is not None:
            try:
                fetched = await self._fetch_file(incoming)
            except FileUnavailable:
                fetched, failed = None, render_file_unavailable(lang)
            else:
                failed = render_command_failed("too_large", lang)
            if fetched is None:
                # Nothing reaches the dialog: its state stays as it was, the person resends.
                method = await self._answer_query(query, respond)
                await self._reply(chat_id, failed, lang)
                return Handled(method)
            incoming = fetched
        carry = respond and self.settings.telegram_reply_in_response
        carried = _Carried(lang, self._may_carry(chat_id)) if carry else None
        # A duplicate of an update this worker answers or answered: its response carries (or
        # carried) the answer; Telegram asks again only when it got none, from any worker.
        ours = update.update_id in self._in_flight or update.update_id in self._recent
        # In flight until `_complete` has made the calls left.
        self._in_flight.add(update.update_id)
        try:
            replies = await self.conversation.handle(incoming, chat_id=str(chat_id), carry=carried)
        except BaseException:
            self._in_flight.discard(update.update_id)
            raise
        try:
            answer = replies.answer if isinstance(replies, Replies) and not ours else None
            method: ResponseMethod | None = None
            sends = []
            if answer is not None and carried is not None:
                params = {"method": "sendMessage", "chat_id": chat_id, **carried.params(answer)}
                method = ResponseMethod(params, replies.answer_id)
            elif answer is not None:  # a webhook-time answer redelivered by polling: by a call
                sends.append(self._reply(chat_id, [answer], lang))
            # The replies the response does not carry go before it: a worker that dies first
            # leaves Telegram without a response, and its redelivery sends them.
            sends.append(self._send_replies(chat_id, replies, lang, update.update_id))
            await asyncio.gather(*sends)
        except BaseException:
            self._in_flight.discard(update.update_id)
            self._remember(update.update_id)
            raise
        # What only tidies the chat waits for the response: answering the press (its spinner)
        # when the response carries the reply, and taking the keyboard off the pressed message.
        calls: list[Callable[[], Awaitable[None]]] = []
        if query is not None:
            if method is None:
                method = await self._answer_query(query, respond)
            else:
                calls.append(partial(self._answer, query.id))
            if query.message is not None and replies:
                calls.append(partial(self._mark_chosen, chat_id, query.message, query.data))
        return Handled(method, calls)

    async def _complete(
        self, update_id: int, calls: Sequence[Callable[[], Awaitable[None]]]
    ) -> None:
        """Make an update's calls left (independent: marking the pressed button need not wait
        for the answer), then count the update as handled by this worker."""
        try:
            await asyncio.gather(*(call() for call in calls))
        finally:
            self._in_flight.discard(update_id)
            self._remember(update_id)

    async def _answer_query(
        self, query: ButtonPress | None, respond: bool
    ) -> ResponseMethod | None:
        """Answer a button press: as the webhook's response when `respond`, else by a call."""
        if query is None:
            return None
        if respond:
            return ResponseMethod({"method": "answerCallbackQuery", "callback_query_id": query.id})
        await self._answer(query.id)
        return None

    def _may_carry(self, chat_id: int) -> bool:
        """Whether a reply to `chat_id` may go in the webhook response now: not while a flood
        wait (429) holds the chat or the bot back — Telegram would refuse it and tell nobody."""
        limiter = self.limiter
        if limiter is None:
            return True
        return limiter.paused_until(CHANNEL, str(chat_id)) <= limiter.clock()

    async def _send_replies(
        self, chat_id: int, replies: Sequence[Outgoing], lang: str, update_id: int
    ) -> None:
        if not isinstance(replies, Replies) or not replies.in_outbox:
            await self._reply(chat_id, replies, lang, update_id=update_id)
            return
        if replies.queued and self.wake_outbox is not None:
            self.wake_outbox()  # behind older messages to this chat: the dispatcher keeps order
        if replies.claimed:
            sender = TelegramSender(self.bot, language=lang)

            async def send_once(message: Outgoing) -> None:
                if message.attachments:  # files are uploaded through PTB's multipart support
                    await sender.send(str(chat_id), message)
                else:
                    await self.api.send(str(chat_id), message, lang)

            async def send(message: Outgoing) -> None:
                try:
                    await send_once(message)
                except RetryLater as error:
                    # A short flood wait is sat out while the claim is ours; a longer one
                    # leaves the reply to the dispatcher, which honours it for the whole bot.
                    if error.seconds > _MAX_REPLY_WAIT_SECONDS:
                        raise
                    await asyncio.sleep(error.seconds)
                    await send_once(message)

            await deliver(replies.claimed, send, now=self.conversation.now, wake=self.wake_outbox)

    def has_processed(self, update_id: int) -> bool:
        """Whether this worker has handled `update_id` (replies sent), among its recent ones."""
        return update_id in self._recent

    def _remember(self, update_id: int) -> None:
        self._recent[update_id] = None
        while len(self._recent) > _RECENT_UPDATES:
            self._recent.popitem(last=False)

    def _language(self, hint: str | None) -> str:
        """Our language for a person's Telegram language_code (the default for none)."""
        return normalise_language(hint) or self.settings.language

    async def _answer(self, query_id: str) -> None:
        """Always answer a button press, or the person's client shows a spinner for a while."""
        try:
            await self.api.call("answerCallbackQuery", {"callback_query_id": query_id})
        except (RetryLater, TransientFailure, PermanentFailure) as error:
            # too old, or answered by another worker already
            log.info("answerCallbackQuery %s: %s", query_id, error)

    async def _mark_chosen(self, chat_id: int, message: PressedMessage, data: str | None) -> None:
        """Take the keyboard off the pressed message, keeping the chosen label under its text,
        so an old question cannot be answered twice and the chat reads as a record."""
        label = message.label_of(data or "")
        text = message.text
        where = {"chat_id": chat_id, "message_id": message.message_id}
        try:
            if label and text and _utf16_len(text) + _utf16_len(label) + 3 <= MAX_TEXT_UTF16:
                await self.api.call(
                    "editMessageText", {**where, "text": f"{text}\n\n{_CHOSEN_MARK}{label}"}
                )
            else:
                await self.api.call("editMessageReplyMarkup", where)
        except (RetryLater, TransientFailure, PermanentFailure) as error:
            # already edited, deleted, or too old to edit
            log.info("could not mark the pressed message in chat %s: %s", chat_id, error)

    async def _fetch_file(self, incoming: Incoming) -> Incoming | None:
        """The incoming message with its file stored ("att:<id>"); the platform reference with
        its size when the file is over our limit (the dialog tells the person the sizes); None
        when only Telegram's own download limit stands in the way. FileUnavailable when Telegram
        does not give the file (getFile or the download fails: a redelivery would fail the
        same way, so the person is asked to send it again)."""
        file = incoming.file
        assert file is not None
        limit = int(self.settings.max_photo_mb * 1024 * 1024)
        if file.size is not None and file.size > limit:
            return incoming  # refused by size, without downloading it
        if file.size is not None and file.size > MAX_BOT_DOWNLOAD_BYTES:
            return None
        try:
            telegram_file = await self.bot.get_file(file.file_id)
            data = bytes(await telegram_file.download_as_bytearray())
        except BadRequest as error:
            if "too big" in error.message.lower():
                return None
            log.warning("Telegram file %s not received: %s", file.file_id[:80], error)
            raise FileUnavailable(file.file_id) from error
        except TelegramError as error:
            log.warning("Telegram file %s not received: %s", file.file_id[:80], error)
            raise FileUnavailable(file.file_id) from error
        try:
            stored = await self.conversation.store_file(CHANNEL, replace(file, data=data))
        except AttachmentTooLarge as error:
            return replace(incoming, file=replace(file, size=error.size, data=None))
        return replace(incoming, file=stored)

    async def _reply(
        self,
        chat_id: int,
        replies: Sequence[Outgoing],
        lang: str,
        *,
        update_id: int | None = None,
    ) -> None:
        """Send the answers now. The person's message is already taken, so when Telegram fails
        for a while (429, 5xx, network) the unsent answers go to the outbox, which retries them
        in order; a permanent failure (bot blocked) is only logged."""
        for index, reply in enumerate(replies):
            try:
                await self._send_waiting(chat_id, render(reply, lang))
            except TelegramError as error:
                failure = outbox_failure(error)
                if update_id is None or isinstance(failure, PermanentFailure):
                    log.warning("reply to chat %s failed: %s", chat_id, error)
                    return
                log.warning("reply to chat %s failed (%s): handed to the outbox", chat_id, error)
                await self._queue_replies(chat_id, replies[index:], update_id, index)
                return

    async def _queue_replies(
        self, chat_id: int, replies: Sequence[Outgoing], update_id: int, first: int
    ) -> None:
        now = self.conversation.now()
        for offset, reply in enumerate(replies):
            await enqueue(
                channel=CHANNEL,
                chat_id=str(chat_id),
                message=reply,
                idempotency_key=f"tg-reply:{update_id}:{first + offset}",
                now=now,
            )

    async def _send_waiting(self, chat_id: int, parts: list[TelegramMessage]) -> None:
        try:
            await send_rendered(self.bot, chat_id, parts)
        except RetryAfter as error:
            wait = retry_seconds(error)
            if wait > _MAX_REPLY_WAIT_SECONDS:
                raise
            await asyncio.sleep(wait)
            await send_rendered(self.bot, chat_id, parts)


TELEGRAM_CHANNEL = web.AppKey("telegram_channel", TelegramChannel)


def setup_telegram(
    app: web.Application,
    conversation: Conversation,
    settings: Settings,
    *,
    poll_timeout: float = 10.0,
) -> TelegramChannel:
    """Serve the bot with `app`: webhook route when settings.public_url is set, long polling
    otherwise; started on the app's startup and stopped on its cleanup."""
    channel = TelegramChannel(conversation, settings, poll_timeout=poll_timeout)
    app[TELEGRAM_CHANNEL] = channel
    keep = getattr(conversation, "keep_replies_in_outbox", None)
    if keep is not None:
        keep(CHANNEL)  # a turn's replies are committed with it (bot.replies)
    if channel.webhook_mode:
        app.router.add_post(WEBHOOK_PATH, channel.webhook)

    async def start(_: web.Application) -> None:
        dispatcher = app.get(DISPATCHER_KEY)
        if dispatcher is not None:
            channel.wake_outbox = dispatcher.wake
            channel.limiter = dispatcher.limiter
        await channel.start()

    async def stop(_: web.Application) -> None:
        await channel.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return channel
