"""A USB cable on a locked-down virtual board reads and changes nothing (issue 18, #3).

The board runs the real firmware (``main.py``, BLE through the bench's shim and a Bumble
sidecar). After lockdown, mpremote itself is the attacker's tool: ``exec``, ``fs cp``
and raw-REPL entry (Ctrl-C, Ctrl-A) fail, while the lock still unlocks over BLE. An
authorisation signed by the lock's trust anchor then opens maintenance over the serial
line and mpremote works again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cbor2
import pytest
from kagiya.hil import sim
from kagiya.hil.board import VirtualBoard, micropython_binary
from kagiya.hil.sim_target import Target
from kagiya.sdk.keys import IssuerKey
from kagiya.sdk.maintenance import sign_maintenance
from kagiya.sdk.protocol import LogEvent
from kagiya.server.client import InstallerClient, OperatorClient
from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.lockdown import open_maintenance

from tests.tools.conftest import LiveServer, Result

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
    return sign_maintenance(issuer, LOCK_ID, nonce, scope, "installer-1", int(time.time()),
                            operator=sim.HIL_OPERATOR)


async def _unlock(target: Target, hci: str) -> bool:
    from kagiya.hil.bumble_backend import bumble_backend
    from kagiya.sdk.ble import Backend
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


# --- the installer's side: `kagiya install all` locks down, `maintenance` re-opens -------

Kagiya = Callable[..., Result]


def _lock_log(root: Path) -> list[list[object]]:
    """The lock's usage-log records as stored on its flash: [seq, time, event, code, cti, sub]."""
    recs = []
    for f in root.glob("lg*/*"):
        rec = cbor2.loads(f.read_bytes()[:-4]) if f.is_file() else None
        if isinstance(rec, list) and len(rec) == 6:  # a segment's header is no record
            recs.append(rec)
    return sorted(recs, key=lambda r: int(r[0]))


