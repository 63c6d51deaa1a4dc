"""Maintenance authorisations for installers (issue #18): the key server signs one for an
installer token of the lock's operator, bound to the lock ID and the lock's challenge,
short-lived and audited; another operator's token learns nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json

import pytest
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import IssuerKey
from kagiya.sdk.maintenance import verify_maintenance
from kagiya.server.client import ApiProblem, InstallerClient

from tests.server.conftest import World
from tests.server.test_api import problem

NONCE = bytes(range(16))
PATH = "/v1/install/locks/{}/maintenance"


def _installer(world: World, op) -> tuple[InstallerClient, str]:  # type: ignore[no-untyped-def]
    token = op.installer_token(ttl_s=600)
    return InstallerClient("", token=token, http=world.http), token


def _trusted(inst: InstallerClient) -> dict[bytes, bytes]:
    return {kid: pub for kid, pub, state in inst.issuer_keys() if state in ("active", "next")}


def test_installer_gets_an_authorisation_bound_to_lock_and_challenge(world: World) -> None:
    op = world.operator()
    lid = world.lock(op)
    inst, token = _installer(world, op)
    out = inst.maintenance_authorisation(lid, NONCE, ["repl", "anchors"], ttl_s=300)
    got = verify_maintenance(bytes.fromhex(out["authorisation"]), _trusted(inst))
    now = int(world.clock())
    ref = hashlib.sha256(token.encode()).hexdigest()[:12]
    assert (got.lock_id, got.nonce, got.scope) == (lid, NONCE, ("repl", "anchors"))
    assert (got.iat, got.exp) == (now, now + 300) == (out["iat"], out["exp"])
    assert got.installer == out["installer"] == f"installer:{op.operator_id}:{ref}"
    assert got.operator == op.operator_id  # the lock refuses another operator's (WRONG_OPERATOR)
    # signed by the server's issuer key, nobody else's
    with pytest.raises(ProtocolError) as err:
        verify_maintenance(bytes.fromhex(out["authorisation"]),
                           {k.kid: k.public_bytes() for k in [IssuerKey.generate()]})
    assert err.value.code == ErrorCode.UNKNOWN_ISSUER
    # audited under the installer's token, without the token or the authorisation
    entries = op.audit()["items"]
    entry = next(e for e in entries if e["action"] == "lock.maintenance-authorise")
    detail = json.loads(entry["detail"]) if isinstance(entry["detail"], str) else entry["detail"]
    assert entry["actor"] == got.installer and entry["target"] == lid
    assert detail["scope"] == ["repl", "anchors"] and detail["exp"] == now + 300
    assert token not in str(entries) and out["authorisation"] not in str(entries)
    # an operator token of the same operator may ask too
    again = op._request("POST", PATH.format(lid), json={"nonce": NONCE.hex()})
    assert verify_maintenance(bytes.fromhex(again["authorisation"]), _trusted(inst)).scope \
        == ("repl",)


def test_another_operators_token_learns_nothing(world: World) -> None:
    a, b = world.operator(), world.operator(name="Other Fleet")
    lid = world.lock(a)
    inst_b, _ = _installer(world, b)
    with pytest.raises(ApiProblem) as theirs:
        inst_b.maintenance_authorisation(lid, NONCE)
    with pytest.raises(ApiProblem) as unknown:
        inst_b.maintenance_authorisation("CAR-NOPE-1", NONCE)
    assert problem(theirs) == problem(unknown) == (404, "not-found")
    assert theirs.value.body["detail"] == unknown.value.body["detail"]
    assert not [e for e in b.audit()["items"] if e["action"] == "lock.maintenance-authorise"]
    assert not [e for e in a.audit()["items"] if e["action"] == "lock.maintenance-authorise"]


def test_refusals_are_specific_and_never_5xx(world: World) -> None:
    op = world.operator()
    lid = world.lock(op)
    inst, token = _installer(world, op)
    bearer = {"Authorization": f"Bearer {token}"}
    for body in ({"nonce": "00" * 15}, {"nonce": "zz" * 16}, {"nonce": NONCE.hex(), "scope": []},
                 {"nonce": NONCE.hex(), "scope": ["root"]},
                 {"nonce": NONCE.hex(), "ttl_s": 901}, {"nonce": NONCE.hex(), "ttl_s": 10},
                 {"nonce": NONCE.hex(), "extra": 1}, {}):
        r = world.http.post(PATH.format(lid), json=body, headers=bearer)
        assert r.status_code == 422 and r.json()["code"] == "invalid-request", body
    r = world.http.post(PATH.format(lid), json={"nonce": NONCE.hex(), "scope": ["repl", "repl"]},
                        headers=bearer)
    assert r.status_code == 422 and r.json()["code"] == "invalid-maintenance-scope"
    r = world.http.post(PATH.format(lid), json={"nonce": NONCE.hex()})
    assert r.status_code == 401
    r = world.http.post(PATH.format(lid), json={"nonce": NONCE.hex()},
                        headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    op.set_lock_status(lid, True)
    with pytest.raises(ApiProblem) as err:
        inst.maintenance_authorisation(lid, NONCE)
    assert problem(err) == (409, "lock-suspended")
    op.set_lock_status(lid, False)
    assert inst.maintenance_authorisation(lid, NONCE)["lock_id"] == lid
