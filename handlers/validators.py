"""Parsers for what people type into the intake form: phone numbers, incident times, free text.

Pure functions. Each returns the normalised value or raises `InvalidInput` carrying a reason code
(and the numbers the message needs); the dialog turns the code into a localised re-prompt.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

InvalidReason = Literal[
    "phone_invalid",
    "datetime_unparsed",
    "datetime_future",
    "text_empty",
    "text_too_short",
    "text_too_long",
]


class InvalidInput(ValueError):
    """Input that does not fit the field; `reason` picks the message, `params` fill it."""

    def __init__(self, reason: InvalidReason, **params: int | str) -> None:
        super().__init__(reason)
        self.reason: InvalidReason = reason
        self.params: dict[str, int | str] = params


def small_int(text: str | None, max_digits: int = 9) -> int | None:
    """The number typed as `text` ("3", full-width "３"), or None. Only decimal digits count:
    "²" is a digit to str.isdigit but int() refuses it, and a very long run of digits is no
    answer to any question (int() refuses over 4300 of them)."""
    if not text or len(text) > max_digits or not text.isdecimal():
        return None
    return int(text)


def _fold(text: str) -> str:
    """Full-width digits and colons (common on Chinese keyboards) become ASCII."""
    return unicodedata.normalize("NFKC", text).strip()


# ---------------------------------------------------------------- phone

_INTERNATIONAL = re.compile(r"^(?:\+\s*86|0086)")
_EXTENSION_WORD = re.compile(
    r"\s*(?:ext\.?|extension|x|转|轉|分机|分機|#)\s*(\d{1,6})$", re.IGNORECASE
)
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def _landline_parts(digits: str) -> tuple[str, str] | None:
    """Split a national landline number (with its trunk 0) into area code and subscriber number.

    010 and 02x are the two-digit area codes (Beijing, Shanghai, Guangzhou, …) with 8-digit
    subscriber numbers; every other area code has three digits and 7 or 8 subscriber digits.
    """
    if not digits.startswith("0") or digits.startswith("00"):
        return None
    if digits.startswith(("010", "02")):
        area, subscriber = digits[1:3], digits[3:]
        return (area, subscriber) if len(subscriber) == 8 else None
    if digits.startswith("01"):
        return None  # no other area code starts with 01
    area, subscriber = digits[1:4], digits[4:]
    return (area, subscriber) if len(subscriber) in (7, 8) else None


def normalise_phone(raw: str) -> str:
    """A Chinese mobile or landline number in one canonical form.

    Mobiles become "+8613812345678"; landlines "+86-10-12345678", plus " ext. 123" when an
    extension was given ("转123", "ext 123", or a last dash group after the subscriber number).
    Accepts +86 / 0086 / 86 prefixes, spaces, dashes, dots and brackets.
    """
    text = _fold(raw).replace("（", "(").replace("）", ")")
    extension: str | None = None
    ext_match = _EXTENSION_WORD.search(text)
    if ext_match:
        extension, text = ext_match.group(1), text[: ext_match.start()]
    else:
        groups = [g for g in re.split(r"[\s\-.()]+", text) if g]
        # "010-12345678-123": a short group after a 7–8 digit subscriber group is an extension.
        if len(groups) >= 3 and len(groups[-1]) <= 6 and len(groups[-2]) in (7, 8):
            extension = groups[-1]
            text = text[: text.rstrip().rfind(groups[-1])]
    international = bool(_INTERNATIONAL.match(text))
    compact = re.sub(r"[\s\-.()]", "", _INTERNATIONAL.sub("", text, count=1))
    if not compact.isdigit():
        raise InvalidInput("phone_invalid")
    if not international and len(compact) == 13 and compact.startswith("86"):
        compact, international = compact[2:], True  # "8613812345678"
    if _MOBILE.match(compact):
        if extension:
            raise InvalidInput("phone_invalid")
        return "+86" + compact
    if international and not compact.startswith("0"):
        compact = "0" + compact  # the trunk 0 is dropped after +86: +86 10 12345678
    parts = _landline_parts(compact)
    if parts is None:
        raise InvalidInput("phone_invalid")
    area, subscriber = parts
    result = f"+86-{area}-{subscriber}"
    return f"{result} ext. {extension}" if extension else result


# ---------------------------------------------------------------- free text


def validate_text(raw: str, *, min_length: int = 1, max_length: int = 2000) -> str:
    """Trimmed text within the length limits (counted in characters, as people see them)."""
    text = raw.strip()
    if not text:
        raise InvalidInput("text_empty")
    if len(text) > max_length:
        raise InvalidInput("text_too_long", length=len(text), limit=max_length)
    if len(text) < min_length:
        raise InvalidInput("text_too_short", length=len(text), limit=min_length)
    return text


# ---------------------------------------------------------------- date and time

# How exactly the person gave the time: to the minute, a part of a day ("前天晚上"), a day, a
# week ("上周") or a month ("上个月"). `at` is then the start of that period, except for a part
# of a day, which is its representative hour (PERIOD_HOURS).
Precision = Literal["minute", "period", "day", "week", "month"]


@dataclass(frozen=True, slots=True)
class ParsedTime:
    at: datetime  # aware UTC
    precision: Precision = "minute"  # "day" when only a date was given


# A part of the day typed without a clock, and the hour that stands for it. The hours are
# distinct, so a stored instant with precision "period" names its part of the day again.
PERIOD_HOURS: dict[str, int] = {
    "凌晨": 3, "早上": 8, "早晨": 8, "清晨": 8, "上午": 10, "中午": 12, "下午": 15,
    "傍晚": 18, "晚上": 20, "夜里": 23, "夜间": 23, "半夜": 23,
}  # fmt: skip
PERIOD_OF_HOUR: dict[int, str] = {3: "凌晨", 8: "早上", 10: "上午", 12: "中午", 15: "下午",
                                  18: "傍晚", 20: "晚上", 23: "夜里"}  # fmt: skip


_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip


def _cn_number(token: str) -> int | None:
    """Arabic or simple Chinese numerals up to 99 ("3", "十二", "二十五", "半" is handled apart)."""
    if token.isdigit():
        return small_int(token)
    if not token or any(ch not in _CN_DIGITS and ch != "十" for ch in token):
        return None
    if "十" not in token:
        return _CN_DIGITS[token] if len(token) == 1 else None
    tens, _, ones = token.partition("十")
    high = _CN_DIGITS.get(tens, -1) if tens else 1
    low = _CN_DIGITS.get(ones, -1) if ones else 0
    return None if high < 0 or low < 0 else high * 10 + low


_NUM = r"[0-9零〇一二两三四五六七八九十]+"

_DAY_WORDS: dict[str, int] = {
    "today": 0, "今天": 0, "今日": 0, "yesterday": 1, "昨天": 1, "昨日": 1, "昨晚": 1,
    "前天": 2, "前日": 2, "day before yesterday": 2, "the day before yesterday": 2,
    "大前天": 3, "今早": 0, "今晚": 0, "昨早": 1,
}  # fmt: skip

# Period words shift a 12-hour clock reading; the value says whether it means afternoon.
_PERIODS: dict[str, bool] = {
    "凌晨": False, "早上": False, "早晨": False, "上午": False, "中午": True, "下午": True,
    "傍晚": True, "晚上": True, "夜里": True, "夜间": True, "晚": True,
    "am": False, "a.m.": False, "pm": True, "p.m.": True,
}  # fmt: skip

_CLOCK = re.compile(r"^(\d{1,2})[:：.](\d{2})$")
_CN_CLOCK = re.compile(
    rf"^(?P<period>凌晨|早上|早晨|上午|中午|下午|傍晚|晚上|夜里|夜间)?\s*(?P<h>{_NUM})\s*[点點时時]"
    rf"\s*(?:(?P<half>半)|(?P<m>{_NUM})\s*分?)?$"
)
_EN_CLOCK = re.compile(r"^(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<period>a\.?m\.?|p\.?m\.?)$", re.I)

_ISO_DATE = re.compile(
    r"^(?P<y>\d{4})[-/.](?P<mo>\d{1,2})[-/.](?P<d>\d{1,2})(?:日)?\s*(?P<rest>.*)$"
)
_CN_DATE = re.compile(
    rf"^(?:(?P<y>\d{{4}})\s*年)?\s*(?P<mo>{_NUM})\s*月\s*(?P<d>{_NUM})\s*[日号號]\s*(?P<rest>.*)$"
)
_CN_MONTH = re.compile(rf"^(?:(?P<y>\d{{4}})\s*年)?\s*(?P<mo>{_NUM})\s*月(?:份)?$")
_REL_MONTH = re.compile(r"^(?P<which>上上|上|这|這|本)\s*(?:个|個)?\s*月(?:份)?$")
_WEEK = r"(?:周|週|星期|礼拜|禮拜)"
_REL_WEEK = re.compile(rf"^(?P<which>上上|上|这|這|本)\s*(?:个|個)?\s*{_WEEK}$")
_WEEKDAY = re.compile(
    rf"^(?P<which>上上|上|这|這|本)?\s*(?:个|個)?\s*{_WEEK}\s*(?P<d>[一二三四五六日天1-7])\s*(?P<rest>.*)$"
)
_WEEKDAY_INDEX = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
                  "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}  # fmt: skip
_WEEKS_BACK = {None: 0, "这": 0, "這": 0, "本": 0, "上": 1, "上上": 2}
_SHORT_DATE = re.compile(r"^(?P<mo>\d{1,2})[-/](?P<d>\d{1,2})(?:\s+(?P<rest>.*))?$")

_AGO_EN = re.compile(
    r"^(?P<n>\d+|an?|one|half an?)\s*(?P<unit>minutes?|mins?|hours?|hrs?|days?)\s+ago$", re.I
)
_AGO_CN = re.compile(
    rf"^(?P<n>{_NUM}|半)\s*(?P<unit>分钟|分鐘|个?小时|個?小時|个?钟头|天|日)\s*[以之]?前$"
)


def _parse_clock(text: str) -> time | None:
    """ "14:30", "9点半", "下午3点", "晚上八点十分", "3pm", "3:30 pm" → a wall-clock time."""
    text = text.strip()
    if not text:
        return None
    match = _CLOCK.match(text)
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        return time(hour, minute) if hour < 24 and minute < 60 else None
    match = _CN_CLOCK.match(text)
    if match:
        hour = _cn_number(match.group("h"))
        minute = 30 if match.group("half") else _cn_number(match.group("m") or "0")
        return _apply_period(hour, minute, match.group("period"))
    match = _EN_CLOCK.match(text)
    if match:
        period = match.group("period").lower().replace(".", "")
        return _apply_period(int(match.group("h")), int(match.group("m") or 0), period, strict=True)
    # A bare period word before an ISO clock: "下午 3:30".
    for word, afternoon in _PERIODS.items():
        if text.startswith(word) and len(word) > 1:
            rest = _CLOCK.match(text[len(word) :].strip())
            if rest:
                period = "下午" if afternoon else "上午"
                return _apply_period(int(rest.group(1)), int(rest.group(2)), period)
    return None


def _apply_period(
    hour: int | None, minute: int | None, period: str | None, *, strict: bool = False
) -> time | None:
    if hour is None or minute is None or minute >= 60 or hour >= 24:
        return None
    if period:
        afternoon = _PERIODS.get(period, _PERIODS.get(period.replace(".", "")))
        if strict and not 1 <= hour <= 12:
            return None
        if afternoon and hour < 12:
            hour += 12
        elif afternoon is False and hour == 12:
            hour = 0  # 12 am / 凌晨12点 is midnight
        elif period == "中午" and hour == 12:
            hour = 12
    return time(hour, minute)


def _at(day: date, clock: time | None, tz: ZoneInfo) -> tuple[datetime, Precision]:
    local = datetime.combine(day, clock or time(0, 0), tzinfo=tz)
    return local, "minute" if clock else "day"


def _split_day_word(text: str) -> tuple[int, str] | None:
    lowered = text.lower()
    for word in sorted(_DAY_WORDS, key=len, reverse=True):
        if lowered.startswith(word):
            rest = text[len(word) :].strip().lstrip(",，").strip()
            # "昨晚8点" keeps its evening meaning, "今早" its morning one.
            implied = {"昨晚": "晚上", "今晚": "晚上", "今早": "早上", "昨早": "早上"}.get(word)
            if implied and not rest.startswith(tuple(_PERIODS)):
                rest = implied + rest
            return _DAY_WORDS[word], rest
    return None


def _parse_ago(text: str, now: datetime) -> tuple[datetime, Precision] | None:
    """ "3 hours ago", "3小时前": to the minute; "3天前", "2 days ago": that day."""
    match = _AGO_EN.match(text)
    if match:
        token = match.group("n").lower()
        amount = {"a": 1.0, "an": 1.0, "one": 1.0}.get(token)
        if token.startswith("half"):
            amount = 0.5
        if amount is None:
            amount = float(token)
        unit = match.group("unit").lower()
        if unit.startswith("m"):
            return now - timedelta(minutes=amount), "minute"
        if unit.startswith("h"):
            return now - timedelta(hours=amount), "minute"
        return now - timedelta(days=amount), "day"
    match = _AGO_CN.match(text)
    if match:
        token = match.group("n")
        count = 0.5 if token == "半" else _cn_number(token)
        if count is None:
            return None
        unit = match.group("unit")
        if unit.startswith("分"):
            return now - timedelta(minutes=count), "minute"
        if unit in ("天", "日"):
            return now - timedelta(days=count), "day"
        return now - timedelta(hours=count), "minute"
    return None


_NOW_WORDS = frozenset({"now", "just now", "刚才", "刚刚", "剛才", "剛剛", "现在", "現在"})


def parse_incident_time(raw: str, *, now: datetime, tz: ZoneInfo) -> ParsedTime:
    """When something happened, from what a person types, read in the local zone `tz`.

    Accepts ISO-like dates with an optional clock ("2026-11-20 09:00", "2026/11/20", "11月20日
    下午3点", "十一月三十日"), day words ("昨天", "前天晚上", "today 14:30", "昨天下午3点"),
    weekdays ("上周五下午", "周三上午10点"), weeks and months ("上周", "上个月", "11月") and
    offsets ("3 hours ago", "3小时前", "3天前", "just now", "刚才"). A part of a day without a
    clock ("晚上") is kept as such (precision "period"). A time in the future is refused: a
    complaint is about something that already happened.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    text = re.sub(r"\s+", " ", _fold(raw))
    lowered = text.lower()
    local_now = now.astimezone(tz)
    result: tuple[datetime, Precision] | None = None

    if lowered in _NOW_WORDS:
        result = (local_now.replace(second=0, microsecond=0), "minute")
    elif (ago := _parse_ago(lowered if lowered.isascii() else text, now)) is not None:
        instant, precision = ago
        local = instant.astimezone(tz).replace(second=0, microsecond=0)
        result = _at(local.date(), None, tz) if precision == "day" else (local, precision)
    else:
        result = _parse_span(text, local_now, tz) or _parse_day_expression(text, local_now, tz)

    if result is None:
        raise InvalidInput("datetime_unparsed")
    local, precision = result
    # A date, week or month counts as a whole, so only one starting after today is future.
    if precision in ("minute", "period"):
        is_future = local > local_now
    else:
        is_future = local.date() > local_now.date()
    if is_future:
        raise InvalidInput("datetime_future")
    return ParsedTime(at=local.astimezone(ZoneInfo("UTC")), precision=precision)


def _with_rest(day: date, rest: str, tz: ZoneInfo) -> tuple[datetime, Precision] | None:
    """A day plus what follows it: nothing (the day), a part of the day, or a clock reading."""
    rest = rest.strip().lstrip(",，").strip()
    if not rest:
        return _at(day, None, tz)
    if rest in PERIOD_HOURS:
        return datetime.combine(day, time(PERIOD_HOURS[rest], 0), tzinfo=tz), "period"
    clock = _parse_clock(rest)
    return None if clock is None else _at(day, clock, tz)


def _parse_span(text: str, local_now: datetime, tz: ZoneInfo) -> tuple[datetime, Precision] | None:
    """A whole week or month: "上周", "这个星期", "上个月", "本月", "11月", "2026年十一月"."""
    today = local_now.date()
    if match := _REL_WEEK.match(text):
        monday = today - timedelta(days=today.weekday() + 7 * _WEEKS_BACK[match.group("which")])
        return datetime.combine(monday, time(0, 0), tzinfo=tz), "week"
    if match := _REL_MONTH.match(text):
        back = {"上上": 2, "上": 1}.get(match.group("which"), 0)
        index = today.year * 12 + today.month - 1 - back
        first = date(index // 12, index % 12 + 1, 1)
        return datetime.combine(first, time(0, 0), tzinfo=tz), "month"
    if match := _CN_MONTH.match(text):
        month = _cn_number(match.group("mo"))
        if month is None or not 1 <= month <= 12:
            return None
        year = int(match.group("y")) if match.group("y") else today.year
        first = date(year, month, 1)
        if not match.group("y") and first > today:
            first = first.replace(year=year - 1)  # "12月" typed in January: last December
        return datetime.combine(first, time(0, 0), tzinfo=tz), "month"
    return None


def _parse_day_expression(
    text: str, local_now: datetime, tz: ZoneInfo
) -> tuple[datetime, Precision] | None:
    today = local_now.date()
    if (day_word := _split_day_word(text)) is not None:
        days_back, rest = day_word
        return _with_rest(today - timedelta(days=days_back), rest, tz)
    if match := _WEEKDAY.match(text):
        weekday = _WEEKDAY_INDEX[match.group("d")]
        which = match.group("which")
        if which is None:  # "周五": the latest Friday, today included
            day = today - timedelta(days=(today.weekday() - weekday) % 7)
        else:
            monday = today - timedelta(days=today.weekday() + 7 * _WEEKS_BACK[which])
            day = monday + timedelta(days=weekday)
        return _with_rest(day, match.group("rest"), tz)
    if (clock := _parse_clock(text)) is not None:
        return _at(today, clock, tz)  # a bare clock reading means today
    if text in PERIOD_HOURS:
        return _with_rest(today, text, tz)  # "上午": this morning
    return _parse_dated(text, local_now, tz)


def _parse_dated(text: str, local_now: datetime, tz: ZoneInfo) -> tuple[datetime, Precision] | None:
    match = _ISO_DATE.match(text) or _CN_DATE.match(text) or _SHORT_DATE.match(text)
    if not match:
        return None
    groups = match.groupdict()
    year_given = groups.get("y")
    month, day_of_month = _cn_number(groups["mo"]), _cn_number(groups["d"])
    if month is None or day_of_month is None:
        return None
    try:
        day = date(int(year_given) if year_given else local_now.year, month, day_of_month)
    except ValueError:
        return None
    if not year_given and day > local_now.date():
        # "12-30" typed in January means last December.
        try:
            day = day.replace(year=day.year - 1)
        except ValueError:
            return None
    return _with_rest(day, groups.get("rest") or "", tz)
