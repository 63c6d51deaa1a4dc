"""Console staff: inviting a member (operator API and the console's admin page share this),
listing them, and turning a session cookie into a :class:`~kagiya.server.web.access.Member`.

The operator's first admin is invited with its operator token
(``POST /v1/console/staff``); from then on admins invite the others in the console.
"""

from __future__ import annotations

from typing import Literal

from kagiya.server.models import ACTIVE, Operator
from kagiya.server.principal import OperatorRef
from kagiya.server.problems import ApiError
from kagiya.server.runtime import check_operator_usable
from kagiya.server.schemas import In, Label, ObjId
from kagiya.server.services.context import Ctx
from kagiya.server.services.lookup import get_partner
from kagiya.server.web import access, store
from kagiya.server.web.staff_store import Staff, StaffInvitation, StaffSession
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

Role = Literal["admin", "staff", "partner"]


class StaffIn(In):
    """A staff member to invite: a display name, a role, and for ``partner`` the partner."""

    name: Label
    role: Role
    partner_id: ObjId | None = None


class StaffInvitationOut(BaseModel):
    """The invited member and their one-time link (shown once, valid 7 days)."""

    staff_id: int
    name: str
    role: Role
    partner_id: str | None
    url: str
    expires_at: int


def invite(c: Ctx, body: StaffIn, base_url: str) -> StaffInvitationOut:
    """Create a staff member and their invitation. A ``partner`` member needs a partner of
    the operator (404 otherwise); the other roles take none (422 ``invalid-role``)."""
    if (body.role == access.PARTNER) != (body.partner_id is not None):
        raise ApiError(422, "invalid-role",
                       "a partner's staff needs partner_id; admin and staff take none")
    if body.partner_id is not None:
        get_partner(c, body.partner_id)
    member = Staff(operator_id=c.operator_id, name=body.name, role=body.role,
                   partner_id=body.partner_id, status=ACTIVE, created_at=c.now)
    c.s.add(member)
    c.s.flush()
    token = store.issue(c.s, StaffInvitation, c.now, store.INVITATION_TTL_S, 24,
                        staff_pk=member.pk)
    c.audit("console.staff-invite", f"staff{member.pk}", role=body.role,
            partner_id=body.partner_id)
    return StaffInvitationOut(staff_id=member.pk, name=member.name, role=body.role,
                              partner_id=member.partner_id,
                              url=f"{base_url}/console/welcome?invite={token}",
                              expires_at=c.now + store.INVITATION_TTL_S)


def members(s: Session, operator_id: str) -> list[Staff]:
    """The operator's staff, in the order they were invited."""
    return list(s.scalars(select(Staff).where(Staff.operator_id == operator_id)
                          .order_by(Staff.pk)))


def member_of(s: Session, staff_pk: int, now: int) -> access.Member | None:
    """The active member ``staff_pk`` of a usable operator, or None."""
    row = s.execute(select(Staff, Operator).join(Operator, Operator.id == Staff.operator_id)
                    .where(Staff.pk == staff_pk)).first()
    if row is None or row[0].status != ACTIVE:
        return None
    staff, op = row
    ref = OperatorRef(op.id, op.status, op.contract_start, op.contract_end)
    try:
        check_operator_usable(ref, now)
    except ApiError:
        return None
    return access.Member(staff.pk, ref, staff.name, staff.role, staff.partner_id)


def session_member(s: Session, token: str | None, now: int) -> access.Member | None:
    """The member of a live console session cookie, or None."""
    row = store.live(s, StaffSession, token, now)
    return member_of(s, row.staff_pk, now) if row is not None else None


def invited(s: Session, token: str, now: int) -> Staff | None:
    """The staff member an unexpired invitation is for."""
    row = store.live(s, StaffInvitation, token, now)
    return s.get(Staff, row.staff_pk) if row is not None else None
