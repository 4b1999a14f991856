"""Neutral messages between channel adapters and the dialog engine.

Adapters (Telegram, WeChat, web chat) translate platform updates into `Incoming` and render
`Outgoing` back into platform calls. Nothing here knows any platform.

They live in models/ because the outbox (models/outbox.py) stores `Outgoing` rows: the dialog
engine (handlers/) and the shell import them from here (or through handlers.messages).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

IncomingKind = Literal[
    "text", "choice", "command", "contact", "location", "photo", "file", "unsupported"
]
AskKind = Literal["contact", "location", "photo"]


@dataclass(frozen=True, slots=True)
class FileRef:
    """A photo or document as the platform delivered it; `data` is filled once downloaded."""

    file_id: str
    file_name: str | None = None
    mime_type: str | None = None
    size: int | None = None
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    channel: str  # "web" | "telegram" | "wechat"
    user_id: str  # the platform identity (Telegram user id, WeChat openid, web session id)
    kind: IncomingKind
    text: str | None = None
    choice: str | None = None  # id of a Choice the person pressed
    command: str | None = None  # "start", "status", "help", ... without the slash
    command_args: str = ""
    phone: str | None = None  # a shared contact's phone number
    latitude: float | None = None
    longitude: float | None = None
    location_label: str | None = None
    file: FileRef | None = None
    language: str | None = None  # the platform's language hint, e.g. "en", "zh-hans"
    display_name: str | None = None
    message_id: str | None = None  # platform message / update id, for de-duplication
    received_at: datetime | None = None  # aware UTC instant; the shell fills it when missing


@dataclass(frozen=True, slots=True)
class Choice:
    id: str
    label: str


@dataclass(frozen=True, slots=True)
class Outgoing:
    text: str
    choices: tuple[Choice, ...] = ()
    ask: AskKind | None = None  # request_contact / request_location / a photo upload
    remove_keyboard: bool = False
    attachments: tuple[str, ...] = field(default=())  # stored attachment ids to send along
