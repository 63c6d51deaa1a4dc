"""The lock's MQTT uplink under the real MicroPython interpreter against a real Mosquitto
broker (TLS, per-lock passwords, the lock ACL): what is pushed is verified like BLE, what
is published verifies like a phone's upload, and a lock reaches only its own topics."""

from __future__ import annotations

import os
import queue
from pathlib import Path

import cbor2
import pytest
from kagiya.sdk.errors import ProtocolError
from kagiya.sdk.logchain import verify_log_reply
from kagiya.sdk.messages import LogReply
from kagiya.server.uplink import topics
from kagiya.server.uplink.mosquitto import Mosquitto, make_tls
from kagiya.server.uplink.wire import parse_log_page, verify_heartbeat

from tests.firmware import peer
from tests.firmware.harness import NOW, Bench
from tests.firmware.test_log_receipt import receipt
from tests.uplink.conftest import Peer

REVOKED = 23
OK = 0


def enc_msg(mtype: int, data: bytes) -> bytes:
    """A TIME (5) or REVOCATION (6) message as a phone would send it over BLE."""
    return cbor2.dumps({0: mtype, 1: data}, canonical=True)


def configure(bench: Bench, broker: Mosquitto, *, ca_der: bytes | None = None,
              password: str | None = None) -> str:
    """Create the lock's broker account and store its uplink config; returns the password."""
    pw = broker.accounts.create(bench.lock_id)
    ca = (ca_der if ca_der is not None else broker.tls.ca_der).hex()
    bench.lock.eval(
        f"lock.store.save('uplink', {{1: '127.0.0.1', 2: {broker.port}, "
        f"3: '{password or pw}', 4: bytes.fromhex('{ca}'), 5: 'localhost', 6: 10}})")
    bench.lock.call("uplink")
    return pw


def pump(bench: Bench, until: str, ms: int = 20000, *, frozen: bool = False) -> bool:
    """Run the lock's uplink until ``until`` (a MicroPython expression) holds; ``frozen``
    hands every step the same ticks, so a loaded host cannot spread a burst in lock time."""
    return bool(bench.lock.call("pump", ms=ms, until=until, frozen=frozen)["value"])


def heartbeat(bench: Bench, server: Peer, min_rv: int = 0) -> object:
    """The next verified heartbeat of the bench lock whose revocation version >= min_rv."""
    while True:
        pump(bench, "False", 200)
        try:
            topic, payload, _ = server.next(timeout=0.2)
        except queue.Empty:
            continue
        if topic == topics.lock_topic(bench.lock_id, topics.UP_HEARTBEAT):
            hb = verify_heartbeat(bench.lock_id, bench.sign_public, payload)
            if hb.revocation_version >= min_rv:
                return hb


def unlock(bench: Bench, key: peer.Key) -> int:
    """One UNLOCK over the (simulated) BLE path; the RESULT or ERROR code."""
    r = bench.command(key, 1, with_credential=True)
    return int(r[3] if r[0] == 4 else r[1])


@pytest.mark.timeout(180)
def test_pushed_revocation_refuses_the_key_and_is_acknowledged(
        bench: Bench, broker: Mosquitto, server_peer: Peer) -> None:
    assert server_peer.subscribe(topics.PREFIX + "+/up/+") == [1]
    configure(bench, broker)
    assert pump(bench, "uplink.online"), "lock did not connect"
    hb = heartbeat(bench, server_peer)
    assert hb.revocation_version == 0

    key = bench.key()
    assert unlock(bench, key) == OK
    update = peer.revocation(bench.issuer, bench.lock_id, 1, [(key.cti, NOW + 86400)])
    server_peer.publish(topics.lock_topic(bench.lock_id, topics.DOWN_REVOCATION),
                        enc_msg(6, update), retain=True)
    hb = heartbeat(bench, server_peer, min_rv=1)  # the signed acknowledgement
    assert hb.revocation_version == 1
    assert unlock(bench, key) == REVOKED
    assert bench.lock.eval("uplink.refused") == 0


