"""Digital keys: issue and verify the COSE_Sign1/CWT credential (docs/protocol.md §3).

:func:`issue_credential` is what the key server calls; :func:`verify_credential` is the
lock's decision function in the normative §3 order, used by the simulator, tools and
tests (the firmware implements the same order; the golden vectors pin both).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import IntFlag
from typing import Any, Protocol

from . import cbor, cose
from .errors import ErrorCode, ProtocolError
from .keys import IssuerKey, x25519_public
from .keys import lock_key_id as _lock_key_id
from .keywrap import unwrap_secret, wrap_secret
from .protocol import (
    CT_CWT,
    CTI_LEN,
    LOCK_ID_PATTERN,
    MAX_CREDENTIAL,
    OPERATOR_ID_MAX,
    SECRET_LEN,
    Claim,
    Command,
    Permission,
)
from .protocol import MAX_LIFETIME_S as MAX_LIFETIME

# claim keys as plain ints (map keys of the claims set)
ISS, SUB, AUD, EXP, NBF, IAT, CTI, CNF = (int(c) for c in (
    Claim.ISS, Claim.SUB, Claim.AUD, Claim.EXP, Claim.NBF, Claim.IAT, Claim.CTI, Claim.CNF))
KGY_PERM = int(Claim.KGY_PERM)
KGY_RV = int(Claim.KGY_RV)
KGY_OP = int(Claim.KGY_OP)
KGY_GEN = int(Claim.KGY_GEN)

LOCK_ID_RE = re.compile(LOCK_ID_PATTERN)
USER_ID_RE = re.compile(rf"[\x20-\x7e]{{1,{OPERATOR_ID_MAX}}}")
OPERATOR_ID_RE = USER_ID_RE  # §2: 1–64 printable ASCII


class RevocationCheck(Protocol):
    """What the §3 step 8 needs of a lock's revocation state (see signed.RevocationState)."""

    def revoked(self, cti: bytes, generation: int) -> bool:
        """True when the key ``cti`` issued at ``generation`` is revoked."""
        ...


def permission_for(command: int) -> Permission:
    """The permission a command needs (§8 table); UNKNOWN_MESSAGE for an unknown command."""
    try:
        return Command(int(command)).permission
    except ValueError:
        raise ProtocolError(ErrorCode.UNKNOWN_MESSAGE, f"unknown command {command}") from None


@dataclass(frozen=True)
class Claims:
    """The CWT claims of a digital key (without ``cnf``)."""

    iss: str
    sub: str
    aud: str
    nbf: int
    exp: int
    iat: int
    cti: bytes
    permissions: Permission
    request_version: int
    operator: str
    generation: int


@dataclass
class IssuedKey:
    """A freshly issued key: the credential bytes and the secret K the phone receives."""

    credential: bytes
    cti: bytes
    secret: bytes
    claims: Claims


@dataclass
class VerifiedKey:
    """A credential that passed verification; ``secret`` is K when unwrap was requested."""

    claims: Claims
    secret: bytes | None


def is_lock_id(value: object) -> bool:
    """True if ``value`` is a valid lock ID (§2: 4–20 of ``A–Z 0–9 -``)."""
    return isinstance(value, str) and LOCK_ID_RE.fullmatch(value) is not None


def is_user_id(value: object) -> bool:
    """True if ``value`` is a valid user ID (§2: 1–64 printable ASCII)."""
    return isinstance(value, str) and USER_ID_RE.fullmatch(value) is not None


def is_operator_id(value: object) -> bool:
    """True if ``value`` is a valid operator ID (§2: 1–64 printable ASCII)."""
    return isinstance(value, str) and OPERATOR_ID_RE.fullmatch(value) is not None


def claims_map(claims: Claims, cnf: Mapping[int, Any]) -> dict[int, Any]:
    """The CWT claims set (§3 table) as a CBOR-able map."""
    return {ISS: claims.iss, SUB: claims.sub, AUD: claims.aud, EXP: claims.exp,
            NBF: claims.nbf, IAT: claims.iat, CTI: claims.cti, CNF: dict(cnf),
            KGY_PERM: int(claims.permissions), KGY_RV: claims.request_version,
            KGY_OP: claims.operator, KGY_GEN: claims.generation}


