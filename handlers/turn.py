"""What one exchange of the dialog works with: the persisted state, the context, and the turn.

`DialogState` is what the shell stores between messages (JSON). `DialogContext` is what the
shell loads for this message (profile, clock, the person's complaints). A `Turn` bundles both with
the incoming message and collects the replies and commands the engine produces.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from handlers.commands import Command
from handlers.i18n import LANGUAGES, Gettext, supported, translator
from handlers.messages import AskKind, Choice, FileRef, Incoming, Outgoing
from handlers.validators import small_int

STATE_VERSION = 1

# Flows in which the person is composing a complaint; these are what idle expiry discards.
DRAFT_FLOWS = frozenset({"screening", "intake", "summary", "edit"})

# Choice ids understood at every step.
BACK = "back"
CANCEL = "cancel"
SKIP = "skip"
DONE = "done"
CONFIRM = "confirm"
NAV_IDS = frozenset({BACK, CANCEL, SKIP, DONE})

# Navigation words recognised when typed, whatever the current language.
_NAV_WORDS: dict[str, frozenset[str]] = {
    BACK: frozenset({"back", "返回", "上一步", "后退", "後退"}),
    CANCEL: frozenset({"cancel", "取消", "放弃", "放棄"}),
    SKIP: frozenset({"skip", "跳过", "跳過", "略过", "略過"}),
    DONE: frozenset({"done", "finish", "finished", "完成", "好了", "结束", "結束"}),
}


@dataclass
class DialogState:
    """Where one person is in the conversation; stored as JSON so any worker can continue it."""

    flow: str = "idle"  # idle|screening|intake|summary|edit|status|supplement|withdraw|dispute
    step: str | None = None  # the step id within the flow (an intake field id, "list", ...)
    answers: dict[str, Any] = field(default_factory=dict)  # the complaint draft
    language: str | None = None
    updated_at: str | None = None  # ISO instant of the last message handled
    scratch: dict[str, Any] = field(default_factory=dict)  # per-flow working data
    version: int = STATE_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "flow": self.flow,
            "step": self.step,
            "answers": dict(self.answers),
            "language": self.language,
            "updated_at": self.updated_at,
            "scratch": dict(self.scratch),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DialogState:
        return cls(
            flow=str(data.get("flow") or "idle"),
            step=data.get("step"),
            answers=dict(data.get("answers") or {}),
            language=data.get("language"),
            updated_at=data.get("updated_at"),
            scratch=dict(data.get("scratch") or {}),
            version=int(data.get("version") or STATE_VERSION),
        )

    def copy(self) -> DialogState:
        """A deep copy: the engine works on it and never mutates the caller's state."""
        return DialogState(
            flow=self.flow,
            step=self.step,
            answers=_copied(self.answers),
            language=self.language,
            updated_at=self.updated_at,
            scratch=_copied(self.scratch),
            version=self.version,
        )

    def last_active(self) -> datetime | None:
        if not self.updated_at:
            return None
        try:
            return datetime.fromisoformat(self.updated_at)
        except ValueError:
            return None


_IMMUTABLE = (str, int, float, bool, type(None))


def _copied(value: Any) -> Any:
    """A deep copy of the JSON-like values a state holds (dicts, lists, tuples, scalars):
    copy.deepcopy's memo and dispatch cost more than the whole rest of a step's copy."""
    kind = type(value)
    if kind is dict:
        return {key: _copied(item) for key, item in value.items()}
    if kind is list:
        return [_copied(item) for item in value]
    if kind is tuple:
        return tuple(_copied(item) for item in value)
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


@dataclass(frozen=True)
class ComplaintSummary:
    """One of the person's own complaints, as the shell loads it for self-service."""

    number: str
    state: str  # a models.workflow.State value
    category_label: str
    next_deadline: datetime | None
    provisional: bool
    submitted_at: datetime
    timeline: Sequence[tuple[datetime, str]] = ()


