"""The REST API under aiohttp's test client, on SQLite and PostgreSQL: every endpoint for every
role, without a token, with a revoked one and with the wrong scope; cursor paging;
idempotency keys; the generated OpenAPI document."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.attachments import store_attachment
from handlers.messages import FileRef
from handlers.staff import state_label
from models.actions import Actor, act
from models.api_tokens import (
    ApiIdempotency,
    ApiToken,
    create_token,
    hash_token,
    request_hash,
    revoke_token,
)
from models.entities import Attachment, Channel, Complaint, Event, Staff
from models.statistics import StatsQuery, compute_statistics, local_period
from models.workflow import Action, Role, State
from tests.desk_support import MovableNow, desk_client
from tests.staff_world import (
    CALENDAR,
    SHANGHAI,
    T0,
    World,
    clock,
    file_complaint,
    make_world,
)

ROLES = ("admin", "supervisor", "clerk", "head", "handler")
ALL = ("read", "act", "file")
API = "/api/v1"
ACCEPT = {"action": "accept", "severity": "ordinary"}
RECEIPT = "收据 2026-10-30 办税服务厅".encode()


class Org:
    """The staff world, an admin, a token per role and two complaints: `fresh` (submitted,
    at the intake desk) and `assigned` (to the registry window, Handler Wang leading)."""

    def __init__(self, world: World, admin: Staff) -> None:
        self.world = world
        self.admin = admin
        self.tokens: dict[str, str] = {}
        self.fresh: Complaint
        self.assigned: Complaint
        self.attachment: Attachment

    def staff(self, role: str) -> Staff:
        return self.admin if role == "admin" else getattr(self.world, role)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


async def make_org(tmp_path: Path) -> Org:
    world = await make_world("tax-service")
    admin = await Staff.create(
        name="Admin Ma", role=Role.ADMIN, department=world.office, language="en"
    )
    org = Org(world, admin)
    for role in ROLES:
        scopes = (*ALL, "admin") if role == "admin" else ALL
        made = await create_token(org.staff(role), f"{role} system", scopes, now=T0)
        org.tokens[role] = made.secret
    org.fresh = await file_complaint(world)
    org.assigned = await file_complaint(world)
    actor = Actor(Role.SUPERVISOR, world.supervisor)
    await act(org.assigned.id, Action.ACCEPT, actor, profile=world.profile, clock=clock(1))
    await act(
        org.assigned.id,
        Action.ASSIGN,
        actor,
        profile=world.profile,
        clock=clock(2),
        payload={"department_id": world.registry.id, "handler_id": world.handler.id},
    )
    await org.assigned.refresh_from_db()
    stored = await store_attachment(
        Channel.TELEGRAM,
        FileRef("doc-1", "receipt.txt", "text/plain", len(RECEIPT), RECEIPT),
        max_bytes=1024 * 1024,
    )
    await Attachment.filter(id=stored.id).update(complaint_id=org.assigned.id)
    org.attachment = stored
    return org


async def call(
    client: TestClient,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
) -> tuple[int, Any, Any]:
    response = await client.request(method, API + path, headers=headers or {}, json=body)
    if response.content_type in ("application/json", "application/problem+json"):
        data = await response.json(content_type=None)
    else:
        data = await response.read()
    return response.status, data, response


def endpoints(org: Org) -> list[tuple[str, str, str, Any]]:
    """(name, method, path, body) of every endpoint, on this organisation's cases."""
    fresh, assigned = org.fresh.id, org.assigned.id
    registration = {
        "channel": "phone",
        "fields": {
            "category": "service_conduct",
            "category.sub": "attitude",
            "taxpayer_kind": "natural_person",
            "target": "staff",
            "target.text": "3号窗口工作人员",
            "incident_time": "2026-10-30 10:00",
            "place": "办税服务厅",
            "facts": "窗口工作人员态度恶劣，拒绝解释材料要求。",
            "request_type": "apology",
            "name": "李四",
            "phone": "13900139000",
        },
    }
    return [
        ("me", "GET", "/me", None),
        ("list", "GET", "/complaints?state=all", None),
        ("get_fresh", "GET", f"/complaints/{fresh}", None),
        ("get_assigned", "GET", f"/complaints/{assigned}", None),
        ("events", "GET", f"/complaints/{assigned}/events", None),
        ("attachments", "GET", f"/complaints/{assigned}/attachments", None),
        ("download", "GET", f"/attachments/{org.attachment.id}", None),
        ("form", "GET", "/form", None),
        ("departments", "GET", "/departments", None),
        ("staff", "GET", "/staff", None),
        ("statistics", "GET", "/statistics", None),
        ("tokens", "GET", "/tokens", None),
        ("create", "POST", "/complaints", registration),
        ("accept", "POST", f"/complaints/{fresh}/actions", ACCEPT),
        ("acknowledge", "POST", f"/complaints/{assigned}/actions", {"action": "acknowledge"}),
    ]


