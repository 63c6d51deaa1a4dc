"""Connected-lock benchmark (docs/uplink.md, docs/performance.md "Uplink").

One run, on loopback, with the real Mosquitto broker (TLS, per-lock ACL), a key server
runtime with its uplink service (SQLite, ``uplink_poll_ms`` at its default 100 ms) and a
real lock process (MicroPython unix port) running its MQTT uplink:

* **revoke to refuse**: 50 times, the operator cancels a key request; the time runs from
  the cancel call returning until the lock holds the key ID in its revocation list (from
  then on it refuses the key: checked with an UNLOCK after each sample, not timed);
* **broker round trip**, the baseline measured in the same run: a QoS 1 publish by one
  client until its delivery to another client on the same broker (TLS), 50 times;
* **BLE warm unlock with the uplink busy vs idle**: the lock's main loop order (a queued
  BLE request is handled only between uplink steps), with requests arriving at random
  intervals; busy = the server pushing a time statement every 10 ms (the uplink verifies
  at most one a second and drops the rest unverified, docs/uplink.md). Idle and busy
  alternate in 4 rounds of 30 unlocks each (the first of a session, the credential's
  first use, is left out), so load changes of the shared machine hit both alike.

* **code size** of a connected ESP32 build: the esp32 target's modules
  (firmware/targets.json) compiled with ``mpy-cross -march=xtensawin``, plain and with the
  ``connected`` modules (``esp32_mpy_kb``, ``esp32_connected_mpy_kb``, ``uplink_mpy_kb``).

Last line: ``revoke_to_refuse_p50_ms=… p99_ms=… broker_rtt_ms=… ratio=…
unlock_idle_p50_ms=… unlock_busy_p50_ms=… unlock_busy_p99_ms=… unlock_ratio=…
esp32_mpy_kb=… esp32_connected_mpy_kb=… uplink_mpy_kb=…``.
Goals: p99 < 2000 ms, ratio ≤ 20, unlock_ratio ≤ 1.2; the .mpy budget is 64 KB.
"""

from __future__ import annotations

import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cbor2  # noqa: E402
from kagiya.sdk.signed import sign_time_statement  # noqa: E402
from kagiya.server.uplink import topics  # noqa: E402
from kagiya.server.uplink.mosquitto import SERVER_USER, Mosquitto  # noqa: E402
from kagiya.server.uplink.service import UplinkService, message  # noqa: E402

from bench._stats import pct  # noqa: E402
from tests.firmware import peer  # noqa: E402
from tests.server.conftest import make_world  # noqa: E402
from tests.server.live import free_port  # noqa: E402
from tests.uplink.conftest import Peer  # noqa: E402
from tests.uplink.test_server_uplink import (  # noqa: E402
    ConnectedLock,
    mqtt_settings,
)

N_CANCEL = 50
N_RTT = 50
N_UNLOCK = 120
ROUNDS = 4


def connected_sizes() -> tuple[int, int]:
    """(plain esp32 .mpy bytes, bytes of the connected modules) for xtensawin, exactly as
    ``kagiya install deploy`` builds them (``build.build_image``, ``build.MPY_FLAGS``;
    the budgets are in firmware/targets.json, enforced by tests/firmware/test_build_budgets.py)."""
    import json

    from kagiya.tools.install import build

    doc = json.loads((ROOT / "firmware" / "targets.json").read_text())
    version, sub, _ = build.mpy_cross_version()
    target = build.Target(version, sub, doc["targets"]["esp32"]["arch"])
    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        for connected in (False, True):
            image = build.build_image(ROOT / "firmware", target, cache=Path(tmp),
                                      connected=connected)
            sizes.append(sum(len(b) for p, b in image.files.items() if p.endswith(".mpy")))
    return sizes[0], sizes[1] - sizes[0]


def broker_rtt(broker: Mosquitto) -> list[float]:
    """QoS 1 publish -> delivery between two clients, in ms."""
    a = Peer(broker, SERVER_USER, broker.server_password, "bench-a")
    b = Peer(broker, SERVER_USER, broker.server_password, "bench-b")
    topic = topics.lock_topic("BENCH-RTT", "down/rtt")
    b.subscribe(topic)
    out = []
    for i in range(N_RTT):
        t = time.perf_counter()
        a.client.publish(topic, str(i).encode(), qos=1)
        while b.next(10)[1] != str(i).encode():
            pass
        out.append((time.perf_counter() - t) * 1000)
    a.close()
    b.close()
    return out


