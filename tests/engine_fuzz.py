"""Hypothesis streams of `Incoming` for the platform-neutral dialog engine (handlers.dialog).

Shared by tests/test_fuzz_engine.py (a small number of examples) and bench/fuzz.py (10 000).
A stream is one person's conversation: every message is drawn in the light of the last reply,
so a good share of the presses are choices the engine really offered and the dialogs get deep
(photos steps, summaries, self-service), while the rest is hostile: random choice ids, text in
any script including "digits" int() refuses ("²"), numbers of 5 000 digits, empty and huge
texts, files of any size, locations at the poles, contacts with any text as the phone.

`check_turn` states what the engine owes every message: no exception, a state that survives
its JSON round trip, and either a reply or a command the shell answers (a defined no-op).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from config.profiles import Profile, load_profile
from handlers.dialog import COMMANDS, ComplaintSummary, DialogContext, DialogState, handle
from handlers.messages import FileRef, Incoming, Outgoing

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
PROFILES = ("gov-window", "property", "tax-service", "school", "call-centre", "petition")
MB = 1024 * 1024

# Texts people (and attackers) type: numbers in every form, dates, phones, commands, scripts.
NUMBERISH = (
    "1", "2", "0", "10", "99", "²", "³", "½", "１", "２３", "٣", "໓", "Ⅻ", "一", "十二", "两",
    "9" * 30, "9" * 5000, "-1", "+3", "1e9", "0x10", "1_000", "nan", "inf", " 3 ", "3.5",
)  # fmt: skip
PHRASES = (
    "昨天下午3点", "今天", "前天上午", "3天前", "2026-11-24 15:30", "11月24日", "２０２６年１１月",
    "138 1234 5678", "+86 138-1234-5678", "010-12345678-123", "13812345678",
    "市民中心二楼", "3号窗口", "是", "否", "不满意", "满意", "完成", "取消", "返回", "跳过",
    "Done", "cancel", "back", "skip", "yes", "no", "/start", "/status 202611-0001",
    "/supplement", "/withdraw", "/dispute", "/lang", "/help", "/cancel", "/back",
    "", " ", "\n", "\x00", "\u200b", "🙂" * 50, "a" * 2001, "字" * 4000, "<b>x</b>", "%s {0} {x}",
)  # fmt: skip
COMMAND_NAMES = (*COMMANDS, "new", "language", "skip", "done", "", "x" * 40, "Start", "帮助")
CHOICE_PREFIXES = (
    "menu:", "lang:", "opt:", "screen:", "complaint:", "survey:", "photos:", "edit:", "",
)  # fmt: skip


@dataclass
class Conversation:
    """One person's conversation with the engine, state kept as the shell stores it (JSON)."""

    profile: Profile
    ctx: DialogContext
    state: DialogState | None = None
    last: list[Outgoing] = field(default_factory=list)
    turns: int = 0
    files: int = 0

    def offered(self) -> list[str]:
        return [choice.id for reply in self.last for choice in reply.choices]

    def labels(self) -> list[str]:
        return [choice.label for reply in self.last for choice in reply.choices]


def summaries() -> tuple[ComplaintSummary, ...]:
    """Two complaints of the person's own, so /status, /supplement, /withdraw, /dispute work."""
    return (
        ComplaintSummary(
            number="202611-0001",
            state="in_progress",
            category_label="服务态度",
            next_deadline=NOW + timedelta(days=3),
            provisional=False,
            submitted_at=NOW - timedelta(days=2),
            timeline=((NOW - timedelta(days=2), "submitted"),),
        ),
        ComplaintSummary(
            number="202611-0002",
            state="replied",
            category_label="其他",
            next_deadline=None,
            provisional=True,
            submitted_at=NOW - timedelta(days=9),
        ),
    )


_PROFILES: dict[str, Profile] = {}


def conversation(profile_id: str, lang: str, max_photos: int = 3) -> Conversation:
    if profile_id not in _PROFILES:
        _PROFILES[profile_id] = load_profile(profile_id)
    profile = _PROFILES[profile_id]
    ctx = DialogContext(
        profile=profile,
        now=NOW,
        tz=SHANGHAI,
        language_default=lang,
        my_complaints=summaries(),
        max_photos=max_photos,
        max_photo_bytes=2 * MB,
    )
    return Conversation(profile, ctx)


def texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NUMBERISH),
        st.sampled_from(PHRASES),
        st.text(max_size=40),
        st.text(alphabet=st.characters(categories=("Nd", "No", "Nl")), min_size=1, max_size=6),
        st.from_regex(r"[0-9]{1,3}[:：点时][0-9]{0,2}", fullmatch=True),
    )


