"""``kagiya server run --workers N``: the workers stop when their supervisor is killed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from kagiya.server import supervision

from tests.server.live import LiveServer


def _children(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_sigkill_of_the_supervisor_stops_its_workers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    srv = LiveServer(f"sqlite:///{data / 'kagiya.db'}", data, workers=2, ready_timeout=120)
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:  # the workers (+ a tracker)
            workers = _children(srv.proc.pid)
            time.sleep(0.2)
        assert len(workers) >= 2
        srv.kill()  # SIGKILL: no signal handler runs, the workers are not told
        deadline = time.monotonic() + 60
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers), "a worker outlived its supervisor"
        with pytest.raises(httpx.TransportError):
            httpx.get(srv.url + "/v1/health", timeout=2)
    finally:
        srv.stop()


def test_no_supervisor_named_means_no_watch() -> None:
    assert supervision.die_with_supervisor({}) is False
    assert supervision.die_with_supervisor({supervision.ENV: str(os.getpid())}) is False
