"""Real server processes (uvicorn over loopback HTTP) for crash, concurrency and fuzz tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """An unused loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """``python -m kagiya.server run`` in a subprocess; ``kill()`` is SIGKILL."""

    def __init__(
        self,
        db_url: str,
        data_dir: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        workers: int = 1,
        ready_timeout: float = 120.0,
    ) -> None:
        self.db_url, self.data_dir = db_url, data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = dict(os.environ)
        full.update({"KAGIYA_TOKEN_RATE_PER_MIN": "100000", "KAGIYA_ENROLL_RATE_PER_MIN": "100000"})
        full.update(env or {})
        self.log = open(data_dir / f"server-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kagiya.server",
                "run",
                "--db",
                db_url,
                "--data-dir",
                str(data_dir),
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--workers",
                str(workers),
            ],
            stdout=self.log,
            stderr=self.log,
            env=full,
        )
        try:
            self.wait_ready(ready_timeout)
        except RuntimeError:
            self.kill()  # never leave a server running behind a failed start
            self.log.close()
            raise

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Block until /v1/health answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"no /v1/health answer in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, size: int = 3000) -> str:
        """The end of the server's own log, so a failed start says why (the file goes with tmp)."""
        self.log.flush()
        data = Path(self.log.name).read_bytes()
        return data[-size:].decode("utf-8", "replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Graceful stop."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
