"""The office desk in a browser at /desk: the same desk as the chat's, for staff at a screen.

Server-rendered (aiohttp-jinja2, templates in web/desk/templates, plain CSS in
web/desk/static, no JavaScript framework and no build step). Every page module has an
`add_routes(router)`; `setup_desk` mounts them all. The desk holds no workflow or permission
rule: it calls the functions the chat desk calls (models.actions, models.workflow,
models.confidentiality, models.notifications).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.conversation import Conversation
from config.profiles import Profile
from config.settings import Settings
from handlers.i18n import format_phone
from web.desk import (
    admin,
    auth,
    case,
    cases,
    casework,
    exports,
    matters,
    receipt,
    stats,
    tokens,
)
from web.desk.core import DESK, JINJA, PREFIX, Desk, desk_middleware

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# Page modules, each with add_routes(router). Add yours to this tuple.
PAGES = (auth, exports, cases, case, admin, casework, stats, tokens, receipt, matters)


def setup_desk(
    app: web.Application, conversation: Conversation, settings: Settings, profile: Profile
) -> None:
    app[DESK] = Desk(settings, profile, conversation)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        app_key=JINJA,  # type: ignore[arg-type]
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Phone numbers as people read them (138 0013 8000, 010-1234 5678), as the chat shows them.
        filters={"phone": format_phone},
    )
    app.middlewares.append(desk_middleware)
    app.router.add_static(PREFIX + "/static", STATIC)
    for page in PAGES:
        page.add_routes(app.router)
