"""Linking the target a complainant typed to a department or staff member.

The intake dialog records whom a complaint is about as free text ("不动产登记中心3号窗口",
"王科员"). Confidentiality (models.confidentiality) keys on `Complaint.target_department` /
`Complaint.target_staff`, so at submission the text is matched against the organisation here.

A wrong link only hides the complainant's identity from someone who did not need hiding from,
while a missed link shows it to the very person complained about; so matching leans towards
linking, but never guesses between two equally good candidates.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz
from tortoise.backends.base.client import BaseDBAsyncClient

from models.entities import Complaint, Department, Staff, TargetKind

# Scores are rapidfuzz's 0..100. One mistyped character in a five-character department core
# ("不动产登记" → "不动产等记") scores 80; anything lower on such short Chinese names is mostly two
# names sharing a character or two, which is noise, not a match.
DEFAULT_THRESHOLD = 80.0
# Two candidates this close to each other are both plausible: leave the target unlinked.
AMBIGUITY_MARGIN = 5.0
# A title after a bare surname ("王科员") names the one staff member with that surname.
SURNAME_SCORE = 90.0

# Generic endings of Chinese unit names: "税务窗口" and "不动产登记窗口" share "窗口" but nothing
# that tells them apart, so names are also compared without them.
_UNIT_SUFFIXES = (
    "服务大厅",
    "服务厅",
    "大厅",
    "窗口",
    "中心",
    "部门",
    "科室",
    "办公室",
    "科",
    "部",
    "处",
    "室",
    "局",
    "股",
    "所",
    "队",
)
# How complainants refer to staff: "王科员", "李主任", "3号窗口工作人员".
_STAFF_TITLES = (
    "工作人员",
    "办事员",
    "科员",
    "科长",
    "副科长",
    "主任",
    "副主任",
    "处长",
    "局长",
    "所长",
    "股长",
    "队长",
    "经理",
    "主管",
    "组长",
    "警官",
    "老师",
    "师傅",
    "同志",
    "先生",
    "女士",
    "小姐",
)
_NOISE = re.compile(r"[\s\W_]+")


@dataclass(frozen=True)
class TargetMatch:
    """What a typed target links to; at most one of each, and at least one."""

    department_id: int | None
    staff_id: int | None
    score: float


def normalise(text: str) -> str:
    """Full-width to half-width, case-folded, without spaces and punctuation."""
    return _NOISE.sub("", unicodedata.normalize("NFKC", text).casefold())


def _strip_endings(name: str, endings: Sequence[str]) -> str:
    """`name` without generic endings, as long as two characters remain to tell names apart."""
    changed = True
    while changed:
        changed = False
        for ending in sorted(endings, key=len, reverse=True):  # "副科长" before "科长"
            if name.endswith(ending) and len(name) - len(ending) >= 2:
                name, changed = name[: -len(ending)], True
                break
    return name


def _name_score(text: str, name: str, endings: Sequence[str]) -> float:
    """How well normalised `text` names `name` (both normalised)."""
    if not text or not name:
        return 0.0
    core = _strip_endings(name, endings)
    if (len(name) >= 2 and name in text) or (len(core) >= 2 and core in text):
        return 100.0  # the text names it, perhaps with more ("…中心3号窗口")
    # Compared without generic endings: "服务中心" and "政务服务中心" share only "中心".
    score = fuzz.ratio(_strip_endings(text, endings), core)
    if 3 <= len(core) <= len(text):
        # A slightly mistyped name inside a longer description; only when the text is at least
        # as long as the name, so a fragment like "登记" does not count as naming "不动产登记中心".
        score = max(score, fuzz.partial_ratio(core, text))
    return float(score)


def _code_score(text: str, code: str) -> float:
    code = normalise(code)
    if not code:
        return 0.0
    if text == code:
        return 100.0
    # A short code ("tax") fuzzily resembles too many words; only longer ones may be misspelt.
    return float(fuzz.ratio(text, code)) if len(code) >= 4 else 0.0


def _best(scored: list[tuple[float, int, str]], threshold: float) -> tuple[float, int] | None:
    """The one clear winner of (score, id, name) at or above `threshold`, else None."""
    passing = sorted((s for s in scored if s[0] >= threshold), reverse=True)
    if not passing:
        return None
    top = passing[0][0]
    close = [s for s in passing if s[0] > top - AMBIGUITY_MARGIN]
    # A text naming a unit and its sub-unit ("不动产登记中心受理科") names the more specific one.
    close = [s for s in close if not any(s[2] != o[2] and s[2] in o[2] for o in close)]
    if len({s[1] for s in close}) != 1:
        return None
    return close[0][0], close[0][1]


def _match_department(
    text: str, departments: Sequence[tuple[int, str, str]], threshold: float
) -> tuple[float, int] | None:
    scored = []
    for department_id, code, name in departments:
        normal = normalise(name)
        score = max(_name_score(text, normal, _UNIT_SUFFIXES), _code_score(text, code))
        scored.append((score, department_id, normal))
    return _best(scored, threshold)


def _match_staff(
    text: str, staff: Sequence[tuple[int, str]], threshold: float
) -> tuple[float, int] | None:
    bare = _strip_endings(text, _STAFF_TITLES)
    scored = []
    for staff_id, name in staff:
        normal = normalise(name)
        score = _name_score(text, normal, ())
        if len(normal) >= 2 and bare != text:
            score = max(score, float(fuzz.ratio(bare, normal)))
        scored.append((score, staff_id, normal))
    found = _best(scored, threshold)
    if found is not None:
        return found
    titles = sorted(_STAFF_TITLES, key=len, reverse=True)
    title_stripped = next((text[: -len(t)] for t in titles if text.endswith(t)), None)
    if title_stripped is not None and len(title_stripped) == 1 and title_stripped.isalpha():
        # "王科员": only a surname; it names someone only if exactly one staff member bears it.
        same_surname = [i for i, name in staff if normalise(name).startswith(title_stripped)]
        if len(same_surname) == 1 and SURNAME_SCORE >= threshold:
            return SURNAME_SCORE, same_surname[0]
    return None


def match_target(
    kind: TargetKind | str | None,
    text: str | None,
    departments: Sequence[tuple[int, str, str]],
    staff: Sequence[tuple[int, str]],
    threshold: float = DEFAULT_THRESHOLD,
) -> TargetMatch | None:
    """The department (id, code, name) and/or staff member (id, name) that `text` names.

    A department target links a department only. A staff target links the person, and also
    the department when the text names one ("不动产登记中心的王科员"). Vehicles and other
    targets never link. None when nothing scores `threshold` or two candidates tie.
    """
    if kind not in (TargetKind.DEPARTMENT, TargetKind.STAFF) or not text:
        return None  # TargetKind is a StrEnum, so plain "department" / "staff" compare equal
    typed = normalise(text)
    if not typed:
        return None
    department = _match_department(typed, departments, threshold)
    person = _match_staff(typed, staff, threshold) if kind == TargetKind.STAFF else None
    if department is None and person is None:
        return None
    return TargetMatch(
        department_id=department[1] if department else None,
        staff_id=person[1] if person else None,
        score=max(found[0] for found in (department, person) if found is not None),
    )


async def _departments_and_staff(
    conn: BaseDBAsyncClient,
) -> tuple[list[tuple[int, str, str]], list[tuple[int, str]]]:
    """Every department (id, code, name) and active staff member (id, name), in one statement
    (this runs on every filing that names a person)."""
    rows = await conn.execute_query_dict(
        f"SELECT 'department' AS kind, id, code, name FROM {Department._meta.db_table} "
        f"UNION ALL SELECT 'staff', id, NULL, name FROM {Staff._meta.db_table} WHERE active"
    )
    departments = [
        (int(r["id"]), str(r["code"]), str(r["name"])) for r in rows if r["kind"] == "department"
    ]
    staff = [(int(r["id"]), str(r["name"])) for r in rows if r["kind"] == "staff"]
    return departments, staff


async def link_target(complaint: Complaint, conn: BaseDBAsyncClient) -> TargetMatch | None:
    """Set the complaint's target department/staff from its typed target (not saved here).

    A target that is already linked is left alone: whoever linked it knew better.
    """
    if complaint.target_kind not in (TargetKind.DEPARTMENT, TargetKind.STAFF):
        return None
    if not complaint.target_text:
        return None
    if complaint.target_kind == TargetKind.STAFF:
        departments, staff = await _departments_and_staff(conn)
    else:  # a department target links no person (match_target)
        rows = await Department.all().using_db(conn).values_list("id", "code", "name")
        departments, staff = [(int(i), str(c), str(n)) for i, c, n in rows], []
    found = match_target(complaint.target_kind, complaint.target_text, departments, staff)
    if found is None:
        return None
    if found.department_id is not None and complaint.target_department_id is None:  # type: ignore[attr-defined]
        complaint.target_department_id = found.department_id  # type: ignore[attr-defined]
    if found.staff_id is not None and complaint.target_staff_id is None:  # type: ignore[attr-defined]
        complaint.target_staff_id = found.staff_id  # type: ignore[attr-defined]
    return found
