"""The browser desk under aiohttp's test client: an app with a movable clock, staff with desk
passwords, signing in and posting forms with their CSRF token as a browser does."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from config.settings import Settings
from models.desk_auth import CredentialSet, set_password_from_invite
from models.entities import Staff
from models.staffing import create_invite
from tests.staff_world import CALENDAR, T0

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class MovableNow:
    """The app's clock; tests move it forward."""

    at: datetime = T0

    def __call__(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


@asynccontextmanager
async def desk_client(
    db_url: str, tmp_path: Path, now: MovableNow | None = None, **settings: Any
) -> AsyncIterator[TestClient]:
    settings.setdefault("profile", "tax-service")
    app = create_app(
        Settings(database_url=db_url, data_dir=tmp_path / "data", **settings),
        now=now or MovableNow(),
        calendar=CALENDAR,
        manage_db=False,
    )
    async with TestClient(TestServer(app)) as client:
        yield client


async def give_password(
    staff: Staff, login: str, password: str = PASSWORD, *, now: datetime = T0
) -> None:
    """What the staff member does at /desk/invite/<code>, done directly."""
    invite = await create_invite(now=now, staff_id=staff.id)
    outcome = await set_password_from_invite(invite.code, login, password, password, now=now)
    assert isinstance(outcome, CredentialSet), outcome


def csrf_in(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return unescape(found.group(1))


async def page(client: TestClient, path: str, status: int = 200) -> str:
    response = await client.get(path, allow_redirects=False)
    text = await response.text()
    assert response.status == status, (path, response.status, text[:2000])
    return text


async def form_post(
    client: TestClient,
    path: str,
    data: dict[str, Any] | list[tuple[str, Any]],
    *,
    csrf_from: str | None = None,
    status: int = 303,
) -> Any:
    """POST a form with the CSRF token of the page `csrf_from` (default: `path` itself)."""
    token = csrf_in(await page(client, csrf_from or path))
    fields = list(data.items()) if isinstance(data, dict) else list(data)
    response = await client.post(path, data=[("csrf", token), *fields], allow_redirects=False)
    text = await response.text()
    assert response.status == status, (path, response.status, text[:3000])
    return response


async def sign_in(client: TestClient, login: str, password: str = PASSWORD) -> None:
    await form_post(client, "/desk/signin", {"login": login, "password": password})
