"""The complainant's pages without signing in: the progress page /c/<number>, its QR code, and
the privacy notice /privacy.

/c/<number> shows anybody only the public view (number, state, stage deadlines in plain words;
models.lookup.PublicView). The history and the replies follow once the phone number or the
receipt's access code is checked: posted in the form, or carried by the receipt's link as
?k=<code> (?k=none: the receipt had no code). Checks are rate-limited per address and per
number (models.lookup); over the limit the page answers 429 and says when to try again.
The rules live in models.lookup; this module only renders.
"""

from __future__ import annotations

import io
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
import segno
from aiohttp import web

from config.settings import Settings
from handlers import lookup as lookup_texts
from handlers.i18n import LANGUAGES, format_date, pick_label, supported, translator
from handlers.selfservice import state_label
from handlers.webtexts import PRIVACY_TEXTS, STATUS_TEXTS, texts
from models.lookup import (
    CheckOutcome,
    Limits,
    check,
    normalise_code,
    private_view,
    public_view,
)
from models.numbering import normalise_number
from web.desk.i18n import accept_language

TEMPLATES = Path(__file__).parent / "templates"
LANG_COOKIE = "complaintdesk_lang"
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
}
PROOF_LIMIT = 64

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def page_language(request: web.Request, default: str) -> str:
    """?lang=, else the page's cookie, else the browser's languages, else the default."""
    asked = request.query.get("lang")
    if asked in LANGUAGES:
        return str(asked)
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return str(chosen)
    return accept_language(request.headers.get("Accept-Language")) or supported(default)


def render(template: str, status: int = 200, **context: Any) -> web.Response:
    body = _env.get_template(template).render(**context)
    headers = dict(PAGE_HEADERS)
    return web.Response(text=body, status=status, content_type="text/html", headers=headers)


def client_address(request: web.Request, forwarded_hops: int = 0) -> str:
    """The address the upload caps count: the peer, or with `forwarded_hops` reverse proxies
    in front, the address the outermost of them saw (from the right of X-Forwarded-For)."""
    peer = request.remote or "unknown"
    if forwarded_hops <= 0:
        return peer[:64]
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    if len(hops) < forwarded_hops:
        return peer[:64]
    return hops[-forwarded_hops][:64]


def limits_of(settings: Settings) -> Limits:
    return Limits(
        per_address=settings.lookup_per_address,
        per_number=settings.lookup_per_number,
        window=timedelta(minutes=settings.lookup_window_minutes),
    )


def split_proof(typed: str) -> tuple[str | None, str | None]:
    return lookup_texts.split_proof(typed[:PROOF_LIMIT])


def limited_text(lang: str, retry_after: int) -> str:
    minutes = max(1, math.ceil(retry_after / 60))
    return translator(lang)("Too many attempts. Please try again in {minutes} minutes.").format(
        minutes=minutes
    )


def qr_svg(url: str) -> str:
    """An SVG QR code of `url` (segno), for screens and printed receipts."""
    out = io.BytesIO()
    segno.make(url, error="m").save(
        out, kind="svg", scale=4, border=2, xmldecl=False, omitsize=True, title="QR"
    )
    return out.getvalue().decode("utf-8")


