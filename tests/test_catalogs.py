"""CI check of the Babel catalogs (issue 13, item 6): one i18n system for every text a person sees.

Fails when a message id used in the code is missing from a language's catalog or has no
translation, when a catalog keeps stale (no longer used), obsolete or fuzzy entries, when a
translation drops or adds a placeholder, when a compiled .mo does not match its .po (the .po
was changed and not compiled), or when a zh_TW text uses mainland wording where Taiwan usage
differs (資訊 not 信息, 影片, 網路, 簡訊 …).

Domains: `messages` (handlers/, scheduler/, bot/: the chat, the survey, the scheduler's notices,
the Telegram/WeChat channels) and `desk` (web/desk: the staff pages and their templates).
"""

from __future__ import annotations

import re
import tomllib
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from handlers.i18n import LANGUAGES, LOCALE_DIR

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
DOMAINS: dict[str, tuple[tuple[str, list[tuple[str, str]]], ...]] = {
    "messages": tuple(
        (folder, [("**.py", "python")]) for folder in ("handlers", "scheduler", "bot")
    ),
    "desk": (("web/desk", [("**.py", "python"), ("**/templates/**.html", "jinja2")]),),
}
PLACEHOLDER = re.compile(r"\{\w*\}")
# Mainland wording → Taiwan usage, for zh_TW texts.
MAINLAND_WORDS = {
    "信息": "資訊",
    "視頻": "影片",
    "网络": "網路",
    "網絡": "網路",
    "短信": "簡訊",
    "軟件": "軟體",
    "默認": "預設",
    "登錄": "登入",
    "聯繫": "聯絡",
    "質量": "品質",
    "渠道": "管道",
}


def _ids_in_code(domain: str) -> set[str]:
    found: set[str] = set()
    for folder, method_map in DOMAINS[domain]:
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT / folder), method_map=method_map, keywords=KEYWORDS
        ):
            if isinstance(message, tuple | list):
                found.update(m for m in message if m)
            elif message:
                found.add(message)
    return found


def _catalog(domain: str, lang: str) -> Catalog:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po").open("rb") as source:
        return read_po(source)


CASES = [(domain, lang) for domain in DOMAINS for lang in LANGUAGES]


@pytest.mark.parametrize(("domain", "lang"), CASES)
def test_every_message_in_the_code_is_in_the_catalog(domain: str, lang: str) -> None:
    catalog = _catalog(domain, lang)
    present = {m.id for m in catalog if m.id}
    missing = sorted(_ids_in_code(domain) - present)
    assert missing == [], f"{domain}/{lang}: run pybabel extract + update; missing {missing}"
    if lang != "en":  # English shows the ids themselves
        untranslated = sorted(m.id for m in catalog if m.id and not m.string)
        assert untranslated == [], f"{domain}/{lang}: untranslated {untranslated}"


@pytest.mark.parametrize(("domain", "lang"), CASES)
def test_no_stale_obsolete_or_fuzzy_entries(domain: str, lang: str) -> None:
    catalog = _catalog(domain, lang)
    used = _ids_in_code(domain)
    stale = sorted(m.id for m in catalog if m.id and m.id not in used)
    assert stale == [], f"{domain}/{lang}: no longer used in the code: {stale}"
    assert list(catalog.obsolete) == [], f"{domain}/{lang}: obsolete entries (#~)"
    fuzzy = sorted(m.id for m in catalog if m.id and m.fuzzy)
    assert fuzzy == [], f"{domain}/{lang}: fuzzy entries {fuzzy}"


@pytest.mark.parametrize(("domain", "lang"), CASES)
def test_translations_keep_their_placeholders(domain: str, lang: str) -> None:
    for message in _catalog(domain, lang):
        if message.id and message.string and isinstance(message.id, str):
            expected = sorted(PLACEHOLDER.findall(message.id))
            assert sorted(PLACEHOLDER.findall(message.string)) == expected, message.id


@pytest.mark.parametrize(("domain", "lang"), CASES)
def test_the_compiled_catalog_is_the_source_compiled(domain: str, lang: str) -> None:
    """The .mo is what compiling the .po gives now: a .po changed after compiling fails."""
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    compiled = BytesIO()
    write_mo(compiled, _catalog(domain, lang))
    fresh = {m.id: m.string for m in read_mo(BytesIO(compiled.getvalue())) if m.id}
    shipped = {m.id: m.string for m in read_mo(BytesIO((folder / f"{domain}.mo").read_bytes()))}
    shipped.pop("", None)
    assert shipped == fresh, f"run: pybabel compile -d handlers/locales -D {domain}"


def _traditional_texts() -> list[tuple[str, str]]:
    texts = [
        (f"{domain}.po", m.string)
        for domain in DOMAINS
        for m in _catalog(domain, "zh_TW")
        if m.id and isinstance(m.string, str)
    ]

    def walk(where: str, node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "zh_TW" and isinstance(value, str):
                    texts.append((where, value))
                elif key != "sources":  # [[sources]] quote the seed documents verbatim
                    walk(where, value)
        elif isinstance(node, list):
            for item in node:
                walk(where, item)

    for path in sorted((ROOT / "config" / "profiles").glob("*.toml")):
        walk(path.name, tomllib.loads(path.read_text(encoding="utf-8")))
    return texts


def test_traditional_chinese_follows_taiwan_usage() -> None:
    wrong = [
        f"{where}: {word} → {taiwan}: {text}"
        for where, text in _traditional_texts()
        for word, taiwan in MAINLAND_WORDS.items()
        if word in text
    ]
    wrong += [
        f"{where}: 手機號 → 手機號碼: {text}"
        for where, text in _traditional_texts()
        if re.search(r"手機號(?!碼)", text)
    ]
    assert wrong == []


def test_a_language_switch_changes_the_scheduler_and_survey_texts() -> None:
    """Labels are looked up when a message is rendered, not frozen in a table per language."""
    from handlers.survey import survey_invitation
    from scheduler.texts import stage_name, text

    assert stage_name("acceptance", "zh_CN") == "受理答复"
    assert stage_name("acceptance", "zh_TW") == "受理答覆"
    assert stage_name("acceptance", "en") == "acceptance answer"
    assert text("nobody", "zh_TW") == "未指定" and text("nobody", "en") == "not assigned"
    assert "请您评价" in survey_invitation(1, "202612-0001", "zh_CN").text
    assert "請您評價" in survey_invitation(1, "202612-0001", "zh_TW").text
    assert "How satisfied" in survey_invitation(1, "202612-0001", "en").text