# What each role gets from each endpoint: the case scope (intake desk, department, lead
# handler, everything) and the rule book (who may accept, acknowledge).
EXPECTED: dict[str, dict[str, int]] = {
    "me": dict.fromkeys(ROLES, 200),
    "list": dict.fromkeys(ROLES, 200),
    "get_fresh": {"admin": 200, "supervisor": 200, "clerk": 200, "head": 404, "handler": 404},
    "get_assigned": {"admin": 200, "supervisor": 200, "clerk": 404, "head": 200, "handler": 200},
    "events": {"admin": 200, "supervisor": 200, "clerk": 404, "head": 200, "handler": 200},
    "attachments": {"admin": 200, "supervisor": 200, "clerk": 404, "head": 200, "handler": 200},
    "download": {"admin": 200, "supervisor": 200, "clerk": 404, "head": 200, "handler": 200},
    "form": dict.fromkeys(ROLES, 200),
    "departments": dict.fromkeys(ROLES, 200),
    "staff": dict.fromkeys(ROLES, 200),
    # The desk's statistics page's rule (models.staffing.may_read_statistics).
    "statistics": {"admin": 200, "supervisor": 200, "clerk": 403, "head": 200, "handler": 403},
    "tokens": dict.fromkeys(ROLES, 200),
    "create": dict.fromkeys(ROLES, 201),
    "accept": {"admin": 200, "supervisor": 200, "clerk": 200, "head": 404, "handler": 404},
    # Case workers of the lead department acknowledge; the others are refused by the rule book.
    "acknowledge": {"admin": 409, "supervisor": 409, "clerk": 404, "head": 200, "handler": 200},
}
LISTED = {
    "admin": {"fresh", "assigned"},
    "supervisor": {"fresh", "assigned"},
    "clerk": {"fresh"},
    "head": {"assigned"},
    "handler": {"assigned"},
}


def test_the_matrix_calls_every_endpoint() -> None:
    """`endpoints` (which both role tests walk) names every route of the table."""
    from web.api.v1 import ROUTES

    class Ids:
        id = 7

    org = Org.__new__(Org)
    org.fresh = org.assigned = org.attachment = Ids()  # type: ignore[assignment]
    called = {(method, path.partition("?")[0]) for _n, method, path, _b in endpoints(org)}
    for route in ROUTES:
        concrete = re.sub(r"\{[a-z_]+\}", "7", route.path)
        assert (route.method, concrete) in called, route.operation_id


def counts(rows: list[dict[str, Any]]) -> dict[str | None, int]:
    return {r["key"]: r["count"] for r in rows}


