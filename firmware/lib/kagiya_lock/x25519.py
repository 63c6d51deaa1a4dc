"""X25519 (RFC 7748 §5): Diffie-Hellman on Curve25519.

``x25519(scalar, u)``: the scalar is clamped (§5), the u-coordinate's top bit is
masked and non-canonical values are reduced, then a constant-time Montgomery
ladder with arithmetic conditional swaps (no secret-dependent branches or
indexing) computes the result. The caller checks for an all-zero output
(protocol §4: BAD_KEY_WRAP).
"""

from kagiya_lock import _fe_select

_be = _fe_select.curve_backend()

_BASE_U = b"\x09" + bytes(31)


def x25519(scalar, u):
    """RFC 7748 X25519 function: 32-byte scalar, 32-byte u -> 32-byte u."""
    if len(scalar) != 32 or len(u) != 32:
        raise ValueError("X25519 inputs must be 32 bytes")
    k = int.from_bytes(bytes(scalar), "little")
    k &= (1 << 255) - 8
    k |= 1 << 254
    un = int.from_bytes(bytes(u), "little") & ((1 << 255) - 1)
    return _be.x25519(k, un).to_bytes(32, "little")


def public_key(private):
    """X25519 public key (u-coordinate of [k]9) of a 32-byte private key."""
    return x25519(private, _BASE_U)
