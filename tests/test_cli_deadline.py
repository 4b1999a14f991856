"""The `deadline` and `profiles` CLI commands, through a parser built as bot/cli.py builds it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli_profiles import register
from config.settings import get_settings
from scheduler.calendar import WorkingCalendar

provisional_2027 = not WorkingCalendar().is_official_year(2027)


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("CONFIG", "TIMEZONE", "HOLIDAY_OVERRIDE_FILE", "PROFILES_DIR", "PROFILE"):
        monkeypatch.delenv(f"COMPLAINTDESK_{name}", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="complaintdesk")
    sub = p.add_subparsers(dest="command")
    register(sub)
    return p


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    args = parser().parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def deadline(*extra: str) -> list[str]:
    return ["deadline", *extra]


def test_national_day_acceptance(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        deadline("--profile", "gov-window", "--stage", "acceptance", "--start", "2026-09-30T10:00"),
        capsys,
    )
    assert code == 0
    assert out.strip() == "2026-10-10T23:59:59+08:00"


def test_received_on_the_holiday(capsys: pytest.CaptureFixture[str]) -> None:
    argv = deadline("--profile", "gov-window", "--stage", "acceptance")
    code, out, _ = run([*argv, "--start", "2026-10-03T15:00:00+08:00"], capsys)
    assert (code, out.strip()) == (0, "2026-10-10T23:59:59+08:00")


def test_utc_start_counts_from_the_local_day(capsys: pytest.CaptureFixture[str]) -> None:
    # 16:30 UTC on Friday 9 Oct is 00:30 on Saturday 10 Oct in Shanghai, a 调休 working day
    code, out, _ = run(
        deadline(
            "--profile",
            "gov-window",
            "--stage",
            "resolution",
            "--category",
            "service_attitude",
            "--start",
            "2026-10-09T16:30:00Z",
        ),
        capsys,
    )
    assert (code, out.strip()) == (0, "2026-10-14T23:59:59+08:00")


def test_json_output_explains_the_count(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        deadline(
            "--profile",
            "tax-service",
            "--stage",
            "resolution",
            "--category",
            "service_conduct",
            "--start",
            "2026-02-13T11:00",
            "--json",
        ),
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    # 14 Feb (调休 Saturday), then the Spring Festival, then 24, 25, 26, 27 Feb
    assert data["due"] == "2026-02-27T23:59:59+08:00"
    assert data["due_utc"] == "2026-02-27T15:59:59.999999+00:00"
    assert data["provisional"] is False
    assert data["duration"] == {"amount": 5, "unit": "working_days", "text": "5 working days"}
    assert data["staff_notified_at"] == "2026-02-13T11:00:00+08:00"
    assert any("Spring Festival" in line for line in data["explanation"])
    assert any("调休" in line for line in data["explanation"])


@pytest.mark.skipif(not provisional_2027, reason="chinesecalendar now ships official 2027 data")
def test_year_end_is_flagged_provisional(capsys: pytest.CaptureFixture[str]) -> None:
    argv = deadline("--profile", "gov-window", "--stage", "acceptance", "--start", "2026-12-30")
    code, out, err = run(argv, capsys)
    assert (code, out.strip()) == (0, "2027-01-05T23:59:59+08:00")
    assert "provisional" in err
    code, out, _ = run([*argv, "--json"], capsys)
    assert json.loads(out)["provisional"] is True


def test_property_clock_deadlines_and_24_hour_duty(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--profile", "property", "--start", "2026-10-01T03:00", "--category", "equipment"]
    code, out, _ = run(deadline(*base, "--stage", "dispatch", "--json"), capsys)
    data = json.loads(out)
    assert data["due"] == "2026-10-01T03:05:00+08:00"
    assert data["staff_notified_at"] == "2026-10-01T03:00:00+08:00"  # 24-hour duty
    code, out, _ = run(deadline(*base, "--stage", "resolution", "--severity", "major"), capsys)
    assert out.strip() == "2026-10-01T15:00:00+08:00"
    sub = ["--profile", "property", "--start", "2026-10-01T03:00", "--category", "equipment/lift"]
    # R7g: the 24 hours are the feedback to the resident (first contact), not the resolution;
    # a minor complaint is answered within 3 days (R7f).
    code, out, _ = run(deadline(*sub, "--stage", "first_contact", "--json"), capsys)
    data = json.loads(out)
    assert (data["due"], data["severity"]) == ("2026-10-02T03:00:00+08:00", "minor")
    code, out, _ = run(deadline(*sub, "--stage", "resolution", "--json"), capsys)
    assert json.loads(out)["due"] == "2026-10-04T23:59:59+08:00"
    code, _, err = run(deadline(*sub[:-1], "equipment/roof", "--stage", "resolution"), capsys)
    assert code == 2 and "no subcategory 'roof'" in err
    code, out, err = run(deadline(*base, "--stage", "manager_notice"), capsys)
    assert code != 0
    assert "no manager_notice deadline" in err


def test_office_hours_delay_notification_not_the_count(capsys: pytest.CaptureFixture[str]) -> None:
    argv = deadline("--profile", "gov-window", "--stage", "acceptance", "--json")
    code, out, _ = run([*argv, "--start", "2026-09-30T22:00"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["staff_notified_at"] == "2026-10-08T09:00:00+08:00"
    assert data["due"] == "2026-10-10T23:59:59+08:00"


def test_pause_and_extension(capsys: pytest.CaptureFixture[str]) -> None:
    argv = deadline(
        "--profile",
        "tax-service",
        "--stage",
        "resolution",
        "--category",
        "service_conduct",
        "--start",
        "2026-10-12T10:00",
    )
    assert run(argv, capsys)[1].strip() == "2026-10-19T23:59:59+08:00"
    paused = [*argv, "--pause", "2026-10-13T15:00/2026-10-16T10:00"]
    assert run(paused, capsys)[1].strip() == "2026-10-21T23:59:59+08:00"
    extended = [*argv, "--extend"]
    assert run(extended, capsys)[1].strip() == "2026-11-02T23:59:59+08:00"
    code, _, err = run([*argv, "--pause", "2026-10-13"], capsys)
    assert code == 2 and "FROM/TO" in err


def test_extension_refused_when_the_profile_has_none(capsys: pytest.CaptureFixture[str]) -> None:
    argv = deadline("--profile", "property", "--stage", "dispatch", "--start", "2026-10-12")
    code, _, err = run([*argv, "--extend"], capsys)
    assert code == 2 and "no extension" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--category", "nosuch"], "no category 'nosuch'"),
        (["--severity", "huge"], "no severity 'huge'"),
        (["--start", "yesterday"], "not an ISO 8601"),
    ],
)
def test_bad_arguments(capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    argv = deadline("--profile", "gov-window", "--stage", "resolution", "--start", "2026-10-12")
    code, out, err = run([*argv, *extra], capsys)
    assert code == 2
    assert out == ""
    assert message in err


def test_unknown_profile_and_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        deadline("--profile", "nosuch", "--stage", "acceptance", "--start", "2026-10-12"), capsys
    )
    assert code == 1 and "no profile 'nosuch'" in err
    code, _, err = run(
        deadline("--profile", "gov-window", "--stage", "acceptance", "--start", "2003-06-01"),
        capsys,
    )
    assert code == 1 and "no holiday data for 2003" in err


def test_settings_time_zone_and_override_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = tmp_path / "overrides.toml"
    overrides.write_text("holidays = [2026-10-08]\n", encoding="utf-8")
    monkeypatch.setenv("COMPLAINTDESK_HOLIDAY_OVERRIDE_FILE", str(overrides))
    argv = deadline("--profile", "gov-window", "--stage", "acceptance", "--start", "2026-09-30")
    assert run(argv, capsys)[1].strip() == "2026-10-12T23:59:59+08:00"
    monkeypatch.setenv("COMPLAINTDESK_TIMEZONE", "UTC")
    monkeypatch.delenv("COMPLAINTDESK_HOLIDAY_OVERRIDE_FILE")
    get_settings.cache_clear()
    assert run(argv, capsys)[1].strip() == "2026-10-10T23:59:59+00:00"


def test_profile_defaults_to_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COMPLAINTDESK_PROFILE", "property")
    get_settings.cache_clear()
    code, out, _ = run(deadline("--stage", "dispatch", "--start", "2026-10-01T03:00"), capsys)
    assert (code, out.strip()) == (0, "2026-10-01T03:05:00+08:00")


# -- profiles -------------------------------------------------------------------------------


def test_profiles_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["profiles", "list"], capsys)
    assert code == 0
    lines = out.splitlines()
    for line in (
        "gov-window\t政务服务窗口投诉",
        "property\t物业服务中心投诉",
        "petition\t信访事项",
    ):
        assert line in lines
    assert len(lines) == 18 and not any(x.startswith(("base", "first-ask")) for x in lines)
    code, out, _ = run(["profiles", "list", "--all", "--lang", "en"], capsys)
    assert "base\tCommon complaint handling (abstract)" in out.splitlines()


def test_profiles_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["profiles", "show", "tax-service", "--lang", "en"], capsys)
    assert code == 0
    assert "resolution [category=service_conduct]: 5 working days" in out
    assert "extension: at most 1 × 10 working days, with approval, complainant told" in out
    assert "review_or_litigation" in out
    code, out, _ = run(["profiles", "show", "property", "--json"], capsys)
    data = json.loads(out)
    assert data["id"] == "property" and data["duty_24h"] is True
    assert data["deadlines"]["dispatch"][0]["amount"] == 5
    code, _, err = run(["profiles", "show", "nosuch"], capsys)
    assert code == 1 and "nosuch" in err


def test_profiles_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["profiles", "check"], capsys)
    assert code == 0
    assert "ok   base (base)" in out and "ok   property (property)" in out
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'id = "bad"\nextends = "base"\nname = { zh_CN = "坏" }\ndescription = { zh_CN = "坏" }\n'
        '[[categories]]\nid = "x"\nlabel = { zh_CN = "X" }\n'
        '[deadlines]\nresolution = [{ amount = 1, unit = "weeks" }]\n',
        encoding="utf-8",
    )
    code, out, err = run(["profiles", "check", "gov-window", str(bad)], capsys)
    assert code == 1
    assert "ok   gov-window" in out and f"FAIL {bad}" in out
    assert f"{bad}: deadlines.resolution[0].unit:" in err
    # the extra directory from the settings is checked too
    code, out, err = run(["profiles", "check", "--profiles-dir", str(tmp_path)], capsys)
    assert code == 1 and "FAIL bad" in out


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    p = parser()
    for argv in (
        ["deadline", "--help"],
        ["profiles", "--help"],
        ["profiles", "list", "--help"],
        ["profiles", "show", "--help"],
        ["profiles", "check", "--help"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            p.parse_args(argv)
        assert exit_info.value.code == 0
        assert "usage:" in capsys.readouterr().out
    sub_actions = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {c.dest: c.help for a in sub_actions for c in a._choices_actions}
    assert helps["deadline"] and helps["profiles"]


def test_profiles_requires_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["profiles"])
    assert exit_info.value.code == 2
