"""``kagiya phone fleet``: many simulated phones against one key server, for load.

Setup (operator API, client credentials): a *fleet lock* is registered with an identity
generated here (as a provisioned lock would have), and for each phone a user ID, a key
request for that lock and a one-time enrollment code. Then every phone, concurrently and
through the same code path as ``kagiya phone``: creates its sealed profile, **enrolls**,
**downloads** its key, and **uploads a usage log**. Because the fleet holds the fleet
lock's signing key it writes a real hash-chained, head-signed log (protocol §11) that
grows as phones use "the car"; each phone uploads its own slice ending at the head it saw,
exactly as a phone uploads what it fetched, so the server verifies and stores real records.

The summary gives, per step, successes, failures by error code and latency percentiles.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from kagiya.phone.app import PhoneApp
from kagiya.phone.ports import Offline, ServerRefused
from kagiya.phone.profile import Profile
from kagiya.sdk.keys import LockIdentity
from kagiya.sdk.logchain import LogEvent, LogRecord, chain, genesis, head_message

STEPS = ("setup", "enroll", "download", "upload")


class FleetLog:
    """The fleet lock's usage log: records appended under a lock, head signed per slice."""

    def __init__(self, lock_id: str, sign_key: Ed25519PrivateKey) -> None:
        self.lock_id = lock_id
        self._key = sign_key
        self._hash = genesis(lock_id)
        self._seq = 0
        self._mutex = threading.Lock()

    def append(self, uses: list[tuple[int, bytes, str]]) -> dict[str, Any]:
        """Append ``(event, cti, sub)`` records; return the ``LogUploadIn`` body of them."""
        with self._mutex:
            prev, records = self._hash, []
            for event, cti, sub in uses:
                self._seq += 1
                rec = LogRecord(self._seq, int(time.time()), event, 0, cti, sub).encode()
                self._hash = chain(self._hash, rec)
                records.append(rec)
            sig = self._key.sign(head_message(self.lock_id, self._seq, self._hash, 0))
            return {"lock_id": self.lock_id, "records": [r.hex() for r in records],
                    "prev_hash": prev.hex(), "head_seq": self._seq, "head_hash": self._hash.hex(),
                    "lost": 0, "head_signature": sig.hex()}


@dataclass
class StepStats:
    """Latencies and outcomes of one step across the fleet."""

    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)

    def pct(self, p: float) -> float:
        """The ``p`` percentile latency (nearest rank), 0 when empty."""
        if not self.seconds:
            return 0.0
        s = sorted(self.seconds)
        return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


@dataclass
class FleetReport:
    """The fleet run's outcome."""

    phones: int
    wall_s: float = 0.0
    steps: dict[str, StepStats] = field(default_factory=lambda: {s: StepStats() for s in STEPS})
    records_uploaded: int = 0

    @property
    def all_ok(self) -> bool:
        """True when every phone finished every step."""
        return all(st.ok == self.phones and not st.failures for st in self.steps.values())


def _code(exc: BaseException) -> str:
    if isinstance(exc, ServerRefused):
        return exc.code
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    return "offline" if isinstance(exc, Offline) else type(exc).__name__


