"""``kagiya demo`` (what ``make demo`` runs): the whole offline unlock story, as a test.

The demo runs as a user runs it (a subprocess of the ``kagiya`` command); its JSON report
is checked step by step, and every process it started must be gone afterwards.
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
from kagiya.hil.sim import processes_in

KAGIYA = [sys.executable, "-m", "kagiya.tools.cli"]

EXPECTED = [
    "bootstrap",
    "create the operator (service admin)",
    "start the key server (SQLite)",
    "operator registers a partner and two users",
    "installer: virtual board deploy, provision, register, self-test",
    "lock firmware on the air (virtual BLE)",
    "Alice's phone enrolls with a one-time code",
    "operator requests a key for Alice (710-day lease)",
    "Alice's phone downloads its key",
    "key server stopped: the vehicle is offline",
    "Alice unlocks over BLE (offline)",
    "Alice presses the brake pedal and enables drive (offline)",
    "Alice locks (offline)",
    "key server back up",
    "operator cancels Alice's key (her phone stays offline)",
    "Bob's phone enrolls",
    "operator requests a key for Bob",
    "Bob's phone syncs (gets the revocation update)",
    "Bob's phone carries the revocation to the lock",
    "Alice's next unlock is refused with REVOKED",
    "Bob's phone fetches the lock's log and uploads it",
    "operator reads the verified log from the API",
]


def _gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _leftovers(workdir: Path) -> list[str]:
    """Processes still running inside the demo's work directory (cwd or command line)."""
    return processes_in(workdir, exclude=os.getpid())


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    for k in ("KAGIYA_DATA_DIR", "KAGIYA_PHONE_HOME", "KAGIYA_BLE_TRANSPORT", "KAGIYA_DB_URL"):
        env.pop(k, None)
    env["HOME"] = str(tmp_path / "home")  # nothing may depend on the user's own files
    return env


@pytest.mark.slow
def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = subprocess.run([*KAGIYA, "demo", "--workdir", str(tmp_path / "work"), "--report",
                           str(report)], capture_output=True, text=True, timeout=900,
                          env=_env(tmp_path), check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    rep = json.loads(report.read_text())
    steps = {s["title"]: s for s in rep["steps"]}
    assert [s["title"] for s in rep["steps"]] == EXPECTED
    assert all(s["ok"] for s in rep["steps"])
    assert "unlocked CAR-0001" in steps["Alice unlocks over BLE (offline)"]["outcome"]
    drive = "Alice presses the brake pedal and enables drive (offline)"
    assert "drive enabled" in steps[drive]["outcome"]
    assert "locked CAR-0001" in steps["Alice locks (offline)"]["outcome"]
    assert "CAR-0001 v1" in steps["Bob's phone syncs (gets the revocation update)"]["outcome"]
    refused = steps["Alice's next unlock is refused with REVOKED"]
    assert refused["data"]["code"] == "REVOKED" and "[REVOKED 23]" in refused["outcome"]
    assert steps["operator reads the verified log from the API"]["data"]["records"] >= 5
    # one readable line per step with its timing, then the summary table
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("✓ ")]
    assert len(lines) == len(EXPECTED) and all(ln.endswith(" s)") for ln in lines)
    assert f"{len(EXPECTED)}/{len(EXPECTED)} steps ok" in done.stdout
    assert rep["pids"] and all(_gone(p) for p in rep["pids"])
    assert _leftovers(tmp_path / "work") == []


def test_demo_cleans_up_on_ctrl_c(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = subprocess.Popen([*KAGIYA, "demo", "--workdir", str(tmp_path / "work"), "--report",
                             str(report)], stdout=subprocess.PIPE, text=True, env=_env(tmp_path))
    assert proc.stdout is not None
    for line in proc.stdout:
        if "lock firmware on the air" in line:  # server, board and lock are running now
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    rest = proc.stdout.read()
    assert proc.wait(60) == 130
    assert "interrupted" in rest
    rep = json.loads(report.read_text())
    assert not rep["ok"] and rep["pids"]
    assert all(_gone(p) for p in rep["pids"])
    assert _leftovers(tmp_path / "work") == []


@pytest.mark.slow
def test_connected_demo_refuses_a_cancelled_key_with_no_phone_then_suspends_the_line(
        tmp_path: Path) -> None:
    import shutil

    report = tmp_path / "report.json"
    done = subprocess.run([*KAGIYA, "demo", "--connected", "--workdir", str(tmp_path / "work"),
                           "--report", str(report)], capture_output=True, text=True,
                          timeout=900, env=_env(tmp_path), check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    rep = json.loads(report.read_text())
    steps = {s["title"]: s for s in rep["steps"]}
    assert all(s["ok"] for s in rep["steps"])
    if shutil.which("mosquitto") is None:  # says how to get the broker, and skips
        assert "tools/sysdeps.sh" in steps["connected lock"]["outcome"]
        return
    pushed = steps["operator cancels Alice's key: pushed over MQTT, no phone nearby"]
    assert "acknowledged in a signed heartbeat" in pushed["outcome"]
    refused = steps["Alice's next unlock is refused with REVOKED"]
    assert refused["data"]["code"] == "REVOKED"
    line = steps["off lease: the line is suspended only after the acknowledgement"]["outcome"]
    assert "suspended, revocation 1 acknowledged first" in line
    assert line.endswith("line.active, line.suspended)")
    assert rep["pids"] and all(_gone(p) for p in rep["pids"])
    assert _leftovers(tmp_path / "work") == []
