"""The installer contract: provisioning, identity, time, anchors and the self-test,
called as the installer does over the raw REPL (exec + print JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import cbor2

from tests.firmware import peer
from tests.firmware.harness import NOW, LockProcess
from tests.mpy import run, run_json


def _call(state: Path, expr: str) -> object:
    return run_json(f"import json\nfrom kagiya_lock import provisioning, selftest\n"
                    f"print(json.dumps({expr}))", env={"KAGIYA_STATE": str(state)}, cwd=state)


def test_provision_identity_time_anchor(tmp_path: Path) -> None:
    issuer = peer.Issuer()
    assert _call(tmp_path, "provisioning.identity()") is None
    out = _call(tmp_path, f"provisioning.provision('KGY-0001', [{issuer.public.hex()!r}], "
                          f"{NOW}, operator='op_test')")
    assert isinstance(out, dict) and out["provisioned"] is True and out["lock_id"] == "KGY-0001"
    assert len(bytes.fromhex(out["sign_public"])) == 32
    assert len(bytes.fromhex(out["kex_public"])) == 32
    ident = _call(tmp_path, "provisioning.identity()")
    assert isinstance(ident, dict)
    assert ident["sign_public"] == out["sign_public"] and ident["anchors"] == [issuer.public.hex()]
    # private keys never leave the lock: nothing secret in the public answers
    assert "sk" not in json.dumps(ident) and len(json.dumps(ident)) < 600
    again = _call(tmp_path, f"provisioning.provision('KGY-0002', [{issuer.public.hex()!r}], 1, operator='op_test')")
    assert again == {"error": "ALREADY_PROVISIONED"}
    t = _call(tmp_path, f"provisioning.set_time({NOW + 1000})")
    assert isinstance(t, dict) and t["time"] >= NOW + 1000 and t["trusted"] is True
    nxt = peer.Issuer()
    r = _call(tmp_path, f"provisioning.add_anchor({nxt.public.hex()!r})")
    assert r == {"error": "MAINTENANCE_REQUIRED"}  # tests/firmware/test_maintenance.py

    def auth(operator: str) -> str:
        nonce = bytes.fromhex(_call(tmp_path, "provisioning.maintenance_challenge()")["nonce"])
        return issuer.sign1(peer.enc({2: "installer", 3: "KGY-0001", 4: NOW + 1600,
                                      6: NOW + 1000, 7: nonce, -65541: operator,
                                      -65546: ["anchors"]}),
                            "application/kgy-maintenance+cbor").hex()
    # an authorisation for another operator's lock opens nothing here (a former tenant)
    assert _call(tmp_path, f"provisioning.open_maintenance({auth('op_other')!r})") \
        == {"error": "WRONG_OPERATOR"}
    assert _call(tmp_path, f"provisioning.open_maintenance({auth('op_test')!r})")["maintenance"] is True
    r = _call(tmp_path, f"provisioning.add_anchor({nxt.public.hex()!r})")
    assert r == {"anchors": [issuer.public.hex(), nxt.public.hex()]}
    # a key from the newly added issuer works on the booted lock
    lock = LockProcess(tmp_path)
    try:
        key = peer.issue(nxt, "KGY-0001", bytes.fromhex(out["kex_public"]),
                         nbf=NOW - 10, exp=NOW + 86400)
        nonce = lock.send(peer.hello())[3]
        r2 = lock.send(peer.command(key, nonce, "KGY-0001", 1, 1, with_credential=True))
        assert r2[0] == 4 and r2[3] == 0
        info = lock.send(peer.enc({0: 10}))
        assert info[4] == bytes.fromhex(out["sign_public"])
    finally:
        lock.stop()


def test_provision_refuses_bad_input(tmp_path: Path) -> None:
    issuer = peer.Issuer().public.hex()
    for args in (f"'bad id', [{issuer!r}], 1, operator='op_t'", "'KGY-1', [], 1, operator='o'",
                 "'KGY-1', ['abcd'], 1, operator='o'", f"'KGY-1', [{issuer!r}] * 5, 1, operator='o'",
                 f"'KGY-1', [{issuer!r}], 1", f"'KGY-1', [{issuer!r}], 1, operator=''",
                 f"'KGY-1', [{issuer!r}], 1, operator='op\\n'"):
        p = run(f"from kagiya_lock import provisioning\nprovisioning.provision({args})",
                env={"KAGIYA_STATE": str(tmp_path)}, cwd=tmp_path)
        assert p.returncode != 0 and b"ValueError" in p.stdout + p.stderr
    assert _call(tmp_path, "provisioning.identity()") is None


def test_provision_with_time_statement(tmp_path: Path) -> None:
    issuer = peer.Issuer()
    st = peer.time_statement(issuer, NOW + 5000)
    out = _call(tmp_path, f"provisioning.provision('KGY-0003', [{issuer.public.hex()!r}], "
                          f"{NOW}, bytes.fromhex({st.hex()!r}), operator='op_test')")
    assert isinstance(out, dict) and out["provisioned"]
    lock = LockProcess(tmp_path)
    try:
        info = lock.send(peer.enc({0: 10}))
        assert info[6] >= NOW + 5000 and info[7] & 8
        # the log starts with "provisioned" then "boot"
        assert info[9] == 2
    finally:
        lock.stop()
    forged = peer.time_statement(peer.Issuer(), NOW)
    p = run(f"from kagiya_lock import provisioning\nprovisioning.provision('KGY-0004', "
            f"[{issuer.public.hex()!r}], {NOW}, bytes.fromhex({forged.hex()!r}), force=True, operator='op_test')",
            env={"KAGIYA_STATE": str(tmp_path)}, cwd=tmp_path)
    assert p.returncode != 0 and b"UNKNOWN_ISSUER" in p.stdout + p.stderr
    # a refused statement does not wipe the existing identity, even with force
    assert _call(tmp_path, "provisioning.identity()")["lock_id"] == "KGY-0003"  # type: ignore[index]


def test_selftest_passes_and_restores_relays(tmp_path: Path) -> None:
    issuer = peer.Issuer()
    _call(tmp_path, f"provisioning.provision('KGY-0005', [{issuer.public.hex()!r}], {NOW}, "
                    "operator='op_test')")
    out = _call(tmp_path, "selftest.run()")
    assert isinstance(out, dict) and out["ok"] is True, out
    names = [c["name"] for c in out["checks"]]
    assert names == ["sha512", "ed25519", "x25519", "hmac_hkdf", "aes_ccm", "storage",
                     "relays", "clock"]
    assert json.loads((tmp_path / "relays.json").read_text()) == {
        "doors_locked": True, "drive": False}
    (tmp_path / "moving").write_text("1")
    out = _call(tmp_path, "selftest.run()")
    assert isinstance(out, dict)
    relays = next(c for c in out["checks"] if c["name"] == "relays")
    assert "drive skipped" in relays["detail"]


def test_hal_default_uses_state_dir(tmp_path: Path) -> None:
    got = run_json("import json\nfrom kagiya_lock import hal\nh = hal.default()\n"
                   "print(json.dumps([type(h).__name__, h.state_dir, h.log_capacity]))",
                   env={"KAGIYA_STATE": str(tmp_path)})
    assert got == ["UnixHAL", str(tmp_path), 256]
    assert cbor2  # (import kept for symmetry with the other firmware tests)
