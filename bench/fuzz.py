"""Fuzz: the dialog engine and every HTTP endpoint of a real server, hostile input only.

    python bench/fuzz.py [--cases 10000] [--turns 8] [--db sqlite|postgres://...] [--seed N]

1. Engine: `--cases` hypothesis streams of `Incoming` (tests/engine_fuzz.py: text in any script
   and numbers int() refuses, offered and forged choices, photos and files of any size,
   locations, contacts, commands; six profiles, three languages) fed to handlers.dialog.handle.
   Any exception, or a message left without a reply or a command, is a failure (the first one
   is shrunk by hypothesis and printed).
2. HTTP: the whole app (bot.app.create_app: web chat, desk, Telegram webhook against a
   FakeTelegram, /wechat in safe mode against a FakeWeChat, health, metrics) started in this
   process on a loopback port, with a staff member signed in to the desk and one complaint on
   file. Every route gets hostile requests, anonymous and signed in: garbage path parameters,
   bodies that are empty, huge, invalid UTF-8, deeply nested JSON, of the wrong content type,
   multipart with NUL bytes and non-UTF-8 in part headers, 20 KB headers, NUL in the query;
   plus the channel-specific cases (updates python-telegram-bot cannot read, a photo Telegram
   will not give, WeChat timestamps of 20 digits, plaintext in safe mode, bad signatures).

Prints the counts by status code (per endpoint group) and every 5xx as a failure; exits 1 if
there was any failure. Not a timing test: the wall times are printed only to size a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession, ClientTimeout, CookieJar, FormData, web  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.engine_fuzz import EngineBroke, run_stream  # noqa: E402

# ------------------------------------------------------------------ 1. the engine


@dataclass
class EngineRun:
    streams: int = 0
    messages: int = 0
    failure: str | None = None
    seconds: float = 0.0


def fuzz_engine(cases: int, turns: int, seed_value: int) -> EngineRun:
    run = EngineRun()

    @seed(seed_value)
    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    @given(st.data())
    def one_stream(data: st.DataObject) -> None:
        conv = run_stream(data.draw, max_turns=turns)
        run.streams += 1
        run.messages += conv.turns

    started = time.perf_counter()
    try:
        one_stream()
    except EngineBroke as broke:
        run.failure = str(broke)
    run.seconds = time.perf_counter() - started
    return run


# ------------------------------------------------------------------ 2. HTTP


@dataclass
class HttpRun:
    by_group: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    def record(self, group: str, status: int, what: str) -> None:
        self.requests += 1
        self.by_group[group][status] += 1
        if status >= 500:
            self.failures.append(f"{status} {what}")


GARBAGE_PARAMS = (
    "²", "9" * 30, "-1", "0", "%00", "..%2F..%2Fetc", "%FF%FE", "abc", "1e9", "１", "x" * 300,
)  # fmt: skip
DEEP_JSON = ("[" * 20_000 + "]" * 20_000).encode()
HUGE = b"x" * (2 * 1024 * 1024 + 17)
INVALID_UTF8 = b"\xff\xfe\xfa{\x00}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _paths(canonical: str) -> Iterator[str]:
    """The route's path with each garbage value in every parameter (static routes: as is)."""
    if "{" not in canonical:
        yield canonical
        return
    for value in GARBAGE_PARAMS:
        path = canonical
        while "{" in path:
            start, end = path.index("{"), path.index("}")
            path = path[:start] + value + path[end + 1 :]
        yield path


def _multipart(part_headers: bytes) -> bytes:
    boundary = b"--fuzzboundary"
    session = b'\r\nContent-Disposition: form-data; name="session_id"\r\n\r\nfuzz-session-1\r\n'
    return (
        boundary + session + boundary + b"\r\n" + part_headers
        + b"\r\n\r\n\xff\xd8\xff\xe0jpeg\r\n" + boundary + b"--\r\n"
    )  # fmt: skip


