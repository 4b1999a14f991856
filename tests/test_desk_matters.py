"""Repeats and mass matters on the browser desk and in the API: the case page's "repeat of"
link and group, the list's marks and filters, staff linking by hand, the supervisor's group
page (confirm, decide), refusals for other roles, and the API's `repeat_of` and `group`."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from models.actions import submit_complaint
from models.api_tokens import ALL_SCOPES, create_token
from models.entities import Channel, Complaint, Staff
from models.matters import GroupStatus, MatterGroup, RepeatLink
from models.workflow import State
from scheduler.matters import propose_mass_matters
from tests.desk_support import desk_client, form_post, give_password, page, sign_in
from tests.scheduler_support import CONTEXT
from tests.staff_world import ANSWERS, T0, World, clock, make_world

AGAIN = "上次投诉窗口工作人员态度恶劣的事还没有答复，今天去办理仍然拒绝解释材料要求。"
LIFT = [
    "办税服务厅的叫号机坏了三天，排队的人没有号，秩序很乱。",
    "办税服务厅叫号机坏了好几天，没有号排队很乱，等了两个小时。",
    "叫号机又坏了，办税服务厅排队没有号，乱成一团，好几天了。",
]


async def _file(world: World, external_id: str, hours: float, **answers: object) -> Complaint:
    return await submit_complaint(
        profile=world.profile,
        channel=Channel.WEB if external_id.startswith("web") else Channel.TELEGRAM,
        external_id=external_id,
        chat_id=external_id,
        answers={**ANSWERS, **answers},
        clock=clock(hours),
    )


async def _world() -> tuple[World, Complaint, Complaint, list[Complaint]]:
    world = await make_world()
    first = await _file(world, "42", 0)
    # The same person (by phone) from the web chat, a day later: a repeat.
    again = await _file(world, "web-session-1", 24, facts=AGAIN)
    mass = [
        await _file(
            world, f"9{i}", 30 + i, facts=text, phone=f"+861390000000{i}", name=f"住户{i}",
            target_text="办税服务厅叫号机", place_text="市民中心办税服务厅",
        )
        for i, text in enumerate(LIFT)
    ]  # fmt: skip
    return world, first, again, mass


async def test_the_desk_shows_repeats_and_a_group_a_supervisor_decides(
    db_url: str, tmp_path: Path
) -> None:
    world, first, again, mass = await _world()
    assert (await RepeatLink.get(complaint_id=again.id)).repeat_of_id == first.id  # type: ignore[attr-defined]
    [group_id] = await propose_mass_matters(T0 + timedelta(days=2), profile=world.profile,
                                            context=CONTEXT)  # fmt: skip
    world.supervisor.language = "zh_CN"
    await world.supervisor.save()
    await give_password(world.clerk, "clerk")
    await give_password(world.supervisor, "sun")
    async with desk_client(db_url, tmp_path) as clerk, desk_client(db_url, tmp_path) as sun:
        await sign_in(clerk, "clerk")
        await sign_in(sun, "sun")
        html = await page(sun, f"/desk/cases/{again.id}")
        # 重复投诉: 见 <the earlier number>, a link to it.
        assert re.search(
            rf'重复投诉</dt><dd class="repeat">见 <a href="/desk/cases/{first.id}">'
            rf"{re.escape(first.number)}</a>",
            html,
        ), html
        html = await page(sun, f"/desk/cases/{mass[0].id}")
        assert f'href="/desk/groups/{group_id}"' in html and "待确认" in html
        for member in mass:
            assert member.number in html
        # The list marks both and filters each.
        listing = await page(clerk, "/desk/cases?repeats=1")
        assert again.number in listing and mass[0].number not in listing
        assert f"重复 {first.number}" in listing
        listing = await page(clerk, "/desk/cases?grouped=1")
        assert all(m.number in listing for m in mass) and again.number not in listing
        # Only supervisors and admins open the groups or act on them.
        await page(clerk, "/desk/groups", status=403)
        await form_post(
            clerk, f"/desk/groups/{group_id}/act", {"action": "confirm"},
            csrf_from="/desk/cases", status=403,
        )  # fmt: skip
        assert (await MatterGroup.get(id=group_id)).status == GroupStatus.PROPOSED
        listing = await page(sun, "/desk/groups")
        assert f"/desk/groups/{group_id}" in listing and mass[1].number in listing
        await form_post(sun, f"/desk/groups/{group_id}/act", {"action": "confirm"},
                        csrf_from=f"/desk/groups/{group_id}")  # fmt: skip
        assert (await MatterGroup.get(id=group_id)).status == GroupStatus.CONFIRMED
        decision = "叫号机已于今日修复，并增设人工引导。"
        response = await form_post(
            sun, f"/desk/groups/{group_id}/act", {"action": "decide", "decision_text": decision},
            csrf_from=f"/desk/groups/{group_id}", status=200,
        )  # fmt: skip
        assert "已解决 3 件" in await response.text()
        for member in mass:
            stored = await Complaint.get(id=member.id)
            assert stored.state == State.REPLIED and stored.reply_text == decision


async def test_staff_link_and_unlink_on_the_case_page(db_url: str, tmp_path: Path) -> None:
    world, first, _again, mass = await _world()
    await give_password(world.clerk, "clerk")
    async with desk_client(db_url, tmp_path) as clerk:
        await sign_in(clerk, "clerk")
        path = f"/desk/cases/{mass[0].id}"
        await form_post(clerk, f"{path}/repeat", {"action": "link_repeat",
                        "repeat_of": first.number}, csrf_from=path)  # fmt: skip
        link = await RepeatLink.get(complaint_id=mass[0].id)
        assert link.repeat_of_id == first.id and str(link.source) == "staff"  # type: ignore[attr-defined]
        assert "（工作人员标记）" in await page(clerk, path)
        # An unknown number is refused, saying why.
        unknown = {"action": "link_repeat", "repeat_of": "209901-9999"}
        response = await form_post(clerk, f"{path}/repeat", unknown, csrf_from=path, status=409)
        assert "209901-9999" in await response.text()
        await form_post(clerk, f"{path}/repeat", {"action": "unlink_repeat"}, csrf_from=path)
        assert not await RepeatLink.filter(complaint_id=mass[0].id).exists()


async def test_the_api_carries_repeat_of_and_group(db_url: str, tmp_path: Path) -> None:
    world, first, again, mass = await _world()
    [group_id] = await propose_mass_matters(
        T0 + timedelta(days=2), profile=world.profile, context=CONTEXT
    )
    admin = await Staff.create(name="Admin Ma", role="admin", language="en")
    token = (await create_token(admin, "reports", ALL_SCOPES, now=T0)).secret
    auth = {"Authorization": f"Bearer {token}"}
    async with desk_client(db_url, tmp_path) as client:
        body = await (await client.get(f"/api/v1/complaints/{again.id}", headers=auth)).json()
        assert body["repeat_of"] == first.number and body["group"] is None
        body = await (await client.get(f"/api/v1/complaints/{mass[1].id}", headers=auth)).json()
        assert body["group"] == {"id": group_id, "status": "proposed", "size": 3}
        assert body["repeat_of"] is None
        listing = await (await client.get("/api/v1/complaints", headers=auth)).json()
        rows = {row["number"]: row for row in listing["items"]}
        assert rows[again.number]["repeat_of"] == first.number
        assert rows[mass[2].number]["group_id"] == group_id
        schema = await (await client.get("/api/v1/openapi.json")).json()
        fields = schema["components"]["schemas"]["Complaint"]["properties"]
        assert {"repeat_of", "group"} <= set(fields)
