"""A driver's linked OpenID identities (contract portal 第4条: registration completes when the
customer record is linked to the provider's unique subject).

One person, one account: an ``(issuer, subject)`` pair belongs to at most one user (it is the
table's primary key), and a user has at most one subject per issuer. Migration 0010.
"""

from __future__ import annotations

from kagiya.server.models import Base
from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column


class Identity(Base):
    """The link from a provider's subject to one user."""

    __tablename__ = "web_identities"
    __table_args__ = (UniqueConstraint("user_pk", "issuer", name="uq_web_identities_user"),)
    issuer: Mapped[str] = mapped_column(String(255), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class AlreadyLinked(Exception):
    """The subject is another user's, or the user has another subject at this issuer."""


def user_of(s: Session, issuer: str, subject: str) -> int | None:
    """The user an identity signs in as, or None (not linked)."""
    row = s.get(Identity, (issuer, subject))
    return row.user_pk if row is not None else None


def link(s: Session, user_pk: int, issuer: str, subject: str, now: int) -> bool:
    """Link ``(issuer, subject)`` to ``user_pk``; False when it was linked already (to them).
    Raises :class:`AlreadyLinked` when it would give one person two accounts or one account
    two persons at this issuer."""
    owner = user_of(s, issuer, subject)
    if owner == user_pk:
        return False
    other = s.scalar(select(Identity).where(Identity.user_pk == user_pk,
                                            Identity.issuer == issuer))
    if owner is not None or other is not None:
        raise AlreadyLinked(issuer)
    s.add(Identity(issuer=issuer, subject=subject, user_pk=user_pk, created_at=now))
    s.flush()
    return True


def issuers_of(s: Session, user_pk: int) -> list[str]:
    """The issuers the user has linked."""
    return list(s.scalars(select(Identity.issuer).where(Identity.user_pk == user_pk)))


def unlink(s: Session, user_pk: int, issuer: str) -> bool:
    """Remove the user's link at ``issuer``; False when there was none."""
    row = s.scalar(select(Identity).where(Identity.user_pk == user_pk, Identity.issuer == issuer))
    if row is None:
        return False
    s.delete(row)
    s.flush()
    return True
