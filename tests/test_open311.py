"""Open311 GeoReport v2 at /open311/v2, on SQLite and PostgreSQL: the answers have the fields
of the spec's own examples (wiki.open311.org/GeoReport_v2), in JSON and XML; filing needs an
api_key with the file scope and goes through the desk's record path; following a number shows
its status. Then an Open311 client library from PyPI (georeport) follows a complaint filed
on a live server."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from models.actions import Actor, act
from models.api_tokens import create_token
from models.entities import Complaint, Event
from models.workflow import Action, Role, State
from tests.desk_support import MovableNow, desk_client
from tests.staff_world import T0, World, clock, make_world

V2 = "/open311/v2"

# The spec's examples (GeoReport v2, "Sample Response" of each method).
SERVICES_EXAMPLE = [
    {
        "service_code": "001",
        "service_name": "Cans left out 24x7",
        "description": "Garbage or recycling cans that have been left out for more than 24 "
        "hours after collection. Violators will be cited.",
        "metadata": True,
        "type": "realtime",
        "keywords": "lorem, ipsum, dolor",
        "group": "sanitation",
    }
]
DEFINITION_EXAMPLE = {
    "service_code": "DMV66",
    "attributes": [
        {
            "variable": True,
            "code": "WHISHETN",
            "datatype": "singlevaluelist",
            "required": True,
            "datatype_description": None,
            "order": 1,
            "description": "What is the ticket/tag/DL number?",
            "values": [{"key": 123, "name": "Ford"}, {"key": 124, "name": "Chrysler"}],
        }
    ],
}
POST_EXAMPLE = [
    {
        "service_request_id": 293944,
        "service_notice": "The City will inspect and require the responsible party to correct "
        "within 24 hours and/or issue a Correction Notice or Notice of Violation of the Public "
        "Works Code",
        "account_id": None,
    }
]
REQUEST_EXAMPLE = [
    {
        "service_request_id": 638344,
        "status": "closed",
        "status_notes": "Duplicate request.",
        "service_name": "Sidewalk and Curb Issues",
        "service_code": "006",
        "description": None,
        "agency_responsible": None,
        "service_notice": None,
        "requested_datetime": "2010-04-14T06:37:38-08:00",
        "updated_datetime": "2010-04-14T06:37:38-08:00",
        "expected_datetime": "2010-04-15T06:37:38-08:00",
        "address": "8TH AVE and JUDAH ST",
        "address_id": 545483,
        "zipcode": 94122,
        "lat": 37.762221815,
        "long": -122.4651145,
        "media_url": "http://city.gov.s3.amazonaws.com/requests/media/638344.jpg",
    }
]
ERROR_EXAMPLE = [{"code": 403, "description": "Invalid api_key"}]
FILING = {
    "service_code": "service_conduct",
    "description": "窗口工作人员态度恶劣，拒绝解释材料要求。",
    "address_string": "办税服务厅",
    "first_name": "四",
    "last_name": "李",
    "phone": "13900139000",
    "attribute[category.sub]": "attitude",
    "attribute[taxpayer_kind]": "natural_person",
    "attribute[target]": "staff",
    "attribute[target.text]": "3号窗口工作人员",
    "attribute[incident_time]": "2026-10-30 10:00",
    "attribute[request_type]": "apology",
    "lat": "31.2304",
    "long": "121.4737",
}


async def _world() -> tuple[World, dict[str, str]]:
    world = await make_world("tax-service")
    keys = {
        "file": (await create_token(world.clerk, "kiosk", ["file"], now=T0)).secret,
        "read": (await create_token(world.supervisor, "dashboard", ["read"], now=T0)).secret,
        "head": (await create_token(world.head, "registry", ["read"], now=T0)).secret,
    }
    return world, keys


def _same_shape(ours: dict[str, Any], example: dict[str, Any]) -> None:
    assert set(ours) == set(example), set(ours) ^ set(example)


async def _json(client: TestClient, path: str, status: int = 200, **kw: Any) -> Any:
    response = await client.get(V2 + path, **kw)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def _xml(client: TestClient, path: str, status: int = 200) -> ET.Element:
    response = await client.get(V2 + path)
    assert response.status == status
    assert response.content_type == "text/xml"
    return ET.fromstring(await response.text())  # our own output, in a test


async def _file(client: TestClient, key: str, fmt: str = "json", **changes: str) -> Any:
    response = await client.post(
        V2 + f"/requests.{fmt}", data={**FILING, "api_key": key, **changes}
    )
    return response.status, await response.text()


async def test_services_and_definitions_follow_the_spec(db_url: str, tmp_path: Path) -> None:
    await _world()
    async with desk_client(db_url, tmp_path, MovableNow(clock(1).now)) as client:
        services = await _json(client, "/services.json?locale=en")
        from config.profiles import load_profile

        profile = load_profile("tax-service")
        assert [s["service_code"] for s in services] == [c.id for c in profile.categories]
        for service in services:
            _same_shape(service, SERVICES_EXAMPLE[0])
            assert service["type"] == "realtime" and isinstance(service["metadata"], bool)
        conduct = next(s for s in services if s["service_code"] == "service_conduct")
        assert conduct["service_name"] == profile.label("category", "service_conduct", "en")
        root = await _xml(client, "/services.xml")
        assert root.tag == "services"
        first = root.find("service")
        assert first is not None
        assert [child.tag for child in first] == list(SERVICES_EXAMPLE[0])
        definition = await _json(client, "/services/service_conduct.json")
        _same_shape(definition, DEFINITION_EXAMPLE)
        codes = {a["code"]: a for a in definition["attributes"]}
        for attribute in definition["attributes"]:
            wanted = set(DEFINITION_EXAMPLE["attributes"][0])
            if attribute["datatype"] != "singlevaluelist":
                wanted.discard("values")
            assert set(attribute) == wanted
        assert [v["key"] for v in codes["category.sub"]["values"]] == [
            "attitude", "language", "discipline"
        ]  # fmt: skip
        assert codes["screening"]["values"][0]["key"] == "none"
        assert codes["target"]["required"] is True
        xml = await _xml(client, "/services/service_conduct.xml")
        assert xml.tag == "service_definition"
        assert xml.findtext("service_code") == "service_conduct"
        assert xml.find("attributes/attribute/values/value/key") is not None
        missing = await _json(client, "/services/nothing.json", status=404)
        _same_shape(missing[0], ERROR_EXAMPLE[0])


async def test_filing_and_following_a_request(db_url: str, tmp_path: Path) -> None:
    world, keys = await _world()
    async with desk_client(db_url, tmp_path, MovableNow(clock(1).now)) as client:
        status, text = await _file(client, keys["file"])
        assert status == 201, text
        import json

        answer = json.loads(text)
        _same_shape(answer[0], POST_EXAMPLE[0])
        number = answer[0]["service_request_id"]
        complaint = await Complaint.get(number=number)
        assert complaint.state == State.SUBMITTED and complaint.category == "service_conduct"
        assert complaint.contact_name == "四 李" and complaint.facts == FILING["description"]
        event = await Event.get(complaint_id=complaint.id, action="submit")
        assert event.actor_staff_id == world.clerk.id  # type: ignore[attr-defined]
        assert event.payload.get("recorded_for") is True
        # Anyone with the number follows it; the account of the matter stays private.
        public = await _json(client, f"/requests/{number}.json")
        _same_shape(public[0], REQUEST_EXAMPLE[0])
        assert public[0]["status"] == "open" and public[0]["description"] is None
        assert public[0]["address"] is None
        listed = await _json(client, f"/requests.json?service_request_id={number}")
        assert listed == public
        with_key = await _json(client, f"/requests/{number}.json?api_key={keys['read']}")
        assert with_key[0]["description"] == FILING["description"]
        assert with_key[0]["address"] == FILING["address_string"]
        assert (with_key[0]["lat"], with_key[0]["long"]) == (31.2304, 121.4737)
        assert (public[0]["lat"], public[0]["long"]) == (None, None)
        xml = await _xml(client, f"/requests/{number}.xml")
        assert xml.tag == "service_requests"
        assert [child.tag for child in xml.find("request") or []] == list(REQUEST_EXAMPLE[0])
        assert xml.findtext("request/service_request_id") == number
        # Handled: accepted, assigned, resolved → closed, the department responsible named.
        actor = Actor(Role.SUPERVISOR, world.supervisor)
        for step, payload in (
            (Action.ACCEPT, {"severity": "ordinary"}),
            (Action.ASSIGN, {"department_id": world.registry.id, "handler_id": world.handler.id}),
        ):
            await act(
                complaint.id, step, actor, profile=world.profile, clock=clock(2), payload=payload
            )
        handler = Actor(Role.HANDLER, world.handler)
        await act(complaint.id, Action.ACKNOWLEDGE, handler, profile=world.profile, clock=clock(3))
        await act(
            complaint.id, Action.RESOLVE, handler, profile=world.profile, clock=clock(4),
            payload={"reply_text": "已致歉"},
        )  # fmt: skip
        done = await _json(client, f"/requests/{number}.json?locale=en")
        assert done[0]["status"] == "closed"
        assert done[0]["agency_responsible"] == world.registry.name
        assert done[0]["status_notes"]
        # The list needs a key, and filters by service, status and dates.
        refused = await _json(client, "/requests.json", status=403)
        _same_shape(refused[0], ERROR_EXAMPLE[0])
        everything = await _json(client, f"/requests.json?api_key={keys['read']}")
        assert [r["service_request_id"] for r in everything] == [number]
        for query, found in (
            ("&status=closed", [number]),
            ("&status=open", []),
            ("&service_code=service_conduct", [number]),
            ("&service_code=major_policy", []),
            ("&start_date=2026-11-03T00:00:00Z", []),
            ("&end_date=2026-11-01T00:00:00Z", []),
            ("&start_date=2026-11-01T00:00:00Z&end_date=2026-11-03T00:00:00Z", [number]),
        ):
            rows = await _json(client, f"/requests.json?api_key={keys['read']}{query}")
            assert [r["service_request_id"] for r in rows] == found, query
        # A department head lists only their departments' cases (the desk's scope).
        theirs = await _json(client, f"/requests.json?api_key={keys['head']}")
        assert [r["service_request_id"] for r in theirs] == [number]
        bad = await _json(client, f"/requests.json?api_key={keys['read']}&status=x", status=400)
        _same_shape(bad[0], ERROR_EXAMPLE[0])


async def test_filing_needs_a_key_with_the_file_scope_and_a_complete_form(
    db_url: str, tmp_path: Path
) -> None:
    _unused, keys = await _world()
    async with desk_client(db_url, tmp_path, MovableNow(clock(1).now)) as client:
        for key, status, words in (
            ("", 403, "api_key required"),
            ("cdk_nonsense", 403, "invalid api_key"),
            (keys["read"], 403, "file scope"),
        ):
            got, text = await _file(client, key)
            assert got == status and words in text, (key, text)
        got, text = await _file(client, keys["file"], fmt="xml")
        assert got == 201 and "<service_request_id>" in text
        got, text = await _file(client, keys["file"], service_code="nothing")
        assert got == 400 and "service_code" in text
        got, text = await _file(client, keys["file"], lat="north")
        assert got == 400 and "lat" in text
        got, text = await _file(client, keys["file"], lat="95")
        assert got == 400
        got, text = await _file(client, keys["file"], description="")
        assert got == 400 and "facts" in text
        got, text = await _file(client, keys["file"], **{"attribute[screening]": "consultation"})
        assert got == 400
        root = ET.fromstring((await _file(client, "", fmt="xml"))[1])  # our own output, in a test
        assert root.tag == "errors" and root.findtext("error/code") == "403"
    assert await Complaint.all().count() == 1


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_open311_client_library_follows_a_filed_complaint(tmp_path: Path, fmt: str) -> None:
    """georeport (PyPI) reads services, definitions and requests. It has no call to file a
    request, so filing is the spec's form-encoded POST, sent with requests; the older `open311`
    package (2011) does not import on Python 3."""
    import requests
    from georeport import GeoReport

    from tests.live_api import live_api

    with live_api(tmp_path) as server:
        client = GeoReport(server.url + V2, output_format=fmt)
        services = client.get_service_list()
        codes = [s["service_code"] for s in services]
        assert "service_conduct" in codes
        definition = client.get_service_definition("service_conduct")
        assert definition["service_code"] == "service_conduct"
        response = requests.post(
            f"{server.url}{V2}/requests.json",
            data={**FILING, "api_key": server.tokens["clerk"]},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        number = response.json()[0]["service_request_id"]
        followed = client.get_service_request(number)
        assert followed["service_request_id"] == number
        assert followed["status"] == "open"
        listed = client.get_service_requests(service_request_id=number)
        if fmt == "xml":  # xmltodict gives a single <request> as a mapping
            listed = [listed] if isinstance(listed, dict) else listed
        assert [r["service_request_id"] for r in listed] == [number]
