"""What a service function works in: one transaction, the authenticated caller, the clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kagiya.server import audit
from kagiya.server.config import Settings
from kagiya.server.principal import Principal
from sqlalchemy.orm import Session


@dataclass
class Ctx:
    """One API call: session ``s`` (its transaction commits when the call succeeds), the
    caller ``p``, the call's time ``now`` (unix seconds) and the server ``settings``."""

    s: Session
    p: Principal
    now: int
    settings: Settings

    @property
    def operator_id(self) -> str:
        """The calling operator: every object a service touches belongs to it."""
        return self.p.operator.id

    def audit(self, action: str, target: str, **detail: Any) -> None:
        """Record ``action`` on ``target`` in the operator's audit log (same transaction)."""
        audit.record(
            self.s,
            self.now,
            self.p.actor,
            action,
            operator_id=self.operator_id,
            target=target,
            detail=detail,
        )
