"""What the operator's audit log keeps: refused enrollments, token refreshes, key issues,
log uploads, installer actions under the token that made them — and no deleted user's ID."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kagiya.sdk.keys import LockIdentity
from kagiya.server.client import InstallerClient, OperatorClient

from tests.server.conftest import World
from tests.server.logutil import make_log


def _entries(op: OperatorClient) -> list[dict[str, Any]]:
    items = list(op.audit(limit=200)["items"])
    for e in items:  # the API shows ``detail`` as its JSON text
        e["detail"] = json.loads(e["detail"] or "{}")
    return items


def test_phone_actions_are_audited(world: World) -> None:
    op = world.operator()
    uid, lid, _rid, phone = world.setup_key(op)
    key = phone.sync().keys[0]
    phone.refresh_token()
    phone.upload_log(**make_log(world.locks[lid], lid, 2, sub=uid))  # type: ignore[arg-type]
    code = op.enrollment_code(uid)["code"]
    bad = world.http.post(
        "/v1/phone/enroll", json={"code": code, "device_public": "ab" * 32, "signature": "00" * 64}
    )
    assert bad.status_code == 403
    by_action = {e["action"]: e for e in _entries(op)}
    issued = by_action["key.issue"]
    assert issued["actor"] == f"phone:{phone.phone_id}" and issued["target"] == uid
    assert key.key_id.hex() in issued["detail"]["keys"]
    assert by_action["phone.token-refresh"]["detail"]["revoked_tokens"] == 1
    assert by_action["log.upload"]["target"] == lid
    assert by_action["log.upload"]["detail"]["accepted"] == 2
    assert by_action["phone.enroll-failed"]["detail"]["code"] == "bad-device-proof"


def test_installer_actions_name_the_token(world: World) -> None:
    op = world.operator()
    token = op.installer_token(ttl_s=600)
    inst = InstallerClient("", token=token, http=world.http)
    ident = LockIdentity.generate()
    inst.register_simulated_lock(ident, "INST-0001")
    ref = hashlib.sha256(token.encode()).hexdigest()[:12]
    entries = _entries(op)
    created = next(e for e in entries if e["action"] == "installer-token.create")
    assert created["target"] == ref and token not in str(entries)
    registered = next(e for e in entries if e["target"] == "INST-0001")
    assert registered["actor"] == f"installer:{op.operator_id}:{ref}"  # type: ignore[attr-defined]


def test_a_deleted_user_id_never_stays_in_the_audit_log(world: World) -> None:
    op = world.operator()
    uid, _lid, _rid, phone = world.setup_key(op)
    phone.sync()
    phone.refresh_token()
    assert any(uid in str(e) for e in _entries(op))
    op.delete_user(uid)
    entries = _entries(op)
    assert not any(uid in str(e) for e in entries)
    aliases = {e["target"] for e in entries if e["target"].startswith("deleted-user:")}
    assert len(aliases) == 1  # one stable pseudonym: entries about the user stay linkable
