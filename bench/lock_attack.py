"""The owner's unlock under attack, on the virtual BLE bench (docs/performance.md, protocol §16).

One run, one virtual lock (real firmware in MicroPython, Bumble virtual controllers), one
owner phone with a warm session:

* idle: the owner's warm unlock/lock latency with nobody else around (the baseline);
* under attack: the same owner while strangers, each on a radio of its own, flood every
  attack of issue #13 at once - unknown-issuer TIME messages, stale time statements,
  bad proofs against the owner's sniffed key ID, a HELLO flood, and connection churn
  (links that connect and sit idle to take the slots) - plus, at the end, a cold owner
  connect (scan, connect, HELLO, COMMAND) while the attackers still hold links.

Last line: ``owner_p50_ms=… owner_p99_ms=… owner_p50_idle_ms=… owner_p99_idle_ms=…
ratio=… cold_under_attack_ms=… attacker_requests=… refused_owner=0``. Goal: the owner
always gets through (``refused_owner=0``), ``ratio`` (p50 under attack / idle) ≤ 5.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kagiya.hil.bumble_backend import close_adapters  # noqa: E402
from kagiya.hil.sim_target import Target, sim_target  # noqa: E402
from kagiya.sdk import messages  # noqa: E402
from kagiya.sdk.client import LockClient, find_lock  # noqa: E402
from kagiya.sdk.client_errors import LinkError, LockRefusedError  # noqa: E402
from kagiya.sdk.keys import IssuerKey  # noqa: E402
from kagiya.sdk.signed import sign_time_statement  # noqa: E402

from bench._stats import pct  # noqa: E402

N_IDLE = 60
N_ATTACK = 60


class Attackers:
    """Strangers flooding the lock until ``stop`` is set; counts their requests."""

    def __init__(self, target: Target, cti: bytes) -> None:
        self.target = target
        self.cti = cti
        self.stop = asyncio.Event()
        self.requests = 0
        self.tasks: list[asyncio.Task[None]] = []

    async def _link(self, name: str) -> LockClient:
        phone = self.target.phone(name)
        c = LockClient(await find_lock(self.target.lock_id, 10, backend=phone),
                       backend=phone, timeout=3, retries=0)
        await c.connect()
        return c

    async def _loop(self, name: str, make: list[bytes]) -> None:
        while not self.stop.is_set():
            try:
                c = await self._link(name)
            except (LinkError, TimeoutError):
                await asyncio.sleep(0.2)
                continue
            try:
                i = 0
                while not self.stop.is_set() and c.is_connected:
                    await c.request(make[i % len(make)])
                    self.requests += 1
                    i += 1
            except (LinkError, TimeoutError):
                pass  # dropped by the lock's connection policy: come back
            finally:
                await c.disconnect()

    async def _squat(self, name: str) -> None:
        """Connect and sit idle (takes a slot until the lock drops or evicts it)."""
        while not self.stop.is_set():
            with contextlib.suppress(LinkError, TimeoutError):
                c = await self._link(name)
                while c.is_connected and not self.stop.is_set():
                    await asyncio.sleep(0.2)
                await c.disconnect()
            await asyncio.sleep(0.1)

    def start(self) -> None:
        now = int(time.time())
        forged = [messages.encode(messages.TimeMessage(
            sign_time_statement(IssuerKey.generate(), now + i))) for i in range(4)]
        stale = [messages.encode(messages.TimeMessage(
            sign_time_statement(self.target.issuer, now - 3600)))]
        hello = messages.encode(messages.Hello())
        bad = [hello] + [messages.encode(messages.CommandRequest(self.cti, c, 1, bytes(32)))
                         for c in range(1, 8)]
        for name, msgs in (("flood-time", forged + stale), ("flood-proof", bad),
                           ("flood-hello", [hello])):
            self.tasks.append(asyncio.ensure_future(self._loop(name, msgs)))
        self.tasks.append(asyncio.ensure_future(self._squat("squatter")))

    async def close(self) -> None:
        self.stop.set()
        for t in self.tasks:  # a task cut off mid-request is cancelled: that is the end
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(t, 10)


async def _samples(lock: LockClient, key: object, n: int, refused: list[int]) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        try:
            await (lock.unlock(key) if i % 2 else lock.lock(key))  # type: ignore[arg-type]
        except (LockRefusedError, LinkError):
            refused[0] += 1
            continue
        out.append((time.perf_counter() - t) * 1000)
    return out


async def run(root: Path) -> str:
    target = sim_target(root / "lock")
    refused = [0]
    try:
        key = target.key()
        phone = target.phone("owner")
        device = await find_lock(target.lock_id, 5, backend=phone)
        async with LockClient(device, backend=phone) as lock:
            await lock.unlock(key)  # first use; the session is open
            idle = await _samples(lock, key, N_IDLE, refused)
            attackers = Attackers(target, key.cti)
            attackers.start()
            await asyncio.sleep(2.0)  # let the floods get going
            attacked = await _samples(lock, key, N_ATTACK, refused)
            wallet = lock.wallet
        t = time.perf_counter()
        try:
            dev = await find_lock(target.lock_id, 15, backend=phone)
            async with LockClient(dev, backend=phone, wallet=wallet) as lock:
                await lock.unlock(key)
            cold = (time.perf_counter() - t) * 1000
        except (LockRefusedError, LinkError):
            refused[0] += 1
            cold = float("nan")
        await attackers.close()
        await close_adapters()
    finally:
        target.close()
    p50, p99 = statistics.median(attacked), pct(attacked, 99)
    i50, i99 = statistics.median(idle), pct(idle, 99)
    print(f"owner warm unlock, idle:         p50 {i50:.2f} ms  p99 {i99:.2f} ms (n={len(idle)})")
    print(f"owner warm unlock, under attack: p50 {p50:.2f} ms  p99 {p99:.2f} ms "
          f"(n={len(attacked)}; {attackers.requests} attacker requests)")
    print(f"owner cold connect + unlock, under attack: {cold:.0f} ms")
    return (f"owner_p50_ms={p50:.2f} owner_p99_ms={p99:.2f} owner_p50_idle_ms={i50:.2f} "
            f"owner_p99_idle_ms={i99:.2f} ratio={p50 / i50:.2f} cold_under_attack_ms={cold:.0f} "
            f"attacker_requests={attackers.requests} refused_owner={refused[0]}")


def main() -> None:
    """Run the benchmark and print its summary line last."""
    with tempfile.TemporaryDirectory() as d:
        line = asyncio.run(run(Path(d)))
    print(line)


if __name__ == "__main__":
    main()
