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

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property, lru_cache

import phonenumbers
from rapidfuzz import fuzz

# Text similarity at or above which a complaint from the same complainant repeats an earlier
# one. Chosen on the labelled set (bench/RESULTS.md): two reworded accounts of one matter
# share roughly half their content bigrams; two matters of one person rarely a fifth.
DEFAULT_REPEAT_THRESHOLD = 0.10
# Text similarity at or above which two complaints of one place/target are one mass matter.
DEFAULT_GROUP_THRESHOLD = 0.13
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
    def text_features(self) -> Features:
        """The text's features once the target and place it names are cut out of it, so no
        bigram straddles a place name and the next word ("翠湖小区停水" → "停水")."""
        return _text_features(self.text, self.target, self.place)

    @cached_property
    def locus_features(self) -> Features:
        return _remembered_features(f"{self.target} {self.place}")

    @cached_property
    def normal_target(self) -> str:
        return normalise_locus(self.target)

    @cached_property
    def normal_place(self) -> str:
        return normalise_locus(self.place)

    @cached_property
    def compact_text(self) -> str:
        """The normalised text without spaces or punctuation, where a place is looked for."""
        return "".join(_RUN.findall(normalise(self.text)))


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


@lru_cache(maxsize=4096)  # pure; parsing is most of what building a Matter costs
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
    "買賣貨運輸駕駛計價繞達機場鐵飛班誤點臟髒醜嚴重複幫忙聽見覺麼嗎呢啊"
    "驗鮮瀉餐準備裡們當監測氣導遊觀纜團貴減銷錯識認頭體邊緣顯廣傳種條擾鄰",
    "电费车号门处业务区楼时间无问题说还这个们没来对发给请维修护态应该与为从经过"
    "办证报税窗员柜台线网路讯联络实际关系开闭环境卫杂乱噪声响灯坏漏气热净场停"
    "规违费额补偿赔钱账单据户让几点钟周级长厅医疗药学师课书费园栋层层厂产质"
    "买卖货运输驾驶计价绕达机场铁飞班误点脏脏丑严重复帮忙听见觉么吗呢啊"
    "验鲜泻餐准备里们当监测气导游观缆团贵减销错识认头体边缘显广传种条扰邻",
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
# Generic words of places and units: they make two different places look alike ("翠湖小区" /
# "金桂小区") and two spellings of one place look different ("东湖片区" / "东湖一带").
_LOCUS_NOISE = (
    "工作人员",
    "服务中心",
    "服务厅",
    "营业厅",
    "办税厅",
    "管理中心",
    "物业",
    "公司",
    "窗口",
    "小区",
    "社区",
    "片区",
    "一带",
    "花园",
    "新村",
    "附近",
    "门口",
    "旁边",
    "对面",
    "方向",
    "这边",
    "那边",
    "大厅",
)
# Characters too common to tell one matter from another: no single-character feature.
_COMMON_CHARACTERS = frozenset(
    "的了是在我有不这就也都和人个们吗呢啊吧么到说要去来还又被把给让很一上下天没多能会再才过以后"
)
# A number with the unit of an address ("3号楼", "1602室", "B2层"): where, not what — the
# place is compared apart, so in the text it would only make two matters of one building alike.
_ADDRESS = re.compile(r"[a-z]?\d+(?:号楼|号线|号|栋|幢|单元|层|楼|室|期|区|路)")


def _numeral_value(text: str) -> str:
    if text == "十":
        return "10"
    if "十" in text:
        tens, _, units = text.partition("十")
        return str(_NUMERALS.get(tens, 1) * 10 + _NUMERALS.get(units, 0))
    if all(ch in _NUMERALS for ch in text):
        return "".join(str(_NUMERALS[ch]) for ch in text)
    return text


def fold_traditional(text: str) -> str:
    """The traditional characters of this domain folded to simplified (see _TRADITIONAL)."""
    return text.translate(_TRADITIONAL)


def normalise(text: str) -> str:
    """Text as compared: NFKC (full-width → half-width), lower case, traditional folded,
    address numerals as digits, complaint formulas removed."""
    folded = fold_traditional(unicodedata.normalize("NFKC", text).lower())
    folded = _ADDRESS_NUMERAL.sub(lambda m: _numeral_value(m.group(1)), folded)
    return _FORMULA_PATTERN.sub(" ", folded)


