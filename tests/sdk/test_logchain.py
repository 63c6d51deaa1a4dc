"""kagiya.sdk.logchain: record encoding, the hash chain and the signed head (§11)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from kagiya.sdk import logchain
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import LockIdentity
from kagiya.sdk.logchain import LogRecord, chain, genesis, head_message, verify_log_reply
from kagiya.sdk.messages import LogReply

LID = "KGY-0001"


def make_log(lock: LockIdentity, n: int) -> tuple[list[bytes], list[bytes]]:
    recs = [LogRecord(i, 1000 + i, 1 if i % 2 else 32, 0, bytes([i]) * 16 if i % 2 else None,
                      "user-1" if i % 2 else None).encode() for i in range(1, n + 1)]
    hashes = [genesis(LID)]
    for r in recs:
        hashes.append(chain(hashes[-1], r))
    return recs, hashes


def page(lock: LockIdentity, recs: list[bytes], hashes: list[bytes], start: int, end: int,
         lost: int = 0) -> LogReply:
    head_seq = len(recs)
    sig = lock.sign(head_message(LID, head_seq, hashes[head_seq], lost))
    return LogReply(1, tuple(recs[start - 1:end]), hashes[start - 1], head_seq,
                    hashes[head_seq], lost, sig, end < head_seq, bytes(32))


def test_record_roundtrip_and_hashes() -> None:
    rec = LogRecord(1, 5, 32, 0)
    assert LogRecord.decode(rec.encode()) == rec
    assert rec.encode() == bytes.fromhex("860105182000f6f6")
    assert genesis(LID) == hashlib.sha256(b"KGY1-LOG" + LID.encode()).digest()
    assert head_message(LID, 2, bytes(32), 3) == (b"KGY1-HEAD\x08KGY-0001" + (2).to_bytes(8, "big")
                                                  + bytes(32) + (3).to_bytes(4, "big"))


def test_verify_full_and_paged() -> None:
    lock = LockIdentity.generate()
    recs, hashes = make_log(lock, 6)
    full = verify_log_reply(LID, lock.sign_public, page(lock, recs, hashes, 1, 6))
    assert [r.seq for r in full] == [1, 2, 3, 4, 5, 6]
    pages = [page(lock, recs, hashes, 1, 2), page(lock, recs, hashes, 3, 6)]
    assert logchain.verify_log_pages(LID, lock.sign_public, pages) == full
    # a later page after the ring dropped old records starts from its prev_hash
    assert len(verify_log_reply(LID, lock.sign_public, page(lock, recs, hashes, 4, 6, 2))) == 3


def code_of(fn: object) -> ErrorCode:
    with pytest.raises(ProtocolError) as e:
        fn()  # type: ignore[operator]
    return e.value.code


def test_refusals() -> None:
    lock = LockIdentity.generate()
    recs, hashes = make_log(lock, 4)
    good = page(lock, recs, hashes, 1, 4)
    pk = lock.sign_public
    assert code_of(lambda: verify_log_reply(LID, LockIdentity.generate().sign_public, good)) \
        == ErrorCode.BAD_SIGNATURE
    assert code_of(lambda: verify_log_reply(LID, pk, dataclasses.replace(good, lost=1))) \
        == ErrorCode.BAD_SIGNATURE
    swapped = (recs[0], recs[2], recs[1], recs[3])
    assert code_of(lambda: verify_log_reply(LID, pk, dataclasses.replace(good, records=swapped))) \
        == ErrorCode.MALFORMED
    altered = (recs[0], LogRecord(2, 1, 1, 27).encode(), recs[2], recs[3])
    assert code_of(lambda: verify_log_reply(LID, pk, dataclasses.replace(good, records=altered))) \
        == ErrorCode.BAD_SIGNATURE
    assert code_of(lambda: verify_log_reply(LID, pk, dataclasses.replace(
        good, prev_hash=bytes(32)))) == ErrorCode.BAD_SIGNATURE
    assert code_of(lambda: verify_log_reply(LID, pk, dataclasses.replace(
        good, records=(b"\x01",)))) == ErrorCode.MALFORMED
    assert code_of(lambda: verify_log_reply(LID, pk, dataclasses.replace(
        page(lock, recs, hashes, 1, 2), more=False))) == ErrorCode.MALFORMED
    p1, p2 = page(lock, recs, hashes, 1, 2), page(lock, recs, hashes, 3, 4)
    p2_forged = dataclasses.replace(p2, prev_hash=hashes[1])
    assert code_of(lambda: logchain.verify_log_pages(LID, pk, [p1, p2_forged])) \
        == ErrorCode.BAD_SIGNATURE
    for bad in ([0, 1, 1, 0, None, None], [1, 1, 1, 0, b"x", None], [1, 1, 1, 0, None, 5],
                [1, 1, 1, 0, None]):
        from kagiya.sdk import cbor
        assert code_of(lambda b=bad: LogRecord.decode(cbor.dumps(b))) == ErrorCode.MALFORMED
