"""Other systems' way in: the REST API at /api/v1 (OpenAPI 3.1 at /api/v1/openapi.json) and
Open311 GeoReport v2 at /open311/v2. Both act as the staff member whose API token they carry
(models.api_tokens), through the same functions as the desk (see web.api.v1)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from web.api import open311
from web.api.core import PREFIX, endpoint, openapi_document, problem_middleware
from web.api.v1 import ROUTES

OPENAPI = web.AppKey("openapi_document", dict)
API_VERSION = "1.0.0"


def document() -> dict[str, Any]:
    return openapi_document(ROUTES, title="complaintdesk API", version=API_VERSION)


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


def setup_api(app: web.Application) -> None:
    """Mount the API and Open311 (call after setup_desk: they use the desk's settings)."""
    app[OPENAPI] = document()
    app.middlewares.append(problem_middleware)
    app.middlewares.append(open311.open311_middleware)
    app.router.add_get(PREFIX + "/openapi.json", openapi_json)
    for route in ROUTES:
        app.router.add_route(route.method, PREFIX + route.path, endpoint(route))
    open311.add_routes(app.router)
