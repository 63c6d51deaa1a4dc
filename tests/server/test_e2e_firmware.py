"""End to end: a key downloaded through the server with the client verifies in the lock
firmware's decision function running under the real MicroPython interpreter."""

from __future__ import annotations

import json

import pytest

from tests.mpy import FIRMWARE_LIB, run_json
from tests.server.conftest import World

pytestmark = pytest.mark.skipif(
    not (FIRMWARE_LIB / "kagiya_lock" / "credential.py").exists(),
    reason="firmware decision function not present",
)

CODE = """
import json
from kagiya_lock import credential, cose, errors
a = json.loads(%r)
h = bytes.fromhex
anchors = {h(k): h(v) for k, v in a["anchors"].items()}
class Listed:  # the lock's revocation state: listed key IDs and the generation floor
    def __init__(self, ctis, floor):
        self.ctis, self.floor = ctis, floor
    def revoked(self, cti, gen):
        return gen < self.floor or cti in self.ctis
code, claims = credential.check(h(a["cred"]), anchors, a["lock_id"], a["operator"], a["now"],
                                Listed(set(h(x) for x in a["revoked"]), a.get("floor", 0)))
out = {"code": code}
if code == 0:
    key, ucode = cose.unwrap(claims[credential.CNF], h(a["lock_kid"]), h(a["kex_private"]))
    out["unwrap"] = ucode
    out["secret"] = key.hex() if key else None
    out["sub"] = claims[credential.SUB]
    out["perm"] = claims[credential.PERM]
print(json.dumps(out))
"""


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_downloaded_key_opens_in_firmware(world: World) -> None:
    op = world.operator()
    uid, lid, rid, phone = world.setup_key(op, perms=("doors",))
    sync = phone.sync()
    key = sync.keys[0]
    ident = world.locks[lid]
    args = {
        "anchors": {k.hex(): p.hex() for k, p, _s in sync.issuer_keys},
        "cred": key.credential.hex(),
        "lock_id": lid,
        "operator": op.operator_id,  # type: ignore[attr-defined]
        "now": int(world.clock()),
        "revoked": [],
        "lock_kid": ident.lock_key_id.hex(),
        "kex_private": ident.kex_private_bytes.hex(),
    }
    out = run_json(CODE % json.dumps(args))
    assert out == {"code": 0, "unwrap": 0, "secret": key.secret.hex(), "sub": uid, "perm": 1}
    # cancelled: the revocation update's entry makes the firmware refuse it (REVOKED = 23)
    op.cancel_key_request(rid)
    from kagiya.sdk.signed import verify_revocation_update

    upd = phone.revocations()[0]
    entries = verify_revocation_update(upd.update, {k: p for k, p, _s in sync.issuer_keys}).entries
    out = run_json(CODE % json.dumps(dict(args, revoked=[c.hex() for c, _e in entries])))
    assert out == {"code": 23}
    # a lock of another operator refuses it (WRONG_OPERATOR = 37)
    out = run_json(CODE % json.dumps(dict(args, operator="op_other")))
    assert out == {"code": 37}
    # another lock refuses it (WRONG_LOCK = 20)
    out = run_json(CODE % json.dumps(dict(args, lock_id="OTHER-LOCK")))
    assert out == {"code": 20}
