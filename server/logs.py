"""Ingesting usage logs uploaded by phones (protocol §11).

The upload carries the fields of the lock's ``LOG`` reply. The chain and the head signature
are verified with :func:`kagiya.sdk.logchain.verify_log_reply` against the lock's registered
Ed25519 key; then records are de-duplicated by (lock, lock key, seq): an identical record is
ignored, a different record for a known seq is a conflict, reported and never stored.

:func:`ingest` also keeps what the lock signed about its log on the lock row, for the
operator (lock status, logs API): the newest head seq, the lock's ``lost`` counter (records
it dropped before any phone fetched them) and ``log_missing``, the records absent between
the oldest stored one and the head (a gap no upload has filled, e.g. a phone that fetched
records and never uploaded them). They start again with a new identity of the lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from kagiya.sdk.errors import ProtocolError
from kagiya.sdk.keys import lock_key_id
from kagiya.sdk.logchain import verify_log_reply
from kagiya.sdk.logreceipt import LogReceipt, sign_log_receipt
from kagiya.sdk.messages import LogReply
from kagiya.server.issuer import KeySet
from kagiya.server.models import Lock, UsageLog
from kagiya.server.problems import ApiError
from kagiya.server.schemas import LogUploadIn
from sqlalchemy import and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased


@dataclass
class Outcome:
    """What an upload changed."""

    accepted: int
    duplicates: int
    conflicts: list[int]
    lost: int = 0  #: the lock's signed lost counter after this upload
    missing: int = 0  #: records missing between the oldest stored one and the head
    received: int = 0  #: every record from the oldest stored one up to this seq is held


def verify_upload(
    lock: Lock, body: LogUploadIn
) -> list[tuple[int, int, int, int, bytes | None, str | None, bytes]]:
    """Verify the uploaded log; returns ``(seq, time, event, code, cti, sub, record_bytes)``.

    The upload must end at the signed head (``more`` is false), so every record is bound
    to the head signature through the hash chain. Raises 422 ``log-verification-failed``
    (with the protocol error name) when the chain or the head signature does not verify.
    """
    records = [bytes.fromhex(r) for r in body.records]
    reply = LogReply(
        counter=0,
        records=tuple(records),
        prev_hash=bytes.fromhex(body.prev_hash),
        head_seq=body.head_seq,
        head_hash=bytes.fromhex(body.head_hash),
        lost=body.lost,
        head_signature=bytes.fromhex(body.head_signature),
        more=False,
        mac=bytes(32),
    )
    try:
        parsed = verify_log_reply(lock.lock_id, lock.sign_public, reply)
    except ProtocolError as exc:
        raise ApiError(
            422,
            "log-verification-failed",
            f"the log does not verify: {exc}",
            extra={"protocol_error": exc.code.name if hasattr(exc.code, "name") else int(exc.code)},
        ) from exc
    out = []
    for rec, raw in zip(parsed, records, strict=True):
        out.append((rec.seq, rec.time, rec.event, rec.code, rec.cti, rec.sub, raw))
    return out


def store(
    session: Session,
    lock: Lock,
    rows: list[tuple[int, int, int, int, bytes | None, str | None, bytes]],
    now: int,
) -> Outcome:
    """De-duplicate and store verified records."""
    if not rows:
        return Outcome(0, 0, [])
    seqs = [r[0] for r in rows]
    existing: dict[int, bytes] = dict(
        session.execute(
            select(UsageLog.seq, UsageLog.record).where(
                UsageLog.lock_pk == lock.pk,
                UsageLog.sign_public == lock.sign_public,
                UsageLog.seq.in_(seqs),
            )
        ).all()
    )
    conflicts: list[int] = []
    duplicates = 0
    fresh = []
    for seq, t, event, code, cti, sub, raw in rows:
        if seq in existing:
            if bytes(existing[seq]) == raw:
                duplicates += 1
            else:
                conflicts.append(seq)
            continue
        fresh.append(
            {
                "operator_id": lock.operator_id,
                "lock_pk": lock.pk,
                "sign_public": lock.sign_public,
                "seq": seq,
                "time": t,
                "event": event,
                "code": code,
                "cti": cti,
                "sub": sub,
                "record": raw,
                "received_at": now,
            }
        )
    accepted = 0
    if fresh:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(UsageLog)
            .values(fresh)
            .on_conflict_do_nothing(
                index_elements=[UsageLog.lock_pk, UsageLog.sign_public, UsageLog.seq]
            )
        )
        accepted = len(session.execute(stmt.returning(UsageLog.seq)).all())
        duplicates += len(fresh) - accepted
    return Outcome(accepted, duplicates, conflicts)


def reset_log_state(lock: Lock) -> None:
    """Forget the log summary (a new identity of the lock starts its log at seq 1)."""
    lock.log_head_seq = None
    lock.log_lost = 0
    lock.log_missing = 0


def ingest(session: Session, lock: Lock, body: LogUploadIn, now: int) -> Outcome:
    """Verify an upload, store its records and update the lock's log summary (module doc).
    Raises 422 like :func:`verify_upload`."""
    outcome = store(session, lock, verify_upload(lock, body), now)
    if lock.log_head_seq is None or body.head_seq >= lock.log_head_seq:
        lock.log_head_seq = body.head_seq
        lock.log_lost = max(lock.log_lost, body.lost)
    count, oldest = session.execute(
        select(func.count(), func.min(UsageLog.seq)).where(
            UsageLog.lock_pk == lock.pk, UsageLog.sign_public == lock.sign_public)
    ).one()
    head = lock.log_head_seq
    lock.log_missing = max(0, head - int(oldest) + 1 - int(count)) if count else 0
    lock.log_uploaded_at = now
    session.flush()
    outcome.lost, outcome.missing = lock.log_lost, lock.log_missing
    outcome.received = head if count and not lock.log_missing else _first_gap_end(session, lock)
    return outcome


def _first_gap_end(session: Session, lock: Lock) -> int:
    """The last seq of the run of stored records that starts at the oldest one (0: none)."""
    nxt = aliased(UsageLog)
    here = and_(UsageLog.lock_pk == lock.pk, UsageLog.sign_public == lock.sign_public)
    has_next = select(nxt.seq).where(nxt.lock_pk == lock.pk,
                                     nxt.sign_public == lock.sign_public,
                                     nxt.seq == UsageLog.seq + 1).exists()
    return int(session.scalar(select(func.min(UsageLog.seq)).where(here, ~has_next)) or 0)


def receipt(lock: Lock, outcome: Outcome, keys: KeySet, now: int) -> str | None:
    """The signed log receipt for ``outcome`` (hex; protocol §11 "Receipts"), or None when
    nothing is held yet. Phones carry it to the lock, which then stops counting these
    records as lost when it drops them."""
    if outcome.received < 1:
        return None
    return sign_log_receipt(keys.active, LogReceipt(
        lock.lock_id, now, lock.operator_id, lock_key_id(lock.kex_public),
        outcome.received)).hex()
