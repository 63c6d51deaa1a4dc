"""The lock's usage log as seen by phones and the server (docs/protocol.md §11).

Records are deterministic CBOR arrays ``[seq, time, event, code, cti/null, sub/null]``
chained with SHA-256 from ``h_0 = SHA-256("KGY1-LOG" || lock_id)``; the head
``(head_seq, h_head, lost)`` is signed by the lock's Ed25519 key (RFC 8032).
:func:`verify_log_reply` checks one LOG page; :func:`verify_log_pages` checks that pages
join up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from . import cbor
from .cose import ed25519_verify_strict
from .errors import ErrorCode, ProtocolError
from .messages import LogReply
from .protocol import CTI_LEN, LogEvent
from .protocol import LABEL_HEAD as HEAD_LABEL
from .protocol import LABEL_LOG as LOG_LABEL

__all__ = ["HEAD_LABEL", "LOG_LABEL", "LogEvent", "LogRecord", "chain", "genesis",
           "head_message", "verify_log_pages", "verify_log_reply"]



@dataclass(frozen=True)
class LogRecord:
    """One usage-log record."""

    seq: int
    time: int
    event: int
    code: int
    cti: bytes | None = None
    sub: str | None = None

    def encode(self) -> bytes:
        """Deterministic CBOR ``[seq, time, event, code, cti/null, sub/null]``."""
        return cbor.dumps([self.seq, self.time, self.event, self.code, self.cti, self.sub])

    @classmethod
    def decode(cls, data: bytes) -> LogRecord:
        """Strictly decode a record; ProtocolError(MALFORMED/TOO_LARGE) if it is not one."""
        v = cbor.loads(data)
        if not isinstance(v, list) or len(v) != 6:
            raise ProtocolError(ErrorCode.MALFORMED, "log record is not a 6-element array")
        seq, t, event, code, cti, sub = v
        if not all(type(x) is int and x >= 0 for x in (seq, t, event, code)) or seq < 1:
            raise ProtocolError(ErrorCode.MALFORMED, "log record numbers mistyped")
        if cti is not None and not (isinstance(cti, bytes) and len(cti) == CTI_LEN):
            raise ProtocolError(ErrorCode.MALFORMED, "log record cti is not 16 bytes or null")
        if sub is not None and not isinstance(sub, str):
            raise ProtocolError(ErrorCode.MALFORMED, "log record sub is not text or null")
        return cls(seq, t, event, code, cti, sub)


def genesis(lock_id: str) -> bytes:
    """h_0 = SHA-256("KGY1-LOG" || lock_id)."""
    return hashlib.sha256(LOG_LABEL + lock_id.encode()).digest()


def chain(prev_hash: bytes, record_bytes: bytes) -> bytes:
    """h_seq = SHA-256(h_{seq-1} || record_bytes)."""
    return hashlib.sha256(bytes(prev_hash) + bytes(record_bytes)).digest()


def head_message(lock_id: str, head_seq: int, head_hash: bytes, lost: int) -> bytes:
    """The bytes the lock signs for its head (§11)."""
    lid = lock_id.encode()
    if len(lid) > 255 or len(head_hash) != 32:
        raise ValueError("bad lock ID or head hash")
    return (HEAD_LABEL + bytes((len(lid),)) + lid + int(head_seq).to_bytes(8, "big")
            + bytes(head_hash) + int(lost).to_bytes(4, "big"))


def verify_log_reply(lock_id: str, sign_public: bytes, reply: LogReply) -> list[LogRecord]:
    """Verify one LOG page against the lock's registered Ed25519 key.

    Checks, in order: the head signature (``BAD_SIGNATURE``); every record decodes and
    the seqs are consecutive, start ≥ 1 and do not pass ``head_seq`` (``MALFORMED``); a
    page starting at seq 1 starts from h_0, and a page ending at the head reaches
    ``head_hash`` (``BAD_SIGNATURE``: the records are not the signed log); a final page
    (``more`` false) ends at the head (``MALFORMED``). The reply MAC (§8) is checked
    separately by the session layer. Returns the decoded records.
    """
    msg = head_message(lock_id, reply.head_seq, reply.head_hash, reply.lost)
    if not ed25519_verify_strict(sign_public, msg, reply.head_signature):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "log head signature invalid")
    records = [LogRecord.decode(r) for r in reply.records]
    for a, b in pairwise(records):
        if b.seq != a.seq + 1:
            raise ProtocolError(ErrorCode.MALFORMED, f"log seq {b.seq} follows {a.seq}")
    if not records:
        return records
    if records[-1].seq > reply.head_seq:
        raise ProtocolError(ErrorCode.MALFORMED, "log record beyond the signed head")
    if records[0].seq == 1 and reply.prev_hash != genesis(lock_id):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "log does not start at h_0")
    h = reply.prev_hash
    for raw in reply.records:
        h = chain(h, raw)
    if records[-1].seq == reply.head_seq:
        if h != reply.head_hash:
            raise ProtocolError(ErrorCode.BAD_SIGNATURE, "log chain does not reach the head")
    elif not reply.more:
        raise ProtocolError(ErrorCode.MALFORMED, "last page does not end at the head")
    return records


def verify_log_pages(lock_id: str, sign_public: bytes,
                     replies: Iterable[LogReply]) -> list[LogRecord]:
    """Verify consecutive LOG pages: each page, and that each starts where the last ended
    (``BAD_SIGNATURE`` if the chain breaks between pages)."""
    out: list[LogRecord] = []
    h: bytes | None = None
    for reply in replies:
        records = verify_log_reply(lock_id, sign_public, reply)
        if h is not None and records and reply.prev_hash != h:
            raise ProtocolError(ErrorCode.BAD_SIGNATURE, "log pages do not join")
        if out and records and records[0].seq != out[-1].seq + 1:
            raise ProtocolError(ErrorCode.MALFORMED, "log pages are not consecutive")
        for raw in reply.records:
            h = chain(h if h is not None else reply.prev_hash, raw)
        out.extend(records)
    return out
