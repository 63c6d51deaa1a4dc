"""HKDF-SHA-256 (RFC 5869)."""

from kagiya_lock.mac import hmac_sha256

_HASH_LEN = 32


def hkdf_sha256(ikm, salt, info, length):
    """RFC 5869 extract-then-expand; an empty ``salt`` means 32 zero bytes (§2.2)."""
    if length < 0 or length > 255 * _HASH_LEN:
        raise ValueError("hkdf length")
    if not salt:
        salt = bytes(_HASH_LEN)
    prk = hmac_sha256(salt, ikm)
    out = b""
    t = b""
    i = 1
    while len(out) < length:
        t = hmac_sha256(prk, t + bytes(info) + bytes((i,)))
        out += t
        i += 1
    return out[:length]
