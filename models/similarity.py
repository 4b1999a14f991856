"""Repeat and mass complaints: which complaints say the same thing (issue 14, item 4).

Pure: no database, no I/O. The shell (the grouping code at submission and the supervisor's
desk) turns complaints into `Matter`s, asks here, and stores what it decides.

Two questions, two rules:

- a **repeat**: the same complainant (by identity or by phone, so one person on Telegram and
  on the web counts once) files again, within the profile's window, about the same thing;
- a **mass matter**: several complainants file about one matter (one target, one place,
  similar text) — proposed as a group for a supervisor to confirm, never merged by itself.

Method: character bigrams of normalised text, compared as sets. Chinese has no spaces, and a
complainant who writes again rewords freely ("电梯坏了一周" / "一个星期电梯都不能用"): whole-string
edit distance punishes reordering, word segmentation needs a dictionary that misses place
names, while shared bigrams ("电梯", "漏水", "噪音") survive both. Before comparing, the text is
normalised (NFKC folds full-width letters and digits; a small table folds the traditional
characters common in complaints; punctuation splits runs) and the formulas every complainant
writes ("我要投诉", "请尽快处理") are removed, as they say nothing about the matter. The target and
place are compared apart from the text, with rapidfuzz, and their bigrams are taken out of the
text before it is compared: two complaints about one building share its name and say nothing
alike for that ("3号楼电梯坏了" / "3号楼门口垃圾没人清").

bench/similarity.py measures this against a labelled set (tests/data/similar_complaints.jsonl)
and against a sentence-embedding model; bench/RESULTS.md has the figures and the choice.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

import phonenumbers
from rapidfuzz import fuzz

# Text similarity at or above which a complaint from the same complainant repeats an earlier
# one. Chosen on the labelled set (bench/RESULTS.md): two reworded accounts of one matter
# share roughly half their content bigrams; two matters of one person rarely a fifth.
DEFAULT_REPEAT_THRESHOLD = 0.12
# Text similarity at or above which two complaints of one place/target are one mass matter.
DEFAULT_GROUP_THRESHOLD = 0.10
# rapidfuzz score (0..100) at or above which two targets or places name the same thing.
LOCUS_THRESHOLD = 75.0


@dataclass(frozen=True)
class Matter:
    """What the detector sees of one complaint."""

    id: int
    filed_at: datetime  # aware
    complainant_key: str | None  # "c:<complainant id>" or "p:<E.164 phone>"; None: anonymous
    profile: str
    category: str | None
    target: str  # target_text / department / staff name as filed ("" if none)
    place: str  # place_text ("" if none)
    text: str  # facts (+ request_text)
    # Further keys of the same complainant (complainant_keys gives identity and phone): one
    # complaint filed by a known complainant who also gave a phone matches a later web
    # complaint that carries the phone alone.
    more_keys: tuple[str, ...] = ()

    @property
    def keys(self) -> frozenset[str]:
        """Every key of the complainant; empty for an anonymous complaint."""
        found = set(self.more_keys)
        if self.complainant_key:
            found.add(self.complainant_key)
        return frozenset(found)

    @cached_property
    def text_features(self) -> frozenset[str]:
        """The text's features once the target and place it names are cut out of it, so no
        bigram straddles a place name and the next word ("翠湖小区停水" → "停水")."""
        text = normalise(self.text)
        for name in (self.target, self.place):
            forms = {normalise(name).strip(), normalise_locus(name)}
            for form in sorted(forms, key=len, reverse=True):  # "翠湖小区" before "翠湖"
                if len(form) > 1:
                    text = text.replace(form, " ")
        return _features_of_normal(text)

    @cached_property
    def locus_features(self) -> frozenset[str]:
        return features(f"{self.target} {self.place}")

    @cached_property
    def normal_target(self) -> str:
        return normalise_locus(self.target)

    @cached_property
    def normal_place(self) -> str:
        return normalise_locus(self.place)

    @cached_property
    def normal_text(self) -> str:
        return normalise(self.text)


# ---------------------------------------------------------------- complainant keys


def complainant_keys(
    complainant_id: int | None, phone: str | None, region: str = "CN"
) -> list[str]:
    """The keys that find one person again: identity first, then the phone in E.164.

    A phone stored as "+86-10-12345678 ext. 123" (handlers.validators.normalise_phone) and one
    typed "010 1234 5678转123" give the same key. The extension stays in the key: a switchboard
    number is many people, an extension one. A phone that cannot be read gives no key rather
    than a wrong one."""
    keys: list[str] = []
    if complainant_id is not None:
        keys.append(f"c:{complainant_id}")
    phone_key = _phone_key(phone, region)
    if phone_key:
        keys.append(phone_key)
    return keys


_EXTENSION = re.compile(r"\s*(?:ext\.?|x|转|轉|分机|分機)\s*(\d{1,6})\s*$", re.IGNORECASE)


def _phone_key(phone: str | None, region: str) -> str | None:
    if not phone or not phone.strip():
        return None
    text = unicodedata.normalize("NFKC", phone).strip()
    extension = ""
    match = _EXTENSION.search(text)
    if match:
        extension, text = match.group(1), text[: match.start()]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    extension = extension or (number.extension or "")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return f"p:{e164};ext={extension}" if extension else f"p:{e164}"


# ---------------------------------------------------------------- normalising text

# Traditional characters common in complaints, folded to simplified so a zh_TW complaint
# compares with a zh_CN one about the same matter. Not a converter: the characters of this
# domain (no library for it is a dependency of the project).
_TRADITIONAL = str.maketrans(
    "電費車號門處業務區樓時間無問題說還這個們沒來對發給請維修護態應該與為從經過"
    "辦證報稅窗員櫃檯線網路訊聯絡實際關係開閉環境衛雜亂噪聲響燈壞漏氣熱淨場停"
    "規違費額補償賠錢帳單據戶讓幾點鐘週級長廳醫療藥學師課書費園棟層層廠產質"
    "買賣貨運輸駕駛計價繞達機場鐵飛班誤點臟髒醜嚴重複幫忙聽見覺麼嗎呢啊",
    "电费车号门处业务区楼时间无问题说还这个们没来对发给请维修护态应该与为从经过"
    "办证报税窗员柜台线网路讯联络实际关系开闭环境卫杂乱噪声响灯坏漏气热净场停"
    "规违费额补偿赔钱账单据户让几点钟周级长厅医疗药学师课书费园栋层层厂产质"
    "买卖货运输驾驶计价绕达机场铁飞班误点脏脏丑严重复帮忙听见觉么吗呢啊",
)

# Formulas every complainant writes: they make any two complaints look alike and say nothing
# of the matter. Longest first, so "请尽快处理" goes before "处理" could be matched inside it.
_FORMULAS = sorted(
    (
        "我要投诉",
        "我想投诉",
        "我要举报",
        "我要反映",
        "我想反映",
        "向你们反映",
        "反映一下",
        "投诉一下",
        "请尽快处理",
        "请尽快解决",
        "请尽快",
        "尽快处理",
        "尽快解决",
        "请及时处理",
        "请相关部门",
        "相关部门",
        "希望能够",
        "希望能",
        "希望你们",
        "希望",
        "麻烦你们",
        "麻烦",
        "谢谢",
        "您好",
        "你好",
        "请问",
        "请你们",
        "给个说法",
        "给我一个说法",
        "一个说法",
        "严肃处理",
        "处理一下",
        "再次",
        "又一次",
        "还是",
        "已经",
        "一直",
        "我们",
        "我的",
        "我是",
        "你们",
        "他们",
        "这个",
        "那个",
        "就是",
        "但是",
        "而且",
        "然后",
        "因为",
        "所以",
        "没有",
        "什么",
        "怎么",
        "问题",
        "情况",
        "投诉",
        "反映",
        "上次",
        "之前",
        "现在",
        "今天",
        "昨天",
        "please",
        "thank you",
        "thanks",
        "complain",
        "complaint",
    ),
    key=len,
    reverse=True,
)
_FORMULA_PATTERN = re.compile("|".join(re.escape(f) for f in _FORMULAS))
# One run of CJK characters and digits, or one Latin word: bigrams are taken inside a run only.
_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff0-9]+|[a-z]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_ENGLISH_STOP = frozenset(
    "the a an and or of to in on at for is are was were be been it this that my our we i you "
    "they he she with from by not no but have has had do did so very again still please".split()
)
# Chinese numerals before a unit of an address: "三号楼" and "3号楼" are one building.
_ADDRESS_NUMERAL = re.compile(
    r"([一二两三四五六七八九十]+)(?=[号號楼樓栋棟幢单單层層室期路街巷区區])"
)
_NUMERALS = dict(zip("一二两三四五六七八九", (1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
# Generic words of places and units that make two different places look alike.
_LOCUS_NOISE = ("小区", "社区", "附近", "门口", "旁边", "对面", "这边", "那边", "窗口", "工作人员")


def _numeral_value(text: str) -> str:
    if text == "十":
        return "10"
    if "十" in text:
        tens, _, units = text.partition("十")
        return str(_NUMERALS.get(tens, 1) * 10 + _NUMERALS.get(units, 0))
    if all(ch in _NUMERALS for ch in text):
        return "".join(str(_NUMERALS[ch]) for ch in text)
    return text


def normalise(text: str) -> str:
    """Text as compared: NFKC (full-width → half-width), lower case, traditional folded,
    address numerals as digits, complaint formulas removed."""
    folded = unicodedata.normalize("NFKC", text).lower().translate(_TRADITIONAL)
    folded = _ADDRESS_NUMERAL.sub(lambda m: _numeral_value(m.group(1)), folded)
    return _FORMULA_PATTERN.sub(" ", folded)


def normalise_locus(text: str) -> str:
    """A target or place as compared: normalised, generic place words and spaces removed."""
    folded = normalise(text)
    for noise in _LOCUS_NOISE:
        folded = folded.replace(noise, "")
    return "".join(_RUN.findall(folded))


def features(text: str) -> frozenset[str]:
    """The set a text is compared by: character bigrams inside each run of Chinese (and
    digits), a lone character where a run has one, and Latin words but stop words."""
    return _features_of_normal(normalise(text))


def _features_of_normal(text: str) -> frozenset[str]:
    found: set[str] = set()
    for run in _RUN.findall(text):
        if run.isascii() and not run.isdigit():
            if run not in _ENGLISH_STOP and len(run) > 1:
                found.add(run)
            continue
        if len(run) == 1:
            if _CJK.match(run):
                found.add(run)
            continue
        found.update(run[i : i + 2] for i in range(len(run) - 1))
    return frozenset(found)


# ---------------------------------------------------------------- similarity


def _set_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Mean of Dice and the overlap coefficient: Dice alone punishes a short follow-up of a
    long complaint ("漏水还没修"), overlap alone rewards any short text inside a long one."""
    if not a or not b:
        return 0.0
    shared = len(a & b)
    if not shared:
        return 0.0
    dice = 2 * shared / (len(a) + len(b))
    overlap = shared / min(len(a), len(b))
    return (dice + overlap) / 2


