"""The key server's side of the uplink against a real Mosquitto broker and a real lock
process: a cancel reaches the connected lock with no phone, its signed heartbeat is the
acknowledgement, log pages are stored like a phone's upload, forged uplink messages are
refused, and two server processes on one PostgreSQL publish each version exactly once."""

from __future__ import annotations

import json
import queue
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from kagiya.sdk.signed import verify_revocation_update
from kagiya.server.config import Settings
from kagiya.server.db import transaction
from kagiya.server.models import LockUplink, UplinkOutbox, UsageLog
from kagiya.server.runtime import Runtime
from kagiya.server.uplink import topics
from kagiya.server.uplink.mosquitto import SERVER_USER, Mosquitto
from kagiya.server.uplink.service import UplinkService
from sqlalchemy import func, select

from tests.firmware import peer
from tests.firmware.harness import NOW, LockProcess
from tests.server.conftest import World, db_url, make_world, postgres  # noqa: F401
from tests.uplink.conftest import Peer

REVOKED = 23


def mqtt_settings(broker: Mosquitto) -> dict[str, Any]:
    """Settings that point a key server at ``broker``."""
    return {"mqtt_host": "localhost", "mqtt_port": broker.port,
            "mqtt_ca_file": str(broker.tls.ca_pem), "mqtt_username": SERVER_USER,
            "mqtt_password": broker.server_password,
            "mqtt_password_file": str(broker.password_file),
            "mqtt_pid_file": str(broker.pid_file), "uplink_poll_ms": 20,
            "uplink_time_interval_s": 0}


@pytest.fixture
def connected(db_url: str, tmp_path: Path, broker: Mosquitto  # noqa: F811
              ) -> Iterator[tuple[World, UplinkService]]:
    """The app on a fresh database, configured for the broker, its uplink service running."""
    w, rt = make_world(db_url, tmp_path / "data", **mqtt_settings(broker))
    svc = UplinkService(rt)
    svc.start()
    assert svc.wait_connected(30)
    yield w, svc
    svc.stop()
    w.http.close()
    rt.close()


def issuer_public(rt: Runtime) -> bytes:
    """The server's active issuer key (the lock's trust anchor)."""
    with transaction(rt.sessions) as s:
        return rt.keyset(s).active.public_bytes()


class ConnectedLock:
    """A lock process provisioned for the server, registered and given its broker account."""

    def __init__(self, w: World, op: Any, state: Path, broker: Mosquitto, lock_id: str) -> None:
        self.lock_id = lock_id
        self.proc = LockProcess(state)
        ch = op.registration_challenge()
        info = self.proc.call("provision", lock_id=lock_id, operator=ch["operator_id"],
                              anchors=[issuer_public(w.rt).hex()], now=NOW)
        self.sign_public = bytes.fromhex(info["sign_public"])
        proof = self.proc.eval("__import__('kagiya_lock.provisioning').provisioning."
                               f"registration_proof({ch['challenge']!r}, hal=hal)")
        op.register_lock(lock_id, self.sign_public, bytes.fromhex(info["kex_public"]),
                         challenge=ch["challenge"], proof=bytes.fromhex(proof["proof"]))
        r = op._request("POST", f"/v1/locks/{lock_id}/uplink")
        assert r["username"] == lock_id
        self.proc.eval(
            f"lock.store.save('uplink', {{1: '127.0.0.1', 2: {broker.port}, "
            f"3: '{r['password']}', 4: bytes.fromhex('{broker.tls.ca_der.hex()}'), "
            f"5: 'localhost', 6: 10}})")
        self.proc.call("uplink")
        self.counter = 0

    def pump(self, until: str, ms: int = 20000) -> bool:
        """Run the uplink until ``until`` holds in the lock process."""
        return bool(self.proc.call("pump", ms=ms, until=until)["value"])

    def unlock(self, key: Any) -> int:
        """UNLOCK over the BLE handler with the downloaded key; the result code."""
        ch = cbor2.loads(self.proc.raw(peer.hello()))
        self.counter += 1
        k = peer.Key(key.credential, key.key_id, key.secret)
        r = cbor2.loads(self.proc.raw(peer.command(k, ch[3], self.lock_id, 1, self.counter,
                                                   with_credential=True)))
        return int(r[3] if r[0] == 4 else r[1])


def uplink_row(rt: Runtime, lock_id: str) -> dict[str, Any]:
    """The lock's uplink state through the API's own view."""
    with transaction(rt.sessions) as s:
        st = s.scalars(select(LockUplink)).first()
        assert st is not None
        return {"acked": st.acked_version, "published": st.published_version,
                "last_online": st.last_online, "heartbeats": st.heartbeats}


