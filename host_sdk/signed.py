"""Server-signed time statements (§6), revocation updates (§7) and decommission updates (§7a).

All are COSE_Sign1/EdDSA objects like a credential, distinguished by their content type;
verification runs §3 steps 1–4 (a credential or other object gives WRONG_CONTENT_TYPE).
:class:`RevocationState` is the lock's merge of revocation updates (what the firmware keeps),
for simulators, tests and the server's own checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import cbor, cose
from .credential import is_lock_id, is_operator_id
from .errors import ErrorCode, ProtocolError
from .keys import IssuerKey
from .protocol import (
    CT_DECOMMISSION,
    CT_REVOCATION,
    CT_TIME,
    CTI_LEN,
    KEY_ID_LEN,
    MAX_MESSAGE,
    MAX_REVOCATION_ENTRIES,
    NONCE_LEN,
    REVOCATION_KEEP,
    TIME_NONCE,
    Claim,
)

MAX_SIGNED = MAX_MESSAGE
IAT = int(Claim.IAT)
AUD = int(Claim.AUD)
NONCE = TIME_NONCE
RV_VERSION = int(Claim.KGY_RV_VERSION)
RV_ENTRIES = int(Claim.KGY_RV_ENTRIES)
OPERATOR = int(Claim.KGY_OP)
RV_MIN_GENERATION = int(Claim.KGY_RV_MIN_GENERATION)
DC_LOCK_KEY_ID = int(Claim.KGY_LOCK_KEY_ID)


def _protected(issuer: IssuerKey, content_type: str) -> dict[int, Any]:
    return {cose.HDR_ALG: cose.ALG_EDDSA, cose.HDR_CONTENT_TYPE: content_type,
            cose.HDR_KID: issuer.kid}


def _uint(v: object) -> bool:
    return type(v) is int and v >= 0


def check_lock_binding(lock_id: str, operator: str, lock_key_id: bytes, iat: int) -> None:
    """The fields every object bound to one lock identity carries (decommission updates,
    log receipts): ValueError on a bad lock ID, operator, 8-byte lock key ID or ``iat``."""
    if not is_lock_id(lock_id) or not is_operator_id(operator):
        raise ValueError("invalid lock ID or operator ID")
    if len(lock_key_id) != KEY_ID_LEN or not _uint(iat):
        raise ValueError("lock key ID must be 8 bytes and iat a uint")


def sign_bound(issuer: IssuerKey, content_type: str, payload: dict[int, Any]) -> bytes:
    """COSE_Sign1 by ``issuer`` over ``payload`` with the usual protected header
    (EdDSA, ``content_type``, the issuer's kid)."""
    return cose.sign1(issuer, _protected(issuer, content_type), cbor.dumps(payload))


def payload_map(payload: bytes, max_size: int = MAX_SIGNED) -> dict[Any, Any]:
    """A signed object's payload as a map: ``TOO_LARGE`` above ``max_size``, else
    ``MALFORMED`` when it is not CBOR or not a map."""
    try:
        value = cbor.loads(payload, max_size=max_size)
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
        if lock_id is None or not is_lock_id(lock_id) or nonce is None or len(nonce) != NONCE_LEN:
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
    p = payload_map(parts.payload)
    t = p.get(IAT)
    if not _uint(t):
        raise ProtocolError(ErrorCode.MALFORMED, "time statement without a uint iat")
    lock_id, nonce = p.get(AUD), p.get(NONCE)
    if lock_id is not None or nonce is not None:
        if not isinstance(lock_id, str) or not isinstance(nonce, bytes) or len(nonce) != NONCE_LEN:
            raise ProtocolError(ErrorCode.MALFORMED, "fresh time statement fields mistyped")
    cose.check_signature(parts, public)
    return int(t), lock_id, nonce  # type: ignore[arg-type]


@dataclass
class RevocationUpdate:
    """What a lock must refuse (§7): listed keys and a generation floor (every key issued
    below it). The lock merges an update into what it knows (:class:`RevocationState`); an
    update never makes a key the lock refused usable again.
    """

    lock_id: str
    version: int
    iat: int
    entries: list[tuple[bytes, int]] = field(default_factory=list)
    operator: str = ""
    min_generation: int = 0

    def revoked_ctis(self, now: int | None = None) -> set[bytes]:
        """The listed key IDs, without entries whose ``exp`` ≤ ``now`` when given."""
        return {c for c, exp in self.entries if now is None or exp > now}

    def payload(self) -> dict[int, Any]:
        """The CBOR payload map (§7)."""
        return {AUD: self.lock_id, IAT: self.iat, RV_VERSION: self.version,
                RV_ENTRIES: [[bytes(c), e] for c, e in self.entries], OPERATOR: self.operator,
                RV_MIN_GENERATION: self.min_generation}


def sign_revocation_update(issuer: IssuerKey, update: RevocationUpdate) -> bytes:
    """Sign a revocation update. ValueError on a bad lock ID or operator, version 0, or bad
    entries; ProtocolError(TOO_LARGE) for more than 64 entries."""
    if not is_lock_id(update.lock_id):
        raise ValueError(f"invalid lock ID {update.lock_id!r}")
    if not is_operator_id(update.operator):
        raise ValueError(f"invalid operator ID {update.operator!r}")
    if not _uint(update.version) or update.version < 1 or not _uint(update.iat):
        raise ValueError("version must be a uint >= 1 and iat a uint")
    if not _uint(update.min_generation):
        raise ValueError("min_generation must be a uint")
    if len(update.entries) > MAX_REVOCATION_ENTRIES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"{len(update.entries)} entries > 64")
    for cti, exp in update.entries:
        if len(cti) != CTI_LEN or not _uint(exp):
            raise ValueError("entry must be (16-byte cti, uint exp)")
    return cose.sign1(issuer, _protected(issuer, CT_REVOCATION), cbor.dumps(update.payload()))