def _part(extra: bytes) -> bytes:
    return _multipart(b'Content-Disposition: form-data; name="file"' + extra)


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MULTIPART = {"Content-Type": "multipart/form-data; boundary=fuzzboundary"}
NESTED = (
    b'Content-Type: multipart/mixed; boundary=inner\r\nContent-Disposition: form-data; name="f"'
)
BODIES: list[tuple[str, bytes, dict[str, str]]] = [
    ("empty", b"", {}),
    ("json-object", b'{"session_id": "fuzz-session-1", "text": "hi"}', JSON),
    ("json-array", b"[1, 2, 3]", JSON),
    ("json-scalars", b'{"session_id": 5, "text": [], "choice": {}, "location": "x"}', JSON),
    ("deep-json", DEEP_JSON, JSON),
    ("invalid-utf8", INVALID_UTF8, {"Content-Type": "application/json; charset=utf-8"}),
    ("huge", HUGE, {"Content-Type": "application/octet-stream"}),
    ("xml-as-json", b"<xml><a>1</a></xml>", JSON),
    ("json-as-xml", b'{"a": 1}', {"Content-Type": "text/xml"}),
    ("form-garbage", b"csrf=%FF%00&login=%00&password=" + b"p" * 5000, FORM),
    ("form-invalid-utf8", b"csrf=\xff\xfe&login=\xc0\xaf", FORM),
    ("multipart-nul", _part(b'; filename="a\x00.jpg"'), MULTIPART),
    ("multipart-not-utf8", _part(b'; filename="\xff.jpg"'), MULTIPART),
    ("multipart-no-colon", _multipart(b"Content-Disposition form-data"), MULTIPART),
    ("multipart-no-boundary", b"--other\r\n\r\nx", {"Content-Type": "multipart/form-data"}),
    ("multipart-nested", _multipart(NESTED), MULTIPART),
    ("unknown-charset", b'{"a": 1}', {"Content-Type": "application/json; charset=no-such"}),
    ("huge-header", b"{}", {**JSON, "X-Fuzz": "h" * 20_000}),
    ("odd-request-id", b"{}", {**JSON, "X-Request-Id": "a\tb;" + "r" * 300}),
]
STRAYS = (
    ("PUT", "/webchat/api/message"),
    ("DELETE", "/desk/cases"),
    ("GET", "/nowhere/%00"),
    ("PATCH", "/telegram/webhook"),
)
QUERIES = ["", "?q=%00&page=%FF&lang=²", "?page=99999999999999999999&sort=" + "s" * 3000]


async def _send(
    session: ClientSession,
    run: HttpRun,
    group: str,
    method: str,
    url: str,
    body: bytes | FormData | None = None,
    headers: dict[str, str] | None = None,
    what: str = "",
) -> int:
    try:
        async with session.request(
            method, url, data=body, headers=headers, allow_redirects=False
        ) as response:
            await response.read()
            status = response.status
    except Exception as error:  # the server dropped the connection: count it as a failure
        status = 599
        what = f"{what} ({type(error).__name__}: {error})"
    run.record(group, status, f"{method} {url[:160]} {what}")
    return status


def _group(path: str) -> str:
    for prefix in ("/telegram", "/wechat", "/webchat/api", "/webchat", "/desk"):
        if path.startswith(prefix):
            return prefix
    return "/ (health, metrics, root)"


async def fuzz_http(db_url: str, data_dir: Path) -> HttpRun:
    from bot.app import create_app
    from bot.wechat import WECHAT_ENDPOINT
    from config.settings import Settings
    from models.db import close_db, init_db
    from models.desk_auth import CredentialSet, set_password_from_invite
    from models.staffing import create_invite
    from tests.fakes import FakeTelegram
    from tests.fakes.wechat_server import FakeWeChat, sign
    from tests.images import jpeg
    from tests.staff_world import T0, file_complaint, make_world
    from tests.test_hostile_input import UNREADABLE

    run = HttpRun()
    await init_db(db_url)
    try:
        world = await make_world("tax-service")
        complaint = await file_complaint(world)
        invite = await create_invite(now=T0, staff_id=world.supervisor.id)
        password = "fuzz horse battery staple"
        outcome = await set_password_from_invite(invite.code, "fuzzer", password, password, now=T0)
        assert isinstance(outcome, CredentialSet), outcome
        async with FakeTelegram() as tg, FakeWeChat() as wx:
            port = _free_port()
            base = f"http://127.0.0.1:{port}"
            app_settings = Settings(
                database_url=db_url,
                data_dir=data_dir,
                profile="tax-service",
                telegram_token=tg.token,
                telegram_api_base=tg.base_url,
                telegram_webhook_secret="fuzz-secret",
                public_url=base,
                wechat_token=wx.token,
                wechat_appid=wx.appid,
                wechat_secret=wx.secret,
                wechat_aes_key=wx.aes_key,
                wechat_api_base=wx.base_url,
            )
            app = create_app(app_settings, manage_db=False)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            started = time.perf_counter()
            try:
                await _fuzz_routes(app, base, run, complaint.id)
                await _fuzz_channels(tg, wx, base, run, UNREADABLE, sign, jpeg)
            finally:
                run.seconds = time.perf_counter() - started
                await app[WECHAT_ENDPOINT].drain()
                await runner.cleanup()
    finally:
        await close_db()
    return run


async def _signed_in(base: str) -> ClientSession:
    """A browser session signed in to the desk (cookies kept in its jar)."""
    import re
    from html import unescape

    # unsafe: keep cookies set by an IP address (127.0.0.1), as a browser does.
    session = ClientSession(timeout=ClientTimeout(total=60), cookie_jar=CookieJar(unsafe=True))
    async with session.get(f"{base}/desk/signin") as response:
        token = re.search(r'name="csrf" value="([^"]+)"', await response.text())
    assert token, "no CSRF token on the sign-in page"
    form = {
        "csrf": unescape(token.group(1)),
        "login": "fuzzer",
        "password": "fuzz horse battery staple",
    }
    async with session.post(f"{base}/desk/signin", data=form, allow_redirects=False) as response:
        assert response.status == 303, await response.text()
    return session


