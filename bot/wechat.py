"""WeChat Official Account channel: the `/wechat` webhook and the customer-service sender.

Inbound (WeChat → `/wechat`):

    GET   signature check, echoes `echostr` (the server-URL verification)
    POST  fresh timestamp and signature (403) → size limit (413) → defusedxml (400) → in safe
          mode msg_signature (403) and AES decryption → wechatpy's parse_message → neutral
          Incoming → Conversation.handle → a passive reply (encrypted in safe mode) or "success"

WeChat waits five seconds for the answer and retries the same message three times. A turn runs
with a deadline (`reply_deadline`, 4 s by default): ready in time, all its Outgoing messages go
back joined into one passive text reply; otherwise the request answers "success" at once and the
turn, when done, writes its answer to the outbox, which sends it through the customer-service
API (`WeChatSender`). A retry of a message still being worked on joins that turn instead of
starting another; the Conversation de-duplicates on `wx:<MsgId>` (events: `wx:<openid>:
<CreateTime>:<Event>:<EventKey>`) so a message is processed once even across workers.

Choices are rendered as numbered lines ("1. …"); the options shown last are remembered per
person (KeyValue, shared by the workers), so a typed number becomes that choice — labels typed
as text work as well, the dialog engine matches them. Options that are numbers themselves (the
survey's 0–10 scores) are shown as one line of those numbers and a typed number picks the
option with that label. A reply over WeChat's 2048-byte passive
limit is split at line ends; the rest follows through the outbox. Outgoing.attachments are not
sent on WeChat (that needs media uploads), and keyboards (ask / remove_keyboard) do not exist.

Handled messages and events:

    text        → Incoming text ("/status" and the like → command)
    image       → photo: media/get download, stored by Conversation.store_file
    voice       → file (audio), stored the same way
    location    → location (Location_X / Location_Y / Label)
    event subscribe            → /help (the welcome and menu); with a QR scene → /start <scene>
    event SCAN                 → /start <scene>
    event unsubscribe          → Complainant.unsubscribed = True, no reply
    event CLICK (menu)         → file → /start, status → /status, help → /help
    event LOCATION (reported)  → location
    video, shortvideo, link, file, other messages → "unsupported" (the dialog says so)
    other events (VIEW, TEMPLATESENDJOBFINISH, ...) → ignored ("success")

Outbound: wechatpy's client is synchronous, so each call runs in a worker thread
(asyncio.to_thread). The access_token lives in the database (KeyValue), shared by all workers,
refreshed five minutes before it expires and fetched by one worker at a time (PostgreSQL advisory
lock; SQLite: the write transaction). Customer-service messages only work inside WeChat's window
(48 hours after the person's last message, a few messages per message): on 45015 / 45047 the
sender falls back to the template message named by the environment variable
COMPLAINTDESK_WECHAT_TEMPLATE_NOTICE (its body goes into the template's `content` field), and
without one raises PermanentFailure so the notification is surfaced, not dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import os
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from xml.etree.ElementTree import ParseError

import requests
from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction
from wechatpy import WeChatClient, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import BaseEvent
from wechatpy.exceptions import (
    InvalidAppIdException,
    InvalidSignatureException,
    WeChatClientException,
)
from wechatpy.messages import BaseMessage
from wechatpy.replies import TextReply

from bot.attachments import AttachmentTooLarge
from bot.guards import ascii_digits
from bot.logs import current_context
from bot.metrics import WECHAT_TOKEN_REFRESHES
from bot.outbox import (
    DISPATCHER_KEY,
    PermanentFailure,
    RateLimits,
    RetryLater,
    TransientFailure,
)
from bot.replies import (
    ClaimedReply,
    Replies,
    deliver,
    leave_response,
    mark_all_sent,
    release,
)
from config.settings import Settings
from handlers.i18n import translator
from handlers.messages import Choice, FileRef, Incoming, Outgoing
from handlers.validators import small_int
from models.entities import Channel, Complainant, KeyValue
from models.outbox import enqueue

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_API_BASE = "https://api.weixin.qq.com"
TEMPLATE_NOTICE_ENV = "COMPLAINTDESK_WECHAT_TEMPLATE_NOTICE"
MAX_BODY_BYTES = 64 * 1024  # WeChat's messages are a few KiB; anything bigger is not WeChat
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_TIMESTAMP_DIGITS = 11  # seconds since 1970: ten digits until the year 2286
NONCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
REPLY_DEADLINE_SECONDS = 4.0  # WeChat gives up after 5 s; leave room for the network
RETRY_MEMORY_SECONDS = 60.0  # WeChat retries a message three times within about 15 s
# A passive text reply longer than this is cut by WeChat; the rest goes through the outbox.
PASSIVE_TEXT_BYTES = 2048
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
# How long typed numbers keep referring to the options shown last (a dialog expires sooner).
OPTIONS_MEMORY = timedelta(days=2)
API_TIMEOUT_SECONDS = 10.0
# Access-token errors after which a fresh token and one retry can help.
STALE_TOKEN_ERRORS = frozenset({40001, 40014, 42001})
WINDOW_CLOSED = 45015  # "response out of time limit or subscription is canceled"
OVER_QUOTA = 45047  # "out of response count limit" for this person's last message
SYSTEM_BUSY = -1
MINUTE_QUOTA = 45011
DAILY_QUOTA = 45009
# WeChat publishes no per-second limit for customer-service messages; the window and the
# per-message quota are the limits that matter, and those are enforced by WeChat itself.
WECHAT_LIMITS = RateLimits()
# Custom-menu click keys → dialog commands.
MENU_COMMANDS = {"file": "start", "status": "status", "help": "help"}
_COMMAND_TEXT = re.compile(r"^/([A-Za-z_]+)(?:[ \t]+(.*))?$", re.DOTALL)
_FILENAME = re.compile(r'filename="?([^";]+)"?')


def utc_now() -> datetime:
    return datetime.now(UTC)


class ConversationPort(Protocol):
    """What the webhook needs of bot.conversation.Conversation."""

    async def handle(self, incoming: Incoming) -> list[Outgoing]: ...

    async def store_file(self, channel: Channel, file: FileRef) -> FileRef: ...

    def failure_reply(self, lang: str | None = None) -> list[Outgoing]: ...


# ------------------------------------------------------------------------- pure helpers


def wechat_signature(*parts: str) -> str:
    """WeChat's request signature: SHA-1 over the sorted parts, concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signature_matches(expected: str, given: str | None) -> bool:
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a "no").
    return given is not None and hmac.compare_digest(
        expected.encode(), given.lower().encode("utf-8", "replace")
    )


