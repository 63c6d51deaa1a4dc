"""Two real key-server OS processes (``python -m kagiya.server run``) on one PostgreSQL and
one Mosquitto: cancels, changes, a user suspension and decommissions made through either
of them reach each lock's topic exactly once and in order, and when one process is killed
(SIGKILL) in the middle of a burst nothing is lost (docs/uplink.md, "Publishing")."""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import cbor2
import pytest
from kagiya.sdk.keys import LockIdentity
from kagiya.sdk.signed import verify_revocation_update
from kagiya.server import admin
from kagiya.server.client import OperatorClient, PhoneClient, new_device_key
from kagiya.server.config import Settings
from kagiya.server.db import transaction
from kagiya.server.models import Lock, LockUplink, UplinkOutbox
from kagiya.server.runtime import Runtime
from kagiya.server.uplink import topics
from kagiya.server.uplink.mosquitto import SERVER_USER, Mosquitto
from sqlalchemy import func, select

from tests.server.conftest import db_url, postgres  # noqa: F401
from tests.server.live import LiveServer
from tests.uplink.conftest import Peer

DAY = 86400
LOCKS = [f"PROC-{i:04d}" for i in range(4)]


def _env(broker: Mosquitto) -> dict[str, str]:
    return {"KAGIYA_MQTT_HOST": "localhost", "KAGIYA_MQTT_PORT": str(broker.port),
            "KAGIYA_MQTT_CA_FILE": str(broker.tls.ca_pem),
            "KAGIYA_MQTT_USERNAME": SERVER_USER,
            "KAGIYA_MQTT_PASSWORD": broker.server_password,
            "KAGIYA_MQTT_PASSWORD_FILE": str(broker.password_file),
            "KAGIYA_MQTT_PID_FILE": str(broker.pid_file), "KAGIYA_UPLINK_POLL_MS": "20",
            "KAGIYA_UPLINK_TIME_INTERVAL_S": "0"}


