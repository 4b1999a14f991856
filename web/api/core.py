"""What every API endpoint shares: token authentication and scopes, parsing requests into the
schemas, problem+json errors (RFC 9457), idempotency keys on POST, and the OpenAPI document
generated from the route table.

    ROUTES.append(Route("GET", "/complaints", list_complaints, "listComplaints", "...",
                        scope=Scope.READ, query=ComplaintListQuery,
                        responses={200: ComplaintPage}))

A handler gets a `Call` (the request, the authenticated token, the parsed query and body) and
returns an `Answer` (status and a model) or a ready aiohttp response (a file's bytes).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from models.api_tokens import (
    IDEMPOTENCY_KEY_MAX,
    PENDING,
    Authenticated,
    Scope,
    StoredAnswer,
    authenticate,
    finish_key,
    release_key,
    request_hash,
    reserve_key,
)
from web.api.schemas import Problem
from web.desk.core import DESK, Desk

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
PROBLEM_TYPE = PREFIX + "/problems/"
PROBLEM_JSON = "application/problem+json"
BODY_LIMIT = 256 * 1024
TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    500: "Internal error",
}


class ApiProblem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_response(
    request: web.Request,
    status: int,
    code: str,
    detail: str | None = None,
    *,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = Problem(
        type=PROBLEM_TYPE + code,
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.path,
        code=code,
        errors=errors,
    )
    return web.Response(
        status=status,
        text=body.model_dump_json(exclude_none=True),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


@dataclass(frozen=True)
class Call:
    request: web.Request
    auth: Authenticated
    desk: Desk
    query: Any = None
    body: Any = None

    def path_int(self, name: str) -> int:
        return int(self.request.match_info[name])


@dataclass(frozen=True)
class Answer:
    status: int
    model: BaseModel
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Awaitable[Answer | web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # under PREFIX; path parameters as {name}, all integers
    handler: Handler
    operation_id: str
    summary: str
    scope: Scope
    responses: dict[int, type[BaseModel] | str]  # a model, or a media type for raw bytes
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    tag: str = "complaints"
    errors: tuple[int, ...] = (400, 401, 403, 404, 422)
    description: str = ""

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


def _field_errors(error: ValidationError) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "body"
        found.setdefault(where, item["msg"])
    return found


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


async def authenticated(request: web.Request, scope: Scope, secret: str | None) -> Authenticated:
    desk = request.app[DESK]
    if not secret:
        raise ApiProblem(
            401,
            "no_token",
            "Send an API token: Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": 'Bearer realm="complaintdesk"'},
        )
    auth = await authenticate(secret, now=desk.now())
    if auth is None:
        raise ApiProblem(
            401,
            "bad_token",
            "The token is unknown, revoked, or its staff member is disabled.",
            headers={"WWW-Authenticate": 'Bearer realm="complaintdesk", error="invalid_token"'},
        )
    if not auth.allows(scope):
        raise ApiProblem(
            403,
            "scope",
            f"This token lacks the {scope} scope.",
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="complaintdesk", error="insufficient_scope", scope="{scope}"'
                )
            },
        )
    return auth


def _query_values(request: web.Request, model: type[BaseModel]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    names = {f.alias or name for name, f in model.model_fields.items()}  # as the document has them
    for key in request.query:
        if key not in names:
            raise ApiProblem(400, "unknown_parameter", f"Unknown query parameter {key!r}.")
        found = request.query.getall(key)
        if len(found) > 1:
            raise ApiProblem(400, "repeated_parameter", f"Query parameter {key!r} is repeated.")
        values[key] = found[0]
    return values


async def _body(request: web.Request, model: type[BaseModel], raw: bytes) -> BaseModel:
    if request.content_type != "application/json":
        raise ApiProblem(415, "media_type", "Send the body as application/json.")
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiProblem(400, "bad_json", f"The body is not JSON: {error}") from error
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ApiProblem(
            422, "invalid", "The body does not fit the schema.", errors=_field_errors(error)
        ) from error


def _as_response(answer: Answer | web.StreamResponse) -> web.StreamResponse:
    if isinstance(answer, web.StreamResponse):
        return answer
    return web.Response(
        status=answer.status,
        text=answer.model.model_dump_json(),
        content_type="application/json",
        headers=answer.headers,
    )


def endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        desk = request.app[DESK]
        auth = await authenticated(request, route.scope, _bearer(request))
        for name in route.path_params:
            raw = request.match_info[name]
            if not raw.isdigit() or int(raw) > 2**31 - 1:
                raise ApiProblem(404, "not_found", f"No such {name.removesuffix('_id')}.")
        query = None
        if route.query is not None:
            try:
                query = route.query.model_validate(_query_values(request, route.query))
            except ValidationError as error:
                raise ApiProblem(
                    400, "invalid_parameter", "A query parameter is wrong.",
                    errors=_field_errors(error),
                ) from error  # fmt: skip
        elif request.query:
            raise ApiProblem(400, "unknown_parameter", "This endpoint takes no query parameters.")
        raw = b""
        if route.body is not None:
            if (request.content_length or 0) > BODY_LIMIT:
                raise ApiProblem(413, "too_large", f"Bodies are limited to {BODY_LIMIT} bytes.")
            raw = await request.read()
        key = request.headers.get("Idempotency-Key") if route.method == "POST" else None
        fingerprint = ""
        if key is not None:
            if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
                raise ApiProblem(
                    400, "idempotency_key", f"An Idempotency-Key is 1 to {IDEMPOTENCY_KEY_MAX} "
                    "printable characters.",
                )  # fmt: skip
            fingerprint = request_hash(route.method, request.path_qs, raw)
            earlier = await reserve_key(auth.token, key, fingerprint, now=desk.now())
            if earlier is not None:
                return _replay(request, earlier, fingerprint)
        try:
            body = await _body(request, route.body, raw) if route.body is not None else None
            call = Call(request, auth, desk, query, body)
            try:
                response = _as_response(await route.handler(call))
            except ApiProblem as problem:
                response = problem_response(
                    request, problem.status, problem.code, problem.detail,
                    errors=problem.errors, headers=problem.headers,
                )  # fmt: skip
        except BaseException:
            if key is not None:
                await release_key(auth.token, key)
            raise
        if key is not None:
            if isinstance(response, web.Response) and response.status < 500:
                answer = StoredAnswer(
                    fingerprint, response.status, response.content_type, response.text or ""
                )
                await finish_key(auth.token, key, answer)
            else:
                await release_key(auth.token, key)
        return response

    serve.__name__ = route.operation_id
    return serve


def _replay(request: web.Request, earlier: StoredAnswer, fingerprint: str) -> web.Response:
    if earlier.request_hash != fingerprint:
        raise ApiProblem(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request.",
        )
    if earlier.status == PENDING:
        raise ApiProblem(
            409,
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still being answered; retry shortly.",
        )
    return web.Response(
        status=earlier.status,
        text=earlier.body,
        content_type=earlier.content_type,
        headers={"Idempotent-Replayed": "true"},
    )


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Under /api/v1: every error as problem+json, unknown paths and methods included."""
    if not (request.path == PREFIX or request.path.startswith(PREFIX + "/")):
        return await handler(request)
    try:
        response = await handler(request)
    except ApiProblem as problem:
        return problem_response(
            request, problem.status, problem.code, problem.detail,
            errors=problem.errors, headers=problem.headers,
        )  # fmt: skip
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            error.status, "http_error"
        )
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return problem_response(request, error.status, code, error.reason, headers=headers)
    except Exception:
        log.exception("api: %s %s failed", request.method, request.path)
        return problem_response(request, 500, "internal", "Something went wrong on our side.")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