def _entries(entries: object) -> list[tuple[bytes, int]]:
    if not isinstance(entries, list):
        raise ProtocolError(ErrorCode.MALFORMED, "revocation entries are not an array")
    if len(entries) > MAX_REVOCATION_ENTRIES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"{len(entries)} entries > 64")
    parsed: list[tuple[bytes, int]] = []
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], bytes)
                and len(entry[0]) == CTI_LEN and _uint(entry[1])):
            raise ProtocolError(ErrorCode.MALFORMED, "revocation entry is not [cti(16), exp]")
        parsed.append((entry[0], entry[1]))
    return parsed


def verify_revocation_update(data: bytes, anchors: Mapping[bytes, bytes],
                             lock_id: str | None = None, *, operator: str | None = None,
                             current_version: int | None = None) -> RevocationUpdate:
    """Verify a revocation update (§7).

    Order (v2: the signature last): §3 steps 1–3; payload shape (``MALFORMED``; more than
    64 entries ``TOO_LARGE``); ``aud`` = ``lock_id`` when given (``WRONG_LOCK``); the
    operator = ``operator`` when given (``WRONG_OPERATOR``); ``version`` >
    ``current_version`` when given (``STALE_UPDATE``: the lock keeps what it knows); then
    §3 step 4 (``BAD_SIGNATURE``).
    """
    parts = cose.parse_sign1(bytes(data), MAX_SIGNED)
    public = cose.check_header(parts, anchors, CT_REVOCATION)
    p = payload_map(parts.payload)
    aud, iat, version, op = p.get(AUD), p.get(IAT), p.get(RV_VERSION), p.get(OPERATOR)
    floor = p.get(RV_MIN_GENERATION, 0)
    if not isinstance(aud, str) or not _uint(iat) or not _uint(version) or version < 1:  # type: ignore[operator]
        raise ProtocolError(ErrorCode.MALFORMED, "revocation update fields missing or mistyped")
    if not isinstance(op, str) or not _uint(floor):
        raise ProtocolError(ErrorCode.MALFORMED, "revocation update operator or floor mistyped")
    entries = _entries(p.get(RV_ENTRIES))
    if lock_id is not None and aud != lock_id:
        raise ProtocolError(ErrorCode.WRONG_LOCK, f"update is for lock {aud!r}")
    if operator is not None and op != operator:
        raise ProtocolError(ErrorCode.WRONG_OPERATOR, f"update is for operator {op!r}")
    if current_version is not None and version <= current_version:  # type: ignore[operator]
        raise ProtocolError(ErrorCode.STALE_UPDATE,
                            f"version {version} not newer than {current_version}")
    cose.check_signature(parts, public)
    return RevocationUpdate(lock_id=aud, version=int(version), iat=int(iat),  # type: ignore[arg-type]
                            entries=entries, operator=op, min_generation=int(floor))


