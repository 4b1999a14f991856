"""The languages complaintdesk speaks, and picking a profile text in one of them.

Plain values with no catalog behind them, so every layer may use them: the models pick a
profile's label for a case card or a register, the conversations (handlers.i18n, which
re-exports these) translate around them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

Lang = Literal["zh_CN", "zh_TW", "en"]
LANGUAGES: tuple[str, ...] = get_args(Lang)
DEFAULT_LANGUAGE = "zh_CN"


def supported(lang: str | None) -> str:
    """`lang` when it is one of ours, else the default language."""
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def pick_label(labels: object, lang: str) -> str:
    """A profile text in `lang`, falling back to zh_CN (always present), then anything.

    Accepts a mapping keyed by language, a plain string, or a model with language attributes.
    """
    if labels is None:
        return ""
    if isinstance(labels, str):
        return labels
    if not isinstance(labels, Mapping):
        dump = getattr(labels, "model_dump", None)
        if callable(dump):
            labels = dump()
        else:
            labels = {code: getattr(labels, code, None) for code in LANGUAGES}
    assert isinstance(labels, Mapping)
    for candidate in (lang, DEFAULT_LANGUAGE, "en"):
        if labels.get(candidate):
            return labels[candidate]
    return next((text for text in labels.values() if text), "")