def _file(draw: st.DrawFn, conv: Conversation) -> FileRef:
    conv.files += 1
    size = draw(st.one_of(st.none(), st.integers(0, 3 * MB), st.sampled_from([0, 2 * MB + 1])))
    return FileRef(
        file_id=draw(st.sampled_from([f"att:{conv.files}", "web-upload", "tg-file", ""])),
        file_name=draw(st.one_of(st.none(), st.text(max_size=20))),
        mime_type=draw(st.sampled_from([None, "image/jpeg", "application/pdf", "", "x/y"])),
        size=size,
    )


def draw_incoming(draw: st.DrawFn, conv: Conversation) -> Incoming:
    """The next message, drawn in the light of what the engine last said."""
    offered = conv.offered()
    kind = draw(
        st.sampled_from(
            [
                *("offered", "offered", "offered", "label", "text", "text", "choice"),
                *("command", "photo", "file", "location", "contact", "unsupported"),
            ]
        )
    )
    base: dict[str, Any] = {
        "channel": draw(st.sampled_from(["web", "telegram", "wechat"])),
        "user_id": "fuzz-person",
        "language": draw(st.sampled_from([None, "en", "zh-hans", "zh-hant", "zh-TW", "xx", ""])),
        "message_id": f"fuzz-{conv.turns}",
    }
    if kind == "offered" and offered:
        return Incoming(kind="choice", choice=draw(st.sampled_from(offered)), **base)
    if kind == "label" and offered:
        # A label typed back, or its number (WeChat shows choices as numbered lines).
        labels = conv.labels()
        typed = draw(st.one_of(st.sampled_from(labels), st.integers(0, len(labels) + 1)))
        return Incoming(kind="text", text=str(typed), **base)
    if kind == "choice":
        prefix = draw(st.sampled_from(CHOICE_PREFIXES))
        return Incoming(kind="choice", choice=prefix + draw(texts()), **base)
    if kind == "command":
        name = draw(st.sampled_from(COMMAND_NAMES))
        return Incoming(kind="command", command=name, command_args=draw(texts()), **base)
    if kind in ("photo", "file"):
        caption = draw(st.one_of(st.none(), texts()))
        return Incoming(kind=kind, file=_file(draw, conv), text=caption, **base)
    if kind == "location":
        return Incoming(
            kind="location",
            latitude=draw(st.floats(-90, 90)),
            longitude=draw(st.floats(-180, 180)),
            location_label=draw(st.one_of(st.none(), texts())),
            **base,
        )
    if kind == "contact":
        return Incoming(kind="contact", phone=draw(st.one_of(texts(), st.text())), **base)
    if kind == "unsupported":
        return Incoming(kind="unsupported", **base)
    return Incoming(kind="text", text=draw(texts()), **base)


class EngineBroke(AssertionError):
    """The engine broke its promise for one message (the message is in the text)."""


def check_turn(conv: Conversation, incoming: Incoming) -> None:
    """Feed one message; EngineBroke (with the message) if the engine fails it."""
    try:
        result = handle(conv.state, incoming, conv.ctx)
        stored = json.loads(json.dumps(result.state.to_json(), ensure_ascii=False))
        conv.state = DialogState.from_json(stored)
    except Exception as error:
        state = conv.state.to_json() if conv.state else None
        raise EngineBroke(
            f"{type(error).__name__}: {error}\nstate={state}\n{incoming!r}"
        ) from error
    if not result.replies and not result.commands:
        raise EngineBroke(f"no reply and no command\nstate={stored}\n{incoming!r}")
    for reply in result.replies:
        if not isinstance(reply.text, str) or not reply.text.strip():
            raise EngineBroke(f"an empty reply {reply!r}\n{incoming!r}")
        if any(not choice.id or not choice.label for choice in reply.choices):
            raise EngineBroke(f"a choice without id or label in {reply!r}\n{incoming!r}")
    conv.last = result.replies or conv.last
    conv.turns += 1


def run_stream(draw: Any, max_turns: int = 40) -> Conversation:
    """Draw a profile, a language and a stream of messages and feed each to the engine as it
    is drawn (the next message depends on the replies before it). `draw` is hypothesis's
    `data.draw` (st.data()), so a failing stream shrinks to a short conversation."""
    conv = conversation(
        draw(st.sampled_from(PROFILES)),
        draw(st.sampled_from(["zh_CN", "zh_TW", "en"])),
        max_photos=draw(st.integers(1, 6)),
    )
    # Most streams start the way people do; some start anywhere.
    if draw(st.booleans()):
        check_turn(conv, Incoming("web", "fuzz-person", "command", command="start"))
    for _ in range(draw(st.integers(1, max_turns))):
        check_turn(conv, draw_incoming(draw, conv))
    return conv