def normalise_locus(text: str) -> str:
    """A target or place as compared: normalised, generic place words and spaces removed."""
    folded = normalise(text)
    for noise in _LOCUS_NOISE:
        folded = folded.replace(noise, "")
    return "".join(_RUN.findall(folded))


@dataclass(frozen=True)
class Features:
    """What a text is compared by: its content characters, and its character bigrams (inside
    each run of Chinese and digits) with its Latin words."""

    characters: frozenset[str]
    bigrams: frozenset[str]

    def __sub__(self, other: Features) -> Features:
        return Features(self.characters - other.characters, self.bigrams - other.bigrams)

    def __or__(self, other: Features) -> Features:
        return Features(self.characters | other.characters, self.bigrams | other.bigrams)

    @property
    def all(self) -> frozenset[str]:
        return self.characters | self.bigrams


def features(text: str) -> Features:
    """The features of a text (see `Features`)."""
    return _features_of_normal(normalise(text))


# A filing is compared with up to 200 earlier complaints of its person (models.actions), and
# each comparison needs their features: remembered by text across filings (pure, immutable).
_REMEMBERED_TEXTS = 2048


@lru_cache(maxsize=_REMEMBERED_TEXTS)
def _remembered_features(text: str) -> Features:
    return features(text)


@lru_cache(maxsize=_REMEMBERED_TEXTS)
def _text_features(text: str, target: str, place: str) -> Features:
    normal = normalise(text)
    for name in (target, place):
        forms = {normalise(name).strip(), normalise_locus(name)}
        for form in sorted(forms, key=len, reverse=True):  # "翠湖小区" before "翠湖"
            if len(form) > 1:
                normal = normal.replace(form, " ")
    return _features_of_normal(_ADDRESS.sub(" ", normal))


def _features_of_normal(text: str) -> Features:
    characters: set[str] = set()
    bigrams: set[str] = set()
    for run in _RUN.findall(text):
        if run.isascii() and not run.isdigit():
            if run not in _ENGLISH_STOP and len(run) > 1:
                bigrams.add(run)
            continue
        characters.update(ch for ch in run if _CJK.match(ch) and ch not in _COMMON_CHARACTERS)
        bigrams.update(run[i : i + 2] for i in range(len(run) - 1))
    return Features(frozenset(characters), frozenset(bigrams))


# ---------------------------------------------------------------- similarity


def _set_similarity(
    a: frozenset[str], b: frozenset[str], weights: Mapping[str, float] | None = None
) -> float:
    """Mean of Dice and the overlap coefficient: Dice alone punishes a short follow-up of a
    long complaint ("漏水还没修"), overlap alone rewards any short text inside a long one.
    With `weights`, each feature counts by its weight (1 where it has none)."""
    if not a or not b:
        return 0.0
    shared = a & b
    if not shared:
        return 0.0
    if weights is None:
        size_a, size_b, size_shared = float(len(a)), float(len(b)), float(len(shared))
    else:
        size_a = sum(weights.get(f, 1.0) for f in a)
        size_b = sum(weights.get(f, 1.0) for f in b)
        size_shared = sum(weights.get(f, 1.0) for f in shared)
    dice = 2 * size_shared / (size_a + size_b)
    overlap = size_shared / min(size_a, size_b)
    return (dice + overlap) / 2


def similarity(a: Matter, b: Matter, weights: Mapping[str, float] | None = None) -> float:
    """0..1: how alike the two complaints' texts are, apart from the target and place they
    name (those are compared by `same_locus`).

    The mean over characters and over bigrams: a reworded account keeps its characters
    ("电梯坏了" / "电梯停用" share 电梯, and 坏/停 go), a different matter in the same words
    shares bigrams but few content characters. `weights` (see `rarity_weights`) make words
    every complaint of a kind uses ("孩子", "学校" at a school) count less than rare ones."""
    # The place's bigrams go ("翠湖", "湖小"), its characters stay: "供电公司" names the
    # target, yet 电 in "停电" is the matter.
    locus = a.locus_features.bigrams | b.locus_features.bigrams
    mine = Features(a.text_features.characters, a.text_features.bigrams - locus)
    theirs = Features(b.text_features.characters, b.text_features.bigrams - locus)
    return (
        _set_similarity(mine.characters, theirs.characters, weights)
        + _set_similarity(mine.bigrams, theirs.bigrams, weights)
    ) / 2


