"""Who may see what of a complaint: the one policy function, and masking by it.

A complaint about a person or a department must never show that person or department who
complained: the complainant's name, phone and chat identity are masked ("***") for them in
notifications, lists and exports, even when they are also the ones handling the case. Everyone
else sees what their part in the case needs:

| relation \\ field      | name | phone | chat identity | facts | attachments |
|------------------------|------|-------|---------------|-------|-------------|
| target person          |  -   |  -    |  -            |  yes  |  yes        |
| target department      |  -   |  -    |  -            |  yes  |  yes        |
| lead / co-handler      | yes  | yes   |  -            |  yes  |  yes        |
| intake                 | yes  | yes   |  -            |  yes  |  yes        |
| supervisor / admin     | yes  | yes   | yes           |  yes  |  yes        |
| unrelated              |  -   |  -    |  -            |   -   |   -         |

The chat identity (platform user id) is only for supervisors and admins: staff reach the
complainant through the bot, never by looking them up on the platform. The viewer's role must
also fit the relation (a handler cannot claim the supervisor relation), so a mistake in the
caller's relation lookup fails closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from models.workflow import Role

MASK = "***"


class Field(StrEnum):
    COMPLAINANT_NAME = "complainant_name"
    COMPLAINANT_PHONE = "complainant_phone"
    CHAT_IDENTITY = "chat_identity"
    FACTS = "facts"
    ATTACHMENTS = "attachments"


class Relation(StrEnum):
    """How a viewer stands to one complaint; the first that applies wins (see `relation_of`)."""

    TARGET_PERSON = "target_person"  # the complaint is about this staff member
    TARGET_DEPARTMENT = "target_department"  # ... about the viewer's department
    HANDLER = "handler"  # lead handler, or in the lead / a co-handling department
    INTAKE = "intake"  # the intake desk
    SUPERVISOR = "supervisor"  # supervisors and admins
    UNRELATED = "unrelated"


IDENTITY_FIELDS: frozenset[Field] = frozenset(
    {Field.COMPLAINANT_NAME, Field.COMPLAINANT_PHONE, Field.CHAT_IDENTITY}
)
_CASE_FIELDS = frozenset({Field.FACTS, Field.ATTACHMENTS})

_VISIBLE: Mapping[Relation, frozenset[Field]] = {
    Relation.TARGET_PERSON: _CASE_FIELDS,
    Relation.TARGET_DEPARTMENT: _CASE_FIELDS,
    Relation.HANDLER: _CASE_FIELDS | {Field.COMPLAINANT_NAME, Field.COMPLAINANT_PHONE},
    Relation.INTAKE: _CASE_FIELDS | {Field.COMPLAINANT_NAME, Field.COMPLAINANT_PHONE},
    Relation.SUPERVISOR: frozenset(Field),
    Relation.UNRELATED: frozenset(),
}

# Roles that can stand in each relation; any other pairing sees nothing.
_ROLES_FOR: Mapping[Relation, frozenset[Role]] = {
    Relation.TARGET_PERSON: frozenset(
        {Role.INTAKE_CLERK, Role.HANDLER, Role.DEPARTMENT_HEAD, Role.SUPERVISOR, Role.ADMIN}
    ),
    Relation.TARGET_DEPARTMENT: frozenset(
        {Role.INTAKE_CLERK, Role.HANDLER, Role.DEPARTMENT_HEAD, Role.SUPERVISOR, Role.ADMIN}
    ),
    Relation.HANDLER: frozenset({Role.HANDLER, Role.DEPARTMENT_HEAD}),
    Relation.INTAKE: frozenset({Role.INTAKE_CLERK, Role.DEPARTMENT_HEAD}),
    Relation.SUPERVISOR: frozenset({Role.SUPERVISOR, Role.ADMIN}),
    Relation.UNRELATED: frozenset(Role),
}


def can_see(field: str, viewer_role: Role, relation: Relation) -> bool:
    """Whether a viewer in `viewer_role`, standing in `relation` to a complaint, sees `field`."""
    wanted = Field(field)
    if Role(viewer_role) not in _ROLES_FOR[Relation(relation)]:
        return False
    return wanted in _VISIBLE[Relation(relation)]


def relation_of(
    *,
    role: Role,
    staff_id: int | None,
    department_id: int | None,
    target_staff_id: int | None,
    target_department_id: int | None,
    handler_id: int | None,
    lead_department_id: int | None,
    co_department_ids: frozenset[int] | set[int] = frozenset(),
) -> Relation:
    """The viewer's relation to a complaint, from plain ids (no database here).

    Being the target outranks everything: a targeted department that also handles the case
    still never sees who complained.
    """
    if staff_id is not None and staff_id == target_staff_id:
        return Relation.TARGET_PERSON
    if department_id is not None and department_id == target_department_id:
        return Relation.TARGET_DEPARTMENT
    if role in (Role.SUPERVISOR, Role.ADMIN):
        return Relation.SUPERVISOR
    if staff_id is not None and staff_id == handler_id:
        return Relation.HANDLER
    if department_id is not None and (
        department_id == lead_department_id or department_id in co_department_ids
    ):
        if role in (Role.HANDLER, Role.DEPARTMENT_HEAD):
            return Relation.HANDLER
    if role == Role.INTAKE_CLERK:
        return Relation.INTAKE
    if role == Role.DEPARTMENT_HEAD and lead_department_id is None:
        # No department holds the case yet: heads act as the intake desk (see notifications).
        return Relation.INTAKE
    return Relation.UNRELATED


def mask_complaint(view: dict[str, Any], viewer: Role, relation: Relation) -> dict[str, Any]:
    """A copy of `view` with every policy field the viewer may not see replaced by "***".

    Keys of `view` that are not policy fields pass through unchanged; absent or empty values
    stay as they are (there is nothing to hide in an anonymous complaint's missing name).
    """
    masked = dict(view)
    for field in Field:
        if field in masked and masked[field] not in (None, "", [], ()):
            if not can_see(field, viewer, relation):
                masked[field] = MASK
    return masked


def unmasked_identity(view: Mapping[str, Any], viewer: Role, relation: Relation) -> list[str]:
    """Identity fields with a value that this viewer will see: what an audit event records."""
    return [
        str(field)
        for field in Field
        if field in IDENTITY_FIELDS
        and view.get(field) not in (None, "")
        and can_see(field, viewer, relation)
    ]
