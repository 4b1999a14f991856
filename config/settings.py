"""Settings: `COMPLAINTDESK_*` environment variables, then an optional TOML file.

The TOML file is named by `COMPLAINTDESK_CONFIG`; its keys are the field names below (without the
prefix). Environment variables win over the file, the file over the defaults.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

LANGUAGES = ("zh_CN", "zh_TW", "en")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMPLAINTDESK_", extra="forbid")

    database_url: str = Field(
        default="sqlite://complaintdesk.sqlite3",
        description="sqlite://PATH (embedded default) or postgres://user@host:port/db",
    )
    timezone: str = Field(default="Asia/Shanghai", description="zone used to show times")
    language: str = Field(default="zh_CN", description="default language: zh_CN, zh_TW or en")
    host: str = Field(default="127.0.0.1", description="address `run` and `demo` listen on")
    port: int = Field(default=8080, description="port `run` and `demo` listen on")
    profile: str = Field(default="gov-window", description="policy profile id or TOML path")
    profiles_dir: Path | None = Field(default=None, description="extra directory of profiles")
    holiday_override_file: Path | None = Field(
        default=None, description="TOML with extra holidays/working days (default: shipped one)"
    )
    data_dir: Path = Field(default=Path("data"), description="where attachments are stored")
    dialog_idle_minutes: int = Field(default=60, description="idle dialogs expire after this")
    privacy_url: str | None = Field(
        default=None,
        description="the organisation's full privacy notice (linked before name and phone)",
    )
    max_text_length: int = Field(default=2000, description="longest free text accepted")
    max_photos: int = Field(default=6, description="photos per complaint")
    max_photo_mb: float = Field(default=10.0, description="largest photo or file accepted")
    telegram_token: str | None = Field(default=None, description="Telegram bot token")
    telegram_api_base: str | None = Field(
        default=None, description="non-default Bot API server, e.g. http://127.0.0.1:8081"
    )
    telegram_webhook_secret: str | None = Field(
        default=None, description="secret for X-Telegram-Bot-Api-Secret-Token (webhook mode)"
    )
    public_url: str | None = Field(
        default=None, description="public https base URL; set → Telegram webhook mode"
    )
    telegram_reply_in_response: bool = Field(
        default=True,
        description="webhook mode: a turn's single plain reply goes in the webhook's response "
        "(Telegram runs it; no sendMessage call of our own); false: every reply by a call",
    )
    wechat_appid: str | None = None
    wechat_secret: str | None = None
    wechat_token: str | None = None
    wechat_aes_key: str | None = None
    wechat_api_base: str | None = None
    wechat_accept_plaintext: bool = Field(
        default=False,
        description="with wechat_aes_key (safe mode), also take plaintext messages "
        "(WeChat's compatibility mode while an account switches over)",
    )
    scheduler_interval_seconds: int = Field(default=60, description="deadline sweep period")
    log_format: Literal["text", "json"] = Field(
        default="text", description="text: one readable line; json: one JSON object a line"
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    uvloop: bool = Field(
        default=True,
        description="run `complaintdesk run` on uvloop's event loop (false: asyncio's own)",
    )
    metrics_port: int | None = Field(
        default=None, description="serve /metrics on this port only (default: the main port)"
    )
    attachment_storage: str = Field(
        default="database",
        description="database (the default), s3://BUCKET[/PREFIX][?endpoint=URL&region=R] "
        "(credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or file (DATA_DIR, one host)",
    )
    upload_window_minutes: float = Field(
        default=60, description="the web chat's upload caps count over this window"
    )
    uploads_per_session: int = Field(
        default=20, description="web chat uploads one browser session may make per window"
    )
    upload_mb_per_session: float = Field(
        default=60, description="web chat upload megabytes per session per window"
    )
    uploads_per_client: int = Field(
        default=60, description="web chat uploads one client address may make per window"
    )
    upload_mb_per_client: float = Field(
        default=200, description="web chat upload megabytes per client address per window"
    )
    forwarded_hops: int = Field(
        default=0,
        description="reverse proxies in front that append to X-Forwarded-For (deploy/: 1); "
        "the client address the caps count is the one the outermost of them saw",
    )
    orphan_attachment_hours: float = Field(
        default=24, description="an upload no complaint took is deleted after this"
    )
    ready_outbox_max_age_seconds: int = Field(
        default=900, description="/readyz fails when a due message waits longer than this"
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("attachment_storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if value not in ("database", "file") and not value.startswith("s3://"):
            raise ValueError("use database, file or s3://BUCKET[/PREFIX]")
        return value

    desk_session_hours: float = Field(
        default=12.0, description="a browser desk sign-in ends this long after it began"
    )
    desk_idle_minutes: float = Field(
        default=60.0, description="a browser desk sign-in unused this long ends"
    )
    desk_secure_cookie: bool | None = Field(
        default=None,
        description="Secure flag on the desk's cookies; unset: on when served over https "
        "(the request, X-Forwarded-Proto, or an https public_url)",
    )

    lookup_per_address: int = Field(
        default=20, description="complaint look-ups one address may try per window"
    )
    lookup_per_number: int = Field(
        default=5, description="failed look-ups of one complaint number per window"
    )
    lookup_window_minutes: float = Field(
        default=15.0, description="the look-up rate limits count over this many minutes"
    )
    privacy_url: str | None = Field(
        default=None,
        description="the organisation's full privacy notice (a URL); unset: privacy_file, "
        "else a page built from the profile's retention",
    )
    privacy_file: Path | None = Field(
        default=None, description="a text or HTML file with the full privacy notice"
    )

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"unknown language {value!r}; use one of {', '.join(LANGUAGES)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises on an unknown zone name
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def listening_url(self) -> str:
        """Where `run` listens, as a URL a person on this machine can open (a wildcard address
        is not one; an IPv6 address goes in brackets)."""
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("COMPLAINTDESK_CONFIG")
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise FileNotFoundError(f"COMPLAINTDESK_CONFIG names a missing file: {path}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def settings_with(**overrides: Any) -> Settings:
    """Settings from the environment with explicit overrides (CLI flags)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