@pytest.mark.timeout(180)
def test_forged_or_foreign_pushes_change_nothing_and_spare_the_ble_rate_limit(
        bench: Bench, broker: Mosquitto, server_peer: Peer) -> None:
    configure(bench, broker)
    assert pump(bench, "uplink.online")
    key = bench.key()
    down = topics.lock_topic(bench.lock_id, topics.DOWN_REVOCATION)
    forger = peer.Issuer()  # not a trust anchor of the lock
    for v in range(1, 9):  # more failures than the rate limiter allows before a block
        forged = peer.revocation(forger, bench.lock_id, v, [(key.cti, NOW + 86400)])
        server_peer.publish(down, enc_msg(6, forged))
    # a COMMAND pushed by the network is dropped before it reaches the lock
    server_peer.publish(down, peer.command(key, bytes(16), bench.lock_id, 1, 1))
    server_peer.publish(down, b"\xff\x00garbage")
    # a validly signed update for another lock
    other = peer.revocation(bench.issuer, "KGY-OTHER-9", 5, [(key.cti, NOW + 86400)])
    server_peer.publish(down, enc_msg(6, other))
    assert pump(bench, "uplink.received >= 11")
    assert bench.lock.eval("uplink.refused") == 11
    assert bench.lock.eval("lock.revocations.version") == 0
    # the network's budget is its own (connection -1, renewed per message): no BLE
    # connection's budget was touched
    assert bench.lock.eval("len(lock.peers.by_conn)") == 0
    assert unlock(bench, key) == OK  # the owner is not locked out by a hostile network


@pytest.mark.timeout(180)
def test_time_statement_and_log_page_verify_like_a_phone_upload(
        bench: Bench, broker: Mosquitto, server_peer: Peer) -> None:
    server_peer.subscribe(topics.lock_topic(bench.lock_id, topics.UP_LOG))
    configure(bench, broker)
    assert pump(bench, "uplink.online")
    key = bench.key()
    assert unlock(bench, key) == OK
    later = NOW + 3000  # within the hour a plain statement may move a trusted clock
    server_peer.publish(topics.lock_topic(bench.lock_id, topics.DOWN_TIME),
                        enc_msg(5, peer.time_statement(bench.issuer, later)))
    assert pump(bench, f"lock.clock.now() >= {later}")
    seen: set[int] = set()
    head = bench.lock.eval("lock.log.head")
    while max(seen, default=0) < head:
        pump(bench, "False", 200)
        try:
            _, payload, _ = server_peer.next(timeout=0.2)
        except queue.Empty:
            continue
        page = parse_log_page(payload)
        reply = LogReply(counter=0, records=tuple(page.records), prev_hash=page.prev_hash,
                         head_seq=page.head_seq, head_hash=page.head_hash, lost=page.lost,
                         head_signature=page.head_signature, more=False, mac=bytes(32))
        records = verify_log_reply(bench.lock_id, bench.sign_public, reply)
        seen.update(r.seq for r in records)
        with pytest.raises(ProtocolError):  # a tampered page does not verify
            verify_log_reply(bench.lock_id, bench.sign_public,
                             LogReply(**{**reply.__dict__, "head_seq": reply.head_seq + 1}))
    assert {1, head} <= seen
    # the broker's PUBACK proves nothing about the server: phones still fetch the records
    assert bench.lock.eval("lock.log.fetched") == 0

    # only the key server's signed receipt over down/receipt does; a receipt the broker
    # forges (another issuer) or replays (not newer) changes nothing
    down = topics.lock_topic(bench.lock_id, topics.DOWN_RECEIPT)
    got = bench.lock.eval("uplink.received")
    server_peer.publish(down, enc_msg(13, receipt(bench, head, issuer=peer.Issuer())))
    server_peer.publish(down, enc_msg(6, receipt(bench, head)))  # the wrong type there
    assert pump(bench, f"uplink.received >= {got + 2}")
    assert bench.lock.eval("uplink.refused") == 2
    assert bench.lock.eval("lock.log.fetched") == 0
    server_peer.publish(down, enc_msg(13, receipt(bench, head - 1)), retain=True)
    assert pump(bench, f"lock.log.fetched == {head - 1}")
    server_peer.publish(down, enc_msg(13, receipt(bench, head - 1)))
    assert pump(bench, f"uplink.received >= {got + 4}")
    assert bench.lock.eval("uplink.refused") == 3  # stale: refused before any verify
    assert bench.lock.eval("lock.log.fetched") == head - 1


