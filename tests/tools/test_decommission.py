"""``kagiya install decommission`` on a virtual board against a real key server (#18 §3):
the server retires the lock ID, the lock applies the signed decommission update, and
``--erase`` leaves a board that a new tenant provisions from a clean state."""

from __future__ import annotations

import time
from collections.abc import Callable

import cbor2
import pytest
from kagiya.hil.board import VirtualBoard
from kagiya.sdk.protocol import LogEvent
from kagiya.server.client import OperatorClient
from kagiya.tools.install.connection import connect

from tests.tools.conftest import LiveServer, Result

Kagiya = Callable[..., Result]
LOCK_ID = "CAR-0001"


def _records(board: VirtualBoard) -> list[list[object]]:
    recs = []
    for f in board.root.glob("lg*/*"):
        rec = cbor2.loads(f.read_bytes()[:-4]) if f.is_file() else None
        if isinstance(rec, list) and len(rec) == 6:
            recs.append(rec)
    return sorted(recs, key=lambda r: int(r[0]))  # type: ignore[call-overload]


def test_decommission_retires_then_erase_leaves_a_clean_board(
        kagiya: Kagiya, board: VirtualBoard, key_server: LiveServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGIYA_OPERATOR_TOKEN", key_server.installer_token)
    common = ("--port", board.port, "--server", key_server.url, "--json")
    r = kagiya("install", "all", *common, "--lock-id", LOCK_ID)
    assert r.status == 0, r.out + r.err
    first_identity = (board.root / "identity").read_bytes()

    # a lock in service: the installer token may not take the phones' keys away
    op = OperatorClient(key_server.url, token=key_server.operator_token)
    user = op.create_user()["user_id"]
    now = int(time.time())
    req = op.create_key_request(user, LOCK_ID, now - 60, now + 86400, ["doors"])
    refused = kagiya("install", "decommission", *common)
    assert refused.status == 6 and refused.json["error"] == "server-refused"
    assert "in service" in refused.json["message"]
    assert not (board.root / "decommissioned").exists()
    # nor does the lock erase itself while in service (a cable alone never wipes a car)
    b = connect(board.port)
    try:
        assert b.call("import kagiya_lock.provisioning as _p\n"
                      "@@RESULT@@(json.dumps(_p.erase()))", what="t") == {
            "error": "NOT_DECOMMISSIONED"}
    finally:
        b.close()
    assert (board.root / "identity").read_bytes() == first_identity

    wrong = kagiya("install", "decommission", *common, "--lock-id", "CAR-0999")
    assert wrong.status == 5 and wrong.json["error"] == "wrong-lock"

    op.cancel_key_request(req["request_id"])
    done = kagiya("install", "decommission", *common, "--lock-id", LOCK_ID)
    assert done.status == 0, done.out + done.err
    assert done.json["steps"]["decommission"] == {"lock_id": LOCK_ID, "retired": True,
                                                  "decommissioned": True, "erased": False}
    assert op.decommission_update(LOCK_ID)["lock_id"] == LOCK_ID  # only a retired lock has one
    assert (board.root / "decommissioned").exists()
    assert [r[2] for r in _records(board)][-1] == int(LogEvent.DECOMMISSIONED)

    # again with --erase: the update applies once, then the board is wiped
    erased = kagiya("install", "decommission", *common, "--erase")
    assert erased.status == 0, erased.out + erased.err
    assert erased.json["steps"]["decommission"]["erased"] is True
    for name in ("identity", "keycache", "revocation", "decommissioned", "lockdown", "clock",
                 "kagiya_install.json"):
        assert not (board.root / name).exists(), name
    assert not _records(board) and not list(board.root.glob("lg*"))

    # a new tenant's installation starts from scratch: new identity, the log from seq 1
    again = kagiya("install", "all", *common, "--lock-id", "CAR-0002", "--no-lockdown")
    assert again.status == 0, again.out + again.err
    assert again.json["steps"]["provision"]["changed"] is True
    assert (board.root / "identity").read_bytes() != first_identity
    recs = _records(board)
    assert recs[0][0] == 1 and recs[0][2] == int(LogEvent.PROVISIONED)
    assert not any(r[2] == int(LogEvent.DECOMMISSIONED) for r in recs)
    op.close()
