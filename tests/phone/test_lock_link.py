"""A fetched log becomes the phone's upload (kagiya.sdk.client.LockLog -> LogBatch).

The pages here are made like a lock makes them (hash chain from h_0, head signed with the
lock's Ed25519 key, protocol §11); the BLE path is covered by tests/phone/test_ble_e2e.py
and hil/scenarios/test_power.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kagiya.phone.lock_link import MAX_UPLOAD_RECORDS, log_batch
from kagiya.sdk.client import LockLog
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.logchain import LogRecord, chain, genesis, head_message, verify_log_reply
from kagiya.sdk.messages import LockState, LogReply

LOCK = "CAR-0001"
KEY = Ed25519PrivateKey.generate()
PUB = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _pages(n: int, per_page: int, *, lost: int = 0) -> list[LogReply]:
    """``n`` records from seq 1 in pages of ``per_page``, each page with the signed head."""
    raw = [LogRecord(i, 1_800_000_000 + i, 1, 0, bytes(16), "driver-1").encode()
           for i in range(1, n + 1)]
    hashes = [genesis(LOCK)]
    for r in raw:
        hashes.append(chain(hashes[-1], r))
    sig = KEY.sign(head_message(LOCK, n, hashes[-1], lost))
    return [LogReply(i // per_page + 1, tuple(raw[i:i + per_page]), hashes[i], n, hashes[-1],
                     lost, sig, i + per_page < n, bytes(32), 9)
            for i in range(0, n, per_page)]


def _as_uploaded(payload: dict[str, Any]) -> LogReply:
    """What the key server rebuilds from an upload (server/logs.py)."""
    return LogReply(0, tuple(bytes.fromhex(r) for r in payload["records"]),
                    bytes.fromhex(payload["prev_hash"]), payload["head_seq"],
                    bytes.fromhex(payload["head_hash"]), payload["lost"],
                    bytes.fromhex(payload["head_signature"]), False, bytes(32))


@pytest.mark.parametrize("sign_public", [PUB, None])
def test_pages_join_into_one_upload_that_the_server_verifies(sign_public: bytes | None) -> None:
    pages = _pages(70, 30, lost=2)
    log = LockLog.from_pages(LOCK, pages, sign_public=sign_public)
    assert log.verified is (sign_public is not None)
    assert [r.seq for r in log.records] == list(range(1, 71))
    assert (log.prev_hash, log.head_seq, log.lost) == (genesis(LOCK), 70, 2)
    assert log.state == LockState.DOORS_LOCKED | LockState.TIME_TRUSTED
    assert log.pages == tuple(pages)
    [batch] = log_batch(log)  # never split: only an upload ending at the head verifies
    assert batch.next_seq == 71 and len(batch.records) == 70
    assert verify_log_reply(LOCK, PUB, _as_uploaded(batch.upload_payload())) == log.records


def test_a_later_slice_uploads_from_its_prev_hash() -> None:
    pages = _pages(40, 25)[1:]  # fetched from seq 26
    [batch] = log_batch(LockLog.from_pages(LOCK, pages))
    assert batch.decoded[0][0] == 26 and batch.prev_hash == pages[0].prev_hash
    assert [r.seq for r in verify_log_reply(LOCK, PUB, _as_uploaded(batch.upload_payload()))
            ] == list(range(26, 41))


def test_nothing_new_is_no_upload() -> None:
    empty = dataclasses.replace(_pages(3, 10)[0], records=(), more=False)
    log = LockLog.from_pages(LOCK, [empty], sign_public=PUB)
    assert log.records == [] and log_batch(log) == []


def test_pages_that_do_not_join_are_refused() -> None:
    a, b, c = _pages(9, 3)
    with pytest.raises(ProtocolError) as err:  # a page missing in between
        LockLog.from_pages(LOCK, [a, c])
    assert err.value.code == ErrorCode.BAD_SIGNATURE
    with pytest.raises(ProtocolError) as err:  # a page repeated
        LockLog.from_pages(LOCK, [a, b, dataclasses.replace(c, prev_hash=b.prev_hash)])
    assert err.value.code == ErrorCode.BAD_SIGNATURE
    bad_seq = dataclasses.replace(b, records=(c.records[0], *b.records[1:]))
    with pytest.raises(ProtocolError) as err:
        LockLog.from_pages(LOCK, [a, bad_seq])
    assert err.value.code in (ErrorCode.MALFORMED, ErrorCode.BAD_SIGNATURE)
    with pytest.raises(ProtocolError) as err:  # the wrong lock's key
        LockLog.from_pages(LOCK, [a, b, c], sign_public=bytes(31) + b"\x01")
    assert err.value.code == ErrorCode.BAD_SIGNATURE
    with pytest.raises(ValueError):
        LockLog.from_pages(LOCK, [])


def test_a_log_too_long_for_one_upload_is_refused_by_the_phone() -> None:
    log = LockLog.from_pages(LOCK, _pages(MAX_UPLOAD_RECORDS + 1, 200))
    with pytest.raises(ValueError, match="exceed one upload"):
        log_batch(log)