# -- the OpenAPI document -------------------------------------------------------------------------

REF = "#/components/schemas/{model}"


def openapi_document(routes: list[Route], *, title: str, version: str) -> dict[str, Any]:
    """OpenAPI 3.1 from the route table and the pydantic models' own JSON Schemas."""
    entries: list[tuple[type[BaseModel], Any]] = [(Problem, "serialization")]
    for route in routes:
        if route.body is not None:
            entries.append((route.body, "validation"))
        for model in route.responses.values():
            if not isinstance(model, str):
                entries.append((model, "serialization"))
    unique = list(dict.fromkeys(entries))
    keys, defs = models_json_schema(unique, ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    problem_ref = keys[(Problem, "serialization")]
    for route in routes:
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
            }
            for name in route.path_params
        ]
        if route.query is not None:
            schema = route.query.model_json_schema(ref_template=REF)
            required = set(schema.get("required", []))
            for name, prop in schema.get("properties", {}).items():
                description = prop.pop("description", None)
                parameter: dict[str, Any] = {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": prop,
                }
                if description:
                    parameter["description"] = description
                parameters.append(parameter)
        responses: dict[str, Any] = {}
        for status, model in route.responses.items():
            if isinstance(model, str):
                content = {model: {"schema": {"type": "string", "format": "binary"}}}
            else:
                content = {"application/json": {"schema": keys[(model, "serialization")]}}
            responses[str(status)] = {"description": TITLES.get(status, "OK"), "content": content}
        for status in sorted({*route.errors, 401, 403}):
            responses[str(status)] = {
                "description": TITLES.get(status, "Error"),
                "content": {PROBLEM_JSON: {"schema": problem_ref}},
            }
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "security": [{"token": [str(route.scope)]}],
            "parameters": parameters,
            "responses": responses,
        }
        if route.description:
            operation["description"] = route.description
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": keys[(route.body, "validation")]}},
            }
        if route.method == "POST":
            operation["parameters"].append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Same key and body: the first answer again; other body: 422",
                    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
                }
            )
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Complaints, their events and files, the organisation and counts. "
            "Every call acts as the token's staff member, under the same rules as their desk.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A staff API token (scopes: read, act, file, admin)",
                }
            },
        },
    }
