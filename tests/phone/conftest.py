"""Fixtures of the phone tests: a real key server process on SQLite and an operator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.live import free_port

KAGIYA = [sys.executable, "-m", "kagiya.tools.cli"]


@dataclass
class RealServer:
    """A running ``kagiya server run`` and one operator's credentials."""

    url: str
    data_dir: Path
    client_id: str
    client_secret: str
    proc: subprocess.Popen[bytes]

    def operator(self) -> Any:
        from kagiya.server.client import OperatorClient

        return OperatorClient.login(self.url, self.client_id, self.client_secret)


    def restart(self) -> RealServer:
        """Start the server again on the same port and database (after a stop)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = _start(self.data_dir, int(self.url.rsplit(":", 1)[1]))
        return self


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "KAGIYA_DATA_DIR": str(data), "KAGIYA_ENROLL_RATE_PER_MIN": "1000",
            "KAGIYA_TOKEN_RATE_PER_MIN": "1000"}


def _start(data: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*KAGIYA, "server", "run", "--port", str(port), "--log-level",
                             "warning"], env=_env(data))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a loaded 2-core machine can take a minute to start it
    while True:
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("key server did not start")
        time.sleep(0.1)


@pytest.fixture
def real_server(tmp_path: Path) -> Iterator[RealServer]:
    """The key server on SQLite in ``tmp_path`` (stopped afterwards)."""
    data = tmp_path / "server"
    out = subprocess.run([*KAGIYA, "server", "admin", "create-operator", "--name", "Test Lease",
                          "--quota", "100"], env=_env(data), capture_output=True, check=True)
    creds = json.loads(out.stdout)
    port = free_port()
    server = RealServer(f"http://127.0.0.1:{port}", data, creds["client_id"],
                        creds["client_secret"], _start(data, port))
    try:
        yield server
    finally:
        server.proc.terminate()
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@dataclass
class Bench:
    """A real server with a provisioned, registered virtual lock on the air."""

    server: RealServer
    lock: Any
    lock_id: str
    user_id: str
    request_id: str

    @property
    def transport(self) -> str:
        """The HCI transport of the virtual radio."""
        return str(self.lock.transport)


@pytest.fixture
def bench(tmp_path: Path, real_server: RealServer,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Bench]:
    """Server + virtual lock CAR-0001 (real firmware, virtual BLE) + a user with a key request."""
    from kagiya.hil import sim

    op = real_server.operator()
    anchors = [bytes.fromhex(k["public_key"])
               for k in httpx.get(real_server.url + "/v1/issuer-keys").json()["keys"]]
    root = tmp_path / "lock"
    sim.deploy(root)
    sim.provision(root, "CAR-0001", anchors, operator=op.operator_id())
    sim.register(root, op)
    user = op.create_user()["user_id"]
    now = int(time.time())
    req = op.create_key_request(user, "CAR-0001", now - 60, now + 30 * 86400,
                                ["doors", "drive", "log"])
    lock = sim.VirtualLock(root)
    lock.start()
    monkeypatch.setenv("KAGIYA_BLE_TRANSPORT", lock.transport)
    try:
        yield Bench(real_server, lock, "CAR-0001", user, req["request_id"])
    finally:
        lock.stop()
        op.close()
