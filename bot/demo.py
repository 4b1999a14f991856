"""A small demo organisation for `complaintdesk demo`, created in an empty database only.

Other areas may add their demo data here (e.g. staff accounts for the console); keep every
step idempotent: the demo database is reused between runs.
"""

from __future__ import annotations

from tortoise.transactions import in_transaction

from models.entities import Department

# (code, name, parent code): a government service centre, its windows and its supervisor.
DEMO_DEPARTMENTS: tuple[tuple[str, str, str | None], ...] = (
    ("centre", "市政务服务中心", None),
    ("intake", "投诉受理室", "centre"),
    ("general", "综合受理窗口", "centre"),
    ("property_registration", "不动产登记窗口", "centre"),
    ("social_security", "社保医保窗口", "centre"),
    ("market_regulation", "市场监管窗口", "centre"),
    ("supervision", "督查科", "centre"),
)


async def ensure_demo_organisation() -> bool:
    """Create the demo departments when there are none; True when something was created."""
    async with in_transaction() as conn:
        if await Department.all().using_db(conn).exists():
            return False
        created: dict[str, Department] = {}
        for code, name, parent in DEMO_DEPARTMENTS:
            created[code] = await Department.create(
                code=code,
                name=name,
                parent=created[parent] if parent else None,
                using_db=conn,
            )
    return True
