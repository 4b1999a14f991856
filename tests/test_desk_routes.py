"""Every desk route × every role, as a table (as can_see is tested): the status each gets.

Forms are posted with version 1 (the case as filed); 303 is done, 409 refused by the rule book
or as stale, 400 an incomplete form.

A submitted complaint with a photo, nobody's department yet: the intake desk (clerks, and heads
while no department holds it) and supervisors/admins see it and its files; a handler of a
department sees the case masked and not its files. Staff pages are for admins, the audit log
for supervisors and admins. Anonymous visitors are sent to the sign-in page (GET) or refused
(POST).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from models.entities import Attachment, Staff
from models.workflow import Role
from tests.desk_support import csrf_in, desk_client, give_password, page, sign_in
from tests.staff_world import file_complaint as file_in_chat
from tests.staff_world import make_world

ROLES = ("anonymous", "intake_clerk", "handler", "department_head", "supervisor", "admin")

ACT = "/desk/cases/{case}/act"
NOTE = {"action": "add_note", "note": "n"}
ACCEPT = {"action": "accept", "severity": "ordinary"}
ROLE_CHANGE = {"what": "role", "staff_id": "{other}", "role": "handler"}

# (method, path, form) -> status for each of ROLES, in order.
TABLE: list[tuple[str, str, dict[str, str] | None, tuple[int, ...]]] = [
    ("GET", "/desk", None, (303, 303, 303, 303, 303, 303)),
    ("GET", "/desk/signin", None, (200, 303, 303, 303, 303, 303)),
    ("GET", "/desk/account", None, (303, 200, 200, 200, 200, 200)),
    ("GET", "/desk/cases", None, (303, 200, 200, 200, 200, 200)),
    ("GET", "/desk/cases?state=all&q=办税", None, (303, 200, 200, 200, 200, 200)),
    ("GET", "/desk/cases/{case}", None, (303, 200, 200, 200, 200, 200)),
    ("GET", "/desk/cases/999999", None, (303, 404, 404, 404, 404, 404)),
    ("GET", "/desk/attachments/{photo}", None, (303, 200, 404, 200, 200, 200)),
    ("GET", "/desk/departments", None, (303, 200, 200, 200, 200, 200)),
    ("GET", "/desk/profile", None, (303, 200, 200, 200, 200, 200)),
    ("GET", "/desk/staff", None, (303, 403, 403, 403, 403, 200)),
    ("GET", "/desk/audit", None, (303, 403, 403, 403, 200, 200)),
    ("GET", "/desk/invite/inv_unknown", None, (404, 404, 404, 404, 404, 404)),
    ("GET", "/desk/lang/en?next=/desk/cases", None, (303, 303, 303, 303, 303, 303)),
    ("POST", ACT, NOTE, (401, 303, 409, 303, 303, 303)),
    ("POST", ACT, ACCEPT, (401, 303, 409, 303, 303, 303)),
    # The same form again: the case has moved on (or the role may not), refused either way.
    ("POST", ACT, ACCEPT, (401, 409, 409, 409, 409, 409)),
    ("POST", ACT, {"action": "add_note"}, (401, 400, 409, 400, 400, 400)),
    ("POST", "/desk/staff", ROLE_CHANGE, (401, 403, 403, 403, 403, 303)),
    ("POST", "/desk/signout-everywhere", {}, (401, 303, 303, 303, 303, 303)),
]  # fmt: skip


async def _post(
    client: TestClient, path: str, form: dict[str, str], version: str, signed_in: bool
) -> int:
    token = csrf_in(await page(client, "/desk/account" if signed_in else "/desk/signin"))
    data = {"csrf": token, "version": version, **form}
    response = await client.post(path, data=data, allow_redirects=False)
    return response.status


@pytest.mark.parametrize("role", ROLES)
async def test_every_route_for_every_role(db_url: str, tmp_path: Path, role: str) -> None:
    world = await make_world()
    complaint = await file_in_chat(world)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff" + b"x" * 100)
    attachment = await Attachment.create(
        complaint=complaint, channel="telegram", sha256="1" * 64, stored_path=str(photo),
        mime_type="image/jpeg", file_name="photo.jpg",
    )  # fmt: skip
    people = {
        "intake_clerk": world.clerk,
        "handler": world.handler,
        "department_head": world.tax_head,
        "supervisor": world.supervisor,
        "admin": await Staff.create(name="Admin", role=Role.ADMIN),
    }
    other = world.head
    index = ROLES.index(role)
    async with desk_client(db_url, tmp_path) as client:
        if role != "anonymous":
            await give_password(people[role], role.replace("_", "-"))
            await sign_in(client, role.replace("_", "-"))
        got: list[tuple[str, str, int, int]] = []
        for method, template, form, expected in TABLE:
            path = template.format(case=complaint.id, photo=attachment.id)
            if method == "GET":
                response = await client.get(path, allow_redirects=False)
                status = response.status
            else:
                filled = {k: v.format(other=other.id) for k, v in (form or {}).items()}
                status = await _post(client, path, filled, "1", role != "anonymous")
            got.append((method, path, status, expected[index]))
        wrong = [(m, p, s, e) for m, p, s, e in got if s != e]
        assert not wrong, f"{role}: (method, path, got, expected) {wrong}"
