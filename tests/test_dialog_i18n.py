"""The message catalogs cover every text of the dialog, and formatting follows the language."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from handlers.i18n import (
    LOCALE_DIR,
    append_note,
    format_date,
    format_datetime,
    normalise_language,
    pick_label,
    translator,
)
from tests.dialog_chat import SHANGHAI

HANDLERS = Path(__file__).resolve().parent.parent / "handlers"
PLACEHOLDER = re.compile(r"\{\w+\}")


def _messages_in_code() -> set[str]:
    keywords = {"_": None, "N_": None}
    found = extract_from_dir(str(HANDLERS), keywords=keywords)
    return {message for _file, _line, message, _comments, _context in found if message}


@pytest.mark.parametrize("lang", ["zh_CN", "zh_TW"])
def test_every_message_has_a_translation(lang: str) -> None:
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    catalog = read_po(path.open("rb"))
    translated = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(_messages_in_code() - set(translated))
    assert missing == [], f"untranslated in {lang}: {missing}"
    for message_id, text in translated.items():
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(message_id)), (
            message_id
        )


@pytest.mark.parametrize("lang", ["zh_CN", "zh_TW", "en"])
def test_compiled_catalogs_match_their_sources(lang: str) -> None:
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    source = {m.id: m.string for m in read_po((folder / "messages.po").open("rb")) if m.id}
    compiled = read_mo(BytesIO((folder / "messages.mo").read_bytes()))
    compiled_strings = {m.id: m.string for m in compiled if m.id}
    expected = {key: value for key, value in source.items() if value}
    assert compiled_strings == expected, "run: pybabel compile -d handlers/locales -D messages"


def test_translator_falls_back_to_the_default_language() -> None:
    assert translator("zh_CN")("Cancel") == "取消"
    assert translator("zh_TW")("Skip") == "略過"
    assert translator("en")("Cancel") == "Cancel"
    assert translator("fr")("Cancel") == "取消"
    assert translator(None)("Back") == "返回"


@pytest.mark.parametrize(
    ("hint", "lang"),
    [
        ("en", "en"),
        ("en-US", "en"),
        ("zh-hans", "zh_CN"),
        ("zh-CN", "zh_CN"),
        ("zh", "zh_CN"),
        ("zh-hant", "zh_TW"),
        ("zh-TW", "zh_TW"),
        ("zh_HK", "zh_TW"),
        ("fr", None),
        (None, None),
    ],
)
def test_platform_language_hints(hint: str | None, lang: str | None) -> None:
    assert normalise_language(hint) == lang


def test_dates_are_shown_in_the_local_zone_and_language() -> None:
    instant = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # already Dec 1 in Shanghai
    assert format_datetime(instant, "zh_CN", SHANGHAI) == "2026年12月1日 00:30"
    assert format_datetime(instant, "en", SHANGHAI) == "Dec 1, 2026, 00:30"
    assert format_date(instant, "zh_TW", SHANGHAI) == "2026年12月1日"


def test_profile_labels_fall_back_to_simplified_chinese() -> None:
    labels = {"zh_CN": "服务态度", "en": "Service attitude"}
    assert pick_label(labels, "en") == "Service attitude"
    assert pick_label(labels, "zh_TW") == "服务态度"
    assert pick_label("plain", "en") == "plain"
    assert pick_label(None, "en") == ""


def test_notes_are_joined_by_the_language_rules() -> None:
    assert append_note("Due Nov 30.", "(provisional)") == "Due Nov 30. (provisional)"
    assert append_note("时限：11月30日", "（暂定）") == "时限：11月30日（暂定）"
    assert append_note("已加入。", "收到材料后继续办理。") == "已加入。收到材料后继续办理。"
