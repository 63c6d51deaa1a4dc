"""BLE unlock benchmark on the virtual bench (docs/performance.md "BLE unlock budget").

One run, one virtual lock (real firmware in MicroPython, Bumble virtual controllers):

* raw GATT round trip on the same link: a 1-byte write answered by a 6-byte notify
  from the lock's BLE layer (a FRAMING error: no protocol work) - the floor;
* warm unlock: connected, session open, key cached by the lock (COMMAND → RESULT);
* first use: a new key on the open link (credential verified: Ed25519 + key unwrap);
* cold: scan + connect + MTU exchange + discovery + HELLO + COMMAND for a known key.

Last line: ``raw_rtt_ms=… warm_p50_ms=… warm_p95_ms=… ratio=… first_use_ms=… cold_ms=…``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kagiya.hil.bumble_backend import close_adapters  # noqa: E402
from kagiya.hil.sim_target import sim_target  # noqa: E402
from kagiya.sdk.ble import REQUEST_UUID  # noqa: E402
from kagiya.sdk.client import LockClient, find_lock  # noqa: E402

from bench._stats import pct  # noqa: E402

N_RAW = 100
N_WARM = 100
N_FIRST = 8
N_COLD = 8


async def run(root: Path) -> str:
    target = sim_target(root / "lock")
    try:
        phone = target.phone()
        key = target.key()
        device = await find_lock(target.lock_id, 5, backend=phone)
        raw: list[float] = []
        warm: list[float] = []
        first: list[float] = []
        cold: list[float] = []
        async with LockClient(device, backend=phone) as lock:
            await lock.unlock(key)  # first use of `key`; opens the session
            transport = lock._transport
            for _ in range(N_RAW):
                t = time.perf_counter()
                await transport.client.write_gatt_char(REQUEST_UUID, b"\x01", response=True)
                await transport.receive(5)
                raw.append((time.perf_counter() - t) * 1000)
            for i in range(N_WARM):
                t = time.perf_counter()
                await (lock.unlock(key) if i % 2 else lock.lock(key))
                warm.append((time.perf_counter() - t) * 1000)
            for _ in range(N_FIRST):
                fresh = target.key()
                t = time.perf_counter()
                await lock.unlock(fresh)
                first.append((time.perf_counter() - t) * 1000)
            wallet = lock.wallet
        for _ in range(N_COLD):
            await asyncio.sleep(0.05)
            t = time.perf_counter()
            dev = await find_lock(target.lock_id, 5, backend=phone)
            async with LockClient(dev, backend=phone, wallet=wallet) as lock:
                await lock.unlock(key)
            cold.append((time.perf_counter() - t) * 1000)
        await close_adapters()
    finally:
        target.close()
    raw_p50 = statistics.median(raw)
    warm_p50, warm_p95 = statistics.median(warm), pct(warm, 95)
    print(f"raw GATT round trip: p50 {raw_p50:.2f} ms  p95 {pct(raw, 95):.2f} ms  (n={N_RAW})")
    print(f"warm unlock:         p50 {warm_p50:.2f} ms  p95 {warm_p95:.2f} ms  (n={N_WARM})")
    print(f"first-use unlock:    p50 {statistics.median(first):.2f} ms  "
          f"p95 {pct(first, 95):.2f} ms  (n={N_FIRST})")
    print(f"cold unlock:         p50 {statistics.median(cold):.2f} ms  "
          f"p95 {pct(cold, 95):.2f} ms  (n={N_COLD})")
    return (f"raw_rtt_ms={raw_p50:.2f} warm_p50_ms={warm_p50:.2f} warm_p95_ms={warm_p95:.2f} "
            f"ratio={warm_p50 / raw_p50:.2f} first_use_ms={statistics.median(first):.2f} "
            f"cold_ms={statistics.median(cold):.2f}")


def main() -> None:
    """Run the benchmark and print its summary line last."""
    with tempfile.TemporaryDirectory() as d:
        line = asyncio.run(run(Path(d)))
    print(line)


if __name__ == "__main__":
    main()
