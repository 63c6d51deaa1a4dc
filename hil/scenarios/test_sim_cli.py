"""The bench itself: ``kagiya lock sim`` on an installer-deployed board, shutdown, failures.

These need the virtual bench (skipped with ``--target hw``): a real board never gets the
BLE shim, and is never started or stopped by the bench.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kagiya.hil.bumble_backend import bumble_backend
from kagiya.hil.sim import SHIM, BootError, VirtualLock, deploy, processes_in, provision
from kagiya.sdk.ble import Backend
from kagiya.sdk.client import LockClient, find_lock
from kagiya.sdk.keys import IssuerKey

KAGIYA = [sys.executable, "-m", "kagiya.tools.cli"]


@pytest.fixture(autouse=True)
def _bench_only(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--target") == "hw":
        pytest.skip("tests the virtual bench itself")


def _none_left(root: Path, within: float = 15.0) -> list[str]:
    deadline = time.monotonic() + within
    while (left := processes_in(root, exclude=os.getpid())) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _installed_board(root: Path) -> dict[str, str]:
    """A board as the installer leaves it: firmware and identity, no BLE shim."""
    deploy(root)
    (root / "lib" / "bluetooth.py").unlink()
    return provision(root, "KGY-SIM-1", [IssuerKey.generate().public_bytes()])


def _start_sim(root: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen([*KAGIYA, "lock", "sim", "--dir", str(root), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if '"transport"' in line:
            return proc, json.loads(line)
    _out, err = proc.communicate(timeout=30)
    raise AssertionError(f"lock sim exited {proc.returncode}: {err[-2000:]}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_sim_on_an_installed_board_advertises_and_stops_cleanly(
        tmp_path: Path, sig: signal.Signals, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "board"
    provisioned = _installed_board(root)
    proc, ready = _start_sim(root)
    try:
        # the lock's public keys, for issuing keys to it and verifying its log
        assert ready["lock"] == {k: provisioned[k]
                                 for k in ("lock_id", "sign_public", "kex_public")}
        # the shim was added (to the virtual board only) and the lock is on the air
        assert (root / "lib" / "bluetooth.py").read_bytes() == SHIM.read_bytes()
        phone = Backend(*bumble_backend(ready["transport"], adapter="sim-cli"))
        async with LockClient(await find_lock("KGY-SIM-1", 10, backend=phone),
                              backend=phone) as lock:
            assert (await lock.info()).lock_id == "KGY-SIM-1"
        proc.send_signal(sig)  # SIGTERM is handled like Ctrl-C
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert '"stopped"' in out
    assert _none_left(root) == []


def test_sim_replaces_an_outdated_shim(tmp_path: Path) -> None:
    root = tmp_path / "board"
    _installed_board(root)
    (root / "lib" / "bluetooth.py").write_text("raise ImportError('old shim')\n")
    with VirtualLock(root):
        assert (root / "lib" / "bluetooth.py").read_bytes() == SHIM.read_bytes()
    assert _none_left(root) == []


def test_failed_boot_stops_sidecar_and_interpreter(tmp_path: Path) -> None:
    root = tmp_path / "board"
    _installed_board(root)
    (root / "main.py").write_text("import kagiya_no_such_module\n")
    lock = VirtualLock(root, boot_timeout=60)
    with pytest.raises(BootError) as err:
        lock.start()
    assert "main.py ended" in str(err.value)
    assert "kagiya_no_such_module" in str(err.value)  # the board's console tail
    assert _none_left(root) == []
    # the command reports it and exits 1, leaving nothing behind either
    done = subprocess.run([*KAGIYA, "lock", "sim", "--dir", str(root)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "kagiya_no_such_module" in done.stderr
    assert _none_left(root) == []


def test_nothing_outlives_a_killed_sim(tmp_path: Path) -> None:
    """kill -9 of ``kagiya lock sim``: the sidecar sees its stdin close, the interpreter
    its terminal vanish; both exit."""
    root = tmp_path / "board"
    _installed_board(root)
    proc, _ready = _start_sim(root)
    proc.kill()
    proc.communicate(timeout=30)
    assert _none_left(root, within=30) == []
