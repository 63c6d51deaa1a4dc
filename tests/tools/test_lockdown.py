"""A USB cable on a locked-down virtual board reads and changes nothing (issue 18, #3).

The board runs the real firmware (``main.py``, BLE through the bench's shim and a Bumble
sidecar). After lockdown, mpremote itself is the attacker's tool: ``exec``, ``fs cp``
and raw-REPL entry (Ctrl-C, Ctrl-A) fail, while the lock still unlocks over BLE. An
authorisation signed by the lock's trust anchor then opens maintenance over the serial
line and mpremote works again.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kagiya.hil import sim
from kagiya.hil.board import VirtualBoard, micropython_binary
from kagiya.hil.sim_target import Target
from kagiya.sdk.keys import IssuerKey
from kagiya.sdk.maintenance import sign_maintenance
from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.lockdown import open_maintenance

MPREMOTE = Path(sys.executable).parent / "mpremote"
LOCK_ID = "CAR-0001"


@pytest.fixture
def sidecar() -> Iterator[dict[str, object]]:
    """The virtual radio + the lock's BLE chip; yields its ready line."""
    proc = subprocess.Popen([sys.executable, "-m", "kagiya.hil.vble.sidecar", "--seed",
                             LOCK_ID], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    yield ready
    proc.terminate()
    proc.wait(timeout=10)


def _mpremote(port: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run([str(MPREMOTE), "connect", port, *args], capture_output=True,
                              timeout=20, check=False)
    except subprocess.TimeoutExpired as exc:  # hanging counts as failing, as for a user
        return subprocess.CompletedProcess(exc.cmd, 124, b"", b"timeout")


def _on_board(root: Path, code: str) -> dict:
    env = dict(os.environ, MICROPYPATH=f"{root / 'lib'}:.frozen", KAGIYA_STATE=str(root))
    out = subprocess.run([micropython_binary(), "-c", code], env=env, capture_output=True,
                         timeout=120, check=True)
    return dict(json.loads(out.stdout.decode().strip().splitlines()[-1]))


def _authorisation(issuer: IssuerKey, nonce: bytes, scope: list[str]) -> bytes:
    return sign_maintenance(issuer, LOCK_ID, nonce, scope, "installer-1", int(time.time()))


async def _unlock(target: Target, hci: str) -> bool:
    from kagiya.sdk.ble import Backend
    from kagiya.sdk.bumble_backend import bumble_backend
    from kagiya.sdk.client import LockClient, find_lock

    phone = Backend(*bumble_backend(hci, mtu=517, adapter="phone"))
    async with LockClient(await find_lock(LOCK_ID, 10, backend=phone),
                          backend=phone) as lock:
        await lock.unlock(target.key())
    return True


def _wait_serving(root: Path, board: VirtualBoard) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (root / "relays.json").exists():  # Lock(hal) booted and set its relays
            return
        assert board.running and not board.booted.is_set(), board.error
        time.sleep(0.05)
    raise AssertionError("the lock did not boot")


def test_locked_down_board_gives_a_usb_cable_nothing(
        board_factory: Callable[..., VirtualBoard], sidecar: dict[str, object],
        tmp_path: Path) -> None:
    root = tmp_path / "flash"
    issuer = IssuerKey.generate()
    sim.deploy(root)
    info = sim.provision(root, LOCK_ID, [issuer.public_bytes()])
    assert _on_board(root, "import json\nfrom kagiya_lock import provisioning as p\n"
                           "print(json.dumps(p.lockdown()))") == {"locked_down": True}
    board = board_factory(root, run_main=True,
                          env={"KAGIYA_VBLE": f"127.0.0.1:{sidecar['shim_port']}"})
    _wait_serving(root, board)
    identity = (root / "identity").read_bytes()

    # the thief's tools: mpremote exec / fs cp (each starts with Ctrl-C, Ctrl-A)
    r = _mpremote(board.port, "exec", "print(open('/identity','rb').read())")
    assert r.returncode != 0 and b"identity" not in r.stdout
    r = _mpremote(board.port, "fs", "cp", ":identity", str(tmp_path / "stolen"))
    assert r.returncode != 0 and not (tmp_path / "stolen").exists()
    r = _mpremote(board.port, "exec",
                  "from kagiya_lock import hal; hal.default().set_relays(False, True)")
    assert r.returncode != 0
    assert json.loads((root / "relays.json").read_text()) == {"doors_locked": True,
                                                              "drive": False}
    assert board.running and not board.booted.is_set()  # main.py never ended
    assert (root / "identity").read_bytes() == identity

    # the owner's phone still works over BLE
    target = Target(LOCK_ID, issuer, bytes.fromhex(info["sign_public"]),
                    bytes.fromhex(info["kex_public"]))
    assert asyncio.run(_unlock(target, str(sidecar["hci"])))
    assert json.loads((root / "relays.json").read_text())["doors_locked"] is False

    # a stranger's authorisation is refused; the anchor's opens maintenance
    with pytest.raises(InstallError) as err:
        open_maintenance(board.port,
                         lambda n, _lid: _authorisation(IssuerKey.generate(), n, ["repl"]))
    assert "UNKNOWN_ISSUER" in err.value.message
    assert _mpremote(board.port, "exec", "print(6 * 7)").returncode != 0
    out = open_maintenance(board.port, lambda n, _lid: _authorisation(issuer, n, ["repl"]))
    assert out["maintenance"] is True
    r = _mpremote(board.port, "exec", "print(6 * 7)")
    assert r.returncode == 0 and r.stdout.strip() == b"42", r.stderr
