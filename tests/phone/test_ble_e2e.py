"""The phone end to end: real key server, real firmware on the virtual BLE bench."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kagiya.tools.cli import main

from tests.phone.conftest import Bench


def _phone(home: Path, profile: str, *args: str) -> int:
    return main(["phone", args[0], "--home", str(home), "--profile", profile, *args[1:]])


def test_offline_unlock_revocation_carried_and_logs(bench: Bench, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "phones"
    op = bench.server.operator()
    code = op.enrollment_code(bench.user_id)["code"]
    assert _phone(home, "alice", "enroll", "--server", bench.server.url, "--code", code) == 0
    assert "1 new key(s)" in capsys.readouterr().out

    # offline at the vehicle: the relays really move
    assert _phone(home, "alice", "unlock", "CAR-0001") == 0
    assert "doors unlocked" in capsys.readouterr().out
    assert bench.lock.relays() == {"doors_locked": False, "drive": False}
    # protocol v2: drive needs someone in the vehicle (the presence signal)
    assert _phone(home, "alice", "drive", "on", "CAR-0001") == 1
    assert "brake pedal" in capsys.readouterr().err
    assert bench.lock.relays()["drive"] is False
    bench.lock.set_presence(True)
    assert _phone(home, "alice", "drive", "on", "CAR-0001") == 0
    assert "drive enabled" in capsys.readouterr().out
    assert _phone(home, "alice", "lock", "CAR-0001") == 0
    assert bench.lock.relays() == {"doors_locked": True, "drive": True}
    assert _phone(home, "alice", "unlock", "CAR-0009", "--timeout", "1") == 5
    assert "no key for lock CAR-0009" in capsys.readouterr().err

    # the operator cancels Alice's key; Bob syncs and carries the revocation to the lock
    op.cancel_key_request(bench.request_id)
    bob = op.create_user()["user_id"]
    now = int(time.time())
    op.create_key_request(bob, "CAR-0001", now - 60, now + 86400, ["doors", "log"])
    code = op.enrollment_code(bob)["code"]
    assert _phone(home, "bob", "enroll", "--server", bench.server.url, "--code", code) == 0
    assert "revocation updates CAR-0001 v1" in capsys.readouterr().out
    assert _phone(home, "bob", "status", "CAR-0001") == 0
    capsys.readouterr()
    assert _phone(home, "alice", "unlock", "CAR-0001") == 1
    assert "cancelled by the operator" in capsys.readouterr().err
    assert bench.lock.relays()["doors_locked"] is True

    # the log, fetched offline, queued, then uploaded and visible to the operator
    bench.server.proc.terminate()
    bench.server.proc.wait(10)
    assert _phone(home, "bob", "logs", "CAR-0001") == 0
    assert "stay queued" in capsys.readouterr().out
    restarted = bench.server.restart()
    assert _phone(home, "bob", "sync") == 0
    assert "uploaded 1 log batch(es), 0 still queued" in capsys.readouterr().out
    items = restarted.operator().logs(lock_id="CAR-0001", limit=200)["items"]
    events = {(r["event"], r["code"]) for r in items}
    assert (1, 0) in events and (3, 0) in events and (1, 23) in events
    assert _phone(home, "bob", "logs", "CAR-0001") == 0  # nothing new but the fetch itself
