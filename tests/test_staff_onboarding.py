"""Staff onboarding (invites, redemption, disabling) and the department import."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from models.entities import Channel, Department, Staff
from models.staffing import (
    DepartmentImportError,
    DepartmentSpec,
    InviteRefusal,
    check_department_tree,
    create_invite,
    department_head,
    disable_staff,
    escalation_chain,
    escalation_heads,
    import_departments,
    invite_link,
    looks_like_invite,
    parse_departments,
    redeem_invite,
    staff_for_chat,
)
from models.workflow import Role

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


async def test_invite_and_redeem_binds_the_chat(db_url: str) -> None:
    await Department.create(code="office", name="办公室")
    invite = await create_invite(
        now=NOW, name="李四", role=Role.HANDLER, department_code="office", language="en"
    )
    assert looks_like_invite(invite.code) and len(invite.code) <= 64
    assert invite.expires_at == NOW + timedelta(days=7)
    assert invite_link("@cdbot", invite.code) == f"https://t.me/cdbot?start={invite.code}"
    staff = await redeem_invite(invite.code, "telegram", "1001", now=NOW + timedelta(hours=1))
    assert isinstance(staff, Staff)
    assert staff.telegram_chat_id == "1001" and staff.invite_expires_at is None
    assert (await staff_for_chat(Channel.TELEGRAM, "1001")).id == staff.id  # type: ignore[union-attr]
    assert await staff_for_chat(Channel.WECHAT, "1001") is None
    # The same code again, from any chat, is refused as used.
    assert await redeem_invite(invite.code, "telegram", "1001", now=NOW) == InviteRefusal.USED
    assert await redeem_invite(invite.code, "telegram", "2002", now=NOW) == InviteRefusal.USED


async def test_redeem_refusals(db_url: str) -> None:
    assert await redeem_invite("inv_nope", "telegram", "1", now=NOW) == InviteRefusal.UNKNOWN
    old = await create_invite(now=NOW - timedelta(days=8), name="A", role=Role.INTAKE_CLERK)
    assert await redeem_invite(old.code, "telegram", "1", now=NOW) == InviteRefusal.EXPIRED
    fresh = await create_invite(now=NOW, name="B", role=Role.HANDLER)
    assert await redeem_invite(fresh.code, "web", "1", now=NOW) == (
        InviteRefusal.UNSUPPORTED_CHANNEL
    )
    taken = await create_invite(now=NOW, name="C", role=Role.HANDLER)
    assert isinstance(await redeem_invite(taken.code, "wechat", "oX1", now=NOW), Staff)
    assert await redeem_invite(fresh.code, "wechat", "oX1", now=NOW) == InviteRefusal.CHAT_TAKEN
    # A disabled member's pending invite is void.
    await disable_staff(fresh.staff.id)
    assert await redeem_invite(fresh.code, "wechat", "oX2", now=NOW) == InviteRefusal.UNKNOWN
    # A re-invite of a disabled member reactivates them with a new code.
    again = await create_invite(now=NOW, staff_id=fresh.staff.id)
    assert again.code != fresh.code
    redeemed = await redeem_invite(again.code, "wechat", "oX2", now=NOW)
    assert isinstance(redeemed, Staff) and redeemed.active and redeemed.wechat_openid == "oX2"


async def test_disabled_staff_are_not_found_by_chat(db_url: str) -> None:
    invite = await create_invite(now=NOW, name="D", role=Role.HANDLER)
    await redeem_invite(invite.code, "telegram", "77", now=NOW)
    await disable_staff(invite.staff.id)
    assert await staff_for_chat("telegram", "77") is None
    with pytest.raises(LookupError):
        await disable_staff(9999)


async def test_invite_validation(db_url: str) -> None:
    with pytest.raises(LookupError, match="no department"):
        await create_invite(now=NOW, name="E", role=Role.HANDLER, department_code="nowhere")
    with pytest.raises(ValueError, match="not a staff role"):
        await create_invite(now=NOW, name="E", role=Role.COMPLAINANT)
    with pytest.raises(LookupError):
        await create_invite(now=NOW, staff_id=4242)


def test_looks_like_invite() -> None:
    assert looks_like_invite("inv_abc")
    assert not looks_like_invite("202611-0001")
    assert not looks_like_invite("")
    assert not looks_like_invite(None)


TOML = """
[[department]]
code = "office"
name = "办公室"
head = "王主任"

[[department]]
code = "service"
name = "政务服务科"
parent = "office"