@pytest.mark.parametrize("role", ROLES)
async def test_every_endpoint_for_every_role(db_url: str, tmp_path: Path, role: str) -> None:
    org = await make_org(tmp_path)
    async with desk_client(db_url, tmp_path, MovableNow(clock(3).now)) as client:
        for name, method, path, body in endpoints(org):
            status, data, response = await call(client, method, path, org.auth(role), body)
            assert status == EXPECTED[name][role], (name, role, status, data)
            if status >= 400:
                assert response.content_type == "application/problem+json"
                assert data["status"] == status and data["type"].startswith(API + "/problems/")
                continue
            if name == "list":
                numbers = {c["number"] for c in data["items"]}
                wanted = {getattr(org, k).number for k in LISTED[role]}
                assert wanted <= numbers and (numbers - wanted) <= set(), (role, numbers)
            if name == "me":
                assert data["staff"]["id"] == org.staff(role).id
            if name in ("get_fresh", "get_assigned"):
                case = org.fresh if name == "get_fresh" else org.assigned
                assert data["number"] == case.number and data["state"] == case.state
            if name == "attachments":
                assert [a["id"] for a in data["items"]] in ([org.attachment.id], [])
            if name == "download":
                assert data == RECEIPT
            if name == "create":
                assert data["state"] == "submitted"
                made = await Complaint.get(number=data["number"])
                assert made.channel == Channel.PHONE and made.contact_name == "李四"
                event = await Event.get(complaint_id=made.id, action="submit")
                assert event.actor_staff_id == org.staff(role).id  # type: ignore[attr-defined]
            if name == "accept":
                assert data["done"] == ["accept"] and data["complaint"]["state"] == "accepted"
                await org.fresh.refresh_from_db()
                assert org.fresh.state == State.ACCEPTED
            if name == "acknowledge":
                assert data["complaint"]["state"] == "in_progress"
        if role in ("admin", "supervisor"):
            stats = (await call(client, "GET", "/statistics", org.auth(role)))[1]
            assert stats["total"] == 3 and counts(stats["by_state"])["assigned"] == 1


