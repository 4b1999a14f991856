"""The systemd recipe of docs/operations.md, run for real: two `complaintdesk run` workers on one
PostgreSQL behind nginx terminating TLS with the shipped deploy/nginx.conf. A complaint with a
photo is filed through the TLS front; the photo is then served by each worker on its own, the
desk's sign-in made through the front holds on both, and each worker's /metrics answers.

systemd itself does not run inside this sandbox (no PID 1 init), so the workers are started with
the unit's own ExecStart and Environment; `systemd-analyze verify` checks the unit file where it
is installed. Docker has no engine here: tests/test_deploy.py skips the image build with that
reason.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import ClientError, ClientSession, ClientTimeout, FormData, TCPConnector

from models.db import database
from models.entities import Attachment, Complaint
from tests.images import jpeg
from tests.intake_script import GOV_WINDOW_FILING, PHOTOS_STEP
from tests.waiting import WITHIN_SECONDS, eventually

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
IN_CI = os.environ.get("CI") == "true"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _need(tool: str) -> str:
    found = shutil.which(tool) or (
        f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None
    )
    if found is None:
        reason = f"{tool} is not installed (Debian: apt-get install nginx-light openssl)"
        if IN_CI:
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    return found


def nginx_config(
    shipped: str,
    *,
    workers: tuple[int, int],
    https_port: int,
    http_port: int,
    cert: Path,
    key: Path,
    prefix: Path,
) -> str:
    """deploy/nginx.conf with only what an operator edits changed: the instances' ports, the
    listening ports, the certificate; wrapped in the main context nginx.conf normally gives."""
    site = shipped.replace("127.0.0.1:8081", f"127.0.0.1:{workers[0]}")
    site = site.replace("127.0.0.1:8082", f"127.0.0.1:{workers[1]}")
    site = re.sub(r"listen 80;", f"listen 127.0.0.1:{http_port};", site)
    site = re.sub(r"listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl", site)
    site = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", site)
    site = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", site)
    return f"""
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{site}
}}
"""


def test_the_shipped_nginx_config_is_accepted_by_nginx(tmp_path: Path) -> None:
    """`nginx -t` on deploy/nginx.conf as the recipe installs it (Debian 12 ships nginx 1.22)."""
    nginx = _need("nginx")
    openssl = _need("openssl")
    cert, key = _self_signed(openssl, tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        nginx_config(
            (DEPLOY / "nginx.conf").read_text(),
            workers=(8081, 8082),
            https_port=_free_port(),
            http_port=_free_port(),
            cert=cert,
            key=key,
            prefix=tmp_path,
        )
    )
    checked = subprocess.run(
        [nginx, "-t", "-c", str(conf), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` on the unit as an instance, with ExecStart pointed at this
    environment's script (the recipe's /opt/complaintdesk does not exist on a test box)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (DEPLOY / "complaintdesk@.service").read_text()
    assert "ExecStart=/opt/complaintdesk/bin/complaintdesk run" in unit
    script = Path(sys.executable).with_name("complaintdesk")
    here = unit.replace(
        "/opt/complaintdesk/bin/complaintdesk", str(script) if script.exists() else "/bin/true"
    )
    instance = tmp_path / "complaintdesk@8081.service"
    instance.write_text(here)
    checked = subprocess.run(
        [analyze, "verify", str(instance)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    assert "Unknown" not in checked.stderr and "Invalid" not in checked.stderr, checked.stderr


def _self_signed(openssl: str, folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@asynccontextmanager
async def _process(
    *command: str, env: dict[str, str], cwd: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.communicate(), WITHIN_SECONDS)
        except TimeoutError:
            process.kill()


async def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(done.communicate(), 3 * WITHIN_SECONDS)
    assert done.returncode == 0, out.decode()
    return out.decode()


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


async def test_two_workers_behind_nginx_tls_on_one_postgres(
    db_url: str, db_kind: str, tmp_path: Path
) -> None:
    if db_kind != "postgres":
        pytest.skip("the recipe's workers share one PostgreSQL; SQLite is the one-host default")
    nginx = _need("nginx")
    cert, key = _self_signed(_need("openssl"), tmp_path)
    ports = (_free_port(), _free_port())
    https_port, http_port = _free_port(), _free_port()
    (tmp_path / "nginx").mkdir()
    conf = tmp_path / "nginx" / "nginx.conf"
    conf.write_text(
        nginx_config(
            (DEPLOY / "nginx.conf").read_text(),
            workers=ports,
            https_port=https_port,
            http_port=http_port,
            cert=cert,
            key=key,
            prefix=tmp_path / "nginx",
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        COMPLAINTDESK_DATABASE_URL=db_url,
        COMPLAINTDESK_HOST="127.0.0.1",
        COMPLAINTDESK_PUBLIC_URL=f"https://localhost:{https_port}",
    )
    await _cli(env, tmp_path, "migrate")
    invite = await _cli(env, tmp_path, "staff", "create", "--name", "值班管理员", "--role", "admin")
    code = re.search(r"/desk/invite/(\S+)", invite)
    assert code, invite

    def worker_env(port: int) -> dict[str, str]:
        # The unit's Environment= line; each instance its own state directory (no shared disk).
        return {
            **env,
            "COMPLAINTDESK_PORT": str(port),
            "COMPLAINTDESK_DATA_DIR": str(tmp_path / f"state-{port}"),
        }

    trust = ssl.create_default_context(cafile=str(cert))
    front = f"https://localhost:{https_port}"
    async with (
        _process(
            sys.executable, "-m", "bot.cli", "run", env=worker_env(ports[0]), cwd=tmp_path
        ) as first,
        _process(
            sys.executable, "-m", "bot.cli", "run", env=worker_env(ports[1]), cwd=tmp_path
        ) as second,
        _process(
            nginx, "-c", str(conf), "-p", str(tmp_path / "nginx"), env=env, cwd=tmp_path
        ) as proxy,
        ClientSession(timeout=ClientTimeout(total=60), connector=TCPConnector(ssl=trust)) as http,
    ):

        async def up(url: str, process: asyncio.subprocess.Process) -> bool:
            assert process.returncode is None, f"{url}: the process exited"
            try:
                async with http.get(url) as response:
                    return response.status == 200
            except (ClientError, OSError):
                return False

        for port, process in zip(ports, (first, second), strict=True):
            await eventually(
                lambda p=port, pr=process: up(f"http://127.0.0.1:{p}/readyz", pr),
                what=f"worker {port} ready",
            )
        await eventually(lambda: up(f"{front}/readyz", proxy), what="nginx's TLS front")

        # Plain HTTP is sent to TLS; /metrics is not exposed through the front.
        async with http.get(
            f"http://127.0.0.1:{http_port}/webchat", allow_redirects=False
        ) as response:
            assert response.status == 301
            assert response.headers["Location"].startswith("https://")
        async with http.get(f"{front}/metrics") as response:
            assert response.status == 404

        # A complainant files through the front; round robin spreads the steps over both.
        session_id = "recipe-session-0001"
        photo = jpeg("broken railing", gps=True)
        reply: dict = {}
        for index, (kind, value) in enumerate(GOV_WINDOW_FILING):
            if index == PHOTOS_STEP:
                form = FormData()
                form.add_field("session_id", session_id)
                form.add_field("file", photo, filename="railing.jpg", content_type="image/jpeg")
                async with http.post(f"{front}/webchat/api/upload", data=form) as response:
                    assert response.status == 200, await response.text()
            body = {"session_id": session_id}
            if kind == "command":
                body["text"] = f"/{value}"
            elif kind == "choice":
                body["choice"] = value
            else:
                body["text"] = value
            async with http.post(f"{front}/webchat/api/message", json=body) as response:
                assert response.status == 200, await response.text()
                reply = await response.json()
        told = "\n".join(message["text"] for message in reply["messages"])

        async with database(db_url):
            complaint = await Complaint.get()
            [attachment] = await Attachment.filter(complaint_id=complaint.id)
        assert complaint.number in told

        # The admin sets a password through the front and signs in there.
        async with http.get(f"{front}/desk/invite/{code.group(1)}") as response:
            page = await response.text()
            assert response.status == 200, page[:2000]
        password = "recipe-Passw0rd-long-enough"
        fields = {
            "csrf": _csrf(page),
            "login": "duty-admin",
            "password": password,
            "repeat": password,
        }
        async with http.post(
            f"{front}/desk/invite/{code.group(1)}", data=fields, allow_redirects=False
        ) as response:
            assert response.status == 303, (await response.text())[:2000]
        async with http.get(f"{front}/desk/signin") as response:
            page = await response.text()
        fields = {"csrf": _csrf(page), "login": "duty-admin", "password": password}
        async with http.post(
            f"{front}/desk/signin", data=fields, allow_redirects=False
        ) as response:
            assert response.status in (302, 303), (await response.text())[:2000]
        cookie = "; ".join(f"{c.key}={c.value}" for c in http.cookie_jar)
        assert cookie, "no desk session cookie after setting the password"

        # The photo (GPS stripped at upload) is served by each worker on its own.
        served: list[bytes] = []
        for port in ports:
            async with ClientSession(
                headers={"Cookie": cookie}, timeout=ClientTimeout(total=30)
            ) as direct:
                url = f"http://127.0.0.1:{port}/desk/attachments/{attachment.id}?inline=1"
                async with direct.get(url) as response:
                    assert response.status == 200, (port, await response.text())
                    assert response.content_type == "image/jpeg"
                    served.append(await response.read())
                async with direct.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert response.status == 200
                    assert "complaintdesk_" in await response.text()
        assert served[0] == served[1] and len(served[0]) > 0
    for process in (first, second):
        assert process.returncode is not None
