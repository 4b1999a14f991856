"""Sign-in, sign-out (here or everywhere), the invite page and the language switch."""

from __future__ import annotations

import math

from aiohttp import web

from handlers.i18n import LANGUAGE_NAMES, LANGUAGES, N_
from models.desk_auth import (
    MIN_PASSWORD_LENGTH,
    CredentialSet,
    DeskInviteRefusal,
    DeskSession,
    SignedIn,
    set_password_from_invite,
    sign_in,
    sign_out,
    sign_out_everywhere,
    staff_for_desk_invite,
)
from models.entities import Staff
from web.desk.core import (
    PREFIX,
    SESSION_COOKIE,
    Me,
    current,
    desk_of,
    end_session_cookie,
    render,
    safe_next,
    set_cookie,
    signed_in,
)
from web.desk.i18n import LANG_COOKIE

# Why a desk invite or a chosen login/password is refused, in the desk's words.
INVITE_PROBLEMS: dict[str, str] = {
    DeskInviteRefusal.UNKNOWN: N_("This invite code is not known. Ask your administrator."),
    DeskInviteRefusal.USED: N_(
        "This invite has already set a desk password. Sign in, or ask for a new invite."
    ),
    DeskInviteRefusal.EXPIRED: N_("This invite has expired. Ask your administrator for a new one."),
    DeskInviteRefusal.DISABLED: N_("This staff account is disabled."),
    "login_format": N_(
        "A login name is 2–40 lower-case letters, digits, dots, dashes or underscores."
    ),
    "login_taken": N_("This login name is taken. Choose another."),
    "password_mismatch": N_("The two passwords differ."),
    "password_short": N_("The password is too short."),
    "password_long": N_("The password is too long."),
}


def _form_text(form: object, name: str, limit: int = 512) -> str:
    value = form.get(name) if hasattr(form, "get") else None  # type: ignore[union-attr]
    return value[:limit] if isinstance(value, str) else ""


async def home(request: web.Request) -> web.StreamResponse:
    if current(request) is None:
        raise web.HTTPSeeOther(f"{PREFIX}/signin")
    raise web.HTTPSeeOther(f"{PREFIX}/cases")


async def signin_page(request: web.Request) -> web.StreamResponse:
    if current(request) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    context = {
        "next": safe_next(request.query.get("next")),
        "login": "",
        "problem": None,
        "wait": 0,
        "password_set": request.query.get("set") == "1",
    }
    return render(request, None, "signin.html", context)


async def signin_post(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    form = await request.post()
    login = _form_text(form, "login", 64)
    target = safe_next(_form_text(form, "next", 2000))
    outcome = await sign_in(
        login,
        _form_text(form, "password", 1024),
        now=desk.now(),
        lifetime=desk.lifetime,
        user_agent=request.headers.get("User-Agent"),
        remote=request.remote,
    )
    if not isinstance(outcome, SignedIn):
        wait = math.ceil(outcome.retry_after.total_seconds()) if outcome.retry_after else 0
        context = {
            "next": target,
            "login": login,
            "problem": outcome.reason,
            "wait": wait,
            "password_set": False,
        }
        return render(request, None, "signin.html", context, status=429 if wait else 401)
    response = web.HTTPSeeOther(target)
    set_cookie(
        response,
        request,
        SESSION_COOKIE,
        outcome.token,
        max_age=int(desk.lifetime.total_seconds()),
    )
    raise response


@signed_in()
async def signout(request: web.Request, me: Me) -> web.StreamResponse:
    await sign_out(me.session)
    response = web.HTTPSeeOther(f"{PREFIX}/signin")
    end_session_cookie(response)
    raise response


@signed_in()
async def signout_everywhere(request: web.Request, me: Me) -> web.StreamResponse:
    await sign_out_everywhere(me.staff.id)
    response = web.HTTPSeeOther(f"{PREFIX}/signin")
    end_session_cookie(response)
    raise response


@signed_in()
async def account(request: web.Request, me: Me) -> web.StreamResponse:
    """My desk sign-ins: where I am signed in, with sign-out everywhere."""
    sessions = await DeskSession.filter(staff_id=me.staff.id).order_by("-last_seen_at")
    department = await me.staff.department if me.staff.department_id else None  # type: ignore[attr-defined]
    return render(
        request,
        me,
        "account.html",
        {"sessions": sessions, "department": department, "this": me.session.token_hash},
    )


async def _invite_context(request: web.Request, code: str) -> tuple[Staff | None, str | None]:
    found = await staff_for_desk_invite(code, desk_of(request).now())
    if isinstance(found, Staff):
        return found, None
    return None, INVITE_PROBLEMS[found]


async def invite_page(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]
    staff, problem = await _invite_context(request, code)
    context = {
        "staff": staff,
        "problem": problem,
        "code": code,
        "min_length": MIN_PASSWORD_LENGTH,
        "login": "",
    }
    return render(request, None, "invite.html", context, status=200 if staff else 404)


async def invite_post(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]
    form = await request.post()
    login = _form_text(form, "login", 64)
    outcome = await set_password_from_invite(
        code,
        login,
        _form_text(form, "password", 1024),
        _form_text(form, "repeat", 1024),
        now=desk_of(request).now(),
    )
    if isinstance(outcome, CredentialSet):
        raise web.HTTPSeeOther(f"{PREFIX}/signin?set=1")
    staff, _still_valid = await _invite_context(request, code)
    context = {
        "staff": staff,
        "problem": INVITE_PROBLEMS[str(outcome)],
        "code": code,
        "min_length": MIN_PASSWORD_LENGTH,
        "login": login,
    }
    return render(request, None, "invite.html", context, status=400 if staff else 404)


async def choose_language(request: web.Request) -> web.StreamResponse:
    lang = request.match_info["lang"]
    if lang not in LANGUAGES:
        raise web.HTTPNotFound()
    response = web.HTTPSeeOther(safe_next(request.query.get("next")))
    set_cookie(response, request, LANG_COOKIE, lang, max_age=365 * 24 * 3600)
    raise response


def language_links() -> list[tuple[str, str]]:
    return [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES]


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PREFIX, home)
    router.add_get(PREFIX + "/", home)
    router.add_get(PREFIX + "/signin", signin_page)
    router.add_post(PREFIX + "/signin", signin_post)
    router.add_post(PREFIX + "/signout", signout)
    router.add_post(PREFIX + "/signout-everywhere", signout_everywhere)
    router.add_get(PREFIX + "/account", account)
    router.add_get(PREFIX + "/invite/{code}", invite_page)
    router.add_post(PREFIX + "/invite/{code}", invite_post)
    router.add_get(PREFIX + "/lang/{lang}", choose_language)
