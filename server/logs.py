"""Ingesting usage logs uploaded by phones (protocol §11).

The upload carries the fields of the lock's ``LOG`` reply. The chain and the head signature
are verified with :func:`kagiya.sdk.logchain.verify_log_reply` against the lock's registered
Ed25519 key; then records are de-duplicated by (lock, lock key, seq): an identical record is
ignored, a different record for a known seq is a conflict, reported and never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from kagiya.sdk.errors import ProtocolError
from kagiya.sdk.logchain import verify_log_reply
from kagiya.sdk.messages import LogReply
from kagiya.server.models import Lock, UsageLog
from kagiya.server.problems import ApiError
from kagiya.server.schemas import LogUploadIn
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


@dataclass
class Outcome:
    """What an upload changed."""

    accepted: int
    duplicates: int
    conflicts: list[int]


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
