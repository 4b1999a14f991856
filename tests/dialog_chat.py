"""A scripted chat with the pure dialog engine, for the tests/test_dialog_*.py files.

Every turn round-trips the state through JSON, as the shell stores it, so a scripted
conversation also proves that a restart (or another worker) resumes at the same step.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from config.profiles import Profile, load_profile
from handlers.commands import Command
from handlers.dialog import DialogContext, DialogResult, DialogState, handle
from handlers.messages import FileRef, Incoming, Outgoing

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai, a Wednesday
MB = 1024 * 1024


def gov_window() -> Profile:
    return load_profile("gov-window")


class Chat:
    def __init__(self, profile: Profile | None = None, lang: str = "zh_CN", **ctx: Any) -> None:
        self.ctx = DialogContext(
            profile=profile or gov_window(), now=NOW, tz=SHANGHAI, language_default=lang, **ctx
        )
        self.state: DialogState | None = None
        self.result: DialogResult | None = None
        self.commands: list[Command] = []
        self._files = 0

    # -- sending ------------------------------------------------------------------------

    def send(self, kind: str = "text", channel: str = "web", **fields: Any) -> DialogResult:
        incoming = Incoming(channel=channel, user_id="citizen-1", kind=kind, **fields)  # type: ignore[arg-type]
        result = handle(self.state, incoming, self.ctx)
        stored = json.dumps(result.state.to_json(), ensure_ascii=False)
        self.state = DialogState.from_json(json.loads(stored))
        self.result = result
        self.commands.extend(result.commands)
        return result

    def text(self, text: str) -> DialogResult:
        return self.send("text", text=text)

    def choose(self, choice_id: str) -> DialogResult:
        return self.send("choice", choice=choice_id)

    def command(self, name: str, args: str = "") -> DialogResult:
        return self.send("command", command=name, command_args=args)

    def photo(self, size: int = 1 * MB) -> DialogResult:
        self._files += 1
        file = FileRef(file_id=f"photo-{self._files}", mime_type="image/jpeg", size=size)
        return self.send("photo", file=file)

    def location(self, lat: float, lon: float, label: str | None = None) -> DialogResult:
        return self.send("location", latitude=lat, longitude=lon, location_label=label)

    def contact(self, phone: str) -> DialogResult:
        return self.send("contact", phone=phone)

    def sticker(self) -> DialogResult:
        return self.send("unsupported")

    def later(self, delta: timedelta) -> None:
        self.ctx = replace(self.ctx, now=self.ctx.now + delta)

    # -- reading ------------------------------------------------------------------------

    @property
    def replies(self) -> list[Outgoing]:
        assert self.result is not None
        return self.result.replies

    @property
    def last(self) -> Outgoing:
        return self.replies[-1]

    @property
    def said(self) -> str:
        return "\n".join(reply.text for reply in self.replies)

    @property
    def choice_ids(self) -> list[str]:
        return [choice.id for choice in self.last.choices]

    def label(self, choice_id: str) -> str:
        return next(c.label for c in self.last.choices if c.id == choice_id)

    @property
    def where(self) -> tuple[str, str | None]:
        assert self.state is not None
        return self.state.flow, self.state.step

    def snapshot(self) -> dict[str, Any]:
        """The state without its timestamp, to show that a refused input changed nothing."""
        assert self.state is not None
        data = self.state.to_json()
        data.pop("updated_at")
        return data


def file_complaint_up_to(chat: Chat, step: str) -> None:
    """Walk the gov-window form with valid answers until the step named `step` is asked."""
    script: list[tuple[str, Any]] = [
        ("screening", lambda: chat.choose("screen:none")),
        ("category", lambda: chat.choose("opt:service_attitude")),
        ("category.sub", lambda: chat.choose("opt:rude")),
        ("target", lambda: chat.choose("opt:staff")),
        ("target.text", lambda: chat.text("3号窗口 工号1024")),
        ("incident_time", lambda: chat.text("昨天下午3点")),
        ("place", lambda: chat.text("市民中心二楼")),
        ("facts", lambda: chat.text("工作人员拒绝受理我的材料，并且态度恶劣，大声呵斥。")),
        ("request_type", lambda: chat.choose("opt:apology")),
        ("request_type.text", lambda: chat.choose("skip")),
        ("witnesses", lambda: chat.choose("skip")),
        ("grounds", lambda: chat.choose("skip")),
        ("anonymous", lambda: chat.choose("opt:no")),
        ("privacy", lambda: chat.choose("privacy:ok")),
        ("name", lambda: chat.text("李雷")),
        ("phone", lambda: chat.text("138 1234 5678")),
        ("organisation", lambda: chat.choose("skip")),
        ("photos", lambda: chat.choose("done")),
    ]
    chat.command("start")
    for name, answer in script:
        if chat.where[1] == step or (step == "summary" and chat.where[0] == "summary"):
            return
        assert chat.where[1] == name, f"expected step {name}, at {chat.where}"
        answer()
    assert chat.where[1] == step or step == "summary", chat.where