def _installer_ref(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def _maintenance_audit(server: LiveServer) -> list[dict[str, object]]:
    op = OperatorClient(server.url, token=server.operator_token)
    try:
        return [e for e in op.audit()["items"] if e["action"] == "lock.maintenance-authorise"]
    finally:
        op.close()


def test_install_all_ends_locked_down_and_maintenance_reopens_provisioning(
        kagiya: Kagiya, board_factory: Callable[..., VirtualBoard], key_server: LiveServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGIYA_OPERATOR_TOKEN", key_server.installer_token)
    board = board_factory()
    common = ("--port", board.port, "--server", key_server.url, "--json")
    r = kagiya("install", "all", *common, "--lock-id", LOCK_ID)
    assert r.status == 0, r.out + r.err
    assert r.json["steps"]["lockdown"] == {"locked_down": True}  # the default now
    # the REPL of this bench board stays open (no main.py), but the lock refuses changes
    again = kagiya("install", "all", *common, "--lock-id", LOCK_ID)
    assert again.status == 5 and again.json["error"] == "locked-down"
    assert "kagiya install maintenance" in again.json["hint"]
    # the wrong vehicle: refused before the server is even asked
    wrong = kagiya("install", "maintenance", *common, "--lock-id", "CAR-0999")
    assert wrong.status == 5 and wrong.json["error"] == "wrong-lock"
    assert not _maintenance_audit(key_server)
    m = kagiya("install", "maintenance", *common, "--scope", "repl", "--scope", "provision")
    assert m.status == 0, m.out + m.err
    got = m.json["steps"]["maintenance"]
    assert got["over"] == "repl" and got["lock_id"] == LOCK_ID
    assert got["scope"] == ["repl", "provision"]
    # authorised: re-provisioning steps run again, and `all` locks down again at the end
    third = kagiya("install", "all", *common, "--lock-id", LOCK_ID)
    assert third.status == 0, third.out + third.err
    assert third.json["steps"]["lockdown"] == {"locked_down": True}
    # the server audited it under the installer's token; the lock logged it (event 48)
    ref = _installer_ref(key_server.installer_token)
    [entry] = _maintenance_audit(key_server)
    assert entry["target"] == LOCK_ID and str(entry["actor"]).endswith(ref)
    opened = [rec for rec in _lock_log(board.root) if rec[2] == int(LogEvent.MAINTENANCE)]
    assert [rec[3] for rec in opened] == [0] and str(opened[0][5]).endswith(ref)

    # bench boards may skip the lockdown, with a warning
    bench = board_factory()
    skip = kagiya("install", "all", "--port", bench.port, "--server", key_server.url, "--json",
                  "--lock-id", "CAR-0002", "--no-lockdown")
    assert skip.status == 0, skip.out + skip.err
    assert skip.json["steps"]["lockdown"]["skipped"] is True
    assert "--no-lockdown" in skip.err and "USB cable" in skip.err
    assert not (bench.root / "lockdown").exists()


def test_installer_maintenance_over_the_serial_line_of_a_locked_lock(
        kagiya: Kagiya, board_factory: Callable[..., VirtualBoard], key_server: LiveServer,
        sidecar: dict[str, object], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """End to end: provisioned and locked down by `kagiya install all`, power-cycled into
    the BLE lock; a USB cable gets nothing, a phone still unlocks, `kagiya install
    maintenance` (the key server's authorisation for the installer token) re-opens the
    REPL over the serial line, and `kagiya install anchors` changes the trust anchors."""
    monkeypatch.setenv("KAGIYA_OPERATOR_TOKEN", key_server.installer_token)
    root = tmp_path / "flash"
    phones_issuer = IssuerKey.generate()  # a second anchor: lets the test mint BLE keys
    server_keys = [k[1].hex() for k in InstallerClient(key_server.url).issuer_keys()
                   if k[2] == "active"]
    bench = board_factory(root)
    r = kagiya("install", "all", "--port", bench.port, "--server", key_server.url, "--json",
               "--lock-id", LOCK_ID, "--anchor", server_keys[0],
               "--anchor", phones_issuer.public_bytes().hex())
    assert r.status == 0, r.out + r.err
    info = r.json["steps"]["provision"]
    bench.stop()  # power off; the next power-on boots the locked-down lock
    (root / "relays.json").unlink()  # _wait_serving then waits for the lock's own boot

    # a lock whose radio cannot start (here: no BLE module) still never opens the REPL
    radio_less = board_factory(root, run_main=True)
    time.sleep(1)
    r = _mpremote(radio_less.port, "exec", "print(open('/identity','rb').read())")
    assert r.returncode != 0 and b"identity" not in r.stdout
    radio_less.stop()

    sim.install_shim(root)
    board = board_factory(root, run_main=True,
                          env={"KAGIYA_VBLE": f"127.0.0.1:{sidecar['shim_port']}"})
    _wait_serving(root, board)
    common = ("--port", board.port, "--server", key_server.url, "--json")

    assert _mpremote(board.port, "exec", "print(6 * 7)").returncode != 0
    target = Target(LOCK_ID, phones_issuer, bytes.fromhex(info["sign_public"]),
                    bytes.fromhex(info["kex_public"]), operator=info["operator"])
    assert asyncio.run(_unlock(target, str(sidecar["hci"])))

    m = kagiya("install", "maintenance", *common, "--lock-id", LOCK_ID)
    assert m.status == 0, m.out + m.err
    assert m.json["steps"]["maintenance"]["over"] == "serial"
    r = _mpremote(board.port, "exec", "print(6 * 7)")
    assert r.returncode == 0 and r.stdout.strip() == b"42", r.stderr

    # trust anchors change only inside a maintenance with scope anchors (a second one)
    a = kagiya("install", "anchors", *common, "--remove", phones_issuer.public_bytes().hex())
    assert a.status == 0, a.out + a.err
    assert a.json["steps"]["anchors"]["anchors"] == server_keys[:1]
    ref = _installer_ref(key_server.installer_token)
    log = _lock_log(root)
    opened = [rec for rec in log if rec[2] == int(LogEvent.MAINTENANCE)]
    assert [rec[3] for rec in opened] == [0, 0] and all(str(o[5]).endswith(ref) for o in opened)
    assert [rec for rec in log if rec[2] == int(LogEvent.ANCHORS_CHANGED)]
    assert len(_maintenance_audit(key_server)) == 2