@dataclass(frozen=True)
class DialogContext:
    """Everything the engine may know about the world for this one message."""

    profile: Any  # config.profiles.Profile
    now: datetime  # aware UTC
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    language_default: str = "zh_CN"
    idle_timeout: timedelta = timedelta(minutes=60)
    my_complaints: Sequence[ComplaintSummary] = ()
    max_text_length: int = 2000
    max_photos: int = 6
    max_photo_bytes: int = 10 * 1024 * 1024
    # A /start payload is kept only when it looks like a code (Telegram's own deep-link rule).
    deep_link_pattern: str = r"[A-Za-z0-9_-]{1,64}"
    privacy_url: str | None = None  # the organisation's full privacy notice (settings)

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        profile: Any,
        now: datetime,
        my_complaints: Sequence[ComplaintSummary] = (),
    ) -> DialogContext:
        """The context for one message, limits taken from config.settings.Settings."""
        return cls(
            profile=profile,
            now=now,
            tz=ZoneInfo(settings.timezone),
            language_default=settings.language,
            idle_timeout=timedelta(minutes=settings.dialog_idle_minutes),
            my_complaints=tuple(my_complaints),
            max_text_length=settings.max_text_length,
            max_photos=settings.max_photos,
            max_photo_bytes=int(settings.max_photo_mb * 1024 * 1024),
            privacy_url=getattr(settings, "privacy_url", None),
        )

    def accepts_deep_link(self, payload: str) -> bool:
        return re.fullmatch(self.deep_link_pattern, payload) is not None


@dataclass
class DialogResult:
    state: DialogState
    replies: list[Outgoing]
    commands: list[Command]


@dataclass
class Turn:
    """One incoming message being handled: a working copy of the state plus what we answer."""

    state: DialogState
    incoming: Incoming
    ctx: DialogContext
    replies: list[Outgoing] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)

    @property
    def lang(self) -> str:
        return supported(self.state.language)

    @property
    def _(self) -> Gettext:
        return translator(self.lang)

    @property
    def profile(self) -> Any:
        return self.ctx.profile

    def say(
        self,
        text: str,
        choices: Sequence[Choice] = (),
        *,
        ask: AskKind | None = None,
        remove_keyboard: bool = False,
    ) -> None:
        self.replies.append(
            Outgoing(text=text, choices=tuple(choices), ask=ask, remove_keyboard=remove_keyboard)
        )

    def go(self, flow: str, step: str | None = None) -> None:
        self.state.flow = flow
        self.state.step = step

    def reset(self) -> None:
        """Back to idle, forgetting the draft and any working data."""
        self.state.flow, self.state.step = "idle", None
        self.state.answers = {}
        self.state.scratch = {}

    def nav(self, *, back: bool = True, skip: bool = False, cancel: bool = True) -> list[Choice]:
        _ = self._
        choices = []
        if skip:
            choices.append(Choice(SKIP, _("Skip")))
        if back:
            choices.append(Choice(BACK, _("Back")))
        if cancel:
            choices.append(Choice(CANCEL, _("Cancel")))
        return choices

    def nav_intent(self, offered: Sequence[Choice] = ()) -> str | None:
        """back / cancel / skip / done, however it was expressed (button, /command, word)."""
        message = self.incoming
        if message.kind == "choice" and message.choice in NAV_IDS:
            return message.choice
        if message.kind == "command" and message.command in NAV_IDS:
            return message.command
        if message.kind == "text" and message.text:
            word = message.text.strip().casefold()
            for intent, words in _NAV_WORDS.items():
                if word in words:
                    return intent
            for choice in offered:
                if choice.id in NAV_IDS and choice.label.casefold() == word:
                    return choice.id
        return None

    def picked(self, offered: Sequence[Choice], *, by_number: bool = True) -> str | None:
        """The id of the offered choice the person pressed or typed (label or its number)."""
        message = self.incoming
        if message.kind == "choice":
            return message.choice if any(c.id == message.choice for c in offered) else None
        if message.kind != "text" or not message.text:
            return None
        typed = message.text.strip().casefold()
        for choice in offered:
            if choice.label.casefold() == typed:
                return choice.id
        number = small_int(typed) if by_number else None
        if number is not None and 1 <= number <= len(offered):
            return offered[number - 1].id
        return None


def is_language(code: str) -> bool:
    return code in LANGUAGES


# Main-menu choice ids (idle).
MENU_NEW = "menu:new"
MENU_STATUS = "menu:status"
MENU_LANG = "menu:lang"
MENU_HELP = "menu:help"


def menu_choices(_: Gettext) -> list[Choice]:
    return [
        Choice(MENU_NEW, _("File a complaint")),
        Choice(MENU_STATUS, _("My complaints")),
        Choice(MENU_LANG, _("Language")),
        Choice(MENU_HELP, _("Help")),
    ]


def file_record(file: FileRef, size: int | None) -> dict[str, Any]:
    """A received photo or document as the draft keeps it (JSON; the bytes stay with the shell)."""
    return {
        "file_id": file.file_id,
        "file_name": file.file_name,
        "mime_type": file.mime_type,
        "size": size,
    }
