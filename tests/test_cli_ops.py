"""The CLI as an operator meets it: fast help, one-line errors, quiet pipes, explained empties."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from openpyxl import load_workbook

ROOT = Path(__file__).resolve().parent.parent
LIMIT_SECONDS = 180  # a hang guard, not a measurement


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env.update(PYTHONPATH=str(ROOT), **settings)
    return env


def cli(
    *args: str, cwd: Path, stdout: int | None = subprocess.PIPE, **settings: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        env=clean_env(**settings),
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=LIMIT_SECONDS,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


HEAVY = ("aiohttp", "tortoise", "telegram", "wechatpy", "pydantic_settings", "apscheduler")
LOADED = """
import json, sys
from bot.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = %r
print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
"""


def loaded_after(*args: str, cwd: Path) -> list[str]:
    run = subprocess.run(
        [sys.executable, "-c", LOADED % (HEAVY,), *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=LIMIT_SECONDS,
    )
    return list(json.loads(run.stderr.strip().splitlines()[-1]))


def test_help_imports_none_of_the_service(tmp_path: Path) -> None:
    assert loaded_after("--help", cwd=tmp_path) == []
    # A sub-command's help loads that command's module only.
    assert "telegram" not in loaded_after("staff", "--help", cwd=tmp_path)
    listing = cli("--help", cwd=tmp_path)
    assert listing.returncode == 0
    for command in ("migrate", "config", "attachments", "run", "staff", "jobs", "deadline"):
        assert f"    {command}" in listing.stdout


def test_a_bad_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    run = cli("staff", "list", cwd=tmp_path, COMPLAINTDESK_PORT="eighty")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith("complaintdesk: setting COMPLAINTDESK_PORT:")
    config = tmp_path / "broken.toml"
    config.write_text("language = 'fr'\n")
    run = cli("migrate", cwd=tmp_path, COMPLAINTDESK_CONFIG=str(config))
    assert run.returncode == 2
    assert run.stderr.startswith("complaintdesk: setting COMPLAINTDESK_LANGUAGE: unknown language")


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgres://desk:s3cret@127.0.0.1:{free_port()}/complaints"
    run = cli("staff", "list", cwd=tmp_path, COMPLAINTDESK_DATABASE_URL=url)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith(
        f"complaintdesk: database COMPLAINTDESK_DATABASE_URL={url.replace('s3cret', '***')} "
        "is unreachable:"
    )
    missing = cli(
        "departments",
        "list",
        cwd=tmp_path,
        COMPLAINTDESK_DATABASE_URL=f"sqlite://{tmp_path / 'no' / 'such' / 'dir.sqlite3'}",
    )
    assert missing.returncode == 1 and "no directory" in missing.stderr


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited
    try:
        run = cli("config", cwd=tmp_path, stdout=write_end)
    finally:
        os.close(write_end)
    assert run.returncode == 0 and run.stderr == ""


def test_config_shows_effective_settings_with_secrets_masked(tmp_path: Path) -> None:
    token = "123456789:AAE-secret-telegram-token-value"
    config = tmp_path / "complaintdesk.toml"
    config.write_text('profile = "property"\nwechat_aes_key = "k" \n')
    run = cli(
        "config",
        cwd=tmp_path,
        COMPLAINTDESK_CONFIG=str(config),
        COMPLAINTDESK_TELEGRAM_TOKEN=token,
        COMPLAINTDESK_DATABASE_URL="postgres://desk:pw-123@db:5432/complaints",
    )
    assert run.returncode == 0, run.stderr
    assert token not in run.stdout and "pw-123" not in run.stdout
    lines = {line.split()[0]: line for line in run.stdout.splitlines() if line[:1].isalpha()}
    assert "1234…***" in lines["telegram_token"] and "(environment)" in lines["telegram_token"]
    assert "postgres://desk:***@db:5432/complaints" in lines["database_url"]
    assert lines["profile"].split()[1:] == ["property", "(config", "file)"]
    assert lines["wechat_aes_key"].split()[1:] == ["***", "(config", "file)"]
    assert lines["timezone"].split()[1:] == ["Asia/Shanghai", "(default)"]
    as_json = json.loads(cli("config", "--json", cwd=tmp_path).stdout)
    assert as_json["attachment_storage"] == "database" and as_json["telegram_token"] is None


def test_empty_lists_say_what_to_do(tmp_path: Path) -> None:
    db = f"sqlite://{tmp_path / 'empty.sqlite3'}"
    staff = cli("staff", "list", cwd=tmp_path, COMPLAINTDESK_DATABASE_URL=db)
    assert staff.returncode == 0 and staff.stdout == ""
    assert staff.stderr.startswith("no staff yet: invite someone with `complaintdesk staff invite")
    departments = cli("departments", "list", cwd=tmp_path, COMPLAINTDESK_DATABASE_URL=db)
    assert departments.stderr.startswith("no departments yet: import them")


def test_a_report_with_no_recipients_is_explained_and_out_writes_it(tmp_path: Path) -> None:
    db = f"sqlite://{tmp_path / 'report.sqlite3'}"
    out = tmp_path / "week.xlsx"
    run = cli(
        "jobs",
        "report",
        "weekly",
        "--at",
        "2026-11-16T09:00",
        "--out",
        str(out),
        "--language",
        "en",
        cwd=tmp_path,
        COMPLAINTDESK_DATABASE_URL=db,
    )
    assert run.returncode == 0, run.stderr
    assert f"2026-W46: workbook written to {out}" in run.stdout
    assert "2026-W46: nobody to send it to — no active supervisor or admin" in run.stdout
    book = load_workbook(out)
    assert book.active["A1"].value == "Weekly complaint report 2026-W46"
    plain = cli(
        "jobs",
        "report",
        "monthly",
        "--at",
        "2026-12-01T09:00",
        cwd=tmp_path,
        COMPLAINTDESK_DATABASE_URL=db,
    )
    assert "2026-11：没有可发送的对象" in plain.stdout
    assert "用 --out 文件名 仍可写出报表" in plain.stdout


def test_run_on_a_taken_port_stops_before_touching_the_database(tmp_path: Path) -> None:
    db = tmp_path / "second.sqlite3"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = cli(
            "run", "--port", str(port), cwd=tmp_path, COMPLAINTDESK_DATABASE_URL=f"sqlite://{db}"
        )
    assert run.returncode == 1
    assert run.stderr.startswith(f"complaintdesk: cannot listen on 127.0.0.1:{port}:")
    assert "Traceback" not in run.stderr
    assert not db.exists()  # nothing migrated, nothing swept
