"""Device-bound requests: a DPoP proof (RFC 9449) signed by the phone's device key.

Every request a phone makes with its token (``/v1/phone/*`` after enrollment) carries a
fresh proof in the ``DPoP`` header, so a leaked bearer token alone downloads nothing: the
server checks the proof against the device key the phone enrolled with. The proof is an
RFC 9449 §4.2 DPoP proof JWT (JWS compact serialisation, RFC 7515), any DPoP library can
make one:

* header ``{"typ": "dpop+jwt", "alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519",
  "x": <device public key>}}`` (RFC 8037 for EdDSA and OKP keys);
* claims ``jti`` (unique per proof, 16–64 characters), ``htm`` (the HTTP method), ``htu``
  (the request URI without query and fragment), ``iat`` (unix seconds) and ``ath``
  (base64url of SHA-256 of the access token, RFC 9449 §4.2).

The server accepts a proof once (``jti``, on every process), within ±300 s of its clock,
for the method and path of the request it comes with (only the path of ``htu`` is compared:
a TLS-terminating proxy changes scheme and host), and only under the device key of the
phone the token belongs to. :func:`make_proof` is the phone's side, :func:`verify_proof`
the server's; both are pure (the server keeps the ``jti`` cache).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "HEADER",
    "MAX_PROOF",
    "SKEW_S",
    "Proof",
    "ProofError",
    "access_token_hash",
    "make_proof",
    "verify_proof",
]

HEADER = "DPoP"
TYP = "dpop+jwt"
SKEW_S = 300
MAX_PROOF = 1024
_JTI = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class ProofError(ValueError):
    """A proof that is missing, malformed or does not fit the request (``detail`` says why)."""


@dataclass(frozen=True)
class Proof:
    """A verified proof: its unique ID and time."""

    jti: str
    iat: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ProofError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ProofError("not base64url") from None


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ProofError("not JSON") from None
    if not isinstance(value, dict):
        raise ProofError("not a JSON object")
    return value


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url(SHA-256(ASCII access token)) (RFC 9449 §4.2)."""
    return _b64(hashlib.sha256(access_token.encode("ascii")).digest())


def make_proof(device: Ed25519PrivateKey, method: str, url: str, *,
               access_token: str | None = None, now: int | None = None,
               jti: str | None = None) -> str:
    """A fresh DPoP proof for one request, signed with the device key (the ``DPoP`` header
    value). ``url`` may be a full URL or a path; query and fragment are dropped."""
    public = device.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    header = {"typ": TYP, "alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519",
                                                   "x": _b64(public)}}
    parts = urlsplit(url)
    htu = parts._replace(query="", fragment="").geturl()
    claims: dict[str, Any] = {"jti": jti or _b64(os.urandom(18)), "htm": method.upper(),
                              "htu": htu, "iat": int(time.time()) if now is None else now}
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    signing_input = ".".join(
        _b64(json.dumps(x, separators=(",", ":")).encode()) for x in (header, claims))
    return signing_input + "." + _b64(device.sign(signing_input.encode("ascii")))


def verify_proof(proof: str | None, *, device_public: bytes, method: str, path: str,
                 access_token: str | None, now: int, skew: int = SKEW_S) -> Proof:
    """Check a proof for one request (RFC 9449 §4.3) against the phone's device key.

    Raises :class:`ProofError` when it is missing, too long, malformed, not signed by
    ``device_public``, for another method, path or token, or outside ``now ± skew``.
    The caller then records ``jti`` as used (a second use is a replay).
    """
    if not proof:
        raise ProofError("a DPoP proof header is required")
    if len(proof) > MAX_PROOF or not proof.isascii():
        raise ProofError("the proof is too long or not ASCII")
    pieces = proof.split(".")
    if len(pieces) != 3:
        raise ProofError("the proof is not a compact JWS")
    header, claims = _json(_unb64(pieces[0])), _json(_unb64(pieces[1]))
    signature = _unb64(pieces[2])
    jwk = header.get("jwk")
    if header.get("typ") != TYP or header.get("alg") != "EdDSA" or not isinstance(jwk, dict):
        raise ProofError("the proof header must be typ dpop+jwt, alg EdDSA, with a jwk")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "d" in jwk \
            or not isinstance(jwk.get("x"), str) or _unb64(jwk["x"]) != bytes(device_public):
        raise ProofError("the proof is not made with this phone's device key")
    try:
        Ed25519PublicKey.from_public_bytes(bytes(device_public)).verify(
            signature, f"{pieces[0]}.{pieces[1]}".encode("ascii"))
    except (InvalidSignature, ValueError):
        raise ProofError("the proof's signature does not verify") from None
    jti, iat, htm, htu = (claims.get(k) for k in ("jti", "iat", "htm", "htu"))
    if not isinstance(jti, str) or not _JTI.match(jti):
        raise ProofError("jti must be 16-64 base64url characters")
    if type(iat) is not int:
        raise ProofError("iat must be an integer")
    if abs(iat - now) > skew:
        raise ProofError("the proof's iat is too far from the server's clock")
    if htm != method.upper():
        raise ProofError("the proof is for another HTTP method")
    if not isinstance(htu, str) or urlsplit(htu).path != path:
        raise ProofError("the proof is for another URI")
    expected = None if access_token is None else access_token_hash(access_token)
    if claims.get("ath") != expected:
        raise ProofError("the proof is for another access token")
    return Proof(jti=jti, iat=iat)
