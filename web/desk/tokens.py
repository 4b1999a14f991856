"""API tokens at /desk/tokens: each staff member's own, and everyone's for those who manage
staff (models.api_tokens decides who may hold which scope and whose tokens one manages).
A new token is shown once, on the page that made it."""

from __future__ import annotations

from aiohttp import web

from handlers.i18n import N_
from models.api_tokens import (
    ALL_SCOPES,
    create_token,
    revoke_token,
    scopes_refused,
    tokens_of,
)
from models.staffing import may_manage_staff
from web.desk.core import PREFIX, Me, desk_of, render, signed_in

SCOPE_NAMES = {
    "read": N_("read: cases, events, files, departments, staff, statistics"),
    "act": N_("act: workflow actions"),
    "file": N_("file: record complaints (REST API, Open311)"),
    "admin": N_("admin: everyone's tokens"),
}


async def _page(
    request: web.Request,
    me: Me,
    *,
    secret: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> web.Response:
    everyone = may_manage_staff(me.staff) and request.query.get("all") == "1"
    context = {
        "tokens": await tokens_of(me.staff, everyone=everyone),
        "everyone": everyone,
        "may_all": may_manage_staff(me.staff),
        # The scopes this staff member may hold (models.api_tokens.scopes_refused decides).
        "scopes": [
            (str(s), me.gettext(SCOPE_NAMES[str(s)]))
            for s in ALL_SCOPES
            if scopes_refused(me.staff, [str(s)]) is None
        ],
        "secret": secret,
        "problem": problem,
    }
    return render(request, me, "tokens.html", context, status=status)


@signed_in()
async def tokens_page(request: web.Request, me: Me) -> web.StreamResponse:
    return await _page(request, me)


@signed_in()
async def tokens_post(request: web.Request, me: Me) -> web.StreamResponse:
    desk = desk_of(request)
    form = await request.post()
    what = form.get("what")
    try:
        if what == "create":
            scopes = [str(v) for v in form.getall("scope", []) if isinstance(v, str)]
            made = await create_token(
                me.staff, str(form.get("name") or ""), scopes, now=desk.now(), created_by=me.staff
            )
            return await _page(request, me, secret=made.secret)
        raw = form.get("token_id")
        if what == "revoke" and isinstance(raw, str) and raw.isdigit():
            await revoke_token(int(raw), me.staff, now=desk.now())
        else:
            raise ValueError("unknown request")
    except (LookupError, ValueError) as error:
        return await _page(request, me, problem=str(error), status=400)
    raise web.HTTPSeeOther(f"{PREFIX}/tokens")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PREFIX + "/tokens", tokens_page)
    router.add_post(PREFIX + "/tokens", tokens_post)
