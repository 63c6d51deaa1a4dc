"""``kagiya install`` against a virtual board and a real key server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest
from kagiya.hil.board import VirtualBoard
from kagiya.server.client import OperatorClient
from kagiya.tools.install import connection, deploy
from mpremote.transport_serial import SerialTransport

from tests.tools.conftest import LiveServer, Result

Kagiya = Callable[..., Result]


def _lock_private_keys(board: VirtualBoard) -> list[str]:
    """The lock's private keys as stored on its flash (hex) — the tools must never show them."""
    data = (board.root / "identity").read_bytes()
    ident: dict[str, Any] = cbor2.loads(data[:-4])
    return [ident["sk"].hex(), ident["xk"].hex()]


def _all(kagiya: Kagiya, board: VirtualBoard, server: LiveServer, *extra: str,
         monkeypatch: pytest.MonkeyPatch, token: str | None = None) -> Result:
    monkeypatch.setenv("KAGIYA_OPERATOR_TOKEN", token or server.installer_token)
    return kagiya("install", "all", "--port", board.port, "--server", server.url,
                  "--lock-id", "CAR-0001", "--vehicle-label", "品川 300 あ 12-34", "--json",
                  "--no-lockdown", *extra)  # bench mode: lockdown is tested in test_lockdown


def test_install_all_deploys_provisions_registers_and_selftests(
        kagiya: Kagiya, board: VirtualBoard, key_server: LiveServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    r = _all(kagiya, board, key_server, monkeypatch=monkeypatch)
    assert r.status == 0, r.out + r.err
    steps = r.json["steps"]
    assert steps["deploy"]["written"] and steps["deploy"]["compiled_for"].endswith("x64")
    assert steps["deploy"]["romfs"]["written"] and board.romfs_path.is_file()  # lib/ in ROMFS
    assert steps["provision"]["lock_id"] == "CAR-0001" and steps["provision"]["changed"]
    assert steps["register"]["created"] is True
    assert steps["selftest"]["ok"] is True
    names = {c["name"] for c in steps["selftest"]["checks"]}
    assert {"ed25519", "x25519", "storage", "relays", "clock"} <= names

    op = OperatorClient(key_server.url, token=key_server.operator_token)
    lock = op.get_lock("CAR-0001")
    assert lock["sign_public"] == steps["provision"]["sign_public"]
    assert lock["kex_public"] == steps["provision"]["kex_public"]
    assert lock["vehicle_label"] == "品川 300 あ 12-34"
    anchors = {k["public_key"] for k in op.http.get("/v1/issuer-keys").json()["keys"]
               if k["state"] == "active"}
    assert steps["provision"]["operator"] == op.operator_id()  # bound to the token's operator
    op.close()

    # nothing secret on the screen: no private key, no token
    for secret in [*_lock_private_keys(board), key_server.installer_token]:
        assert secret not in r.out and secret not in r.err
    ident = (board.root / "identity").read_bytes()
    stored = cbor2.loads(ident[:-4])
    assert {a.hex() for a in stored["an"]} >= anchors

    # idempotent: a second run changes nothing and still passes
    again = _all(kagiya, board, key_server, monkeypatch=monkeypatch)
    assert again.status == 0, again.out + again.err
    s2 = again.json["steps"]
    assert s2["deploy"]["written"] == [] and s2["deploy"]["unchanged"] == 2  # boot, main
    assert s2["deploy"]["romfs"]["written"] is False  # the same image
    assert s2["provision"]["changed"] is False
    assert s2["provision"]["sign_public"] == steps["provision"]["sign_public"]
    assert s2["register"]["created"] is False
    assert s2["selftest"]["ok"] is True


def test_unplugged_mid_deploy_then_rerun_completes(
        kagiya: Kagiya, board_factory: Callable[..., VirtualBoard],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = tmp_path / "flash"
    board = board_factory(root)
    writes = {"n": 0}
    real_exec = connection.Board.exec

    def exec_then_unplug(self: connection.Board, code: str, **kw: Any) -> str:
        if code.startswith("_f.write("):
            writes["n"] += 1
            if writes["n"] == 12:
                board.kill()  # the cable comes out in the middle of a file
        return real_exec(self, code, **kw)

    monkeypatch.setattr(connection.Board, "exec", exec_then_unplug)
    r = kagiya("install", "deploy", "--port", board.port, "--files", "--json")
    assert r.status == 3
    assert r.json["error"] == "board-disconnected"
    assert "run the same command again" in r.json["hint"]
    assert list(root.glob("**/*.part"))  # the interrupted file never replaced a module
    monkeypatch.setattr(connection.Board, "exec", real_exec)

    replugged = board_factory(root)  # same flash, new port
    r2 = kagiya("install", "deploy", "--port", replugged.port, "--files", "--json")
    assert r2.status == 0, r2.out + r2.err
    d = r2.json["steps"]["deploy"]
    assert d["unchanged"] > 0 and d["written"]  # picked up where it stopped
    assert not list(root.glob("**/*.part"))
    r3 = kagiya("install", "selftest", "--port", replugged.port, "--json")
    assert r3.status == 0 and r3.json["steps"]["selftest"]["ok"]


def test_wrong_port_is_an_actionable_error(kagiya: Kagiya) -> None:
    r = kagiya("install", "deploy", "--port", "/dev/ttyNOPE0", "--json")
    assert r.status == 3
    assert r.json["error"] == "wrong-port" and "--port" in r.json["hint"]
    r = kagiya("install", "selftest", "--port", "")
    assert r.status == 3 and "no-board" in r.err


def test_busy_port_is_reported(kagiya: Kagiya, board: VirtualBoard) -> None:
    other = SerialTransport(board.port, timeout=1)  # e.g. an open mpremote session
    try:
        r = kagiya("install", "selftest", "--port", board.port, "--json")
    finally:
        other.close()
    assert r.status == 3 and r.json["error"] == "port-busy"


def test_port_without_micropython_is_not_responding(kagiya: Kagiya, tmp_path: Path) -> None:
    import os
    import pty

    master, slave = pty.openpty()  # a serial device that never answers
    try:
        r = kagiya("install", "selftest", "--port", os.ttyname(slave), "--timeout", "1",
                   "--json")
    finally:
        os.close(master)
        os.close(slave)
    assert r.status == 3 and r.json["error"] == "board-not-responding"


def test_reprovisioning_refuses_unless_forced_then_reregisters(
        kagiya: Kagiya, board: VirtualBoard, key_server: LiveServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = _all(kagiya, board, key_server, monkeypatch=monkeypatch)
    assert first.status == 0, first.out + first.err
    old = first.json["steps"]["provision"]["sign_public"]

    other_id = kagiya("install", "provision", "--port", board.port, "--server", key_server.url,
                      "--lock-id", "CAR-0002", "--json")
    assert other_id.status == 5 and other_id.json["error"] == "already-provisioned"
    assert "--force" in other_id.json["hint"]

    # a key request for this lock must survive the re-provisioning
    op = OperatorClient(key_server.url, token=key_server.operator_token)
    user = op.create_user()["user_id"]
    now = int(time.time())
    req = op.create_key_request(user, "CAR-0001", now, now + 86400, ["doors"])
    # forced re-provisioning wipes the board, but never replaces the registration silently:
    # the tool says what it would replace and wants --replace naming the lock
    forced = _all(kagiya, board, key_server, "--force", monkeypatch=monkeypatch)
    assert forced.status == 6 and forced.json["error"] == "lock-registered"
    assert "品川 300 あ 12-34" in forced.json["message"]
    assert first.json["steps"]["register"]["lock_id"] == "CAR-0001"
    assert "--replace CAR-0001" in forced.json["hint"]
    new = forced.json["steps"]["provision"]["sign_public"]
    assert new != old and op.get_lock("CAR-0001")["sign_public"] == old
    wrong = _all(kagiya, board, key_server, "--replace", "CAR-0009", monkeypatch=monkeypatch)
    assert wrong.status == 6 and wrong.json["error"] == "lock-registered"
    # an installer token cannot replace the identity of a lock in service
    inst = _all(kagiya, board, key_server, "--replace", "CAR-0001", monkeypatch=monkeypatch)
    assert inst.status == 6 and "in service" in inst.json["message"]
    assert op.get_lock("CAR-0001")["sign_public"] == old
    # the operator's token can: key requests are kept
    again = _all(kagiya, board, key_server, "--replace", "CAR-0001", monkeypatch=monkeypatch,
                 token=key_server.operator_token)
    assert again.status == 0, again.out + again.err
    assert again.json["steps"]["register"]["replaced"] is True
    assert op.get_lock("CAR-0001")["sign_public"] == new
    assert op.get_key_request(req["request_id"])["status"] == "active"
    op.close()

    # registering again with the current key: already registered
    r = kagiya("install", "register", "--port", board.port, "--server", key_server.url,
               "--json")
    assert r.status == 0  # same key as registered: already registered


def test_mistyped_lock_id_of_another_working_car_is_refused(
        kagiya: Kagiya, board: VirtualBoard, key_server: LiveServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from kagiya.sdk.keys import LockIdentity

    op = OperatorClient(key_server.url, token=key_server.operator_token)
    other = LockIdentity.generate()  # another car of the same operator, in service
    op.register_simulated_lock(other, "CAR-0001", vehicle_label="足立 500 さ 77-77")
    op.close()
    r = _all(kagiya, board, key_server, "--force", monkeypatch=monkeypatch)
    assert r.status == 6 and r.json["error"] == "lock-registered"
    assert "足立 500 さ 77-77" in r.json["message"] and other.lock_key_id.hex() in r.json["message"]
    assert "--lock-id" in r.json["hint"]


def test_server_down_then_rerun(kagiya: Kagiya, board: VirtualBoard, key_server: LiveServer,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    url = key_server.url
    key_server.stop()
    r = _all(kagiya, board, key_server, monkeypatch=monkeypatch)
    assert r.status == 6 and r.json["error"] == "server-unreachable"
    assert url in r.json["message"] and "--server" in r.json["hint"]
    assert key_server.installer_token not in r.out + r.err
    # pre-flight: the server is checked before the board is touched, so nothing is half done
    assert r.json["steps"] == {} and not (board.root / "main.py").exists()


def test_bad_token_is_refused_without_echoing_it(
        kagiya: Kagiya, board: VirtualBoard, key_server: LiveServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    r = _all(kagiya, board, key_server, monkeypatch=monkeypatch, token="kgy-not-a-real-token")  # noqa: S106
    assert r.status == 6 and r.json["error"] == "server-auth"
    assert "kgy-not-a-real-token" not in r.out + r.err


def test_register_before_provision_says_what_to_do(
        kagiya: Kagiya, board: VirtualBoard, key_server: LiveServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert kagiya("install", "deploy", "--port", board.port).status == 0
    monkeypatch.setenv("KAGIYA_OPERATOR_TOKEN", key_server.installer_token)
    r = kagiya("install", "register", "--port", board.port, "--server", key_server.url, "--json")
    assert r.status == 5 and r.json["error"] == "not-provisioned"


def test_selftest_without_firmware_says_deploy_first(kagiya: Kagiya, board: VirtualBoard) -> None:
    r = kagiya("install", "selftest", "--port", board.port, "--json")
    assert r.status == 3 and r.json["error"] == "firmware-missing"
    assert "deploy" in r.json["hint"]


def test_deploy_removes_stale_modules_and_refuses_when_flash_is_full(
        kagiya: Kagiya, board: VirtualBoard, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = board.root / "lib" / "kagiya_lock" / "lock.py"  # would shadow lock.mpy
    stale.parent.mkdir(parents=True)
    stale.write_text("raise ImportError('stale')\n")
    (board.root / "notes.txt").write_text("not ours")
    r = kagiya("install", "deploy", "--port", board.port, "--files", "--json")
    assert r.status == 0
    assert "/lib/kagiya_lock/lock.py" in r.json["steps"]["deploy"]["deleted"]
    assert not stale.exists() and (board.root / "notes.txt").exists()

    (board.root / "lib" / "kagiya_lock" / "lock.mpy").unlink()
    real_info = connection.Board.info

    def tiny_flash(self: connection.Board) -> dict[str, Any]:
        return {**real_info(self), "free": 1024}

    monkeypatch.setattr(connection.Board, "info", tiny_flash)
    full = kagiya("install", "deploy", "--port", board.port, "--files", "--json")
    assert full.status == 3 and full.json["error"] == "flash-full"


def test_deploy_sources_without_compiling(kagiya: Kagiya, board: VirtualBoard) -> None:
    r = kagiya("install", "deploy", "--port", board.port, "--no-compile", "--json")
    assert r.status == 0 and r.json["steps"]["deploy"]["compiled_for"] == "source"
    assert (board.root / "lib" / "kagiya_lock" / "lock.py").exists()
    assert kagiya("install", "selftest", "--port", board.port).status == 0
    # switching to compiled modules removes the sources they would be shadowed by
    r2 = kagiya("install", "deploy", "--port", board.port, "--json")
    assert "/lib/kagiya_lock/lock.py" in r2.json["steps"]["deploy"]["deleted"]


def test_plan_compares_hashes() -> None:
    from kagiya.tools.install.build import Image

    image = Image(files={"/a.py": b"a", "/lib/kagiya_lock/b.mpy": b"b"})
    state = {"hashes": {"/a.py": deploy.sha256_hex(b"a"), "/lib/kagiya_lock/b.mpy": None},
             "owned": ["/lib/kagiya_lock/b.mpy", "/lib/kagiya_lock/old.mpy", "/x.part"]}
    p = deploy.plan(image, state)
    assert p.write == ["/lib/kagiya_lock/b.mpy"]
    assert p.delete == ["/lib/kagiya_lock/old.mpy", "/x.part"]
    assert p.unchanged == 1


@pytest.mark.parametrize(("arch", "kept", "left_out"), [
    ("x64", "_fe_v64.mpy", "_fe_v32.mpy"),
    ("xtensawin", "_fe_v32.mpy", "_fe_v64.mpy"),
])
def test_image_carries_only_its_targets_files(arch: str, kept: str, left_out: str,
                                              tmp_path: Path) -> None:
    """firmware/targets.json decides what a board gets: never the other port's back end."""
    from kagiya.tools.install.build import (
        Target,
        build_image,
        default_firmware_dir,
        mpy_cross_version,
    )

    version, sub, _ = mpy_cross_version()
    image = build_image(default_firmware_dir(), Target(version, sub, arch), cache=tmp_path)
    names = {p.rsplit("/", 1)[-1] for p in image.files}
    assert kept in names and left_out not in names
    assert "targets.json" not in names
    hal = "hal_esp32.mpy" if arch == "x64" else "hal_unix.mpy"
    assert hal not in names
    assert "mqtt.mpy" not in names and "uplink.mpy" not in names  # plain build
    connected = build_image(default_firmware_dir(), Target(version, sub, arch),
                            cache=tmp_path, connected=True)
    added = {p.rsplit("/", 1)[-1] for p in connected.files} - names
    assert added == {"mqtt.mpy", "uplink.mpy"}
