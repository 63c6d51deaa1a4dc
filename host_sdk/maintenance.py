"""Maintenance authorisations (docs/firmware.md "Lockdown and maintenance").

A locked-down lock re-opens its serial REPL (or lets an installer change its trust
anchors) only for a COSE_Sign1 signed by one of its trust anchors, content type
``application/kgy-maintenance+cbor``, over::

    {2: installer (text), 3: lock ID, 4: exp, 6: iat, 7: nonce (16 bytes, the lock's
     one-use challenge), -65541: operator ID (the lock's own, else WRONG_OPERATOR),
     -65546: scope (array of "repl" / "anchors" / "provision")}

with ``exp - iat <= 900`` s. The lock refuses it with the §13 codes UNKNOWN_ISSUER,
BAD_SIGNATURE, WRONG_CONTENT_TYPE, MALFORMED, WRONG_LOCK, WRONG_OPERATOR, INVALID_CLAIMS,
EXPIRED or
STALE_CHALLENGE (not its current challenge, or a challenge used already).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import cbor, cose
from .credential import is_lock_id
from .errors import ErrorCode, ProtocolError
from .keys import IssuerKey
from .protocol import (
    CT_MAINTENANCE,
    MAINTENANCE_MAX_LIFETIME_S,
    MAINTENANCE_MAX_SIZE,
    MAINTENANCE_SCOPES,
    NONCE_LEN,
    TIME_NONCE,
    Claim,
)
from .signed import payload_map

SCOPES = MAINTENANCE_SCOPES
MAX_SIZE = MAINTENANCE_MAX_SIZE  #: the lock reads at most this many bytes of an authorisation


@dataclass(frozen=True)
class Maintenance:
    """The claims of a verified maintenance authorisation."""

    installer: str
    lock_id: str
    iat: int
    exp: int
    nonce: bytes
    scope: tuple[str, ...]
    operator: str


def sign_maintenance(issuer: IssuerKey, lock_id: str, nonce: bytes, scope: Sequence[str],
                     installer: str, iat: int, ttl_s: int = 600, *, operator: str) -> bytes:
    """A maintenance authorisation for ``lock_id`` of ``operator`` answering the lock's
    ``nonce``."""
    if not is_lock_id(lock_id):
        raise ValueError("invalid lock ID")
    if len(nonce) != NONCE_LEN:
        raise ValueError("the lock's challenge is 16 bytes")
    if not scope or any(s not in SCOPES for s in scope):
        raise ValueError(f"scope must be a non-empty subset of {SCOPES}")
    if not 0 < ttl_s <= MAINTENANCE_MAX_LIFETIME_S:
        raise ValueError(f"lifetime must be 1-{MAINTENANCE_MAX_LIFETIME_S} s")
    payload = cbor.dumps({Claim.SUB: installer, Claim.AUD: lock_id, Claim.EXP: iat + ttl_s,
                          Claim.IAT: iat, TIME_NONCE: bytes(nonce), Claim.KGY_OP: operator,
                          Claim.KGY_MAINT_SCOPE: list(scope)})
    prot = {cose.HDR_ALG: cose.ALG_EDDSA, cose.HDR_CONTENT_TYPE: CT_MAINTENANCE,
            cose.HDR_KID: issuer.kid}
    return cose.sign1(issuer, prot, payload)


def verify_maintenance(data: bytes, anchors: Mapping[bytes, bytes]) -> Maintenance:
    """Check an authorisation as the lock does, apart from its clock and challenge
    (``kagiya_lock.maintenance.check``); raises :class:`ProtocolError` with the §13 code."""
    payload = cose.verify_sign1(data, anchors, CT_MAINTENANCE, MAX_SIZE)
    p = payload_map(payload, MAX_SIZE)
    who, lid, exp, iat, nonce, scope = (p.get(int(k)) for k in (
        Claim.SUB, Claim.AUD, Claim.EXP, Claim.IAT, TIME_NONCE, Claim.KGY_MAINT_SCOPE))
    operator = p.get(int(Claim.KGY_OP))
    if not (isinstance(who, str) and isinstance(lid, str) and type(exp) is int
            and isinstance(operator, str)
            and type(iat) is int and isinstance(nonce, bytes) and isinstance(scope, list)
            and all(s in SCOPES for s in scope)):
        raise ProtocolError(ErrorCode.MALFORMED, "claims of the wrong type")
    if exp <= iat or exp - iat > MAINTENANCE_MAX_LIFETIME_S:
        raise ProtocolError(ErrorCode.INVALID_CLAIMS, "lifetime out of range")
    return Maintenance(who, lid, iat, exp, nonce, tuple(scope), operator)
