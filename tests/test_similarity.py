"""models.similarity: repeat and mass complaints (pure; the labelled-set evaluation follows)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from models.similarity import Matter, complainant_keys, propose_groups, repeat_of, similarity

BEIJING = timezone(timedelta(hours=8))


def matter(
    id: int,
    day: int,
    key: str | None,
    text: str,
    *,
    place: str = "",
    target: str = "",
    profile: str = "property",
) -> Matter:
    return Matter(
        id, datetime(2026, 3, day, 9, tzinfo=BEIJING), key, profile, None, target, place, text
    )


LIFT = matter(
    1, 1, "c:1", "我要投诉，3号楼电梯坏了一个星期了，老人上下楼很困难。", place="阳光花园3号楼"
)
LIFT_AGAIN = matter(2, 8, "c:1", "三号楼电梯还是坏的，一个星期都没人来修。", place="阳光花园三号楼")
RUBBISH = matter(3, 9, "c:1", "3号楼门口的垃圾好几天没人清理，臭气熏天。", place="阳光花园3号楼")


def test_reworded_repeat_is_found_and_other_matter_is_not() -> None:
    assert similarity(LIFT, LIFT_AGAIN) > similarity(LIFT, RUBBISH)
    assert repeat_of(LIFT_AGAIN, [LIFT], within=timedelta(days=30)) == LIFT
    assert repeat_of(RUBBISH, [LIFT, LIFT_AGAIN], within=timedelta(days=30)) is None


def test_phone_keys_match_across_formats() -> None:
    assert complainant_keys(7, "+8613800138000") == ["c:7", "p:+8613800138000"]
    assert complainant_keys(None, "138 0013 8000") == ["p:+8613800138000"]


def test_three_complainants_one_matter_make_a_group() -> None:
    outage = [
        matter(10, 2, "c:10", "翠湖小区从昨晚开始停水，到现在都没有来水。", place="翠湖小区"),
        matter(11, 2, "c:11", "翠湖小区停水快一天了，也没有提前通知。", place="翠湖小区"),
        matter(12, 2, None, "我们小区（翠湖）停水了，什么时候来水？", place="翠湖"),
    ]
    assert propose_groups([*outage, LIFT, RUBBISH]) == [[10, 11, 12]]