def timestamp_fresh(timestamp: str | None, now: datetime) -> bool:
    """WeChat's `timestamp` is within five minutes of our clock (replays are refused).

    Only short ASCII digit runs are converted: "²" is a digit to str.isdigit but not to int,
    and a 20-digit stamp overflows datetime."""
    if not ascii_digits(timestamp, MAX_TIMESTAMP_DIGITS):
        return False
    sent = datetime.fromtimestamp(int(timestamp or "0"), UTC)
    return abs(now - sent) <= MAX_CLOCK_SKEW


class UntrustedXmlError(ValueError):
    """The body is not a plain WeChat XML document (DTD, entities, malformed, wrong root)."""


def parse_untrusted_xml(body: bytes | str) -> dict[str, str]:
    """The top-level fields of a WeChat XML document, parsed with defusedxml.

    A DTD (billion laughs, external entities) or any entity is refused before expansion.
    """
    try:
        root = defused_fromstring(body, forbid_dtd=True)
    except (DefusedXmlException, ParseError) as exc:
        raise UntrustedXmlError(f"refused XML: {exc.__class__.__name__}: {exc}") from exc
    if root.tag != "xml":
        raise UntrustedXmlError(f"unexpected root element <{root.tag}>")
    return {child.tag: (child.text or "").strip() for child in root}


def update_key(fields: dict[str, str]) -> str:
    """The de-duplication key WeChat recommends: MsgId, or for events openid+time+event.

    The event key is added so two different menu clicks within one second stay two events
    (a retry carries the same EventKey).
    """
    msg_id = fields.get("MsgId")
    if msg_id:
        return f"wx:{msg_id}"
    names = ("FromUserName", "CreateTime", "Event", "EventKey")
    return "wx:" + ":".join(fields.get(name, "") for name in names)


def is_number_scale(labels: Sequence[str]) -> bool:
    """Options that are themselves numbers (the survey's 0–10 scores): the person types the
    number they read, so the options are shown and matched by label, not numbered — "9" must
    mean the score 9, not the ninth option (the score 8)."""
    return bool(labels) and all(small_int(label.strip(), 3) is not None for label in labels)


def render_text(messages: Sequence[Outgoing]) -> str:
    """All messages as one text; choices become numbered lines ("1. …") to answer by number,
    a number scale one line of its numbers ("0 · 1 · … · 10")."""
    parts = []
    for message in messages:
        lines = [message.text] if message.text else []
        if is_number_scale([choice.label for choice in message.choices]):
            lines.append(" · ".join(choice.label.strip() for choice in message.choices))
        else:
            lines += [f"{n}. {choice.label}" for n, choice in enumerate(message.choices, 1)]
        if lines:
            parts.append("\n".join(lines))
    return "\n\n".join(parts)


def split_text(text: str, limit_bytes: int = PASSIVE_TEXT_BYTES) -> list[str]:
    """Cut `text` into pieces of at most `limit_bytes` UTF-8 bytes, at paragraph or line ends
    where possible, so a long summary arrives whole."""
    pieces: list[str] = []
    rest = text
    while len(rest.encode()) > limit_bytes:
        head = rest.encode()[:limit_bytes].decode("utf-8", "ignore")
        cut = max(head.rfind("\n\n"), head.rfind("\n"))
        if cut <= 0:
            cut = len(head)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n")
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def fit_passive(messages: Sequence[Outgoing]) -> list[Outgoing]:
    """A turn's replies as the rows its outbox keeps: each cut to what one passive reply (and
    one customer-service text) carries, so a row is sent whole, passively or through the API.
    The choices stay with the last piece of their message."""
    rows: list[Outgoing] = []
    for message in messages:
        if len(render_text([message]).encode()) <= PASSIVE_TEXT_BYTES:
            rows.append(message)
            continue
        pieces = split_text(message.text)
        rows += [Outgoing(text=piece) for piece in pieces[:-1]]
        last = replace(message, text=pieces[-1])
        if len(render_text([last]).encode()) <= PASSIVE_TEXT_BYTES:
            rows.append(last)
        else:
            rows += [Outgoing(text=pieces[-1]), replace(message, text="")]
    return rows


