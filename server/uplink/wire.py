"""What locks publish on the uplink, parsed and verified (docs/uplink.md, "Payloads").

A heartbeat is a deterministic CBOR map ``{1: lock ID, 2: lock time, 3: revocation
version, 4: log head seq, 5: log head hash, 6: state bits, 15: signature}``; the lock's
Ed25519 key signs :func:`heartbeat_message` of fields 1-6. A log page is
``{1: [record, ...], 2: prev hash, 3: head seq, 4: head hash, 5: lost, 6: head
signature}``: the fields of a phone's log upload (protocol §11), verified the same way.
The broker is not trusted, so nothing here is believed before its signature verifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kagiya.sdk.cbor import loads
from kagiya.sdk.cose import ed25519_verify_strict
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.protocol import HEARTBEAT_KEYS, LABEL_BEAT, LOG_PAGE_KEYS

BEAT_LABEL = LABEL_BEAT
MAX_PAYLOAD = 4096


@dataclass(frozen=True)
class Heartbeat:
    """A verified heartbeat."""

    lock_id: str
    lock_time: int
    revocation_version: int
    head_seq: int
    head_hash: bytes
    state: int


def heartbeat_message(lock_id: str, lock_time: int, rv: int, head_seq: int,
                      head_hash: bytes, state: int) -> bytes:
    """The bytes a heartbeat's signature covers (the firmware's ``heartbeat_message``)."""
    lid = lock_id.encode()
    return (BEAT_LABEL + bytes((len(lid),)) + lid + lock_time.to_bytes(8, "big")
            + rv.to_bytes(8, "big") + head_seq.to_bytes(8, "big") + head_hash
            + bytes((state,)))


def _map(payload: bytes) -> dict[Any, Any]:
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(ErrorCode.TOO_LARGE, "uplink payload too large")
    m = loads(payload, max_size=MAX_PAYLOAD)
    if not isinstance(m, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "uplink payload is not a map")
    return m


def _uint(v: object, bits: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << bits)


def verify_heartbeat(lock_id: str, sign_public: bytes, payload: bytes) -> Heartbeat:
    """Parse and verify a heartbeat of ``lock_id``; raises ProtocolError (MALFORMED,
    TOO_LARGE, BAD_SIGNATURE) otherwise. A heartbeat naming another lock is MALFORMED."""
    m = _map(payload)
    lid, t, rv, head, hh, st, sig = (m.get(HEARTBEAT_KEYS[k]) for k in (
        "lock_id", "lock_time", "revocation_version", "head_seq", "head_hash", "state",
        "signature"))
    if (lid != lock_id or not _uint(t, 64) or not _uint(rv, 64) or not _uint(head, 64)
            or not isinstance(hh, bytes) or len(hh) != 32 or not _uint(st, 8)
            or not isinstance(sig, bytes) or len(sig) != 64):
        raise ProtocolError(ErrorCode.MALFORMED, "heartbeat fields")
    assert isinstance(t, int) and isinstance(rv, int) and isinstance(head, int)
    assert isinstance(st, int)
    if not ed25519_verify_strict(sign_public, heartbeat_message(lock_id, t, rv, head, hh, st),
                                 sig):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "heartbeat signature invalid")
    return Heartbeat(lock_id, t, rv, head, hh, st)


@dataclass(frozen=True)
class LogPage:
    """A log page as a lock published it (not yet verified: see server.logs)."""

    records: list[bytes]
    prev_hash: bytes
    head_seq: int
    head_hash: bytes
    lost: int
    head_signature: bytes


def parse_log_page(payload: bytes) -> LogPage:
    """The fields of a published log page (types checked; the chain and the signature are
    verified by :func:`kagiya.server.logs.verify_upload`)."""
    m = _map(payload)
    recs, prev, head, hh, lost, sig = (m.get(LOG_PAGE_KEYS[k]) for k in (
        "records", "prev_hash", "head_seq", "head_hash", "lost", "head_signature"))
    if (not isinstance(recs, list) or not all(isinstance(r, bytes) for r in recs)
            or not isinstance(prev, bytes) or len(prev) != 32 or not _uint(head, 64)
            or not isinstance(hh, bytes) or len(hh) != 32 or not _uint(lost, 32)
            or not isinstance(sig, bytes) or len(sig) != 64):
        raise ProtocolError(ErrorCode.MALFORMED, "log page fields")
    assert isinstance(head, int) and isinstance(lost, int)
    return LogPage(recs, prev, head, hh, lost, sig)
