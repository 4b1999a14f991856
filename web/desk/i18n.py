"""The desk's page chrome in zh_CN, zh_TW and en: the Babel domain `desk`.

The catalogs sit beside the chat's (handlers/locales/<lang>/LC_MESSAGES/desk.{po,mo}) but in a
domain of their own, so page texts and chat texts are edited without touching each other.
Texts from the chat desk (state names, action names, refusal reasons) keep coming from the
`messages` domain through handlers.staff, so both desks say the same thing. After changing
texts in web/desk:

    pybabel extract -F web/desk/babel.cfg -k N_ --no-location -o handlers/locales/desk.pot web/desk/
    pybabel update -i handlers/locales/desk.pot -d handlers/locales -D desk
    (translate the new entries in the zh_CN and zh_TW desk.po files)
    pybabel compile -d handlers/locales -D desk

tests/test_desk_i18n.py fails when a desk text has no zh_CN or zh_TW translation.
"""

from __future__ import annotations

from functools import cache

from aiohttp import web
from babel.support import NullTranslations, Translations

from handlers.i18n import LANGUAGES, LOCALE_DIR, Gettext, normalise_language, supported

DOMAIN = "desk"
LANG_COOKIE = "desk_lang"


@cache
def _catalog(lang: str) -> NullTranslations:
    return Translations.load(str(LOCALE_DIR), [lang], DOMAIN)


def desk_gettext(lang: str | None) -> Gettext:
    """The gettext function of the desk domain for `lang`."""
    return _catalog(supported(lang)).gettext


def accept_language(header: str | None) -> str | None:
    """The first language of ours in an Accept-Language header, by the header's q order."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, index, tag.strip()))
    for quality, _index, tag in sorted(ranked):
        if quality < 0 and (lang := normalise_language(tag)):
            return lang
    return None


def request_language(request: web.Request, default: str) -> str:
    """The language for this page: the desk's cookie, else the browser's, else `default`."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return accept_language(request.headers.get("Accept-Language")) or supported(default)
