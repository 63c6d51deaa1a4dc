"""Who is calling: the principal a bearer token resolves to (plain values, no ORM rows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

OPERATOR, INSTALLER, PHONE = "operator", "installer", "phone"


class OperatorLike(Protocol):
    """What authorisation reads of an operator (an ORM row or an :class:`OperatorRef`)."""

    id: str
    status: str
    contract_start: int
    contract_end: int


@dataclass(frozen=True)
class OperatorRef:
    """The calling operator, as read by the authentication query."""

    id: str
    status: str
    contract_start: int
    contract_end: int


@dataclass(frozen=True)
class PhoneRef:
    """The calling phone."""

    id: str
    user_pk: int
    operator_id: str


@dataclass(frozen=True)
class UserRef:
    """The calling phone's user."""

    pk: int
    user_id: str
    status: str


@dataclass
class Principal:
    """Who is calling: the token kind, its operator, and for phones the phone and user."""

    kind: str
    operator: OperatorRef
    phone: PhoneRef | None = None
    user: UserRef | None = None
    issuer_version: int | None = None  # ``server_state`` version of the issuer key set
    proof_jti: str | None = None  # a phone request's checked DPoP proof, to record as used

    @property
    def scope(self) -> str:
        """Idempotency scope: keys of different callers never collide."""
        if self.phone is not None:
            return f"phone:{self.phone.id}"
        return f"{self.kind}:{self.operator.id}"

    @property
    def actor(self) -> str:
        """Audit actor label."""
        return self.scope
