"""A lock belongs to one operator: registration proof of possession, tombstones, retirement.

* **Proof of possession** (protocol §5): ``POST /v1/install/registration-challenge`` hands
  the caller's operator a one-time 32-byte challenge (kept as its SHA-256 for
  ``CHALLENGE_TTL_S``); the lock signs it over USB naming its lock ID, its operator and both
  public keys. Registration and identity replacement need such a fresh proof, so public keys
  read over BLE register nothing, and a lock provisioned for one operator cannot be
  registered by another.
* **Namespaces**: lock IDs are unique per operator. No check looks at other operators'
  locks, so no answer tells an operator whether another holds an ID; the lock itself refuses
  credentials and updates of another operator (``WRONG_OPERATOR``).
* **Tombstones**: deleting or decommissioning a lock revokes every key first (the generation
  floor), then keeps the row as ``retired`` with its revocation version and generations.
  Registering the ID again revives the row and continues both, so updates never go
  backwards and no earlier key is valid for the new registration.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from kagiya.sdk.registration import CHALLENGE_BYTES, verify_registration
from kagiya.server.issuance import revoke_lock
from kagiya.server.logs import reset_log_state
from kagiya.server.models import (
    ACTIVE,
    CANCELLED,
    RETIRED,
    KeyRequest,
    Lock,
    RegistrationChallenge,
)
from kagiya.server.problems import ApiError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

CHALLENGE_TTL_S = 600


def _hash(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def new_challenge(s: Session, operator_id: str, now: int) -> dict[str, Any]:
    """A fresh one-time registration challenge for ``operator_id``."""
    ch = secrets.token_bytes(CHALLENGE_BYTES)
    s.add(RegistrationChallenge(challenge_hash=_hash(ch), operator_id=operator_id,
                                expires_at=now + CHALLENGE_TTL_S))
    return {"challenge": ch.hex(), "expires_at": now + CHALLENGE_TTL_S,
            "operator_id": operator_id}


def check_proof(s: Session, operator_id: str, now: int, lock_id: str, sign_public: bytes,
                kex_public: bytes, challenge_hex: str, proof_hex: str) -> None:
    """Consume the challenge and check the lock's proof; 403 otherwise.

    403 ``invalid-registration-challenge``: unknown, used, expired or another operator's;
    403 ``bad-registration-proof``: not the lock's signature over exactly these values (a
    lock provisioned for another operator signs its own operator's ID, so it fails here).
    """
    ch = bytes.fromhex(challenge_hex)
    res = s.execute(
        delete(RegistrationChallenge).where(
            RegistrationChallenge.challenge_hash == _hash(ch),
            RegistrationChallenge.operator_id == operator_id,
            RegistrationChallenge.expires_at > now,
        )
    )
    if not res.rowcount:  # type: ignore[attr-defined]
        raise ApiError(403, "invalid-registration-challenge",
                       "the registration challenge is unknown, used or expired; ask for a "
                       "new one (POST /v1/install/registration-challenge)")
    if not verify_registration(bytes.fromhex(proof_hex), lock_id, operator_id, ch,
                               sign_public, kex_public):
        raise ApiError(403, "bad-registration-proof",
                       "the proof is not this lock's signature over the challenge, its lock "
                       "ID, this operator and its keys (was it provisioned for this operator?)")


def in_service(s: Session, lock: Lock, now: int) -> bool:
    """True while the lock has an active, unexpired key request (phones depend on it)."""
    n = s.scalar(
        select(func.count()).select_from(KeyRequest).where(
            KeyRequest.lock_pk == lock.pk, KeyRequest.status == ACTIVE, KeyRequest.exp > now
        )
    )
    return bool(n)


def retire(s: Session, lock: Lock, now: int) -> int:
    """Revoke every key of ``lock`` (its generation floor), cancel its key requests and keep
    the row as a ``retired`` tombstone; returns the number of keys revoked. The revoked keys
    stay linked to the phones that held them, so those phones carry the lock's decommission
    update (protocol §7a) with its revocation update."""
    revoked = revoke_lock(s, now, lock.pk, reason="retire")
    s.execute(
        update(KeyRequest)
        .where(KeyRequest.lock_pk == lock.pk, KeyRequest.status == ACTIVE)
        .values(status=CANCELLED, updated_at=now, version=KeyRequest.version + 1)
    )
    s.refresh(lock)
    lock.status = RETIRED
    lock.retired_at = now
    s.flush()
    return revoked


def revive(lock: Lock, *, sign_public: bytes, kex_public: bytes, vehicle_label: str,
           partner_id: str | None, now: int) -> None:
    """Register a retired lock ID again: new identity and details, versions continued.

    The revocation version goes on from the tombstone's and the generation floor rises past
    every key ever issued for the ID, so no earlier key is valid for the new registration.
    """
    lock.key_generation = lock.key_generation + 1
    lock.min_generation = lock.key_generation
    lock.revocation_version = lock.revocation_version + 1
    lock.sign_public = sign_public
    lock.kex_public = kex_public
    lock.vehicle_label = vehicle_label
    lock.partner_id = partner_id
    lock.status = ACTIVE
    lock.retired_at = None
    lock.incarnation = secrets.randbits(62)
    lock.created_at = now
    lock.identity_changed_at = None
    reset_log_state(lock)


def find(s: Session, operator_id: str, lock_id: str, *, lock: bool = False) -> Lock | None:
    """The operator's lock row for ``lock_id`` (retired ones included), or None."""
    q = select(Lock).where(Lock.operator_id == operator_id, Lock.lock_id == lock_id)
    if lock:
        q = q.with_for_update()
    return s.scalars(q).first()
