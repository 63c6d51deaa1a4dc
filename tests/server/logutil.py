"""Build a signed lock log (protocol §11) on the host, as a lock would, for upload tests."""

from __future__ import annotations

from kagiya.sdk.keys import LockIdentity
from kagiya.sdk.logchain import LogRecord, chain, genesis, head_message


def make_log(
    ident: LockIdentity,
    lock_id: str,
    n: int,
    *,
    t0: int = 1_700_000_000,
    sub: str | None = None,
    cti: bytes | None = None,
    lost: int = 0,
    first_seq: int = 1,
    code: int = 0,
) -> dict[str, object]:
    """Records ``first_seq..n`` of a log whose head is ``n`` (unlocks with result ``code``),
    as upload fields."""
    h = genesis(lock_id)
    records = []
    prev = h
    for seq in range(1, n + 1):
        raw = LogRecord(seq, t0 + seq, 1, code, cti, sub).encode()
        if seq == first_seq:
            prev = h
        h = chain(h, raw)
        if seq >= first_seq:
            records.append(raw)
    sig = ident.sign(head_message(lock_id, n, h, lost))
    return {
        "lock_id": lock_id,
        "records": records,
        "prev_hash": prev,
        "head_seq": n,
        "head_hash": h,
        "lost": lost,
        "head_signature": sig,
    }
