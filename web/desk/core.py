"""What every desk page shares: the signed-in staff member, CSRF, cookies and rendering.

    @signed_in()                        # any active staff member
    async def page(request: web.Request, me: Me) -> web.StreamResponse:
        return render(request, me, "cases.html", {"rows": ...})

The desk middleware runs for every /desk path: it picks the language, opens the session from
its cookie and refuses every POST whose form lacks the right CSRF token (the session's own; on
the sign-in and invite forms, a token double-submitted in a cookie) or comes from another
origin. Handlers read the already-parsed form with `await request.post()`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.conversation import Conversation
from config.profiles import Profile
from config.settings import Settings
from handlers.i18n import N_, Gettext, format_datetime
from models.actions import Clock
from models.desk_auth import DeskSession, session_for_token
from models.entities import Staff
from models.staffing import may_manage_staff, may_read_audit, may_read_statistics
from models.workflow import Role, may_manage_matters
from web.desk.i18n import desk_gettext, request_language

log = logging.getLogger(__name__)

JINJA = web.AppKey("desk_jinja", object)
SESSION_COOKIE = "desk_session"
CSRF_COOKIE = "desk_csrf"
CSRF_FIELD = "csrf"
PREFIX = "/desk"
# Forms with photos or documents (a reply's attachments): 6 files of 10 MB and the text.
UPLOAD_BODY_LIMIT = 80 * 1024 * 1024
FORM_BODY_LIMIT = 1024 * 1024

PAGE_HEADERS = {
    # Pages show complainants' names and phones: nothing is kept by the browser or a proxy.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # Same-origin: the browser names our origin on our own form posts (checked below), and
    # no address of a case page leaves for another site.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


@dataclass(frozen=True)
class Desk:
    """The desk's share of the worker: settings, the policy profile and the clock."""

    settings: Settings
    profile: Profile
    conversation: Conversation

    def now(self) -> datetime:
        return self.conversation.now()

    def clock(self) -> Clock:
        return Clock(self.conversation.calendar, self.settings.tz, self.now())

    @property
    def lifetime(self) -> timedelta:
        return timedelta(hours=self.settings.desk_session_hours)

    @property
    def idle(self) -> timedelta:
        return timedelta(minutes=self.settings.desk_idle_minutes)


DESK = web.AppKey("desk", Desk)

ROLE_NAMES: dict[str, str] = {
    Role.INTAKE_CLERK: N_("Intake clerk"),
    Role.HANDLER: N_("Handler"),
    Role.DEPARTMENT_HEAD: N_("Department head"),
    Role.SUPERVISOR: N_("Supervisor"),
    Role.ADMIN: N_("Administrator"),
    Role.COMPLAINANT: N_("Complainant"),
    Role.SYSTEM: N_("System"),
}
_ME = web.RequestKey("desk_me", object)
_LANG = web.RequestKey("desk_lang", str)
_PRE_CSRF = web.RequestKey("desk_pre_csrf", str)


@dataclass(frozen=True)
class Me:
    """The signed-in staff member of this request."""

    staff: Staff
    session: DeskSession
    lang: str
    gettext: Gettext

    @property
    def csrf(self) -> str:
        return self.session.csrf_token


def desk_of(request: web.Request) -> Desk:
    return request.app[DESK]


def language_of(request: web.Request) -> str:
    return str(request.get(_LANG) or desk_of(request).settings.language)


def gettext_of(request: web.Request) -> Gettext:
    return desk_gettext(language_of(request))


def secure_cookies(request: web.Request, settings: Settings) -> bool:
    """Secure cookies when configured so, else whenever the desk is reached over https."""
    if settings.desk_secure_cookie is not None:
        return settings.desk_secure_cookie
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    public = (settings.public_url or "").lower().startswith("https://")
    return request.secure or forwarded == "https" or public


def set_cookie(
    response: web.StreamResponse,
    request: web.Request,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    same_site: str = "Lax",
) -> None:
    response.set_cookie(
        name,
        value,
        path=PREFIX,
        max_age=max_age,
        httponly=True,
        secure=secure_cookies(request, desk_of(request).settings),
        samesite=same_site,
    )


def end_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path=PREFIX)


def safe_next(target: str | None) -> str:
    """A redirect target inside the desk (never another site: no open redirect)."""
    if not target:
        return PREFIX + "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX):
        return PREFIX + "/"
    if target.startswith("//") or "\\" in target:
        return PREFIX + "/"
    return target


# -- CSRF ---------------------------------------------------------------------------------


def pre_session_csrf(request: web.Request) -> str:
    """The CSRF token for a form shown before sign-in (sign-in, invite): the one in this
    browser's cookie, or a new one that `render` will set."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or len(token) > 128:
        token = request.get(_PRE_CSRF) or secrets.token_urlsafe(32)
        request[_PRE_CSRF] = token
    return token


def _same(a: str | None, b: str | None) -> bool:
    # Bytes: compare_digest raises TypeError for str with non-ASCII characters (a forged token).
    return (
        bool(a)
        and bool(b)
        and hmac.compare_digest(
            str(a).encode("utf-8", "replace"), str(b).encode("utf-8", "replace")
        )
    )


# What aiohttp's form parser raises on a body no browser sends.
MALFORMED_FORM = (
    ValueError, AssertionError, LookupError, UnicodeError, HttpProcessingError, RuntimeError,
)  # fmt: skip


def _foreign_origin(request: web.Request) -> bool:
    """An Origin naming another site. A missing or "null" one (privacy settings, older
    browsers) proves nothing either way: the token decides."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return False
    return urlsplit(origin).netloc != request.host