def passive_share(messages: Sequence[Outgoing], limit: int = PASSIVE_TEXT_BYTES) -> int:
    """How many of the leading messages one passive reply carries, joined as `render_text`
    joins them (at least the first: the answer is never empty because the rest is long)."""
    for count in range(len(messages), 1, -1):
        if len(render_text(messages[:count]).encode()) <= limit:
            return count
    return min(1, len(messages))


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def passive_reply_xml(message: BaseMessage, text: str) -> str:
    """The passive text reply. wechatpy wraps the content in CDATA as is, so a "]]>" in it
    (people's own words are echoed back in summaries) is split across two CDATA sections, and
    characters XML cannot carry are dropped."""
    content = _XML_INVALID.sub("", text).replace("]]>", "]]]]><![CDATA[>")
    return str(TextReply(message=message, content=content).render())


def text_incoming(text: str, **common: Any) -> Incoming:
    """Typed text; "/status 2" becomes the command it names (WeChat has no command entities)."""
    match = _COMMAND_TEXT.match(text.strip())
    if match:
        return Incoming(
            kind="command",
            command=match.group(1).lower(),
            command_args=(match.group(2) or "").strip(),
            **common,
        )
    return Incoming(kind="text", text=text, **common)


def menu_definition(lang: str) -> dict[str, Any]:
    """The custom menu: file a complaint / my complaints / help (click events, keys above)."""
    _ = translator(lang)
    labels = {"file": _("File a complaint"), "status": _("My complaints"), "help": _("Help")}
    return {"button": [{"type": "click", "name": labels[key], "key": key} for key in MENU_COMMANDS]}


# ------------------------------------------------------------------------- the access token


class AccessTokens:
    """The account's access_token, cached in the database for every worker.

    Read without a lock while it is fresh; refreshed under a lock (PostgreSQL advisory lock,
    SQLite write transaction) by whichever worker finds it expiring or stale first — the others
    then read the new one instead of fetching again (a new fetch would cut the old token's life).
    """

    def __init__(
        self,
        appid: str,
        fetch: Callable[[], Awaitable[tuple[str, int]]],
        *,
        clock: Callable[[], datetime] = utc_now,
        refresh_margin: timedelta = TOKEN_REFRESH_MARGIN,
    ) -> None:
        self.key = f"wechat:access_token:{appid}"
        self._fetch = fetch
        self._clock = clock
        self._margin = refresh_margin
        self._local = asyncio.Lock()  # one refresh at a time within this worker

    def _usable(self, row: KeyValue | None, stale: str | None) -> str | None:
        if row is None or row.expires_at is None or not isinstance(row.value, dict):
            return None
        token = row.value.get("access_token")
        if not token or token == stale or row.expires_at - self._clock() <= self._margin:
            return None
        return str(token)

    async def get(self, *, stale: str | None = None) -> str:
        """A valid token; `stale` is one WeChat just refused (40001/42001), never returned."""
        token = self._usable(await KeyValue.get_or_none(key=self.key), stale)
        if token:
            return token
        async with self._local, in_transaction() as conn:
            if conn.capabilities.dialect == "postgres":
                await conn.execute_query("SELECT pg_advisory_xact_lock(hashtext($1))", [self.key])
            else:
                # A write first takes SQLite's RESERVED lock: other processes wait here.
                await conn.execute_query(
                    "UPDATE key_value SET updated_at = updated_at WHERE key = ?", [self.key]
                )
            row = await KeyValue.filter(key=self.key).using_db(conn).first()
            token = self._usable(row, stale)
            if token:
                return token
            try:
                token, expires_in = await self._fetch()
            except Exception:
                WECHAT_TOKEN_REFRESHES.labels(result="failed").inc()
                raise
            WECHAT_TOKEN_REFRESHES.labels(result="ok").inc()
            expires_at = self._clock() + timedelta(seconds=expires_in)
            if row is None:
                await KeyValue.create(
                    key=self.key,
                    value={"access_token": token},
                    expires_at=expires_at,
                    using_db=conn,
                )
            else:
                row.value = {"access_token": token}
                row.expires_at = expires_at
                await row.save(using_db=conn)
            log.info("WeChat access_token refreshed; valid for %s s", expires_in)
            return token


# ------------------------------------------------------------------------- the API client


