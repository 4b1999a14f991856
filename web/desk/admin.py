"""Running the organisation: staff (invite, roles, disable), the department tree with its
escalation chain, the policy profile (read-only) and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.cli_staff import desk_invite_link
from handlers.i18n import N_, pick_label
from handlers.staff import action_label, stage_label, unit_label
from handlers.validators import small_int
from models.entities import Complaint, Department, DeskExport, Event, Staff
from models.notifications import VIEWED_IDENTITY
from models.staffing import (
    STAFF_ROLES,
    change_role,
    create_invite,
    department_head,
    disable_staff,
    escalation_chain,
    list_staff,
    may_manage_staff,
    may_read_audit,
)
from web.desk.core import PREFIX, ROLE_NAMES, Me, desk_of, render, signed_in

AUDIT_PAGE = 100
IDENTITY_FIELDS = {
    "complainant_name": N_("name"),
    "complainant_phone": N_("phone"),
    "chat_identity": N_("chat identity"),
}


def _roles(me: Me) -> list[tuple[str, str]]:
    return [(str(r), me.gettext(ROLE_NAMES[str(r)])) for r in STAFF_ROLES]


async def _staff_page(
    request: web.Request, me: Me, *, invite: dict[str, Any] | None = None,
    problem: str | None = None, status: int = 200,
) -> web.Response:  # fmt: skip
    context = {
        "people": await list_staff(),
        "roles": _roles(me),
        "departments": await Department.all().order_by("name"),
        "invite": invite,
        "problem": problem,
    }
    return render(request, me, "staff.html", context, status=status)


@signed_in(may_manage_staff)
async def staff_list(request: web.Request, me: Me) -> web.StreamResponse:
    return await _staff_page(request, me)


def _optional_id(value: Any) -> int | None:
    return small_int(value) if isinstance(value, str) else None


@signed_in(may_manage_staff)
async def staff_post(request: web.Request, me: Me) -> web.StreamResponse:
    """invite (new or again), role, disable: each a form on the staff page."""
    form = await request.post()
    what = form.get("what")
    staff_id = _optional_id(form.get("staff_id"))
    desk = desk_of(request)
    try:
        if what == "invite":
            department_id = _optional_id(form.get("department_id"))
            department = (
                await Department.filter(id=department_id).first() if department_id else None
            )
            name = str(form.get("name") or "").strip()[:200]
            invite = await create_invite(
                now=desk.now(),
                name=name or None,
                role=str(form.get("role") or "") or None,
                department_code=department.code if department else None,
                staff_id=staff_id,
                language=me.lang,
            )
            shown = {
                "name": invite.staff.name,
                "code": invite.code,
                "link": desk_invite_link(desk.settings, invite.code),
                "expires": invite.expires_at,
            }
            return await _staff_page(request, me, invite=shown)
        if what == "role" and staff_id is not None:
            await change_role(
                staff_id, str(form.get("role") or ""), _optional_id(form.get("department_id"))
            )
        elif what == "disable" and staff_id is not None:
            if staff_id == me.staff.id:
                raise ValueError("you cannot disable your own account")
            await disable_staff(staff_id)
        else:
            raise ValueError("unknown request")
    except (LookupError, ValueError) as error:
        return await _staff_page(request, me, problem=str(error), status=400)
    raise web.HTTPSeeOther(f"{PREFIX}/staff")


@dataclass(frozen=True)
class DepartmentRow:
    department: Department
    depth: int
    chain: list[str]
    head: str | None
    members: int


@signed_in()
async def departments(request: web.Request, me: Me) -> web.StreamResponse:
    """The department tree, each with the chain a missed deadline climbs."""
    everything = await Department.all().order_by("name")
    children: dict[int | None, list[Department]] = {}
    for d in everything:
        children.setdefault(d.parent_id, []).append(d)  # type: ignore[attr-defined]
    rows: list[DepartmentRow] = []

    async def walk(parent: int | None, depth: int, seen: set[int]) -> None:
        for d in children.get(parent, []):
            if d.id in seen:
                continue
            chain = [c.name for c in await escalation_chain(d.id)]
            head = await department_head(d.id)
            members = await Staff.filter(department_id=d.id, active=True).count()
            rows.append(DepartmentRow(d, depth, chain, head.name if head else None, members))
            await walk(d.id, depth + 1, seen | {d.id})

    await walk(None, 0, set())
    return render(request, me, "departments.html", {"rows": rows})


@signed_in()
async def profile_page(request: web.Request, me: Me) -> web.StreamResponse:
    """The policy profile in force, read-only: what the desk and the scheduler follow."""
    profile = desk_of(request).profile
    stages = []
    for stage, rules in profile.deadlines.model_dump().items():
        if rules:
            stages.append(
                (
                    stage_label(stage, me.lang),
                    [
                        (
                            rule["amount"],
                            unit_label(rule["unit"], me.lang),
                            ", ".join(
                                f"{k}={rule[k]}"
                                for k in ("category", "complexity", "severity")
                                if rule.get(k)
                            ),
                        )
                        for rule in rules
                    ],
                )
            )
    context = {
        "p": profile,
        "label": lambda labels: pick_label(labels, me.lang),
        "stages": stages,
        "unit_label": lambda u: unit_label(str(u), me.lang),
    }
    return render(request, me, "profile.html", context)


@dataclass(frozen=True)
class AuditRow:
    id: int
    when: datetime
    who: str
    role: str
    number: str
    complaint_id: int
    what: str
    detail: str


@signed_in(may_read_audit)
async def audit(request: web.Request, me: Me) -> web.StreamResponse:
    """Who saw whose identity, who did what: the case events, newest first, by id pages."""
    kind = request.query.get("kind", "identity")
    if kind == "exports":
        return await _exports(request, me)
    query = Event.all()
    if kind == "identity":
        query = query.filter(action=VIEWED_IDENTITY)
    elif kind == "actions":
        query = query.exclude(action=VIEWED_IDENTITY)
    else:
        kind = "all"
    staff_id = _optional_id(request.query.get("staff"))
    if staff_id is not None:
        query = query.filter(actor_staff_id=staff_id)
    before = _optional_id(request.query.get("before"))
    if before is not None:
        query = query.filter(id__lt=before)
    events = await query.order_by("-id").limit(AUDIT_PAGE + 1).prefetch_related("actor_staff")
    more = len(events) > AUDIT_PAGE
    events = events[:AUDIT_PAGE]
    numbers = dict(
        await Complaint.filter(id__in={e.complaint_id for e in events}).values_list("id", "number")  # type: ignore[attr-defined]
    )
    rows = []
    for e in events:
        payload = e.payload or {}
        if e.action == VIEWED_IDENTITY:
            fields = ", ".join(
                me.gettext(IDENTITY_FIELDS.get(f, f)) for f in payload.get("fields", [])
            )
            what = me.gettext("saw the complainant's {fields}").format(fields=fields)
            detail = str(payload.get("via", ""))
        else:
            what = action_label(e.action, me.lang)
            detail = f"{e.from_state or ''} → {e.to_state or ''}"
        rows.append(
            AuditRow(
                e.id,
                e.created_at,
                e.actor_staff.name if e.actor_staff else "—",
                me.gettext(ROLE_NAMES.get(str(e.actor_role), str(e.actor_role))),
                str(numbers.get(e.complaint_id, "")),  # type: ignore[attr-defined]
                e.complaint_id,  # type: ignore[attr-defined]
                what,
                detail,
            )
        )
    context = {
        "rows": rows,
        "kind": kind,
        "staff_options": [(s.id, s.name) for s in await Staff.all().order_by("name")],
        "staff_id": staff_id,
        "older": rows[-1].id if more and rows else None,
        "exports": None,
    }
    return render(request, me, "audit.html", context)


@dataclass(frozen=True)
class ExportRow:
    id: int
    when: datetime
    who: str
    kind: str
    filters: str
    rows: int
    identity_rows: int
    finished: bool


async def _exports(request: web.Request, me: Me) -> web.StreamResponse:
    """Who downloaded which list (CSV / XLSX) or report, with how many rows, newest first."""
    query = DeskExport.all()
    staff_id = _optional_id(request.query.get("staff"))
    if staff_id is not None:
        query = query.filter(staff_id=staff_id)
    before = _optional_id(request.query.get("before"))
    if before is not None:
        query = query.filter(id__lt=before)
    found = await query.order_by("-id").limit(AUDIT_PAGE + 1).prefetch_related("staff")
    more = len(found) > AUDIT_PAGE
    rows = [
        ExportRow(
            e.id,
            e.created_at,
            e.staff.name if e.staff else "—",
            e.kind.upper(),
            " ".join(f"{k}={v}" for k, v in (e.filters or {}).items() if v not in ("", False)),
            e.rows,
            e.identity_rows,
            e.finished,
        )
        for e in found[:AUDIT_PAGE]
    ]
    context = {
        "rows": [],
        "exports": rows,
        "kind": "exports",
        "staff_options": [(s.id, s.name) for s in await Staff.all().order_by("name")],
        "staff_id": staff_id,
        "older": rows[-1].id if more and rows else None,
    }
    return render(request, me, "audit.html", context)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PREFIX + "/staff", staff_list)
    router.add_post(PREFIX + "/staff", staff_post)
    router.add_get(PREFIX + "/departments", departments)
    router.add_get(PREFIX + "/profile", profile_page)
    router.add_get(PREFIX + "/audit", audit)