def similarity(a: Matter, b: Matter) -> float:
    """0..1: how alike the two complaints' texts are, apart from the target and place they
    name (those are compared by `same_locus`)."""
    locus = a.locus_features | b.locus_features
    return _set_similarity(a.text_features - locus, b.text_features - locus)


def locus_similarity(a: Matter, b: Matter) -> float | None:
    """0..1: whether the two complaints name the same target and place; None when neither
    names one on any side, so there is nothing to compare.

    A side named by one complaint only is looked for in the other's text ("阳光花园停水" names
    the place without the place field)."""
    scores: list[float] = []
    for mine, theirs in ((a.normal_target, b.normal_target), (a.normal_place, b.normal_place)):
        if mine and theirs:
            scores.append(_locus_score(mine, theirs))
        elif mine or theirs:
            value, other = (mine, b) if mine else (theirs, a)
            text = "".join(_RUN.findall(other.normal_text))
            scores.append(fuzz.partial_ratio(value, text) / 100 if text else 0.0)
    if not scores:
        return None
    return min(scores)


def _locus_score(a: str, b: str) -> float:
    # partial_ratio: "阳光花园3号楼" and "阳光花园" are one place at two levels of detail.
    return max(fuzz.ratio(a, b), fuzz.partial_ratio(a, b)) / 100