class _ThreadClient(WeChatClient):
    """wechatpy's synchronous client, called from worker threads only.

    The token is handed to each call by `WeChatApi` (from `AccessTokens`, on the event loop), so
    wechatpy never refreshes on its own (auto_retry off, `access_token` overridden).
    """

    def __init__(self, appid: str, secret: str, api_base: str, timeout: float) -> None:
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = f"{api_base.rstrip('/')}/cgi-bin/"
        self._current = threading.local()

    @property
    def access_token(self) -> str:  # type: ignore[override]
        token = getattr(self._current, "token", None)
        if token is None:
            raise RuntimeError("WeChat API called outside WeChatApi.call (no access_token)")
        return str(token)

    def fetch_access_token(self) -> dict[str, Any]:
        """GET cgi-bin/token at our API base (wechatpy's own hard-codes api.weixin.qq.com)."""
        params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
        response = self._http.get(self.API_BASE_URL + "token", params=params, timeout=self.timeout)
        try:
            response.raise_for_status()
        except requests.RequestException as exc:
            raise WeChatClientException(None, None, client=self, response=response) from exc
        result: dict[str, Any] = self._handle_result(response)
        return result

    def call_with(self, token: str, call: Callable[[WeChatClient], T]) -> T:
        self._current.token = token
        try:
            return call(self)
        finally:
            self._current.token = None


@dataclass(frozen=True, slots=True)
class Media:
    data: bytes
    content_type: str
    filename: str | None


class WeChatApi:
    """The calls the product makes, each in a worker thread with the shared access_token."""

    def __init__(
        self,
        appid: str,
        secret: str,
        *,
        api_base: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        timeout: float = API_TIMEOUT_SECONDS,
    ) -> None:
        self.client = _ThreadClient(appid, secret, api_base or DEFAULT_API_BASE, timeout)
        self.tokens = AccessTokens(appid, self._fetch_token, clock=clock)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Callable[[], datetime] = utc_now
    ) -> WeChatApi:
        if not settings.wechat_appid or not settings.wechat_secret:
            raise ValueError(
                "COMPLAINTDESK_WECHAT_APPID and COMPLAINTDESK_WECHAT_SECRET are needed"
            )
        return cls(
            settings.wechat_appid,
            settings.wechat_secret,
            api_base=settings.wechat_api_base,
            clock=clock,
        )

    async def _fetch_token(self) -> tuple[str, int]:
        result = await asyncio.to_thread(self.client.fetch_access_token)
        return str(result["access_token"]), int(result.get("expires_in", 7200))

    async def call(self, call: Callable[[WeChatClient], T]) -> T:
        token = await self.tokens.get()
        try:
            return await asyncio.to_thread(self.client.call_with, token, call)
        except WeChatClientException as exc:
            if exc.errcode not in STALE_TOKEN_ERRORS:
                raise
            log.info("WeChat refused the access_token (%s); refreshing once", exc.errcode)
        token = await self.tokens.get(stale=token)
        return await asyncio.to_thread(self.client.call_with, token, call)

    async def send_text(self, openid: str, text: str) -> None:
        await self.call(lambda client: client.message.send_text(openid, text))

    async def send_template(self, openid: str, template_id: str, data: dict[str, Any]) -> None:
        await self.call(lambda client: client.message.send_template(openid, template_id, data))

    async def create_menu(self, menu: dict[str, Any]) -> None:
        await self.call(lambda client: client.menu.create(menu))

    async def download_media(self, media_id: str) -> Media:
        response = await self.call(lambda client: client.media.download(media_id))
        if not isinstance(response, requests.Response):
            # A JSON answer without errcode (e.g. a video's download URL): not a file we keep.
            raise WeChatClientException(None, f"media {media_id} is not a downloadable file")
        disposition = response.headers.get("Content-disposition", "")
        match = _FILENAME.search(disposition)
        content_type = response.headers.get("Content-Type", "application/octet-stream")
        return Media(
            data=response.content,
            content_type=content_type.split(";")[0].strip(),
            filename=match.group(1) if match else None,
        )


# ------------------------------------------------------------------------- numbered options


class ShownOptions:
    """The numbered options a person saw last, so a typed number means that choice.

    WeChat shows choices as numbered lines; the number refers to *our* numbering, so the adapter
    resolves it back to the choice (including Skip / Done / Back, and on free-text questions,
    where the engine would otherwise take "1" as the answer). Passive replies and messages sent
    by the outbox (a survey question, say) both record what they showed; it is kept in the
    database so any worker resolves the next message the same way.
    """

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock

    @staticmethod
    def _key(openid: str) -> str:
        return f"wechat:options:{openid}"

    async def resolve(self, incoming: Incoming) -> Incoming:
        typed = (incoming.text or "").strip()
        number = small_int(typed, 3) if incoming.kind == "text" else None
        if number is None:
            return incoming
        row = await KeyValue.get_or_none(key=self._key(incoming.user_id))
        if row is None or (row.expires_at is not None and row.expires_at <= self._clock()):
            return incoming
        shown = row.value.get("choices", []) if isinstance(row.value, dict) else []
        if is_number_scale([str(label) for _id, label in shown]):
            scores = ((c, small_int(str(label).strip())) for c, label in shown)
            chosen = next((c for c, score in scores if score == number), None)
            if chosen is None:
                return incoming
            return replace(incoming, kind="choice", choice=str(chosen), text=None)
        if not 1 <= number <= len(shown):
            return incoming
        return replace(incoming, kind="choice", choice=str(shown[number - 1][0]), text=None)

    async def remember(self, openid: str, choices: Sequence[Choice]) -> None:
        key = self._key(openid)
        value = {"choices": [[c.id, c.label] for c in choices]}
        expires_at = self._clock() + OPTIONS_MEMORY
        if await KeyValue.filter(key=key).update(value=value, expires_at=expires_at):
            return
        try:
            await KeyValue.create(key=key, value=value, expires_at=expires_at)
        except IntegrityError:  # another worker stored options for this person just now
            await KeyValue.filter(key=key).update(value=value, expires_at=expires_at)

    async def forget(self, openid: str) -> None:
        """The last reply offered nothing: typed numbers are plain text again."""
        await KeyValue.filter(key=self._key(openid)).delete()


