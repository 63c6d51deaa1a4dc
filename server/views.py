"""Row → schema model conversions shared by the service functions (what the API shows)."""

from __future__ import annotations

from enum import IntEnum

from kagiya.sdk.keys import lock_key_id
from kagiya.sdk.protocol import ErrorCode, LogEvent
from kagiya.server.models import AuditEntry, KeyRequest, Lock, Partner, UsageLog, User
from kagiya.server.schemas import (
    AuditOut,
    KeyRequestOut,
    LockOut,
    LogOut,
    PartnerOut,
    UserOut,
    perm_names,
)


def user_out(u: User) -> UserOut:
    """A user row as the API shows it."""
    return UserOut(user_id=u.user_id, status=u.status, leaked=u.leaked, created_at=u.created_at)


def partner_out(p: Partner) -> PartnerOut:
    """A partner row as the API shows it."""
    return PartnerOut(partner_id=p.id, name=p.name, status=p.status, created_at=p.created_at)


def lock_out(lk: Lock) -> LockOut:
    """A lock row as the API shows it (lock key ID per protocol §2)."""
    return LockOut(
        lock_id=lk.lock_id,
        sign_public=lk.sign_public.hex(),
        kex_public=lk.kex_public.hex(),
        lock_key_id=lock_key_id(lk.kex_public).hex(),
        vehicle_label=lk.vehicle_label,
        partner_id=lk.partner_id,
        status=lk.status,
        revocation_version=lk.revocation_version,
        created_at=lk.created_at,
        identity_changed_at=lk.identity_changed_at,
        care_plan=lk.care_plan,
        log_head_seq=lk.log_head_seq,
        log_lost=lk.log_lost,
        log_missing=lk.log_missing,
        log_uploaded_at=lk.log_uploaded_at,
    )


def request_out(r: KeyRequest, user_id: str, lock_id: str) -> KeyRequestOut:
    """A key request as the API shows it (with its user ID and lock ID)."""
    return KeyRequestOut(
        request_id=r.id,
        user_id=user_id,
        lock_id=lock_id,
        nbf=r.nbf,
        exp=r.exp,
        permissions=perm_names(r.permissions),
        version=r.version,
        status=r.status,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def log_out(row: UsageLog, lock_id: str, holder: str | None = None) -> LogOut:
    """A usage-log record as the API shows it; ``holder``: the user of the operator's issued
    key with the record's key ID (for records the lock logged without the user)."""
    return LogOut(
        lock_id=lock_id,
        seq=row.seq,
        time=row.time,
        event=row.event,
        event_name=_name(LogEvent, row.event),
        code=row.code,
        code_name=_name(ErrorCode, row.code),
        key_id=row.cti.hex() if row.cti is not None else None,
        user_id=row.sub or holder,
        received_at=row.received_at,
    )


def _name(enum: type[IntEnum], value: int) -> str | None:
    try:
        return enum(value).name
    except ValueError:
        return None


def audit_out(a: AuditEntry) -> AuditOut:
    """An audit entry as the API shows it (``detail`` is its JSON text)."""
    return AuditOut(at=a.at, actor=a.actor, action=a.action, target=a.target, detail=a.detail)
