"""Records count as received only on the key server's signed receipt (protocol §11
"Receipts", issue #14 §4), decided by the real firmware under MicroPython. v1 took a phone's
LOG_FETCH as delivery: a phone that fetched and never uploaded made records vanish."""

from __future__ import annotations

import os
from pathlib import Path

from tests.firmware import peer
from tests.firmware.harness import Bench

STATUS = 5
CT = "application/kgy-log-receipt+cbor"
MALFORMED, UNKNOWN_ISSUER, BAD_SIGNATURE, WRONG_LOCK = 1, 16, 17, 20
WRONG_RECIPIENT, STALE_UPDATE, WRONG_OPERATOR = 25, 31, 37


def receipt(b: Bench, seq: int, *, issuer: peer.Issuer | None = None, lock_id: str | None = None,
            operator: str = peer.OPERATOR, kid: bytes | None = None) -> bytes:
    """A log receipt for ``b``'s lock as the key server signs it."""
    p = {3: lock_id or b.lock_id, 6: 0, -65541: operator,
         -65545: kid if kid is not None else peer.key_id(b.kex_public), -65547: seq}
    return (issuer or b.issuer).sign1(peer.enc(p), CT)


def _push(b: Bench, data: bytes) -> int:
    return int(b.lock.send(peer.enc({0: 13, 1: data}))[1])


def _fill(b: Bench, n: int) -> None:
    b.lock.eval(f"[lock.log.append(1000, 1, 0, None, None) for _ in range({n})]")


def test_fetch_alone_marks_nothing_and_the_receipt_does(bench: Bench) -> None:
    key = bench.key()
    assert bench.command(key, STATUS, with_credential=True)[3] == 0
    r = bench.log_fetch(key, bench.hello()[3], 1)
    assert r[0] == 9 and r[2]  # a LOG reply with records ...
    assert bench.lock.eval("lock.log.fetched") == 0  # ... and still nothing received
    head = bench.lock.eval("lock.log.head")
    # refusals first: each from its cheap fields, and nothing changes
    for data, code in (
            (receipt(bench, head, lock_id="OTHER-LOCK"), WRONG_LOCK),
            (receipt(bench, head, operator="op_other"), WRONG_OPERATOR),
            (receipt(bench, head, kid=os.urandom(8)), WRONG_RECIPIENT),  # an earlier identity
            (receipt(bench, head + 1), MALFORMED),  # a record the lock never wrote
            (receipt(bench, head, issuer=peer.Issuer()), UNKNOWN_ISSUER),
            (receipt(bench, head)[:-1] + b"\0", BAD_SIGNATURE),
            (peer.time_statement(bench.issuer, 1), 19)):  # WRONG_CONTENT_TYPE
        assert _push(bench, data) == code
        assert bench.lock.eval("lock.log.fetched") == 0
    assert _push(bench, receipt(bench, head - 1)) == 0
    assert bench.lock.eval("lock.log.fetched") == head - 1
    assert _push(bench, receipt(bench, head - 1)) == STALE_UPDATE  # not newer: no verify
    assert _push(bench, receipt(bench, head)) == 0
    bench.lock.restart()
    assert bench.lock.eval("lock.log.fetched") == head  # kept across a reboot


def test_records_a_phone_fetched_but_never_uploaded_count_as_lost(tmp_path: Path) -> None:
    lost = {}
    for with_receipt in (False, True):
        b = Bench(tmp_path / str(with_receipt), log_capacity=40)
        try:
            key = b.key()
            _fill(b, 30)
            assert b.log_fetch(key, b.hello()[3], 1, with_credential=True)[0] == 9
            if with_receipt:
                assert _push(b, receipt(b, b.lock.eval("lock.log.head"))) == 0
            _fill(b, 120)  # the ring wraps: the 30 fetched records are overwritten
            lost[with_receipt] = b.lock.eval("lock.log.lost")
        finally:
            b.close()
    # the same records dropped either way; only a receipt makes the fetched 30 not lost
    assert lost[False] >= lost[True] + 30, lost
