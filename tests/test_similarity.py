"""models.similarity: repeat and mass complaints. Pure: no database.

The unit tests pin each rule on small cases; the last tests score the detector on the
labelled set (tests/data/similar_complaints.jsonl) and hold it to the figures reported in
bench/RESULTS.md less a small margin — a quality bar, so a change that loses precision or
recall fails here, not only in the benchmark.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.similarity import (
    Matter,
    complainant_keys,
    features,
    normalise,
    propose_groups,
    rarity_weights,
    repeat_of,
    same_locus,
    same_matter,
    similarity,
)
from tests.similarity_labelled import load, score_groups, score_repeats

BEIJING = timezone(timedelta(hours=8))
MONTH = timedelta(days=30)


def matter(
    id: int,
    day: int,
    key: str | None,
    text: str,
    *,
    place: str = "",
    target: str = "",
    profile: str = "property",
    more_keys: tuple[str, ...] = (),
    hour: int = 9,
) -> Matter:
    return Matter(
        id=id,
        filed_at=datetime(2026, 3, 1, hour, tzinfo=BEIJING) + timedelta(days=day - 1),
        complainant_key=key,
        profile=profile,
        category=None,
        target=target,
        place=place,
        text=text,
        more_keys=more_keys,
    )


LIFT = matter(
    1, 1, "c:1", "我要投诉，3号楼电梯坏了一个星期了，老人上下楼很困难。", place="阳光花园3号楼"
)
LIFT_AGAIN = matter(2, 8, "c:1", "三号楼电梯还是坏的，一个星期都没人来修。", place="阳光花园三号楼")
RUBBISH = matter(3, 9, "c:1", "3号楼门口的垃圾好几天没人清理，臭气熏天。", place="阳光花园3号楼")


# ---------------------------------------------------------------- complainant keys


def test_keys_of_identity_and_phone() -> None:
    assert complainant_keys(7, "+8613800138000") == ["c:7", "p:+8613800138000"]
    assert complainant_keys(7, None) == ["c:7"]
    assert complainant_keys(None, "13800138000") == ["p:+8613800138000"]


def test_anonymous_has_no_key() -> None:
    assert complainant_keys(None, None) == []
    assert complainant_keys(None, "   ") == []


@pytest.mark.parametrize(
    "typed",
    [
        "+8613800138000",
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "0086 138 0013 8000",
        "+86 (138) 0013-8000",
        "１３８００１３８０００",  # full-width, as typed on a Chinese keyboard
    ],
)
def test_one_mobile_however_typed(typed: str) -> None:
    assert complainant_keys(None, typed) == ["p:+8613800138000"]


def test_landline_and_extension() -> None:
    stored = complainant_keys(None, "+86-10-12345678 ext. 123")  # normalise_phone's form
    assert stored == ["p:+861012345678;ext=123"]
    assert complainant_keys(None, "010-12345678转123") == stored
    assert complainant_keys(None, "(010) 1234 5678 ext 123") == stored
    # A switchboard is many people: another extension, or none, is another key.
    assert complainant_keys(None, "010-12345678转124") != stored
    assert complainant_keys(None, "010-12345678") == ["p:+861012345678"]


def test_unreadable_phone_gives_no_key_rather_than_a_wrong_one() -> None:
    assert complainant_keys(3, "12") == ["c:3"]
    assert complainant_keys(None, "no phone") == []


def test_region_reads_national_numbers() -> None:
    assert complainant_keys(None, "0912-345-678", region="TW") == ["p:+886912345678"]
    assert complainant_keys(None, "+886 912 345 678") == ["p:+886912345678"]


# ---------------------------------------------------------------- text


def test_normalise_folds_width_script_formulas_and_address_numerals() -> None:
    assert "abc123" in normalise("ＡＢＣ１２３")
    assert "电费" in normalise("電費")
    assert "我要投诉" not in normalise("我要投诉，漏水")
    assert "请尽快处理" not in normalise("漏水，请尽快处理")
    assert "3号楼" in normalise("三号楼")
    assert "12号楼" in normalise("十二号楼")
    assert "一直" not in normalise("一直漏水")  # a formula, not an address numeral


def test_features_are_content_characters_bigrams_and_words() -> None:
    found = features("电梯坏了！The lift is broken")
    assert {"电梯", "梯坏", "坏了", "lift", "broken"} <= found.bigrams
    assert "the" not in found.bigrams and "is" not in found.bigrams  # English stop words
    assert {"电", "梯", "坏"} <= found.characters
    assert "了" not in found.characters  # too common to tell matters apart
    assert features("").all == frozenset()


def test_similarity_bounds_and_symmetry() -> None:
    assert similarity(LIFT, LIFT) == pytest.approx(1.0)
    assert similarity(LIFT, LIFT_AGAIN) == similarity(LIFT_AGAIN, LIFT)
    assert similarity(LIFT, matter(9, 1, None, "")) == 0.0
    assert similarity(matter(9, 1, None, "请尽快处理"), matter(10, 1, None, "请尽快处理")) == 0.0


def test_reworded_matter_is_closer_than_another_matter_of_the_same_building() -> None:
    assert similarity(LIFT, LIFT_AGAIN) > 0.2 > similarity(LIFT, RUBBISH)


def test_traditional_and_simplified_accounts_compare() -> None:
    simplified = matter(1, 1, None, "垃圾站三天没人清运了，垃圾堆到路上，臭得不行。")
    traditional = matter(2, 2, None, "垃圾站又堆滿了，清運車一個星期才來一次，住戶沒法走路。")
    other = matter(3, 2, None, "楼上卫生间漏水，天花板一直往下滴。")
    assert similarity(simplified, traditional) > similarity(simplified, other)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_similarity_is_a_symmetric_score(a: str, b: str) -> None:
    first, second = matter(1, 1, None, a), matter(2, 1, None, b)
    score = similarity(first, second)
    assert 0.0 <= score <= 1.0 + 1e-9
    assert score == pytest.approx(similarity(second, first))


def test_rarity_weights_favour_rare_features() -> None:
    common = [matter(i, 1, None, f"物业不管，停车场第{i}次") for i in range(5)]
    weights = rarity_weights([*common, matter(9, 1, None, "物业不管，电梯困人")])
    assert weights["电梯"] > weights["物业"]


# ---------------------------------------------------------------- repeats


def test_repeat_found_and_other_matter_of_same_person_is_not() -> None:
    assert repeat_of(LIFT_AGAIN, [LIFT], within=MONTH) == LIFT
    assert repeat_of(RUBBISH, [LIFT, LIFT_AGAIN], within=MONTH) is None


def test_anonymous_is_never_a_repeat() -> None:
    anonymous = matter(5, 8, None, LIFT_AGAIN.text, place=LIFT_AGAIN.place)
    earlier_anonymous = matter(4, 2, None, LIFT.text, place=LIFT.place)
    assert repeat_of(anonymous, [LIFT, earlier_anonymous], within=MONTH) is None


def test_window_bounds_the_repeat() -> None:
    at_the_edge = matter(5, 31, "c:1", LIFT_AGAIN.text, place=LIFT.place)
    beyond = matter(6, 31, "c:1", LIFT_AGAIN.text, place=LIFT.place, hour=10)
    assert repeat_of(at_the_edge, [LIFT], within=MONTH) == LIFT  # 30 days exactly
    assert repeat_of(beyond, [LIFT], within=MONTH) is None


def test_later_and_same_complaints_are_not_earlier() -> None:
    assert repeat_of(LIFT, [LIFT_AGAIN], within=MONTH) is None
    assert repeat_of(LIFT, [LIFT], within=MONTH) is None


def test_other_profile_and_other_person_are_not_repeats() -> None:
    utility = matter(5, 8, "c:1", LIFT_AGAIN.text, place=LIFT.place, profile="utility")
    neighbour = matter(6, 8, "c:2", LIFT_AGAIN.text, place=LIFT.place)
    assert repeat_of(utility, [LIFT], within=MONTH) is None
    assert repeat_of(neighbour, [LIFT], within=MONTH) is None


def test_same_person_by_phone_on_another_channel() -> None:
    # Telegram: known complainant 41 who gave a phone; then the web form, phone only.
    telegram_keys = complainant_keys(41, "13911230001")
    web_keys = complainant_keys(None, "139 1123 0001")
    first = matter(
        1, 1, telegram_keys[0], LIFT.text, place=LIFT.place, more_keys=tuple(telegram_keys[1:])
    )
    again = matter(2, 8, web_keys[0], LIFT_AGAIN.text, place=LIFT.place)
    assert repeat_of(again, [first], within=MONTH) == first


def test_best_earlier_match_wins() -> None:
    closer = matter(4, 5, "c:1", "3号楼电梯坏了一个星期，一直没人来修，老人上下楼困难。")
    assert repeat_of(LIFT_AGAIN, [LIFT, RUBBISH, closer], within=MONTH) == closer


def test_threshold_decides() -> None:
    score = similarity(LIFT_AGAIN, LIFT)
    assert repeat_of(LIFT_AGAIN, [LIFT], within=MONTH, threshold=score) == LIFT
    assert repeat_of(LIFT_AGAIN, [LIFT], within=MONTH, threshold=score + 0.01) is None


# ---------------------------------------------------------------- target and place


def test_windows_that_differ_by_number_are_different_targets() -> None:
    third = matter(1, 1, None, "窗口上班时间没人", target="不动产登记中心3号窗口")
    fifth = matter(2, 1, None, "窗口上班时间没人", target="不动产登记中心五号窗口")
    third_again = matter(3, 1, None, "窗口没人", target="3号窗口", place="不动产登记中心")
    assert same_locus(third, fifth) is False
    assert same_locus(third, third_again) is True


def test_place_named_in_the_text_only() -> None:
    with_field = matter(1, 1, None, "停水了", place="翠湖小区")
    in_text = matter(2, 1, None, "我住翠湖小区，停水一上午了")
    elsewhere = matter(3, 1, None, "停水一上午了", place="金桂苑")
    silent = matter(4, 1, None, "停水一上午了")
    assert same_locus(with_field, in_text) is True
    assert same_locus(with_field, elsewhere) is False
    assert same_locus(silent, matter(5, 1, None, "停水了")) is None


def test_one_place_two_targets() -> None:
    management = matter(1, 1, None, "窗户渗水", target="阳光花园物业", place="阳光花园9号楼")
    developer = matter(2, 1, None, "窗户渗水", target="开发商", place="阳光花园9号楼")
    assert same_locus(management, developer) is False


# ---------------------------------------------------------------- mass matters

OUTAGE = [
    matter(
        10, 2, "c:10", "翠湖小区从昨晚开始停水，到现在都没有来水，也没有通知。", place="翠湖小区"
    ),
    matter(11, 2, "c:11", "翠湖小区停水快一天了，也没有提前通知。", place="翠湖小区"),
    matter(12, 2, None, "我们小区（翠湖）停水了，没有任何通知，什么时候来水？", place="翠湖"),
]


def test_three_complainants_one_matter_make_a_group() -> None:
    assert propose_groups([*OUTAGE, LIFT, RUBBISH]) == [[10, 11, 12]]


def test_one_person_three_times_is_no_mass_matter() -> None:
    same_person = [
        matter(m.id, 2, "c:10", m.text, place=m.place, hour=9 + i) for i, m in enumerate(OUTAGE)
    ]
    assert propose_groups(same_person) == []
    # by phone on one complaint and identity on another, still one person
    mixed = [
        same_person[0],
        matter(11, 2, "p:+8613800138000", OUTAGE[1].text, place=OUTAGE[1].place),
        matter(12, 2, "c:12", OUTAGE[2].text, place=OUTAGE[2].place),
    ]
    mixed[0] = matter(
        10, 2, "c:10", OUTAGE[0].text, place="翠湖小区", more_keys=("p:+8613800138000",)
    )
    assert propose_groups(mixed) == []
    assert propose_groups(mixed, min_size=2) == [[10, 11, 12]]


def test_groups_stay_within_a_profile_and_a_span() -> None:
    other_profile = [matter(m.id, 2, m.complainant_key, m.text, place=m.place) for m in OUTAGE]
    other_profile[2] = matter(12, 2, None, OUTAGE[2].text, place="翠湖", profile="utility")
    assert propose_groups(other_profile) == []
    late = [*OUTAGE[:2], matter(12, 30, None, OUTAGE[2].text, place="翠湖")]
    assert propose_groups(late) == []
    assert propose_groups(late, within=None) == [[10, 11, 12]]


def test_same_words_about_two_windows_make_two_groups() -> None:
    texts = [
        "{}号窗口上班时间没人，等了四十分钟，说是出去吃早饭了。",
        "{}号窗口上班时间经常没人，等了半个小时，后面排了十几个人。",
        "{}号窗口工作人员上班时间离岗，又等了四十分钟。",
    ]
    matters = [
        matter(
            window * 10 + i,
            3,
            f"c:{window * 10 + i}",
            text.format(window),
            target=f"不动产登记中心{window}号窗口",
        )
        for window in (3, 5)
        for i, text in enumerate(texts)
    ]
    assert propose_groups(matters) == [[30, 31, 32], [50, 51, 52]]


def test_same_place_other_matter_is_left_out() -> None:
    assert not same_matter(OUTAGE[0], matter(20, 2, "c:20", "小区门口垃圾没人清", place="翠湖小区"))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["翠湖小区", "金桂苑", ""]),
            st.sampled_from(["停水了没有通知", "电梯坏了", "停水一天了", "垃圾没人清", "噪音"]),
            st.sampled_from(["c:1", "c:2", "c:3", "c:4", None]),
        ),
        max_size=25,
    )
)
def test_proposed_groups_are_sorted_disjoint_and_large_enough(
    drawn: list[tuple[str, str, str | None]],
) -> None:
    matters = [
        matter(i, 1 + i % 5, key, text, place=place) for i, (place, text, key) in enumerate(drawn)
    ]
    groups = propose_groups(matters)
    assert groups == sorted(groups, key=lambda ids: ids[0])
    for group in groups:
        assert group == sorted(group) and len(group) >= 3
    for first, second in combinations(groups, 2):
        assert not set(first) & set(second)


# ---------------------------------------------------------------- the labelled set

# The figures of bench/RESULTS.md ("Repeat and mass complaints") at the default thresholds,
# less a margin of about one mistake more.
REPEAT_PRECISION, REPEAT_RECALL = 0.96, 0.94
GROUP_PRECISION, GROUP_RECALL = 0.92, 0.66


def test_labelled_set_is_as_described() -> None:
    rows = load()
    assert len(rows) >= 240
    assert sum(row.repeat_of is not None for row in rows) >= 40
    sizes: dict[str, int] = {}
    for row in rows:
        if row.group:
            sizes[row.group] = sizes.get(row.group, 0) + 1
    assert len(sizes) >= 10 and all(3 <= size <= 12 for size in sizes.values())


def test_repeats_on_the_labelled_set() -> None:
    score, mistakes = score_repeats(load())
    assert score.precision >= REPEAT_PRECISION, mistakes
    assert score.recall >= REPEAT_RECALL, mistakes


def test_groups_on_the_labelled_set() -> None:
    result = score_groups(load())
    assert result.pairs.precision >= GROUP_PRECISION
    assert result.pairs.recall >= GROUP_RECALL
