"""Repeat links and mass-matter groups on the desk.

- POST /desk/cases/<id>/repeat: link the case as a repeat of an earlier one, or unlink it
  (workflow actions link_repeat / unlink_repeat through bot.staff_desk.carry_out, as every
  case action: the rule book decides who may).
- /desk/groups: the proposed and confirmed groups, for supervisors and admins;
  /desk/groups/<id>: one group with its members, and the forms that confirm or dismiss it,
  take a member out, and decide it (models.actions.confirm_group, dismiss_group,
  remove_from_group, decide_group; who may: models.workflow.may_manage_matters).

No rule lives here.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web
from tortoise.transactions import in_transaction

from bot.staff_desk import carry_out
from handlers.i18n import N_
from handlers.staff import StaffAct, render_refused, state_label
from handlers.validators import small_int
from models.actions import (
    ActionRefused,
    Actor,
    confirm_group,
    decide_group,
    dismiss_group,
    remove_from_group,
)
from models.entities import Complaint, Staff
from models.matters import LIVE_GROUP_STATUSES, MatterGroup, group_view
from models.notifications import build_card
from models.workflow import Action, Role, may_manage_matters
from web.desk.core import PREFIX, Me, desk_of, error_page, render, signed_in

GROUP_STATUS = {
    "proposed": N_("proposed, to confirm"),
    "confirmed": N_("confirmed"),
    "dismissed": N_("dismissed"),
}
GROUP_PROBLEMS = {
    "not_proposed": N_("Only a proposed group is confirmed."),
    "not_confirmed": N_("Only a confirmed group is decided."),
    "closed": N_("The group is dismissed or decided already."),
    "no_member": N_("That complaint is not in the group."),
    "text": N_("Please write the decision."),
}


def _may(staff: Staff) -> bool:
    return may_manage_matters(Role(staff.role))


def _viewer(me: Me) -> Staff:
    viewer = copy.copy(me.staff)
    viewer.language = me.lang
    return viewer


@signed_in()
async def repeat_act(request: web.Request, me: Me) -> web.StreamResponse:
    raw = small_int(request.match_info["case_id"])
    complaint = await Complaint.filter(id=raw).first() if raw is not None else None
    if complaint is None:
        return error_page(request, 404, N_("There is no such case."), me=me)
    desk = desk_of(request)
    form = await request.post()
    action = str(form.get("action", ""))
    if action not in (Action.LINK_REPEAT, Action.UNLINK_REPEAT):
        return error_page(request, 400, N_("The form is not one the desk offers."), me=me)
    payload: dict[str, Any] = {}
    if action == Action.LINK_REPEAT:
        payload["repeat_of"] = str(form.get("repeat_of", "")).strip()[:20]
    async with in_transaction() as conn:
        outcome = await carry_out(
            StaffAct(complaint.id, action, payload, None),
            me.staff,
            desk.profile,
            desk.clock(),
            conn,
            "web",
        )
    if not outcome.done:
        await complaint.refresh_from_db()
        text = render_refused(
            outcome.refusal or "invalid",
            complaint.number,
            complaint.state,
            me.lang,
            detail=outcome.detail,
        ).text
        return error_page(request, 409, text, me=me)
    raise web.HTTPSeeOther(f"{PREFIX}/cases/{complaint.id}?done={action}")


async def _member_rows(group: MatterGroup, me: Me, request: web.Request) -> list[dict[str, Any]]:
    desk = desk_of(request)
    view = await group_view(group)
    rows = []
    for complaint in await Complaint.filter(id__in=[m[0] for m in view.members]).order_by("id"):
        card, _shown = await build_card(complaint, _viewer(me), desk.profile, None)
        rows.append(
            {
                "id": complaint.id,
                "number": complaint.number,
                "state": state_label(complaint.state, me.lang),
                "submitted_at": complaint.submitted_at,
                "target": card.target,
                "place": card.place,
                "facts": card.facts,
                "written": complaint.written,
            }
        )
    return rows


async def _group_page(
    request: web.Request,
    me: Me,
    group: MatterGroup,
    *,
    message: str | None = None,
    problem: str | None = None,
    outcome: Any = None,
    status: int = 200,
) -> web.Response:
    context = {
        "group": group,
        "group_status": me.gettext(GROUP_STATUS.get(str(group.status), str(group.status))),
        "members": await _member_rows(group, me, request),
        "may_manage": _may(me.staff),
        "message": message,
        "problem": problem,
        "outcome": outcome,
        "state_label": lambda state: state_label(state, me.lang),
    }
    return render(request, me, "group.html", context, status=status)


@signed_in(_may)
async def group_list(request: web.Request, me: Me) -> web.StreamResponse:
    groups = await MatterGroup.filter(status__in=LIVE_GROUP_STATUSES).order_by("-id").limit(200)
    rows = []
    for group in groups:
        view = await group_view(group)
        rows.append(
            {
                "id": group.id,
                "status": me.gettext(GROUP_STATUS.get(str(group.status), str(group.status))),
                "proposed": str(group.status) == "proposed",
                "numbers": [number for _i, number, _s in view.members],
                "proposed_at": group.proposed_at,
                "decided_at": group.decided_at,
            }
        )
    return render(request, me, "groups.html", {"groups": rows})


async def _group(request: web.Request) -> MatterGroup | None:
    raw = small_int(request.match_info["group_id"])
    return await MatterGroup.filter(id=raw).first() if raw is not None else None


@signed_in()
async def group_page(request: web.Request, me: Me) -> web.StreamResponse:
    """A group is shown to every signed-in staff member who follows a link to it from a case;
    members' details are masked per case as on the case page."""
    group = await _group(request)
    if group is None:
        return error_page(request, 404, N_("There is no such group."), me=me)
    return await _group_page(request, me, group)