@pytest.mark.timeout(300)
def test_cancel_reaches_the_connected_lock_and_its_heartbeat_acknowledges(
        connected: tuple[World, UplinkService], broker: Mosquitto, tmp_path: Path) -> None:
    w, _svc = connected
    op = w.operator()
    lock = ConnectedLock(w, op, tmp_path / "lock", broker, "CONN-0001")
    uid = op.create_user()["user_id"]
    now = int(w.clock())
    rid = op.create_key_request(uid, lock.lock_id, now - 60, now + 86400, ["doors"])[
        "request_id"]
    phone = w.phone(op, uid)
    key = phone.sync().keys[0]
    assert lock.pump("uplink.online")
    assert lock.unlock(key) == 0
    op.cancel_key_request(rid)  # no phone comes by after this
    assert lock.pump("lock.revocations.version >= 1"), "the update did not arrive"
    assert lock.unlock(key) == REVOKED
    deadline = time.monotonic() + 30
    while uplink_row(w.rt, lock.lock_id)["acked"] < 1 and time.monotonic() < deadline:
        lock.pump("False", 100)
    row = uplink_row(w.rt, lock.lock_id)
    assert row["acked"] == 1 and row["published"] == 1 and row["last_online"] is not None
    status = op._request("GET", f"/v1/locks/{lock.lock_id}/uplink")
    assert status["acked_revocation_version"] == 1 and status["revocation_version"] == 1
    # the lock's log reached the server over the uplink, verified and de-duplicated
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lock.pump("False", 100)
        with transaction(w.rt.sessions) as s:
            n = s.scalar(select(func.count()).select_from(UsageLog))
        if n and n >= 3:  # boot, the unlock, the refused unlock (and more)
            break
    assert n and n >= 3
    # and the server's signed receipt came back over the uplink: the lock marks what the
    # server stored as received, with no phone (protocol §11 "Receipts")
    with transaction(w.rt.sessions) as s:
        stored = s.scalar(select(func.max(UsageLog.seq)))
    assert lock.pump(f"lock.log.fetched >= {stored}"), "no receipt over the uplink"
    assert _svc.stats["receipts"] >= 1
    with transaction(w.rt.sessions) as s:
        assert s.scalar(select(func.count()).select_from(UplinkOutbox)) == 0
    # disconnect: the account is gone, the lock cannot come back
    op._request("DELETE", f"/v1/locks/{lock.lock_id}/uplink")
    lock.proc.eval("uplink.close()")
    lock.proc.eval("hal.advance(600)")
    assert not lock.pump("uplink.online", 3000)
    lock.proc.stop()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_forged_heartbeats_and_logs_are_refused(
        connected: tuple[World, UplinkService], broker: Mosquitto, tmp_path: Path) -> None:
    w, svc = connected
    op = w.operator()
    lock = ConnectedLock(w, op, tmp_path / "lock", broker, "CONN-0002")
    # a heartbeat signed by another key, claiming revocation version 7, and garbage
    forger = peer.Issuer()
    assert svc.handle(topics.lock_topic(lock.lock_id, topics.UP_HEARTBEAT),
                      cbor2.dumps({1: lock.lock_id, 2: NOW, 3: 7, 4: 1, 5: bytes(32), 6: 0,
                                   15: forger.sk.sign(b"x")}, canonical=True)) == "refused"
    assert svc.handle(topics.lock_topic(lock.lock_id, topics.UP_LOG), b"\xff") == "refused"
    assert svc.handle(topics.lock_topic(lock.lock_id, topics.UP_LOG),
                      cbor2.dumps({1: [b"\x00"], 2: bytes(32), 3: 1, 4: bytes(32), 5: 0,
                                   6: bytes(64)}, canonical=True)) == "refused"
    assert svc.handle(topics.lock_topic("NO-SUCH-LOCK", topics.UP_HEARTBEAT), b"") \
        == "unknown_lock"
    assert svc.handle("kagiya/v1/elsewhere", b"") == "ignored"
    assert uplink_row(w.rt, lock.lock_id)["acked"] == 0
    # the real heartbeat is accepted
    assert lock.pump("uplink.online")
    deadline = time.monotonic() + 30
    while svc.stats["heartbeat"] == 0 and time.monotonic() < deadline:
        lock.pump("False", 100)
    assert svc.stats["heartbeat"] >= 1
    lock.proc.stop()


