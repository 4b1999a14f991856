"""DialogState.copy: the engine's working copy shares nothing mutable with the caller's state."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers.turn import DialogState


def test_a_copy_is_equal_and_shares_nothing_mutable() -> None:
    when = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    state = DialogState(
        flow="intake",
        step="place",
        answers={"photos": ["att:1"], "where": {"lat": 31.2, "tags": ("a", "b")}, "n": 3},
        language="zh_CN",
        updated_at=when.isoformat(),
        scratch={"seen": [1, [2, 3]], "at": when, "flag": None},
    )
    copied = state.copy()
    assert copied == state
    assert copied.answers["where"]["tags"] == ("a", "b")  # tuples stay tuples
    copied.answers["photos"].append("att:2")
    copied.answers["where"]["lat"] = 0.0
    copied.scratch["seen"][1].append(4)
    copied.scratch["new"] = True
    assert state.answers == {
        "photos": ["att:1"],
        "where": {"lat": 31.2, "tags": ("a", "b")},
        "n": 3,
    }
    assert state.scratch == {"seen": [1, [2, 3]], "at": when, "flag": None}
    assert DialogState.from_json(copied.to_json()).to_json() == copied.to_json()
