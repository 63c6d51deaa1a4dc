"""The audit log of admin and operator actions (IDs only; never secrets or tokens)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kagiya.server.models import AuditEntry
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session


def record(
    session: Session,
    now: int,
    actor: str,
    action: str,
    *,
    operator_id: str | None = None,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit entry in the caller's transaction (so it commits with the action)."""
    session.add(
        AuditEntry(
            at=now,
            actor=actor[:80],
            operator_id=operator_id,
            action=action,
            target=target[:120],
            detail=json.dumps(detail or {}, sort_keys=True),
        )
    )


def pseudonym(operator_id: str, user_id: str) -> str:
    """What a deleted user ID becomes in the audit log: stable (entries about one user stay
    linkable for an investigation) but not the ID (RFC 6973 §6.1.2 pseudonymity)."""
    digest = hashlib.sha256(f"kagiya audit pseudonym\0{operator_id}\0{user_id}".encode())
    return "deleted-user:" + digest.hexdigest()[:16]


def pseudonymise_user(session: Session, operator_id: str, user_id: str) -> int:
    """Replace a deleted user ID wherever the operator's audit log names it (actor, target,
    detail); returns how many entries changed. Runs in the deleting transaction."""
    alias = pseudonym(operator_id, user_id)
    quoted = json.dumps(user_id)
    as_actor = f"user:{user_id}"  # what the driver did on My Page
    rows = session.execute(
        select(AuditEntry.id, AuditEntry.actor, AuditEntry.target, AuditEntry.detail).where(
            AuditEntry.operator_id == operator_id,
            or_(AuditEntry.target == user_id, AuditEntry.actor == as_actor,
                AuditEntry.detail.contains(quoted)),
        )
    ).all()
    for row in rows:
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.id == row.id)
            .values(
                actor=f"user:{alias}" if row.actor == as_actor else row.actor,
                target=alias if row.target == user_id else row.target,
                detail=row.detail.replace(quoted, json.dumps(alias)),
            )
        )
    return len(rows)
