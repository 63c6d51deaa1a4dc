"""Issuer and lock key pairs and their key IDs (docs/protocol.md §2, §5).

* :class:`IssuerKey` — the key server's Ed25519 signing key (RFC 8032); signs credentials,
  time statements and revocation updates. Its ``kid`` is SHA-256(public)[:8].
* :class:`LockIdentity` — a lock's private side (Ed25519 log-head key + X25519 key-agreement
  key, RFC 7748). Real locks keep these on the device; the host class exists for tests,
  the simulator and vector generation.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

Rng = Callable[[int], bytes]


def _raw_public(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def issuer_kid(public: bytes) -> bytes:
    """Issuer key ID (§2): the first 8 bytes of SHA-256 of the raw Ed25519 public key."""
    return hashlib.sha256(bytes(public)).digest()[:8]


def lock_key_id(kex_public: bytes) -> bytes:
    """Lock key ID (§2): the first 8 bytes of SHA-256 of the raw X25519 public key."""
    return hashlib.sha256(bytes(kex_public)).digest()[:8]


def x25519_public(private: bytes) -> bytes:
    """The raw X25519 public key for a raw 32-byte private key (RFC 7748)."""
    return _raw_public(X25519PrivateKey.from_private_bytes(bytes(private)))


class IssuerKey:
    """An issuer's Ed25519 key pair (the key server's signing key)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self._public = _raw_public(private)
        self.kid: bytes = issuer_kid(self._public)

    @classmethod
    def generate(cls, rng: Rng | None = None) -> IssuerKey:
        """A new key from ``rng`` (default ``os.urandom``); pass a seeded rng for vectors."""
        return cls.from_private_bytes((rng or os.urandom)(32))

    @classmethod
    def from_private_bytes(cls, seed: bytes) -> IssuerKey:
        """Load from the 32-byte RFC 8032 private key (seed)."""
        if len(seed) != 32:
            raise ValueError("Ed25519 private key must be 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    def private_bytes(self) -> bytes:
        """The 32-byte private seed (keep secret)."""
        return self._private.private_bytes_raw()

    def public_bytes(self) -> bytes:
        """The 32-byte raw Ed25519 public key (a lock's trust anchor)."""
        return self._public

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``message``."""
        return self._private.sign(bytes(message))

    def anchors(self) -> dict[bytes, bytes]:
        """``{kid: public}``: this key as a trust-anchor mapping for the verifiers."""
        return {self.kid: self._public}

    def __repr__(self) -> str:
        return f"IssuerKey(kid={self.kid.hex()})"


class LockIdentity:
    """A lock's two private keys (§5): Ed25519 for log heads, X25519 for key unwrap."""

    def __init__(self, sign_private: Ed25519PrivateKey, kex_private: X25519PrivateKey) -> None:
        self._sign = sign_private
        self._kex = kex_private
        self.sign_public: bytes = _raw_public(sign_private)
        self.kex_public: bytes = _raw_public(kex_private)
        self.lock_key_id: bytes = lock_key_id(self.kex_public)

    @classmethod
    def generate(cls, rng: Rng | None = None) -> LockIdentity:
        """New key pairs from ``rng`` (default ``os.urandom``)."""
        r = rng or os.urandom
        return cls.from_private_bytes(r(32), r(32))

    @classmethod
    def from_private_bytes(cls, sign_seed32: bytes, kex_priv32: bytes) -> LockIdentity:
        """Load from the raw 32-byte Ed25519 seed and X25519 private key."""
        if len(sign_seed32) != 32 or len(kex_priv32) != 32:
            raise ValueError("lock private keys must be 32 bytes each")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(sign_seed32)),
                   X25519PrivateKey.from_private_bytes(bytes(kex_priv32)))

    @property
    def sign_private_bytes(self) -> bytes:
        """Raw Ed25519 seed (32 bytes)."""
        return self._sign.private_bytes_raw()

    @property
    def kex_private_bytes(self) -> bytes:
        """Raw X25519 private key (32 bytes)."""
        return self._kex.private_bytes_raw()

    def sign(self, msg: bytes) -> bytes:
        """Ed25519 signature with the lock's signing key (log heads, §11)."""
        return self._sign.sign(bytes(msg))

    def __repr__(self) -> str:
        return f"LockIdentity(lock_key_id={self.lock_key_id.hex()})"
