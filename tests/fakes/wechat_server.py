"""A fake WeChat Official Account platform: a real aiohttp server on 127.0.0.1 for the tests.

It plays both sides WeChat plays for the product:

- the **API server** wechatpy's client talks to over real HTTP (point `WeChatClient.API_BASE_URL`,
  i.e. the setting `COMPLAINTDESK_WECHAT_API_BASE`, at `base_url`)::

      async with FakeWeChat() as wx:
          settings = Settings(wechat_appid=wx.appid, wechat_secret=wx.secret,
                              wechat_token=wx.token, wechat_aes_key=wx.aes_key,
                              wechat_api_base=wx.base_url)

- the **message pusher** that POSTs a person's messages and events to the account's `/wechat` URL,
  signed and (in safe mode) AES-encrypted exactly as WeChat does, and reads the passive reply back
  (`deliver`, `push_text`, `push_event`, ...). `SAMPLES` holds the official sample messages.

Faithful to the documented platform (so the product meets what it will meet in production):
- `GET /cgi-bin/token?grant_type=client_credential&appid&secret` → `{"access_token",
  "expires_in"}`; 40002 bad grant_type, 40013 bad appid, 40125 bad secret. A newly issued token
  leaves the previous one valid for five more minutes (WeChat's documented overlap).
- Every other call needs `access_token`: 41001 when missing, 40001 when unknown ("invalid
  credential"), 42001 when expired.
- `POST /cgi-bin/message/custom/send`: only inside the customer-service window: a person's message,
  a menu click, a subscribe or a scan opens it for 48 hours and allows `messages_per_interaction`
  messages (5, as WeChat documents it now); outside it 45015 ("response out of time limit or
  subscription is canceled"), over the allowance 45047 ("out of response count limit"),
  unknown or unsubscribed users 45015 as well; 40008 for an unknown msgtype, 44003 for empty text.
- `POST /cgi-bin/message/template/send`: no window, but a registered `template_id` (40037
  otherwise) and a subscribed user (43004 "require subscribe"); answers with a `msgid`.
- `POST /cgi-bin/menu/create`: 1–3 top-level buttons (40016), names up to 16 bytes top level and
  60 bytes in sub-menus (40018), click keys up to 128 bytes (40019), known types (40017).
- `GET /cgi-bin/media/get?media_id`: the registered bytes with their Content-Type and a
  Content-disposition filename; 40007 "invalid media_id" otherwise.
- Errors are HTTP 200 with `{"errcode", "errmsg"}`, as WeChat answers them.

Simplified (documented so nobody relies on it):
- One official account per server; openids are whatever the test uses.
- `fail_next(path, errcode)` injects one error for the next call to that path (e.g. -1 "system
  error"); there is no real rate limiting (45009) unless injected.
- Only text customer-service messages and template messages are implemented; media upload,
  mass sending, users, tags and QR codes are not (unknown paths answer 404).
- `deliver` does not retry on its own; tests re-deliver the same MsgId to play WeChat's retries.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xmltodict
from aiohttp import ClientSession, ClientTimeout, web
from wechatpy.crypto import WeChatCrypto

from tests.fakes.loopback import LoopbackServer

JSONDict = dict[str, Any]

DEFAULT_APPID = "wx5823bf96d3bd56c7"
DEFAULT_SECRET = "fake-wechat-app-secret-0000000000"
DEFAULT_TOKEN = "complaintdesk-test-token"
# A valid EncodingAESKey (43 characters of base64 for a 32-byte key) used by the tests only.
DEFAULT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
DEFAULT_ACCOUNT = "gh_0123456789ab"

WINDOW_SECONDS = 48 * 3600
MESSAGES_PER_INTERACTION = 5
TOKEN_OVERLAP_SECONDS = 300
# Events that open the customer-service window (WeChat's list: message, subscribe, menu click,
# scan; a reported LOCATION or a VIEW click does not).
WINDOW_EVENTS = frozenset({"subscribe", "click", "scan", "scancode_push", "scancode_waitmsg"})

ERRORS = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid appid",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44003: "empty news data",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
}

# The official sample messages from WeChat's documentation (接收普通消息 / 接收事件推送).
SAMPLES: dict[str, str] = {
    "text": """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[fromUser]]></FromUserName>
  <CreateTime>1348831860</CreateTime>
  <MsgType><![CDATA[text]]></MsgType>
  <Content><![CDATA[this is a test]]></Content>
  <MsgId>1234567890123456</MsgId>
