"""Log receipts (protocol §11 "Receipts"): the key server's signed word that it holds a
lock's usage-log records up to a sequence number.

A lock counts a record it has to overwrite as ``lost`` unless it was received. v1 took a
phone's LOG_FETCH as delivery, so a phone that fetched records and never uploaded them (or
a relay that dropped the upload) made them vanish without a trace. Since #14 the lock marks
records received only on a receipt: a COSE_Sign1 by one of its trust anchors, content type
``application/kgy-log-receipt+cbor``, over::

    {3: lock ID, 6: iat, -65541: operator, -65545: lock key ID (8 bytes, the identity whose
     log it is), -65547: received (uint: every record up to this seq is on the server)}

The server hands one back with every verified upload; phones carry it to the lock in a
``LOG_RECEIPT`` message (and connected locks get it over the uplink).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from . import cose
from .errors import ErrorCode, ProtocolError
from .keys import IssuerKey
from .protocol import CT_LOG_RECEIPT, KEY_ID_LEN, MAX_MESSAGE, Claim
from .signed import check_lock_binding, payload_map, sign_bound

AUD, IAT = int(Claim.AUD), int(Claim.IAT)
OPERATOR, LOCK_KEY_ID = int(Claim.KGY_OP), int(Claim.KGY_LOCK_KEY_ID)
RECEIVED = int(Claim.KGY_LOG_RECEIVED)


@dataclass(frozen=True)
class LogReceipt:
    """The server holds ``lock_id``'s records up to ``received`` (for that identity)."""

    lock_id: str
    iat: int
    operator: str
    lock_key_id: bytes
    received: int


def sign_log_receipt(issuer: IssuerKey, receipt: LogReceipt) -> bytes:
    """Sign a receipt; ValueError on a bad lock ID, operator, lock key ID or seq."""
    check_lock_binding(receipt.lock_id, receipt.operator, receipt.lock_key_id, receipt.iat)
    if type(receipt.received) is not int or receipt.received < 1:
        raise ValueError("received must be >= 1")
    return sign_bound(issuer, CT_LOG_RECEIPT, {
        AUD: receipt.lock_id, IAT: receipt.iat, OPERATOR: receipt.operator,
        LOCK_KEY_ID: bytes(receipt.lock_key_id), RECEIVED: receipt.received})


def verify_log_receipt(data: bytes, anchors: Mapping[bytes, bytes],
                       lock_id: str | None = None) -> LogReceipt:
    """Verify a receipt as the lock does, apart from its identity and log (§3 steps 1-4,
    payload shape ``MALFORMED``, ``WRONG_LOCK`` when ``lock_id`` is given, the signature)."""
    parts = cose.parse_sign1(bytes(data), MAX_MESSAGE)
    public = cose.check_header(parts, anchors, CT_LOG_RECEIPT)
    p = payload_map(parts.payload, MAX_MESSAGE)
    aud, iat, op, kid, seq = (p.get(AUD), p.get(IAT), p.get(OPERATOR), p.get(LOCK_KEY_ID),
                              p.get(RECEIVED))
    if not (isinstance(aud, str) and type(iat) is int and iat >= 0 and isinstance(op, str)
            and isinstance(kid, bytes) and len(kid) == KEY_ID_LEN and type(seq) is int
            and seq >= 1):
        raise ProtocolError(ErrorCode.MALFORMED, "receipt fields missing or mistyped")
    if lock_id is not None and aud != lock_id:
        raise ProtocolError(ErrorCode.WRONG_LOCK, f"receipt is for lock {aud!r}")
    cose.check_signature(parts, public)
    return LogReceipt(aud, iat, op, kid, seq)
