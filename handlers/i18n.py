"""Message catalogs (gettext, compiled with Babel) and locale-aware formatting.

Message ids are English; catalogs exist for zh_CN (the default), zh_TW and en under
handlers/locales/<lang>/LC_MESSAGES/messages.{po,mo} (the en catalog is empty: English falls
back to the ids). After changing texts in the code:

    pybabel extract -k N_ --no-location -o handlers/locales/messages.pot handlers/
    pybabel update -i handlers/locales/messages.pot -d handlers/locales -D messages
    (translate the new entries in the zh_CN and zh_TW .po files)
    pybabel compile -d handlers/locales -D messages

tests/test_dialog_i18n.py fails when a message in the code has no zh_CN or zh_TW translation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
from babel import Locale
from babel.dates import format_skeleton
from babel.support import NullTranslations, Translations

# The language codes and profile-text picking are plain values shared with models/: defined in
# config.languages, re-exported here with the catalogs.
from config.languages import DEFAULT_LANGUAGE as DEFAULT_LANGUAGE
from config.languages import LANGUAGES as LANGUAGES
from config.languages import pick_label as pick_label
from config.languages import supported as supported

LOCALE_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"

# Each language named in itself, for the /lang choice.
LANGUAGE_NAMES: Mapping[str, str] = {"zh_CN": "简体中文", "zh_TW": "繁體中文", "en": "English"}

Gettext = Callable[[str], str]


def normalise_language(hint: str | None) -> str | None:
    """Map a platform language hint ("en-US", "zh-hans", "zh-HK", "zh_TW") to one of ours."""
    if not hint:
        return None
    code = hint.strip().replace("_", "-").lower()
    if code.startswith("en"):
        return "en"
    if code.startswith("zh"):
        traditional = ("hant", "-tw", "-hk", "-mo")
        return "zh_TW" if any(part in code for part in traditional) else "zh_CN"
    return None


@cache
def _catalog(lang: str) -> NullTranslations:
    return Translations.load(str(LOCALE_DIR), [lang], DOMAIN)


def translator(lang: str | None) -> Gettext:
    """The gettext function for `lang` (unknown languages get the default language)."""
    return _catalog(supported(lang)).gettext


def N_(message: str) -> str:
    """Mark a message for extraction without translating it yet (translated where shown)."""
    return message


_CJK_PUNCTUATION = tuple("。，、；：！？（）「」“”")


def append_note(text: str, note: str) -> str:
    """Join two sentences: with a space in English, without one next to Chinese punctuation."""
    joiner = "" if text.endswith(_CJK_PUNCTUATION) or note.startswith(_CJK_PUNCTUATION) else " "
    return f"{text}{joiner}{note}"


@cache
def _babel_locale(lang: str) -> Locale:
    return Locale.parse(supported(lang))


def format_datetime(instant: datetime, lang: str, tz: ZoneInfo) -> str:
    """Date and time to the minute, in the zone people live in: "2026年11月30日 17:00"."""
    locale = _babel_locale(lang)
    day = format_skeleton("yMMMd", instant, tzinfo=tz, locale=locale)
    clock = format_skeleton("Hm", instant, tzinfo=tz, locale=locale)
    return f"{day}, {clock}" if supported(lang) == "en" else f"{day} {clock}"


def format_date(instant: datetime, lang: str, tz: ZoneInfo) -> str:
    """The local calendar day of `instant`: "2026年11月30日" / "Nov 30, 2026"."""
    return format_skeleton("yMMMd", instant, tzinfo=tz, locale=_babel_locale(lang))


def format_month_day(instant: datetime, lang: str, tz: ZoneInfo) -> str:
    """The local day without the year, for a date close by: "12月7日" / "Dec 7"."""
    return format_skeleton("MMMd", instant, tzinfo=tz, locale=_babel_locale(lang))


# The parts of a day a person may give instead of a clock (handlers.validators.PERIOD_OF_HOUR).
PERIOD_NAMES: Mapping[str, str] = {
    "凌晨": N_("in the early hours"),
    "早上": N_("in the early morning"),
    "上午": N_("in the morning"),
    "中午": N_("at noon"),
    "下午": N_("in the afternoon"),
    "傍晚": N_("at dusk"),
    "晚上": N_("in the evening"),
    "夜里": N_("at night"),
}


def format_incident_time(instant: datetime, precision: str | None, lang: str, tz: ZoneInfo) -> str:
    """When something happened, as exactly as the person said it: "2026年11月24日 15:00",
    "2026年11月24日 晚上", "2026年11月24日", "2026年11月16日起的一周", "2026年10月"."""
    from handlers.validators import PERIOD_OF_HOUR

    _ = translator(lang)
    locale = _babel_locale(lang)
    match precision:
        case "day":
            return format_date(instant, lang, tz)
        case "month":
            return format_skeleton("yMMM", instant, tzinfo=tz, locale=locale)
        case "week":
            return _("the week of {date}").format(date=format_date(instant, lang, tz))
        case "period":
            period = PERIOD_OF_HOUR.get(instant.astimezone(tz).hour)
            if period is None:
                return format_datetime(instant, lang, tz)
            day, word = format_date(instant, lang, tz), _(PERIOD_NAMES[period])
            return f"{day}, {word}" if supported(lang) == "en" else f"{day} {word}"
        case _:
            return format_datetime(instant, lang, tz)


def format_phone(stored: str | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """A stored phone number ("+8613800138000", "+86-10-12345678 ext. 123", as
    handlers.validators.normalise_phone keeps it) in the national format people read:
    "138 0013 8000", "010-1234 5678", "010-1234 5678 转123". Formatted with `phonenumbers`;
    a number it cannot read is shown as stored."""
    if not stored:
        return ""
    number_part, _sep, extension = stored.partition(" ext. ")
    try:
        number = phonenumbers.parse(number_part, "CN")
    except phonenumbers.NumberParseException:
        return stored
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    if not phonenumbers.is_valid_number(number):
        digits = number_part.removeprefix("+86-").split("-")
        national = "0" + "-".join(digits) if len(digits) == 2 else national
    elif national.startswith("0") and " " in national:
        area, rest = national.split(" ", 1)  # a landline: 010-1234 5678
        national = f"{area}-{rest}"
    if extension:
        _ = translator(lang)
        ext = _("ext. {extension}").format(extension=extension)
        national = f"{national} {ext}"
    return national


# A stage's length in plain words, singular and plural ("3个工作日" / "3 working days").
TERMS: dict[str, tuple[str, str]] = {
    "working_days": (N_("1 working day"), N_("{count} working days")),
    "calendar_days": (N_("1 day"), N_("{count} days")),
    "hours": (N_("1 hour"), N_("{count} hours")),
    "minutes": (N_("1 minute"), N_("{count} minutes")),
}


def format_term(amount: int, unit: str, lang: str) -> str:
    """A deadline's length as people say it: "3个工作日", "24小时", "3 working days"."""
    _ = translator(lang)
    one, many = TERMS.get(unit, ("{count} " + unit, "{count} " + unit))
    return _(one) if amount == 1 else _(many).format(count=amount)
