"""One-line answers for the errors an operator causes and can fix, instead of a traceback.

`explain(error)` returns the line, or None for a real bug (which then keeps its traceback).
Lines about settings start with "setting" (the CLI exits 2 for those, 1 otherwise).
"""

from __future__ import annotations

import os
import re
import socket
import tomllib

from config.settings import Settings

ENV_PREFIX = "COMPLAINTDESK_"
SECRET_FIELDS = frozenset(
    {"telegram_token", "telegram_webhook_secret", "wechat_secret", "wechat_token", "wechat_aes_key"}
)
_URL_PASSWORD = re.compile(r"(?P<head>://[^:/@\s]+:)(?P<password>[^@\s]+)(?P<tail>@)")


def mask_url(url: str) -> str:
    """A database or storage URL with its password replaced by ***."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", url)


def mask_secret(value: str) -> str:
    """Enough to tell two tokens apart, not enough to use one."""
    return "***" if len(value) < 12 else f"{value[:4]}…*** ({len(value)} chars)"


def _database_url() -> str:
    try:
        from config.settings import get_settings

        return mask_url(get_settings().database_url)
    except Exception:
        return mask_url(os.environ.get(f"{ENV_PREFIX}DATABASE_URL", "(default)"))


def _settings_problem(error: Exception) -> str | None:
    from pydantic import ValidationError

    if isinstance(error, ValidationError) and error.title == Settings.__name__:
        parts = []
        for item in error.errors():
            field = ".".join(str(p) for p in item.get("loc", ())) or "?"
            message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
            if item.get("type") == "extra_forbidden":
                parts.append(f"{field} is not a setting (a typo in COMPLAINTDESK_CONFIG?)")
            else:
                parts.append(f"{ENV_PREFIX}{field.upper()}: {message}")
        return "setting " + "; ".join(parts)
    if isinstance(error, tomllib.TOMLDecodeError):
        return f"setting {ENV_PREFIX}CONFIG: the file is not valid TOML: {error}"
    if isinstance(error, FileNotFoundError) and "COMPLAINTDESK_CONFIG" in str(error):
        return f"setting {ENV_PREFIX}CONFIG: {error}"
    return None


def _database_problem(error: Exception) -> str | None:
    from tortoise.exceptions import ConfigurationError, DBConnectionError, OperationalError

    reason: str | None = None
    if isinstance(error, ConnectionRefusedError | socket.gaierror | TimeoutError):
        reason = f"{type(error).__name__}: {error}"
    elif isinstance(error, DBConnectionError):
        reason = str(error)
    elif isinstance(error, ConfigurationError) and "db_url" in str(error).lower():
        reason = str(error)
    elif isinstance(error, OperationalError) and "unable to open database" in str(error):
        reason = str(error)
    else:
        try:
            import asyncpg
        except ImportError:  # pragma: no cover - asyncpg is a dependency
            return None
        if isinstance(error, asyncpg.PostgresError | asyncpg.InterfaceError):
            reason = f"{type(error).__name__}: {error}"
        elif isinstance(error, OSError) and error.errno is not None:
            reason = f"{type(error).__name__}: {error}"
    if reason is None:
        return None
    return f"database {ENV_PREFIX}DATABASE_URL={_database_url()} is unreachable: " + " ".join(
        reason.split()
    )


def explain(error: BaseException) -> str | None:
    if not isinstance(error, Exception):
        return None
    from config.profiles import ProfileError

    if isinstance(error, ProfileError):
        return f"setting {ENV_PREFIX}PROFILE: {error}"
    return _settings_problem(error) or _database_problem(error)
