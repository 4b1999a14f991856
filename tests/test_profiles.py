"""Policy profiles: the shipped regulations, extends/merge rules, and validation messages."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from config.languages import LANGUAGES
from config.profiles import (
    SHIPPED_PROFILES_DIR,
    Profile,
    ProfileError,
    deep_merge,
    list_profiles,
    load_profile,
    pick,
)
from scheduler.deadlines import Duration

WD = "working_days"


def test_shipped_profiles_are_listed_without_the_abstract_base() -> None:
    listed = list_profiles()
    assert {"gov-window", "property", "tax-service", "petition", "transport"} <= set(listed)
    assert "base" not in listed and "first-ask" not in listed  # abstract
    assert {"base", "first-ask"} <= set(list_profiles(include_abstract=True))
    assert load_profile("base").abstract
    assert not load_profile("property").abstract  # `abstract` is not inherited


def _all_texts(profile: Profile) -> list[tuple[str, dict[str, str]]]:
    texts = [("name", profile.name), ("description", profile.description)]
    for c in profile.categories:
        texts.append((f"category {c.id}", c.label))
        texts += [(f"subcategory {c.id}/{s.id}", s.label) for s in c.subcategories]
    texts += [(f"severity {s.id}", s.label) for s in profile.severities]
    for e in profile.exclusions:
        texts += [(f"exclusion {e.id}.{k}", getattr(e, k)) for k in ("label", "reason", "guidance")]
    for f in profile.intake.fields:
        texts.append((f"field {f.id}", f.prompt))
        texts += [(f"option {f.id}/{o.id}", o.label) for o in f.options or []]
    return texts


@pytest.mark.parametrize("name", ["gov-window", "tax-service", "property"])
def test_shipped_profiles_have_every_text_in_three_languages(name: str) -> None:
    profile = load_profile(name)
    assert profile.categories and profile.severities and profile.exclusions
    for where, texts in _all_texts(profile):
        assert set(texts) == set(LANGUAGES), f"{name}: {where} lacks a language"


ENGINE_FORM = [
    "category",
    "target",
    "incident_time",
    "place",
    "facts",
    "request_type",
    "witnesses",
    "name",
    "phone",
    "photos",
]


@pytest.mark.parametrize(
    ("name", "own"),
    [
        ("gov-window", {"grounds": "witnesses", "organisation": "phone"}),  # R1 理由, R4 单位名称
        ("tax-service", {"taxpayer_kind": "category", "organisation": "phone"}),  # R6 自然人
        ("property", {}),
    ],
)
def test_shipped_profiles_share_the_engine_form(name: str, own: dict[str, str]) -> None:
    profile = load_profile(name)
    ids = [f.id for f in profile.intake.fields]
    assert [i for i in ids if i not in own] == ENGINE_FORM
    for field_id, after in own.items():  # placed by `after`, not appended
        assert ids.index(field_id) == ids.index(after) + 1
    options = [o.id for o in profile.field("request_type").options or []]
    assert options == ["explanation", "fix", "accountability", "apology", "other"]
    assert "compensation" not in options and "stop_harm" not in options  # R13's, transport only
    targets = [o.id for o in profile.field("target").options or []]
    assert targets == ["department", "staff", "other"]  # no 车辆 outside transport
    assert profile.field("request_type").free_text
    assert profile.field("photos").max_count == 6


def test_gov_window_encodes_its_regulation() -> None:
    p = load_profile("gov-window")
    assert p.deadline_for("acceptance") == Duration(3, WD)
    assert p.deadline_for("resolution", "service_attitude") == Duration(3, WD)  # simple
    assert p.deadline_for("resolution", "requirements") == Duration(10, WD)  # complex
    assert p.deadline_for("resolution", "integrity", "serious") == Duration(10, WD)
    assert p.deadline_for("result_notice", "online_service") == Duration(3, WD)
    assert p.reply.written_reply_for_written_complaint
    assert p.reply.disputed_result == "reinvestigate"
    assert p.extension is not None and p.extension.max.to_duration() == Duration(10, WD)  # R4
    assert p.acceptance.ask_complexity  # R1 judges 情节简单 per case
    # per case: a simple category judged complex takes 10 working days
    assert p.deadline_for("resolution", "service_attitude", complexity="complex") == Duration(
        10, WD
    )
    assert "misconduct" in {c.id for c in p.categories}  # R1/R2 accept 违规违纪
    assert "misconduct_report" not in {e.id for e in p.exclusions}
    assert not p.duty_24h
    assert {"legal_proceedings", "petition"} <= {e.id for e in p.exclusions}
    # every category resolves to a resolution deadline through its complexity
    for category in p.categories:
        assert p.deadline_for("resolution", category.id).unit == WD


def test_tax_service_encodes_its_regulation() -> None:
    p = load_profile("tax-service")
    assert p.deadline_for("resolution", "on_the_spot") == Duration(0, "minutes")
    for three in ("preferential_policy", "individual_income_tax", "social_insurance"):
        assert p.deadline_for("resolution", three) == Duration(3, WD)
    assert p.deadline_for("resolution", "service_conduct") == Duration(5, WD)
    assert p.deadline_for("resolution", "service_quality") == Duration(10, WD)
    assert p.deadline_for("resolution", "rights_infringement", "serious") == Duration(10, WD)
    assert p.extension is not None
    assert p.extension.max_count == 1
    assert p.extension.max.to_duration() == Duration(10, WD)
    assert p.extension.requires_approval and p.extension.notify_complainant
    review = next(e for e in p.exclusions if e.id == "review_or_litigation")
    assert "行政复议" in review.guidance["zh_CN"]
    assert "12366" in review.guidance["zh_CN"]
    assert "12366" in review.guidance["en"]


def test_property_encodes_its_regulation() -> None:
    p = load_profile("property")
    assert p.duty_24h
    assert not p.anonymous_allowed
    assert p.field("phone").required
    assert p.field("phone").type == "phone"  # merged by id: type kept from base
    assert "房号" in p.field("place").prompt["zh_CN"]
    assert [c.id for c in p.categories] == [
        "building",
        "equipment",
        "security",
        "environment",
        "general_services",
        "developer",
        "third_party",
        "other",  # R7g: 鄰里糾紛, 市政配套 are accepted as 其它
    ]
    assert p.severity_ids() == ["minor", "major"]
    assert p.deadline_for("dispatch", "equipment") == Duration(5, "minutes")
    assert p.deadline_for("manager_notice", "equipment", "major") == Duration(10, "minutes")
    assert p.deadline_for("resolution", "security", "major") == Duration(12, "hours")
    assert p.deadline_for("revisit", "security", "minor") == Duration(24, "hours")
    assert p.deadline_for("first_contact", "security") == Duration(24, "hours")  # R7g 反饋
    assert p.deadline_for("action_plan", "security") == Duration(1, "hours")  # R7g 1小時
    with pytest.raises(LookupError, match="manager_notice"):
        p.deadline_for("manager_notice", "equipment")  # minor by default: no manager notice
    assert p.revisit is not None and p.revisit.unsatisfied == "supervisor_revisit"


def test_revisit_stages_fall_back_to_the_revisit_table() -> None:
    p = load_profile("gov-window")
    assert p.deadline_for("revisit") == Duration(1, WD)
    assert p.deadline_for("survey_reminder") == Duration(1, WD)
    assert p.deadline_for("auto_close") == Duration(2, WD)
    assert p.revisit is not None
    assert p.revisit.supervisor_revisit_due is not None
    assert p.revisit.supervisor_revisit_due.to_duration() == Duration(7, "calendar_days")
    bands = p.revisit.satisfaction
    assert [bands.band(s) for s in (0, 4, 5, 7, 8, 10)] == [
        "unsatisfied",
        "unsatisfied",
        "neutral",
        "neutral",
        "satisfied",
        "satisfied",
    ]
    with pytest.raises(ValueError):
        bands.band(11)


def test_deadline_lookup_errors() -> None:
    p = load_profile("gov-window")
    with pytest.raises(ValueError, match="unknown stage"):
        p.deadline_for("lunch")
    with pytest.raises(KeyError, match="nosuch"):
        p.deadline_for("resolution", "nosuch")
    with pytest.raises(KeyError, match="urgent"):
        p.deadline_for("resolution", "other", "urgent")
    with pytest.raises(LookupError, match="dispatch"):
        p.deadline_for("dispatch")


def test_labels_and_fallback() -> None:
    p = load_profile("property")
    assert p.label("category", "building") == "房屋管理"
    assert p.label("category", "building", "zh_TW") == "房屋管理"
    assert p.label("subcategory", "equipment/lift", "en") == "Lift failure"
    assert p.label("subcategory", "lift", "en", category="equipment") == "Lift failure"
    assert p.label("severity", "major", "en") == "Major"
    assert p.label("exclusion", "owners_assembly", "en") == "Matters for the owners' assembly"
    assert p.label("field", "phone", "en").startswith("Your phone")
    assert p.label("option", "request_type/apology", "zh_TW") == "賠禮道歉"
    assert pick({"zh_CN": "中文"}, "en") == "中文"
    with pytest.raises(KeyError):
        p.label("category", "nosuch")
    with pytest.raises(ValueError):
        p.label("colour", "x")


def test_deep_merge_rules() -> None:
    parent = {
        "office_hours": {"start": "09:00", "end": "17:00"},
        "severities": [{"id": "a"}, {"id": "b"}],
        "intake": {
            "fields": [
                {"id": "facts", "type": "text", "required": True},
                {"id": "phone", "type": "phone", "required": False},
                {"id": "photos", "type": "photos"},
            ]
        },
    }
    child = {
        "office_hours": {"end": "18:00"},
        "severities": [{"id": "c"}],
        "intake": {
            "fields": [
                {"id": "phone", "required": True},
                {"id": "photos", "omit": True},
                {"id": "unit", "type": "text"},
            ]
        },
    }
    merged = deep_merge(parent, child)
    assert merged["office_hours"] == {"start": "09:00", "end": "18:00"}
    assert merged["severities"] == [{"id": "c"}]  # arrays of tables replaced wholesale
    assert merged["intake"]["fields"] == [
        {"id": "facts", "type": "text", "required": True},
        {"id": "phone", "type": "phone", "required": True},
        {"id": "unit", "type": "text"},
    ]
    assert parent["office_hours"]["end"] == "17:00"  # inputs untouched


# -- validation errors ---------------------------------------------------------------------

HEADER = """
id = "{name}"
extends = "base"
name = {{ zh_CN = "测试" }}
description = {{ zh_CN = "测试" }}
[[categories]]
id = "noise"
label = {{ zh_CN = "噪音" }}
[[categories]]
id = "lift"
label = {{ zh_CN = "电梯" }}
complexity = "complex"
[[severities]]
id = "minor"
label = {{ zh_CN = "一般" }}
[[severities]]
id = "major"
label = {{ zh_CN = "重大" }}
"""


def _profile(tmp_path: Path, body: str = "", name: str = "sample") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(HEADER.format(name=name) + dedent(body), encoding="utf-8")
    return path


def _error(path: Path | str, profiles_dir: Path | None = None) -> ProfileError:
    with pytest.raises(ProfileError) as info:
        load_profile(str(path), profiles_dir)
    return info.value


def test_most_specific_rule_wins(tmp_path: Path) -> None:
    path = _profile(
        tmp_path,
        """
        [deadlines]
        resolution = [
            { amount = 10, unit = "working_days" },
            { severity = "major", amount = 5, unit = "working_days" },
            { complexity = "complex", amount = 8, unit = "working_days" },
            { complexity = "complex", severity = "major", amount = 4, unit = "working_days" },
            { category = "noise", amount = 3, unit = "working_days" },
            { category = "noise", severity = "major", amount = 12, unit = "hours" },
        ]
        """,
    )
    p = load_profile(path)
    assert p.deadline_for("resolution") == Duration(10, WD)
    assert p.deadline_for("resolution", severity="major") == Duration(5, WD)
    assert p.deadline_for("resolution", "lift") == Duration(8, WD)
    assert p.deadline_for("resolution", "lift", "major") == Duration(4, WD)
    assert p.deadline_for("resolution", "noise") == Duration(3, WD)
    assert p.deadline_for("resolution", "noise", "minor") == Duration(3, WD)
    assert p.deadline_for("resolution", "noise", "major") == Duration(12, "hours")


def test_error_names_file_key_path_and_problem(tmp_path: Path) -> None:
    path = _profile(
        tmp_path,
        """
        [deadlines]
        resolution = [
            { amount = 10, unit = "working_days" },
            { severity = "major", amount = 5, unit = "working_days" },
            { category = "noise", amount = 3, unit = "weeks" },
        ]
        """,
    )
    error = _error(path)
    assert error.file == path
    text = str(error)
    assert str(path) in text
    assert "deadlines.resolution[2].unit" in text
    assert "'weeks'" in text


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        ("duty_24 = true\n", "duty_24", "unknown key"),
        ("[office_hours]\nbegin = '08:00'\n", "office_hours.begin", "unknown key"),
        ("retention_years = 0\n", "retention_years", "greater than or equal to 1"),
        (
            "[deadlines]\nresolution = [{ category = 'roof', amount = 1, unit = 'hours' }]\n",
            "deadlines.resolution[0].category",
            "unknown category 'roof'",
        ),
        (
            "[deadlines]\ndispatch = [{ severity = 'huge', amount = 1, unit = 'hours' }]\n",
            "deadlines.dispatch[0].severity",
            "unknown severity 'huge'",
        ),
        (
            "[deadlines]\ndispatch = [{ amount = -1, unit = 'hours' }]\n",
            "deadlines.dispatch[0].amount",
            "greater than or equal to 0",
        ),
        (
            "[deadlines]\ndispatch = [{ amount = 1, unit = 'hours' }, "
            "{ amount = 2, unit = 'hours' }]\n",
            "deadlines.dispatch[1]",
            "ambiguous",
        ),
        (
            "[deadlines]\nlunch = [{ amount = 1, unit = 'hours' }]\n",
            "deadlines.lunch",
            "unknown key",
        ),
        (
            "[[categories]]\nid = 'noise'\nlabel = { zh_CN = '又' }\n",
            "categories[2].id",
            "duplicate",
        ),
        (
            "[[categories]]\nid = 'roof'\nlabel = { en = 'Roof' }\n",
            "categories[2].label",
            "zh_CN text is required",
        ),
        (
            "[[categories]]\nid = 'roof'\nlabel = { zh_CN = '屋顶', fr = 'toit' }\n",
            "categories[2].label.fr",
            "",
        ),
        (
            "[[categories]]\nid = 'roof'\ndefault_severity = 'huge'\nlabel = { zh_CN = '屋顶' }\n",
            "categories[2].default_severity",
            "unknown severity",
        ),
        (
            "[[intake.fields]]\nid = 'pet'\ntype = 'category'\nprompt = { zh_CN = '宠物' }\n",
            "intake.fields[10].id",
            "unknown field 'pet'",
        ),
        (
            "[[intake.fields]]\nid = 'phone'\ntype = 'text'\n",
            "intake.fields[8].type",
            "must have type 'phone'",
        ),
        (
            "[[intake.fields]]\nid = 'colour'\ntype = 'choice'\nprompt = { zh_CN = '颜色' }\n",
            "intake.fields[10].options",
            "needs options",
        ),
        (
            "[[intake.fields]]\nid = 'facts'\nrequired = false\n",
            "intake.fields",
            "'facts' is missing or optional",
        ),
        ("anonymous_allowed = false\n", "intake.fields", "'phone' field must be required"),
        (
            "[revisit.satisfaction]\nneutral = [6, 7]\n",
            "revisit.satisfaction",
            "without gaps",
        ),
    ],
)
def test_validation_problems(tmp_path: Path, body: str, key: str, problem: str) -> None:
    # top-level keys must come before the header's tables, so put them first
    if "=" in body.splitlines()[0] and not body.startswith("["):
        path = tmp_path / "sample.toml"
        path.write_text(body + HEADER.format(name="sample"), encoding="utf-8")
    else:
        path = _profile(tmp_path, body)
    error = _error(path)
    matching = [msg for where, msg in error.problems if where == key]
    assert matching, f"no problem at {key!r}: {error}"
    assert any(problem in msg for msg in matching), str(error)
    assert str(path) in str(error)


def test_file_name_must_match_id(tmp_path: Path) -> None:
    path = _profile(tmp_path, name="sample")
    renamed = path.rename(tmp_path / "other.toml")
    error = _error(renamed)
    assert error.problems == [("id", "'sample' does not match the file name 'other'")]


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('id = "broken"\nname = {\n', encoding="utf-8")
    assert "not valid TOML" in str(_error(path))


def test_missing_profile_and_missing_parent(tmp_path: Path) -> None:
    assert "no profile 'nosuch'" in str(_error("nosuch"))
    path = tmp_path / "orphan.toml"
    path.write_text('id = "orphan"\nextends = "nosuch"\n', encoding="utf-8")
    error = _error(path)
    assert error.problems[0][0] == "extends"
    assert "nosuch" in str(error)


def test_circular_extends(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('id = "a"\nextends = "b"\n', encoding="utf-8")
    (tmp_path / "b.toml").write_text('id = "b"\nextends = "a"\n', encoding="utf-8")
    assert "circular extends" in str(_error(tmp_path / "a.toml"))


def test_broken_parent_is_reported_under_its_own_file(tmp_path: Path) -> None:
    parent = tmp_path / "parent.toml"
    parent.write_text(
        'id = "parent"\nabstract = true\nname = { zh_CN = "父" }\n'
        'description = { zh_CN = "父" }\nduty_24h = "sometimes"\n',
        encoding="utf-8",
    )
    child = tmp_path / "child.toml"
    child.write_text('id = "child"\nextends = "parent"\n', encoding="utf-8")
    error = _error(child, tmp_path)
    assert error.file == parent
    assert error.problems[0][0] == "duty_24h"


def test_extra_profiles_dir_lists_and_shadows(tmp_path: Path) -> None:
    _profile(tmp_path, name="my-school")
    listed = list_profiles(tmp_path)
    assert "my-school" in listed and listed == sorted(listed)
    assert listed.count("school") == 1
    assert load_profile("my-school", tmp_path).id == "my-school"
    # a same-named file in the extra directory wins over the shipped one
    (tmp_path / "property.toml").write_text(
        (SHIPPED_PROFILES_DIR / "property.toml")
        .read_text(encoding="utf-8")
        .replace("duty_24h = true", "duty_24h = false"),
        encoding="utf-8",
    )
    assert not load_profile("property", tmp_path).duty_24h
    assert load_profile("property").duty_24h


def test_progress_messages_are_our_choice_in_two_profiles() -> None:
    every = Duration(5, WD)
    assert load_profile("gov-window").progress is not None
    assert load_profile("gov-window").progress.interval == every  # type: ignore[union-attr]
    assert load_profile("tax-service").progress.interval == every  # type: ignore[union-attr]
    assert load_profile("property").progress is None  # hours-scale cases: milestones suffice
    assert load_profile("base").progress is None


def test_property_major_complaints_owe_the_manager_in_10_minutes_and_a_solution_in_12_hours() -> (
    None
):
    profile = load_profile("property")
    for category in profile.categories:
        assert profile.deadline_for("resolution", category.id, "major") == Duration(12, "hours")
        assert profile.deadline_for("manager_notice", category.id, "major") == Duration(
            10, "minutes"
        )
        with pytest.raises(LookupError):
            profile.deadline_for("manager_notice", category.id, "minor")


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        (
            '[progress]\nevery = { amount = 0, unit = "working_days" }\n',
            "progress.every.amount",
            "at least 1",
        ),
        ('[progress]\nevery = { amount = 5, unit = "weeks" }\n', "progress.every.unit", "weeks"),
        ("[progress]\n", "progress.every", "Field required"),
        (
            '[progress]\nevery = { amount = 5, unit = "hours" }\noften = true\n',
            "progress.often",
            "unknown key",
        ),
    ],
)
def test_progress_key_is_validated(tmp_path: Path, body: str, key: str, problem: str) -> None:
    error = _error(_profile(tmp_path, body))
    matching = [msg for where, msg in error.problems if where == key]
    assert matching, f"no problem at {key!r}: {error}"
    assert any(problem in msg for msg in matching), str(error)
