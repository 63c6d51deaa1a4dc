"""Service-admin operations (the key service provider). Used by ``kagiya server admin``;
there is deliberately no HTTP surface for them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from kagiya.server import audit, token_revocation
from kagiya.server.db import transaction
from kagiya.server.models import (
    ACTIVE,
    RETIRED,
    SUSPENDED,
    AuditEntry,
    EnrollmentCode,
    Idempotency,
    IssuedKey,
    KeyRequest,
    Lock,
    Operator,
    Partner,
    Phone,
    Revocation,
    Token,
    UsageLog,
    User,
)
from kagiya.server.runtime import Runtime
from kagiya.server.secrets_store import hash_secret, new_id
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

ADMIN = "admin"
# tables holding operator data, children first (what end-contract deletes)
OPERATOR_TABLES: list[Any] = [
    UsageLog,
    IssuedKey,
    Token,
    Idempotency,
    EnrollmentCode,
    KeyRequest,
    Phone,
    User,
    Lock,
    Partner,
    AuditEntry,
]


class AdminError(Exception):
    """A refused admin action (unknown operator, bad arguments): ``code`` names it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class NewOperator:
    """A created operator; ``client_secret`` is shown once and never stored."""

    operator_id: str
    client_id: str
    client_secret: str


def _operator(s: Session, ident: str) -> Operator:
    op = (
        s.get(Operator, ident)
        or s.scalars(select(Operator).where(Operator.client_id == ident)).first()
    )
    if op is None:
        raise AdminError("unknown-operator", f"no operator {ident!r}")
    return op


def _check_quota(quota: int) -> None:
    if quota < 0:
        raise AdminError("invalid-quota", "quota must be >= 0")


def create_operator(
    rt: Runtime, name: str, quota: int, contract_start: int, contract_end: int
) -> NewOperator:
    """Create an operator with fresh client credentials (secret stored as argon2id)."""
    _check_quota(quota)
    if contract_end <= contract_start:
        raise AdminError("invalid-contract", "the contract must end after it starts")
    if not 1 <= len(name) <= 100:
        raise AdminError("invalid-name", "name must be 1-100 characters")
    secret = secrets.token_urlsafe(32)
    op = Operator(
        id=new_id("op"),
        name=name,
        client_id="kgy_" + secrets.token_hex(12),
        secret_hash=hash_secret(secret),
        quota=quota,
        contract_start=contract_start,
        contract_end=contract_end,
        status=ACTIVE,
        created_at=rt.now(),
    )
    with transaction(rt.sessions) as s:
        s.add(op)
        audit.record(
            s,
            rt.now(),
            ADMIN,
            "operator.create",
            operator_id=op.id,
            target=op.id,
            detail={"quota": quota, "contract_start": contract_start, "contract_end": contract_end},
        )
    return NewOperator(op.id, op.client_id, secret)


def list_operators(rt: Runtime) -> list[dict[str, Any]]:
    """Operators with their quota use."""
    with transaction(rt.sessions) as s:
        used = dict(
            s.execute(select(User.operator_id, func.count()).group_by(User.operator_id)).all()
        )
        return [
            {
                "operator_id": op.id,
                "name": op.name,
                "client_id": op.client_id,
                "status": op.status,
                "quota": op.quota,
                "users": used.get(op.id, 0),
                "contract_start": op.contract_start,
                "contract_end": op.contract_end,
            }
            for op in s.scalars(select(Operator).order_by(Operator.created_at, Operator.id))
        ]


def set_operator_status(rt: Runtime, ident: str, status: str) -> str:
    """Suspend or resume an operator. Suspension ends all of its tokens (operator, installer
    and phone): after a resume its servers log in again and its phones refresh with their
    device keys."""
    if status not in (ACTIVE, SUSPENDED):
        raise AdminError("invalid-status", "bad status")
    with transaction(rt.sessions) as s:
        op = _operator(s, ident)
        op.status = status
        if status == SUSPENDED:
            token_revocation.revoke_operator(s, op.id)
        audit.record(
            s,
            rt.now(),
            ADMIN,
            f"operator.{'resume' if status == ACTIVE else 'suspend'}",
            operator_id=op.id,
            target=op.id,
        )
        return op.id


def set_quota(rt: Runtime, ident: str, quota: int) -> None:
    """Change an operator's user-ID quota."""
    _check_quota(quota)
    with transaction(rt.sessions) as s:
        op = _operator(s, ident)
        op.quota = quota
        audit.record(
            s,
            rt.now(),
            ADMIN,
            "operator.quota",
            operator_id=op.id,
            target=op.id,
            detail={"quota": quota},
        )


def rotate_issuer_key(rt: Runtime, *, stage: bool = False) -> str:
    """Rotate the issuer key (or only publish the next one with ``stage``); returns its kid."""
    with transaction(rt.sessions) as s:
        kid = rt.issuer.keys.rotate(s, rt.now(), rt.settings.key_lifetime_s + 3600, stage=stage)
        audit.record(
            s, rt.now(), ADMIN, "issuer-key.stage" if stage else "issuer-key.rotate", target=kid
        )
        return kid


def end_contract(rt: Runtime, ident: str,
                 decommission: dict[str, str] | None = None) -> dict[str, int]:
    """Delete everything the operator owns (users, locks, keys, logs, ...) and the operator.

    Revokes first: every lock of the operator is retired (every key revoked, as
    :func:`kagiya.server.tenancy.retire`) and its signed decommission update (protocol §7a)
    is put into ``decommission`` (lock ID -> hex), for the installer to carry to each
    vehicle (``kagiya install decommission``): once the rows are gone no phone can fetch it.
    Returns the number of rows deleted per table. One audit entry (no operator data) remains.
    """
    from kagiya.server import tenancy
    from kagiya.server.revocations import decommission_update

    counts: dict[str, int] = {}
    with transaction(rt.sessions) as s:
        op = _operator(s, ident)
        now = rt.now()
        keys = rt.keyset(s)
        for lk in s.scalars(select(Lock).where(Lock.operator_id == op.id).with_for_update()):
            if lk.status != RETIRED:
                tenancy.retire(s, lk, now)
            if decommission is not None:
                decommission[lk.lock_id] = decommission_update(keys, lk, now)
        lock_pks = select(Lock.pk).where(Lock.operator_id == op.id)
        res = s.execute(delete(Revocation).where(Revocation.lock_pk.in_(lock_pks)))
        counts["revocations"] = res.rowcount
        for table in OPERATOR_TABLES:
            res = s.execute(delete(table).where(table.operator_id == op.id))
            counts[table.__tablename__] = res.rowcount
        s.delete(op)
        audit.record(
            s, rt.now(), ADMIN, "operator.end-contract", target=op.id, detail={"deleted": counts}
        )
    return counts


def audit_entries(
    rt: Runtime, operator: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest audit entries (optionally of one operator), oldest first."""
    with transaction(rt.sessions) as s:
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if operator:
            q = q.where(AuditEntry.operator_id == operator)
        rows = list(s.scalars(q))
        return [
            {
                "at": a.at,
                "actor": a.actor,
                "operator_id": a.operator_id,
                "action": a.action,
                "target": a.target,
                "detail": a.detail,
            }
            for a in reversed(rows)
        ]
