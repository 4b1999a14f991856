"""Signing in to the browser desk: invites, passwords, sessions, CSRF and the back-off."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from bot.cli import main as cli_main
from models.desk_auth import (
    LOCKOUT,
    LOCKOUT_FAILURES,
    DeskCredential,
    DeskSession,
    DeskSignInThrottle,
    prune_sessions,
    wait_after,
)
from models.entities import Channel, Staff
from models.staffing import create_invite, disable_staff, redeem_invite
from models.workflow import Role
from tests.desk_support import (
    PASSWORD,
    MovableNow,
    csrf_in,
    desk_client,
    form_post,
    give_password,
    page,
    sign_in,
)
from tests.staff_world import T0


def test_the_back_off_doubles_after_the_free_attempts_and_ends_in_a_lockout() -> None:
    assert [wait_after(n) for n in range(3)] == [None, None, None]
    assert wait_after(3) == timedelta(seconds=2)
    assert wait_after(4) == timedelta(seconds=4)
    assert wait_after(9) == timedelta(seconds=128)
    assert wait_after(LOCKOUT_FAILURES) == LOCKOUT
    assert wait_after(50) == LOCKOUT


async def test_an_invite_sets_the_password_once_and_the_chat_can_still_use_it(
    db_url: str, tmp_path: Path
) -> None:
    invite = await create_invite(now=T0, name="王芳", role=Role.HANDLER)
    async with desk_client(db_url, tmp_path) as client:
        html = await page(client, f"/desk/invite/{invite.code}")
        assert "王芳" in html and "设置工作台密码" in html
        await form_post(
            client,
            f"/desk/invite/{invite.code}",
            {"login": "wangfang", "password": PASSWORD, "repeat": PASSWORD},
        )
        # The same code is spent for the desk ...
        again = await page(client, f"/desk/invite/{invite.code}", status=404)
        assert "此邀请已设置过工作台密码" in again
        await sign_in(client, "WangFang")  # login names are not case-sensitive
        cases = await page(client, "/desk/cases")
        assert "王芳" in cases
    # ... and still binds a chat once: one invite, chat and browser.
    bound = await redeem_invite(invite.code, Channel.TELEGRAM, "777", now=T0)
    assert isinstance(bound, Staff) and bound.telegram_chat_id == "777"


async def test_invite_form_problems_are_explained(db_url: str, tmp_path: Path) -> None:
    invite = await create_invite(now=T0, name="Li", role=Role.HANDLER, language="en")
    other = await Staff.create(name="Other", role=Role.HANDLER)
    await give_password(other, "taken")
    async with desk_client(db_url, tmp_path) as client:
        path = f"/desk/invite/{invite.code}"
        cases = [
            ({"login": "li", "password": PASSWORD, "repeat": PASSWORD + "x"}, "两次输入的密码"),
            ({"login": "li", "password": "short", "repeat": "short"}, "密码太短"),
            ({"login": "No Spaces", "password": PASSWORD, "repeat": PASSWORD}, "登录名为"),
            ({"login": "taken", "password": PASSWORD, "repeat": PASSWORD}, "该登录名已被占用"),
        ]
        for form, problem in cases:
            response = await form_post(client, path, form, status=400)
            assert problem in await response.text()
        assert not await DeskCredential.filter(staff_id=invite.staff.id).exists()
        assert "无法识别此邀请码" in await page(client, "/desk/invite/inv_nonsense", status=404)
    expired = await create_invite(now=T0 - timedelta(days=8), name="Late", role=Role.HANDLER)
    async with desk_client(db_url, tmp_path) as client:
        assert "此邀请已过期" in await page(client, f"/desk/invite/{expired.code}", status=404)


async def test_every_post_needs_the_csrf_token(db_url: str, tmp_path: Path) -> None:
    staff = await Staff.create(name="Admin", role=Role.ADMIN)
    await give_password(staff, "admin")
    async with desk_client(db_url, tmp_path) as client:
        # The sign-in form: no token, a wrong token, a foreign origin.
        for data, headers in (
            ({"login": "admin", "password": PASSWORD}, {}),
            ({"login": "admin", "password": PASSWORD, "csrf": "forged"}, {}),
        ):
            response = await client.post("/desk/signin", data=data, headers=headers)
            assert response.status == 403
        token = csrf_in(await page(client, "/desk/signin"))
        foreign = await client.post(
            "/desk/signin",
            data={"login": "admin", "password": PASSWORD, "csrf": token},
            headers={"Origin": "https://evil.example"},
            allow_redirects=False,
        )
        assert foreign.status == 403
        assert not await DeskSession.all().exists()
        await sign_in(client, "admin")
        # Signed in, the session's own token is wanted; the pre-sign-in one no longer does.
        response = await client.post("/desk/signout", data={"csrf": token})
        assert response.status == 403
        assert await DeskSession.all().count() == 1
        await form_post(client, "/desk/signout", {}, csrf_from="/desk/cases")
        assert not await DeskSession.all().exists()
        await page(client, "/desk/cases", status=303)


async def test_repeated_failures_back_off_then_lock_and_are_logged(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    staff = await Staff.create(name="Clerk", role=Role.INTAKE_CLERK)
    await give_password(staff, "clerk")
    now = MovableNow()
    caplog.set_level(logging.WARNING, logger="models.desk_auth")
    async with desk_client(db_url, tmp_path, now) as client:
        for attempt in range(1, LOCKOUT_FAILURES + 1):
            token = csrf_in(await page(client, "/desk/signin"))
            response = await client.post(
                "/desk/signin", data={"csrf": token, "login": "clerk", "password": "wrong"}
            )
            assert response.status in (401, 429), attempt
            # Wait out the back-off (but not the lockout) before the next try.
            row = await DeskSignInThrottle.get(login="clerk")
            assert row.failures == attempt
            if row.wait_until is not None and attempt < LOCKOUT_FAILURES:
                now.at = row.wait_until
        # Locked: even the right password is refused until the lockout has passed.
        token = csrf_in(await page(client, "/desk/signin"))
        response = await client.post(
            "/desk/signin", data={"csrf": token, "login": "clerk", "password": PASSWORD}
        )
        assert response.status == 429
        assert "失败次数过多" in await response.text()
        now.advance(LOCKOUT)
        await sign_in(client, "clerk")
        assert not await DeskSignInThrottle.filter(login="clerk").exists()
    messages = [r.getMessage() for r in caplog.records]
    assert any("failed sign-in 1 for login 'clerk'" in m for m in messages)
    assert any("locked for" in m for m in messages)
    assert any("refused while it waits" in m for m in messages)


async def test_an_unknown_login_is_answered_as_a_wrong_password(
    db_url: str, tmp_path: Path
) -> None:
    async with desk_client(db_url, tmp_path) as client:
        response = await form_post(
            client, "/desk/signin", {"login": "nobody", "password": "x"}, status=401
        )
        assert "登录名或密码错误" in await response.text()


async def test_sessions_expire_when_idle_and_after_their_lifetime(
    db_url: str, tmp_path: Path
) -> None:
    staff = await Staff.create(name="Head", role=Role.DEPARTMENT_HEAD)
    await give_password(staff, "head")
    now = MovableNow()
    async with desk_client(
        db_url, tmp_path, now, desk_idle_minutes=30, desk_session_hours=2
    ) as client:
        await sign_in(client, "head")
        now.advance(timedelta(minutes=29))
        await page(client, "/desk/cases")  # in use: the idle clock restarts
        now.advance(timedelta(minutes=29))
        await page(client, "/desk/cases")
        now.advance(timedelta(minutes=31))
        response = await client.get("/desk/cases", allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"].startswith("/desk/signin?next=")
        assert not await DeskSession.all().exists()
        await sign_in(client, "head")
        for _ in range(4):  # busy, yet the lifetime ends it
            now.advance(timedelta(minutes=29))
            await page(client, "/desk/cases")
        now.advance(timedelta(minutes=5))
        await page(client, "/desk/cases", status=303)
        await sign_in(client, "head")
    assert await prune_sessions(now.at) == 0  # still valid
    assert await prune_sessions(now.at + timedelta(hours=2)) == 1


async def test_sign_out_everywhere_and_a_disabled_account(db_url: str, tmp_path: Path) -> None:
    staff = await Staff.create(name="Sun", role=Role.SUPERVISOR)
    await give_password(staff, "sun")
    async with desk_client(db_url, tmp_path) as phone, desk_client(db_url, tmp_path) as pc:
        await sign_in(phone, "sun")
        await sign_in(pc, "sun")
        account = await page(pc, "/desk/account")
        assert account.count("<tr>") == 3  # the header and two browsers
        await form_post(pc, "/desk/signout-everywhere", {}, csrf_from="/desk/account")
        await page(phone, "/desk/cases", status=303)
        await page(pc, "/desk/cases", status=303)
        await sign_in(phone, "sun")
        await disable_staff(staff.id)
        await page(phone, "/desk/cases", status=303)
        response = await form_post(
            phone, "/desk/signin", {"login": "sun", "password": PASSWORD}, status=401
        )
        assert "登录名或密码错误" in await response.text()


async def test_cookies_are_http_only_same_site_and_secure_behind_https(
    db_url: str, tmp_path: Path
) -> None:
    staff = await Staff.create(name="A", role=Role.ADMIN)
    await give_password(staff, "admin-a")
    async with desk_client(db_url, tmp_path) as client:
        token = csrf_in(await page(client, "/desk/signin"))
        response = await client.post(
            "/desk/signin",
            data={"csrf": token, "login": "admin-a", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
            allow_redirects=False,
        )
        assert response.status == 303
        cookie = response.headers["Set-Cookie"]
        assert "desk_session=" in cookie and "HttpOnly" in cookie and "Secure" in cookie
        assert "SameSite=Lax" in cookie and "Path=/desk" in cookie
    async with desk_client(db_url, tmp_path) as client:
        response = await client.get("/desk/signin")
        assert "Secure" not in response.headers["Set-Cookie"]  # plain http on loopback
        assert "SameSite=Strict" in response.headers["Set-Cookie"]
        assert response.headers["Cache-Control"] == "no-store"


async def test_the_language_follows_the_cookie_then_the_browser(
    db_url: str, tmp_path: Path
) -> None:
    async with desk_client(db_url, tmp_path) as client:
        assert "登录名" in await page(client, "/desk/signin")
        response = await client.get("/desk/signin", headers={"Accept-Language": "en-US,en;q=0.9"})
        assert "Login name" in await response.text()
        response = await client.get("/desk/lang/zh_TW?next=/desk/signin")
        assert "登入名稱" in await response.text()
        evil = "/desk/lang/en?next=https://evil.example/"
        response = await client.get(evil, allow_redirects=False)
        assert response.headers["Location"] == "/desk/"
        assert (await client.get("/desk/lang/fr")).status == 404


def test_staff_create_prints_a_one_time_desk_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite://{tmp_path / 'cli.sqlite3'}"
    code = cli_main(["staff", "create", "--role", "admin", "--name", "First Admin", "--db", db])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "http://127.0.0.1:8080/desk/invite/inv_" in out
    with pytest.raises(SystemExit):
        cli_main(["staff", "create", "--role", "nobody", "--name", "X", "--db", db])
