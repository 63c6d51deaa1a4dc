"""Phone enrollment and re-authentication with the phone's Ed25519 device key.

* Enrollment proof: ``Ed25519(device_key, "KGY1-ENROLL" || code || device_public)`` where
  ``code`` is the one-time code as ASCII (with its dashes) — binds the code to the key.
* Re-authentication: ``Ed25519(device_key, "KGY1-PHONE" || phone_id || u64be(timestamp))``,
  accepted within ``AUTH_SKEW_S`` of the server's clock and **once**: the used
  ``(phone_id, timestamp)`` is stored (primary key) in the refreshing transaction, so a
  captured proof replayed within the window is refused on every server process. Rows older
  than the window are dropped (such a timestamp is refused as stale anyway). A phone signs
  a new timestamp for each refresh (at most one per second).

Both are defined here and in docs/server.md; the phone side lives in
:mod:`kagiya.server.client` so ``kagiya.sdk`` does not depend on the server.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from kagiya.sdk.enrollment import AUTH_LABEL, ENROLL_LABEL, auth_message, enroll_message
from kagiya.server.models import PhoneAuthProof
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

__all__ = [
    "AUTH_LABEL",
    "AUTH_SKEW_S",
    "ENROLL_LABEL",
    "auth_message",
    "enroll_message",
    "use_proof",
    "verify",
]

AUTH_SKEW_S = 300


def verify(device_public: bytes, signature: bytes, message: bytes) -> bool:
    """Strict Ed25519 verification (RFC 8032 §5.1.7); never raises."""
    try:
        Ed25519PublicKey.from_public_bytes(device_public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def use_proof(session: Session, phone_id: str, timestamp: int, now: int) -> bool:
    """Record a re-authentication proof as used; False if it was used before.

    Runs in the caller's transaction; on PostgreSQL a concurrent twin waits on the primary
    key and then finds the row, so exactly one of them succeeds.
    """
    session.execute(
        delete(PhoneAuthProof).where(
            PhoneAuthProof.phone_id == phone_id, PhoneAuthProof.ts < now - 2 * AUTH_SKEW_S
        )
    )
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(PhoneAuthProof)
        .values(phone_id=phone_id, ts=timestamp, used_at=now)
        .on_conflict_do_nothing(index_elements=[PhoneAuthProof.phone_id, PhoneAuthProof.ts])
        .returning(PhoneAuthProof.ts)
    )
    return session.connection().execute(stmt).first() is not None