async def _fuzz_routes(app: web.Application, base: str, run: HttpRun, case_id: int) -> None:
    routes = sorted(
        {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    )
    anonymous = ClientSession(timeout=ClientTimeout(total=60))
    staff = await _signed_in(base)
    try:
        for who, session in (("anonymous", anonymous), ("signed-in", staff)):
            for method, canonical in routes:
                group = _group(canonical)
                paths = list(_paths(canonical))
                if "{" in canonical:  # the real case too: hostile bodies on a page that exists
                    real = canonical.replace("{case_id}", str(case_id))
                    paths.append(real.replace("{complaint_id}", str(case_id)))
                for path in paths:
                    for query in QUERIES:
                        url = f"{base}{path}{query}"
                        if method in ("GET", "HEAD"):
                            await _send(session, run, group, method, url, what=who)
                            continue
                        for name, body, headers in BODIES:
                            await _send(
                                session, run, group, method, url, body, headers, f"{who} {name}"
                            )
            # Methods a route does not have, and paths nobody serves.
            for method, path in STRAYS:
                await _send(session, run, _group(path), method, f"{base}{path}", what=who)
    finally:
        await anonymous.close()
        await staff.close()


async def _fuzz_channels(
    tg: Any, wx: Any, base: str, run: HttpRun, unreadable: dict[str, Any], sign: Any, jpeg: Any
) -> None:
    """The channel cases: updates PTB cannot read, a photo Telegram will not give, WeChat."""
    secret = {"X-Telegram-Bot-Api-Secret-Token": "fuzz-secret"}
    url = f"{base}/telegram/webhook"
    async with ClientSession(timeout=ClientTimeout(total=60)) as session:
        for name, (where, key, value) in sorted(unreadable.items()):
            if where == "message":
                update = tg.push_message(9001, 9001, text="/start", enqueue=False)
            else:
                update = tg.push_callback(9001, 9001, "menu:new", 1, enqueue=False)
            update[where][key] = value
            body = json.dumps(update).encode()
            headers = {**secret, "Content-Type": "application/json"}
            await _send(session, run, "/telegram", "POST", url, body, headers, f"update {name}")
        tg.fail_next("getFile", 400, description="Bad Request: wrong file_id", count=3)
        for index in range(3):
            update = tg.push_message(9002, 9002, photo=jpeg(f"fuzz {index}"), enqueue=False)
            body = json.dumps(update).encode()
            headers = {**secret, "Content-Type": "application/json"}
            await _send(session, run, "/telegram", "POST", url, body, headers, "unfetchable photo")
        wechat = f"{base}/wechat"
        xml = wx.text_xml("o-fuzz", "/start").encode()
        for timestamp, nonce in (("9" * 20, "1"), ("²", "1"), ("", ""), ("1" * 11, "n" * 65)):
            params = {"timestamp": timestamp, "nonce": nonce}
            for signature in (sign(wx.token, timestamp, nonce), "0" * 40, "é" * 3, ""):
                query = "&".join(f"{k}={v}" for k, v in {**params, "signature": signature}.items())
                for method in ("GET", "POST"):
                    await _send(
                        session, run, "/wechat", method, f"{wechat}?{query}", xml,
                        {"Content-Type": "text/xml"}, f"wechat stamp {timestamp[:5]}",
                    )  # fmt: skip
        plain = await wx.push_text(wechat, "o-fuzz-plain", "/help", safe=False)
        run.record("/wechat", plain.status, "plaintext in safe mode")
        for hostile in (b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml>&a;</xml>", b"<xml>" * 5000, b""):
            params = wx.signed_params()
            query = "&".join(f"{k}={v}" for k, v in params.items())
            await _send(
                session, run, "/wechat", "POST", f"{wechat}?{query}&encrypt_type=aes", hostile,
                {"Content-Type": "text/xml"}, "hostile xml",
            )  # fmt: skip


# ------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="engine streams (default 10000)")
    parser.add_argument("--turns", type=int, default=8, help="most messages per stream")
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--seed", type=int, default=12, help="hypothesis seed")
    parser.add_argument("--skip-engine", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import logging

    logging.basicConfig(level=logging.CRITICAL)  # the refusals log WARNINGs by design

    failed = False
    if not args.skip_engine:
        engine = fuzz_engine(args.cases, args.turns, args.seed)
        failures = "1 failure" if engine.failure else "0 failures"
        print(
            f"engine: {engine.streams} streams, {engine.messages} messages, {failures} "
            f"({engine.seconds:.0f} s)"
        )
        if engine.failure:
            failed = True
            print("FAILURE (shrunk):\n" + engine.failure)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        db_url = args.db or f"sqlite://{tmp}/fuzz.sqlite3"
        http = asyncio.run(fuzz_http(db_url, Path(tmp) / "data"))
    total: Counter[int] = Counter()
    print(f"http: {http.requests} requests ({http.seconds:.0f} s)")
    for group in sorted(http.by_group):
        counts = http.by_group[group]
        total.update(counts)
        shown = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
        print(f"  {group:28} {shown}")
    every = ", ".join(f"{status}: {n}" for status, n in sorted(total.items()))
    print(f"  {'all':28} {every}")
    print(f"  5xx (failures): {len(http.failures)}")
    for failure in http.failures[:50]:
        print("    FAILURE " + failure)
    return 1 if failed or http.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
