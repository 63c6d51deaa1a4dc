"""The console's management pages: staff (admins invite, suspend and resume members),
partners (register, suspend, resume) and lock settings (vehicle label, partner, care plan).

Each action runs the operator API's service function as the signed-in member (audited as
``console:<operator>:staff<pk>``); refusals are the API's problem documents
(:mod:`kagiya.server.web.routes_console`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response
from kagiya.server.deps import PartnerIdP
from kagiya.server.models import ACTIVE, SUSPENDED
from kagiya.server.problems import ApiError, not_found
from kagiya.server.schemas import LockPatch, PartnerIn
from kagiya.server.services import locks, partners
from kagiya.server.services.context import Ctx
from kagiya.server.web import ceremony, console_staff
from kagiya.server.web.access import ROLES, Member
from kagiya.server.web.routes_console import (
    Field,
    _act,
    _back,
    _body,
    _guarded,
    _read,
    _show,
)
from kagiya.server.web.staff_store import Staff, StaffSession
from sqlalchemy import delete

router = APIRouter(include_in_schema=False)
Action = Annotated[str, Path(pattern="^(suspend|resume)$")]


def _origin(request: Request) -> str:
    rp = ceremony.relying_party(request)
    return rp.origin if rp is not None else f"{request.url.scheme}://{request.url.netloc}"


@router.get("/console/staff")
def staff_page(request: Request) -> Response:
    """The operator's staff and the form to invite one (admins only)."""
    def view(m: Member) -> Response:
        rows = _read(request, lambda s, now: console_staff.members(s, m.operator.id))
        parts = _read(request, lambda s, now: _partners(s, m))
        return _show(request, m, "console_staff.html", rows=rows, partners=parts,
                     role_names=ROLES, invited=None)
    return _guarded(request, "staff.manage", view)


def _partners(s: Any, m: Member) -> list[Any]:
    from kagiya.server.web import console_views

    return console_views.partners(s, m)


@router.post("/console/staff")
def invite(request: Request, name: Field = "", role: Field = "",
           partner_id: Field = "") -> Response:
    """Invite a member: the one-time link is shown once, on this page."""
    def view(m: Member) -> Response:
        body = _body(console_staff.StaffIn, name=name, role=role,
                     partner_id=partner_id or None)
        out = _act(request, m, lambda c: console_staff.invite(c, body, _origin(request)))
        rows = _read(request, lambda s, now: console_staff.members(s, m.operator.id))
        parts = _read(request, lambda s, now: _partners(s, m))
        return _show(request, m, "console_staff.html", rows=rows, partners=parts,
                     role_names=ROLES, invited=out, status=201)
    return _guarded(request, "staff.manage", view, write=True)


def _set_staff_status(c: Ctx, m: Member, staff_pk: int, status: str) -> None:
    """Suspend (its sessions end at once) or resume one of the operator's members; an
    admin cannot suspend themself (409 ``staff-self``)."""
    member = c.s.get(Staff, staff_pk, with_for_update=True)
    if member is None or member.operator_id != c.operator_id:
        raise not_found("staff member")
    if member.pk == m.pk:
        raise ApiError(409, "staff-self", "you cannot suspend yourself")
    member.status = status
    if status == SUSPENDED:
        c.s.execute(delete(StaffSession).where(StaffSession.staff_pk == member.pk))
    c.audit(f"console.staff-{'suspend' if status == SUSPENDED else 'resume'}",
            f"staff{member.pk}")


@router.post("/console/staff/{staff_pk}/{action}")
def staff_status(request: Request, staff_pk: Annotated[int, Path(ge=1, le=2**31 - 1)],
                 action: Action) -> Response:
    """Suspend or resume a member."""
    status = SUSPENDED if action == "suspend" else ACTIVE

    def view(m: Member) -> Response:
        _act(request, m, lambda c: _set_staff_status(c, m, staff_pk, status))
        return _back("/console/staff")
    return _guarded(request, "staff.manage", view, write=True)


@router.post("/console/partners")
def create_partner(request: Request, name: Field = "") -> Response:
    """Register a partner business."""
    def view(m: Member) -> Response:
        body = _body(PartnerIn, name=name)
        _act(request, m, lambda c: partners.create(c, body))
        return _back("/console/partners")
    return _guarded(request, "partners.write", view, write=True)


@router.post("/console/partners/{partner_id}/{action}")
def partner_status(request: Request, partner_id: PartnerIdP, action: Action) -> Response:
    """Suspend (the keys of its locks are revoked) or resume a partner."""
    status = SUSPENDED if action == "suspend" else ACTIVE

    def view(m: Member) -> Response:
        _act(request, m, lambda c: partners.set_status(c, partner_id, status))
        return _back("/console/partners")
    return _guarded(request, "partners.write", view, write=True)


@router.post("/console/locks")
def change_lock(request: Request, lock: Annotated[str, Form(max_length=20)] = "",
                vehicle_label: Field = "", partner_id: Field = "",
                care_plan: Field = "") -> Response:
    """Change a lock's vehicle label, partner (``-``: none) and care plan (``-``: none)."""
    def view(m: Member) -> Response:
        fields: dict[str, Any] = {}
        if vehicle_label:
            fields["vehicle_label"] = vehicle_label
        if partner_id:
            fields["partner_id"] = None if partner_id == "-" else partner_id
        if care_plan:
            fields["care_plan"] = None if care_plan == "-" else care_plan
        body = _body(LockPatch, **fields)
        _act(request, m, lambda c: locks.update(c, lock, body))
        return _back("/console/locks")
    return _guarded(request, "locks.write", view, write=True)
