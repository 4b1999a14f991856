"""The confidentiality policy as a table: role × relation to the case × field."""

from __future__ import annotations

import pytest

from models.confidentiality import (
    MASK,
    Field,
    Relation,
    can_see,
    mask_complaint,
    relation_of,
    unmasked_identity,
)
from models.workflow import Role

NAME, PHONE, CHAT, FACTS, FILES = (
    Field.COMPLAINANT_NAME,
    Field.COMPLAINANT_PHONE,
    Field.CHAT_IDENTITY,
    Field.FACTS,
    Field.ATTACHMENTS,
)
R = Relation

# (role, relation): the fields that viewer sees. Every other field is hidden.
TABLE: list[tuple[Role, Relation, set[Field]]] = [
    # The targeted person never learns who complained, whatever their role.
    (Role.HANDLER, R.TARGET_PERSON, {FACTS, FILES}),
    (Role.DEPARTMENT_HEAD, R.TARGET_PERSON, {FACTS, FILES}),
    (Role.INTAKE_CLERK, R.TARGET_PERSON, {FACTS, FILES}),
    (Role.SUPERVISOR, R.TARGET_PERSON, {FACTS, FILES}),
    (Role.ADMIN, R.TARGET_PERSON, {FACTS, FILES}),
    # Nor does the targeted department.
    (Role.HANDLER, R.TARGET_DEPARTMENT, {FACTS, FILES}),
    (Role.DEPARTMENT_HEAD, R.TARGET_DEPARTMENT, {FACTS, FILES}),
    (Role.INTAKE_CLERK, R.TARGET_DEPARTMENT, {FACTS, FILES}),
    (Role.SUPERVISOR, R.TARGET_DEPARTMENT, {FACTS, FILES}),
    # Handlers contact the complainant: name and phone, not the platform identity.
    (Role.HANDLER, R.HANDLER, {NAME, PHONE, FACTS, FILES}),
    (Role.DEPARTMENT_HEAD, R.HANDLER, {NAME, PHONE, FACTS, FILES}),
    (Role.INTAKE_CLERK, R.INTAKE, {NAME, PHONE, FACTS, FILES}),
    (Role.DEPARTMENT_HEAD, R.INTAKE, {NAME, PHONE, FACTS, FILES}),
    (Role.SUPERVISOR, R.SUPERVISOR, {NAME, PHONE, CHAT, FACTS, FILES}),
    (Role.ADMIN, R.SUPERVISOR, {NAME, PHONE, CHAT, FACTS, FILES}),
    # Unrelated staff see nothing of the case.
    (Role.HANDLER, R.UNRELATED, set()),
    (Role.DEPARTMENT_HEAD, R.UNRELATED, set()),
    (Role.INTAKE_CLERK, R.UNRELATED, set()),
    (Role.SUPERVISOR, R.UNRELATED, set()),
    # A relation the role cannot stand in fails closed.
    (Role.HANDLER, R.SUPERVISOR, set()),
    (Role.HANDLER, R.INTAKE, set()),
    (Role.INTAKE_CLERK, R.HANDLER, set()),
    (Role.SUPERVISOR, R.HANDLER, set()),
    (Role.COMPLAINANT, R.HANDLER, set()),
    (Role.SYSTEM, R.SUPERVISOR, set()),
]


@pytest.mark.parametrize(("role", "relation", "visible"), TABLE)
@pytest.mark.parametrize("field", list(Field))
def test_policy_table(role: Role, relation: Relation, visible: set[Field], field: Field) -> None:
    assert can_see(field, role, relation) is (field in visible)


def test_the_table_covers_every_relation() -> None:
    assert {relation for _, relation, _ in TABLE} == set(Relation)


def test_unknown_field_is_an_error() -> None:
    with pytest.raises(ValueError):
        can_see("complainant_address", Role.ADMIN, Relation.SUPERVISOR)


VIEW = {
    "number": "202611-0001",
    "complainant_name": "张三",
    "complainant_phone": "+8613812345678",
    "chat_identity": "tg:42",
    "facts": "窗口工作人员态度恶劣。",
    "attachments": [3, 4],
}


def test_mask_for_the_targeted_department() -> None:
    masked = mask_complaint(VIEW, Role.DEPARTMENT_HEAD, Relation.TARGET_DEPARTMENT)
    assert masked == {
        **VIEW,
        "complainant_name": MASK,
        "complainant_phone": MASK,
        "chat_identity": MASK,
    }
    assert VIEW["complainant_name"] == "张三"  # the input is not changed


def test_mask_for_an_unrelated_handler_hides_the_case_too() -> None:
    masked = mask_complaint(VIEW, Role.HANDLER, Relation.UNRELATED)
    assert masked["number"] == "202611-0001"
    assert {k for k, v in masked.items() if v == MASK} == {
        "complainant_name",
        "complainant_phone",
        "chat_identity",
        "facts",
        "attachments",
    }


def test_mask_leaves_missing_values_alone() -> None:
    anonymous = {**VIEW, "complainant_name": None, "complainant_phone": ""}
    masked = mask_complaint(anonymous, Role.HANDLER, Relation.TARGET_PERSON)
    assert masked["complainant_name"] is None and masked["complainant_phone"] == ""
    assert unmasked_identity(anonymous, Role.SUPERVISOR, Relation.SUPERVISOR) == ["chat_identity"]


def test_unmasked_identity_lists_what_an_audit_event_records() -> None:
    assert unmasked_identity(VIEW, Role.HANDLER, Relation.HANDLER) == [
        "complainant_name",
        "complainant_phone",
    ]
    assert unmasked_identity(VIEW, Role.HANDLER, Relation.TARGET_DEPARTMENT) == []


def _relation(**overrides: object) -> Relation:
    base: dict[str, object] = {
        "role": Role.HANDLER,
        "staff_id": 7,
        "department_id": 2,
        "target_staff_id": None,
        "target_department_id": None,
        "handler_id": None,
        "lead_department_id": None,
        "co_department_ids": frozenset(),
    }
    base.update(overrides)
    return relation_of(**base)  # type: ignore[arg-type]


def test_relation_lookup() -> None:
    assert _relation(target_staff_id=7, handler_id=7) == Relation.TARGET_PERSON
    # Handling the case does not lift the mask for the targeted department.
    assert _relation(target_department_id=2, lead_department_id=2) == Relation.TARGET_DEPARTMENT
    assert _relation(role=Role.SUPERVISOR, department_id=None) == Relation.SUPERVISOR
    assert _relation(role=Role.SUPERVISOR, target_staff_id=7) == Relation.TARGET_PERSON
    assert _relation(handler_id=7) == Relation.HANDLER
    assert _relation(lead_department_id=2) == Relation.HANDLER
    assert _relation(co_department_ids=frozenset({2})) == Relation.HANDLER
    assert _relation(role=Role.INTAKE_CLERK) == Relation.INTAKE
    assert _relation(role=Role.DEPARTMENT_HEAD) == Relation.INTAKE  # nobody holds it yet
    assert _relation(role=Role.DEPARTMENT_HEAD, lead_department_id=5) == Relation.UNRELATED
    assert _relation(lead_department_id=5) == Relation.UNRELATED
