"""Fleet-scale benchmark: key downloads and operator list pages on a fleet-sized database.

For each store (SQLite, and PostgreSQL when its binaries are installed) two databases are
built in the same run:

* **fleet**: ``LOCKS`` locks (10,000), ``USERS`` user IDs with one phone each (100,000),
  ``KEYS // 5`` key requests and ``KEYS`` issued keys (1,000,000; five per request, its
  re-issues of the last weeks, all unexpired so the server's housekeeping keeps them);
* **small**: the same shape with ``SMALL_KEYS`` issued keys (1,000) - the baseline.

Both are populated with bulk inserts straight into the migrated schema (SQLite: SQLAlchemy
Core ``executemany`` in batches; PostgreSQL: ``COPY``; then ``ANALYZE``) so the run takes
minutes, and one operator owns everything. A real server (``kagiya server run``, ``WORKERS``
workers) is started on each; ``PHONES`` phones enrolled through the API download their key
(``POST /v1/phone/keys`` with a DPoP proof and a fresh wrap, key reuse off, as in
``bench/server.py``) one request at a time, alternating small and fleet in ``ROUNDS`` rounds
so both see the same machine load.

On the fleet database the operator list endpoints are paged with their cursors: a page of
100 at random cursor positions (``GET /v1/locks``, ``/v1/users``, ``/v1/key-requests``),
``/v1/key-requests`` of one user and of one lock, and walks that follow ``next_cursor``.

Prints one line per store and endpoint, then the last line (the worse store's figures):
``keys=… download_p50_ms=… small_p50_ms=… ratio=… list_p99_ms=…``. Goals (issue #17 §5):
``ratio <= 1.2`` and ``list_p99_ms < 50``.

Environment: ``KAGIYA_SCALE_LOCKS`` (10000), ``KAGIYA_SCALE_USERS`` (100000),
``KAGIYA_SCALE_KEYS`` (1000000), ``KAGIYA_SCALE_SMALL_KEYS`` (1000),
``KAGIYA_SCALE_DOWNLOADS`` (per round and database, 100), ``KAGIYA_SCALE_ROUNDS`` (3),
``KAGIYA_SCALE_LISTS`` (requests per list endpoint, 100), ``KAGIYA_BENCH_WORKERS`` (2),
``KAGIYA_BENCH_STORES`` (``sqlite,postgresql``), ``KAGIYA_SCALE_EXPLAIN`` (set: print the
plan of every read of a download and of each list page on the fleet database).
"""

from __future__ import annotations

import os
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from kagiya.sdk.keys import LockIdentity  # noqa: E402
from kagiya.server import admin  # noqa: E402
from kagiya.server.client import OperatorClient, PhoneClient, new_device_key  # noqa: E402
from kagiya.server.config import Settings  # noqa: E402
from kagiya.server.db import make_engine  # noqa: E402
from kagiya.server.models import IssuedKey, KeyRequest, Lock, Phone, User  # noqa: E402
from kagiya.server.runtime import Runtime  # noqa: E402
from sqlalchemy import Table, insert, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bench._stats import pct  # noqa: E402
from bench.server import BenchPhone, download_request, read_response  # noqa: E402
from tests.server.live import LiveServer  # noqa: E402
from tests.server.pg import TempPostgres, pg_bin  # noqa: E402

LOCKS = int(os.environ.get("KAGIYA_SCALE_LOCKS", "10000"))
USERS = int(os.environ.get("KAGIYA_SCALE_USERS", "100000"))
KEYS = int(os.environ.get("KAGIYA_SCALE_KEYS", "1000000"))
SMALL_KEYS = int(os.environ.get("KAGIYA_SCALE_SMALL_KEYS", "1000"))
DOWNLOADS = int(os.environ.get("KAGIYA_SCALE_DOWNLOADS", "100"))
ROUNDS = int(os.environ.get("KAGIYA_SCALE_ROUNDS", "3"))
LISTS = int(os.environ.get("KAGIYA_SCALE_LISTS", "100"))
WORKERS = int(os.environ.get("KAGIYA_BENCH_WORKERS", "2"))
STORES = os.environ.get("KAGIYA_BENCH_STORES", "sqlite,postgresql").split(",")
PHONES = 8
BATCH = 5000
KEYS_PER_REQUEST = 5
DAY = 86400
CREDENTIAL = bytes(range(256)) + bytes(range(120))  # the size of a real credential