def same_locus(a: Matter, b: Matter) -> bool:
    score = locus_similarity(a, b)
    return score is not None and score * 100 >= LOCUS_THRESHOLD


# ---------------------------------------------------------------- repeats


def repeat_of(
    new: Matter,
    earlier: Sequence[Matter],
    *,
    within: timedelta,
    threshold: float = DEFAULT_REPEAT_THRESHOLD,
) -> Matter | None:
    """The earlier complaint that `new` repeats, or None: the same complainant (a shared key),
    the same profile, filed at most `within` before, and text at least `threshold` alike; the
    most alike when several are (the most recent of equals)."""
    keys = new.keys
    if not keys:
        return None  # anonymous: nobody to recognise
    best: Matter | None = None
    best_score = -1.0
    for old in earlier:
        if old.id == new.id or old.profile != new.profile or not (keys & old.keys):
            continue
        age = new.filed_at - old.filed_at
        if age < timedelta(0) or age > within:
            continue
        score = similarity(new, old)
        if score < threshold:
            continue
        if score > best_score or (score == best_score and best and old.filed_at > best.filed_at):
            best, best_score = old, score
    return best


# ---------------------------------------------------------------- mass matters

# A bigram shared by more than this share of a profile's complaints says nothing about which
# matter they are (e.g. "物业" in the property profile): it proposes no candidate pair.
_COMMON_SHARE = 0.05
_COMMON_FLOOR = 20