async def _csrf_refusal(request: web.Request, session: DeskSession | None) -> str | None:
    """Why this POST must be refused (None when its token is right)."""
    if _foreign_origin(request):
        return "origin"
    form = await request.post()
    sent = form.get(CSRF_FIELD)
    sent = sent if isinstance(sent, str) else None
    expected = session.csrf_token if session is not None else request.cookies.get(CSRF_COOKIE)
    return None if _same(sent, expected) else "token"


# -- the middleware ---------------------------------------------------------------------------


def _is_desk(path: str) -> bool:
    return (path == PREFIX or path.startswith(PREFIX + "/")) and not path.startswith(
        PREFIX + "/static/"
    )


@web.middleware
async def desk_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not _is_desk(request.path):
        return await handler(request)
    desk = desk_of(request)
    if request.method == "POST" and request.content_type.startswith("multipart/"):
        # Replies carry photos: a larger body, which aiohttp spools to temporary files.
        request = request.clone(client_max_size=UPLOAD_BODY_LIMIT)
    request[_LANG] = request_language(request, desk.settings.language)
    opened = await session_for_token(
        request.cookies.get(SESSION_COOKIE), now=desk.now(), idle=desk.idle
    )
    session, staff = opened if opened else (None, None)
    if staff is not None and session is not None:
        lang = request[_LANG]
        request[_ME] = Me(staff, session, lang, desk_gettext(lang))
    if request.method == "POST":
        try:
            refusal = await _csrf_refusal(request, session)
        except web.HTTPRequestEntityTooLarge:
            return error_page(request, 413, N_("The form is too large."))
        except MALFORMED_FORM as error:  # no browser sends this: invalid UTF-8, broken multipart
            log.warning("desk: POST %s unreadable form: %s", request.path, type(error).__name__)
            return error_page(request, 400, N_("The form could not be read."))
        if refusal:
            log.warning(
                "desk: POST %s refused (csrf %s) from %s", request.path, refusal, request.remote
            )
            return error_page(
                request,
                403,
                N_(
                    "This form has expired or did not come from this desk. Reload the page "
                    "and try again."
                ),
            )
    response = await handler(request)
    if _PRE_CSRF in request and not request.cookies.get(CSRF_COOKIE):
        set_cookie(response, request, CSRF_COOKIE, request[_PRE_CSRF], same_site="Strict")
    for name, value in PAGE_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


# -- handlers ----------------------------------------------------------------------------------

Handler = Callable[[web.Request, Me], Awaitable[web.StreamResponse]]


def signed_in(
    allowed: Callable[[Staff], bool] | None = None,
) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Give the handler the signed-in staff member (`Me`); send others to the sign-in page.

    `allowed` is a predicate from models (e.g. models.staffing.may_manage_staff): the desk
    itself decides no permission. A staff member it refuses gets 403.
    """

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def page(request: web.Request) -> web.StreamResponse:
            me: Me | None = request.get(_ME)
            if me is None:
                if request.method == "GET":
                    target = quote(request.path_qs, safe="")
                    raise web.HTTPSeeOther(f"{PREFIX}/signin?next={target}")
                return error_page(request, 401, N_("Your sign-in has ended. Sign in again."))
            if allowed is not None and not allowed(me.staff):
                return error_page(request, 403, N_("Your role does not open this page."), me=me)
            return await handler(request, me)

        page.__name__ = handler.__name__
        page.__doc__ = handler.__doc__
        return page

    return wrap


def current(request: web.Request) -> Me | None:
    """The signed-in staff member, on a page open to everyone (sign-in, invite)."""
    return request.get(_ME)


def template_context(request: web.Request, me: Me | None) -> dict[str, Any]:
    desk = desk_of(request)
    lang = me.lang if me else language_of(request)
    tz = desk.settings.tz
    gettext = desk_gettext(lang)
    return {
        "me": me,
        "lang": lang,
        "_": gettext,
        "role_name": lambda role: gettext(ROLE_NAMES.get(str(role), str(role))),
        "csrf": me.csrf if me else pre_session_csrf(request),
        "csrf_field": CSRF_FIELD,
        "path": request.path_qs,
        "when": lambda instant: format_datetime(instant, lang, tz) if instant else "",
        "profile": desk.profile,
        "may": {
            "staff": bool(me and may_manage_staff(me.staff)),
            "audit": bool(me and may_read_audit(me.staff)),
            "stats": bool(me and may_read_statistics(me.staff)),
            "groups": bool(me and may_manage_matters(Role(me.staff.role))),
        },
    }


def render(
    request: web.Request,
    me: Me | None,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    """Render `template` (in web/desk/templates, extending "base.html") with the shared
    context: me, lang, _ (the desk catalog), csrf / csrf_field, path, when(instant), profile."""
    return aiohttp_jinja2.render_template(
        template,
        request,
        {**template_context(request, me), **(context or {})},
        status=status,
        app_key=JINJA,  # type: ignore[arg-type]
    )


def error_page(
    request: web.Request, status: int, message: str, *, me: Me | None = None
) -> web.Response:
    """A page saying what went wrong (message: an English desk msgid, translated here)."""
    me = me if me is not None else request.get(_ME)
    gettext = desk_gettext(me.lang if me else language_of(request))
    response = render(
        request, me, "error.html", {"status": status, "message": gettext(message)}, status=status
    )
    for name, value in PAGE_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
