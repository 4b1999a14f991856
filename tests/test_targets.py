"""Linking a typed complaint target to a department or staff member."""

from __future__ import annotations

import pytest

from models.actions import Actor, act
from models.entities import Complaint, Staff
from models.targets import DEFAULT_THRESHOLD, TargetMatch, match_target
from models.workflow import Action, Role
from tests.staff_world import ANSWERS, clock, file_complaint, inbox, last, make_world

DEPARTMENTS = [
    (1, "office", "办公室"),
    (2, "registry", "不动产登记中心"),
    (3, "tax", "税务窗口"),
    (4, "hall", "政务服务中心"),
    (5, "registry-accept", "不动产登记中心受理科"),
]
STAFF = [(10, "王芳"), (11, "李明"), (12, "Handler Wang"), (13, "张伟"), (14, "张敏")]


@pytest.mark.parametrize(
    ("kind", "text", "department_id", "staff_id"),
    [
        # Exact names, codes, full-width and spaced input.
        ("department", "税务窗口", 3, None),
        ("department", "TAX", 3, None),
        ("department", " 不动产登记中心 ", 2, None),
        ("staff", "王芳", None, 10),
        ("staff", "handler  wang", None, 12),
        # The name inside a longer description, or without its generic ending.
        ("department", "不动产登记中心3号窗口", 2, None),
        ("department", "不动产登记中心３号窗口", 2, None),
        ("department", "不动产登记", 2, None),
        ("department", "税务局", 3, None),
        # A sub-unit named in full is the sub-unit, not its parent.
        ("department", "不动产登记中心受理科", 5, None),
        # One mistyped character.
        ("department", "不动产等记中心", 2, None),
        # A staff member by name with a title, or by surname and title when only one has it.
        ("staff", "王芳科长", None, 10),
        ("staff", "王科员", None, 10),
        ("staff", "李副主任", None, 11),
        # A staff target naming the department too links both.
        ("staff", "不动产登记中心的王芳", 2, 10),
    ],
)
def test_links(kind: str, text: str, department_id: int | None, staff_id: int | None) -> None:
    found = match_target(kind, text, DEPARTMENTS, STAFF, DEFAULT_THRESHOLD)
    assert found is not None
    assert (found.department_id, found.staff_id) == (department_id, staff_id)
    assert DEFAULT_THRESHOLD <= found.score <= 100


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        # Nothing that names anyone.
        ("department", "其他"),
        ("staff", "3号窗口工作人员"),
        ("department", ""),
        ("department", "！？"),
        # A fragment or a shared generic ending is not a name.
        ("department", "登记"),
        ("department", "服务中心"),
        ("staff", "王方"),
        # Ambiguous: two departments named, or a surname two staff members share.
        ("department", "不动产登记中心和税务窗口"),
        ("staff", "张科员"),
        # A department target never links a person.
        ("department", "王芳"),
        # Vehicles and other targets never link, whatever the text.
        ("vehicle", "税务窗口"),
        ("other", "王芳"),
        (None, "税务窗口"),
    ],
)
def test_does_not_link(kind: str | None, text: str) -> None:
    assert match_target(kind, text, DEPARTMENTS, STAFF, DEFAULT_THRESHOLD) is None


def test_the_threshold_decides_a_near_miss() -> None:
    typo = "不动产等记中心"  # core "不动产等记" vs "不动产登记": 80
    assert match_target("department", typo, DEPARTMENTS, STAFF, 80) == TargetMatch(2, None, 80.0)
    assert match_target("department", typo, DEPARTMENTS, STAFF, 90) is None


async def test_a_submitted_complaint_about_a_department_masks_it(db_url: str) -> None:
    world = await make_world()  # the registry department is named "不动产登记窗口"
    wang = await Staff.create(
        name="王芳", role=Role.HANDLER, department=world.tax, telegram_chat_id="wf", language="en"
    )
    # A former colleague with the same surname no longer counts (only active staff are matched).
    await Staff.create(name="王强", role=Role.HANDLER, department=world.tax, active=False)
    about = {**ANSWERS, "target_kind": "department", "target_text": "不动产登记3号窗口"}
    complaint = await file_complaint(world, answers=about)
    stored = await Complaint.get(id=complaint.id)
    assert stored.target_department_id == world.registry.id  # type: ignore[attr-defined]
    assert stored.target_staff_id is None  # type: ignore[attr-defined]
    # The intake desk, unrelated to the target, sees who complained.
    assert "Complainant: 张三 138 1234 5678" in (await last("c1")).text
    clerk = Actor(Role.INTAKE_CLERK, world.clerk)
    await act(
        complaint.id,
        Action.ACCEPT,
        clerk,
        profile=world.profile,
        clock=clock(1),
        payload={"severity": "ordinary"},
    )
    await act(
        complaint.id,
        Action.ASSIGN,
        clerk,
        profile=world.profile,
        clock=clock(2),
        payload={"department_id": world.registry.id, "handler_id": world.handler.id},
    )
    # The handler works in the department complained about: the facts, but not who.
    text = (await last("w1")).text
    assert "Complainant: *** ***" in text
    assert "张三" not in text and "13812345678" not in text
    assert "Facts: 窗口工作人员态度恶劣，拒绝解释材料要求。" in text
    # A staff target by surname and title links the one staff member with that surname.
    about_wang = {**ANSWERS, "target_kind": "staff", "target_text": "王科员"}
    second = await Complaint.get(id=(await file_complaint(world, answers=about_wang)).id)
    assert second.target_staff_id == wang.id  # type: ignore[attr-defined]
    assert second.target_department_id is None  # type: ignore[attr-defined]
    assert await inbox("wf") == []  # nothing reached the target at submission
