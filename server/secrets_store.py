"""Secrets at rest: the master key, sealing (AES-256-GCM), argon2 hashes, bearer tokens.

Choice (docs/server.md "Secrets at rest"): the issuer private keys, the per-key secrets and
stored idempotent responses are sealed with a 256-bit **master key** and kept in the
database; the master key is NOT in the database. It comes from ``$KAGIYA_MASTER_KEY`` (64 hex
digits) or else from ``<data-dir>/master.key``, created with mode 0600 on first start. A
database dump alone therefore reveals no signing key. Every process of one deployment must
see the same master key.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MASTER_FILE = "master.key"
_hasher = PasswordHasher()  # argon2id, RFC 9106 recommended parameters of argon2-cffi


def load_master_key(data_dir: Path) -> bytes:
    """The deployment's master key (environment first, else the 0600 key file)."""
    env = os.environ.get("KAGIYA_MASTER_KEY")
    if env:
        key = bytes.fromhex(env)
        if len(key) != 32:
            raise ValueError("KAGIYA_MASTER_KEY must be 64 hex digits")
        return key
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / MASTER_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = bytes.fromhex(path.read_text().strip())
        if len(key) != 32:
            raise ValueError(f"{path} is not a 32-byte hex key") from None
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return key


class Sealer:
    """AES-256-GCM with a random 96-bit nonce (NIST SP 800-38D); ``nonce || ct || tag``."""

    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(master_key)

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt ``plaintext`` bound to ``context`` (associated data)."""
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        """Decrypt what :meth:`seal` produced for the same ``context``."""
        return self._aead.decrypt(sealed[:12], sealed[12:], context)


def hash_secret(secret: str) -> str:
    """argon2id hash of a client secret (RFC 9106)."""
    return _hasher.hash(secret)


def verify_secret(stored_hash: str, secret: str) -> bool:
    """Check a client secret against its argon2 hash (constant-time inside argon2)."""
    try:
        return _hasher.verify(stored_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


DUMMY_HASH = _hasher.hash("kagiya-dummy-secret")  # equalises timing for unknown client IDs


def new_token() -> str:
    """A fresh 256-bit bearer token (URL-safe)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy token: what the database stores."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_id(prefix: str, nbytes: int = 10) -> str:
    """A random identifier such as ``kr_3f…``."""
    return f"{prefix}_{secrets.token_hex(nbytes)}"


_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U


def new_enrollment_code() -> str:
    """A 12-character one-time code (about 59 bits), grouped ``XXXX-XXXX-XXXX``."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def new_user_id() -> str:
    """A user ID: ``U`` + 16 code characters (printable ASCII, protocol §2)."""
    return "U" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
