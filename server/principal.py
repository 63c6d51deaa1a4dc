"""Who is calling: the principal a bearer token resolves to (plain values, no ORM rows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

OPERATOR, INSTALLER, PHONE = "operator", "installer", "phone"
CONSOLE = "console"  # a staff member signed in to the operator console (server/web)


class OperatorLike(Protocol):
    """What authorisation reads of an operator (an ORM row or an :class:`OperatorRef`)."""

    id: str
    status: str
    contract_start: int
    contract_end: int


def token_ref(token_hash: str) -> str:
    """How audit entries name a bearer token: the first 12 hex digits of its SHA-256."""
    return token_hash[:12]


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
    token_ref: str = ""  # names the bearer token in audit entries (a prefix of its hash)

    @property
    def scope(self) -> str:
        """Idempotency scope: keys of different callers never collide."""
        if self.phone is not None:
            return f"phone:{self.phone.id}"
        return f"{self.kind}:{self.operator.id}"

    @property
    def actor(self) -> str:
        """Audit actor label; an installer's names its token (``token_ref``, as audited by
        ``installer-token.create``), so every action is traceable to one laptop's token."""
        if self.kind == INSTALLER and self.token_ref:
            return f"installer:{self.operator.id}:{self.token_ref}"
        if self.kind == CONSOLE:  # the staff member (``staff<pk>``) who acted in the console
            return f"console:{self.operator.id}:{self.token_ref}"
        return self.scope
