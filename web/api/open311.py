"""Open311 GeoReport v2 at /open311/v2: services and service requests, in JSON and XML.

- services.{json,xml}: the profile's categories (service_code = category id);
  services/{code}.{json,xml}: the record form's other inputs as attributes.
- POST requests.{json,xml} (form-encoded, `api_key` = an API token with the file scope): files
  the complaint through the desk's record path (web.api.v1.file_for), recorded by the token's
  staff member on the e-mail channel (an electronic filing in writing); answers
  service_request_id = our complaint number.
- GET requests/{id}.{json,xml} and requests.{json,xml}?service_request_id=…: anyone following a
  number sees its status, service, department and dates; with an `api_key` (read scope) the
  description, address and position too, masked as on that staff member's desk, and the full
  list with the spec's filters.

XML is built with xml.etree and never parsed here: requests arrive form-encoded.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from handlers.desk_form import NOT_EXCLUDED, SCREENING, desk_inputs
from handlers.i18n import pick_label
from handlers.staff import state_label
from handlers.turn import DialogContext
from models.api_tokens import Authenticated, Scope, authenticate
from models.caselist import ALL, CaseFilter, list_cases
from models.entities import Complaint, Department
from models.notifications import build_card
from models.numbering import normalise_number
from models.paper import case_for
from models.workflow import State
from web.api.core import ApiProblem
from web.api.v1 import _viewer, file_for
from web.desk.core import DESK, Desk

PREFIX = "/open311/v2"
MAX_REQUESTS = 1000
DEFAULT_WINDOW = timedelta(days=90)
OPEN311_CHANNEL = "email"
# Our states that are Open311 "closed": the matter is answered or ended.
CLOSED_STATES = frozenset(
    {
        State.RESOLVED,
        State.REPLIED,
        State.REVISIT,
        State.CLOSED,
        State.REFUSED,
        State.WITHDRAWN,
        State.ARCHIVED,
    }
)
# Open311's standard fields → the record form's inputs.
STANDARD = {"description": "facts", "address_string": "place", "phone": "phone"}
NAME_INPUT = "name"
MAPPED_INPUTS = frozenset({"category", "facts", "place", "phone", "name", "photos"})
DATATYPES = {"select": "singlevaluelist", "checkbox": "singlevaluelist", "textarea": "text"}


def open311_status(state: str) -> str:
    return "closed" if State(state) in CLOSED_STATES else "open"


class Open311Error(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


# -- rendering ----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _when(value) or ""
    return str(value)


def _when(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _element(tag: str, value: Any) -> ET.Element:
    node = ET.Element(tag)
    if isinstance(value, dict):
        for key, inner in value.items():
            node.append(_element(key, inner))
    elif isinstance(value, list):
        singular = {"attributes": "attribute", "values": "value"}.get(tag, "item")
        for inner in value:
            node.append(_element(singular, inner))
    else:
        node.text = _text(value)
    return node


def render(fmt: str, root: str, item: str | None, data: Any, status: int = 200) -> web.Response:
    """`data` as JSON, or as XML under <root> (a list: one <item> each)."""
    if fmt == "json":
        return web.Response(
            status=status,
            text=json.dumps(data, ensure_ascii=False),
            content_type="application/json",
        )
    top = ET.Element(root)
    if isinstance(data, list):
        for entry in data:
            top.append(_element(item or "item", entry))
    else:
        for key, value in data.items():
            top.append(_element(key, value))
    body = ET.tostring(top, encoding="unicode", xml_declaration=False)
    return web.Response(
        status=status,
        text='<?xml version="1.0" encoding="utf-8"?>' + body,
        content_type="text/xml",
    )


def error_response(fmt: str, status: int, description: str) -> web.Response:
    return render(
        fmt, "errors", "error", [{"code": status, "description": description}], status=status
    )


# -- services -----------------------------------------------------------------------------------


def _desk(request: web.Request) -> Desk:
    return request.app[DESK]


def _lang(request: web.Request) -> str:
    wanted = (request.query.get("locale") or request.headers.get("Accept-Language", "")).lower()
    if wanted.startswith("en"):
        return "en"
    if wanted.startswith(("zh-tw", "zh_tw", "zh-hk", "zh-hant")):
        return "zh_TW"
    if wanted.startswith("zh"):
        return "zh_CN"
    return _desk(request).settings.language


def _inputs(desk: Desk, lang: str) -> list[Any]:
    ctx = DialogContext.from_settings(desk.settings, desk.profile, desk.now())
    return desk_inputs(ctx, lang)


def service_list(desk: Desk, lang: str) -> list[dict[str, Any]]:
    attributes = bool(service_attributes(desk, lang, None))
    return [
        {
            "service_code": c.id,
            "service_name": pick_label(c.label, lang),
            "description": pick_label(c.label, lang),
            "metadata": attributes or bool(c.subcategories),
            "type": "realtime",
            "keywords": ", ".join(pick_label(x.label, lang) for x in c.subcategories),
            "group": desk.profile.id,
        }
        for c in desk.profile.categories
    ]


def service_attributes(desk: Desk, lang: str, code: str | None) -> list[dict[str, Any]]:
    """The record form's inputs besides Open311's standard fields, as attributes."""
    profile = desk.profile
    attributes: list[dict[str, Any]] = []
    exclusions = list(getattr(profile, "exclusions", []))
    order = 1
    if exclusions:
        attributes.append(
            {
                "variable": True,
                "code": SCREENING,
                "datatype": "singlevaluelist",
                "required": False,
                "datatype_description": f"{NOT_EXCLUDED} (the default) unless out of scope",
                "order": order,
                "description": "Is the matter one of these?",
                "values": [{"key": NOT_EXCLUDED, "name": "none of these"}]
                + [{"key": e.id, "name": pick_label(e.label, lang)} for e in exclusions],
            }
        )
        order += 1
    for entry in _inputs(desk, lang):
        if entry.name in MAPPED_INPUTS:
            continue
        values: list[dict[str, str]] = []
        if entry.name == "category.sub":
            if code is None:
                continue
            subs = profile.category(code).subcategories
            if not subs:
                continue
            values = [{"key": str(x.id), "name": pick_label(x.label, lang)} for x in subs]
        elif entry.kind == "checkbox":
            values = [{"key": "yes", "name": "yes"}, {"key": "no", "name": "no"}]
        else:
            values = [{"key": v, "name": label} for v, label in entry.options]
        attribute: dict[str, Any] = {
            "variable": True,
            "code": entry.name,
            "datatype": DATATYPES.get(entry.kind, "string"),
            "required": bool(entry.required) and entry.kind != "checkbox",
            "datatype_description": entry.question,
            "order": order,
            "description": entry.label,
        }
        if attribute["datatype"] == "singlevaluelist":
            attribute["values"] = values
        attributes.append(attribute)
        order += 1
    return attributes


async def services(request: web.Request) -> web.Response:
    fmt = request.match_info["fmt"]
    desk = _desk(request)
    return render(fmt, "services", "service", service_list(desk, _lang(request)))


async def service_definition(request: web.Request) -> web.Response:
    fmt = request.match_info["fmt"]
    desk = _desk(request)
    code = request.match_info["code"]
    if code not in {c.id for c in desk.profile.categories}:
        raise Open311Error(404, f"no service {code}")
    data = {"service_code": code, "attributes": service_attributes(desk, _lang(request), code)}
    return render(fmt, "service_definition", None, data)


# -- service requests ---------------------------------------------------------------------------


async def _key(
    request: web.Request, form: Any, scope: Scope, *, required: bool
) -> Authenticated | None:
    value = form.get("api_key") if form is not None else None
    value = value or request.query.get("api_key")
    if not value:
        if required:
            raise Open311Error(403, "api_key required")
        return None
    auth = await authenticate(str(value), now=_desk(request).now())
    if auth is None:
        raise Open311Error(403, "invalid api_key")
    if not auth.allows(scope):
        raise Open311Error(403, f"this api_key lacks the {scope} scope")
    return auth


async def _request_out(
    desk: Desk, complaint: Complaint, lang: str, auth: Authenticated | None
) -> dict[str, Any]:
    lead = (
        await Department.filter(id=complaint.lead_department_id).first()  # type: ignore[attr-defined]
        if complaint.lead_department_id  # type: ignore[attr-defined]
        else None
    )
    try:
        service_name = desk.profile.label("category", complaint.category or "", lang)
    except KeyError:
        service_name = complaint.category or ""
    resolution = (complaint.deadlines or {}).get("resolution") or {}
    expected = resolution.get("due") if not resolution.get("done") else None
    out: dict[str, Any] = {
        "service_request_id": complaint.number,
        "status": open311_status(complaint.state),
        "status_notes": state_label(str(complaint.state), lang),
        "service_name": service_name,
        "service_code": complaint.category or "",
        "description": None,
        "agency_responsible": lead.name if lead else None,
        "service_notice": None,
        "requested_datetime": _when(complaint.submitted_at),
        "updated_datetime": _when(complaint.updated_at),
        "expected_datetime": _when(datetime.fromisoformat(expected)) if expected else None,
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }
    if auth is not None and await case_for(auth.staff, complaint.id) is not None:
        card, _shown = await build_card(complaint, _viewer(auth.staff, lang), desk.profile, None)
        out["description"] = card.facts
        out["address"] = card.place
        if card.place not in ("***",) and complaint.latitude is not None:
            out["lat"], out["long"] = complaint.latitude, complaint.longitude
    return out


def _parse_when(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise Open311Error(400, f"{name} is not a W3C date-time") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def requests_get(request: web.Request) -> web.Response:
    fmt = request.match_info["fmt"]
    desk = _desk(request)
    lang = _lang(request)
    auth = await _key(request, None, Scope.READ, required=False)
    typed = request.query.get("service_request_id", "").split(",")
    # Any shipped number format (models/numbering.py); what cannot be a number is not looked up.
    ids = [n for n in (normalise_number(i) for i in typed) if n]
    if ids:
        found = await Complaint.filter(number__in=ids[:MAX_REQUESTS]).exclude(state=State.DRAFT)
        by_number = {c.number: c for c in found}
        rows = [by_number[i] for i in ids if i in by_number]
        items = [await _request_out(desk, c, lang, auth) for c in rows]
        return render(fmt, "service_requests", "request", items)
    if auth is None:
        raise Open311Error(403, "api_key required to list requests (or give service_request_id)")
    code = request.query.get("service_code") or None
    if code and code not in {c.id for c in desk.profile.categories}:
        raise Open311Error(400, f"no service {code}")
    status = request.query.get("status") or None
    if status not in (None, "open", "closed"):
        raise Open311Error(400, "status is open or closed")
    end = _parse_when(request.query.get("end_date"), "end_date") or desk.now()
    start = _parse_when(request.query.get("start_date"), "start_date") or end - DEFAULT_WINDOW
    states = tuple(s for s in ALL if status is None or open311_status(s) == status)
    tz = desk.settings.tz
    flt = CaseFilter(
        states=states,
        category=code,
        submitted_from=start.astimezone(tz).date(),
        submitted_to=end.astimezone(tz).date(),
    )
    clock = desk.clock()
    numbers: list[int] = []
    after = None
    while len(numbers) < MAX_REQUESTS:
        page = await list_cases(
            auth.staff, flt, now=clock.now, calendar=clock.calendar, tz=tz,
            after=after, page_size=100,
        )  # fmt: skip
        numbers += [r.id for r in page.rows if r.submitted_at and start <= r.submitted_at <= end]
        if page.next_cursor is None:
            break
        from models.caselist import Cursor

        after = Cursor.decode(page.next_cursor)
    rows = await Complaint.filter(id__in=numbers[:MAX_REQUESTS]).order_by("-submitted_at", "-id")
    items = [await _request_out(desk, c, lang, auth) for c in rows]
    return render(fmt, "service_requests", "request", items)


async def request_one(request: web.Request) -> web.Response:
    fmt = request.match_info["fmt"]
    desk = _desk(request)
    auth = await _key(request, None, Scope.READ, required=False)
    number = normalise_number(request.match_info["request_id"])
    complaint = await Complaint.filter(number=number).first() if number else None
    if complaint is None or complaint.state == State.DRAFT:
        raise Open311Error(404, "no such service request")
    out = await _request_out(desk, complaint, _lang(request), auth)
    return render(fmt, "service_requests", "request", [out])


def filing_values(form: Any, inputs: Iterable[Any]) -> dict[str, str]:
    """The record form's values for an Open311 POST (its standard fields and attributes)."""
    names = {i.name for i in inputs}
    values: dict[str, str] = {"channel": OPEN311_CHANNEL, SCREENING: NOT_EXCLUDED}
    values["category"] = str(form.get("service_code") or "")
    for field, name in STANDARD.items():
        if form.get(field) and name in names:
            values[name] = str(form[field])
    person = " ".join(str(form.get(k) or "").strip() for k in ("first_name", "last_name"))
    if person.strip() and NAME_INPUT in names:
        values[NAME_INPUT] = person.strip()
    for key, value in form.items():
        if key.startswith("attribute[") and key.endswith("]") and isinstance(value, str):
            code = key[len("attribute[") : -1]
            if code == SCREENING or code in names:
                values[code] = value
    return values