def sign_claims(issuer: IssuerKey, claims: Mapping[Any, Any] | bytes) -> bytes:
    """Low level: COSE_Sign1 ``{1: -8, 3: 61, 4: kid}`` over a claims map or raw payload.

    No validation: test and vector code uses this to build deliberately bad credentials.
    """
    payload = claims if isinstance(claims, bytes) else cbor.dumps(dict(claims))
    return cose.sign1(issuer, {cose.HDR_ALG: cose.ALG_EDDSA, cose.HDR_CONTENT_TYPE: CT_CWT,
                               cose.HDR_KID: issuer.kid}, payload)


def _claims(*, iss: str, sub: str, aud: str, nbf: int, exp: int, iat: int, permissions: int,
            request_version: int, cti: bytes, operator: str, generation: int) -> Claims:
    """Validated claims (INVALID_CLAIMS for an inconsistent window or bad identifiers)."""
    if not is_lock_id(aud):
        raise ProtocolError(ErrorCode.INVALID_CLAIMS, f"invalid lock ID {aud!r}")
    if not is_user_id(sub):
        raise ProtocolError(ErrorCode.INVALID_CLAIMS, f"invalid user ID {sub!r}")
    if not is_operator_id(operator):
        raise ProtocolError(ErrorCode.INVALID_CLAIMS, f"invalid operator ID {operator!r}")
    if not isinstance(iss, str) or len(iss.encode()) > cbor.MAX_TEXT:
        raise ProtocolError(ErrorCode.INVALID_CLAIMS, "issuer name longer than 64 bytes")
    for name, value in (("nbf", nbf), ("exp", exp), ("iat", iat),
                        ("request_version", request_version), ("permissions", permissions),
                        ("generation", generation)):
        if (type(value) is not int and not isinstance(value, IntFlag)) or value < 0:
            raise ProtocolError(ErrorCode.INVALID_CLAIMS, f"{name} must be a uint")
    if nbf >= exp or exp - nbf > MAX_LIFETIME:
        raise ProtocolError(ErrorCode.INVALID_CLAIMS, "need nbf < exp and a lifetime <= 400 d")
    if len(cti) != CTI_LEN:
        raise ProtocolError(ErrorCode.INVALID_CLAIMS, "cti must be 16 bytes")
    return Claims(iss=iss, sub=sub, aud=aud, nbf=nbf, exp=exp, iat=iat, cti=cti,
                  permissions=Permission(int(permissions)), request_version=request_version,
                  operator=operator, generation=generation)


def _signed(issuer: IssuerKey, claims: Claims, cnf: Mapping[int, Any]) -> bytes:
    credential = sign_claims(issuer, claims_map(claims, cnf))
    if len(credential) > MAX_CREDENTIAL:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"credential of {len(credential)} bytes")
    return credential


def sign_credential(issuer: IssuerKey, *, iss: str, sub: str, aud: str, nbf: int, exp: int,
                    iat: int, permissions: int, request_version: int, cnf: Mapping[int, Any],
                    operator: str, generation: int = 0, cti: bytes | None = None,
                    rng: Callable[[int], bytes] | None = None) -> tuple[bytes, bytes]:
    """Sign a digital key around a key wrap made by the phone (§3, §4): the key server's
    side of key custody, which never sees the secret K. The key names ``operator`` and the
    lock's key ``generation`` (the lock checks both, §3 and §7). ``cnf`` is the wrap as returned by
    :func:`kagiya.sdk.keywrap.check_wrap_form`. Returns ``(credential, cti)``; ``cti`` is
    drawn from ``rng`` (default ``os.urandom``) when not given. Raises ProtocolError like
    :func:`issue_credential`."""
    cti = (rng or os.urandom)(16) if cti is None else bytes(cti)
    claims = _claims(iss=iss, sub=sub, aud=aud, nbf=nbf, exp=exp, iat=iat,
                     permissions=permissions, request_version=request_version, cti=cti,
                     operator=operator, generation=generation)
    return _signed(issuer, claims, cnf), cti


