"""Reading the operator's usage logs (verified uploads from phones) and its audit log."""

from __future__ import annotations

from typing import Any

from kagiya.server.models import AuditEntry, IssuedKey, KeyRequest, Lock, UsageLog, User
from kagiya.server.schemas import AuditPage, LogPage
from kagiya.server.services.context import Ctx
from kagiya.server.services.paging import page
from kagiya.server.views import audit_out, log_out
from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import aliased

# The key and user a record's key ID belongs to (aliases: a query may join these tables too).
_KEY = aliased(IssuedKey, name="holder_key")
_REQUEST = aliased(KeyRequest, name="holder_request")
HOLDER = aliased(User, name="holder")


def with_holder(q: Select[Any]) -> Select[Any]:
    """``q`` over :class:`UsageLog` joined to the record's key holder (``HOLDER.user_id``):
    the user of a record the lock logged without one (a refusal names only the key ID it was
    shown), through the operator's own issued key with that ID on that lock. Another
    operator's key IDs never match; a record whose key is gone (purged after expiry, or its
    phone reported lost) has no holder."""
    return (q.outerjoin(_KEY, and_(_KEY.cti == UsageLog.cti,
                                   _KEY.operator_id == UsageLog.operator_id,
                                   _KEY.lock_pk == UsageLog.lock_pk))
            .outerjoin(_REQUEST, _REQUEST.id == _KEY.request_id)
            .outerjoin(HOLDER, HOLDER.pk == _REQUEST.user_pk))


def of_user(user_id: str) -> ColumnElement[bool]:
    """Records of ``user_id`` (in a :func:`with_holder` query), with their refusals."""
    return or_(UsageLog.sub == user_id, and_(UsageLog.sub.is_(None),
                                             HOLDER.user_id == user_id))


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
    q = (
        with_holder(select(UsageLog, Lock.lock_id, HOLDER.user_id)
                    .join(Lock, Lock.pk == UsageLog.lock_pk))
        .where(UsageLog.operator_id == c.operator_id, UsageLog.id > after)
    )
    if lock_id:
        q = q.where(Lock.lock_id == lock_id)
    if user_id:
        q = q.where(of_user(user_id))
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
