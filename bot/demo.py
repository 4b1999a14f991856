"""A small demo organisation for `complaintdesk demo`, fitting the chosen profile.

Departments are created in an empty database only; the demo staff (one per role) are created
when missing, and each start gives them fresh desk passwords, printed with the desk's address,
so a newcomer files in the web chat and handles the same case at /desk. Keep every step
idempotent: the demo database is reused between runs.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from models.desk_auth import set_password
from models.entities import Department, Staff
from models.workflow import Role

Org = tuple[tuple[str, str, str | None], ...]

# (code, name, parent code): a government service centre, its windows and its supervisor.
DEMO_DEPARTMENTS: Org = (
    ("centre", "市政务服务中心", None),
    ("intake", "投诉受理室", "centre"),
    ("general", "综合受理窗口", "centre"),
    ("property_registration", "不动产登记窗口", "centre"),
    ("social_security", "社保医保窗口", "centre"),
    ("market_regulation", "市场监管窗口", "centre"),
    ("supervision", "督查科", "centre"),
)
# A property service centre (物业服务中心) on 24-hour duty, by the kinds of work it does.
PROPERTY_DEPARTMENTS: Org = (
    ("centre", "幸福里小区物业服务中心", None),
    ("service_desk", "客服前台", "centre"),
    ("engineering", "工程维修部", "centre"),
    ("security", "秩序维护部", "centre"),
    ("environment", "环境保洁部", "centre"),
    ("manager", "项目经理室", "centre"),
)
TAX_DEPARTMENTS: Org = (
    ("bureau", "市税务局", None),
    ("service_hall", "办税服务厅", "bureau"),
    ("branch_1", "第一税务分局", "bureau"),
    ("policy", "政策法规科", "bureau"),
    ("discipline", "督察内审科", "bureau"),
)
ORGANISATIONS: dict[str, Org] = {
    "gov-window": DEMO_DEPARTMENTS,
    "property": PROPERTY_DEPARTMENTS,
    "tax-service": TAX_DEPARTMENTS,
}
# Who staffs the demo: (login, name, role, department code or None: the root), per profile.
DEMO_STAFF: dict[str, tuple[tuple[str, str, Role, str | None], ...]] = {
    "gov-window": (
        ("admin", "系统管理员", Role.ADMIN, None),
        ("supervisor", "督查科周科长", Role.SUPERVISOR, "supervision"),
        ("intake", "受理员陈静", Role.INTAKE_CLERK, "intake"),
        ("head", "综合窗口李主任", Role.DEPARTMENT_HEAD, "general"),
        ("handler", "综合窗口王科员", Role.HANDLER, "general"),
    ),
    "property": (
        ("admin", "系统管理员", Role.ADMIN, None),
        ("supervisor", "项目经理赵经理", Role.SUPERVISOR, "manager"),
        ("intake", "客服前台小陈", Role.INTAKE_CLERK, "service_desk"),
        ("head", "工程部刘主管", Role.DEPARTMENT_HEAD, "engineering"),
        ("handler", "维修工王师傅", Role.HANDLER, "engineering"),
    ),
    "tax-service": (
        ("admin", "系统管理员", Role.ADMIN, None),
        ("supervisor", "督察内审科孙科长", Role.SUPERVISOR, "discipline"),
        ("intake", "办税服务厅陈静", Role.INTAKE_CLERK, "service_hall"),
        ("head", "第一分局李局长", Role.DEPARTMENT_HEAD, "branch_1"),
        ("handler", "第一分局王科员", Role.HANDLER, "branch_1"),
    ),
}


# Any other profile (school, utility, petition, ...): a neutral unit named after the profile,
# with the same department codes, so the same five sign-ins staff it.
GENERIC_STAFF: tuple[tuple[str, str, Role, str | None], ...] = (
    ("admin", "系统管理员", Role.ADMIN, None),
    ("supervisor", "监督室周主任", Role.SUPERVISOR, "supervision"),
    ("intake", "受理员陈静", Role.INTAKE_CLERK, "intake"),
    ("head", "业务部门李主任", Role.DEPARTMENT_HEAD, "general"),
    ("handler", "业务部门王干事", Role.HANDLER, "general"),
)


def generic_organisation(profile_id: str) -> Org:
    from config.profiles import load_profile

    name = load_profile(profile_id).name.get("zh_CN") or profile_id
    return (
        ("centre", f"演示单位（{name}）", None),
        ("intake", "投诉受理室", "centre"),
        ("general", "业务部门", "centre"),
        ("supervision", "监督室", "centre"),
    )


def organisation_for(profile_id: str) -> Org:
    return ORGANISATIONS.get(profile_id) or generic_organisation(profile_id)


async def ensure_demo_organisation(profile_id: str = "gov-window") -> bool:
    """Create the profile's demo departments when there are none; True when created."""
    async with in_transaction() as conn:
        if await Department.all().using_db(conn).exists():
            return False
        created: dict[str, Department] = {}
        for code, name, parent in organisation_for(profile_id):
            created[code] = await Department.create(
                code=code,
                name=name,
                parent=created[parent] if parent else None,
                using_db=conn,
            )
    return True


@dataclass(frozen=True)
class DemoSignIn:
    role: Role
    name: str
    login: str
    password: str


async def ensure_demo_staff(profile_id: str, now: datetime) -> list[DemoSignIn]:
    """One staff member per role (created when missing), each with a fresh desk password."""
    people = DEMO_STAFF.get(profile_id, GENERIC_STAFF)
    roots = await Department.filter(parent_id=None).order_by("id")
    signins = []
    for login, name, role, code in people:
        department = await Department.filter(code=code).first() if code else None
        department = department or (roots[0] if roots else None)
        staff = await Staff.filter(name=name).first()
        if staff is None:
            staff = await Staff.create(name=name, role=role, department=department)
        password = f"demo-{secrets.token_urlsafe(9)}"
        problem = await set_password(staff, login, password, now=now)
        if problem is None:
            signins.append(DemoSignIn(role, name, login, password))
    return signins