@dataclass(frozen=True)
class Shape:
    """How many rows of each kind a database gets."""

    locks: int
    users: int
    keys: int

    @classmethod
    def scaled(cls, keys: int) -> Shape:
        """The fleet's proportions (1 lock : 10 users : 100 keys) at ``keys`` issued keys."""
        if keys >= KEYS:
            return cls(LOCKS, USERS, keys)
        return cls(max(1, keys * LOCKS // KEYS), max(1, keys * USERS // KEYS), keys)


def _batches(n: int, make: Callable[[int], dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, n, BATCH):
        yield [make(i) for i in range(start, min(n, start + BATCH))]


def _bulk(engine: Engine, table: Table, n: int, make: Callable[[int], dict[str, Any]]) -> None:
    if engine.dialect.name == "postgresql":  # COPY: the fleet loads in minutes, not a quarter hour
        # COPY bypasses SQLAlchemy: the model's Python-side defaults are filled in here
        defaults = {c.name: c.default for c in table.columns
                    if c.default is not None and c.server_default is None}
        for rows in _batches(n, make):
            for col, default in defaults.items():
                if col not in rows[0]:
                    for row in rows:
                        row[col] = (default.arg(None)  # type: ignore[attr-defined]
                                    if default.is_callable else default.arg)  # type: ignore[attr-defined]
            cols = list(rows[0])
            raw = engine.raw_connection()
            try:
                with raw.driver_connection.cursor() as cur, cur.copy(  # type: ignore[union-attr]
                        f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([row[k] for k in cols])
                raw.commit()
            finally:
                raw.close()
        return
    for rows in _batches(n, make):
        with engine.begin() as c:
            c.execute(insert(table), rows)


def populate(engine: Engine, operator_id: str, shape: Shape, now: int) -> None:
    """Bulk-insert ``shape``'s locks, users + phones, key requests and issued keys
    (primary keys from 1; the benchmark's own rows come after them through the API)."""
    rng = random.Random(17)  # noqa: S311 - test data
    requests = max(1, shape.keys // KEYS_PER_REQUEST)

    def lock(i: int) -> dict[str, Any]:
        return {"pk": i + 1, "lock_id": f"F{i:07d}", "operator_id": operator_id,
                "sign_public": rng.randbytes(32), "kex_public": rng.randbytes(32),
                "vehicle_label": f"品川 {i % 1000:03d} あ {i % 10000:04d}",
                "created_at": now - DAY}

    def user(i: int) -> dict[str, Any]:
        return {"pk": i + 1, "user_id": f"UF{i:010d}", "operator_id": operator_id,
                "created_at": now - DAY}

    def phone(i: int) -> dict[str, Any]:
        return {"id": f"PF{i:010d}", "operator_id": operator_id, "user_pk": i + 1,
                "device_public": i.to_bytes(8, "big") + rng.randbytes(24),
                "created_at": now - DAY}

    def request(i: int) -> dict[str, Any]:
        return {"id": f"RF{i:010d}", "operator_id": operator_id,
                "user_pk": i % shape.users + 1, "lock_pk": i % shape.locks + 1,
                "nbf": now - 300 * DAY, "exp": now + 65 * DAY, "permissions": 3,
                "created_at": now - 300 * DAY, "updated_at": now - 300 * DAY}

    def key(i: int) -> dict[str, Any]:
        r = i // KEYS_PER_REQUEST % requests
        age = KEYS_PER_REQUEST - 1 - i % KEYS_PER_REQUEST  # 0: the newest key
        iat = now - age * 10 * DAY - DAY  # all unexpired: housekeeping keeps every row
        return {"cti": i.to_bytes(4, "big") + rng.randbytes(12), "operator_id": operator_id,
                "request_id": f"RF{r:010d}", "phone_id": f"PF{r % shape.users:010d}",
                "lock_pk": r % shape.locks + 1, "request_version": 1, "nbf": iat,
                "exp": iat + 90 * DAY, "iat": iat, "kid": "bench000",
                "credential": CREDENTIAL, "revoked": i % 97 == 0}

    _bulk(engine, Lock.__table__, shape.locks, lock)
    _bulk(engine, User.__table__, shape.users, user)
    _bulk(engine, Phone.__table__, shape.users, phone)
    _bulk(engine, KeyRequest.__table__, requests, request)
    _bulk(engine, IssuedKey.__table__, shape.keys, key)
    with engine.connect() as c:
        if engine.dialect.name == "postgresql":
            c.execute(text("ANALYZE"))
            # identity columns continue after the bulk-inserted primary keys
            for table in ("locks", "users"):
                c.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'pk'), "  # noqa: S608
                               f"(SELECT max(pk) FROM {table}))"))
            c.commit()
        else:
            c.exec_driver_sql("ANALYZE")


@dataclass
class Database:
    """One populated database with its running server and enrolled phones."""

    name: str
    shape: Shape
    server: LiveServer
    operator: OperatorClient
    phones: list[BenchPhone]
    latencies: list[float]
    operator_id: str = ""
    url: str = ""


def build(name: str, db_url: str, data: Path, shape: Shape) -> Database:
    """Migrate, bulk-populate, start the server and enroll ``PHONES`` phones through it."""
    rt = Runtime(Settings(data_dir=data, db_url=db_url))
    now = rt.now()
    new = admin.create_operator(rt, "Fleet", 10 * LOCKS + 100, now - DAY, now + 400 * DAY)
    rt.close()
    engine = make_engine(db_url, pool_size=1)
    t0 = time.perf_counter()
    populate(engine, new.operator_id, shape, now)
    engine.dispose()
    print(f"db={name} locks={shape.locks} users={shape.users} keys={shape.keys} "
          f"populate_s={time.perf_counter() - t0:.0f}", flush=True)
    srv = LiveServer(db_url, data, env={"KAGIYA_REUSE_MIN_REMAINING": "2"}, workers=WORKERS,
                     ready_timeout=180)
    op = OperatorClient.login(srv.url, new.client_id, new.client_secret)
    ident = LockIdentity.generate()
    op.register_simulated_lock(ident, "BENCH-01")
    phones = []
    for _ in range(PHONES):
        uid = op.create_user()["user_id"]
        req = op.create_key_request(uid, "BENCH-01", now, now + 30 * DAY, ["doors", "drive"])
        seed = new_device_key()
        phone = PhoneClient.enroll(srv.url, op.enrollment_code(uid)["code"], seed)
        phones.append(BenchPhone(str(phone.token), Ed25519PrivateKey.from_private_bytes(seed),
                                 req["request_id"], ident.kex_public))
    return Database(name, shape, srv, op, phones, [], new.operator_id, db_url)


def downloads(db: Database, n: int) -> None:
    """``n`` downloads one after the other on one keep-alive connection; latencies kept."""
    host, port = db.server.url.removeprefix("http://").split(":")
    reqs = [download_request(db.phones[j % len(db.phones)], host, port) for j in range(n)]
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        for req in reqs:
            t0 = time.perf_counter()
            sock.sendall(req)
            status, body = read_response(reader)
            db.latencies.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"{db.name}: download {status} {body[:200]!r}")
        reader.close()


def list_latencies(db: Database) -> dict[str, list[float]]:
    """Latency samples (seconds) of the operator list endpoints, paged with cursors."""
    rng = random.Random(5)  # noqa: S311
    shape = db.shape
    requests = max(1, shape.keys // KEYS_PER_REQUEST)
    headers = {"Authorization": f"Bearer {db.operator.token}"}
    out: dict[str, list[float]] = {}
    with httpx.Client(base_url=db.server.url, headers=headers, timeout=30) as http:

        def timed(label: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
            t0 = time.perf_counter()
            resp = http.get(path, params=params)
            out.setdefault(label, []).append(time.perf_counter() - t0)
            if resp.status_code != 200:
                raise RuntimeError(f"{path} {params}: {resp.status_code} {resp.text[:200]}")
            doc: dict[str, Any] = resp.json()
            return doc

        http.get("/v1/locks", params={"limit": 1})  # warm the connection
        for _ in range(LISTS):
            timed("locks", "/v1/locks", {"limit": 100, "cursor": rng.randrange(shape.locks)})
            timed("users", "/v1/users", {"limit": 100, "cursor": rng.randrange(shape.users)})
            timed("key_requests", "/v1/key-requests",
                  {"limit": 100, "cursor": f"RF{rng.randrange(requests):010d}"})
            timed("key_requests_of_user", "/v1/key-requests",
                  {"limit": 100, "user_id": f"UF{rng.randrange(shape.users):010d}"})
            timed("key_requests_of_lock", "/v1/key-requests",
                  {"limit": 100, "lock_id": f"F{rng.randrange(shape.locks):07d}"})
        for path in ("/v1/locks", "/v1/users", "/v1/key-requests"):  # follow next_cursor
            cursor = None
            for _ in range(max(1, LISTS // 10)):
                params: dict[str, Any] = {"limit": 100}
                if cursor is not None:
                    params["cursor"] = cursor
                cursor = timed("walk" + path.replace("/v1/", "_").replace("-", "_"), path,
                               params).get("next_cursor")
                if cursor is None:
                    break
    return out


def explain(db_url: str, operator_id: str, shape: Shape) -> None:
    """``KAGIYA_SCALE_EXPLAIN=1``: the query plan of every read of a key download and of the
    list pages on the fleet database (PostgreSQL ``EXPLAIN (ANALYZE, BUFFERS)``, SQLite
    ``EXPLAIN QUERY PLAN``), as the server renders them; a line ``scan`` names any full
    scan of a fleet-sized table."""
    from types import SimpleNamespace

    from kagiya.server import issuance, revocations
    from kagiya.server.services import key_requests, locks, users
    from kagiya.server.services.context import Ctx
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    engine = make_engine(db_url, pool_size=1)
    seen: list[tuple[str, str, Any]] = []
    label = [""]

    @event.listens_for(engine, "before_cursor_execute")
    def grab(_conn: Any, _cur: Any, statement: str, parameters: Any, *_a: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((label[0], statement, parameters))

    now = int(time.time())
    requests = max(1, shape.keys // KEYS_PER_REQUEST)
    with Session(engine) as s:
        phone_id, user_pk = s.execute(text(
            "SELECT id, user_pk FROM phones WHERE id NOT LIKE 'PF%' LIMIT 1")).one()
        ctx = Ctx(s, SimpleNamespace(operator=SimpleNamespace(id=operator_id)),
                  now, None)
        params = {"phone_id": phone_id, "user_pk": user_pk, "now": now}
        steps: list[tuple[str, Callable[[], object]]] = [
            ("download.requests", lambda: issuance._PLAN_QUERY.rows(s, params)),
            ("download.phone_locks", lambda: revocations._PHONE_LOCKS.rows(s, params)),
            ("list.locks", lambda: locks.list_page(ctx, None, shape.locks // 2, 100)),
            ("list.users", lambda: users.list_page(ctx, None, shape.users // 2, 100)),
            ("list.key_requests", lambda: key_requests.list_page(
                ctx, user_id=None, lock_id=None, status=None,
                after=f"RF{requests // 2:010d}", limit=100)),
            ("list.key_requests_of_user", lambda: key_requests.list_page(
                ctx, user_id=f"UF{shape.users // 2:010d}", lock_id=None, status=None,
                after=None, limit=100)),
            ("list.key_requests_of_lock", lambda: key_requests.list_page(
                ctx, user_id=None, lock_id=f"F{shape.locks // 2:07d}", status=None,
                after=None, limit=100)),
        ]
        for name, step in steps:
            label[0] = name
            step()
        label[0] = ""
        event.remove(engine, "before_cursor_execute", grab)
        pg = engine.dialect.name == "postgresql"
        cur = s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        for name, statement, parameters in seen:
            if not name:
                continue
            cur.execute(("EXPLAIN (ANALYZE, BUFFERS) " if pg else "EXPLAIN QUERY PLAN ")
                        + statement, parameters)
            lines = [r[0] if pg else r[3] for r in cur.fetchall()]
            scans = [ln.strip() for ln in lines
                     if ("Seq Scan on" in ln and any(t in ln for t in BIG_TABLES))
                     or (not pg and ln.startswith("SCAN ") and any(t in ln for t in BIG_TABLES)
                         and "INDEX" not in ln)]
            print(f"explain {name}: " + " | ".join(ln.strip() for ln in lines), flush=True)
            for scan in scans:
                print(f"explain {name} scan: {scan}", flush=True)
    engine.dispose()


BIG_TABLES = ("locks", "users", "phones", "key_requests", "issued_keys")


@dataclass
class StoreResult:
    """One store's figures."""

    name: str
    download_p50_ms: float
    small_p50_ms: float
    list_p99_ms: float

    @property
    def ratio(self) -> float:
        """Fleet download p50 over the small database's."""
        return self.download_p50_ms / self.small_p50_ms


def run_store(name: str, url_of: Callable[[str], str], data: Path) -> StoreResult:
    """Build both databases of one store, alternate downloads, then page the fleet lists."""
    dbs = []
    try:
        for label, keys in (("small", SMALL_KEYS), ("fleet", KEYS)):
            (data / label).mkdir(parents=True)
            dbs.append(build(f"{name}/{label}", url_of(label), data / label,
                             Shape.scaled(keys)))
        small, fleet = dbs
        for db in dbs:  # warm-up (imports, caches, prepared statements)
            downloads(db, 10)
            db.latencies.clear()
        for _ in range(ROUNDS):
            for db in dbs:
                downloads(db, DOWNLOADS)
        lists = list_latencies(fleet)
        if os.environ.get("KAGIYA_SCALE_EXPLAIN"):
            explain(fleet.url, fleet.operator_id, fleet.shape)
        for label, samples in sorted(lists.items()):
            print(f"store={name} list={label} n={len(samples)} "
                  f"p50_ms={1000 * statistics.median(samples):.1f} "
                  f"p99_ms={1000 * pct(samples, 99):.1f}", flush=True)
        result = StoreResult(name, 1000 * statistics.median(fleet.latencies),
                             1000 * statistics.median(small.latencies),
                             max(1000 * pct(s, 99) for s in lists.values()))
        print(f"store={name} keys={fleet.shape.keys} download_p50_ms={result.download_p50_ms:.1f}"
              f" small_p50_ms={result.small_p50_ms:.1f} ratio={result.ratio:.2f} "
              f"download_p99_ms={1000 * pct(fleet.latencies, 99):.1f} "
              f"small_p99_ms={1000 * pct(small.latencies, 99):.1f} "
              f"list_p99_ms={result.list_p99_ms:.1f}", flush=True)
        return result
    finally:
        for db in dbs:
            db.operator.close()
            db.server.stop()


def main() -> int:
    """Run every store and print the summary line last."""
    tmp = Path(tempfile.mkdtemp(prefix="kagiya-scale-"))
    results = []
    if "sqlite" in STORES:
        results.append(run_store("sqlite", lambda label: f"sqlite:///{tmp / 'sqlite' / label}"
                                 "/kagiya.db", tmp / "sqlite"))
    if "postgresql" in STORES and pg_bin() is not None:
        pg = TempPostgres()
        try:
            results.append(run_store("postgresql", pg.create_database, tmp / "pg"))
        finally:
            pg.stop()
    worst = max(results, key=lambda r: r.ratio)
    list_p99 = max(r.list_p99_ms for r in results)
    print(f"keys={KEYS} download_p50_ms={worst.download_p50_ms:.1f} "
          f"small_p50_ms={worst.small_p50_ms:.1f} ratio={worst.ratio:.2f} "
          f"list_p99_ms={list_p99:.1f} store={worst.name} "
          f"stores={','.join(r.name for r in results)} workers={WORKERS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