</xml>""",
    "image": """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[fromUser]]></FromUserName>
  <CreateTime>1348831860</CreateTime>
  <MsgType><![CDATA[image]]></MsgType>
  <PicUrl><![CDATA[this is a url]]></PicUrl>
  <MediaId><![CDATA[media_id]]></MediaId>
  <MsgId>1234567890123456</MsgId>
</xml>""",
    "voice": """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[fromUser]]></FromUserName>
  <CreateTime>1357290913</CreateTime>
  <MsgType><![CDATA[voice]]></MsgType>
  <MediaId><![CDATA[media_id]]></MediaId>
  <Format><![CDATA[Format]]></Format>
  <MsgId>1234567890123456</MsgId>
</xml>""",
    "location": """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[fromUser]]></FromUserName>
  <CreateTime>1351776360</CreateTime>
  <MsgType><![CDATA[location]]></MsgType>
  <Location_X>23.134521</Location_X>
  <Location_Y>113.358803</Location_Y>
  <Scale>20</Scale>
  <Label><![CDATA[位置信息]]></Label>
  <MsgId>1234567890123456</MsgId>
</xml>""",
    "subscribe": """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[FromUser]]></FromUserName>
  <CreateTime>123456789</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[subscribe]]></Event>
</xml>""",
    "unsubscribe": """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[FromUser]]></FromUserName>
  <CreateTime>123456789</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[unsubscribe]]></Event>
</xml>""",
    "click": """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[FromUser]]></FromUserName>
  <CreateTime>123456789</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[CLICK]]></Event>
  <EventKey><![CDATA[EVENTKEY]]></EventKey>
</xml>""",
    "location_event": """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[fromUser]]></FromUserName>
  <CreateTime>123456789</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[LOCATION]]></Event>
  <Latitude>23.137466</Latitude>
  <Longitude>113.352425</Longitude>
  <Precision>119.385040</Precision>
</xml>""",
}


def sign(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the lexicographically sorted parts, concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _nonce() -> str:
    return "".join(secrets.choice(string.digits) for _ in range(10))


def _xml_field(xml: str, name: str) -> str:
    match = re.search(rf"<{name}>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</{name}>", xml, re.S)
    return match.group(1) if match else ""


def message_xml(fields: dict[str, str | int | float]) -> str:
    """An incoming-message XML document as WeChat builds it (strings in CDATA)."""
    nodes = []
    for name, value in fields.items():
        if isinstance(value, str):
            nodes.append(f"<{name}><![CDATA[{value}]]></{name}>")
        else:
            nodes.append(f"<{name}>{value}</{name}>")
    return "<xml>" + "".join(nodes) + "</xml>"


@dataclass(frozen=True, slots=True)
class Call:
    path: str  # e.g. "/cgi-bin/message/custom/send"
    params: dict[str, str]
    body: JSONDict | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the account's server answered to one pushed message."""

    status: int
    body: str
    reply: dict[str, str] | None  # the passive reply's fields (decrypted), None for "success"

    @property
    def text(self) -> str | None:
        return None if self.reply is None else self.reply.get("Content")


@dataclass
class _Window:
    opened_at: float
    remaining: int


@dataclass
class _Media:
    data: bytes
    content_type: str
    filename: str


@dataclass
class _Injected:
    errcode: int
    errmsg: str


