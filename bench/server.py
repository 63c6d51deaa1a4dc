"""Key-server benchmark: key downloads per second over real HTTP against the raw limit.

For each store (SQLite, and PostgreSQL when its binaries are installed) a real server
(``kagiya server run --workers 2``: one worker process per core of the 2-core reference
machine, as the server is deployed) is started on loopback with key reuse off, so every
download is what a phone sends when it needs a key: ``POST /v1/phone/keys`` with a
**device-bound proof** (a DPoP proof JWT signed by the phone's Ed25519 device key, checked
and recorded as used) and the phone's own wrap of a fresh secret K; the server checks the
wrap's form, signs a credential around it, stores it and the proof's ``jti`` in one commit,
signs a time statement and answers. (Proofs and wraps are made by the phones before the
timed run: they are the phone's work, not the server's.) ``CLIENTS`` concurrent clients (default
4, each a keep-alive socket with pre-built requests: a light load generator, so the shared CPU
goes to the server) download as fast as they can, spread over ``PHONES``
enrolled phones.

The baseline, measured in the same run on the same database, is the raw limit of that work:
per download one proof verification (Ed25519), one wrap form check, one credential signature
around the wrap, one time-statement signature, and one database commit inserting a key row
and a proof row, in a tight single-threaded loop without HTTP.

The machine is shared, so each store runs ``ROUNDS`` rounds (HTTP, then raw, back to back)
and the round with the median ratio is reported. Prints one line per round and per store,
then the last line (the weaker store's rates; the slower store's latencies):
``downloads_per_s=… raw_per_s=… ratio=… p50_ms=… p99_ms=…`` and the size of the revocation
update for a lock with 10,000 revoked keys (``revocation_update_bytes``, goal: one message of
at most 2048 bytes) against the full-list baseline (bench/_revocation_size.py).

Environment: ``KAGIYA_BENCH_DOWNLOADS`` (per round, default 600), ``KAGIYA_BENCH_CLIENTS``
(4), ``KAGIYA_BENCH_ROUNDS`` (3), ``KAGIYA_BENCH_WORKERS`` (2),
``KAGIYA_BENCH_STORES`` (``sqlite,postgresql``).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402
from kagiya.sdk.credential import sign_credential  # noqa: E402
from kagiya.sdk.dpop import make_proof, verify_proof  # noqa: E402
from kagiya.sdk.keys import IssuerKey, LockIdentity  # noqa: E402
from kagiya.sdk.keywrap import check_wrap_form, new_wrapped_secret  # noqa: E402
from kagiya.sdk.signed import sign_time_statement  # noqa: E402
from kagiya.server import admin  # noqa: E402
from kagiya.server.client import OperatorClient, PhoneClient, new_device_key  # noqa: E402
from kagiya.server.config import Settings  # noqa: E402
from kagiya.server.db import make_engine  # noqa: E402
from kagiya.server.runtime import Runtime  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench._revocation_size import REVOKED, measure  # noqa: E402
from tests.server.live import LiveServer  # noqa: E402
from tests.server.pg import TempPostgres, pg_bin  # noqa: E402

DOWNLOADS = int(os.environ.get("KAGIYA_BENCH_DOWNLOADS", "600"))
CLIENTS = int(os.environ.get("KAGIYA_BENCH_CLIENTS", "4"))
ROUNDS = int(os.environ.get("KAGIYA_BENCH_ROUNDS", "3"))
WORKERS = int(os.environ.get("KAGIYA_BENCH_WORKERS", "2"))
STORES = os.environ.get("KAGIYA_BENCH_STORES", "sqlite,postgresql").split(",")
PHONES = 16


@dataclass
class Round:
    """One HTTP run and one raw run, back to back."""

    downloads_per_s: float
    raw_per_s: float
    p50_ms: float
    p99_ms: float
    n: int

    @property
    def ratio(self) -> float:
        """HTTP downloads per second over the raw limit."""
        return self.downloads_per_s / self.raw_per_s


def raw_rate(db_url: str, n: int) -> float:
    """The raw limit: per download one proof verification, one wrap form check, one
    credential signature around the wrap, one time-statement signature and one commit
    inserting a key row and a proof row; no HTTP."""
    engine = make_engine(db_url, pool_size=1)
    blob = "BLOB" if db_url.startswith("sqlite") else "BYTEA"
    with engine.begin() as c:
        c.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS bench_raw (cti {blob} PRIMARY KEY, "
                f"credential {blob}, iat BIGINT)"
            )
        )
        c.execute(text("CREATE TABLE IF NOT EXISTS bench_raw_jti (jti TEXT PRIMARY KEY)"))
    issuer = IssuerKey.generate()
    lock = LockIdentity.generate()
    device = Ed25519PrivateKey.generate()
    device_public = device.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    now = int(time.time())
    token = secrets.token_urlsafe(32)
    asks = [
        (make_proof(device, "POST", "/v1/phone/keys", access_token=token, now=now),
         new_wrapped_secret(lock.kex_public)[1])
        for _ in range(n)
    ]
    insert = text("INSERT INTO bench_raw (cti, credential, iat) VALUES (:a, :b, :d)")
    insert_jti = text("INSERT INTO bench_raw_jti (jti) VALUES (:j)")
    start = time.perf_counter()
    for proof, cnf in asks:
        got = verify_proof(proof, device_public=device_public, method="POST",
                           path="/v1/phone/keys", access_token=token, now=now)
        credential, cti = sign_credential(
            issuer,
            iss="kagiya",
            sub="UBENCH",
            aud="BENCH-01",
            nbf=now,
            exp=now + 86400,
            iat=now,
            permissions=3,
            request_version=1,
            cnf=check_wrap_form(cnf, lock.kex_public),
            operator="op_bench",
        )
        sign_time_statement(issuer, now)
        with engine.begin() as c:
            c.execute(insert_jti, {"j": got.jti})
            c.execute(insert, {"a": cti, "b": credential, "d": now})
    elapsed = time.perf_counter() - start
    engine.dispose()
    return n / elapsed


@dataclass
class BenchPhone:
    """An enrolled phone of the benchmark: token, device key and its key request."""

    token: str
    device: Ed25519PrivateKey
    request_id: str
    lock_kex_public: bytes


def download_request(phone: BenchPhone, host: str, port: str) -> bytes:
    """One ``POST /v1/phone/keys`` as a phone sends it: a fresh proof and a fresh wrap."""
    _secret, cnf = new_wrapped_secret(phone.lock_kex_public)
    body = json.dumps({"wraps": [{"request_id": phone.request_id, "cnf": cnf.hex()}]}).encode()
    proof = make_proof(phone.device, "POST", f"http://{host}:{port}/v1/phone/keys",
                       access_token=phone.token)
    return (
        f"POST /v1/phone/keys HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {phone.token}\r\nDPoP: {proof}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def pct(values: list[float], q: float) -> float:
    """Percentile in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def read_response(reader: BinaryIO) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a ``Content-Length`` body: (status, body)."""
    status = int(reader.readline().split(b" ", 2)[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status, reader.read(length)


def http_run(url: str, phones: list[BenchPhone], n: int) -> tuple[float, list[float]]:
    """``n`` downloads by ``CLIENTS`` concurrent clients: (downloads per second, latencies)."""
    latencies: list[float] = []
    guard = threading.Lock()
    errors: list[str] = []
    per_client = n // CLIENTS
    go = threading.Barrier(CLIENTS + 1)

    host, port = url.removeprefix("http://").split(":")

    def client(i: int) -> None:
        # a keep-alive socket with pre-built requests and a minimal HTTP/1.1 response reader:
        # the load generator shares the 2 cores with the server, so it must stay light
        mine = []
        reqs = [  # each a single-use proof and a fresh wrap: made before the timed run
            download_request(phones[(i + j * CLIENTS) % len(phones)], host, port)
            for j in range(per_client)
        ]
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        sock.sendall(f"GET /v1/health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        read_response(reader)
        go.wait()
        for j in range(per_client):
            t0 = time.perf_counter()
            sock.sendall(reqs[j])
            status, body = read_response(reader)
            mine.append(time.perf_counter() - t0)
            if status != 200 or len(json.loads(body)["keys"]) != 1:
                errors.append(f"bad download: {status} {body[:200]!r}")
                break
        reader.close()
        sock.close()
        with guard:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    go.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(errors[0])
    return len(latencies) / elapsed, latencies


def run_store(db_url: str, data: Path) -> list[Round]:
    """Set up an operator, a lock and ``PHONES`` phones with one key request each, then run
    ``ROUNDS`` rounds of HTTP downloads and the raw loop."""
    rt = Runtime(Settings(data_dir=data, db_url=db_url))
    now = rt.now()
    new = admin.create_operator(rt, "Bench", 1000, now - 86400, now + 400 * 86400)
    rt.close()
    srv = LiveServer(db_url, data, env={"KAGIYA_REUSE_MIN_REMAINING": "2"}, workers=WORKERS,
                     ready_timeout=180)  # a loaded shared machine starts slowly
    rounds = []
    try:
        op = OperatorClient.login(srv.url, new.client_id, new.client_secret)
        ident = LockIdentity.generate()
        op.register_simulated_lock(ident, "BENCH-01")
        phones = []
        for _ in range(PHONES):
            uid = op.create_user()["user_id"]
            req = op.create_key_request(uid, "BENCH-01", now, now + 30 * 86400, ["doors", "drive"])
            seed = new_device_key()
            phone = PhoneClient.enroll(srv.url, op.enrollment_code(uid)["code"], seed)
            phones.append(BenchPhone(str(phone.token), Ed25519PrivateKey.from_private_bytes(seed),
                                     req["request_id"], ident.kex_public))
        http_run(srv.url, phones, 4 * CLIENTS)  # warm-up
        for _ in range(ROUNDS):
            dl, lat = http_run(srv.url, phones, DOWNLOADS)
            raw = raw_rate(db_url, len(lat))
            rounds.append(Round(dl, raw, statistics.median(lat) * 1000, pct(lat, 0.99), len(lat)))
    finally:
        srv.stop()
    return rounds


def main() -> int:
    """Run every store; print per-round and per-store lines and the summary line last."""
    tmp = Path(tempfile.mkdtemp(prefix="kagiya-bench-"))
    stores: list[tuple[str, str, Path]] = []
    pg = None
    if "sqlite" in STORES:
        (tmp / "sqlite").mkdir()
        stores.append(("sqlite", f"sqlite:///{tmp / 'sqlite' / 'kagiya.db'}", tmp / "sqlite"))
    if "postgresql" in STORES and pg_bin() is not None:
        pg = TempPostgres()
        (tmp / "pg").mkdir()
        stores.append(("postgresql", pg.create_database("bench"), tmp / "pg"))
    results: list[tuple[str, Round]] = []
    (tmp / "rev").mkdir()
    size = measure(tmp / "rev")  # protocol §7: 10,000 revoked keys of one lock
    print(f"revoked_keys={REVOKED} revocation_update_bytes={size.ours} "
          f"full_list_bytes={size.baseline} fits_one_message={size.fits}", flush=True)
    try:
        for name, url, data in stores:
            rounds = run_store(url, data)
            for i, r in enumerate(rounds):
                print(
                    f"round={i} store={name} downloads_per_s={r.downloads_per_s:.0f} "
                    f"raw_per_s={r.raw_per_s:.0f} ratio={r.ratio:.2f} p50_ms={r.p50_ms:.1f} "
                    f"p99_ms={r.p99_ms:.1f}",
                    flush=True,
                )
            med = sorted(rounds, key=lambda r: r.ratio)[len(rounds) // 2]
            results.append((name, med))
            print(
                f"store={name} downloads_per_s={med.downloads_per_s:.0f} "
                f"raw_per_s={med.raw_per_s:.0f} ratio={med.ratio:.2f} p50_ms={med.p50_ms:.1f} "
                f"p99_ms={med.p99_ms:.1f} clients={CLIENTS} workers={WORKERS} n={med.n} "
                f"rounds={len(rounds)}",
                flush=True,
            )
    finally:
        if pg is not None:
            pg.stop()
    name, worst = min(results, key=lambda r: r[1].ratio)
    p50 = max(r.p50_ms for _, r in results)  # latencies: the slower store's
    p99 = max(r.p99_ms for _, r in results)
    print(
        f"downloads_per_s={worst.downloads_per_s:.0f} raw_per_s={worst.raw_per_s:.0f} "
        f"ratio={worst.ratio:.2f} p50_ms={p50:.1f} p99_ms={p99:.1f} store={name} "
        f"clients={CLIENTS} workers={WORKERS} revocation_update_bytes={size.ours} "
        f"revocation_full_list_bytes={size.baseline} "
        f"revocation_ratio={size.ours / size.baseline:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
