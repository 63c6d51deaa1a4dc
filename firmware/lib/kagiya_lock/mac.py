"""HMAC-SHA-256 (RFC 2104, FIPS 198-1) and a constant-time byte comparison.

The padded keys are built in one preallocated buffer and the message may be given in
parts (``hmac_parts``), so a MAC over a header and a few fields allocates only the two
hash objects and their digests (the lock computes two per command).
"""

import hashlib

from micropython import const

_BLOCK = const(64)
_PAD = bytearray(_BLOCK)


def _padded(key, c):
    """``_PAD`` = (key zero-padded to 64 bytes) XOR c; ``key`` at most 64 bytes."""
    p = _PAD
    n = len(key)
    for i in range(n):
        p[i] = key[i] ^ c
    for i in range(n, _BLOCK):
        p[i] = c
    return p


def hmac_parts(key, parts):
    """HMAC-SHA-256 under ``key`` of the concatenation of the byte strings ``parts``."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    inner = hashlib.sha256(_padded(key, 0x36))
    for p in parts:
        inner.update(p)
    ih = inner.digest()
    outer = hashlib.sha256(_padded(key, 0x5C))
    outer.update(ih)
    return outer.digest()


def hmac_sha256(key, msg):
    """HMAC-SHA-256 of ``msg`` under ``key`` (RFC 2104): 32 bytes."""
    return hmac_parts(key, (msg,))


def compare_digest(a, b):
    """True iff ``a`` == ``b``; time depends only on the lengths (no early exit)."""
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0
