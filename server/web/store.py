"""What My Page keeps: passkeys, sign-in sessions, one-time invitations, ceremony challenges.

Tables (migration 0005): a driver's account *is* their user ID (one person, one account): a
passkey belongs to exactly one user and its credential ID is unique across the server, so no
two users can share one. Sessions and invitations are stored as SHA-256 only, like bearer
tokens. Every change runs in the caller's transaction and is audited there.
"""

from __future__ import annotations

import hashlib
import secrets

from kagiya.server.models import Base
from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

SESSION_TTL_S = 8 * 3600
INVITATION_TTL_S = 7 * 86400
CHALLENGE_TTL_S = 300
SIGN_UP, SIGN_IN = "sign-up", "sign-in"


def _user_fk() -> Mapped[int]:
    return mapped_column(Integer, ForeignKey("users.pk", ondelete="CASCADE"), nullable=False,
                         index=True)


class Passkey(Base):
    """A WebAuthn credential (public key only) of one user."""

    __tablename__ = "web_passkeys"
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    user_pk: Mapped[int] = _user_fk()
    public_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sign_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_used_at: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class WebSession(Base):
    """A signed-in browser (the cookie's SHA-256)."""

    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_pk: Mapped[int] = _user_fk()
    expires_at: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)


class Invitation(Base):
    """A one-time My Page invitation for one user (its SHA-256), issued by the operator."""

    __tablename__ = "web_invitations"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_pk: Mapped[int] = _user_fk()
    expires_at: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)


class Challenge(Base):
    """A WebAuthn ceremony challenge, usable once (its purpose and, for sign-up, the user)."""

    __tablename__ = "web_challenges"
    challenge: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)
    user_pk: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="CASCADE"), nullable=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)


def digest(token: str) -> str:
    """SHA-256 hex of a secret token (only this is stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_invitation(s: Session, user_pk: int, now: int) -> str:
    """A fresh invitation token for ``user_pk`` (shown once)."""
    token = secrets.token_urlsafe(24)
    s.add(Invitation(token_hash=digest(token), user_pk=user_pk,
                     expires_at=now + INVITATION_TTL_S))
    return token


def invitation_user(s: Session, token: str, now: int) -> int | None:
    """The user an unexpired invitation is for (it stays valid until a passkey is saved)."""
    row = s.get(Invitation, digest(token))
    return row.user_pk if row is not None and row.expires_at > now else None


def use_invitation(s: Session, token: str) -> None:
    """Spend an invitation (after a passkey was registered with it)."""
    s.execute(delete(Invitation).where(Invitation.token_hash == digest(token)))


def new_challenge(s: Session, purpose: str, now: int, user_pk: int | None = None) -> bytes:
    """A 32-byte random challenge stored for one ceremony."""
    s.execute(delete(Challenge).where(Challenge.expires_at < now))
    value = secrets.token_bytes(32)
    s.add(Challenge(challenge=value, purpose=purpose, user_pk=user_pk,
                    expires_at=now + CHALLENGE_TTL_S))
    return value


def take_challenge(s: Session, value: bytes, purpose: str, now: int) -> Challenge | None:
    """Consume a challenge: the row if it existed for ``purpose`` and was fresh, else None."""
    row = s.get(Challenge, value)
    if row is None:
        return None
    s.delete(row)
    s.flush()
    return row if row.purpose == purpose and row.expires_at > now else None


def new_session(s: Session, user_pk: int, now: int) -> str:
    """Sign a browser in: a fresh session token (the cookie value)."""
    token = secrets.token_urlsafe(32)
    s.add(WebSession(token_hash=digest(token), user_pk=user_pk, expires_at=now + SESSION_TTL_S))
    return token


def session_user(s: Session, token: str | None, now: int) -> int | None:
    """The user of a live session cookie, or None."""
    if not token or len(token) > 100:
        return None
    row = s.get(WebSession, digest(token))
    return row.user_pk if row is not None and row.expires_at > now else None


def end_session(s: Session, token: str) -> None:
    """Sign out."""
    s.execute(delete(WebSession).where(WebSession.token_hash == digest(token)))


def passkeys_of(s: Session, user_pk: int) -> list[Passkey]:
    """The user's passkeys."""
    return list(s.scalars(select(Passkey).where(Passkey.user_pk == user_pk)))