def rarity_weights(matters: Sequence[Matter]) -> dict[str, float]:
    """Inverse document frequency of each text feature over `matters` (log(1 + n / df)): a
    feature in every complaint weighs log 2, one in a single complaint of n weighs log(1+n).
    Comparing one profile's open complaints, what they all say counts least."""
    counts: Counter[str] = Counter()
    for matter in matters:
        counts.update(matter.text_features.all)
    total = len(matters)
    return {feature: math.log(1 + total / count) for feature, count in counts.items()}


_DIGITS = re.compile(r"\d+")


def _numbers(locus: str) -> frozenset[str]:
    return frozenset(_DIGITS.findall(locus))


def _numbers_conflict(a: str, b: str) -> bool:
    """ "3号窗口" and "5号窗口", "18路" and "28路": two units that differ by their number only."""
    mine, theirs = _numbers(a), _numbers(b)
    return bool(mine and theirs and not (mine <= theirs or theirs <= mine))


def _locus_score(a: str, b: str) -> float:
    """0..1: how alike two targets or places are.

    One inside the other counts when it is the head of the other ("阳光" in "阳光3号楼": one
    place at two levels of detail) or a numbered unit ("3号" in "不动产登记3号"). Chinese names
    put the proper name first and the kind last, so a match on the tail alone is a kind,
    not a place ("景区" in "青山景区", "公交" in "18路公交")."""
    if _numbers_conflict(a, b):
        return 0.0
    whole = fuzz.ratio(a, b)
    shorter, longer = sorted((a, b), key=len)
    alignment = fuzz.partial_ratio_alignment(shorter, longer)
    if alignment is None:
        return whole / 100
    numbered_unit = bool(_DIGITS.search(shorter)) and len(_DIGITS.sub("", shorter)) <= 2
    if len(shorter) < len(longer) and (alignment.dest_start == 0 or numbered_unit):
        return max(whole, alignment.score) / 100
    return whole / 100


def _found_in(name: str, text: str) -> float:
    """How well a target or place appears in the other complaint's text (0..1)."""
    if len(name) < 2 or len(text) < len(name):
        return 0.0
    return fuzz.partial_ratio(name, text) / 100


def same_locus(a: Matter, b: Matter) -> bool | None:
    """Whether the two complaints are about the same target and place: True, False, or None
    when neither says enough to tell (no target, no place, and no name of the other's in its
    text).

    A target or place named by one complaint only is looked for in the other's text
    ("我住翠湖小区" names the place the other put in the place field); a complaint that names
    the target in the place field ("翠湖小区物业" / "翠湖小区") is compared across fields. Two
    targets that differ, or differ by their number, contradict; two places contradict only
    when clearly different, as complainants name one matter at many levels of detail
    ("东湖片区", "东湖新村", "东湖路")."""
    limit = LOCUS_THRESHOLD / 100
    if a.normal_target and b.normal_target and _numbers_conflict(a.normal_target, b.normal_target):
        return False
    mine = [name for name in (a.normal_target, a.normal_place) if name]
    theirs = [name for name in (b.normal_target, b.normal_place) if name]
    evidence = max(
        [_locus_score(x, y) for x in mine for y in theirs]
        + [_found_in(x, b.compact_text) for x in mine]
        + [_found_in(y, a.compact_text) for y in theirs],
        default=0.0,
    )
    if evidence >= limit:
        if a.normal_target and b.normal_target:
            targets = max(
                _locus_score(a.normal_target, b.normal_target),
                _found_in(a.normal_target, b.compact_text),
                _found_in(b.normal_target, a.compact_text),
            )
            if targets < limit:
                return False  # one place, two targets ("阳光花园物业" / "开发商")
        if a.normal_place and b.normal_place:
            places = max(
                _locus_score(a.normal_place, b.normal_place),
                _locus_score(a.normal_place, b.normal_target) if b.normal_target else 0.0,
                _locus_score(b.normal_place, a.normal_target) if a.normal_target else 0.0,
                _found_in(a.normal_place, b.compact_text),
                _found_in(b.normal_place, a.compact_text),
            )
            if places < limit:
                return False  # one kind of target, two places ("学校食堂" at two schools)
        return True
    if mine and theirs:
        return False
    return None