def warm_unlocks(lock: ConnectedLock, key: peer.Key, n: int, gap_us: int) -> dict[str, Any]:
    """A new session and ``n`` warm UNLOCKs for ``key`` on it, run in the lock's main-loop
    order (the first carries the credential; each proof uses the previous reply's nonce)."""
    ch = cbor2.loads(lock.proc.raw(peer.hello()))
    out: dict[str, Any] = lock.proc.call(
        "unlock_under_uplink", secret=key.secret.hex(), cti=key.cti.hex(),
        credential=key.credential.hex(), lock_id=lock.lock_id, nonce=ch[3].hex(),
        counter=lock.counter, n=n, gap_us=gap_us)
    lock.counter = out["counter"]
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kagiya-bench-uplink-") as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "broker", free_port()).start()
        settings = mqtt_settings(broker)
        settings["uplink_poll_ms"] = 100  # the default
        w, rt = make_world("sqlite:///" + str(root / "k.db"), root / "data", **settings)
        svc = UplinkService(rt)
        svc.start()
        try:
            assert svc.wait_connected(30)
            op = w.operator(quota=200)
            lock = ConnectedLock(w, op, root / "lock", broker, "BENCH-0001")
            uid = op.create_user()["user_id"]
            now = int(w.clock())
            rids = [op.create_key_request(uid, lock.lock_id, now - 60, now + 86400,
                                          ["doors"])["request_id"] for _ in range(N_CANCEL + 1)]
            keys = {k.request_id: k for k in w.phone(op, uid).sync().keys}
            assert lock.pump("uplink.online")
            # an observer on the lock's down topic splits the time: the server's part (until
            # the broker delivers the update) and the lock's (TLS read, verify, store)
            watch = Peer(broker, SERVER_USER, broker.server_password, "bench-watch")
            arrivals: queue.Queue[float] = queue.Queue()
            watch.client.on_message = lambda _c, _u, m: (
                None if m.retain else arrivals.put(time.perf_counter()))
            watch.subscribe(topics.lock_topic(lock.lock_id, topics.DOWN_REVOCATION))
            revoke: list[float] = []
            server_part: list[float] = []
            for rid in rids[:N_CANCEL]:
                cti = keys[rid].key_id
                op.cancel_key_request(rid)
                t = time.perf_counter()
                assert lock.pump(f"bytes.fromhex('{cti.hex()}') in lock.revocations.entries", 30000)
                revoke.append((time.perf_counter() - t) * 1000)
                server_part.append(max(0.0, (arrivals.get(timeout=30) - t) * 1000))
                assert lock.unlock(keys[rid]) == 23  # REVOKED
            watch.close()
            rtt = broker_rtt(broker)
            live = keys[rids[-1]]
            key = peer.Key(live.credential, live.key_id, live.secret)
            with __import__("kagiya.server.db", fromlist=["transaction"]).transaction(
                    rt.sessions) as s:
                issuer = rt.keyset(s).active
            pusher = Peer(broker, SERVER_USER, broker.server_password, "bench-pusher")
            t_pushed = [int(time.time())]

            def push(stop: threading.Event) -> None:
                while not stop.is_set():
                    t_pushed[0] += 1
                    pusher.client.publish(topics.lock_topic(lock.lock_id, topics.DOWN_TIME),
                                          message(5, sign_time_statement(issuer, t_pushed[0])),
                                          qos=0)
                    time.sleep(0.01)

            # idle and busy alternate in rounds, so a change of the shared machine's load
            # during the run weighs on both alike
            idle: list[float] = []
            busy: list[float] = []
            replies: list[str] = []
            lock.pump("False", 500)
            for _ in range(ROUNDS):
                out = warm_unlocks(lock, key, N_UNLOCK // ROUNDS, 20000)
                idle += out["lat_us"][1:]
                replies += out["replies"]
                stop = threading.Event()
                th = threading.Thread(target=push, args=(stop,), daemon=True)
                th.start()
                lock.pump("False", 1000)
                out = warm_unlocks(lock, key, N_UNLOCK // ROUNDS, 20000)
                stop.set()
                th.join()
                busy += out["lat_us"][1:]
                replies += out["replies"]
                lock.pump("False", 500)  # drain what the pusher left queued
            pusher.close()
            for r in replies:
                m = cbor2.loads(bytes.fromhex(r))
                assert m[0] == 4 and m[3] == 0, m  # every unlock succeeded
            pushed = lock.proc.eval("uplink.received")
        finally:
            svc.stop()
            w.http.close()
            rt.close()
            broker.stop()
    plain, extra = connected_sizes()
    p50, p99 = statistics.median(revoke), pct(revoke, 99)
    rtt50 = statistics.median(rtt)
    i50, b50, b99 = (statistics.median(idle) / 1000, statistics.median(busy) / 1000,
                     pct(busy, 99) / 1000)
    print(f"# revoke->refuse over {N_CANCEL} cancels: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"max {max(revoke):.1f} ms; broker QoS1 round trip p50 {rtt50:.2f} ms")
    sp50 = statistics.median(server_part)
    print(f"# of which the server's part (cancel returned -> broker delivered the update to "
          f"an observer) p50 {sp50:.1f} ms, the lock's part p50 "
          f"{statistics.median(r - s for r, s in zip(revoke, server_part, strict=True)):.1f} ms")
    print(f"# warm unlock in the lock's main loop: idle p50 {i50:.3f} ms; busy "
          f"(objects pushed during the run: {pushed}) p50 {b50:.3f} ms, p99 {b99:.3f} ms")
    print(f"revoke_to_refuse_p50_ms={p50:.1f} p99_ms={p99:.1f} broker_rtt_ms={rtt50:.2f} "
          f"ratio={p50 / rtt50:.1f} unlock_idle_p50_ms={i50:.3f} unlock_busy_p50_ms={b50:.3f} "
          f"unlock_busy_p99_ms={b99:.3f} unlock_ratio={b50 / i50:.2f} "
          f"esp32_mpy_kb={plain / 1024:.1f} esp32_connected_mpy_kb={(plain + extra) / 1024:.1f} "
          f"uplink_mpy_kb={extra / 1024:.1f}")


if __name__ == "__main__":
    main()