async def test_statistics_are_the_statistics_pages(db_url: str, tmp_path: Path) -> None:
    """models.statistics as /desk/stats computes it: the same default period (this month so
    far), the same department filter, the same scope (a head counts their department's)."""
    org = await make_org(tmp_path)
    world = org.world
    taxed = await file_complaint(world)
    actor = Actor(Role.SUPERVISOR, world.supervisor)
    await act(taxed.id, Action.ACCEPT, actor, profile=world.profile, clock=clock(1))
    await act(
        taxed.id, Action.ASSIGN, actor, profile=world.profile, clock=clock(2),
        payload={"department_id": world.tax.id},
    )  # fmt: skip
    now = clock(3).now
    start, end = local_period(date(2026, 11, 1), date(2026, 11, 2), SHANGHAI)
    async with desk_client(db_url, tmp_path, MovableNow(now)) as client:
        for role, total in (("admin", 3), ("supervisor", 3), ("head", 1)):
            status, data, _ = await call(client, "GET", "/statistics", org.auth(role))
            assert status == 200, data
            expected = await compute_statistics(
                StatsQuery(start, end, now=now), staff=org.staff(role), profile=world.profile,
                calendar=CALENDAR, tz=SHANGHAI, lang="en",
            )  # fmt: skip
            assert (data["from"], data["to"], data["department"]) == (
                "2026-11-01",
                "2026-11-02",
                None,
            )
            assert data["total"] == expected.total == total
            assert counts(data["by_state"]) == {c.key: c.count for c in expected.by_state}
            assert counts(data["by_category"]) == {"service_conduct": total}
            assert [(d["id"], d["count"]) for d in data["by_department"]] == [
                (c.id, c.count) for c in expected.by_department
            ]
            assert [(m["month"], m["filed"]) for m in data["trend"]][-1] == ("2026-11", total)
            assert len(data["trend"]) == 12
        head = (await call(client, "GET", "/statistics", org.auth("head")))[1]
        assert [(d["id"], d["name"]) for d in head["by_department"]] == [
            (world.registry.id, world.registry.name)
        ]
        assert head["open"] == 1 and head["by_state"][0]["label"] == "Assigned"
        # The department filter: leading or co-handling; within the head's scope only.
        path = f"/statistics?department={world.tax.id}"
        supervisor = (await call(client, "GET", path, org.auth("supervisor")))[1]
        assert supervisor["total"] == 1 and supervisor["department"] == world.tax.id
        assert (await call(client, "GET", path, org.auth("head")))[1]["total"] == 0
        # The period: October holds none of them; its trend ends with October.
        path = "/statistics?from=2026-10-01&to=2026-10-31"
        october = (await call(client, "GET", path, org.auth("supervisor")))[1]
        assert october["total"] == 0 and october["trend"][-1]["month"] == "2026-10"
        # Labels in the language asked for; the keys stay the module's.
        chinese = await client.get(
            API + "/statistics", headers={**org.auth("supervisor"), "Accept-Language": "zh-CN"}
        )
        labels = {c["key"]: c["label"] for c in (await chinese.json())["by_state"]}
        assert labels["submitted"] == state_label("submitted", "zh_CN") != "submitted"
        # A wrong period is a problem, by parameter (the desk page names the same ones).
        for query, errors in (
            ("from=2026-11-02&to=2026-11-01", {"to": "before_from"}),
            ("from=2020-01-01&to=2026-11-02", {"from": "too_long"}),
            ("from=0001-01-01", {"from": "out_of_range"}),
            ("to=9999-12-31", {"to": "out_of_range"}),
        ):
            status, data, _ = await call(
                client, "GET", f"/statistics?{query}", org.auth("supervisor")
            )
            assert status == 400 and data["errors"] == errors, (query, data)
        for query in ("from=yesterday", "department=0", "colour=red", "submitted_from=2026-11-01"):
            status, data, _ = await call(
                client, "GET", f"/statistics?{query}", org.auth("supervisor")
            )
            assert status == 400 and data["code"] in ("invalid_parameter", "unknown_parameter")
        # Three weeks on, the cases not yet done are overdue, each at its earliest stage.
        moved = MovableNow(now)
        moved.advance(timedelta(days=20))
    async with desk_client(db_url, tmp_path, moved) as client:
        status, data, _ = await call(client, "GET", "/statistics", org.auth("supervisor"))
        expected = await compute_statistics(
            StatsQuery(start, end + timedelta(days=20), now=moved.at), staff=world.supervisor,
            profile=world.profile, calendar=CALENDAR, tz=SHANGHAI,
        )  # fmt: skip
        assert [(o["number"], o["stage"]) for o in data["overdue"]] == [
            (o.number, o.stage) for o in expected.overdue
        ]
        assert expected.overdue
        assert datetime.fromisoformat(data["overdue"][0]["due"]) == expected.overdue[0].due
        # Handlers and intake clerks do not open the statistics page: nor this.
        for role in ("handler", "clerk"):
            status, data, _ = await call(client, "GET", "/statistics", org.auth(role))
            assert status == 403 and data["code"] == "role_not_permitted"


async def test_refused_actions_leave_the_case_alone_and_say_why(
    db_url: str, tmp_path: Path
) -> None:
    org = await make_org(tmp_path)
    async with desk_client(db_url, tmp_path, MovableNow(clock(3).now)) as client:
        before = await Event.filter(complaint_id=org.assigned.id).count()
        status, data, _ = await call(
            client, "POST", f"/complaints/{org.assigned.id}/actions", org.auth("supervisor"),
            {"action": "acknowledge"},
        )  # fmt: skip
        assert status == 409 and data["code"] == "role_not_permitted", data
        assert data["detail"].startswith("Not done")
        assert await Event.filter(complaint_id=org.assigned.id).count() == before
        # A stale view: the version the client saw is older than the case.
        status, data, _ = await call(
            client, "POST", f"/complaints/{org.assigned.id}/actions", org.auth("handler"),
            {"action": "acknowledge", "version": 0},
        )  # fmt: skip
        assert status == 409 and data["code"] == "stale"
        # The desk's form rules: a transfer needs another department.
        status, data, _ = await call(
            client, "POST", f"/complaints/{org.fresh.id}/actions", org.auth("clerk"),
            {"action": "refuse"},
        )  # fmt: skip
        assert status == 422 and data["errors"] == {"reason": "required"}
        status, data, _ = await call(
            client, "POST", f"/complaints/{org.fresh.id}/actions", org.auth("clerk"),
            {"action": "refuse", "reason": "不属于受理范围", "guidance": "请向法院起诉"},
        )  # fmt: skip
        assert status == 200 and data["complaint"]["state"] == "refused"


