"""`complaintdesk demo` and `run` as a person starts them: a real process on a free port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bot.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
# How long a slow, shared CI machine may take to start the server (a limit, not a measurement).
STARTUP_LIMIT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post_json(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def wait_until_serving(process: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the server exited with {process.returncode}:\n{output}")
        try:
            if get(url)[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"nothing answered at {url}")


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_demo_serves_the_web_chat_until_terminated(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "demo.sqlite3"
    command = [sys.executable, "-m", "bot.cli", "demo", "--port", str(port), "--db", str(db)]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, f"{base}/healthz")
        status, page = get(f"{base}/webchat")
        assert status == 200 and b"/webchat/static/webchat.js" in page
        status, body = post_json(
            f"{base}/webchat/api/message", {"session_id": "demo-session-1", "text": "/start"}
        )
        assert status == 200 and body["messages"][0]["choices"]
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C does
        output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{port}/webchat" in output
    assert f"http://127.0.0.1:{port}/desk" in output
    for login in ("admin", "supervisor", "intake", "head", "handler"):
        assert f" {login} " in output, output  # a sign-in for each role
    assert db.exists()


def test_demo_seeds_the_organisation_once(tmp_path: Path) -> None:
    import asyncio

    from bot.demo import DEMO_DEPARTMENTS, ensure_demo_organisation
    from models.db import database
    from models.entities import Department

    async def seed_twice() -> tuple[bool, bool, list[tuple[str, str | None]]]:
        async with database(f"sqlite://{tmp_path / 'seed.sqlite3'}"):
            first = await ensure_demo_organisation()
            second = await ensure_demo_organisation()
            rows = await Department.all().order_by("id").prefetch_related("parent")
            return first, second, [(d.code, d.parent.code if d.parent else None) for d in rows]

    first, second, departments = asyncio.run(seed_twice())
    assert (first, second) == (True, False)
    assert departments == [(code, parent) for code, _, parent in DEMO_DEPARTMENTS]


def test_the_property_demo_is_a_property_desk_with_a_sign_in_per_role(tmp_path: Path) -> None:
    import asyncio
    from datetime import UTC, datetime

    from bot.demo import ensure_demo_organisation, ensure_demo_staff
    from models.db import database
    from models.desk_auth import SignedIn, sign_in
    from models.entities import Department

    async def seed() -> tuple[list[str], list[str], bool]:
        now = datetime(2026, 11, 2, 2, tzinfo=UTC)
        async with database(f"sqlite://{tmp_path / 'p.sqlite3'}"):
            await ensure_demo_organisation("property")
            first = await ensure_demo_staff("property", now)
            again = await ensure_demo_staff("property", now)  # a restart: new passwords
            names = [d.name for d in await Department.all().order_by("id")]
            worked = True
            for account in again:
                outcome = await sign_in(
                    account.login, account.password, now=now, lifetime=timedelta(hours=1)
                )
                worked = worked and isinstance(outcome, SignedIn)
            return names, [str(s.role) for s in first], worked

    from datetime import timedelta

    names, roles, worked = asyncio.run(seed())
    assert names[0].endswith("物业服务中心") and "工程维修部" in names
    assert not any("政务" in n for n in names)
    assert roles == ["admin", "supervisor", "intake_clerk", "department_head", "handler"]
    assert worked


def test_an_unknown_profile_is_reported_without_starting(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bot.cli", "demo", "--profile", "no-such-profile"]
    command += ["--port", str(free_port()), "--db", str(tmp_path / "x.sqlite3")]
    result = subprocess.run(
        command, cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "no-such-profile" in result.stderr
    assert not (tmp_path / "x.sqlite3").exists()


def test_help_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    for name in ("demo", "run"):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([name, "--help"])
        assert exit_.value.code == 0
    demo = parser.parse_args(["demo"])
    assert demo.db == "complaintdesk-demo.sqlite3" and demo.profile == "gov-window"
    assert demo.host is None and demo.port is None  # taken from COMPLAINTDESK_HOST/PORT
    run = parser.parse_args(["run", "--host", "0.0.0.0", "--port", "9000"])
    assert (run.host, run.port) == ("0.0.0.0", 9000)
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--port", "70000"])


def test_the_printed_url_uses_the_listening_address(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli_serve import webchat_url
    from bot.cli_staff import desk_base_url
    from config.settings import Settings

    monkeypatch.setenv("COMPLAINTDESK_PORT", "8181")
    assert webchat_url(Settings()) == "http://127.0.0.1:8181/webchat"
    assert webchat_url(Settings(host="0.0.0.0")) == "http://127.0.0.1:8181/webchat"
    assert webchat_url(Settings(host="192.168.1.5")) == "http://192.168.1.5:8181/webchat"
    assert webchat_url(Settings(host="::1")) == "http://[::1]:8181/webchat"
    # The desk's invite links: the public URL when there is one, else the same address.
    assert desk_base_url(Settings(host="::")) == "http://127.0.0.1:8181"
    assert desk_base_url(Settings(public_url="https://desk.example.org/")) == (
        "https://desk.example.org"
    )


def test_run_serves_from_the_settings(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(tmp_path)
    env["COMPLAINTDESK_DATABASE_URL"] = f"sqlite://{tmp_path / 'run.sqlite3'}"
    env["COMPLAINTDESK_DATA_DIR"] = str(tmp_path / "files")
    env["COMPLAINTDESK_PORT"] = str(port)  # the environment names the port, not a flag
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_serving(process, f"http://127.0.0.1:{port}/healthz")
        status, _ = get(f"http://127.0.0.1:{port}/webchat")
        assert status == 200
    finally:
        process.terminate()  # SIGTERM, as a service manager stops it
        output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert f"web chat at http://127.0.0.1:{port}/webchat" in output
    assert (tmp_path / "run.sqlite3").exists()


@pytest.mark.parametrize("name", __import__("config.profiles").profiles.list_profiles())
def test_every_profile_builds_its_demo_without_serving(tmp_path: Path, name: str) -> None:
    """`complaintdesk demo --profile NAME` for every shipped profile: the settings check passes,
    the application is built, and the demo organisation and one sign-in per role are seeded
    (what the demo's start-up does before serving)."""
    import asyncio
    from datetime import UTC, datetime

    from bot.app import create_app
    from bot.cli_serve import _check_profile
    from bot.demo import ensure_demo_organisation, ensure_demo_staff
    from config.profiles import load_profile
    from config.settings import settings_with
    from models.db import database
    from models.entities import Department

    url = f"sqlite://{tmp_path / 'demo.sqlite3'}"
    settings = settings_with(database_url=url, profile=name, data_dir=tmp_path / "files")
    assert _check_profile(settings)
    assert create_app(settings, scheduler=False) is not None

    async def seed() -> tuple[list[str], list[str]]:
        async with database(url):
            await ensure_demo_organisation(name)
            signins = await ensure_demo_staff(name, datetime(2026, 11, 2, 2, tzinfo=UTC))
            return [d.name for d in await Department.all().order_by("id")], [
                str(s.role) for s in signins
            ]

    departments, roles = asyncio.run(seed())
    assert roles == ["admin", "supervisor", "intake_clerk", "department_head", "handler"]
    if name not in ("gov-window", "property", "tax-service"):
        assert load_profile(name).name["zh_CN"] in departments[0]


def test_serving_collects_cycles_less_often_than_cpythons_default() -> None:
    """The last start-up hook freezes start-up's objects and raises the collector's thresholds
    (bot.cli_serve.SERVING_GC_THRESHOLDS): the default ones cost a loaded worker 19 % of its CPU."""
    import asyncio
    import gc

    from bot.cli_serve import SERVING_GC_THRESHOLDS, _freeze_what_start_up_made

    before = gc.get_threshold()
    try:
        asyncio.run(_freeze_what_start_up_made(None))  # type: ignore[arg-type]
        assert gc.get_threshold() == SERVING_GC_THRESHOLDS
        assert SERVING_GC_THRESHOLDS[0] > before[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