class Fleet:
    """Runs ``phones`` simulated phones against ``server_url``."""

    def __init__(self, server_url: str, client_id: str, client_secret: str, phones: int, *,
                 concurrency: int = 8, home: Path | None = None, uses: int = 3) -> None:
        self.server_url = server_url.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self.phones, self.concurrency, self.uses = phones, concurrency, uses
        self.home = home
        self.report = FleetReport(phones)
        self._mutex = threading.Lock()

    def _timed(self, step: str, fn: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        try:
            out = fn()
        except Exception as exc:
            with self._mutex:
                self.report.steps[step].failures[_code(exc)] += 1
            raise
        with self._mutex:
            st = self.report.steps[step]
            st.ok += 1
            st.seconds.append(time.monotonic() - t0)
        return out

    def run(self, progress: Callable[[str, int], None] = lambda _s, _n: None) -> FleetReport:
        """Set up, then run every phone; ``progress(step, 1)`` is called per finished step."""
        from kagiya.server.client import OperatorClient

        t_start = time.monotonic()
        home = self.home or Path(tempfile.mkdtemp(prefix="kagiya-fleet-"))
        op = OperatorClient.login(self.server_url, self.client_id, self.client_secret)
        sign = Ed25519PrivateKey.generate()
        lock_id = f"FLEET-{secrets.token_hex(3).upper()}"
        ident = LockIdentity.from_private_bytes(
            sign.private_bytes_raw(), X25519PrivateKey.generate().private_bytes_raw())
        op.register_simulated_lock(ident, lock_id, vehicle_label="fleet load test")
        log = FleetLog(lock_id, sign)
        now = int(time.time())

        def setup(i: int) -> str:
            user = op.create_user()["user_id"]
            op.create_key_request(user, lock_id, now - 60, now + 30 * 86400,
                                  ["doors", "drive", "log"])
            return str(op.enrollment_code(user)["code"])

        def phone(i: int, code: str) -> None:
            app = PhoneApp(Profile(f"fleet-{i:05d}", home=home))
            self._timed("enroll", lambda: app.enroll(self.server_url, code))
            progress("enroll", 1)
            self._timed("download", app.sync)
            progress("download", 1)
            st = app.state()
            key = next(iter(st.keys.values()))
            uses = [(LogEvent.UNLOCK if n % 2 == 0 else LogEvent.LOCK, key.key_id, st.user_id)
                    for n in range(self.uses)]
            with app.profile.keystore.locked():
                app.profile.outbox.put("log", log.append(uses))

            def upload() -> None:
                rep = app.upload()
                if rep.sent != 1:
                    raise ServerRefused(0, "upload-not-delivered", "; ".join(rep.errors))

            self._timed("upload", upload)
            with self._mutex:
                self.report.records_uploaded += self.uses
            progress("upload", 1)

        try:
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                codes: dict[int, str] = {}
                futs = {pool.submit(self._timed, "setup", partial(setup, i)): i
                        for i in range(self.phones)}
                for fut in as_completed(futs):
                    if fut.exception() is None:
                        codes[futs[fut]] = fut.result()
                    progress("setup", 1)
                runs = [pool.submit(phone, i, c) for i, c in sorted(codes.items())]
                for fut in as_completed(runs):
                    fut.exception()  # counted in the report already
        finally:
            op.close()
            if self.home is None:
                shutil.rmtree(home, ignore_errors=True)
        self.report.wall_s = time.monotonic() - t_start
        return self.report


def print_report(rep: FleetReport) -> None:
    """The summary table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"fleet: {rep.phones} phones in {rep.wall_s:.1f} s")
    for col in ("step", "ok", "failed", "p50 ms", "p95 ms", "max ms"):
        table.add_column(col, justify="left" if col in ("step", "failed") else "right")
    for name, st in rep.steps.items():
        failed = ", ".join(f"{c}×{n}" for c, n in st.failures.most_common()) or "0"
        table.add_row(name, str(st.ok), failed, f"{st.pct(50) * 1000:.0f}",
                      f"{st.pct(95) * 1000:.0f}",
                      f"{max(st.seconds, default=0) * 1000:.0f}")
    Console().print(table)
    per_s = rep.steps["download"].ok / rep.wall_s if rep.wall_s else 0.0
    print(f"records_uploaded={rep.records_uploaded} downloads_per_s={per_s:.1f} "
          f"mean_download_ms={statistics.fmean(rep.steps['download'].seconds or [0]) * 1000:.0f}")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``kagiya phone fleet`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "fleet", help="simulate many phones against the server (enroll, download, upload logs)")
    p.add_argument("--phones", type=int, default=10, help="number of phones")
    p.add_argument("--server", default=os.environ.get("KAGIYA_SERVER_URL",
                                                      "http://127.0.0.1:8080"))
    p.add_argument("--client-id", default=os.environ.get("KAGIYA_CLIENT_ID"),
                   help="operator client ID (or $KAGIYA_CLIENT_ID)")
    p.add_argument("--concurrency", type=int, default=8, help="phones working at once")
    p.add_argument("--uses", type=int, default=3, help="log records per phone")
    p.set_defaults(handler=_handler)
    return p


def _handler(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    secret = os.environ.get("KAGIYA_CLIENT_SECRET")
    if not args.client_id or not secret:
        print("error: set KAGIYA_CLIENT_ID and KAGIYA_CLIENT_SECRET (operator client "
              "credentials; the secret is read from the environment only)")
        return 2
    if args.phones < 1:
        print("error: --phones must be at least 1")
        return 2
    home = Path(args.home) if args.home else None
    fleet = Fleet(args.server, args.client_id, secret, args.phones,
                  concurrency=max(1, args.concurrency), home=home, uses=max(1, args.uses))
    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn()) as bar:
        tasks = {s: bar.add_task(s, total=args.phones) for s in STEPS}
        try:
            rep = fleet.run(lambda step, n: bar.advance(tasks[step], n))
        except (Offline, ServerRefused) as exc:
            print(f"error: {exc}")
            return 3
        except Exception as exc:
            if type(exc).__name__ in ("ApiProblem", "ConnectError", "HTTPError"):
                print(f"error: setup failed: {exc}")
                return 3
            raise
    print_report(rep)
    return 0 if rep.all_ok else 1
