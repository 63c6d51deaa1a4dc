"""End to end: ``kagiya install all`` on a virtual board, then a real unlock over virtual BLE.

The installed board is powered up again as the BLE lock (``main.py`` running, the bench's
``bluetooth`` shim in ``/lib``, the Bumble sidecar as its radio); a phone enrolled with the
key server downloads a key for the installed lock and unlocks it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kagiya.hil.board import VirtualBoard
from kagiya.server.client import OperatorClient

from tests.tools.conftest import LiveServer, Result

ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / "hil" / "vble" / "mpy" / "bluetooth.py"
pytestmark = pytest.mark.skipif(
    not (ROOT / "firmware" / "lib" / "kagiya_lock" / "ble.py").exists() or not SHIM.exists(),
    reason="the BLE lock (firmware kagiya_lock/ble.py, hil/vble) is not built yet",
)


@pytest.fixture
def sidecar() -> Iterator[dict[str, object]]:
    """The virtual radio + the lock's BLE chip; yields its ready line."""
    proc = subprocess.Popen([sys.executable, "-m", "kagiya.hil.vble.sidecar", "--seed", "CAR-0001"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    yield ready
    proc.terminate()
    proc.wait(timeout=10)


def test_installed_lock_unlocks_over_virtual_ble(
        kagiya: Callable[..., Result], board_factory: Callable[..., VirtualBoard],
        key_server: LiveServer, sidecar: dict[str, object], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("kagiya.phone.lock_link")
    from kagiya.phone.app import PhoneApp
    from kagiya.phone.profile import Profile

    root = tmp_path / "flash"
    installer = board_factory(root)
    monkeypatch.setenv("KAGIYA_OPERATOR_TOKEN", key_server.installer_token)
    r = kagiya("install", "all", "--port", installer.port, "--server", key_server.url,
               "--lock-id", "CAR-0001", "--json")
    assert r.status == 0, r.out + r.err
    installer.stop()

    # power the installed board up as the BLE lock
    shutil.copy(SHIM, root / "lib" / "bluetooth.py")
    board_factory(root, run_main=True, env={"KAGIYA_VBLE": f"127.0.0.1:{sidecar['shim_port']}"})

    op = OperatorClient.login(key_server.url, key_server.client_id, key_server.client_secret)
    user = op.create_user()["user_id"]
    now = int(time.time())
    op.create_key_request(user, "CAR-0001", now - 60, now + 86400, ["doors"])
    code = op.enrollment_code(user)["code"]
    op.close()

    monkeypatch.setenv("KAGIYA_BLE_TRANSPORT", str(sidecar["hci"]))
    app = PhoneApp(Profile("installer-check", home=tmp_path / "phone",
                                   passphrase="pw"))  # noqa: S106
    app.enroll(key_server.url, code)
    app.sync()
    outcome = asyncio.run(app.run("CAR-0001", "unlock", timeout=30))
    app.close()
    assert outcome.lock_id == "CAR-0001"
    relays = json.loads((root / "relays.json").read_text())
    assert relays["doors_locked"] is False
