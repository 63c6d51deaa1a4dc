"""The audit log of admin and operator actions (IDs only; never secrets or tokens)."""

from __future__ import annotations

import json
from typing import Any

from kagiya.server.models import AuditEntry
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