def issue_credential(issuer: IssuerKey, *, iss: str, sub: str, aud: str, nbf: int, exp: int,
                     iat: int, permissions: int, request_version: int,
                     lock_kex_public: bytes, operator: str, generation: int = 0,
                     cti: bytes | None = None, secret: bytes | None = None,
                     rng: Callable[[int], bytes] | None = None) -> IssuedKey:
    """Issue a digital key for one lock, drawing and wrapping its secret here (§3, §4):
    for tests, vectors and tools that play both the phone and the issuer. (The key server
    uses :func:`sign_credential` with the phone's own wrap.)

    ``cti`` (16 bytes) and ``secret`` (32 bytes) are drawn from ``rng`` (default
    ``os.urandom``) when not given, in that order, followed by the key wrap's ephemeral
    key and IV. Raises ProtocolError: INVALID_CLAIMS for an inconsistent window or bad
    identifiers, TOO_LARGE if the credential would exceed 640 bytes.
    """
    r = rng or os.urandom
    claims_in: dict[str, Any] = {"iss": iss, "sub": sub, "aud": aud, "nbf": nbf, "exp": exp,
                                 "iat": iat, "permissions": permissions,
                                 "request_version": request_version, "operator": operator,
                                 "generation": generation}
    _claims(**claims_in, cti=bytes(CTI_LEN))  # validate before drawing anything
    cti = r(CTI_LEN) if cti is None else bytes(cti)
    secret = r(SECRET_LEN) if secret is None else bytes(secret)
    if len(secret) != SECRET_LEN:
        raise ProtocolError(ErrorCode.INVALID_CLAIMS, "cti must be 16 bytes, secret 32")
    claims = _claims(**claims_in, cti=cti)
    credential = _signed(issuer, claims, wrap_secret(secret, lock_kex_public, rng=r))
    return IssuedKey(credential=credential, cti=cti, secret=secret, claims=claims)


def _uint(v: object) -> bool:
    return type(v) is int and v >= 0


def _parse_claims(payload: bytes) -> tuple[Claims, dict[Any, Any]]:
    """§3 step 5: every required claim with the right type → (Claims, cnf) else MALFORMED."""
    try:
        c = cbor.loads(payload, max_size=MAX_CREDENTIAL)
    except ProtocolError as e:
        raise ProtocolError(ErrorCode.MALFORMED, f"claims: {e.detail}") from None
    if not isinstance(c, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "claims are not a map")
    for key in (EXP, NBF, IAT, KGY_PERM, KGY_RV, KGY_GEN):
        if not _uint(c.get(key)):
            raise ProtocolError(ErrorCode.MALFORMED, f"claim {key} missing or not a uint")
    for key in (ISS, SUB, AUD, KGY_OP):
        if not isinstance(c.get(key), str):
            raise ProtocolError(ErrorCode.MALFORMED, f"claim {key} missing or not text")
    cti = c.get(CTI)
    if not isinstance(cti, bytes) or len(cti) != CTI_LEN:
        raise ProtocolError(ErrorCode.MALFORMED, "cti missing or not 16 bytes")
    cnf = c.get(CNF)
    if not isinstance(cnf, dict) or 2 not in cnf:
        raise ProtocolError(ErrorCode.MALFORMED, "cnf missing or not an Encrypted_COSE_Key")
    claims = Claims(iss=c[ISS], sub=c[SUB], aud=c[AUD], nbf=c[NBF], exp=c[EXP], iat=c[IAT],
                    cti=cti, permissions=Permission(c[KGY_PERM]), request_version=c[KGY_RV],
                    operator=c[KGY_OP], generation=c[KGY_GEN])
    return claims, cnf