@pytest.mark.timeout(600)
@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_processes_publish_every_version_exactly_once(
        db_url: str, broker: Mosquitto, tmp_path: Path, server_peer: Peer) -> None:  # noqa: F811
    w, rt = make_world(db_url, tmp_path / "data", **mqtt_settings(broker))
    other = Runtime(Settings(data_dir=tmp_path / "data", db_url=db_url,
                             **mqtt_settings(broker)))
    # one row per claim, so the two processes contend for rows of the same lock
    services = [UplinkService(rt, batch=1), UplinkService(other, batch=1)]
    server_peer.subscribe(topics.PREFIX + "+/down/revocation")
    try:
        op = w.operator()
        lock_ids = [f"MANY-{i:04d}" for i in range(4)]
        uid = op.create_user()["user_id"]
        now = int(w.clock())
        rids = []
        for lid in lock_ids:
            from kagiya.sdk.keys import LockIdentity

            op.register_simulated_lock(LockIdentity.generate(), lid)
            op._request("POST", f"/v1/locks/{lid}/uplink")
            rids += [op.create_key_request(uid, lid, now - 60, now + 86400, ["doors"])[
                "request_id"] for _ in range(5)]
        phone = w.phone(op, uid)
        phone.sync()  # keys exist, so every cancel revokes one and bumps a version
        backlog, live = rids[::2], rids[1::2]
        for rid in backlog:  # a backlog both processes find at start
            op.cancel_key_request(rid)
        for svc in services:
            svc.start()
        assert all(svc.wait_connected(30) for svc in services)
        for rid in live:  # and changes while both publish
            op.cancel_key_request(rid)
        deadline = time.monotonic() + 60
        seen: Counter[tuple[str, int]] = Counter()
        newest: dict[str, int] = {}
        while time.monotonic() < deadline and any(newest.get(lid) != 5 for lid in lock_ids):
            try:
                topic, payload, _ = server_peer.next(timeout=1)
            except Exception:  # noqa: S112 - queue.Empty: keep waiting until the deadline
                continue
            lid = topic.split("/")[3]
            m = cbor2.loads(payload)
            upd = verify_revocation_update(m[1], {k.kid: k.public_bytes() for k in
                                                  [_active(rt)]})
            seen[(lid, upd.version)] += 1
            newest[lid] = max(newest.get(lid, 0), upd.version)
        assert newest == dict.fromkeys(lock_ids, 5)  # nothing lost: each lock got its last
        assert max(seen.values()) == 1, seen  # nothing published twice
        assert sum(s.stats["published"] for s in services) == len(seen)
    finally:
        for svc in services:
            svc.stop()
        w.http.close()
        rt.close()
        other.close()


def _active(rt: Runtime) -> Any:
    with transaction(rt.sessions) as s:
        return rt.keyset(s).active


