"""The labelled set of repeat and mass complaints (tests/data/similar_complaints.jsonl) and how
models.similarity is scored on it; used by tests/test_similarity.py and bench/similarity.py.

Each line is one complaint as the shell would see it — complainant id and phone as filed, so
the keys go through `complainant_keys` like real ones — plus two labels written by hand:
`repeat_of`, the earlier complaint of the same person about the same matter within
`REPEAT_WINDOW` (null otherwise), and `group`, a mass matter of three or more complainants.

Scoring:
- repeats, pairwise: every complaint is asked `repeat_of` against all filed before it. A link is
  right when the labels put both in one chain (C repeats B repeats A: C → A is right too);
  precision over links made, recall over labelled repeats.
- groups, pairwise co-membership: the pairs of complaints put in one proposed group against
  the pairs in one labelled group; and how many labelled groups come back exactly.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path

from models.similarity import (
    DEFAULT_GROUP_THRESHOLD,
    DEFAULT_REPEAT_THRESHOLD,
    Matter,
    Measure,
    complainant_keys,
    propose_groups,
    repeat_of,
)

LABELLED = Path(__file__).resolve().parent / "data" / "similar_complaints.jsonl"
# The property profile's severity_rules.repeat_within; the labels use the same window.
REPEAT_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Labelled:
    matter: Matter
    repeat_of: int | None
    group: str | None


def load(path: Path = LABELLED) -> list[Labelled]:
    rows: list[Labelled] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        keys = complainant_keys(raw["complainant_id"], raw["phone"])
        matter = Matter(
            id=raw["id"],
            filed_at=datetime.fromisoformat(raw["filed_at"]),
            complainant_key=keys[0] if keys else None,
            profile=raw["profile"],
            category=raw["category"],
            target=raw["target"],
            place=raw["place"],
            text=raw["text"],
            more_keys=tuple(keys[1:]),
        )
        rows.append(Labelled(matter, raw["repeat_of"], raw["group"]))
    return sorted(rows, key=lambda row: (row.matter.filed_at, row.matter.id))


@dataclass(frozen=True)
class Score:
    true_positives: int
    predicted: int
    labelled: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.labelled if self.labelled else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _chains(rows: Sequence[Labelled]) -> dict[int, int]:
    """Complaint id → the first complaint of its labelled repeat chain."""
    first: dict[int, int] = {}
    for row in rows:  # in filed order, so the earlier one is resolved already
        earlier = row.repeat_of
        first[row.matter.id] = first.get(earlier, earlier) if earlier else row.matter.id
    return first


def score_repeats(
    rows: Sequence[Labelled],
    threshold: float = DEFAULT_REPEAT_THRESHOLD,
    measure: Measure | None = None,
) -> tuple[Score, list[tuple[int, int | None, int | None]]]:
    """The score, and the mistakes as (complaint, linked to, labelled)."""
    chain = _chains(rows)
    right = made = 0
    mistakes: list[tuple[int, int | None, int | None]] = []
    # What the shell fetches: the earlier complaints under any of the complainant's keys
    # (repeat_of would skip every other one anyway).
    by_key: dict[str, list[Matter]] = defaultdict(list)
    for row in rows:
        earlier = {m.id: m for key in row.matter.keys for m in by_key[key]}
        found = repeat_of(
            row.matter,
            list(earlier.values()),
            within=REPEAT_WINDOW,
            threshold=threshold,
            measure=measure,
        )
        for key in row.matter.keys:
            by_key[key].append(row.matter)
        correct = (
            found is not None
            and row.repeat_of is not None
            and chain[found.id] == chain[row.matter.id]
        )
        made += found is not None
        right += correct
        if (found is not None or row.repeat_of is not None) and not correct:
            mistakes.append((row.matter.id, found.id if found else None, row.repeat_of))
    labelled = sum(row.repeat_of is not None for row in rows)
    return Score(right, made, labelled), mistakes


@dataclass(frozen=True)
class GroupScore:
    pairs: Score
    exact: int  # labelled groups proposed exactly
    labelled_groups: int
    proposed_groups: int


def _pairs(groups: Sequence[Sequence[int]]) -> set[tuple[int, int]]:
    return {pair for group in groups for pair in combinations(sorted(group), 2)}


def labelled_groups(rows: Sequence[Labelled]) -> list[list[int]]:
    members: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        if row.group:
            members[row.group].append(row.matter.id)
    return sorted(sorted(ids) for ids in members.values())


def score_groups(
    rows: Sequence[Labelled],
    threshold: float = DEFAULT_GROUP_THRESHOLD,
    measure: Measure | None = None,
    proposed: list[list[int]] | None = None,
) -> GroupScore:
    """The score of `proposed`, or of `propose_groups` at `threshold` by `measure`."""
    if proposed is None:
        matters = [row.matter for row in rows]
        proposed = propose_groups(matters, threshold=threshold, measure=measure)
    truth = labelled_groups(rows)
    truth_pairs, found_pairs = _pairs(truth), _pairs(proposed)
    exact = len({tuple(g) for g in truth} & {tuple(g) for g in proposed})
    return GroupScore(
        Score(len(truth_pairs & found_pairs), len(found_pairs), len(truth_pairs)),
        exact,
        len(truth),
        len(proposed),
    )