async def test_assign_transfer_extend_resolve_through_the_api(db_url: str, tmp_path: Path) -> None:
    org = await make_org(tmp_path)
    world = org.world
    async with desk_client(db_url, tmp_path, MovableNow(clock(3).now)) as client:
        path = f"/complaints/{org.fresh.id}/actions"
        steps: list[tuple[str, dict[str, Any], str]] = [
            ("supervisor", ACCEPT, "accepted"),
            ("supervisor", {"action": "assign", "department_id": world.tax.id}, "assigned"),
            ("supervisor", {"action": "transfer", "department_id": world.registry.id}, "accepted"),
            ("head", {"action": "assign", "department_id": world.registry.id,
                      "handler_id": world.handler.id}, "assigned"),
        ]  # fmt: skip
        for role, body, state in steps:
            status, data, _ = await call(client, "POST", path, org.auth(role), body)
            assert status == 200, (body, data)
            assert data["complaint"]["state"] == state
        await org.fresh.refresh_from_db()
        assert org.fresh.lead_department_id == world.registry.id  # type: ignore[attr-defined]
        for role, body, state in [
            ("handler", {"action": "acknowledge"}, "in_progress"),
            ("handler", {"action": "request_material", "question": "请提供办税凭证"},
             "waiting_for_complainant"),
        ]:  # fmt: skip
            status, data, _ = await call(client, "POST", path, org.auth(role), body)
            assert status == 200 and data["complaint"]["state"] == state, data
        status, data, _ = await call(
            client, "POST", path, org.auth("handler"), {"action": "resume"}
        )
        assert status == 200 and data["complaint"]["state"] == "in_progress", data
        status, data, _ = await call(
            client, "POST", path, org.auth("handler"),
            {"action": "request_extension", "amount": 5, "reason": "需要调查"},
        )  # fmt: skip
        assert status == 200, data
        assert data["complaint"]["extension_request"]["amount"] == 5
        status, data, _ = await call(
            client, "POST", path, org.auth("head"), {"action": "approve_extension"}
        )
        assert status == 200, data
        status, data, _ = await call(
            client, "POST", path, org.auth("handler"),
            {"action": "resolve", "reply_text": "已核实并致歉。"},
        )  # fmt: skip
        assert status == 200, data
        assert data["done"] == ["resolve", "notify_result"]
        assert data["complaint"]["state"] == "replied"
        events = (
            await call(client, "GET", f"/complaints/{org.fresh.id}/events", org.auth("handler"))
        )[1]
        actions = [e["action"] for e in events["items"]]
        assert actions[-2:] == ["resolve", "notify_result"]
        assert events["items"][-2]["texts"]["reply_text"] == "已核实并致歉。"


async def test_no_token_revoked_token_and_wrong_scope(db_url: str, tmp_path: Path) -> None:
    org = await make_org(tmp_path)
    reader = await create_token(org.admin, "read only", ["read"], now=T0)
    actor = await create_token(org.admin, "act only", ["act"], now=T0)
    gone = await create_token(org.admin, "gone", ["read", "act", "file"], now=T0)
    await revoke_token(gone.token.id, org.admin, now=T0)
    scopes = {"GET": "read", "POST": None}
    async with desk_client(db_url, tmp_path, MovableNow(clock(3).now)) as client:
        for name, method, path, body in endpoints(org):
            for headers, wanted in (
                ({}, 401),
                ({"Authorization": "Bearer cdk_not-a-token"}, 401),
                ({"Authorization": f"Bearer {gone.secret}"}, 401),
                ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401),
            ):
                status, data, response = await call(client, method, path, headers, body)
                assert status == wanted, (name, headers, status)
                assert data["code"] in ("no_token", "bad_token")
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            wrong = actor if scopes[method] == "read" else reader
            status, data, _ = await call(
                client, method, path, {"Authorization": f"Bearer {wrong.secret}"}, body
            )
            assert status == 403 and data["code"] == "scope", (name, status, data)
        # A disabled staff member's tokens stop working too.
        await Staff.filter(id=org.world.handler.id).update(active=False)
        status, _data, _ = await call(client, "GET", "/me", org.auth("handler"))
        assert status == 401
        # Only admins with the admin scope list everyone's tokens.
        status, data, _ = await call(client, "GET", "/tokens?all=true", org.auth("admin"))
        assert status == 200 and len(data["items"]) == 8
        status, data, _ = await call(client, "GET", "/tokens?all=true", org.auth("supervisor"))
        assert status == 403
    # Tokens are kept hashed: the secret is nowhere in the table.
    rows = await ApiToken.all().values_list("token_hash", flat=True)
    assert hash_token(reader.secret) in rows and reader.secret not in rows
    used = await ApiToken.get(id=reader.token.id)
    assert used.last_used_at is not None


