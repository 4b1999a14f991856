"""The engine follows whatever form a profile declares: every shipped profile, and a custom one."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.profiles import load_profile, profile_files
from handlers.commands import SubmitComplaint
from handlers.intake import ANSWER_KEYS
from tests.dialog_chat import Chat

SHIPPED = sorted(name for name in profile_files() if not load_profile(name).abstract)


def _answer_whatever_is_asked(chat: Chat) -> list[str]:
    """Give a valid answer to each step until the summary; returns the step ids walked."""
    walked: list[str] = []
    for _ in range(40):
        flow, step = chat.where
        if flow == "summary":
            return walked
        assert step is not None
        walked.append(step)
        options = [c for c in chat.choice_ids if c.startswith("opt:")]
        if flow == "screening":
            chat.choose("screen:none")
        elif step == "anonymous":
            chat.choose("opt:no")
        elif step == "privacy":
            assert "personal information" in chat.last.text
            chat.choose("privacy:ok")
        elif options:
            chat.choose(options[0])
        elif chat.last.ask == "photo":
            chat.photo()
            chat.choose("done")
        elif chat.last.ask == "contact":
            chat.text("0571-87654321")
        elif step.endswith("incident_time") or "2026-11-20 09:00" in chat.last.text:
            chat.text("yesterday 10:00")
        else:
            chat.text("A description long enough for any field.")
        assert chat.where != (flow, step), f"refused at {step}: {chat.last.text}"
    raise AssertionError(f"no summary after 40 answers: {walked}")


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_can_be_filed(name: str) -> None:
    profile = load_profile(name)
    chat = Chat(profile=profile, lang="en")
    chat.command("start")
    walked = _answer_whatever_is_asked(chat)
    assert (walked[0] == "screening") == bool(profile.exclusions)
    assert ("anonymous" in walked) == profile.anonymous_allowed
    # the privacy notice comes right before the first personal question (name or phone)
    first_personal = next(i for i, s in enumerate(walked) if s in ("name", "phone"))
    assert walked[first_personal - 1] == "privacy"
    chat.choose("confirm")
    (command,) = chat.commands
    assert isinstance(command, SubmitComplaint)
    assert set(ANSWER_KEYS) <= set(command.answers)
    # the first category a citizen may pick (staff-only findings such as 即时办结 are not offered)
    assert command.answers["category"] == profile.citizen_categories()[0].id
    assert command.answers["phone"] == "+86-571-87654321"
    assert len(command.answers["photos"]) == 1


CUSTOM = """
id = "custom-desk"
extends = "base"
anonymous_allowed = false

[name]
zh_CN = "自定义投诉台"

[description]
zh_CN = "测试用"

[[categories]]
id = "noise"
label = { zh_CN = "噪音", en = "Noise" }

[[intake.fields]]
id = "channel"
type = "choice"
required = true
prompt = { zh_CN = "您是通过什么渠道办理的？", en = "How did you deal with us?" }
options = [
    { id = "counter", label = { zh_CN = "窗口", en = "At the counter" } },
    { id = "phone_line", label = { zh_CN = "电话", en = "By phone" } },
]

[[intake.fields]]
id = "phone"
required = true

[[intake.fields]]
id = "photos"
omit = true

[[intake.fields]]
id = "target"
omit = true
"""


def test_a_custom_form_with_a_choice_field_and_no_exclusions(tmp_path: Path) -> None:
    path = tmp_path / "custom-desk.toml"
    path.write_text(CUSTOM, encoding="utf-8")
    profile = load_profile(path)
    chat = Chat(profile=profile, lang="en")
    chat.command("start")
    assert chat.where == ("intake", "category")  # no exclusions: no screening
    assert "(1/9)" in chat.last.text
    walked = _answer_whatever_is_asked(chat)
    assert "anonymous" not in walked and "photos" not in walked and "target" not in walked
    assert walked[-1] == "channel"
    # A field without a known title is named by its prompt in the summary.
    assert "How did you deal with us?: At the counter" in chat.last.text
    chat.choose("edit:channel")
    chat.text("by phone")
    chat.choose("confirm")
    (command,) = chat.commands
    assert isinstance(command, SubmitComplaint)
    assert command.answers["channel"] == "phone_line"
    assert command.answers["anonymous"] is False
    assert command.answers["photos"] == []
    assert command.answers["target_kind"] is None


def test_the_tax_service_summary_states_the_complainants_duty_to_be_truthful() -> None:
    """R6 第四条: shown above the summary, before the complainant submits; other profiles
    declare nothing."""
    lang = "en"  # the walk answers in English; the text is the profile's own in every language
    profile = load_profile("tax-service")
    chat = Chat(profile=profile, lang=lang)
    chat.command("start")
    _answer_whatever_is_asked(chat)
    expected = profile.intake.declaration
    assert expected is not None
    assert expected[lang] in chat.last.text
    assert chat.last.text.index(expected[lang]) > 0  # after the answers, above the buttons
    assert "confirm" in chat.choice_ids

    gov = Chat(profile=load_profile("gov-window"), lang=lang)
    gov.command("start")
    _answer_whatever_is_asked(gov)
    assert expected[lang] not in gov.last.text
