"""Key-server benchmark: key downloads per second over real HTTP against the raw limit.

For each store (SQLite, and PostgreSQL when its binaries are installed) a real server
process is started on loopback with key reuse off, so every download signs a fresh key
(Ed25519 + key wrap), signs a time statement, stores the key and answers. The baseline,
measured in the same run on the same database, is the same work without HTTP: the same
number of credential + time-statement signs and one database commit each, in a tight loop.

Prints one line per store, then the last line (the weaker store):
``downloads_per_s=… raw_per_s=… ratio=… p99_ms=…``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kagiya.sdk.credential import issue_credential  # noqa: E402
from kagiya.sdk.keys import IssuerKey, LockIdentity  # noqa: E402
from kagiya.sdk.signed import sign_time_statement  # noqa: E402
from kagiya.server import admin  # noqa: E402
from kagiya.server.client import OperatorClient, PhoneClient, new_device_key  # noqa: E402
from kagiya.server.config import Settings  # noqa: E402
from kagiya.server.db import make_engine  # noqa: E402
from kagiya.server.runtime import Runtime  # noqa: E402
from sqlalchemy import text  # noqa: E402

from tests.server.live import LiveServer  # noqa: E402
from tests.server.pg import TempPostgres, pg_bin  # noqa: E402

DOWNLOADS = int(os.environ.get("KAGIYA_BENCH_DOWNLOADS", "600"))
CLIENTS = int(os.environ.get("KAGIYA_BENCH_CLIENTS", "2"))
PHONES = 8


def raw_rate(db_url: str, n: int) -> float:
    """Signs + one commit per download, no HTTP, on the same database."""
    engine = make_engine(db_url, pool_size=1)
    with engine.begin() as c:
        c.execute(
            text(
                "CREATE TABLE IF NOT EXISTS bench_raw (cti BLOB, credential BLOB)"
                if db_url.startswith("sqlite")
                else "CREATE TABLE IF NOT EXISTS bench_raw (cti BYTEA, credential BYTEA)"
            )
        )
    issuer = IssuerKey.generate()
    lock = LockIdentity.generate()
    now = int(time.time())
    start = time.perf_counter()
    for _ in range(n):
        k = issue_credential(
            issuer,
            iss="kagiya",
            sub="UBENCH",
            aud="BENCH-01",
            nbf=now,
            exp=now + 86400,
            iat=now,
            permissions=3,
            request_version=1,
            lock_kex_public=lock.kex_public,
        )
        sign_time_statement(issuer, now)
        with engine.begin() as c:
            c.execute(
                text("INSERT INTO bench_raw (cti, credential) VALUES (:a, :b)"),
                {"a": k.cti, "b": k.credential},
            )
    elapsed = time.perf_counter() - start
    engine.dispose()
    return n / elapsed


def http_rate(db_url: str, data: Path) -> tuple[float, list[float]]:
    """Downloads per second over HTTP and the per-request latencies (seconds)."""
    rt = Runtime(Settings(data_dir=data, db_url=db_url))
    now = rt.now()
    new = admin.create_operator(rt, "Bench", 1000, now - 86400, now + 400 * 86400)
    rt.close()
    srv = LiveServer(db_url, data, env={"KAGIYA_REUSE_MIN_REMAINING": "2"})
    try:
        op = OperatorClient.login(srv.url, new.client_id, new.client_secret)
        ident = LockIdentity.generate()
        op.register_lock("BENCH-01", ident.sign_public, ident.kex_public)
        tokens = []
        for _ in range(PHONES):
            uid = op.create_user()["user_id"]
            op.create_key_request(uid, "BENCH-01", now, now + 30 * 86400, ["doors", "drive"])
            phone = PhoneClient.enroll(srv.url, op.enrollment_code(uid)["code"], new_device_key())
            tokens.append(str(phone.token))
        latencies: list[float] = []
        lock = threading.Lock()
        per_client = DOWNLOADS // CLIENTS

        def client(i: int) -> None:
            mine = []
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                for j in range(per_client):
                    tok = tokens[(i + j * CLIENTS) % len(tokens)]
                    t0 = time.perf_counter()
                    r = c.get("/v1/phone/keys", headers={"Authorization": f"Bearer {tok}"})
                    mine.append(time.perf_counter() - t0)
                    if r.status_code != 200 or len(r.json()["keys"]) != 1:
                        raise RuntimeError(f"bad download: {r.status_code} {r.text[:200]}")
            with lock:
                latencies.extend(mine)

        # warm-up
        with httpx.Client(base_url=srv.url) as c:
            for tok in tokens:
                c.get("/v1/phone/keys", headers={"Authorization": f"Bearer {tok}"})
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        return len(latencies) / elapsed, latencies
    finally:
        srv.stop()


def pct(values: list[float], q: float) -> float:
    """Percentile in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    """Run every store; print per-store lines and the summary line last."""
    stores: list[tuple[str, str, Path]] = []
    tmp = Path(tempfile.mkdtemp(prefix="kagiya-bench-"))
    (tmp / "sqlite").mkdir()
    stores.append(("sqlite", f"sqlite:///{tmp / 'sqlite' / 'kagiya.db'}", tmp / "sqlite"))
    pg = None
    if pg_bin() is not None:
        pg = TempPostgres()
        (tmp / "pg").mkdir()
        stores.append(("postgresql", pg.create_database("bench"), tmp / "pg"))
    results = []
    try:
        for name, url, data in stores:
            dl, lat = http_rate(url, data)
            raw = raw_rate(url, DOWNLOADS)
            res = (name, dl, raw, dl / raw, statistics.median(lat) * 1000, pct(lat, 0.99))
            results.append(res)
            print(
                f"store={name} downloads_per_s={dl:.0f} raw_per_s={raw:.0f} ratio={res[3]:.2f} "
                f"p50_ms={res[4]:.1f} p99_ms={res[5]:.1f} clients={CLIENTS} n={len(lat)}",
                flush=True,
            )
    finally:
        if pg is not None:
            pg.stop()
    worst = min(results, key=lambda r: r[3])
    p99 = max(r[5] for r in results)
    print(
        f"downloads_per_s={worst[1]:.0f} raw_per_s={worst[2]:.0f} ratio={worst[3]:.2f} "
        f"p99_ms={p99:.1f} store={worst[0]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
