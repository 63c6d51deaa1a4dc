"""Checks on a lock's public identity keys before they are registered (protocol §5).

* X25519 (key wrap): a low-order point gives an all-zero shared secret (RFC 7748 §6.1).
* Ed25519 (log and info signatures): the encoding must be canonical (RFC 8032 §5.1.3) and
  the point must not have small order: with a small-order key such as all zeros, the
  all-zero signature verifies for many messages, so anyone could forge the lock's log.
  Small order is tested through the birational map to Curve25519 (u = (1 + y) / (1 - y),
  RFC 7748 §4.1), which keeps the torsion: an X25519 exchange with a small-order u yields
  the all-zero secret that ``cryptography`` refuses. An encoding that is not on the curve at
  all is not refused here (no signature ever verifies under it, so it cannot be abused; some
  clients' tests register placeholder keys).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

P = 2**255 - 19


def usable_x25519(public: bytes) -> bool:
    """False for low-order X25519 points (an all-zero shared secret, RFC 7748 §6.1)."""
    try:
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        return False
    return True


def usable_ed25519(public: bytes) -> bool:
    """True for a canonical Ed25519 public key that does not have small order."""
    if len(public) != 32:
        return False
    y = int.from_bytes(public, "little") & ((1 << 255) - 1)
    if y >= P or y == 1:  # non-canonical, or the identity
        return False
    if y == P - 1 and public[31] & 0x80:  # x = 0 with the sign bit set: non-canonical
        return False
    u = (1 + y) * pow(1 - y, P - 2, P) % P
    return usable_x25519(u.to_bytes(32, "little"))


def usable_lock_keys(sign_public: bytes, kex_public: bytes) -> bool:
    """Both keys usable and distinct."""
    return sign_public != kex_public and usable_ed25519(sign_public) and usable_x25519(kex_public)