class Observer:
    """A subscriber outside the servers: every message on every lock's ``down/+``, in
    arrival order, per topic (revocation versions verified with the issuer's key)."""

    def __init__(self, peer: Peer, issuer: dict[bytes, bytes]) -> None:
        self.peer, self.issuer = peer, issuer
        self.revocations: dict[str, list[int]] = defaultdict(list)
        self.decommissions: dict[str, int] = defaultdict(int)
        assert peer.subscribe(topics.PREFIX + "+/down/+") == [1]

    def drain(self, timeout: float = 0.2) -> None:
        """Take what has arrived (waits up to ``timeout`` for the first message)."""
        while True:
            try:
                topic, payload, _ = self.peer.next(timeout=timeout)
            except queue.Empty:
                return
            timeout = 0.01
            lock_id, leaf = topic[len(topics.PREFIX):].split("/", 1)
            m = cbor2.loads(payload)
            if leaf == topics.DOWN_REVOCATION:
                self.revocations[lock_id].append(
                    verify_revocation_update(m[1], self.issuer).version)
            elif leaf == topics.DOWN_DECOMMISSION:
                self.decommissions[lock_id] += 1

    def wait(self, expected: dict[str, int], timeout: float = 60) -> None:
        """Until each lock's newest published version is ``expected`` (or the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.drain()
            if all(self.revocations[k][-1:] == ([v] if v else [])
                   for k, v in expected.items()):
                return


def _versions(rt: Runtime) -> dict[str, int]:
    with transaction(rt.sessions) as s:
        return {lid: v for lid, v in s.execute(
            select(Lock.lock_id, Lock.revocation_version).where(Lock.lock_id.in_(LOCKS)))}


@pytest.mark.timeout(900)
@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_server_processes_publish_each_update_once_in_order_and_survive_a_kill(
        db_url: str, broker: Mosquitto, tmp_path: Path, server_peer: Peer) -> None:  # noqa: F811
    data = tmp_path / "data"
    rt = Runtime(Settings(data_dir=data, db_url=db_url))  # the test's view of the database
    now = rt.now()
    new = admin.create_operator(rt, "Two", 1000, now - DAY, now + 400 * DAY)
    with transaction(rt.sessions) as s:
        issuer = {k.kid: k.public_bytes() for k in [rt.keyset(s).active]}
    obs = Observer(server_peer, issuer)
    servers = [LiveServer(db_url, data, env=_env(broker)),
               LiveServer(db_url, data, env=_env(broker))]
    try:
        ops = [OperatorClient.login(srv.url, new.client_id, new.client_secret)
               for srv in servers]
        alice, bob = (ops[0].create_user()["user_id"], ops[1].create_user()["user_id"])
        rids: dict[str, list[str]] = {}
        for i, lid in enumerate(LOCKS):
            op = ops[i % 2]
            op.register_simulated_lock(LockIdentity.generate(), lid)
            op._request("POST", f"/v1/locks/{lid}/uplink")
            op.create_key_request(alice, lid, now - 60, now + DAY, ["doors"])
            rids[lid] = [op.create_key_request(bob, lid, now - 60, now + DAY, ["doors"])[
                "request_id"] for _ in range(14)]
        phones = {}
        for uid, op in ((alice, ops[0]), (bob, ops[1])):
            code = op.enrollment_code(uid)["code"]
            phones[uid] = PhoneClient.enroll(servers[0].url, code, new_device_key())
            phones[uid].sync()  # keys exist: every change below revokes one and bumps
        assert _versions(rt) == dict.fromkeys(LOCKS, 0)

        # 1. one change at a time, alternating the process it goes through: each lock's
        # topic gets every version exactly once, in order
        steps: list[Any] = []
        for i, lid in enumerate(LOCKS):
            steps.append(lambda i=i, lid=lid: ops[i % 2].cancel_key_request(rids[lid][0]))
            steps.append(lambda i=i, lid=lid: ops[(i + 1) % 2].change_key_request(
                rids[lid][1], permissions=["doors", "drive"]))
        steps.append(lambda: ops[1].suspend_user(alice))  # one transaction, four locks
        for step in steps:
            step()
            obs.wait(_versions(rt))
        want = _versions(rt)
        assert want == dict.fromkeys(LOCKS, 3)
        assert {lid: obs.revocations[lid] for lid in LOCKS} == {lid: [1, 2, 3] for lid in LOCKS}

        # 2. bursts through both processes at once, contending for the same locks' rows:
        # still in order and never twice
        def burst(k: int, picks: slice, started: threading.Event | None = None) -> None:
            mine = [rid for lid in LOCKS for rid in rids[lid][picks][k::2]]
            for n, rid in enumerate(mine):
                try:
                    ops[k].cancel_key_request(rid)
                except Exception:  # noqa: S112 - the killed process stops answering
                    continue
                if started is not None and n == 1:
                    started.set()

        def both(picks: slice, started: threading.Event | None = None) -> None:
            threads = [threading.Thread(target=burst, args=(k, picks, started))
                       for k in (0, 1)]
            for t in threads:
                t.start()
            if started is not None:  # 3. SIGKILL one process in the middle of its burst
                assert started.wait(120)
                servers[0].kill()
            for t in threads:
                t.join(120)

        both(slice(2, 8))
        want = _versions(rt)
        assert all(v > 3 for v in want.values()), want
        obs.wait(want)
        for lid in LOCKS:
            seen = obs.revocations[lid]
            assert seen[-1] == want[lid], (lid, seen, want)  # nothing lost
            assert seen == sorted(set(seen)), (lid, seen)  # in order, none twice

        # 3. the same with one process SIGKILLed in the middle of its burst: its claims roll
        # back and the other process takes them over, so nothing is lost
        before = {lid: len(obs.revocations[lid]) for lid in LOCKS}
        both(slice(8, 14), threading.Event())
        servers[0].log.close()
        want = _versions(rt)
        obs.wait(want)
        for lid in LOCKS:
            seen = obs.revocations[lid][before[lid]:]
            assert seen[-1] == want[lid], (lid, seen, want)  # nothing lost
            # in order; a version may come twice only when the killed process had published
            # it and died before its commit (the survivor publishes it again)
            assert seen == sorted(seen), (lid, seen)
            assert len(seen) - len(set(seen)) <= 1, (lid, seen)

        # 4. the killed process is replaced; decommissions through each process
        servers[0] = LiveServer(db_url, data, env=_env(broker))
        ops[0] = OperatorClient.login(servers[0].url, new.client_id, new.client_secret)
        ops[0].decommission_lock(LOCKS[0])
        ops[1].decommission_lock(LOCKS[1])
        want = _versions(rt)
        obs.wait(want)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
                obs.decommissions[LOCKS[0]] < 1 or obs.decommissions[LOCKS[1]] < 1):
            obs.drain()
        time.sleep(1)  # a duplicate would come within the poll interval
        obs.drain()
        assert dict(obs.decommissions) == {LOCKS[0]: 1, LOCKS[1]: 1}
        for lid in LOCKS[:2]:
            assert obs.revocations[lid][-1] == want[lid]
            assert obs.revocations[lid].count(want[lid]) == 1
        with transaction(rt.sessions) as s:
            assert s.scalar(select(func.count()).select_from(UplinkOutbox)) == 0
            published = {lid: version for lid, version in s.execute(
                select(Lock.lock_id, LockUplink.published_version)
                .join(LockUplink, LockUplink.lock_pk == Lock.pk))}
        assert published == want
    finally:
        for srv in servers:
            srv.stop()
        rt.close()