@pytest.mark.timeout(180)
def test_acl_confines_a_lock_to_its_own_topics(broker: Mosquitto, server_peer: Peer) -> None:
    pw_a = broker.accounts.create("KGY-LOCK-A")
    broker.accounts.create("KGY-LOCK-B")
    server_peer.subscribe(topics.PREFIX + "+/up/+")
    a = Peer(broker, "KGY-LOCK-A", pw_a, "KGY-LOCK-A")
    try:
        # Mosquitto 2.0 grants any subscription and applies the ACL at delivery
        a.subscribe(topics.lock_topic("KGY-LOCK-A", "down/+"))
        a.subscribe(topics.lock_topic("KGY-LOCK-B", "down/+"))
        a.subscribe(topics.PREFIX + "+/up/+")
        server_peer.publish(topics.lock_topic("KGY-LOCK-B", topics.DOWN_REVOCATION), b"for B")
        server_peer.publish(topics.lock_topic("KGY-LOCK-B", topics.UP_HEARTBEAT), b"B's")
        server_peer.publish(topics.lock_topic("KGY-LOCK-A", topics.DOWN_REVOCATION), b"for A")
        got = a.next()  # same publisher, in order: B's were not delivered to A
        assert got[:2] == (topics.lock_topic("KGY-LOCK-A", topics.DOWN_REVOCATION), b"for A")
        # publishing as lock B, or onto its own down topic, is dropped by the broker
        a.publish(topics.lock_topic("KGY-LOCK-B", topics.UP_HEARTBEAT), b"forged")
        a.publish(topics.lock_topic("KGY-LOCK-A", topics.DOWN_REVOCATION), b"forged")
        a.publish(topics.lock_topic("KGY-LOCK-A", topics.UP_HEARTBEAT), b"mine")
        while True:  # the server's own B heartbeat comes back to it first
            got = server_peer.next()
            if got[1] != b"B's":
                break
        assert got[:2] == (topics.lock_topic("KGY-LOCK-A", topics.UP_HEARTBEAT), b"mine")
        with pytest.raises(queue.Empty):
            a.next(timeout=0.5)  # nor did A get its forged down message back
    finally:
        a.close()


@pytest.mark.timeout(180)
def test_wrong_ca_wrong_password_or_revoked_account_never_connects(
        bench: Bench, broker: Mosquitto, tmp_path: Path) -> None:
    other_ca = make_tls(tmp_path / "other").ca_der
    configure(bench, broker, ca_der=other_ca)  # a broker we cannot authenticate
    assert not pump(bench, "uplink.online", 3000)
    assert bench.lock.eval("uplink.drops") >= 1
    configure(bench, broker, password=os.urandom(8).hex())  # not its password
    assert not pump(bench, "uplink.online", 3000)
    configure(bench, broker)
    assert pump(bench, "uplink.online")
    broker.accounts.delete(bench.lock_id)  # decommission: the account is gone
    bench.lock.eval("uplink.close()")
    bench.lock.eval("hal.advance(600)")  # past any backoff
    assert not pump(bench, "uplink.online", 3000)


@pytest.mark.timeout(180)
def test_a_flood_of_time_statements_costs_one_verify_per_second_and_never_delays_a_revocation(
        bench: Bench, broker: Mosquitto, server_peer: Peer) -> None:
    configure(bench, broker)
    assert pump(bench, "uplink.online")
    key = bench.key()
    assert unlock(bench, key) == OK
    down_time = topics.lock_topic(bench.lock_id, topics.DOWN_TIME)
    # the lock's own clock, not the suite's start: on a loaded host minutes may have passed
    t0 = int(bench.lock.eval("lock.clock.now()"))
    # 30 validly signed, ever newer statements arriving within one lock instant: only
    # the first is verified and applied, the others are dropped unverified
    for i in range(30):
        server_peer.publish(down_time, enc_msg(5, peer.time_statement(bench.issuer,
                                                                      t0 + 100 + i)))
    assert pump(bench, "uplink.received >= 30", frozen=True)
    assert bench.lock.eval("uplink.skipped") == 29
    assert bench.lock.eval("uplink.refused") == 0  # none was refused: they were skipped
    assert bench.lock.eval("lock.clock.now()") < t0 + 101 + 60
    # the gap is a rate, not a block: a second later the next statement is verified
    bench.lock.call("advance", s=2)
    server_peer.publish(down_time, enc_msg(5, peer.time_statement(bench.issuer, t0 + 2000)))
    assert pump(bench, f"lock.clock.now() >= {t0 + 2000}")
    # a revocation is never held back by the time statements' gap
    server_peer.publish(down_time, enc_msg(5, peer.time_statement(bench.issuer, t0 + 2100)))
    update = peer.revocation(bench.issuer, bench.lock_id, 1, [(key.cti, NOW + 86400)])
    server_peer.publish(topics.lock_topic(bench.lock_id, topics.DOWN_REVOCATION),
                        enc_msg(6, update))
    assert pump(bench, "lock.revocations.version == 1")
    assert unlock(bench, key) == REVOKED
    assert bench.lock.eval("uplink.refused") == 0
