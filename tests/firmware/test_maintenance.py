"""Lockdown and authorised maintenance on the lock (issue 18, #3).

Authorisations are signed here with ``cryptography`` by the test's own issuer (the
lock's trust anchor) and by strangers, straight from the format in
firmware/lib/kagiya_lock/maintenance.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kagiya.sdk.protocol import CT_MAINTENANCE as CT

from tests.firmware import peer
from tests.firmware.harness import NOW, Bench

SCOPE = -65546
OPERATOR = -65541
E_MAINT, E_LOCKDOWN, E_ANCHORS = 48, 49, 50


def _auth(issuer: peer.Issuer, lock_id: str, nonce: bytes, *, scope: list[str] | None = None,
          iat: int | None = None, ttl: int = 600, who: str = "installer-7",
          operator: str | None = peer.OPERATOR, **override: Any) -> str:
    iat = int(time.time()) if iat is None else iat
    p: dict[Any, Any] = {2: who, 3: lock_id, 4: iat + ttl, 6: iat, 7: nonce,
                         OPERATOR: operator, SCOPE: scope if scope is not None else ["repl", "anchors"]}
    p.update(override)
    if operator is None:
        del p[OPERATOR]
    return issuer.sign1(peer.enc(p), CT).hex()


def _prov(b: Bench, call: str) -> Any:
    return b.lock.eval(f"__import__('kagiya_lock.provisioning').provisioning.{call}")


def _challenge(b: Bench) -> bytes:
    return bytes.fromhex(_prov(b, "maintenance_challenge(hal=hal)")["nonce"])


def _open(b: Bench, auth: str) -> dict:
    return _prov(b, f"open_maintenance({auth!r}, hal=hal)")


def _events(b: Bench) -> list[list[Any]]:
    import cbor2

    recs = b.lock.eval("[r.hex() for r in lock.log.fetch(0, 1 << 20)[0]]")
    return [cbor2.loads(bytes.fromhex(r))[2:4] for r in recs]


def test_adding_an_anchor_needs_an_authorisation(bench: Bench) -> None:
    """The thief's move: add their own issuer key over the REPL. Refused, then allowed
    with an authorisation signed by the lock's anchor, and logged."""
    thief = peer.Issuer()
    assert _prov(bench, f"add_anchor({thief.public.hex()!r}, hal=hal)") == {
        "error": "MAINTENANCE_REQUIRED"}
    assert _prov(bench, f"remove_anchor({bench.issuer.public.hex()!r}, hal=hal)") == {
        "error": "MAINTENANCE_REQUIRED"}
    # the thief signs their own authorisation: not a trust anchor of this lock
    r = _open(bench, _auth(thief, bench.lock_id, _challenge(bench)))
    assert r == {"error": "UNKNOWN_ISSUER"}
    nxt = peer.Issuer()
    r = _open(bench, _auth(bench.issuer, bench.lock_id, _challenge(bench)))
    assert r["maintenance"] is True and r["scope"] == ["repl", "anchors"]
    out = _prov(bench, f"add_anchor({nxt.public.hex()!r}, hal=hal)")
    assert out["anchors"] == [bench.issuer.public.hex(), nxt.public.hex()]
    assert _prov(bench, f"remove_anchor({bench.issuer.public.hex()!r}, hal=hal)") == {
        "anchors": [nxt.public.hex()]}
    assert _prov(bench, f"remove_anchor({nxt.public.hex()!r}, hal=hal)") == {
        "error": "LAST_ANCHOR"}
    bench.lock.call("reload")
    ev = _events(bench)
    assert [E_MAINT, 17] not in ev  # no refusal logged as a bad signature
    assert [E_MAINT, 16] in ev and [E_MAINT, 0] in ev and ev.count([E_ANCHORS, 0]) == 2


