"""Every text of the desk's pages has its zh_CN and zh_TW translation (the `desk` domain)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from handlers.i18n import LOCALE_DIR
from web.desk.i18n import accept_language, desk_gettext

ROOT = Path(__file__).resolve().parent.parent


def test_every_desk_text_in_the_code_is_translated(tmp_path: Path) -> None:
    pot = tmp_path / "desk.pot"
    subprocess.run(
        [
            sys.executable, "-m", "babel.messages.frontend", "extract",
            "-F", str(ROOT / "web/desk/babel.cfg"), "-k", "N_", "--no-location",
            "-o", str(pot), str(ROOT / "web/desk"),
        ],
        check=True,
        cwd=ROOT,
    )  # fmt: skip
    with pot.open("rb") as handle:
        wanted = {m.id for m in read_po(handle) if m.id}
    assert len(wanted) > 40
    for lang in ("zh_CN", "zh_TW"):
        with (LOCALE_DIR / lang / "LC_MESSAGES" / "desk.po").open("rb") as handle:
            catalog = read_po(handle, locale=lang)
        done = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
        assert not sorted(wanted - done), f"{lang} desk.po lacks translations"
        assert desk_gettext(lang)("Sign in") != "Sign in"  # the compiled .mo is there too


def test_accept_language_picks_ours_in_the_header_order() -> None:
    assert accept_language("en-GB,en;q=0.9") == "en"
    assert accept_language("fr,zh-TW;q=0.8,en;q=0.5") == "zh_TW"
    assert accept_language("de,fr") is None
    assert accept_language("en;q=0.2,zh-Hans;q=0.9") == "zh_CN"
    assert accept_language(None) is None
