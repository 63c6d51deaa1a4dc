"""What My Page keeps: passkeys, sign-in sessions, one-time invitations, ceremony challenges.

Tables (migration 0005): a driver's account *is* their user ID (one person, one account): a
passkey belongs to exactly one user and its credential ID is unique across the server, so no
two users can share one. Sessions and invitations are stored as SHA-256 only, like bearer
tokens. Every change runs in the caller's transaction and is audited there.

The column sets and the secret-token helpers (:class:`PasskeyColumns`, :class:`SecretColumns`,
:func:`issue`, :func:`live`, :func:`drop`) are shared with the operator console's staff
accounts (:mod:`kagiya.server.web.staff_store`).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Protocol, TypeVar

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


class PasskeyColumns:
    """What every stored WebAuthn credential has (public key only, never a secret)."""

    credential_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sign_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_used_at: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class SecretColumns:
    """A secret token stored as its SHA-256, with an expiry (sessions, invitations)."""

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)


class Passkey(PasskeyColumns, Base):
    """A WebAuthn credential (public key only) of one user."""

    __tablename__ = "web_passkeys"
    user_pk: Mapped[int] = _user_fk()


class WebSession(SecretColumns, Base):
    """A signed-in browser (the cookie's SHA-256)."""

    __tablename__ = "web_sessions"
    user_pk: Mapped[int] = _user_fk()


class Invitation(SecretColumns, Base):
    """A one-time My Page invitation for one user (its SHA-256), issued by the operator."""

    __tablename__ = "web_invitations"
    user_pk: Mapped[int] = _user_fk()


class Challenge(Base):
    """A WebAuthn ceremony challenge, usable once: its purpose and, for a sign-up, whose
    account it is for (a My Page user, or ``owner`` such as ``staff:12`` for the console)."""

    __tablename__ = "web_challenges"
    challenge: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)
    user_pk: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="CASCADE"), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(40), nullable=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)


class _Secret(Protocol):
    token_hash: Any
    expires_at: Any


S = TypeVar("S", bound=_Secret)


def digest(token: str) -> str:
    """SHA-256 hex of a secret token (only this is stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue(s: Session, model: type[S], now: int, ttl: int, size: int = 32, **owner: int) -> str:
    """A fresh secret token stored (as its digest) in ``model`` for ``owner``; shown once."""
    token = secrets.token_urlsafe(size)
    row: Any = model  # a mapped class with these columns (the Protocol has no __init__)
    s.add(row(token_hash=digest(token), expires_at=now + ttl, **owner))
    return token


def live(s: Session, model: type[S], token: str | None, now: int) -> S | None:
    """The unexpired row of ``token`` in ``model``, or None (also for absurd input)."""
    if not token or len(token) > 100:
        return None
    row = s.get(model, digest(token))
    return row if row is not None and row.expires_at > now else None


def drop(s: Session, model: type[S], token: str) -> None:
    """Delete the row of ``token`` (sign-out, a spent invitation)."""
    s.execute(delete(model).where(model.token_hash == digest(token)))


def new_invitation(s: Session, user_pk: int, now: int) -> str:
    """A fresh invitation token for ``user_pk`` (shown once)."""
    return issue(s, Invitation, now, INVITATION_TTL_S, 24, user_pk=user_pk)


def invitation_user(s: Session, token: str, now: int) -> int | None:
    """The user an unexpired invitation is for (it stays valid until a passkey is saved)."""
    row = live(s, Invitation, token, now)
    return row.user_pk if row is not None else None


def use_invitation(s: Session, token: str) -> None:
    """Spend an invitation (after a passkey was registered with it)."""
    drop(s, Invitation, token)


def new_challenge(s: Session, purpose: str, now: int, user_pk: int | None = None,
                  owner: str | None = None) -> bytes:
    """A 32-byte random challenge stored for one ceremony."""
    s.execute(delete(Challenge).where(Challenge.expires_at < now))
    value = secrets.token_bytes(32)
    s.add(Challenge(challenge=value, purpose=purpose, user_pk=user_pk, owner=owner,
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
    return issue(s, WebSession, now, SESSION_TTL_S, user_pk=user_pk)


def session_user(s: Session, token: str | None, now: int) -> int | None:
    """The user of a live session cookie, or None."""
    row = live(s, WebSession, token, now)
    return row.user_pk if row is not None else None


def end_session(s: Session, token: str) -> None:
    """Sign out."""
    drop(s, WebSession, token)


def passkeys_of(s: Session, user_pk: int) -> list[Passkey]:
    """The user's passkeys."""
    return list(s.scalars(select(Passkey).where(Passkey.user_pk == user_pk)))
