"""Partners (businesses that lend vehicles): registration, suspension cascading to the keys
of their locks, deletion that detaches their locks."""

from __future__ import annotations

from typing import Any

from kagiya.server.issuance import revoke_where
from kagiya.server.models import ACTIVE, SUSPENDED, IssuedKey, Lock, Partner
from kagiya.server.schemas import DeletedOut, PartnerIn, PartnerOut, PartnerPage
from kagiya.server.secrets_store import new_id
from kagiya.server.services.context import Ctx
from kagiya.server.services.lookup import get_partner
from kagiya.server.services.paging import page
from kagiya.server.views import partner_out
from sqlalchemy import select, update


def create(c: Ctx, body: PartnerIn) -> PartnerOut:
    """Register a partner business."""
    pt = Partner(
        id=new_id("pt"), operator_id=c.operator_id, name=body.name, status=ACTIVE, created_at=c.now
    )
    c.s.add(pt)
    c.audit("partner.create", pt.id)
    return partner_out(pt)


def list_page(c: Ctx, after: str | None, limit: int) -> PartnerPage:
    """The operator's partners ordered by ID, after cursor ``after`` (a partner ID)."""
    q = select(Partner).where(Partner.operator_id == c.operator_id)
    if after:
        q = q.where(Partner.id > after)
    rows, more = page(c.s.scalars(q.order_by(Partner.id).limit(limit + 1)).all(), limit,
                      lambda pt: pt.id)
    return PartnerPage(items=[partner_out(x) for x in rows], next_cursor=more)


def read(c: Ctx, partner_id: str) -> PartnerOut:
    """One partner (404 if it is not the caller's)."""
    return partner_out(get_partner(c, partner_id))


def partner_keys(pt: Partner) -> Any:
    """SQL condition: the issued keys for ``pt``'s locks."""
    return IssuedKey.lock_pk.in_(select(Lock.pk).where(Lock.partner_id == pt.id))


def set_status(c: Ctx, partner_id: str, status: str) -> PartnerOut:
    """Suspend (the keys for its locks are revoked; no new ones are issued) or resume."""
    pt = get_partner(c, partner_id, lock=True)
    pt.status = status
    revoked = 0
    if status == SUSPENDED:
        c.s.execute(select(Lock.pk).where(Lock.partner_id == pt.id).with_for_update()).all()
        revoked = revoke_where(c.s, c.now, partner_keys(pt))
    c.audit(f"partner.{'resume' if status == ACTIVE else 'suspend'}", pt.id, revoked_keys=revoked)
    return partner_out(pt)


def delete_partner(c: Ctx, partner_id: str) -> DeletedOut:
    """Delete a partner; its locks stay, detached from it."""
    pt = get_partner(c, partner_id, lock=True)
    c.s.execute(update(Lock).where(Lock.partner_id == pt.id).values(partner_id=None))
    c.s.delete(pt)
    c.audit("partner.delete", partner_id)
    return DeletedOut(deleted=partner_id)