@pytest.mark.timeout(600)
@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_processes_consume_each_lock_message_exactly_once(
        db_url: str, broker: Mosquitto, tmp_path: Path, server_peer: Peer) -> None:  # noqa: F811
    """The consuming side: two key-server runtimes on one PostgreSQL share the broker's
    subscription; every heartbeat and log page a real lock publishes is handled by exactly
    one of them (an observer outside the group counts what the lock published), none lost."""
    w, rt = make_world(db_url, tmp_path / "data", **mqtt_settings(broker))
    other = Runtime(Settings(data_dir=tmp_path / "data", db_url=db_url,
                             **mqtt_settings(broker)))
    services = [UplinkService(rt), UplinkService(other)]
    server_peer.subscribe(topics.PREFIX + "+/up/+")  # not in the shared group: sees all
    lock = None
    try:
        for svc in services:
            svc.start()
        assert all(svc.wait_connected(30) for svc in services)
        op = w.operator()
        lock = ConnectedLock(w, op, tmp_path / "lock", broker, "PAIR-0001")
        uid = op.create_user()["user_id"]
        now = int(w.clock())
        rids = [op.create_key_request(uid, lock.lock_id, now - 60, now + 86400, ["doors"])[
            "request_id"] for _ in range(4)]
        keys = {k.request_id: k for k in w.phone(op, uid).sync().keys}
        assert lock.pump("uplink.online")
        for i, rid in enumerate(rids):  # each: a pushed update, a heartbeat, log records
            assert lock.unlock(keys[rid]) == 0
            op.cancel_key_request(rid)
            assert lock.pump(f"lock.revocations.version >= {i + 1}")
            assert lock.unlock(keys[rid]) == REVOKED
        observed: Counter[str] = Counter()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the lock's last page was handled
            lock.pump("False", 200)
            try:
                while True:
                    topic, _, _ = server_peer.next(timeout=0.05)
                    observed[topic.rsplit("/", 1)[1]] += 1
            except queue.Empty:
                pass
            handled = sum(s.stats["heartbeat"] + s.stats["log"] for s in services)
            if observed["log"] and handled == sum(observed.values()) \
                    and uplink_row(w.rt, lock.lock_id)["acked"] == 4:
                break
        stats = [dict(s.stats) for s in services]
        assert sum(s.stats["heartbeat"] for s in services) == observed["heartbeat"], stats
        assert sum(s.stats["log"] for s in services) == observed["log"], stats
        assert not any(s.stats["refused"] or s.stats["errors"] for s in services), stats
        row = uplink_row(w.rt, lock.lock_id)
        assert row["heartbeats"] == observed["heartbeat"]  # each recorded once
        assert row["acked"] == 4 and row["published"] == 4
        with transaction(w.rt.sessions) as s:
            n = s.scalar(select(func.count()).select_from(UsageLog))
            seqs = s.scalar(select(func.count(func.distinct(UsageLog.seq))))
        assert n == seqs and n >= 9  # boot + 8 unlocks, stored once each
    finally:
        if lock is not None:
            lock.proc.stop()
        for svc in services:
            svc.stop()
        w.http.close()
        rt.close()
        other.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_object_over_the_message_limit_is_never_published(
        connected: tuple[World, UplinkService], broker: Mosquitto, server_peer: Peer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A message over MAX_MESSAGE (2048 bytes) would be refused by the lock (TOO_LARGE),
    so the server does not publish it: refused with that code, audited, its outbox row
    consumed (no retry loop), and the other locks' updates of the same claim still go out.
    (The revocation capacity keeps real updates under the limit: the fault is injected.)"""
    from kagiya.sdk.errors import ErrorCode, ProtocolError
    from kagiya.sdk.keys import LockIdentity
    from kagiya.sdk.protocol import MAX_MESSAGE, MessageType
    from kagiya.server import revocations
    from kagiya.server.models import AuditEntry, Lock
    from kagiya.server.uplink.service import message

    with pytest.raises(ProtocolError) as e:
        message(MessageType.REVOCATION, bytes(MAX_MESSAGE))
    assert e.value.code == ErrorCode.TOO_LARGE
    w, svc = connected
    real = revocations.signed_update

    def oversized(session: Any, lock: Any, now: int, keys: Any) -> bytes:
        data = real(session, lock, now, keys)
        return data + bytes(MAX_MESSAGE) if lock.lock_id == "BIG-0001" else data

    monkeypatch.setattr(revocations, "signed_update", oversized)
    server_peer.subscribe(topics.PREFIX + "+/down/+")
    op = w.operator()
    uid = op.create_user()["user_id"]
    now = int(w.clock())
    rids = []
    for lid in ("BIG-0001", "FINE-0001"):
        op.register_simulated_lock(LockIdentity.generate(), lid)
        op._request("POST", f"/v1/locks/{lid}/uplink")
        rids.append(op.create_key_request(uid, lid, now - 60, now + 86400, ["doors"])[
            "request_id"])
    w.phone(op, uid).sync()
    op.suspend_user(uid)  # one transaction: both locks' rows in one claim
    topic, _, _ = server_peer.next(timeout=30)
    assert topic == topics.lock_topic("FINE-0001", topics.DOWN_REVOCATION)
    deadline = time.monotonic() + 30
    while not svc.stats["too_large"] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # several polls: a retried row would publish or count again
    assert svc.stats["too_large"] == 1 and not svc.stats["errors"], svc.stats
    with pytest.raises(queue.Empty):
        server_peer.next(timeout=0.5)
    with transaction(w.rt.sessions) as s:
        assert s.scalar(select(func.count()).select_from(UplinkOutbox)) == 0
        entries = s.scalars(select(AuditEntry).where(
            AuditEntry.action == "uplink.refused")).all()
        assert [(a.target, json.loads(a.detail)) for a in entries] == [
            ("BIG-0001", {"kind": "revocation", "code": "TOO_LARGE"})]
        big = s.scalars(select(LockUplink).join(Lock, Lock.pk == LockUplink.lock_pk)
                        .where(Lock.lock_id == "BIG-0001")).one()
        assert big.published_version == 0  # never recorded as published


def _retained(broker: Mosquitto, lock_id: str, name: str) -> list[str]:
    """The topics of ``lock_id`` the broker holds a retained message on (a new subscriber
    gets them at once)."""
    p = Peer(broker, SERVER_USER, broker.server_password, name)
    try:
        p.subscribe(topics.PREFIX + lock_id + "/down/+")
        got = []
        try:
            while True:
                topic, payload, retained = p.next(timeout=1.5)
                if retained and payload:
                    got.append(topic.rsplit("/", 1)[1])
        except queue.Empty:
            return sorted(got)
    finally:
        p.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_deleted_account_leaves_no_retained_message_on_the_broker(
        connected: tuple[World, UplinkService], broker: Mosquitto) -> None:
    """DELETE .../uplink (and DELETE of the lock, and retirement: all go through
    ``drop_account``) orders the lock's retained messages cleared; the uplink thread
    publishes an empty retained message to each of its ``down/`` topics."""
    from kagiya.sdk.keys import LockIdentity

    w, svc = connected
    op = w.operator()
    uid = op.create_user()["user_id"]
    now = int(w.clock())
    for lid in ("GONE-0001", "STAY-0001"):
        op.register_simulated_lock(LockIdentity.generate(), lid)
        op._request("POST", f"/v1/locks/{lid}/uplink")
        rid = op.create_key_request(uid, lid, now - 60, now + 86400, ["doors"])["request_id"]
        w.phone(op, uid).sync()
        op.cancel_key_request(rid)
    deadline = time.monotonic() + 30
    while svc.stats["published"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _retained(broker, "GONE-0001", "probe-1") == ["revocation"]  # what is to go
    op._request("DELETE", "/v1/locks/GONE-0001/uplink")
    deadline = time.monotonic() + 30
    while not svc.stats["cleared"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert svc.stats["cleared"] == 1
    assert _retained(broker, "GONE-0001", "probe-2") == []
    assert _retained(broker, "STAY-0001", "probe-3") == ["revocation"]  # others untouched
    from kagiya.server.models import ServerState
    with transaction(w.rt.sessions) as s:
        assert s.get(ServerState, "uplink-clear:GONE-0001") is None  # the order is done


@pytest.mark.timeout(300)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_receipt_lost_while_the_broker_is_down_is_sent_when_it_returns(
        connected: tuple[World, UplinkService], broker: Mosquitto, server_peer: Peer,
        tmp_path: Path) -> None:
    """The broker stops after a log page arrived and before its receipt could be published:
    the receipt is published once the broker is back, with no new page from the lock."""
    from kagiya.sdk.logreceipt import verify_log_receipt

    w, svc = connected
    op = w.operator()
    lock = ConnectedLock(w, op, tmp_path / "lock", broker, "RCPT-0001")
    server_peer.subscribe(topics.lock_topic(lock.lock_id, topics.UP_LOG))
    assert lock.pump("uplink.online")
    page = None
    deadline = time.monotonic() + 60
    while page is None and time.monotonic() < deadline:  # the boot record's page
        lock.pump("False", 200)
        try:
            page = server_peer.next(timeout=0.1)[1]
        except queue.Empty:
            pass
    assert page is not None
    lock.proc.stop()  # no lock publishes anything from here on
    broker.stop()
    deadline = time.monotonic() + 30
    while svc._connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    sent = svc.stats["receipts"]
    # the page arrives (as if just before the broker went down): stored, receipt not sent
    assert svc.handle(topics.lock_topic(lock.lock_id, topics.UP_LOG), page) == "log"
    assert svc.stats["receipt_failed"] == 1 and svc.stats["receipts"] == sent
    broker.start()
    assert svc.wait_connected(60)
    watcher = Peer(broker, SERVER_USER, broker.server_password, "receipt-watch")
    try:
        watcher.subscribe(topics.lock_topic(lock.lock_id, topics.DOWN_RECEIPT))
        _t, payload, _ = watcher.next(timeout=30)  # retained, or live
        m = cbor2.loads(payload)
        assert m[0] == 13
        with transaction(w.rt.sessions) as s:
            keys = {k.kid: k.public_bytes() for k in [w.rt.keyset(s).active]}
            stored = s.scalar(select(func.max(UsageLog.seq)))
        assert verify_log_receipt(m[1], keys).received == stored
        deadline = time.monotonic() + 30
        while svc.stats["receipts"] == sent and time.monotonic() < deadline:
            time.sleep(0.05)
        assert svc.stats["receipts"] == sent + 1 and svc.stats["receipts_late"] == 1
        assert not svc._late
    finally:
        watcher.close()
