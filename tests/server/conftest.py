"""Fixtures: the same API suite runs against SQLite and a real PostgreSQL server."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kagiya.sdk.dpop import make_proof
from kagiya.sdk.keys import LockIdentity
from kagiya.sdk.keywrap import new_wrapped_secret
from kagiya.server import admin
from kagiya.server.app import serving_app
from kagiya.server.client import OperatorClient, PhoneClient, new_device_key
from kagiya.server.config import Settings
from kagiya.server.db import make_engine
from kagiya.server.download import Ask
from kagiya.server.dpop import RequestProof
from kagiya.server.migrate import upgrade
from kagiya.server.runtime import Runtime

from tests.server.pg import TempPostgres, pg_bin

_counter = itertools.count()
TEMPLATE = "kagiya_template"


@pytest.fixture(scope="session")
def postgres() -> Iterator[TempPostgres]:
    """One PostgreSQL server for the session, with a migrated template database."""
    if pg_bin() is None:
        if os.environ.get("KAGIYA_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL binaries missing")
        pytest.skip("PostgreSQL server binaries missing: run `make sysdeps` (as root)")
    pg = TempPostgres()
    engine = make_engine(pg.create_database(TEMPLATE))
    upgrade(engine)
    engine.dispose()
    yield pg
    pg.stop()


def fresh_pg_url(pg: TempPostgres) -> str:
    """A new database cloned from the migrated template."""
    return pg.create_database(f"t{os.getpid()}_{next(_counter)}", template=TEMPLATE)


class Clock:
    """A settable clock for the server under test."""

    def __init__(self) -> None:
        self.t = float(int(time.time()))

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.t += seconds


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kagiya.db'}"
    return fresh_pg_url(request.getfixturevalue("postgres"))


@dataclass
class World:
    """A running app (in-process, real HTTP semantics via httpx) and helpers."""

    rt: Runtime
    http: TestClient
    clock: Clock
    locks: dict[str, LockIdentity] = field(default_factory=dict)

    def operator(self, quota: int = 20, name: str = "Acme Leasing") -> OperatorClient:
        """A new operator, logged in."""
        now = int(self.clock())
        new = admin.create_operator(self.rt, name, quota, now - 86400, now + 800 * 86400)
        op = OperatorClient.login("", new.client_id, new.client_secret, http=self.http)
        op.operator_id = new.operator_id  # type: ignore[attr-defined]
        op.client_id = new.client_id  # type: ignore[attr-defined]
        op.client_secret = new.client_secret  # type: ignore[attr-defined]
        return op

    def lock(self, op: OperatorClient, lock_id: str | None = None, **kw: Any) -> str:
        """Register a lock with a fresh identity; returns its lock ID."""
        lock_id = lock_id or f"CAR-{next(_counter):05d}"
        ident = LockIdentity.generate()
        self.locks[lock_id] = ident
        op.register_simulated_lock(ident, lock_id, **kw)
        return lock_id

    def phone(self, op: OperatorClient, user_id: str) -> PhoneClient:
        """Enroll a new phone for ``user_id``."""
        code = op.enrollment_code(user_id)["code"]
        return PhoneClient.enroll("", code, new_device_key(), http=self.http)

    def setup_key(
        self, op: OperatorClient, perms: tuple[str, ...] = ("doors", "drive"), days: int = 30
    ) -> tuple[str, str, str, PhoneClient]:
        """user + lock + key request + enrolled phone: (user_id, lock_id, request_id, phone)."""
        uid = op.create_user()["user_id"]
        lid = self.lock(op)
        now = int(self.clock())
        req = op.create_key_request(uid, lid, now - 60, now + days * 86400, list(perms))
        return uid, lid, req["request_id"], self.phone(op, uid)


    def ask(self, phone: PhoneClient, *, wraps: bool = True) -> Ask:
        """A download request as the phone makes it: a fresh proof, and (``wraps``) its
        own wrapped secrets for every request pending a key (learnt with a GET)."""
        wrapped: dict[str, bytes] = {}
        if wraps:
            for p in phone._request("GET", "/v1/phone/keys")["pending"]:
                secret, cnf = new_wrapped_secret(bytes.fromhex(p["lock_kex_public"]))
                phone.key_secrets[cnf] = secret
                wrapped[p["request_id"]] = cnf
        method = "POST" if wrapped else "GET"
        header = make_proof(
            phone._device,  # type: ignore[arg-type]
            method,
            "/v1/phone/keys",
            access_token=phone.token,
            now=int(self.clock()),
        )
        return Ask(phone.token, RequestProof(method, "/v1/phone/keys", header), wrapped)


def make_world(db_url: str, data_dir: Path, **settings: Any) -> tuple[World, Runtime]:
    """Build a runtime + in-process HTTP client for ``db_url``."""
    clock = Clock()
    settings.setdefault("monotonic", clock)  # the test clock moves both (timeauth)
    cfg = Settings(
        data_dir=data_dir,
        db_url=db_url,
        clock=clock,
        token_rate_per_min=1000,
        enroll_rate_per_min=1000,
        **settings,
    )
    rt = Runtime(cfg)
    http = TestClient(serving_app(rt), raise_server_exceptions=False)
    return World(rt, http, clock), rt


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """The app on a fresh database (SQLite and PostgreSQL)."""
    w, rt = make_world(db_url, tmp_path / "data")
    yield w
    w.http.close()
    rt.close()