def position_of(form: Any) -> tuple[float, float] | None:
    """Open311's lat/long (WGS-84), both or neither."""
    lat, lon = form.get("lat"), form.get("long")
    if not lat and not lon:
        return None
    try:
        position = float(str(lat)), float(str(lon))
    except ValueError as error:
        raise Open311Error(400, "lat and long are decimal degrees") from error
    if not (-90 <= position[0] <= 90 and -180 <= position[1] <= 180):
        raise Open311Error(400, "lat or long out of range")
    return position


async def requests_post(request: web.Request) -> web.Response:
    fmt = request.match_info["fmt"]
    desk = _desk(request)
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Open311Error(400, "send the request form-encoded")
    form = await request.post()
    auth = await _key(request, form, Scope.FILE, required=True)
    assert auth is not None
    code = str(form.get("service_code") or "")
    if code not in {c.id for c in desk.profile.categories}:
        raise Open311Error(400, "service_code missing or unknown")
    lang = _lang(request)
    values = filing_values(form, _inputs(desk, lang))
    try:
        complaint = await file_for(desk, auth.staff, lang, values, position_of(form))
    except ApiProblem as problem:
        detail = problem.detail or problem.code
        if problem.errors:
            detail += " " + "; ".join(f"{k}: {v}" for k, v in problem.errors.items())
        raise Open311Error(403 if problem.status == 403 else 400, detail) from problem
    notice = state_label(str(complaint.state), lang)
    data = [{"service_request_id": complaint.number, "service_notice": notice, "account_id": None}]
    return render(fmt, "service_requests", "request", data, status=201)


@web.middleware
async def open311_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not request.path.startswith(PREFIX + "/"):
        return await handler(request)
    fmt = "xml" if request.path.endswith(".xml") else "json"
    try:
        response = await handler(request)
    except Open311Error as error:
        return error_response(fmt, error.status, error.description)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return error_response(fmt, error.status, error.reason)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PREFIX + "/services.{fmt:json|xml}", services)
    router.add_get(PREFIX + "/services/{code}.{fmt:json|xml}", service_definition)
    router.add_get(PREFIX + "/requests.{fmt:json|xml}", requests_get)
    router.add_post(PREFIX + "/requests.{fmt:json|xml}", requests_post)
    router.add_get(PREFIX + "/requests/{request_id}.{fmt:json|xml}", request_one)