# ---------------------------------------------------------------- repeats

# How alike two complaints' texts are (0..1); `similarity` unless another is given, e.g. the
# sentence-embedding measure bench/similarity.py compares it with.
Measure = Callable[[Matter, Matter], float]


def repeat_of(
    new: Matter,
    earlier: Sequence[Matter],
    *,
    within: timedelta,
    threshold: float = DEFAULT_REPEAT_THRESHOLD,
    measure: Measure | None = None,
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
        score = (measure or similarity)(new, old)
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
# Complaints of one mass matter come together ("集中发生"): none is linked to another filed
# more than this far apart (a group still spans longer through its members).
DEFAULT_GROUP_SPAN = timedelta(days=14)


def _candidate_pairs(block: Sequence[Matter], span: timedelta | None) -> set[tuple[int, int]]:
    """Pairs of positions in `block` (sorted by filing time) that share a rare feature of
    their target, place or text, filed within `span` of each other: the only pairs compared
    in full, so grouping costs about n × (complaints per rare feature in a span), not n²."""
    postings: dict[str, list[int]] = defaultdict(list)
    for index, matter in enumerate(block):
        for feature in matter.locus_features.bigrams | matter.text_features.bigrams:
            postings[feature].append(index)
    limit = max(_COMMON_FLOOR, int(len(block) * _COMMON_SHARE))
    pairs: set[tuple[int, int]] = set()
    for members in postings.values():
        if len(members) < 2 or len(members) > limit:
            continue
        for i, first in enumerate(members):
            for second in members[i + 1 :]:
                if span is not None and block[second].filed_at - block[first].filed_at > span:
                    break  # postings are in filing order: the rest are later still
                pairs.add((first, second))
    return pairs


def same_matter(
    a: Matter,
    b: Matter,
    threshold: float = DEFAULT_GROUP_THRESHOLD,
    measure: Measure | None = None,
    weights: Mapping[str, float] | None = None,
) -> bool:
    """Two complaints about one matter: same profile, same target and place, alike text
    (by `measure`, else `similarity` with `weights`)."""
    if a.profile != b.profile:
        return False
    if not same_locus(a, b):
        # Unknown is not enough: a mass matter is one target and place, and two complaints
        # that name neither would be grouped on words alone ("停水了" in two estates).
        return False
    score = measure(a, b) if measure else similarity(a, b, weights)
    return score >= threshold


def propose_groups(
    matters: Sequence[Matter],
    *,
    threshold: float = DEFAULT_GROUP_THRESHOLD,
    min_size: int = 3,
    within: timedelta | None = DEFAULT_GROUP_SPAN,
    measure: Measure | None = None,
) -> list[list[int]]:
    """Groups of complaints about one matter to propose to a supervisor: ids, each group
    sorted, groups disjoint, ordered by their first id; only groups of `min_size`
    complainants or more.

    Complaints are blocked by profile, candidate pairs come from rare shared bigrams among
    complaints filed `within` of each other (None: any time apart), each is checked with
    `same_matter`, and groups are the connected parts of what passes. A complaint that
    repeats another of the same complainant counts once in a group's size: three complaints
    of one person are a repeat, not a mass matter."""
    by_profile: dict[str, list[Matter]] = defaultdict(list)
    for matter in matters:
        by_profile[matter.profile].append(matter)
    groups: list[list[int]] = []
    for unsorted in by_profile.values():
        block = sorted(unsorted, key=lambda m: (m.filed_at, m.id))
        weights = rarity_weights(block)
        parent = list(range(len(block)))
        for first, second in sorted(_candidate_pairs(block, within)):
            if same_matter(block[first], block[second], threshold, measure, weights):
                root_a, root_b = _root(parent, first), _root(parent, second)
                if root_a != root_b:
                    parent[max(root_a, root_b)] = min(root_a, root_b)
        parts: dict[int, list[Matter]] = defaultdict(list)
        for index, matter in enumerate(block):
            parts[_root(parent, index)].append(matter)
        for members in parts.values():
            if len(members) >= min_size and _complainants(members) >= min_size:
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
