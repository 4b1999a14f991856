"""The deployment kit: backup and restore on a fresh PostgreSQL database, the image build where
Docker works, and the files the operator edits being well-formed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bot.attachments import read_attachment, store_attachment
from handlers.messages import FileRef
from models.db import close_db, database
from models.entities import Attachment, Channel, Complaint, Staff
from tests.conftest import _pg_admin, _pg_server_url, _with_database
from tests.images import jpeg
from tests.waiting import WITHIN_SECONDS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def _tools_missing() -> str | None:
    missing = [tool for tool in ("pg_dump", "pg_restore", "psql") if shutil.which(tool) is None]
    return f"PostgreSQL client tools not installed: {', '.join(missing)}" if missing else None


def _cli(folder: Path) -> str:
    """The `complaintdesk` script of this environment, else a wrapper running the module."""
    script = Path(sys.executable).with_name("complaintdesk")
    if script.exists():
        return str(script)
    wrapper = folder / "complaintdesk"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bot.cli "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def _size(path: str) -> int:
    return Path(path).stat().st_size


async def _run(*command: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 3 * WITHIN_SECONDS)
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_a_backup_restores_into_a_fresh_database(
    db_url: str, db_kind: str, tmp_path: Path
) -> None:
    if db_kind != "postgres":
        pytest.skip("backup and restore are for PostgreSQL (an SQLite file is copied as is)")
    if reason := _tools_missing():
        pytest.skip(reason)
    complaint = await Complaint.create(number="202612-0042", profile="gov-window", channel="web")
    await Staff.create(name="王芳", role="handler")
    photo = jpeg("evidence")
    stored = await store_attachment(
        Channel.WEB, FileRef("up", "evidence.jpg", data=photo), max_bytes=1 << 20
    )
    await Attachment.filter(id=stored.id).update(complaint_id=complaint.id)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COMPLAINTDESK_BIN": _cli(tmp_path)}
    out = await _run(str(DEPLOY / "backup.sh"), db_url, str(tmp_path / "backups"), env=env)
    dump = out.strip().splitlines()[-1]
    assert dump.endswith(".dump") and _size(dump) > 0

    fresh = f"cd_restore_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{fresh}"')
    fresh_url = _with_database(_pg_server_url(), fresh)
    try:
        out = await _run(str(DEPLOY / "restore.sh"), dump, fresh_url, env=env)
        assert "restored: 1 complaints, 1 attachments, 1 staff, 0 events" in out, out
        # A second restore into the now filled database is refused, changing nothing.
        again = await asyncio.create_subprocess_exec(
            str(DEPLOY / "restore.sh"),
            dump,
            fresh_url,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        refused, _ = await asyncio.wait_for(again.communicate(), 3 * WITHIN_SECONDS)
        assert again.returncode == 1 and b"already has" in refused
        await close_db()  # the test's own database connection; the restored one next
        async with database(fresh_url):
            restored = await Complaint.get(number="202612-0042")
            attachment = await Attachment.get(complaint_id=restored.id)
            assert await read_attachment(attachment) == photo
            assert await Staff.filter(name="王芳").exists()
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')


def _docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        lines = (probe.stderr or probe.stdout).strip().splitlines()
        return f"docker info failed: {lines[-1] if lines else probe.returncode}"
    return None


def test_the_image_builds_and_runs_as_a_non_root_user() -> None:
    if reason := _docker_unavailable():
        pytest.skip(reason)
    if os.environ.get("COMPLAINTDESK_TEST_DOCKER") != "1":
        pytest.skip(
            "Docker works, but the build pulls python:3.11-slim-trixie and takes minutes: "
            "set COMPLAINTDESK_TEST_DOCKER=1 to run it (never required by .ci/run)"
        )
    tag = f"complaintdesk-test:{uuid.uuid4().hex[:8]}"
    build = subprocess.run(
        ["docker", "build", "-f", str(DEPLOY / "Dockerfile"), "-t", tag, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    try:
        user = subprocess.run(
            ["docker", "run", "--rm", tag, "id", "-u"], capture_output=True, text=True, timeout=300
        )
        assert user.returncode == 0 and user.stdout.strip() == "10001"
        help_run = subprocess.run(
            ["docker", "run", "--rm", tag, "complaintdesk", "--help"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert help_run.returncode == 0 and "run" in help_run.stdout
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=300)


def test_the_dockerfile_is_slim_and_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert stages and all("-slim" in line for line in stages)
    assert "USER complaintdesk" in text and "useradd --system" in text
    assert 'CMD ["complaintdesk", "run"]' in text
    assert "/healthz" in text


# postgresql-client's major version in each Debian release a python slim image is built on.
DEBIAN_PG_CLIENT = {"bookworm": 15, "trixie": 17}


def test_the_image_can_back_up_the_compose_database() -> None:
    """backup.sh runs pg_dump inside the image; pg_dump dumps only servers up to its own major
    version, so the image's Debian release is pinned and its client must not be older than the
    compose file's PostgreSQL."""
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM python:[\d.]+-slim-(\w+)", dockerfile, re.M)
    assert len(stages) == 2 and len(set(stages)) == 1, stages
    client = DEBIAN_PG_CLIENT[stages[0]]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    server = int(compose["services"]["db"]["image"].split(":")[1].split(".")[0])
    assert client >= server, f"pg_dump {client} cannot dump PostgreSQL {server}"


def test_compose_runs_two_workers_on_postgres_behind_tls() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"db", "migrate", "worker1", "worker2", "proxy"} <= set(services)
    assert services["db"]["image"].startswith("postgres:")
    for worker in ("worker1", "worker2"):
        url = services[worker]["environment"]["COMPLAINTDESK_DATABASE_URL"]
        assert url.startswith("postgres://") and "@db:5432/" in url
    assert "443:443" in services["proxy"]["ports"]
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert "worker1:8080 worker2:8080" in caddy and "health_uri /readyz" in caddy


def test_the_grafana_dashboard_charts_the_exported_metrics() -> None:
    from bot import metrics

    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    expressions = " ".join(
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    )
    exported = [
        value._name
        for value in vars(metrics).values()
        if hasattr(value, "_name") and hasattr(value, "_documentation")
    ]
    charted = [name for name in exported if name in expressions]
    # Every exported metric but the scrape-error counter is on a panel.
    assert set(exported) - set(charted) == {"complaintdesk_metrics_database_errors"}


def test_the_scripts_are_valid_shell() -> None:
    for script in ("backup.sh", "restore.sh"):
        path = DEPLOY / script
        assert os.access(path, os.X_OK), f"{script} is not executable"
        check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
