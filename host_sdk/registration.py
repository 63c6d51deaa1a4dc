"""Lock registration proof of possession (docs/protocol.md §5).

The key server hands an installer a fresh 32-byte challenge; the lock, over USB, signs

    "KGY2-REG" || u8(len(lock_id)) || lock_id || u8(len(operator)) || operator
               || challenge(32) || sign_public(32) || kex_public(32)

with its Ed25519 identity key. The signature proves that whoever registers the lock holds
the board (its private key never leaves it), that the board was provisioned for this
operator, and which X25519 key the server must wrap key secrets to. Public keys read over
BLE (``INFO``) are therefore useless for registering someone else's lock.
"""

from __future__ import annotations

from .cose import ed25519_verify_strict
from .keys import LockIdentity
from .protocol import LABEL_REG, REG_CHALLENGE_LEN

CONTEXT = LABEL_REG
CHALLENGE_BYTES = REG_CHALLENGE_LEN


def _lp(text: str) -> bytes:
    b = text.encode()
    if len(b) > 255:
        raise ValueError("identifier longer than 255 bytes")
    return bytes([len(b)]) + b


def registration_message(lock_id: str, operator: str, challenge: bytes, sign_public: bytes,
                         kex_public: bytes) -> bytes:
    """The bytes the lock signs (see the module doc)."""
    if len(challenge) != CHALLENGE_BYTES or len(sign_public) != 32 or len(kex_public) != 32:
        raise ValueError("challenge and public keys must be 32 bytes each")
    return (CONTEXT + _lp(lock_id) + _lp(operator) + bytes(challenge) + bytes(sign_public)
            + bytes(kex_public))


def sign_registration(identity: LockIdentity, lock_id: str, operator: str,
                      challenge: bytes) -> bytes:
    """What the firmware's ``provisioning.registration_proof`` computes (for simulated
    locks and tests): the 64-byte proof by the lock's Ed25519 key."""
    return identity.sign(registration_message(lock_id, operator, challenge,
                                              identity.sign_public, identity.kex_public))


def verify_registration(proof: bytes, lock_id: str, operator: str, challenge: bytes,
                        sign_public: bytes, kex_public: bytes) -> bool:
    """True iff ``proof`` is the lock's signature naming exactly these values."""
    try:
        msg = registration_message(lock_id, operator, challenge, sign_public, kex_public)
    except ValueError:
        return False
    return len(proof) == 64 and ed25519_verify_strict(sign_public, msg, proof)
