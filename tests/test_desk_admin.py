"""Staff, departments, the profile and the audit log in the browser desk."""

from __future__ import annotations

import re
from pathlib import Path

from models.desk_auth import DeskSession
from models.entities import Staff
from models.workflow import Role
from tests.desk_support import (
    PASSWORD,
    desk_client,
    form_post,
    give_password,
    page,
    sign_in,
)
from tests.staff_world import file_complaint as file_in_chat
from tests.staff_world import make_world


async def test_an_admin_invites_changes_a_role_and_disables(db_url: str, tmp_path: Path) -> None:
    world = await make_world()
    admin = await Staff.create(name="Admin", role=Role.ADMIN)
    await give_password(admin, "admin")
    async with desk_client(db_url, tmp_path) as client, desk_client(db_url, tmp_path) as new:
        await sign_in(client, "admin")
        response = await form_post(
            client, "/desk/staff",
            {"what": "invite", "name": "新人小周", "role": "handler",
             "department_id": str(world.tax.id)},
            status=200,
        )  # fmt: skip
        html = await response.text()
        link = re.search(r"http://[^<\s]+/desk/invite/(inv_[A-Za-z0-9_-]+)", html)
        assert link, html
        # The newcomer opens the link, sets a password and signs in.
        await form_post(
            new, f"/desk/invite/{link.group(1)}",
            {"login": "zhou", "password": PASSWORD, "repeat": PASSWORD},
        )  # fmt: skip
        await sign_in(new, "zhou")
        zhou = await Staff.get(name="新人小周")
        assert zhou.role == Role.HANDLER and zhou.department_id == world.tax.id  # type: ignore[attr-defined]
        await form_post(
            client, "/desk/staff",
            {"what": "role", "staff_id": str(zhou.id), "role": "department_head",
             "department_id": str(world.tax.id)},
        )  # fmt: skip
        assert (await Staff.get(id=zhou.id)).role == Role.DEPARTMENT_HEAD
        response = await form_post(
            client, "/desk/staff", {"what": "role", "staff_id": str(zhou.id), "role": "king"},
            status=400,
        )  # fmt: skip
        assert "king" in await response.text()
        await form_post(client, "/desk/staff", {"what": "disable", "staff_id": str(zhou.id)})
        assert not (await Staff.get(id=zhou.id)).active
        assert not await DeskSession.filter(staff_id=zhou.id).exists()
        await page(new, "/desk/cases", status=303)  # signed out with the account
        response = await form_post(
            client, "/desk/staff", {"what": "disable", "staff_id": str(admin.id)}, status=400
        )
        assert (await Staff.get(id=admin.id)).active


async def test_departments_profile_and_audit_pages(db_url: str, tmp_path: Path) -> None:
    world = await make_world()
    complaint = await file_in_chat(world)
    await give_password(world.clerk, "clerk")
    await give_password(world.supervisor, "sun")
    async with desk_client(db_url, tmp_path) as client:
        await sign_in(client, "clerk")
        await page(client, f"/desk/cases/{complaint.id}")  # an unmasked view, audited
        html = await page(client, "/desk/departments")
        assert "不动产登记窗口 → 办公室" in html and "Head Li" in html
        html = await page(client, "/desk/profile")
        assert "tax-service" in html and "一般" in html
        await page(client, "/desk/audit", status=403)
    async with desk_client(db_url, tmp_path) as client:
        await sign_in(client, "sun")
        html = await page(client, "/desk/audit")
        assert "Clerk Chen" in html and "查看了投诉人的姓名, 电话" in html
        assert complaint.number in html and "desk_case_page" in html
        html = await page(client, "/desk/audit?kind=actions")
        assert "查看了投诉人的" not in html and complaint.number in html
        html = await page(client, f"/desk/audit?kind=identity&staff={world.handler.id}")
        assert "暂无记录" in html