class PublicPages:
    def __init__(self, settings: Settings, profile: Any, now: Any) -> None:
        self.settings = settings
        self.profile = profile
        self.now = now

    def base_url(self, request: web.Request) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        return f"{request.scheme}://{request.host}"

    async def status(self, request: web.Request) -> web.Response:
        lang = page_language(request, self.settings.language)
        number = normalise_number(request.match_info["number"])
        key = request.query.get("k", "")
        code = normalise_code(key) if key and key != "none" else None
        if request.method == "POST":
            form = await request.post()
            phone, code = split_proof(str(form.get("proof") or ""))
            return await self._page(request, lang, number, phone=phone, code=code, tried=True)
        return await self._page(request, lang, number, code=code, tried=code is not None)

    async def _page(
        self,
        request: web.Request,
        lang: str,
        number: str | None,
        *,
        phone: str | None = None,
        code: str | None = None,
        tried: bool = False,
    ) -> web.Response:
        t = texts(STATUS_TEXTS, lang)
        tz = self.settings.tz
        view = await public_view(number) if number else None
        context: dict[str, Any] = {
            "lang": lang,
            "html_lang": lang.replace("_", "-"),
            "t": t,
            "number": number or request.match_info["number"][:32],
            "found": view is not None,
            "private": None,
            "problem": None,
            "languages": [(code_, name) for code_, name in _language_links()],
            "path": request.path,
            "heading": tuple(t["title"].split("{number}", 1))
            if "{number}" in t["title"]
            else (t["title"], ""),
        }
        if view is None:
            return render("status.html", 404, **context)
        context["state"] = state_label(translator(lang), view.state)
        context["stages"] = lookup_texts.stage_lines(view.stages, lang, tz)
        context["qr"] = qr_svg(self.base_url(request) + lookup_texts.progress_path(view.number))
        status = 200
        outcome: CheckOutcome | None = None
        if tried and (phone or code):
            outcome = await check(
                number=view.number,
                phone=phone,
                code=code,
                address=f"ip:{client_address(request, self.settings.forwarded_hops)}",
                now=self.now(),
                limits=limits_of(self.settings),
            )
        elif tried:
            context["problem"] = t["wrong"]
        if outcome is not None and outcome.status == "limited":
            context["problem"] = limited_text(lang, outcome.retry_after)
            response = render("status.html", 429, **context)
            response.headers["Retry-After"] = str(outcome.retry_after)
            return response
        if outcome is not None and outcome.status == "wrong":
            context["problem"] = t["wrong"]
            status = 403
        if outcome is not None and outcome.status == "ok" and outcome.complaint is not None:
            private = await private_view(outcome.complaint)
            context["private"] = {
                "filed": format_date(private.submitted_at, lang, tz)
                if private.submitted_at
                else "",
                "category": self._category(private.category, lang),
                "phone": private.contact_phone,
                "history": lookup_texts.history_lines(private.history, lang, tz),
                "reply": private.reply_text,
            }
        return render("status.html", status, **context)

    def _category(self, category: str | None, lang: str) -> str:
        if not category:
            return ""
        try:
            return str(self.profile.label("category", category, lang))
        except KeyError:
            return category

    async def qr(self, request: web.Request) -> web.Response:
        number = normalise_number(request.match_info["number"])
        if number is None:
            raise web.HTTPNotFound()
        key = request.query.get("k", "")
        code = normalise_code(key) if key and key != "none" else None
        url = self.base_url(request) + lookup_texts.progress_path(number, code)
        return web.Response(
            text=qr_svg(url),
            content_type="image/svg+xml",
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )

    async def privacy(self, request: web.Request) -> web.StreamResponse:
        """The organisation's notice (privacy_url, privacy_file), else one from the profile."""
        if self.settings.privacy_url:
            raise web.HTTPFound(self.settings.privacy_url)
        lang = page_language(request, self.settings.language)
        t = texts(PRIVACY_TEXTS, lang)
        context: dict[str, Any] = {
            "lang": lang,
            "html_lang": lang.replace("_", "-"),
            "t": t,
            "own_text": None,
            "languages": list(_language_links()),
            "path": request.path,
        }
        if self.settings.privacy_file is not None:
            context["own_text"] = self.settings.privacy_file.read_text(encoding="utf-8")
        organisation = pick_label(self.profile.name, lang)
        context["who"] = t["who"].format(organisation=organisation)
        context["kept"] = t["kept"].format(years=self.profile.retention_years)
        return render("privacy.html", **context)


def _language_links() -> list[tuple[str, str]]:
    return [("zh_CN", "简体"), ("zh_TW", "繁體"), ("en", "EN")]


def setup_public(app: web.Application, settings: Settings, profile: Any, now: Any) -> None:
    pages = PublicPages(settings, profile, now)
    app.router.add_get("/c/{number}", pages.status)
    app.router.add_post("/c/{number}", pages.status)
    app.router.add_get("/c/{number}/qr.svg", pages.qr)
    app.router.add_get("/privacy", pages.privacy)