def verify_credential(credential: bytes, anchors: Mapping[bytes, bytes], lock_id: str,
                      now: int, *, operator: str | None = None,
                      revoked: Collection[bytes] = (),
                      revocations: RevocationCheck | None = None,
                      lock_kex_private: bytes | None = None,
                      lock_key_id: bytes | None = None,
                      command: int | None = None) -> VerifiedKey:
    """The §3 decision function: checks in the normative (v2) order, first failure wins:
    every cheap field (size, shape, alg, content type, issuer, claims, audience, operator,
    window, revocation) before the Ed25519 signature, so a stale or foreign key costs no
    verify.

    ``anchors`` maps issuer kid → Ed25519 public key. ``operator`` is the lock's operator
    (``WRONG_OPERATOR`` right after the audience; not checked when None). Step 8 refuses a
    ``cti`` in ``revoked`` and a key ``revocations`` revokes (listed or below the
    generation floor). With ``command`` the permission
    (step 9) is checked; with ``lock_kex_private`` the secret is unwrapped (step 10's
    unwrap; ``lock_key_id`` defaults to the one derived from that private key).
    Step 5 is followed by the §3 claim constraints (``INVALID_CLAIMS``: nbf < exp,
    lifetime ≤ 400 days) before the audience check, as the firmware does.
    Raises ProtocolError with the §13 code of the first failing check.
    """
    data = bytes(credential)
    if len(data) > MAX_CREDENTIAL:
        raise ProtocolError(ErrorCode.TOO_LARGE,
                            f"credential of {len(data)} bytes > {MAX_CREDENTIAL}")
    parts = cose.parse_sign1(data, MAX_CREDENTIAL)
    public = cose.check_header(parts, anchors, CT_CWT)
    claims, cnf = _parse_claims(parts.payload)
    if claims.nbf >= claims.exp or claims.exp - claims.nbf > MAX_LIFETIME:
        raise ProtocolError(ErrorCode.INVALID_CLAIMS, "nbf >= exp or lifetime > 400 days")
    if claims.aud != lock_id:
        raise ProtocolError(ErrorCode.WRONG_LOCK, f"key is for lock {claims.aud!r}")
    if operator is not None and claims.operator != operator:
        raise ProtocolError(ErrorCode.WRONG_OPERATOR,
                            f"key is for operator {claims.operator!r}")
    if now < claims.nbf:
        raise ProtocolError(ErrorCode.NOT_YET_VALID, f"now {now} < nbf {claims.nbf}")
    if now >= claims.exp:
        raise ProtocolError(ErrorCode.EXPIRED, f"now {now} >= exp {claims.exp}")
    if claims.cti in {bytes(x) for x in revoked} or (
            revocations is not None
            and revocations.revoked(claims.cti, claims.generation)):
        raise ProtocolError(ErrorCode.REVOKED, f"key {claims.cti.hex()} is revoked")
    cose.check_signature(parts, public)
    if command is not None:
        need = permission_for(command)
        if need & ~claims.permissions:
            raise ProtocolError(ErrorCode.PERMISSION_DENIED,
                                f"command {command} needs {need!r}")
    secret = None
    if lock_kex_private is not None:
        kid = lock_key_id if lock_key_id is not None else _lock_key_id(
            x25519_public(lock_kex_private))
        secret = unwrap_secret(cnf, lock_kex_private, kid)
    return VerifiedKey(claims=claims, secret=secret)


def credential_cnf(credential: bytes) -> bytes:
    """The canonical CBOR of a credential's ``cnf`` claim (its key wrap), WITHOUT checking
    the signature: how a phone finds which of its own secrets a downloaded key wraps.
    Raises ProtocolError(MALFORMED/TOO_LARGE) if the bytes are not a Kagiya credential."""
    data = bytes(credential)
    if len(data) > MAX_CREDENTIAL:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"credential of {len(data)} bytes > 640")
    return cbor.dumps(_parse_claims(cose.parse_sign1(data, MAX_CREDENTIAL).payload)[1])


def decode_claims_unverified(credential: bytes) -> Claims:
    """Read the claims of a credential WITHOUT checking its signature (display only).

    Raises ProtocolError(MALFORMED/TOO_LARGE) if the bytes are not a Kagiya credential.
    """
    data = bytes(credential)
    if len(data) > MAX_CREDENTIAL:
        raise ProtocolError(ErrorCode.TOO_LARGE,
                            f"credential of {len(data)} bytes > {MAX_CREDENTIAL}")
    parts = cose.parse_sign1(data, MAX_CREDENTIAL)
    return _parse_claims(parts.payload)[0]