# ------------------------------------------------------------------------- outbound


def classify_failure(exc: Exception) -> Exception:
    """A WeChat error as the dispatcher's RetryLater / TransientFailure / PermanentFailure."""
    if isinstance(exc, requests.RequestException):
        return TransientFailure(f"WeChat unreachable: {exc}")
    if isinstance(exc, WeChatClientException):
        code = exc.errcode
        if code is None or code == SYSTEM_BUSY:
            return TransientFailure(f"WeChat error {code}: {exc.errmsg}")
        if code == MINUTE_QUOTA:
            return RetryLater(60, f"WeChat minute quota reached ({code})")
        if code == DAILY_QUOTA:
            return RetryLater(3600, f"WeChat daily quota reached ({code})")
        return PermanentFailure(f"WeChat error {code}: {exc.errmsg}")
    return exc


class WeChatSender:
    """The outbox dispatcher's Sender for the wechat channel (customer-service messages)."""

    channel = Channel.WECHAT
    limits = WECHAT_LIMITS

    def __init__(
        self,
        api: WeChatApi,
        *,
        notice_template: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.api = api
        self.notice_template = notice_template
        self.options = ShownOptions(clock)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        api: WeChatApi | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> WeChatSender:
        template = os.environ.get(TEMPLATE_NOTICE_ENV) or None
        api = api or WeChatApi.from_settings(settings, clock=clock)
        return cls(api, notice_template=template, clock=clock)

    async def send(self, chat_id: str, message: Outgoing) -> None:
        await self._deliver(chat_id, render_text([message]))
        if message.choices:
            await self.options.remember(chat_id, message.choices)

    async def _deliver(self, chat_id: str, text: str) -> None:
        try:
            await self.api.send_text(chat_id, text)
            return
        except (WeChatClientException, requests.RequestException) as exc:
            closed = isinstance(exc, WeChatClientException) and exc.errcode in (
                WINDOW_CLOSED,
                OVER_QUOTA,
            )
            if not closed:
                raise classify_failure(exc) from exc
            if not self.notice_template:
                raise PermanentFailure(
                    f"WeChat customer-service window closed ({exc.errcode}) and no template "
                    f"configured ({TEMPLATE_NOTICE_ENV})"
                ) from exc
        try:
            data = {"content": {"value": text}}
            await self.api.send_template(chat_id, self.notice_template, data)
        except (WeChatClientException, requests.RequestException) as exc:
            raise classify_failure(exc) from exc


# ------------------------------------------------------------------------- inbound


class WebhookRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Answer:
    """What a delivery of one message is answered with: the passive reply's text and the outbox
    rows it carries (marked sent once the response is written), then the rows that go through
    the customer-service API after it."""

    openid: str
    text: str | None
    response: list[ClaimedReply]
    by_api: list[ClaimedReply]
    settled: bool = False  # the rows above are marked and sent (once, whichever delivery)


@dataclass
class _Turn:
    """One WeChat message being answered; retries of the same message join it."""

    openid: str
    task: asyncio.Task[list[Outgoing]] | None = None
    handed_off: bool = False  # the deadline passed: the outbox carries the answer
    answer: asyncio.Future[_Answer] | None = None  # settled on once, shared by the retries


class WeChatEndpoint:
    def __init__(
        self,
        conversation: ConversationPort,
        *,
        token: str,
        appid: str | None,
        aes_key: str | None,
        api: WeChatApi | None,
        clock: Callable[[], datetime] = utc_now,
        reply_deadline: float = REPLY_DEADLINE_SECONDS,
        accept_plaintext: bool = False,
        sender: WeChatSender | None = None,
    ) -> None:
        self.conversation = conversation
        # Sends what a passive reply cannot carry at once, right after it (customer-service
        # messages); without it such rows wait for the outbox dispatcher.
        self.sender = sender
        self.wake_outbox: Callable[[], None] | None = None
        self._settling: set[asyncio.Task[None]] = set()
        # Safe mode with an AES key refuses plaintext unless the account runs in compatibility
        # mode (WeChat's 兼容模式 sends both while an account switches over).
        self.accept_plaintext = accept_plaintext
        self.token = token
        self.appid = appid
        self.crypto = WeChatCrypto(token, aes_key, appid or "") if aes_key else None
        self.api = api
        self.clock = clock
        self.reply_deadline = reply_deadline
        self.options = ShownOptions(clock)
        self._turns: dict[str, _Turn] = {}

    # -- HTTP ------------------------------------------------------------------------------

    async def verify(self, request: web.Request) -> web.Response:
        """GET: WeChat checks the server URL; echo `echostr` when the signature is ours."""
        try:
            self._check_request(request.query)
        except WebhookRefused as refused:
            return web.Response(status=refused.status, text=refused.reason)
        return web.Response(text=request.query.get("echostr", ""))

    async def receive(self, request: web.Request) -> web.Response:
        try:
            self._check_request(request.query)  # strangers' bodies are not even read
            body = await self._read_body(request)
            safe = request.query.get("encrypt_type", "raw").lower() == "aes"
            if not safe and self.crypto is not None and not self.accept_plaintext:
                raise WebhookRefused(403, "plaintext message refused in safe mode")
            xml = self._open(body, request.query) if safe else body.decode("utf-8")
            fields = parse_untrusted_xml(xml.encode("utf-8"))
            if not fields.get("FromUserName") or not fields.get("MsgType"):
                raise UntrustedXmlError("FromUserName and MsgType are required")
            message = parse_message(xml)
        except WebhookRefused as refused:
            log.warning("WeChat webhook refused (%s): %s", refused.status, refused.reason)
            return web.Response(status=refused.status, text=refused.reason)
        except (UntrustedXmlError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("WeChat webhook: bad body: %r", exc)
            return web.Response(status=400, text="bad request")
        answer = await self.answer(message, fields)
        if answer is None or not answer.text:
            response = web.Response(text="success")
        else:
            reply = passive_reply_xml(message, answer.text)
            if safe and self.crypto is not None:
                stamp = str(int(self.clock().timestamp()))
                reply = self.crypto.encrypt_message(reply, request.query.get("nonce", ""), stamp)
            response = web.Response(text=reply, content_type="application/xml")
        if answer is None or not (answer.response or answer.by_api):
            return response
        request_id = current_context().get("request")
        if request_id:  # written before the middleware could add it
            response.headers["X-Request-Id"] = request_id
        # The rows count as answered once the response is written; a worker that dies before
        # leaves them to WeChat's retry (answered with them again) or, past it, the dispatcher.
        # What follows runs apart from the request: WeChat closes the connection once it has
        # the reply, and aiohttp then cancels the handler.
        await response.prepare(request)
        await response.write_eof()
        settling = asyncio.create_task(self.settle(answer))
        self._settling.add(settling)
        settling.add_done_callback(self._settled)
        return response

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._settling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("WeChat replies not settled", exc_info=task.exception())

    async def settle(self, answer: _Answer) -> None:
        """After the response: its rows marked sent, then the rest sent by the API (once)."""
        if answer.settled:
            return
        answer.settled = True
        await mark_all_sent(answer.response, self.clock())
        await self._send_by_api(answer.openid, answer.by_api)

    async def _send_by_api(self, openid: str, claims: Sequence[ClaimedReply]) -> None:
        if not claims:
            return
        sender = self.sender
        if sender is None:
            log.warning("WeChat replies for %s wait for the outbox (no API configured)", openid)
            await release(claims, self.clock(), "no WeChat API in this worker")
            if self.wake_outbox is not None:
                self.wake_outbox()
            return

        async def send(message: Outgoing) -> None:
            await sender.send(openid, message)

        await deliver(claims, send, now=self.clock, wake=self.wake_outbox)

    async def _read_body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise WebhookRefused(413, "body too large")
        body = bytearray()
        async for chunk in request.content.iter_chunked(16 * 1024):
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise WebhookRefused(413, "body too large")
        return bytes(body)

    def _check_request(self, query: Any) -> None:
        """The signature first (strings only, nothing converted), then the timestamp's form and
        freshness and the nonce's form."""
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not signature_matches(
            wechat_signature(self.token, timestamp, nonce), query.get("signature")
        ):
            raise WebhookRefused(403, "bad signature")
        if not timestamp_fresh(timestamp, self.clock()):
            raise WebhookRefused(403, "stale or missing timestamp")
        if not NONCE.fullmatch(nonce):
            raise WebhookRefused(403, "malformed nonce")

    def _open(self, body: bytes, query: Any) -> str:
        """Safe mode: check msg_signature over the Encrypt field and decrypt it."""
        if self.crypto is None:
            raise WebhookRefused(400, "encrypted message but no EncodingAESKey configured")
        try:
            outer = parse_untrusted_xml(body)
        except UntrustedXmlError as exc:
            raise WebhookRefused(400, str(exc)) from exc
        encrypt = outer.get("Encrypt")
        if not encrypt:
            raise WebhookRefused(400, "no Encrypt field in safe mode")
        try:
            return str(
                self.crypto.decrypt_message(
                    {"Encrypt": encrypt},
                    query.get("msg_signature", ""),
                    query.get("timestamp", ""),
                    query.get("nonce", ""),
                )
            )
        except (InvalidSignatureException, InvalidAppIdException) as exc:
            raise WebhookRefused(403, "bad msg_signature or appid") from exc
        except Exception as exc:  # malformed base64 / padding / length: not from WeChat
            raise WebhookRefused(400, f"cannot decrypt: {exc.__class__.__name__}") from exc

    # -- the five-second rule ----------------------------------------------------------------

    async def answer(self, message: BaseMessage, fields: dict[str, str]) -> _Answer | None:
        """What to answer this delivery of `message` with, or None (answered "success")."""
        key = update_key(fields)
        turn = self._turns.get(key)
        if turn is None:
            turn = _Turn(openid=message.source)
            self._turns[key] = turn
            turn.task = asyncio.create_task(self._run_turn(key, turn, message, fields))
            turn.task.add_done_callback(lambda _: self._forget_later(key))
        assert turn.task is not None
        if turn.handed_off:
            return None  # a retry of a message the outbox is already answering
        await asyncio.wait({turn.task}, timeout=self.reply_deadline)
        if turn.handed_off:
            return None  # another delivery of this message gave up waiting first
        if not turn.task.done():
            turn.handed_off = True
            log.info("WeChat turn %s passed the reply deadline; answering via the outbox", key)
            return None
        if turn.answer is None:  # the first delivery to get here settles it for every retry
            turn.answer = asyncio.ensure_future(self._passive(turn.openid, key, turn.task.result()))
        return await asyncio.shield(turn.answer)

    async def _passive(self, openid: str, key: str, replies: list[Outgoing]) -> _Answer:
        """The passive reply for a turn's replies: the committed rows one reply carries; what
        does not fit moves to the API path (one UPDATE), sent right after the response."""
        if not isinstance(replies, Replies) or not replies.in_outbox:
            # Not in the outbox (the apology for a failed turn, a conversation keeping none).
            pieces = split_text(render_text(replies))
            if len(pieces) > 1:
                await self._enqueue(openid, key, pieces[1:], first_index=1)
            return _Answer(openid, pieces[0] or None, [], [])
        response = [claim for claim in replies.claimed if claim.in_response]
        by_api = [claim for claim in replies.claimed if not claim.in_response]
        carried = passive_share([claim.message for claim in response])
        by_api += await leave_response(response[carried:])
        response = response[:carried]
        text = split_text(render_text([claim.message for claim in response]))[0]
        return _Answer(openid, text or None, response, sorted(by_api, key=lambda c: c.id))

    async def _run_turn(
        self, key: str, turn: _Turn, message: BaseMessage, fields: dict[str, str]
    ) -> list[Outgoing]:
        try:
            replies = await self._converse(key, message, fields)
        except Exception:
            log.exception("WeChat turn %s failed", key)
            replies = self.conversation.failure_reply()
        if turn.handed_off:
            try:
                await self._late(turn.openid, key, replies)
            except Exception:
                log.exception("WeChat turn %s: could not send the late answer", key)
        return replies

    async def _late(self, openid: str, key: str, replies: list[Outgoing]) -> None:
        """The answer of a turn that missed the passive window: all through the API."""
        if not isinstance(replies, Replies) or not replies.in_outbox:
            await self._enqueue(openid, key, split_text(render_text(replies)))
            return
        response = [claim for claim in replies.claimed if claim.in_response]
        by_api = [claim for claim in replies.claimed if not claim.in_response]
        by_api += await leave_response(response)
        await self._send_by_api(openid, sorted(by_api, key=lambda c: c.id))

    async def _enqueue(
        self, openid: str, key: str, pieces: Sequence[str], *, first_index: int = 0
    ) -> None:
        for index, piece in enumerate(pieces, first_index):
            if piece:
                await enqueue(
                    channel=Channel.WECHAT,
                    chat_id=openid,
                    message=Outgoing(text=piece),
                    idempotency_key=f"wechat:reply:{key}:{index}",
                    now=self.clock(),
                )

    def _forget_later(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(RETRY_MEMORY_SECONDS, self._turns.pop, key, None)

    async def drain(self) -> None:
        """Wait for turns still running (shutdown): their late answers reach the outbox."""
        tasks = [t.task for t in self._turns.values() if t.task is not None and not t.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        if self._settling:  # rows answered passively, and what follows them by the API
            await asyncio.wait(set(self._settling), timeout=30)

    # -- WeChat message → Incoming ----------------------------------------------------------

    async def _converse(
        self, key: str, message: BaseMessage, fields: dict[str, str]
    ) -> list[Outgoing]:
        openid = message.source
        if isinstance(message, BaseEvent) and message.event == "unsubscribe":
            await self._set_unsubscribed(openid, True)
            return []
        incoming = await self.to_incoming(key, message, fields)
        if incoming is None:
            return []
        if isinstance(message, BaseEvent) and message.event.startswith("subscribe"):
            await self._set_unsubscribed(openid, False)
        incoming = await self.options.resolve(incoming)
        replies = await self.conversation.handle(incoming)
        if replies:
            shown = next((m.choices for m in reversed(replies) if m.choices), ())
            await (self.options.remember(openid, shown) if shown else self.options.forget(openid))
        return replies

    async def _set_unsubscribed(self, openid: str, unsubscribed: bool) -> None:
        await Complainant.filter(channel=Channel.WECHAT, external_id=openid).update(
            unsubscribed=unsubscribed
        )

    async def to_incoming(
        self, key: str, message: BaseMessage, fields: dict[str, str]
    ) -> Incoming | None:
        """The neutral message for a WeChat message or event; None for events we ignore."""
        common: dict[str, Any] = {
            "channel": Channel.WECHAT.value,
            "user_id": message.source,
            "message_id": key,
            "received_at": self.clock(),
        }
        kind = fields.get("MsgType", "").lower()
        if kind == "text":
            return text_incoming(fields.get("Content", ""), **common)
        if kind == "location":
            return Incoming(
                kind="location",
                latitude=_float(fields.get("Location_X")),
                longitude=_float(fields.get("Location_Y")),
                location_label=fields.get("Label") or None,
                **common,
            )
        if kind in ("image", "voice"):
            return await self._media_incoming(kind, fields, common)
        if kind == "event":
            return _event_incoming(message, fields, common)
        return Incoming(kind="unsupported", **common)

    async def _media_incoming(
        self, kind: str, fields: dict[str, str], common: dict[str, Any]
    ) -> Incoming:
        media_id = fields.get("MediaId", "")
        neutral = "photo" if kind == "image" else "file"
        if self.api is None or not media_id:
            return Incoming(kind="unsupported", **common)
        try:
            media = await self.api.download_media(media_id)
        except (WeChatClientException, requests.RequestException) as exc:
            log.warning("WeChat media %s could not be downloaded: %s", media_id, exc)
            return Incoming(kind="unsupported", **common)
        default_type = "image/jpeg" if kind == "image" else f"audio/{fields.get('Format') or 'amr'}"
        content_type = media.content_type
        if content_type in ("", "application/octet-stream"):
            content_type = default_type.lower()
        downloaded = FileRef(
            file_id=f"wx-media:{media_id}",
            file_name=media.filename,
            mime_type=content_type,
            size=len(media.data),
            data=media.data,
        )
        try:
            stored = await self.conversation.store_file(Channel.WECHAT, downloaded)
        except AttachmentTooLarge:
            # Passed on without the bytes so the dialog tells the person about the limit.
            stored = FileRef(
                file_id=downloaded.file_id,
                file_name=downloaded.file_name,
                mime_type=downloaded.mime_type,
                size=downloaded.size,
            )
        return Incoming(kind=neutral, file=stored, **common)  # type: ignore[arg-type]


def _float(value: str | None) -> float | None:
    """A coordinate from the XML; None for anything but a finite number ("nan", "1e999")."""
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _event_incoming(
    message: BaseMessage, fields: dict[str, str], common: dict[str, Any]
) -> Incoming | None:
    event = fields.get("Event", "").lower()
    event_key = fields.get("EventKey", "")
    if event == "subscribe":
        scene = event_key.removeprefix("qrscene_") if event_key.startswith("qrscene_") else ""
        if scene:
            return Incoming(kind="command", command="start", command_args=scene, **common)
        return Incoming(kind="command", command="help", **common)
    if event == "scan":
        return Incoming(kind="command", command="start", command_args=event_key, **common)
    if event == "click":
        command = MENU_COMMANDS.get(event_key, "help")
        return Incoming(kind="command", command=command, **common)
    if event == "location":
        return Incoming(
            kind="location",
            latitude=_float(fields.get("Latitude")),
            longitude=_float(fields.get("Longitude")),
            **common,
        )
    return None


# ------------------------------------------------------------------------- wiring

WECHAT_ENDPOINT = web.AppKey("wechat_endpoint", WeChatEndpoint)
WECHAT_SENDER = web.AppKey("wechat_sender", WeChatSender)


def setup_wechat(
    app: web.Application,
    conversation: ConversationPort,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utc_now,
    reply_deadline: float = REPLY_DEADLINE_SECONDS,
) -> None:
    """Serve `/wechat` on `app`; `app[WECHAT_SENDER]` is the outbox dispatcher's sender.

    Needs `wechat_token`; `wechat_aes_key` enables safe mode; `wechat_appid` and `wechat_secret`
    enable media downloads and outbound messages.
    """
    if not settings.wechat_token:
        raise ValueError("COMPLAINTDESK_WECHAT_TOKEN is needed for the /wechat endpoint")
    if settings.wechat_aes_key and not settings.wechat_appid:
        raise ValueError(
            "safe mode (COMPLAINTDESK_WECHAT_AES_KEY) needs COMPLAINTDESK_WECHAT_APPID"
        )
    api = None
    sender = None
    if settings.wechat_appid and settings.wechat_secret:
        api = WeChatApi.from_settings(settings, clock=clock)
        sender = WeChatSender.from_settings(settings, api, clock=clock)
        app[WECHAT_SENDER] = sender
    keep = getattr(conversation, "keep_replies_in_outbox", None)
    if keep is not None:
        # A turn's replies are committed with it, cut to what a passive reply carries
        # (bot.replies): a redelivery of the MsgId is answered with them, never re-run.
        keep(Channel.WECHAT, in_response=True, shape=fit_passive)
    endpoint = WeChatEndpoint(
        conversation,
        token=settings.wechat_token,
        appid=settings.wechat_appid,
        aes_key=settings.wechat_aes_key,
        api=api,
        clock=clock,
        reply_deadline=reply_deadline,
        accept_plaintext=settings.wechat_accept_plaintext,
        sender=sender,
    )
    app[WECHAT_ENDPOINT] = endpoint
    app.router.add_get("/wechat", endpoint.verify)
    app.router.add_post("/wechat", endpoint.receive)

    async def _wire(_: web.Application) -> None:
        dispatcher = app.get(DISPATCHER_KEY)
        if dispatcher is not None:
            endpoint.wake_outbox = dispatcher.wake

    async def _drain(_: web.Application) -> None:
        await endpoint.drain()

    app.on_startup.append(_wire)
    app.on_shutdown.append(_drain)