def _candidate_pairs(block: Sequence[Matter]) -> set[tuple[int, int]]:
    """Pairs of positions in `block` that share a rare place/target or text bigram: the only
    pairs compared in full, so grouping costs about n × (complaints per rare bigram), not n²."""
    postings: dict[str, list[int]] = defaultdict(list)
    for index, matter in enumerate(block):
        for feature in matter.locus_features | matter.text_features:
            postings[feature].append(index)
    limit = max(_COMMON_FLOOR, int(len(block) * _COMMON_SHARE))
    pairs: set[tuple[int, int]] = set()
    for members in postings.values():
        if len(members) < 2 or len(members) > limit:
            continue
        for i, first in enumerate(members):
            for second in members[i + 1 :]:
                pairs.add((first, second))
    return pairs


def same_matter(a: Matter, b: Matter, threshold: float = DEFAULT_GROUP_THRESHOLD) -> bool:
    """Two complaints about one matter: same profile, same target and place, alike text."""
    if a.profile != b.profile:
        return False
    locus = locus_similarity(a, b)
    if locus is not None and locus * 100 < LOCUS_THRESHOLD:
        return False
    return similarity(a, b) >= threshold


def propose_groups(
    matters: Sequence[Matter],
    *,
    threshold: float = DEFAULT_GROUP_THRESHOLD,
    min_size: int = 3,
) -> list[list[int]]:
    """Groups of complaints about one matter to propose to a supervisor: ids, each group
    sorted, groups disjoint, ordered by their first id; only groups of `min_size` or more.

    Complaints are blocked by profile, candidate pairs come from rare shared bigrams, each is
    checked with `same_matter`, and groups are the connected parts of what passes. A complaint
    that repeats another of the same complainant counts once in a group's size: three
    complaints of one person are a repeat, not a mass matter."""
    by_profile: dict[str, list[Matter]] = defaultdict(list)
    for matter in matters:
        by_profile[matter.profile].append(matter)
    groups: list[list[int]] = []
    for block in by_profile.values():
        parent = list(range(len(block)))
        for first, second in sorted(_candidate_pairs(block)):
            if same_matter(block[first], block[second], threshold):
                root_a, root_b = _root(parent, first), _root(parent, second)
                if root_a != root_b:
                    parent[max(root_a, root_b)] = min(root_a, root_b)
        parts: dict[int, list[Matter]] = defaultdict(list)
        for index, matter in enumerate(block):
            parts[_root(parent, index)].append(matter)
        for members in parts.values():
            if _complainants(members) >= min_size:
                groups.append(sorted(m.id for m in members))
    return sorted(groups, key=lambda ids: ids[0])


def _root(parent: list[int], i: int) -> int:
    """Union-find: the representative of i's part, halving the path on the way."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _complainants(members: Iterable[Matter]) -> int:
    """How many different complainants filed these; each anonymous complaint counts as one."""
    seen: list[frozenset[str]] = []
    count = 0
    for matter in members:
        keys = matter.keys
        if not keys:
            count += 1
        elif not any(keys & other for other in seen):
            seen.append(keys)
            count += 1
    return count