class FakeWeChat(LoopbackServer):
    def __init__(
        self,
        *,
        appid: str = DEFAULT_APPID,
        secret: str = DEFAULT_SECRET,
        token: str = DEFAULT_TOKEN,
        aes_key: str = DEFAULT_AES_KEY,
        account: str = DEFAULT_ACCOUNT,
        token_lifetime: int = 7200,
        messages_per_interaction: int = MESSAGES_PER_INTERACTION,
        templates: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.appid = appid
        self.secret = secret
        self.token = token
        self.aes_key = aes_key
        self.account = account
        self.token_lifetime = token_lifetime
        self.messages_per_interaction = messages_per_interaction
        self.clock = clock
        self.crypto = WeChatCrypto(token, aes_key, appid)
        self.calls: list[Call] = []
        self.sent: list[JSONDict] = []  # accepted customer-service and template messages
        self.menu: JSONDict | None = None
        self.templates = set(templates)
        self._tokens: dict[str, float] = {}  # token -> expiry (clock seconds)
        self._windows: dict[str, _Window] = {}
        self._unsubscribed: set[str] = set()
        self._media: dict[str, _Media] = {}
        self._injected: dict[str, list[_Injected]] = {}
        self._seq = itertools.count(1)
        self._msg_ids = itertools.count(7_000_000_000_000_000_001)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`; wechatpy's `API_BASE_URL` is `{base_url}/cgi-bin/`."""
        return f"http://127.0.0.1:{self.port}"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        app.router.add_post("/cgi-bin/message/template/send", self._template_send)
        app.router.add_post("/cgi-bin/menu/create", self._menu_create)
        app.router.add_get("/cgi-bin/media/get", self._media_get)
        return app

    # ------------------------------------------------------------------ test controls

    def register_media(
        self,
        data: bytes,
        content_type: str = "image/jpeg",
        filename: str | None = None,
        *,
        media_id: str | None = None,
    ) -> str:
        """Make `data` downloadable as a temporary media item; returns its media_id."""
        media_id = media_id or f"MEDIA_{next(self._seq)}_{secrets.token_hex(8)}"
        extension = content_type.split("/")[-1]
        self._media[media_id] = _Media(data, content_type, filename or f"{media_id}.{extension}")
        return media_id

    def user_interacted(self, openid: str) -> None:
        """The person wrote, clicked the menu, subscribed or scanned: the window (re)opens."""
        self._unsubscribed.discard(openid)
        self._windows[openid] = _Window(self.clock(), self.messages_per_interaction)

    def unsubscribed(self, openid: str) -> None:
        self._unsubscribed.add(openid)
        self._windows.pop(openid, None)

    def close_window(self, openid: str) -> None:
        """Play 48 hours of silence from this person."""
        window = self._windows.get(openid)
        if window is not None:
            window.opened_at -= WINDOW_SECONDS + 1

    def expire_tokens(self) -> None:
        """Every issued access_token expires now (the next call answers 42001)."""
        now = self.clock()
        self._tokens = dict.fromkeys(self._tokens, now)

    def fail_next(self, path: str, errcode: int, errmsg: str | None = None) -> None:
        self._injected.setdefault(path, []).append(
            _Injected(errcode, errmsg or ERRORS.get(errcode, "error"))
        )

    @property
    def token_fetches(self) -> int:
        return sum(1 for c in self.calls if c.path == "/cgi-bin/token")

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def sent_to(self, openid: str) -> list[JSONDict]:
        return [m for m in self.sent if m.get("touser") == openid]

    def texts_to(self, openid: str) -> list[str]:
        return [m["text"]["content"] for m in self.sent_to(openid) if m.get("msgtype") == "text"]

    # ------------------------------------------------------------------ pushing messages

    def text_xml(self, openid: str, content: str, msg_id: int | None = None) -> str:
        return message_xml(
            {
                "ToUserName": self.account,
                "FromUserName": openid,
                "CreateTime": int(self.clock()),
                "MsgType": "text",
                "Content": content,
                "MsgId": msg_id if msg_id is not None else next(self._msg_ids),
            }
        )

    def event_xml(self, openid: str, event: str, **extra: str | float) -> str:
        fields: dict[str, str | int | float] = {
            "ToUserName": self.account,
            "FromUserName": openid,
            "CreateTime": int(self.clock()),
            "MsgType": "event",
            "Event": event,
        }
        fields.update(extra)
        return message_xml(fields)

    def media_xml(self, openid: str, kind: str, media_id: str, **extra: str) -> str:
        fields: dict[str, str | int | float] = {
            "ToUserName": self.account,
            "FromUserName": openid,
            "CreateTime": int(self.clock()),
            "MsgType": kind,
            "MediaId": media_id,
        }
        fields.update(extra)
        fields["MsgId"] = next(self._msg_ids)
        return message_xml(fields)

    async def push_text(self, url: str, openid: str, content: str, **kwargs: Any) -> Delivery:
        return await self.deliver(url, self.text_xml(openid, content), **kwargs)

    async def push_event(self, url: str, openid: str, event: str, **kwargs: Any) -> Delivery:
        extra = {k: v for k, v in kwargs.items() if k[:1].isupper()}
        rest = {k: v for k, v in kwargs.items() if not k[:1].isupper()}
        return await self.deliver(url, self.event_xml(openid, event, **extra), **rest)

    async def deliver(
        self,
        url: str,
        xml: str,
        *,
        safe: bool = True,
        timestamp: int | None = None,
        nonce: str | None = None,
        tamper: bool = False,
        wait_seconds: float = 30.0,
    ) -> Delivery:
        """POST `xml` to the account's server as WeChat would; returns its answer.

        `safe` encrypts (安全模式, `encrypt_type=aes` + `msg_signature`); `tamper` spoils the
        signatures. The passive reply is decrypted and its signature checked, as WeChat does.
        """
        # Read with a regex, not a parser: tests also push hostile XML through here.
        openid = _xml_field(xml, "FromUserName")
        kind = _xml_field(xml, "MsgType").lower()
        event = _xml_field(xml, "Event").lower()
        if kind != "event" or event in WINDOW_EVENTS:
            self.user_interacted(openid)
        elif event == "unsubscribe":
            self.unsubscribed(openid)
        stamp = str(timestamp if timestamp is not None else int(self.clock()))
        nonce = nonce or _nonce()
        params = {"timestamp": stamp, "nonce": nonce, "openid": openid}
        params["signature"] = sign(self.token, stamp, nonce)
        body = xml
        if safe:
            encrypted = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, stamp))["xml"]
            encrypt = encrypted["Encrypt"]
            body = message_xml({"ToUserName": self.account, "Encrypt": encrypt})
            params["encrypt_type"] = "aes"
            params["msg_signature"] = sign(self.token, stamp, nonce, encrypt)
        if tamper:
            params = {k: ("0" * 40 if "signature" in k else v) for k, v in params.items()}
        return await self.post_raw(
            url, body.encode(), params=params, safe=safe, wait_seconds=wait_seconds
        )

    async def post_raw(
        self,
        url: str,
        body: bytes,
        *,
        params: dict[str, str],
        safe: bool = False,
        wait_seconds: float = 30.0,
    ) -> Delivery:
        """POST any body (hostile XML, oversized bodies) with the given query parameters."""
        async with ClientSession(timeout=ClientTimeout(total=wait_seconds)) as session:
            headers = {"Content-Type": "text/xml"}
            async with session.post(url, data=body, params=params, headers=headers) as response:
                text = await response.text()
                status = response.status
        if status != 200 or text.strip() in ("", "success"):
            return Delivery(status, text, None)
        return Delivery(status, text, self._read_reply(text, safe))

    def signed_params(self, *, timestamp: int | None = None, nonce: str | None = None) -> dict:
        stamp = str(timestamp if timestamp is not None else int(self.clock()))
        nonce = nonce or _nonce()
        return {"timestamp": stamp, "nonce": nonce, "signature": sign(self.token, stamp, nonce)}

    def _read_reply(self, text: str, safe: bool) -> dict[str, str]:
        outer = xmltodict.parse(text)["xml"]
        if safe:
            # Raises InvalidSignatureException when the reply's MsgSignature is wrong.
            text = self.crypto.decrypt_message(
                text, outer["MsgSignature"], str(outer["TimeStamp"]), outer["Nonce"]
            )
            outer = xmltodict.parse(text)["xml"]
        return {k: str(v) for k, v in outer.items()}

    # ------------------------------------------------------------------ the API

    def _record(self, request: web.Request, body: JSONDict | None) -> None:
        self.calls.append(Call(request.path, dict(request.query), body))

    @staticmethod
    def _error(errcode: int, errmsg: str | None = None) -> web.Response:
        return web.json_response({"errcode": errcode, "errmsg": errmsg or ERRORS[errcode]})

    def _injected_error(self, path: str) -> web.Response | None:
        queue = self._injected.get(path)
        if queue:
            injected = queue.pop(0)
            return self._error(injected.errcode, injected.errmsg)
        return None

    def _token_error(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token")
        if not token:
            return self._error(41001)
        expiry = self._tokens.get(token)
        if expiry is None:
            return self._error(40001)
        if self.clock() >= expiry:
            return self._error(42001)
        return None

    async def _json_body(self, request: web.Request) -> JSONDict | None:
        raw = await request.read()
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    async def _token(self, request: web.Request) -> web.Response:
        self._record(request, None)
        query = request.query
        if query.get("grant_type") != "client_credential":
            return self._error(40002)
        if query.get("appid") != self.appid:
            return self._error(40013)
        if query.get("secret") != self.secret:
            return self._error(40125)
        injected = self._injected_error(request.path)
        if injected is not None:
            return injected
        now = self.clock()
        for old, expiry in self._tokens.items():
            self._tokens[old] = min(expiry, now + TOKEN_OVERLAP_SECONDS)
        token = f"FAKE_TOKEN_{next(self._seq)}_{secrets.token_hex(16)}"
        self._tokens[token] = now + self.token_lifetime
        return web.json_response({"access_token": token, "expires_in": self.token_lifetime})

    async def _custom_send(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        self._record(request, body)
        refused = self._token_error(request) or self._injected_error(request.path)
        if refused is not None:
            return refused
        if body is None or body.get("msgtype") != "text":
            return self._error(40008)
        content = (body.get("text") or {}).get("content")
        if not content:
            return self._error(44003)
        openid = str(body.get("touser", ""))
        window = self._windows.get(openid)
        if (
            openid in self._unsubscribed
            or window is None
            or self.clock() - window.opened_at > WINDOW_SECONDS
        ):
            return self._error(45015)
        if window.remaining <= 0:
            return self._error(45047)
        window.remaining -= 1
        self.sent.append(body)
        return self._error(0, "ok")

    async def _template_send(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        self._record(request, body)
        refused = self._token_error(request) or self._injected_error(request.path)
        if refused is not None:
            return refused
        if body is None or body.get("template_id") not in self.templates:
            return self._error(40037)
        if str(body.get("touser", "")) in self._unsubscribed:
            return self._error(43004)
        msgid = next(self._seq)
        self.sent.append({**body, "msgtype": "template", "msgid": msgid})
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def _menu_create(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        self._record(request, body)
        refused = self._token_error(request) or self._injected_error(request.path)
        if refused is not None:
            return refused
        buttons = (body or {}).get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return self._error(40016)
        for button in buttons:
            problem = self._button_problem(button, name_limit=16)
            if problem:
                return self._error(problem)
            subs = button.get("sub_button") or []
            if len(subs) > 5:
                return self._error(40016)
            for sub in subs:
                problem = self._button_problem(sub, name_limit=60)
                if problem:
                    return self._error(problem)
        self.menu = body
        return self._error(0, "ok")

    @staticmethod
    def _button_problem(button: JSONDict, *, name_limit: int) -> int | None:
        name = str(button.get("name", ""))
        if not name or len(name.encode()) > name_limit:
            return 40018
        if button.get("sub_button"):
            return None
        kind = button.get("type")
        if kind not in ("click", "view", "scancode_push", "scancode_waitmsg", "location_select"):
            return 40017
        if kind == "click" and not 0 < len(str(button.get("key", "")).encode()) <= 128:
            return 40019
        return None

    async def _media_get(self, request: web.Request) -> web.Response:
        self._record(request, None)
        refused = self._token_error(request) or self._injected_error(request.path)
        if refused is not None:
            return refused
        media = self._media.get(request.query.get("media_id", ""))
        if media is None:
            return self._error(40007)
        return web.Response(
            body=media.data,
            content_type=media.content_type,
            headers={"Content-disposition": f'attachment; filename="{media.filename}"'},
        )


__all__ = [
    "DEFAULT_AES_KEY",
    "DEFAULT_APPID",
    "DEFAULT_SECRET",
    "DEFAULT_TOKEN",
    "SAMPLES",
    "Call",
    "Delivery",
    "FakeWeChat",
    "message_xml",
    "sign",
]
