"""API tokens managed from the desk (/desk/tokens: one's own, admins everyone's) and from the
CLI (`complaintdesk tokens create|list|revoke`); who may hold which scope."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from models.api_tokens import ApiToken, authenticate, create_token, hash_token, scopes_refused
from models.entities import Staff
from models.workflow import Role
from tests.desk_support import MovableNow, desk_client, form_post, give_password, page, sign_in
from tests.staff_world import T0, make_world

ROOT = Path(__file__).resolve().parent.parent
SECRET = re.compile(r'<code class="secret">(cdk_[A-Za-z0-9_-]+)</code>')


async def test_scopes_follow_what_the_staff_member_may_do(db_url: str) -> None:
    world = await make_world()
    admin = await Staff.create(name="Admin Ma", role=Role.ADMIN, department=world.office)
    assert scopes_refused(world.handler, ["read", "act", "file"]) is None
    assert "admin" in (scopes_refused(world.handler, ["admin"]) or "")
    assert scopes_refused(admin, ["admin"]) is None
    assert "unknown scope" in (scopes_refused(admin, ["write"]) or "")
    assert scopes_refused(admin, []) is not None
    with pytest.raises(ValueError, match="name"):
        await create_token(admin, "  ", ["read"], now=T0)
    made = await create_token(admin, "reports", ["read"], now=T0)
    assert made.secret.startswith("cdk_") and len(made.secret) > 40
    assert made.token.token_hash == hash_token(made.secret)
    assert await authenticate(made.secret, now=T0) is not None
    assert await authenticate(made.secret + "x", now=T0) is None


async def test_desk_page_shows_a_new_token_once_and_revokes(db_url: str, tmp_path: Path) -> None:
    world = await make_world()
    admin = await Staff.create(name="Admin Ma", role=Role.ADMIN, department=world.office)
    await give_password(world.handler, "handler")
    await give_password(admin, "admin")
    async with desk_client(db_url, tmp_path, MovableNow(T0)) as client:
        await sign_in(client, "handler")
        response = await form_post(
            client,
            "/desk/tokens",
            [("what", "create"), ("name", "my script"), ("scope", "read"), ("scope", "act")],
            status=200,
        )
        html = await response.text()
        secret = SECRET.search(html)
        assert secret, html[:2000]
        token = await ApiToken.get(token_hash=hash_token(secret.group(1)))
        assert token.staff_id == world.handler.id and token.scopes == ["read", "act"]  # type: ignore[attr-defined]
        listing = await page(client, "/desk/tokens")
        assert "my script" in listing and secret.group(1) not in listing
        assert token.prefix in listing
        assert 'value="act"' in listing and 'value="admin"' not in listing
        # A handler may not hold the admin scope, nor see everyone's tokens.
        refused = await form_post(
            client, "/desk/tokens", [("what", "create"), ("name", "x"), ("scope", "admin")],
            status=400,
        )  # fmt: skip
        assert "admin scope" in await refused.text()
        client.session.cookie_jar.clear()
        await sign_in(client, "admin")
        everyone = await page(client, "/desk/tokens?all=1")
        assert "my script" in everyone and world.handler.name in everyone
        await form_post(
            client, "/desk/tokens", {"what": "revoke", "token_id": str(token.id)}, status=303
        )
        await token.refresh_from_db()
        assert token.revoked_at is not None and token.revoked_by_id == admin.id  # type: ignore[attr-defined]
        assert await authenticate(secret.group(1), now=T0) is None
        # Another staff member's token is not the handler's to revoke.
        mine = await create_token(admin, "admin's", ["read"], now=T0)
        client.session.cookie_jar.clear()
        await sign_in(client, "handler")
        await form_post(
            client, "/desk/tokens", {"what": "revoke", "token_id": str(mine.token.id)}, status=400
        )
        await mine.token.refresh_from_db()
        assert mine.token.revoked_at is None


def _cli(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "tokens", *args, "--db", db],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


async def test_cli_creates_lists_and_revokes(db_url: str) -> None:
    world = await make_world()
    made = _cli("create", "--staff", str(world.clerk.id), "--name", "kiosk", "--scope", "file",
                "--scope", "read", db=db_url)  # fmt: skip
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("cdk_") and "Shown once" in made.stderr
    assert await authenticate(secret, now=T0) is not None
    listed = _cli("list", db=db_url)
    assert listed.returncode == 0 and "kiosk" in listed.stdout and secret not in listed.stdout
    token = await ApiToken.get(name="kiosk")
    revoked = _cli("revoke", str(token.id), db=db_url)
    assert revoked.returncode == 0, revoked.stderr
    assert await authenticate(secret, now=T0) is None
    wrong = _cli("create", "--staff", str(world.clerk.id), "--name", "x", "--scope", "admin",
                 db=db_url)  # fmt: skip
    assert wrong.returncode == 1 and "admin scope" in wrong.stderr