[[department]]
code = "registry"
name = "不动产登记窗口"
parent = "service"
head = "李科长"
"""

CSV = "code,name,parent,head\noffice,办公室,,王主任\nservice,政务服务科,office,\n"


def test_parse_toml_and_csv() -> None:
    toml_specs = parse_departments(TOML, "toml")
    assert toml_specs[0] == DepartmentSpec("office", "办公室", None, "王主任")
    assert toml_specs[2] == DepartmentSpec("registry", "不动产登记窗口", "service", "李科长")
    assert parse_departments(CSV, "csv") == [
        DepartmentSpec("office", "办公室", None, "王主任"),
        DepartmentSpec("service", "政务服务科", "office", None),
    ]
    with pytest.raises(DepartmentImportError, match="row 1: code and name are required"):
        parse_departments("code,name\n,x\n", "csv")
    with pytest.raises(ValueError, match="unknown department file format"):
        parse_departments("", "xlsx")


def test_tree_checks() -> None:
    assert check_department_tree(parse_departments(TOML, "toml")) == []
    cycle = [
        DepartmentSpec("a", "A", "c"),
        DepartmentSpec("b", "B", "a"),
        DepartmentSpec("c", "C", "b"),
        DepartmentSpec("d", "D", "a"),
    ]
    assert check_department_tree(cycle) == ["the parent links form a cycle: a → c → b → a"]
    assert check_department_tree([DepartmentSpec("x", "X", "x")]) == [
        "the parent links form a cycle: x → x"
    ]
    assert check_department_tree([DepartmentSpec("x", "X", "ghost")]) == [
        "department 'x': unknown parent 'ghost'"
    ]
    assert check_department_tree([DepartmentSpec("x", "X"), DepartmentSpec("x", "Y")]) == [
        "department 'x' appears twice"
    ]
    # A cycle through departments already in the database.
    assert check_department_tree([DepartmentSpec("top", "T", "low")], {"low": "top"}) == [
        "the parent links form a cycle: low → top → low"
    ]


async def test_import_builds_the_escalation_chain(db_url: str) -> None:
    result = await import_departments(parse_departments(TOML, "toml"))
    assert (result.created, result.updated, result.heads_created) == (3, 0, 2)
    registry = await Department.get(code="registry")
    chain = await escalation_chain(registry.id)
    assert [d.code for d in chain] == ["registry", "service", "office"]
    heads = await escalation_heads(registry.id)
    assert [h.name for h in heads] == ["李科长", "王主任"]
    assert (await department_head(registry.id)).role == Role.DEPARTMENT_HEAD  # type: ignore[union-attr]
    # Re-import: renames and moves; an existing person becomes the head.
    await Staff.create(name="赵六", role=Role.HANDLER)
    again = await import_departments(
        [
            DepartmentSpec("office", "综合办公室"),
            DepartmentSpec("registry", "登记窗口", "office", "赵六"),
        ]
    )
    assert (again.created, again.updated, again.heads_created) == (0, 2, 0)
    chain = await escalation_chain(registry.id)
    assert [d.name for d in chain] == ["登记窗口", "综合办公室"]
    zhao = await Staff.get(name="赵六")
    assert zhao.role == Role.DEPARTMENT_HEAD and zhao.department_id == registry.id  # type: ignore[attr-defined]


async def test_import_refuses_a_cycle_and_writes_nothing(db_url: str) -> None:
    await import_departments(parse_departments(TOML, "toml"))
    with pytest.raises(DepartmentImportError) as refused:
        await import_departments(
            [DepartmentSpec("new", "新部门"), DepartmentSpec("office", "办公室", "registry")]
        )
    assert refused.value.problems == [
        "the parent links form a cycle: office → registry → service → office"
    ]
    assert not await Department.filter(code="new").exists()
    office = await Department.get(code="office")
    assert office.parent_id is None  # type: ignore[attr-defined]


def test_cli_import_invite_list_disable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite://{tmp_path / 'cli.sqlite3'}"
    departments = tmp_path / "departments.csv"
    departments.write_text(CSV, encoding="utf-8")
    assert main(["departments", "import", str(departments), "--db", url]) == 0
    assert "departments: 2 created, 0 updated; heads created: 1" in capsys.readouterr().out
    monkeypatch.setenv("COMPLAINTDESK_TELEGRAM_BOT_USERNAME", "complaint_bot")
    invite_args = ["--name", "李四", "--role", "handler", "--department", "service"]
    code = main(["staff", "invite", *invite_args, "--db", url])
    out = capsys.readouterr().out
    assert code == 0
    invite = next(line.split()[1] for line in out.splitlines() if line.startswith("code:"))
    assert looks_like_invite(invite)
    assert f"telegram: https://t.me/complaint_bot?start={invite}" in out
    assert main(["staff", "list", "--db", url]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split("\t")[:5] == ["1", "王主任", "department_head", "office", "active"]
    assert listing[1].split("\t")[:5] == ["2", "李四", "handler", "service", "active"]
    assert "invite pending until" in listing[1]
    assert main(["staff", "disable", "2", "--db", url]) == 0
    assert "staff #2 李四 disabled" in capsys.readouterr().out
    assert main(["staff", "disable", "99", "--db", url]) == 1
    bad = tmp_path / "cycle.toml"
    bad.write_text(
        '[[department]]\ncode="a"\nname="A"\nparent="b"\n'
        '[[department]]\ncode="b"\nname="B"\nparent="a"\n',
        encoding="utf-8",
    )
    assert main(["departments", "import", str(bad), "--db", url]) == 1
    assert "the parent links form a cycle: a → b → a" in capsys.readouterr().err
