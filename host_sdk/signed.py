"""Server-signed time statements (§6) and revocation updates (§7).

Both are COSE_Sign1/EdDSA objects like a credential, distinguished by their content type;
verification runs §3 steps 1–4 (a credential or other object gives WRONG_CONTENT_TYPE).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import cbor, cose
from .credential import is_lock_id
from .errors import ErrorCode, ProtocolError
from .keys import IssuerKey
from .protocol import (
    CT_REVOCATION,
    CT_TIME,
    MAX_MESSAGE,
    MAX_REVOCATION_ENTRIES,
    TIME_NONCE,
    Claim,
)

MAX_SIGNED = MAX_MESSAGE
IAT = int(Claim.IAT)
AUD = int(Claim.AUD)
NONCE = TIME_NONCE
RV_VERSION = int(Claim.KGY_RV_VERSION)
RV_ENTRIES = int(Claim.KGY_RV_ENTRIES)


def _protected(issuer: IssuerKey, content_type: str) -> dict[int, Any]:
    return {cose.HDR_ALG: cose.ALG_EDDSA, cose.HDR_CONTENT_TYPE: content_type,
            cose.HDR_KID: issuer.kid}


def _uint(v: object) -> bool:
    return type(v) is int and v >= 0


def _payload_map(payload: bytes) -> dict[Any, Any]:
    try:
        value = cbor.loads(payload, max_size=MAX_SIGNED)
    except ProtocolError as e:
        if e.code == ErrorCode.TOO_LARGE:
            raise
        raise ProtocolError(ErrorCode.MALFORMED, f"payload: {e.detail}") from None
    if not isinstance(value, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "payload is not a map")
    return value


def sign_time_statement(issuer: IssuerKey, t: int, *, lock_id: str | None = None,
                        nonce: bytes | None = None) -> bytes:
    """A time statement (§6): the issuer vouches that the time is ``t`` (unix seconds).

    Plain (``{6: t}``) by default: a lower bound any lock may raise its clock to. With
    ``lock_id`` and ``nonce`` (the lock's current session nonce) it is *fresh*
    (``{3: lock_id, 6: t, 7: nonce}``, v2): signed after the lock drew the nonce, so the
    lock may take ``t`` as the current time, also backwards (power-cut recovery).
    """
    if not _uint(t):
        raise ValueError("time must be a uint")
    payload: dict[int, Any] = {IAT: t}
    if lock_id is not None or nonce is not None:
        if lock_id is None or not is_lock_id(lock_id) or nonce is None or len(nonce) != 16:
            raise ValueError("a fresh time statement needs a lock ID and a 16-byte nonce")
        payload.update({AUD: lock_id, NONCE: bytes(nonce)})
    return cose.sign1(issuer, _protected(issuer, CT_TIME), cbor.dumps(payload))


def verify_time_statement(data: bytes, anchors: Mapping[bytes, bytes]) -> int:
    """Verify a time statement; returns its time. ProtocolError as §3 steps 1–3, MALFORMED
    for a payload without a uint key 6 (or a fresh one without a lock ID and 16-byte
    nonce), then step 4 (BAD_SIGNATURE)."""
    return verify_time(data, anchors)[0]


def verify_time(data: bytes, anchors: Mapping[bytes, bytes]
                ) -> tuple[int, str | None, bytes | None]:
    """Verify a time statement; returns ``(t, lock_id, nonce)`` - the last two are None
    for a plain statement (see :func:`sign_time_statement`)."""
    parts = cose.parse_sign1(bytes(data), MAX_SIGNED)
    public = cose.check_header(parts, anchors, CT_TIME)
    p = _payload_map(parts.payload)
    t = p.get(IAT)
    if not _uint(t):
        raise ProtocolError(ErrorCode.MALFORMED, "time statement without a uint iat")
    lock_id, nonce = p.get(AUD), p.get(NONCE)
    if lock_id is not None or nonce is not None:
        if not isinstance(lock_id, str) or not isinstance(nonce, bytes) or len(nonce) != 16:
            raise ProtocolError(ErrorCode.MALFORMED, "fresh time statement fields mistyped")
    cose.check_signature(parts, public)
    return int(t), lock_id, nonce  # type: ignore[arg-type]


@dataclass
class RevocationUpdate:
    """A full snapshot of the unexpired revoked keys of one lock (§7)."""

    lock_id: str
    version: int
    iat: int
    entries: list[tuple[bytes, int]] = field(default_factory=list)

    def revoked_ctis(self, now: int | None = None) -> set[bytes]:
        """The revoked key IDs, without entries whose ``exp`` ≤ ``now`` when given."""
        return {c for c, exp in self.entries if now is None or exp > now}


def sign_revocation_update(issuer: IssuerKey, update: RevocationUpdate) -> bytes:
    """Sign a revocation update. ValueError on a bad lock ID, version 0, or bad entries;
    ProtocolError(TOO_LARGE) for more than 64 entries."""
    if not is_lock_id(update.lock_id):
        raise ValueError(f"invalid lock ID {update.lock_id!r}")
    if not _uint(update.version) or update.version < 1 or not _uint(update.iat):
        raise ValueError("version must be a uint >= 1 and iat a uint")
    if len(update.entries) > MAX_REVOCATION_ENTRIES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"{len(update.entries)} entries > 64")
    for cti, exp in update.entries:
        if len(cti) != 16 or not _uint(exp):
            raise ValueError("entry must be (16-byte cti, uint exp)")
    payload = cbor.dumps({AUD: update.lock_id, IAT: update.iat, RV_VERSION: update.version,
                          RV_ENTRIES: [[bytes(c), e] for c, e in update.entries]})
    return cose.sign1(issuer, _protected(issuer, CT_REVOCATION), payload)


def verify_revocation_update(data: bytes, anchors: Mapping[bytes, bytes],
                             lock_id: str | None = None, *,
                             current_version: int | None = None) -> RevocationUpdate:
    """Verify a revocation update (§7).

    Order (v2: the signature last): §3 steps 1–3; payload shape (``MALFORMED``; more than
    64 entries ``TOO_LARGE``); ``aud`` = ``lock_id`` when given (``WRONG_LOCK``);
    ``version`` > ``current_version`` when given (``STALE_UPDATE``: the lock keeps its
    list); then §3 step 4 (``BAD_SIGNATURE``).
    """
    parts = cose.parse_sign1(bytes(data), MAX_SIGNED)
    public = cose.check_header(parts, anchors, CT_REVOCATION)
    p = _payload_map(parts.payload)
    aud, iat, version, entries = p.get(AUD), p.get(IAT), p.get(RV_VERSION), p.get(RV_ENTRIES)
    if not isinstance(aud, str) or not _uint(iat) or not _uint(version) or version < 1:  # type: ignore[operator]
        raise ProtocolError(ErrorCode.MALFORMED, "revocation update fields missing or mistyped")
    if not isinstance(entries, list):
        raise ProtocolError(ErrorCode.MALFORMED, "revocation entries are not an array")
    if len(entries) > MAX_REVOCATION_ENTRIES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"{len(entries)} entries > 64")
    parsed: list[tuple[bytes, int]] = []
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], bytes)
                and len(entry[0]) == 16 and _uint(entry[1])):
            raise ProtocolError(ErrorCode.MALFORMED, "revocation entry is not [cti(16), exp]")
        parsed.append((entry[0], entry[1]))
    if lock_id is not None and aud != lock_id:
        raise ProtocolError(ErrorCode.WRONG_LOCK, f"update is for lock {aud!r}")
    if current_version is not None and version <= current_version:  # type: ignore[operator]
        raise ProtocolError(ErrorCode.STALE_UPDATE,
                            f"version {version} not newer than {current_version}")
    cose.check_signature(parts, public)
    return RevocationUpdate(lock_id=aud, version=int(version), iat=int(iat),  # type: ignore[arg-type]
                            entries=parsed)
