"""The case list and one case."""

from __future__ import annotations

from aiohttp import web

from handlers.staff import state_label
from models.notifications import desk_cases
from web.desk.core import PREFIX, Me, render, signed_in


@signed_in()
async def case_list(request: web.Request, me: Me) -> web.StreamResponse:
    rows = await desk_cases(me.staff)
    return render(
        request,
        me,
        "cases.html",
        {"rows": rows, "state_label": lambda state: state_label(state, me.lang)},
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PREFIX + "/cases", case_list)
