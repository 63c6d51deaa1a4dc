"""COSE_Sign1 with EdDSA for Kagiya's signed objects (RFC 9052 §4, RFC 9053 §2.2).

Used by credentials (§3), time statements (§6) and revocation updates (§7). Verification
applies the §3 steps 1–4 in order: structure (``MALFORMED``/``TOO_LARGE``), ``alg``
(``WRONG_ALGORITHM``), content type (``WRONG_CONTENT_TYPE``), ``kid`` (``UNKNOWN_ISSUER``),
then a *strict* Ed25519 check (``BAD_SIGNATURE``): 64-byte signature, S < L, canonical
encodings of A and R (RFC 8032 §5.1.3 and §5.1.7), before the curve equation is checked by
``cryptography``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import cbor
from .errors import ErrorCode, ProtocolError
from .keys import IssuerKey
from .protocol import ALG_EDDSA, HDR_ALG, HDR_CONTENT_TYPE, HDR_KID

# RFC 8032 §5.1: field prime p and group order L
P25519 = 2**255 - 19
L25519 = 2**252 + 27742317777372353535851937790883648493


def _canonical_point(enc: bytes) -> bool:
    """True if ``enc`` is a canonical point encoding (RFC 8032 §5.1.3 steps 1 and 4).

    Refuses y >= p, and x = 0 with the sign bit set (possible only for y = 1 or y = p-1).
    Whether y is on the curve at all is left to the full verification.
    """
    if len(enc) != 32:
        return False
    y = int.from_bytes(enc, "little") & ((1 << 255) - 1)
    if y >= P25519:
        return False
    return not (enc[31] & 0x80 and y in (1, P25519 - 1))


def ed25519_verify_strict(public: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification with the strict encoding rules of §3 step 4."""
    if len(public) != 32 or len(signature) != 64:
        return False
    if int.from_bytes(signature[32:], "little") >= L25519:
        return False
    if not _canonical_point(public) or not _canonical_point(signature[:32]):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes(public)).verify(bytes(signature),
                                                                 bytes(message))
    except (InvalidSignature, ValueError):
        return False
    return True


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The RFC 9052 §4.4 Sig_structure for COSE_Sign1 with empty external AAD."""
    return cbor.dumps(["Signature1", protected, b"", payload])


def sign1(issuer: IssuerKey, protected: Mapping[int, Any] | bytes, payload: bytes,
          unprotected: Mapping[Any, Any] | None = None) -> bytes:
    """Build a tagged (18) COSE_Sign1 over ``payload``.

    ``protected`` is a header map (encoded deterministically) or already-encoded bytes
    (tests use this to produce deliberately odd objects).
    """
    pb = protected if isinstance(protected, bytes) else cbor.dumps(dict(protected))
    sig = issuer.sign(sig_structure(pb, payload))
    return cbor.dumps(cbor.Tag(cbor.TAG_COSE_SIGN1,
                               [pb, dict(unprotected or {}), bytes(payload), sig]))


@dataclass(frozen=True)
class Sign1:
    """A parsed (not yet verified) COSE_Sign1."""

    protected_bytes: bytes
    protected: dict[Any, Any]
    unprotected: dict[Any, Any]
    payload: bytes
    signature: bytes


def parse_sign1(data: bytes, max_size: int) -> Sign1:
    """§3 step 1: size, strict CBOR, tag 18, four-element array of the right types."""
    obj = cbor.loads(data, max_size=max_size)
    if not isinstance(obj, cbor.Tag) or obj.tag != cbor.TAG_COSE_SIGN1:
        raise ProtocolError(ErrorCode.MALFORMED, "not a tagged COSE_Sign1 (tag 18)")
    v = obj.value
    if not isinstance(v, list) or len(v) != 4:
        raise ProtocolError(ErrorCode.MALFORMED, "COSE_Sign1 is not a 4-element array")
    pb, unprot, payload, sig = v
    if not (isinstance(pb, bytes) and isinstance(unprot, dict)
            and isinstance(payload, bytes) and isinstance(sig, bytes)):
        raise ProtocolError(ErrorCode.MALFORMED, "COSE_Sign1 element of the wrong type")
    prot: Any = cbor.loads(pb, max_size=max_size) if pb else {}
    if not isinstance(prot, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "protected header is not a map")
    return Sign1(pb, prot, unprot, payload, sig)


def check_header(parts: Sign1, anchors: Mapping[bytes, bytes], content_type: int | str
                 ) -> bytes:
    """§3 steps 2–3 on a parsed object (alg, content type, issuer); returns the issuer's
    public key. Cheap: v2 verifiers check every cheap field before the signature."""
    alg = parts.protected.get(HDR_ALG)
    if type(alg) is not int or alg != ALG_EDDSA:
        raise ProtocolError(ErrorCode.WRONG_ALGORITHM, f"alg {alg!r}, expected EdDSA (-8)")
    ct = parts.protected.get(HDR_CONTENT_TYPE)
    if type(ct) is not type(content_type) or ct != content_type:
        raise ProtocolError(ErrorCode.WRONG_CONTENT_TYPE,
                            f"content type {ct!r}, expected {content_type!r}")
    kid = parts.protected.get(HDR_KID)
    public = anchors.get(kid) if isinstance(kid, bytes) else None
    if public is None:
        shown = kid.hex() if isinstance(kid, bytes) else repr(kid)
        raise ProtocolError(ErrorCode.UNKNOWN_ISSUER, f"kid {shown} is not a trust anchor")
    return public


def check_signature(parts: Sign1, public: bytes) -> None:
    """§3 step 4: the strict Ed25519 signature (BAD_SIGNATURE)."""
    tbs = sig_structure(parts.protected_bytes, parts.payload)
    if not ed25519_verify_strict(public, tbs, parts.signature):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "issuer signature invalid")


def check_sign1(parts: Sign1, anchors: Mapping[bytes, bytes], content_type: int | str) -> bytes:
    """§3 steps 2–4 on a parsed object; returns the verified payload bytes."""
    check_signature(parts, check_header(parts, anchors, content_type))
    return parts.payload


def verify_sign1(data: bytes, anchors: Mapping[bytes, bytes], content_type: int | str,
                 max_size: int) -> bytes:
    """Parse and verify a signed object (§3 steps 1–4); returns the payload bytes."""
    return check_sign1(parse_sign1(data, max_size), anchors, content_type)
