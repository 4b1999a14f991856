"""Phone, incident-time and free-text parsers of the intake form."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from handlers.validators import InvalidInput, normalise_phone, parse_incident_time, validate_text

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai, a Wednesday


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "+8613812345678"),
        ("138 1234 5678", "+8613812345678"),
        ("138-1234-5678", "+8613812345678"),
        ("+86 138 1234 5678", "+8613812345678"),
        ("+86-13812345678", "+8613812345678"),
        ("0086 138 1234 5678", "+8613812345678"),
        ("86 13812345678", "+8613812345678"),
        ("8613812345678", "+8613812345678"),
        ("１３８１２３４５６７８", "+8613812345678"),  # full-width digits
        ("19912345678", "+8619912345678"),
        ("010-12345678", "+86-10-12345678"),
        ("01012345678", "+86-10-12345678"),
        ("(010) 1234 5678", "+86-10-12345678"),
        ("（021）12345678", "+86-21-12345678"),
        ("0755-1234567", "+86-755-1234567"),
        ("0755-12345678", "+86-755-12345678"),
        ("+86 10 1234 5678", "+86-10-12345678"),
        ("+86-755-12345678", "+86-755-12345678"),
        ("010-12345678-123", "+86-10-12345678 ext. 123"),
        ("0755 12345678 转 801", "+86-755-12345678 ext. 801"),
        ("010-12345678 ext. 5", "+86-10-12345678 ext. 5"),
    ],
)
def test_phone_numbers_are_normalised(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "12345",
        "1381234567",  # ten digits
        "138123456789",  # twelve digits
        "12812345678",  # no mobile range starts with 12
        "23812345678",
        "01112345678",  # 011 is no area code
        "010-1234567",  # Beijing numbers have eight digits
        "13812345678 转 12",  # mobiles have no extension
        "call me",
        "",
    ],
)
def test_invalid_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as error:
        normalise_phone(raw)
    assert error.value.reason == "phone_invalid"


def _local(text: str) -> tuple[str, str]:
    parsed = parse_incident_time(text, now=NOW, tz=SHANGHAI)
    assert parsed.at.tzinfo is not None and parsed.at.utcoffset().total_seconds() == 0
    return parsed.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"), parsed.precision


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ("2026-11-20 09:00", "2026-11-20 09:00"),
        ("2026/11/20 9:05", "2026-11-20 09:05"),
        ("2026.11.20 21:15", "2026-11-20 21:15"),
        ("2026年11月20日 9点", "2026-11-20 09:00"),
        ("11月20日下午3点", "2026-11-20 15:00"),
        ("11-20 09:00", "2026-11-20 09:00"),
        ("today 14:30", "2026-11-25 14:30"),
        ("Today 14:30", "2026-11-25 14:30"),
        ("今天14:30", "2026-11-25 14:30"),
        ("今天 14：30", "2026-11-25 14:30"),
        ("昨天下午3点", "2026-11-24 15:00"),
        ("昨天晚上八点半", "2026-11-24 20:30"),
        ("昨晚8点", "2026-11-24 20:00"),
        ("昨天中午12点", "2026-11-24 12:00"),
        ("前天上午10点", "2026-11-23 10:00"),
        ("yesterday 15:00", "2026-11-24 15:00"),
        ("yesterday 3pm", "2026-11-24 15:00"),
        ("yesterday 3:30 p.m.", "2026-11-24 15:30"),
        ("3 hours ago", "2026-11-25 13:00"),
        ("an hour ago", "2026-11-25 15:00"),
        ("45 minutes ago", "2026-11-25 15:15"),
        ("3小时前", "2026-11-25 13:00"),
        ("三个小时前", "2026-11-25 13:00"),
        ("半小时前", "2026-11-25 15:30"),
        ("30分钟前", "2026-11-25 15:30"),
        ("刚才", "2026-11-25 16:00"),
        ("下午3点", "2026-11-25 15:00"),
        ("9:30", "2026-11-25 09:30"),
    ],
)
def test_incident_times_are_read_in_the_local_zone(text: str, local: str) -> None:
    assert _local(text) == (local, "minute")


def test_a_bare_date_keeps_day_precision_and_is_stored_as_utc() -> None:
    parsed = parse_incident_time("2026-11-20", now=NOW, tz=SHANGHAI)
    assert parsed.precision == "day"
    assert parsed.at == datetime(2026, 11, 19, 16, 0, tzinfo=UTC)  # local midnight
    assert _local("昨天") == ("2026-11-24 00:00", "day")
    assert _local("today") == ("2026-11-25 00:00", "day")


# What people type (issue 13, item 5), read on Wednesday 2026-11-25 16:00 in Shanghai: the
# instant and how exactly it was given.
@pytest.mark.parametrize(
    ("text", "local", "precision"),
    [
        ("上周五下午", "2026-11-20 15:00", "period"),
        ("上周五", "2026-11-20 00:00", "day"),
        ("上星期五下午3点", "2026-11-20 15:00", "minute"),
        ("上礼拜一上午", "2026-11-16 10:00", "period"),
        ("上上周日", "2026-11-15 00:00", "day"),
        ("周一", "2026-11-23 00:00", "day"),
        ("星期三上午9点", "2026-11-25 09:00", "minute"),
        ("周四", "2026-11-19 00:00", "day"),  # the latest Thursday: last week's
        ("这周二晚上", "2026-11-24 20:00", "period"),
        ("本周一", "2026-11-23 00:00", "day"),
        ("上周", "2026-11-16 00:00", "week"),
        ("这个星期", "2026-11-23 00:00", "week"),
        ("上个月", "2026-10-01 00:00", "month"),
        ("上月", "2026-10-01 00:00", "month"),
        ("本月", "2026-11-01 00:00", "month"),
        ("十一月", "2026-11-01 00:00", "month"),
        ("12月", "2025-12-01 00:00", "month"),  # December not yet come: last year's
        ("2026年3月", "2026-03-01 00:00", "month"),
        ("十一月二十日", "2026-11-20 00:00", "day"),
        ("十一月二十日下午", "2026-11-20 15:00", "period"),
        ("十月三十一号", "2026-10-31 00:00", "day"),
        ("12月1日上午", "2025-12-01 10:00", "period"),
        ("11月1日上午", "2026-11-01 10:00", "period"),
        ("11月24日晚上8点", "2026-11-24 20:00", "minute"),
        ("前天晚上", "2026-11-23 20:00", "period"),
        ("昨天下午", "2026-11-24 15:00", "period"),
        ("昨天", "2026-11-24 00:00", "day"),
        ("昨晚", "2026-11-24 20:00", "period"),
        ("今早", "2026-11-25 08:00", "period"),
        ("今天上午", "2026-11-25 10:00", "period"),
        ("上午", "2026-11-25 10:00", "period"),
        ("大前天", "2026-11-22 00:00", "day"),
        ("大前天中午", "2026-11-22 12:00", "period"),
        ("3天前", "2026-11-22 00:00", "day"),
        ("三天前", "2026-11-22 00:00", "day"),
        ("2 days ago", "2026-11-23 00:00", "day"),
        ("2天前", "2026-11-23 00:00", "day"),
        ("2026-11-20 上午", "2026-11-20 10:00", "period"),
        ("11月20日 凌晨", "2026-11-20 03:00", "period"),
    ],
)
def test_times_people_type(text: str, local: str, precision: str) -> None:
    assert _local(text) == (local, precision)


@pytest.mark.parametrize("text", ["今天晚上", "这周五", "本周日", "下个月"])
def test_periods_not_yet_come_are_future_or_unread(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_incident_time(text, now=NOW, tz=SHANGHAI)
    assert error.value.reason in ("datetime_future", "datetime_unparsed")


def test_relative_times_follow_the_injected_clock() -> None:
    monday_morning = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)  # Mon 09:00 in Shanghai
    parsed = parse_incident_time("上周五下午", now=monday_morning, tz=SHANGHAI)
    assert parsed.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") == "2026-01-02 15:00"
    parsed = parse_incident_time("上个月", now=monday_morning, tz=SHANGHAI)
    assert (parsed.at.astimezone(SHANGHAI).date().isoformat(), parsed.precision) == (
        "2025-12-01",
        "month",
    )
    parsed = parse_incident_time("周一", now=monday_morning, tz=SHANGHAI)
    assert parsed.at.astimezone(SHANGHAI).date().isoformat() == "2026-01-05"  # today


def test_a_date_without_year_after_today_means_last_year() -> None:
    assert _local("12-30 10:00") == ("2025-12-30 10:00", "minute")


@pytest.mark.parametrize("text", ["today 17:00", "2026-11-26", "2026-11-25 16:01", "2027-01-01"])
def test_future_times_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_incident_time(text, now=NOW, tz=SHANGHAI)
    assert error.value.reason == "datetime_future"


@pytest.mark.parametrize(
    "text",
    [
        "blah",
        "2026-13-01",
        "2026-02-30",
        "today at noonish",
        "25:00",
        "昨天下午茶",
        "十三月",
        "周八",
    ],
)
def test_unreadable_times_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_incident_time(text, now=NOW, tz=SHANGHAI)
    assert error.value.reason == "datetime_unparsed"


def test_the_zone_decides_which_day_today_is() -> None:
    # 20:00 UTC on the 24th is already the 25th in Shanghai.
    late = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    parsed = parse_incident_time("today 03:00", now=late, tz=SHANGHAI)
    assert parsed.at == datetime(2026, 11, 24, 19, 0, tzinfo=UTC)


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        parse_incident_time("today 10:00", now=datetime(2026, 11, 25), tz=SHANGHAI)


def test_text_is_trimmed_and_limited() -> None:
    assert validate_text("  hello there  ", min_length=5, max_length=20) == "hello there"
    with pytest.raises(InvalidInput) as too_long:
        validate_text("x" * 10_000, max_length=2000)
    assert too_long.value.reason == "text_too_long"
    assert too_long.value.params == {"length": 10_000, "limit": 2000}
    with pytest.raises(InvalidInput) as too_short:
        validate_text("short", min_length=10)
    assert too_short.value.reason == "text_too_short"
    with pytest.raises(InvalidInput) as empty:
        validate_text("   ")
    assert empty.value.reason == "text_empty"