REFUSALS = {
    "wrong_lock": (lambda b, n: _auth(b.issuer, "OTHER-LOCK", n), "WRONG_LOCK"),
    # a former tenant's (or another operator's) installer: the same ID, another operator
    "wrong_operator": (lambda b, n: _auth(b.issuer, b.lock_id, n, operator="op_other"),
                       "WRONG_OPERATOR"),
    "no_operator": (lambda b, n: _auth(b.issuer, b.lock_id, n, operator=None),
                    "MALFORMED"),
    "expired": (lambda b, n: _auth(b.issuer, b.lock_id, n, iat=NOW - 3600), "EXPIRED"),
    "long_lived": (lambda b, n: _auth(b.issuer, b.lock_id, n, ttl=3600), "INVALID_CLAIMS"),
    "other_nonce": (lambda b, n: _auth(b.issuer, b.lock_id, bytes(16)), "STALE_CHALLENGE"),
    "unknown_scope": (lambda b, n: _auth(b.issuer, b.lock_id, n, scope=["root"]),
                      "MALFORMED"),
    "wrong_content_type": (lambda b, n: b.issuer.sign1(peer.enc({3: b.lock_id}),
                                                       peer.CT_TIME).hex(),
                           "WRONG_CONTENT_TYPE"),
    "bad_signature": (lambda b, n: _auth(b.issuer, b.lock_id, n)[:-2] + "00",
                      "BAD_SIGNATURE"),
    "not_hex": (lambda b, n: "zz", "MALFORMED"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_authorisation_refusals(bench: Bench, case: str) -> None:
    make, name = REFUSALS[case]
    assert _open(bench, make(bench, _challenge(bench))) == {"error": name}
    assert _prov(bench, f"add_anchor({peer.Issuer().public.hex()!r}, hal=hal)") == {
        "error": "MAINTENANCE_REQUIRED"}


def test_authorisation_is_one_use(bench: Bench) -> None:
    auth = _auth(bench.issuer, bench.lock_id, _challenge(bench))
    assert _open(bench, auth)["maintenance"] is True
    _prov(bench, "end_maintenance(hal=hal)")
    assert _open(bench, auth) == {"error": "STALE_CHALLENGE"}  # replayed
    # a failed attempt also consumes the challenge
    n = _challenge(bench)
    assert _open(bench, _auth(bench.issuer, "OTHER-LOCK", n)) == {"error": "WRONG_LOCK"}
    assert _open(bench, _auth(bench.issuer, bench.lock_id, n)) == {
        "error": "STALE_CHALLENGE"}


def test_scope_limits_what_maintenance_allows(bench: Bench) -> None:
    assert _open(bench, _auth(bench.issuer, bench.lock_id, _challenge(bench),
                              scope=["repl"]))["maintenance"] is True
    assert _prov(bench, f"add_anchor({peer.Issuer().public.hex()!r}, hal=hal)") == {
        "error": "MAINTENANCE_REQUIRED"}


def test_locked_down_lock_refuses_provisioning_until_authorised(bench: Bench) -> None:
    assert _prov(bench, "lockdown(hal=hal)") == {"locked_down": True}
    assert _prov(bench, "status(hal=hal)") == {"provisioned": True, "locked_down": True,
                                               "maintenance": False}
    anchors = [bench.issuer.public.hex()]
    assert _prov(bench, f"provision('OTHER-1', {anchors!r}, {NOW}, force=True, operator='op_test', hal=hal)") \
        == {"error": "LOCKED_DOWN"}
    assert _prov(bench, f"set_time({NOW + 999999}, hal=hal)") == {"error": "LOCKED_DOWN"}
    assert _open(bench, _auth(bench.issuer, bench.lock_id, _challenge(bench),
                              scope=["repl", "provision"]))["maintenance"] is True
    assert _prov(bench, f"provision('OTHER-1', {anchors!r}, {NOW}, force=True, operator='op_test', hal=hal)")[
        "lock_id"] == "OTHER-1"
    assert _prov(bench, "status(hal=hal)")["locked_down"] is True  # still locked down


CONSOLE = """
import kagiya_lock.maintenance as m
out = []
c = m.Console(lock, lambda: b'', out.append)
"""


def test_serial_console_speaks_only_the_maintenance_exchange(bench: Bench) -> None:
    bench.lock.call("exec", code=CONSOLE.replace("out = []", "lock._out = out = []")
                    .replace("c = m", "lock._c = c = m"))

    def feed(data: bytes) -> tuple[bool, list[str]]:
        opened = bench.lock.eval(f"lock._c.feed({data!r})")
        return opened, bench.lock.eval("lock._out")

    opened, out = feed(b"\x03\x03\x01import os\r\nprint(open('/identity').read())\r\n")
    assert not opened and out == []  # Ctrl-C, raw-REPL entry and code: ignored
    opened, out = feed(b"KGY-MAINT-CHALLENGE\r\n")
    nonce = bytes.fromhex(out[-1].split()[1])
    assert out[-1].split()[2] == bench.lock_id  # the installer asks its server for this lock
    opened, out = feed(f"KGY-MAINT {_auth(peer.Issuer(), bench.lock_id, nonce)}\r\n".encode())
    assert not opened and out[-1].strip() == "KGY-MAINT-ERR UNKNOWN_ISSUER"
    opened, out = feed(b"KGY-MAINT-CHALLENGE\n")
    nonce = bytes.fromhex(out[-1].split()[1])
    opened, out = feed(f"KGY-MAINT {_auth(bench.issuer, bench.lock_id, nonce)}\n".encode())
    assert opened and out[-1].startswith("KGY-MAINT-OK ")
