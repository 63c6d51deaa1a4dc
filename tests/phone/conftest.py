"""Fixtures of the phone tests: a real key server process on SQLite and an operator."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

KAGIYA = [sys.executable, "-m", "kagiya.tools.cli"]


def free_port() -> int:
    """A TCP port free right now on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RealServer:
    """A running ``kagiya server run`` and one operator's credentials."""

    url: str
    data_dir: Path
    client_id: str
    client_secret: str
    proc: subprocess.Popen[bytes]

    def operator(self):  # type: ignore[no-untyped-def]
        from kagiya.server.client import OperatorClient

        return OperatorClient.login(self.url, self.client_id, self.client_secret)


@pytest.fixture
def real_server(tmp_path: Path) -> Iterator[RealServer]:
    """The key server on SQLite in ``tmp_path`` (stopped afterwards)."""
    data = tmp_path / "server"
    env = {**os.environ, "KAGIYA_DATA_DIR": str(data), "KAGIYA_ENROLL_RATE_PER_MIN": "1000",
           "KAGIYA_TOKEN_RATE_PER_MIN": "1000"}
    out = subprocess.run([*KAGIYA, "server", "admin", "create-operator", "--name", "Test Lease",
                          "--quota", "100"], env=env, capture_output=True, check=True)
    creds = json.loads(out.stdout)
    port = free_port()
    proc = subprocess.Popen([*KAGIYA, "server", "run", "--port", str(port), "--log-level",
                             "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("key server did not start")
            time.sleep(0.1)
        yield RealServer(url, data, creds["client_id"], creds["client_secret"], proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
