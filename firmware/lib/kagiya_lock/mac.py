"""HMAC-SHA-256 (RFC 2104, FIPS 198-1) and a constant-time byte comparison."""

import hashlib

_BLOCK = 64


def _xor_const(key, c):
    return bytes(b ^ c for b in key)


def hmac_sha256(key, msg):
    """HMAC-SHA-256 of ``msg`` under ``key`` (RFC 2104): 32 bytes."""
    key = bytes(key)
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(_xor_const(key, 0x36))
    inner.update(msg)
    outer = hashlib.sha256(_xor_const(key, 0x5C))
    outer.update(inner.digest())
    return outer.digest()


def compare_digest(a, b):
    """True iff ``a`` == ``b``; time depends only on the lengths (no early exit)."""
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0
