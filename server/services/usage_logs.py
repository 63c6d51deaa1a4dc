"""Reading the operator's usage logs (verified uploads from phones) and its audit log."""

from __future__ import annotations

from kagiya.server.models import AuditEntry, IssuedKey, KeyRequest, Lock, UsageLog, User
from kagiya.server.schemas import AuditPage, LogPage
from kagiya.server.services.context import Ctx
from kagiya.server.services.paging import page
from kagiya.server.views import audit_out, log_out
from sqlalchemy import and_, or_, select


def list_logs(
    c: Ctx,
    *,
    lock_id: str | None,
    user_id: str | None,
    since: int | None,
    until: int | None,
    after: int,
    limit: int,
) -> LogPage:
    """Usage-log records in the order received, after cursor ``after``, optionally of one
    lock or user and with lock time ``since`` ≤ t < ``until``.

    A record without the user (a refusal before the lock trusted the key: it logs only the
    key ID the request named) is attributed through the operator's own issued key with that
    ID, so the operator sees whose key was refused; another operator's key IDs never match.
    """
    holder = User.user_id.label("holder")
    q = (
        select(UsageLog, Lock.lock_id, holder)
        .join(Lock, Lock.pk == UsageLog.lock_pk)
        .outerjoin(IssuedKey, and_(IssuedKey.cti == UsageLog.cti,
                                   IssuedKey.operator_id == UsageLog.operator_id,
                                   IssuedKey.lock_pk == UsageLog.lock_pk))
        .outerjoin(KeyRequest, KeyRequest.id == IssuedKey.request_id)
        .outerjoin(User, User.pk == KeyRequest.user_pk)
        .where(UsageLog.operator_id == c.operator_id, UsageLog.id > after)
    )
    if lock_id:
        q = q.where(Lock.lock_id == lock_id)
    if user_id:
        q = q.where(or_(UsageLog.sub == user_id, User.user_id == user_id))
    if since is not None:
        q = q.where(UsageLog.time >= since)
    if until is not None:
        q = q.where(UsageLog.time < until)
    rows, more = page(c.s.execute(q.order_by(UsageLog.id).limit(limit + 1)).all(), limit,
                      lambda row: str(row[0].id))
    return LogPage(items=[log_out(r, lid, who) for r, lid, who in rows], next_cursor=more)


def list_audit(c: Ctx, *, after: int, limit: int) -> AuditPage:
    """The operator's audit log (its servers, installers, phones and the admin), oldest first."""
    q = (
        select(AuditEntry)
        .where(AuditEntry.operator_id == c.operator_id, AuditEntry.id > after)
        .order_by(AuditEntry.id)
        .limit(limit + 1)
    )
    rows, more = page(c.s.scalars(q).all(), limit, lambda a: str(a.id))
    return AuditPage(items=[audit_out(a) for a in rows], next_cursor=more)
