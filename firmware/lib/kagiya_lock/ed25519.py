"""Ed25519 (RFC 8032 §5.1): strict verification, key derivation and signing.

Verification rule (``verify``), the decision the lock applies (protocol §3 step 4):

* public key 32 bytes, signature 64 bytes, else False;
* S (second half of the signature, little-endian) must be < L, else False (§5.1.7);
* A must decode strictly (§5.1.3): y < p, a square root exists, and the
  encoding of x = 0 with sign bit 1 is refused. Non-canonical A is False;
* R is never decoded: the verifier computes R' = [S]B - [k]A, k = SHA-512(R || A || M)
  mod L, encodes R' canonically and compares 32 bytes with R. So a non-canonical
  R (y >= p, or x = 0 with sign bit 1) or an undecodable R never matches: False;
* the check is the cofactorless equation [S]B = R + [k]A (allowed by §5.1.7).
  Small-order (and mixed-order) A or R are NOT refused for being small-order:
  they are accepted exactly when that equation holds, as OpenSSL does. The lock's
  A values are provisioned trust anchors, so this never widens what it trusts.

Any other malformed input (arguments that are not bytes, bytearray or memoryview,
...) also gives False, never an exception - except ``MemoryError``: a lock short of
heap has not seen a bad signature, so that propagates (the handler answers
``INTERNAL``, which the rate limit does not count).

Arithmetic: :mod:`kagiya_lock._fe_viper` (viper, no allocation in the hot loops)
where the port has viper, else :mod:`kagiya_lock._fe_int` (big integers); see
:mod:`kagiya_lock._fe_select` and docs/performance.md.
"""

from kagiya_lock import _fe_select
from kagiya_lock.sha512 import sha512

_be = _fe_select.curve_backend()

L = (1 << 252) + 27742317777372353535851937790883648493
_BYTES = (bytes, bytearray, memoryview)


def verify(public_key, message, signature):
    """True iff ``signature`` is a valid strict Ed25519 signature (see module doc)."""
    try:
        if not (
            isinstance(public_key, _BYTES)
            and isinstance(message, _BYTES)
            and isinstance(signature, _BYTES)
        ):
            return False
        if len(public_key) != 32 or len(signature) != 64:
            return False
        public_key = bytes(public_key)
        signature = bytes(signature)
        r = signature[:32]
        s = int.from_bytes(signature[32:], "little")
        if s >= L:
            return False
        a = _be.decode(public_key)
        if a is None:
            return False
        k = int.from_bytes(sha512(r + public_key + bytes(message)), "little") % L
        return _be.encode(_be.dsm(s, k, a)) == r
    except MemoryError:
        raise
    except Exception:
        return False


def _expand(seed):
    if len(seed) != 32:
        raise ValueError("Ed25519 seed must be 32 bytes")
    h = sha512(bytes(seed))
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def public_key(seed):
    """The 32-byte public key of a 32-byte private seed (RFC 8032 §5.1.5)."""
    a, _ = _expand(seed)
    return _be.encode(_be.base_mul(a))


_last = [None, None]  # (seed, public key) of the last signer: the lock has one key


def sign(seed, message):
    """Deterministic Ed25519 signature (RFC 8032 §5.1.6): 64 bytes."""
    a, prefix = _expand(seed)
    message = bytes(message)
    seed = bytes(seed)
    if _last[0] == seed:
        pub = _last[1]
    else:
        pub = _be.encode(_be.base_mul(a))
        _last[0] = seed
        _last[1] = pub
    r = int.from_bytes(sha512(prefix + message), "little") % L
    rb = _be.encode(_be.base_mul(r))
    k = int.from_bytes(sha512(rb + pub + message), "little") % L
    s = (r + k * a) % L
    return rb + s.to_bytes(32, "little")
