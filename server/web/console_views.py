"""What the console's pages show: read-only queries with names instead of numbers (vehicle
labels, partner names, user IDs), always inside the member's scope
(:mod:`kagiya.server.web.access`). Changes go through the operator API's service functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kagiya.server.models import (
    ACTIVE,
    AuditEntry,
    KeyRequest,
    Lock,
    Operator,
    Partner,
    Phone,
    SimLine,
    UsageLog,
    User,
)
from kagiya.server.services import usage_logs as usage_logs_q
from kagiya.server.web.access import Member, locks_visible, users_visible
from kagiya.server.web.staff_store import Staff
from sqlalchemy import func, select
from sqlalchemy.orm import Session

ROWS = 200  # a page shows the newest 200 rows (filters narrow it)


@dataclass
class Quota:
    """The contract's user-ID quota and how much of it is used."""

    used: int
    quota: int


def quota(s: Session, m: Member) -> Quota:
    """The operator's quota (what ``POST /v1/users`` refuses beyond)."""
    op = s.get(Operator, m.operator.id)
    used = s.scalar(select(func.count()).select_from(User).where(User.operator_id == m.operator.id))
    return Quota(int(used or 0), op.quota if op else 0)


def users(s: Session, m: Member, now: int) -> list[dict[str, Any]]:
    """The member's users: status, phones and active key requests."""
    phones = (select(func.count()).select_from(Phone).where(Phone.user_pk == User.pk)
              .scalar_subquery())
    leases = (select(func.count()).select_from(KeyRequest).where(
        KeyRequest.user_pk == User.pk, KeyRequest.status == ACTIVE, KeyRequest.exp > now)
        .scalar_subquery())
    rows = s.execute(select(User, phones, leases).where(
        User.operator_id == m.operator.id, users_visible(m)).order_by(User.pk.desc())
        .limit(ROWS)).all()
    return [{"user_id": u.user_id, "status": u.status, "leaked": u.leaked,
             "created_at": u.created_at, "phones": p, "leases": n} for u, p, n in rows]


def partners(s: Session, m: Member) -> list[Partner]:
    """The operator's partners."""
    return list(s.scalars(select(Partner).where(Partner.operator_id == m.operator.id)
                          .order_by(Partner.name)))


def locks(s: Session, m: Member, now: int) -> list[dict[str, Any]]:
    """The member's locks: label, partner, status, plan, drivers, last log upload, the
    lock's signed ``lost`` counter and missing records, and its SIM line (if connected)."""
    last = (select(func.max(UsageLog.received_at)).where(UsageLog.lock_pk == Lock.pk)
            .scalar_subquery())
    drivers = (select(func.count(func.distinct(KeyRequest.user_pk))).where(
        KeyRequest.lock_pk == Lock.pk, KeyRequest.status == ACTIVE, KeyRequest.exp > now)
        .scalar_subquery())
    rows = s.execute(select(Lock, Partner.name, last, drivers, SimLine)
                     .outerjoin(Partner, Partner.id == Lock.partner_id)
                     .outerjoin(SimLine, SimLine.lock_pk == Lock.pk)
                     .where(Lock.operator_id == m.operator.id, locks_visible(m))
                     .order_by(Lock.lock_id).limit(ROWS)).all()
    return [{"lock_id": lk.lock_id, "label": lk.vehicle_label, "partner_id": lk.partner_id,
             "partner": pname, "status": lk.status, "care_plan": lk.care_plan,
             "last_upload": lk.log_uploaded_at or up, "drivers": d, "lost": lk.log_lost,
             "missing": lk.log_missing,
             "sim": None if sim is None else {"status": sim.status, "attached": sim.attached,
                                              "last_attach": sim.last_attach,
                                              "data_bytes": sim.data_bytes}}
            for lk, pname, up, d, sim in rows]


def key_requests(s: Session, m: Member, *, user_id: str = "", lock_id: str = "",
                 status: str = "") -> list[dict[str, Any]]:
    """The member's key requests (newest first), optionally of one user, lock or status."""
    q = (select(KeyRequest, User.user_id, Lock.lock_id, Lock.vehicle_label)
         .join(User, User.pk == KeyRequest.user_pk).join(Lock, Lock.pk == KeyRequest.lock_pk)
         .where(KeyRequest.operator_id == m.operator.id, locks_visible(m)))
    if user_id:
        q = q.where(User.user_id == user_id)
    if lock_id:
        q = q.where(Lock.lock_id == lock_id)
    if status:
        q = q.where(KeyRequest.status == status)
    rows = s.execute(q.order_by(KeyRequest.created_at.desc(), KeyRequest.id).limit(ROWS)).all()
    return [{"request_id": r.id, "user_id": uid, "lock_id": lid, "label": label,
             "nbf": r.nbf, "exp": r.exp, "permissions": r.permissions, "status": r.status,
             "version": r.version} for r, uid, lid, label in rows]


def usage_logs(s: Session, m: Member, *, lock_id: str = "", user_id: str = "",
               since: int | None = None, until: int | None = None) -> list[dict[str, Any]]:
    """The member's usage-log records (newest first) with the vehicle's label and the user,
    also of a refusal the lock logged with the key ID alone (the key's holder, as the API
    shows it: :func:`kagiya.server.services.usage_logs.with_holder`)."""
    q = (usage_logs_q.with_holder(
            select(UsageLog, Lock.lock_id, Lock.vehicle_label, usage_logs_q.HOLDER.user_id)
            .join(Lock, Lock.pk == UsageLog.lock_pk))
         .where(UsageLog.operator_id == m.operator.id, locks_visible(m)))
    if lock_id:
        q = q.where(Lock.lock_id == lock_id)
    if user_id:
        q = q.where(usage_logs_q.of_user(user_id))
    if since is not None:
        q = q.where(UsageLog.time >= since)
    if until is not None:
        q = q.where(UsageLog.time < until)
    rows = s.execute(q.order_by(UsageLog.time.desc(), UsageLog.id.desc()).limit(ROWS)).all()
    return [{"time": r.time, "lock_id": lid, "label": label, "user_id": r.sub or holder,
             "event": r.event, "code": r.code, "received_at": r.received_at}
            for r, lid, label, holder in rows]


def audit_log(s: Session, m: Member) -> list[AuditEntry]:
    """The operator's audit log, newest first."""
    return list(s.scalars(select(AuditEntry).where(AuditEntry.operator_id == m.operator.id)
                          .order_by(AuditEntry.id.desc()).limit(ROWS)))


def staff_names(s: Session, m: Member) -> dict[int, str]:
    """The operator's console members' display names by number (the audit log's actors)."""
    rows = s.execute(select(Staff.pk, Staff.name).where(Staff.operator_id == m.operator.id))
    return {pk: name for pk, name in rows}
