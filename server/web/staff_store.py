"""What the operator console keeps: staff members, their passkeys, sessions, invitations.

A staff member belongs to one operator and has one role (:mod:`kagiya.server.web.access`):
``admin``, ``staff`` or ``partner`` (then also one partner, whose locks and users alone they
see). They sign in with passkeys only; an invitation (one use, 7 days) binds the first passkey
to the staff member. Secrets are stored as SHA-256, like My Page's (same column sets and
helpers, :mod:`kagiya.server.web.store`). Migration 0012.
"""

from __future__ import annotations

from kagiya.server.models import Base
from kagiya.server.web.store import PasskeyColumns, SecretColumns
from sqlalchemy import BigInteger, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

STAFF_SIGN_UP, STAFF_SIGN_IN = "staff-sign-up", "staff-sign-in"


def _staff_fk() -> Mapped[int]:
    return mapped_column(Integer, ForeignKey("console_staff.pk", ondelete="CASCADE"),
                         nullable=False, index=True)


class Staff(Base):
    """One operator's staff member (a display name, never more personal data)."""

    __tablename__ = "console_staff"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operator_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("operators.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    partner_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("partners.id", ondelete="CASCADE"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class StaffPasskey(PasskeyColumns, Base):
    """A staff member's WebAuthn credential."""

    __tablename__ = "console_passkeys"
    staff_pk: Mapped[int] = _staff_fk()


class StaffSession(SecretColumns, Base):
    """A signed-in console browser."""

    __tablename__ = "console_sessions"
    staff_pk: Mapped[int] = _staff_fk()


class StaffInvitation(SecretColumns, Base):
    """A one-time invitation with which a staff member creates their first passkey."""

    __tablename__ = "console_invitations"
    staff_pk: Mapped[int] = _staff_fk()


def owner(staff_pk: int) -> str:
    """How a ceremony challenge names the staff member it is for."""
    return f"staff:{staff_pk}"


def passkeys_of(s: Session, staff_pk: int) -> list[StaffPasskey]:
    """The staff member's passkeys."""
    return list(s.scalars(select(StaffPasskey).where(StaffPasskey.staff_pk == staff_pk)))
