"""R6 延期 "同时向转办部门进行说明": on tax-service, an approved extension is explained to the
heads of the departments that transferred the case on, with its reason and new deadline; on a
profile without the rule they hear nothing."""

from __future__ import annotations

import pytest

from config.profiles import load_profile
from models.workflow import Action
from tests.profile_walk import Walk, alarm_context, texts_to  # noqa: F401  (fixture)
from tests.scheduler_support import local, make_org


@pytest.mark.parametrize(("name", "told"), [("tax-service", True), ("gov-window", False)])
async def test_an_extension_is_explained_to_the_transferring_department(
    db_url: str, name: str, told: bool
) -> None:
    profile = load_profile(name)
    walk = Walk(profile, await make_org())
    monday = local("2026-11-02T10:00")
    category = "service_quality" if name == "tax-service" else profile.citizen_categories()[0].id
    answers = {"taxpayer_kind": "organisation"} if name == "tax-service" else {}
    complaint = await walk.file(monday, category, **answers)
    complaint = await walk.accept(complaint, monday)
    complaint = await walk.act(
        complaint, Action.ASSIGN, "clerk", monday, department_id=walk.org.centre.id
    )
    complaint = await walk.act(
        complaint,
        Action.TRANSFER,
        "centre_head",
        local("2026-11-02T11:00"),
        department_id=walk.org.unit.id,
        handler_id=walk.org.handler.id,
        reason="属科室职责",
    )
    complaint = await walk.act(
        complaint,
        Action.ASSIGN,
        "unit_head",
        local("2026-11-02T11:10"),
        department_id=walk.org.unit.id,
        handler_id=walk.org.handler.id,
    )
    complaint = await walk.act(complaint, Action.ACKNOWLEDGE, "handler", local("2026-11-02T11:30"))
    before = len(await texts_to("centre_head"))
    complaint = await walk.extend(
        complaint, 5, "需调取外部门资料", local("2026-11-05T10:00"), local("2026-11-05T11:00")
    )
    new_texts = (await texts_to("centre_head"))[before:]
    explained = [t for t in new_texts if complaint.number in t and "需调取外部门资料" in t]
    assert bool(explained) is told, new_texts
    # the head who approved it and the handler hear of it on every profile, with the reason
    handler_texts = await texts_to("handler")
    assert any("需调取外部门资料" in t and "2026" in t for t in handler_texts[-2:]), handler_texts