@signed_in(_may)
async def group_act(request: web.Request, me: Me) -> web.StreamResponse:
    group = await _group(request)
    if group is None:
        return error_page(request, 404, N_("There is no such group."), me=me)
    desk = desk_of(request)
    form = await request.post()
    action = str(form.get("action", ""))
    actor = Actor(Role(me.staff.role), me.staff)
    clock = desk.clock()
    outcome = None
    try:
        if action == "confirm":
            if str(group.status) != "proposed":
                raise ValueError("not_proposed")
            await confirm_group(group.id, actor, clock=clock)
        elif action == "dismiss":
            if str(group.status) == "dismissed" or group.decided_at is not None:
                raise ValueError("closed")
            await dismiss_group(group.id, actor, clock=clock)
        elif action == "remove":
            member = small_int(str(form.get("complaint_id", "")))
            if member is None:
                raise ValueError("no_member")
            await remove_from_group(group.id, member, actor, clock=clock)
        elif action == "decide":
            text = str(form.get("decision_text", "")).strip()[:2000]
            if not text:
                raise ValueError("text")
            if str(group.status) != "confirmed":
                raise ValueError("not_confirmed")
            outcome = await decide_group(group.id, actor, text, profile=desk.profile, clock=clock)
        else:
            return error_page(request, 400, N_("The form is not one the desk offers."), me=me)
    except ActionRefused:
        return error_page(request, 403, N_("Your role does not open this page."), me=me)
    except ValueError as invalid:
        code = str(invalid.args[0]) if invalid.args else ""
        problem = me.gettext(GROUP_PROBLEMS.get(code, GROUP_PROBLEMS["no_member"]))
        await group.refresh_from_db()
        return await _group_page(request, me, group, problem=problem, status=409)
    await group.refresh_from_db()
    if outcome is None:
        raise web.HTTPSeeOther(f"{PREFIX}/groups/{group.id}")
    message = me.gettext("Decided: {n} complaints resolved, each complainant told.").format(
        n=len(outcome.resolved)
    )
    return await _group_page(request, me, group, message=message, outcome=outcome)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(PREFIX + "/cases/{case_id}/repeat", repeat_act)
    router.add_get(PREFIX + "/groups", group_list)
    router.add_get(PREFIX + "/groups/{group_id}", group_page)
    router.add_post(PREFIX + "/groups/{group_id}/act", group_act)
