"""The pure staff dialog (handlers/staff.py): no database, state in and out."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from config.profiles import load_profile
from handlers.messages import Incoming
from handlers.staff import (
    CaseCard,
    DepartmentOption,
    HandlerOption,
    StaffAct,
    StaffContext,
    StaffMember,
    action_callback,
    complaint_in_question,
    handle,
    parse_action_callback,
    render_card,
    render_notification,
    wants_case_list,
)
from handlers.turn import DialogState
from models.workflow import Action, Role

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")
PROFILE = load_profile("tax-service")
ME = StaffMember(7, "Handler Wang", Role.HANDLER, 2, "en")
CARD = CaseCard(
    id=11,
    number="202611-0001",
    state="in_progress",
    version=4,
    category="service_conduct",
    category_label="Service conduct",
    complainant_name="***",
    complainant_phone="***",
    facts="态度恶劣。",
    due=datetime(2026, 11, 9, 15, 59, tzinfo=UTC),
    due_stage="resolution",
    actions=("request_material", "request_extension", "add_note", "resolve", "hand_back"),
)


def ctx(card: CaseCard | None = CARD, **extra: object) -> StaffContext:
    return StaffContext(
        profile=PROFILE,
        now=NOW,
        me=ME,
        tz=TZ,
        case=card,
        departments=[DepartmentOption(1, "办公室"), DepartmentOption(2, "登记窗口")],
        handlers=[HandlerOption(7, "Handler Wang", 2), HandlerOption(8, "Head Li", 2)],
        **extra,  # type: ignore[arg-type]
    )


def press(choice: str) -> Incoming:
    return Incoming("telegram", "w1", "choice", choice=choice)


def text(value: str) -> Incoming:
    return Incoming("telegram", "w1", "text", text=value)


def test_callback_data_round_trip_and_size() -> None:
    data = action_callback(Action.APPROVE_EXTENSION, 2_147_483_647, 999_999)
    assert data == "cs:approve_extension:2147483647:999999"
    assert len(data.encode()) <= 64
    assert parse_action_callback(data) == (Action.APPROVE_EXTENSION, 2_147_483_647, 999_999)
    for bad in ("cs:fly:1:1", "cs:accept:x:1", "cs:accept:1", "cl:page:1", "", None):
        assert parse_action_callback(bad) is None


def test_what_the_shell_must_load() -> None:
    assert complaint_in_question(None, press("cs:resolve:11:4")) == 11
    assert complaint_in_question(None, press("cl:open:12")) == 12
    busy = DialogState(flow="staff", step="reply", scratch={"complaint_id": 13})
    assert complaint_in_question(busy, text("答复")) == 13
    assert complaint_in_question(None, text("hello")) is None
    assert wants_case_list(Incoming("telegram", "w1", "command", command="cases"))
    assert wants_case_list(press("cl:page:2"))
    assert not wants_case_list(press("cs:resolve:11:4"))


def test_a_stale_button_asks_nothing_and_commands_nothing() -> None:
    result = handle(None, press("cs:resolve:11:3"), ctx())
    assert result.commands == []
    [reply] = result.replies
    assert reply.text.startswith("Not done: complaint 202611-0001 is “In progress”: this button")
    assert reply.choices[0].id == "cs:request_material:11:4"


def test_resolve_collects_the_reply_then_resolves_and_tells_the_result() -> None:
    first = handle(None, press("cs:resolve:11:4"), ctx())
    assert first.commands == [] and first.state.step == "reply"
    original = first.state.to_json()
    second = handle(first.state, text("  已道歉。 "), ctx())
    assert first.state.to_json() == original  # the caller's state is never mutated
    assert second.commands == [
        StaffAct(11, "resolve", {"reply_text": "已道歉。"}, 4),
        StaffAct(11, "notify_result", {}, None),
    ]
    assert second.state.flow == "idle" and second.state.scratch == {}


def test_an_empty_or_long_text_is_asked_again() -> None:
    asking = handle(None, press("cs:add_note:11:4"), ctx()).state
    again = handle(asking, press("sf:whatever"), ctx())
    assert again.commands == [] and again.state.step == "note"
    assert again.replies[0].text == "Please type the text, or press Cancel."
    too_long = handle(asking, text("字" * 2001), ctx())
    assert too_long.replies[0].text == "That text is too long (at most 2000 characters)."


def test_an_action_not_offered_goes_straight_to_the_rules() -> None:
    # Not among the card's actions: no questions, act() gives the exact refusal.
    result = handle(None, press("cs:assign:11:4"), ctx())
    assert result.commands == [StaffAct(11, "assign", {}, 4)]
    assert result.replies == []


def test_extension_amount_by_button_or_number() -> None:
    asking = handle(None, press("cs:request_extension:11:4"), ctx()).state
    for message in (press("sf:3"), text("3")):
        reason = handle(asking, message, ctx())
        assert reason.state.step == "extension_reason"
        done = handle(reason.state, text("人手不足"), ctx())
        assert done.commands == [
            StaffAct(
                11,
                "request_extension",
                {"amount": 3, "unit": "working_days", "reason": "人手不足"},
                4,
            )
        ]
    for bad in ("0", "11", "three"):
        assert handle(asking, text(bad), ctx()).state.step == "extension_amount"


def test_a_step_this_version_does_not_know_starts_over() -> None:
    odd = DialogState(flow="staff", step="vanished", scratch={"complaint_id": 11})
    result = handle(odd, text("x"), ctx())
    assert result.replies[0].text == "Let us start over."
    assert result.state.flow == "idle"


def test_a_button_in_the_middle_of_a_step_starts_the_new_action() -> None:
    asking = handle(None, press("cs:add_note:11:4"), ctx()).state
    result = handle(asking, press("cs:resolve:11:4"), ctx())
    assert result.state.step == "reply"


def test_the_case_card_shows_what_the_reader_may_see() -> None:
    assert render_card(CARD, "en", TZ) == (
        "Complaint 202611-0001\n"
        "Status: In progress\n"
        "Category: Service conduct\n"
        "Complainant: *** ***\n"
        "Facts: 态度恶劣。\n"
        "Due (resolution): Nov 9, 2026, 23:59"
    )
    assert render_card(CARD, "zh_TW", TZ).split("\n")[:2] == ["投訴 202611-0001", "狀態：辦理中"]


@pytest.mark.parametrize("lang", ["zh_CN", "zh_TW", "en"])
def test_every_button_is_labelled_in_the_reader_language(lang: str) -> None:
    message = render_notification("resume", CARD, lang, TZ)
    assert len(message.choices) == len(CARD.actions)
    assert all(c.label and not c.label.startswith("cs:") for c in message.choices)