@dataclass
class RevocationState:
    """What a lock knows after merging updates (§7): the firmware's behaviour, for hosts.

    ``apply`` merges: listed keys are added, the generation floor only rises, entries leave
    only when their keys have expired (or, beyond ``REVOCATION_KEEP``, when the newest
    update no longer lists them).
    """

    version: int = 0
    min_generation: int = 0
    entries: dict[bytes, int] = field(default_factory=dict)

    def revoked(self, cti: bytes, generation: int) -> bool:
        """True when the key ``cti`` issued at ``generation`` is revoked."""
        return generation < self.min_generation or bytes(cti) in self.entries

    def apply(self, update: RevocationUpdate, now: int) -> None:
        """Merge a verified update (STALE_UPDATE when its version is not newer)."""
        if update.version <= self.version:
            raise ProtocolError(ErrorCode.STALE_UPDATE, f"version {update.version}")
        ents = {c: e for c, e in self.entries.items() if e > now}
        fresh = {bytes(c) for c, e in update.entries if e > now}
        for c, e in update.entries:
            if e > now:
                ents[bytes(c)] = max(e, ents.get(bytes(c), 0))
        over = len(ents) - REVOCATION_KEEP
        if over > 0:
            for c in sorted((c for c in ents if c not in fresh), key=ents.__getitem__)[:over]:
                del ents[c]
        self.version = update.version
        self.min_generation = max(self.min_generation, update.min_generation)
        self.entries = ents


@dataclass(frozen=True)
class DecommissionUpdate:
    """The operator retires one lock identity (§7a): after it the lock refuses every key."""

    lock_id: str
    iat: int
    operator: str
    lock_key_id: bytes


def sign_decommission_update(issuer: IssuerKey, update: DecommissionUpdate) -> bytes:
    """Sign a decommission update; ValueError on a bad lock ID, operator or lock key ID."""
    check_lock_binding(update.lock_id, update.operator, update.lock_key_id, update.iat)
    return sign_bound(issuer, CT_DECOMMISSION, {
        AUD: update.lock_id, IAT: update.iat, OPERATOR: update.operator,
        DC_LOCK_KEY_ID: bytes(update.lock_key_id)})


def verify_decommission_update(data: bytes, anchors: Mapping[bytes, bytes],
                               lock_id: str | None = None, *, operator: str | None = None,
                               lock_key_id: bytes | None = None) -> DecommissionUpdate:
    """Verify a decommission update (§7a): §3 steps 1–4, payload shape (``MALFORMED``),
    then, when given, ``WRONG_LOCK``, ``WRONG_OPERATOR`` and ``WRONG_RECIPIENT`` (an update
    for another identity of the lock ID), the signature last (v2)."""
    parts = cose.parse_sign1(bytes(data), MAX_SIGNED)
    public = cose.check_header(parts, anchors, CT_DECOMMISSION)
    p = payload_map(parts.payload)
    aud, iat, op, kid = p.get(AUD), p.get(IAT), p.get(OPERATOR), p.get(DC_LOCK_KEY_ID)
    if not isinstance(aud, str) or not _uint(iat) or not isinstance(op, str) \
            or not isinstance(kid, bytes) or len(kid) != KEY_ID_LEN:
        raise ProtocolError(ErrorCode.MALFORMED, "decommission fields missing or mistyped")
    if lock_id is not None and aud != lock_id:
        raise ProtocolError(ErrorCode.WRONG_LOCK, f"update is for lock {aud!r}")
    if operator is not None and op != operator:
        raise ProtocolError(ErrorCode.WRONG_OPERATOR, f"update is for operator {op!r}")
    if lock_key_id is not None and kid != bytes(lock_key_id):
        raise ProtocolError(ErrorCode.WRONG_RECIPIENT, "update is for another lock identity")
    cose.check_signature(parts, public)
    return DecommissionUpdate(lock_id=aud, iat=int(iat), operator=op, lock_key_id=kid)  # type: ignore[arg-type]

