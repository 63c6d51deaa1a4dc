"""Real server processes: idempotency under concurrent retries (several processes on one
PostgreSQL), and kill -9 during a burst of key-request writes loses no acknowledged request."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from kagiya.sdk.keys import LockIdentity
from kagiya.server import admin
from kagiya.server.client import ApiProblem, OperatorClient, PhoneClient, new_device_key
from kagiya.server.config import Settings
from kagiya.server.db import make_engine
from kagiya.server.models import IssuedKey, KeyRequest
from kagiya.server.runtime import Runtime
from sqlalchemy import func, select

from tests.server.live import LiveServer

DAY = 86400
CHANGES = 30  # per key request, while its phone downloads


def _setup(db_url: str, data: Path) -> tuple[admin.NewOperator, int]:
    rt = Runtime(Settings(data_dir=data, db_url=db_url))
    now = rt.now()
    new = admin.create_operator(rt, "Live", 1000, now - DAY, now + 400 * DAY)
    rt.close()
    return new, now


def test_concurrent_retries_never_duplicate(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    new, now = _setup(db_url, data)
    servers = [LiveServer(db_url, data)]
    if db_url.startswith("postgresql"):
        servers.append(LiveServer(db_url, data))  # two processes, one database
    try:
        op = OperatorClient.login(servers[0].url, new.client_id, new.client_secret)
        uid = op.create_user()["user_id"]
        ident = LockIdentity.generate()
        op.register_simulated_lock(ident, "LIVE-01")
        body = {
            "user_id": uid,
            "lock_id": "LIVE-01",
            "nbf": now,
            "exp": now + DAY,
            "permissions": ["doors"],
        }
        barrier = threading.Barrier(16)

        def attempt(i: int) -> tuple[int, str]:
            srv = servers[i % len(servers)]
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                barrier.wait()
                r = c.post(
                    "/v1/key-requests",
                    json=body,
                    headers={"Authorization": f"Bearer {op.token}", "Idempotency-Key": "burst-1"},
                )
                return r.status_code, r.json().get("request_id", r.text)

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(attempt, range(16)))
        assert {s for s, _ in results} == {201}, results
        assert len({rid for _, rid in results}) == 1
        assert len(op.list_key_requests(user_id=uid)["items"]) == 1
        # concurrent user creation with one key: one user, quota counted once
        with ThreadPoolExecutor(8) as pool:
            users = list(
                pool.map(
                    lambda i: OperatorClient(
                        servers[i % len(servers)].url, token=op.token
                    ).create_user(idempotency_key="u-1")["user_id"],
                    range(8),
                )
            )
        assert len(set(users)) == 1
        assert len(op.list_users()["items"]) == 2
    finally:
        for s in servers:
            s.stop()


def test_kill_9_loses_no_acknowledged_request(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    new, now = _setup(db_url, data)
    srv = LiveServer(db_url, data)
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        op = OperatorClient.login(srv.url, new.client_id, new.client_secret)
        uid = op.create_user()["user_id"]
        ident = LockIdentity.generate()
        op.register_simulated_lock(ident, "KILL-01")

        def writer(n: int) -> None:
            c = OperatorClient(srv.url, token=op.token, retries=1)
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    out = c.create_key_request(
                        uid, "KILL-01", now, now + DAY + i, ["doors"], idempotency_key=f"w{n}-{i}"
                    )
                except (httpx.HTTPError, ApiProblem):
                    continue
                with lock:
                    acked.append(out["request_id"])

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        while True:
            with lock:
                if len(acked) >= 40:
                    break
            threading.Event().wait(0.01)
        srv.kill()  # mid-burst
        stop.set()
        for t in threads:
            t.join()
    finally:
        if srv.proc.poll() is None:
            srv.kill()
        srv.log.close()
    srv2 = LiveServer(db_url, data)
    try:
        op2 = OperatorClient.login(srv2.url, new.client_id, new.client_secret)
        stored, cursor = set(), None
        while True:
            page = op2.list_key_requests(user_id=uid, cursor=cursor, limit=200)
            stored |= {r["request_id"] for r in page["items"]}
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(acked) >= 40
        missing = set(acked) - stored
        assert not missing, f"{len(missing)} acknowledged requests lost"
    finally:
        srv2.stop()


def test_downloads_racing_changes_leave_no_old_key_unrevoked(db_url: str, tmp_path: Path) -> None:
    """Two server processes on one database; phones download (every download signs a fresh
    key) while the operator keeps changing their key requests. Afterwards no key of an old
    request version may be left unrevoked: on SQLite a download plans and signs outside the
    writer's turn and must notice a change committed meanwhile; on PostgreSQL its row locks
    make the change wait and then revoke what the download stored."""
    data = tmp_path / "data"
    new, now = _setup(db_url, data)
    env = {"KAGIYA_REUSE_MIN_REMAINING": "2"}
    servers = [LiveServer(db_url, data, env=env), LiveServer(db_url, data, env=env)]
    errors: list[str] = []
    try:
        op = OperatorClient.login(servers[0].url, new.client_id, new.client_secret)
        ident = LockIdentity.generate()
        op.register_simulated_lock(ident, "RACE-01")
        phones, requests = [], []
        for _ in range(4):
            uid = op.create_user()["user_id"]
            req = op.create_key_request(uid, "RACE-01", now - 60, now + DAY, ["doors"])
            requests.append(req["request_id"])
            code = op.enrollment_code(uid)["code"]
            first = PhoneClient.enroll(servers[0].url, code, new_device_key())
            second = PhoneClient(servers[1].url, token=first.token)  # the same phone
            second.phone_id, second._device = first.phone_id, first._device
            second.key_secrets = first.key_secrets
            phones.append((first, second))
        done = threading.Event()

        def download(i: int) -> int:
            n = 0
            while not done.is_set() or n < 5:
                phone = phones[i][n % 2]
                try:
                    got = phone.sync()  # a device-bound GET, then a POST of fresh wraps
                    if len(got.keys) + len(got.pending) != 1:
                        errors.append(f"download: {got}")
                except ApiProblem as exc:
                    errors.append(f"download: {exc}")
                n += 1
            return n

        def change() -> None:
            clients = [OperatorClient(srv.url, token=op.token) for srv in servers]
            for k in range(CHANGES):
                for j, rid in enumerate(requests):
                    perms = ["doors", "drive"] if k % 2 == 0 else ["doors"]
                    clients[(k + j) % 2].change_key_request(rid, permissions=perms)
            done.set()

        with ThreadPoolExecutor(5) as pool:
            counts = pool.map(download, range(4))
            pool.submit(change).result()
            assert min(counts) >= 5
        assert not errors, errors[:3]
        versions = {r: op.get_key_request(r)["version"] for r in requests}
        assert set(versions.values()) == {1 + CHANGES}
    finally:
        for srv in servers:
            srv.stop()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            stale = conn.execute(
                select(IssuedKey.request_id, IssuedKey.request_version)
                .join(KeyRequest, KeyRequest.id == IssuedKey.request_id)
                .where(
                    IssuedKey.revoked.is_(False),
                    IssuedKey.request_version != KeyRequest.version,
                )
            ).all()
            total = conn.scalar(select(func.count()).select_from(IssuedKey))
    finally:
        engine.dispose()
    assert total and total > 4 * 5
    assert stale == [], f"{len(stale)} keys of an old request version left unrevoked"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