async def test_cursor_paging(db_url: str, tmp_path: Path) -> None:
    org = await make_org(tmp_path)
    for _ in range(5):
        await file_complaint(org.world)
    async with desk_client(db_url, tmp_path, MovableNow(clock(3).now)) as client:
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            query = "?state=all&limit=3" + (f"&cursor={cursor}" if cursor else "")
            status, data, _ = await call(client, "GET", "/complaints" + query, org.auth("admin"))
            assert status == 200 and len(data["items"]) <= 3
            assert data["total"] == 7
            seen += [c["id"] for c in data["items"]]
            pages += 1
            cursor = data["next_cursor"]
            if cursor is None:
                break
        assert pages == 3 and len(seen) == 7 and len(set(seen)) == 7
        for bad in ("?limit=101", "?limit=0", "?cursor=%%%", "?cursor=bm90LWEtY3Vyc29y",
                    "?state=nonsense", "?colour=red"):  # fmt: skip
            status, data, _ = await call(client, "GET", "/complaints" + bad, org.auth("admin"))
            assert status == 400, (bad, data)
        events = []
        cursor = None
        while True:
            query = "?limit=1" + (f"&cursor={cursor}" if cursor else "")
            path = f"/complaints/{org.assigned.id}/events" + query
            status, data, _ = await call(client, "GET", path, org.auth("admin"))
            assert status == 200
            events += [e["action"] for e in data["items"]]
            cursor = data["next_cursor"]
            if cursor is None:
                break
        # The fixture files the same complainant's similar complaints: linked as a repeat.
        assert [e for e in events if e != "link_repeat"] == ["submit", "accept", "assign"]


async def test_idempotency_keys(db_url: str, tmp_path: Path) -> None:
    org = await make_org(tmp_path)
    async with desk_client(db_url, tmp_path, MovableNow(clock(3).now)) as client:
        _name, method, path, body = next(e for e in endpoints(org) if e[0] == "create")
        headers = {**org.auth("clerk"), "Idempotency-Key": "filing-1"}
        first = await call(client, method, path, headers, body)
        again = await call(client, method, path, headers, body)
        assert first[0] == again[0] == 201
        assert first[1] == again[1]
        assert again[2].headers["Idempotent-Replayed"] == "true"
        assert await Complaint.filter(contact_name="李四").count() == 1
        changed = {**body, "channel": "visit"}
        status, data, _ = await call(client, method, path, headers, changed)
        assert status == 422 and data["code"] == "idempotency_key_reused"
        # Keys belong to a token: another token's same key is another request.
        other = {**org.auth("supervisor"), "Idempotency-Key": "filing-1"}
        assert (await call(client, method, path, other, body))[0] == 201
        assert await Complaint.filter(contact_name="李四").count() == 2
        # An action with a key is carried out once.
        act_headers = {**org.auth("clerk"), "Idempotency-Key": "accept-1"}
        act_path = f"/complaints/{org.fresh.id}/actions"
        one = await call(client, "POST", act_path, act_headers, ACCEPT)
        two = await call(client, "POST", act_path, act_headers, ACCEPT)
        assert one[0] == two[0] == 200 and one[1] == two[1]
        assert await Event.filter(complaint_id=org.fresh.id, action="accept").count() == 1
        assert await ApiIdempotency.exclude(key="busy").count() == 3
        # While the first request with a key runs, a second one waits its turn (409).
        token = await ApiToken.get(token_hash=hash_token(org.tokens["clerk"]))
        await ApiIdempotency.create(
            token=token, key="busy", request_hash="-", status=0, content_type="", body="",
            created_at=clock(3).now,
        )  # fmt: skip
        busy = {**org.auth("clerk"), "Idempotency-Key": "busy"}
        status, data, _ = await call(client, "POST", act_path, busy, ACCEPT)
        assert status == 422  # another request's key (its fingerprint differs)
        await ApiIdempotency.filter(key="busy").update(
            request_hash=request_hash("POST", API + act_path, json.dumps(ACCEPT).encode())
        )
        status, data, _ = await call(client, "POST", act_path, busy, ACCEPT)
        assert status == 409 and data["code"] == "idempotency_key_in_use", data
        bad = {**org.auth("clerk"), "Idempotency-Key": "x" * 201}
        assert (await call(client, "POST", act_path, bad, ACCEPT))[0] == 400


