"""Row → JSON conversions and operator-scoped lookups shared by the routers."""

from __future__ import annotations

from typing import Any

from kagiya.sdk.keys import lock_key_id
from kagiya.server.models import KeyRequest, Lock, Partner, UsageLog, User
from kagiya.server.problems import ApiError, not_found
from kagiya.server.runtime import Principal
from kagiya.server.schemas import perm_names
from sqlalchemy import select
from sqlalchemy.orm import Session

MAX_LIMIT = 200


def user_json(u: User) -> dict[str, Any]:
    """A user row as the API shows it."""
    return {
        "user_id": u.user_id,
        "status": u.status,
        "leaked": u.leaked,
        "created_at": u.created_at,
    }


def partner_json(p: Partner) -> dict[str, Any]:
    """A partner row as the API shows it."""
    return {"partner_id": p.id, "name": p.name, "status": p.status, "created_at": p.created_at}


def lock_json(lk: Lock) -> dict[str, Any]:
    """A lock row as the API shows it (lock key ID per protocol §2)."""
    return {
        "lock_id": lk.lock_id,
        "sign_public": lk.sign_public.hex(),
        "kex_public": lk.kex_public.hex(),
        "lock_key_id": lock_key_id(lk.kex_public).hex(),
        "vehicle_label": lk.vehicle_label,
        "partner_id": lk.partner_id,
        "status": lk.status,
        "revocation_version": lk.revocation_version,
        "created_at": lk.created_at,
        "identity_changed_at": lk.identity_changed_at,
    }


def request_json(r: KeyRequest, user_id: str, lock_id: str) -> dict[str, Any]:
    """A key request as the API shows it."""
    return {
        "request_id": r.id,
        "user_id": user_id,
        "lock_id": lock_id,
        "nbf": r.nbf,
        "exp": r.exp,
        "permissions": perm_names(r.permissions),
        "version": r.version,
        "status": r.status,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def log_json(row: UsageLog, lock_id: str) -> dict[str, Any]:
    """A usage-log record as the API shows it."""
    return {
        "lock_id": lock_id,
        "seq": row.seq,
        "time": row.time,
        "event": row.event,
        "code": row.code,
        "key_id": row.cti.hex() if row.cti is not None else None,
        "user_id": row.sub,
        "received_at": row.received_at,
    }


def _owned(
    s: Session, p: Principal, model: Any, column: Any, value: str, what: str, lock: bool
) -> Any:
    """The row of ``model`` whose ``column`` is ``value`` and which belongs to the caller's
    operator, or 404 (another operator's row is "not found" too: no existence leak)."""
    q = select(model).where(column == value, model.operator_id == p.operator.id)
    if lock:
        q = q.with_for_update()
    row = s.scalars(q).first()
    if row is None:
        raise not_found(what)
    return row


def get_user(s: Session, p: Principal, user_id: str, *, lock: bool = False) -> User:
    """The caller's user ``user_id`` or 404."""
    return _owned(s, p, User, User.user_id, user_id, "user", lock)


def get_lock(s: Session, p: Principal, lock_id: str, *, lock: bool = False) -> Lock:
    """The caller's lock ``lock_id`` or 404."""
    return _owned(s, p, Lock, Lock.lock_id, lock_id, "lock", lock)


def get_partner(s: Session, p: Principal, partner_id: str, *, lock: bool = False) -> Partner:
    """The caller's partner or 404."""
    return _owned(s, p, Partner, Partner.id, partner_id, "partner", lock)


def get_request(s: Session, p: Principal, request_id: str, *, lock: bool = False) -> KeyRequest:
    """The caller's key request or 404."""
    return _owned(s, p, KeyRequest, KeyRequest.id, request_id, "key request", lock)


def parse_cursor(cursor: str | None) -> int:
    """Numeric keyset cursor (0 = from the start)."""
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 18:
        raise ApiError(422, "invalid-cursor", "cursor is not one this server returned")
    return int(cursor)