async def test_problems_for_bodies_paths_and_unknown_routes(db_url: str, tmp_path: Path) -> None:
    org = await make_org(tmp_path)
    async with desk_client(db_url, tmp_path, MovableNow(clock(3).now)) as client:
        auth = org.auth("admin")
        response = await client.post(
            API + "/complaints",
            data=b"{not json",
            headers={**auth, "Content-Type": "application/json"},
        )
        assert response.status == 400
        assert response.content_type == "application/problem+json"
        response = await client.post(API + "/complaints", data=b"x=1", headers=auth)
        assert response.status == 415
        status, data, _ = await call(client, "POST", "/complaints", auth, {"channel": "fax"})
        assert status == 422 and "channel" in data["errors"]
        status, data, _ = await call(
            client, "POST", "/complaints", auth,
            {"channel": "phone", "screening": "review_or_litigation"},
        )  # fmt: skip
        assert status == 422 and data["code"] == "out_of_scope" and data["detail"]
        status, data, _ = await call(client, "POST", "/complaints", auth, {"channel": "phone"})
        assert status == 422 and data["code"] == "invalid" and "facts" in data["errors"]
        for path in ("/complaints/abc", "/complaints/999999", "/nowhere"):
            status, data, _ = await call(client, "GET", path, auth)
            assert status == 404 and data["status"] == 404
        status, data, response = await call(client, "DELETE", "/complaints", auth)
        assert status == 405 and data["code"] == "method_not_allowed"


async def test_identity_views_through_the_api_are_audited(db_url: str, tmp_path: Path) -> None:
    org = await make_org(tmp_path)
    async with desk_client(db_url, tmp_path, MovableNow(clock(3).now)) as client:
        status, data, _ = await call(
            client, "GET", f"/complaints/{org.fresh.id}", org.auth("clerk")
        )
        assert status == 200 and data["complainant_name"] == "张三"
    seen = await Event.filter(complaint_id=org.fresh.id, action="viewed_identity")
    assert [e.actor_staff_id for e in seen if e.payload["via"] == "api"] == [org.world.clerk.id]  # type: ignore[attr-defined]


async def test_openapi_document_is_generated_and_valid_3_1(db_url: str, tmp_path: Path) -> None:
    from openapi_spec_validator import validate

    from web.api.v1 import ROUTES

    async with desk_client(db_url, tmp_path) as client:
        response = await client.get(API + "/openapi.json")
        assert response.status == 200
        document = await response.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert operations == {(r.method, API + r.path) for r in ROUTES}
    schemas = document["components"]["schemas"]
    assert {"Complaint", "ComplaintPage", "ActionRequest", "Problem"} <= set(schemas)
    actions = schemas["ActionRequest"]["properties"]["action"]["enum"]
    assert {"accept", "refuse", "assign", "transfer", "request_material", "request_extension",
            "resolve", "issue_written_reply"} <= set(actions)  # fmt: skip
