"""Key custody and device-bound phone requests against the real key server (SQLite and
PostgreSQL): the server never holds a key's secret, a leaked token alone downloads nothing,
a proof is used once, refresh and suspension end older tokens."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kagiya.sdk import cbor
from kagiya.sdk.credential import verify_credential
from kagiya.sdk.dpop import make_proof
from kagiya.sdk.keys import LockIdentity
from kagiya.sdk.keywrap import new_wrapped_secret
from kagiya.server.client import ApiProblem, PhoneClient
from kagiya.server.models import IssuedKey

from tests.server.conftest import World

PATH = "/v1/phone/keys"


def _get(world: World, token: str, proof: str | None, path: str = PATH) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    r = world.http.get(path, headers=headers)
    return r.status_code, r.json().get("code", "")


def _proof(world: World, phone: PhoneClient, method: str = "GET", path: str = PATH,
           **kw) -> str:  # type: ignore[no-untyped-def]
    args = {"access_token": phone.token, "now": int(world.clock()), **kw}
    return make_proof(phone._device, method, path, **args)  # type: ignore[arg-type]


def test_the_server_never_sees_the_secret(world: World) -> None:
    op = world.operator()
    _uid, lid, _rid, phone = world.setup_key(op)
    first = world.http.get(PATH, headers={"Authorization": f"Bearer {phone.token}",
                                          "DPoP": _proof(world, phone)}).json()
    assert first["keys"] == [] and first["pending"][0]["lock_id"] == lid
    assert first["pending"][0]["lock_kex_public"] == world.locks[lid].kex_public.hex()
    sync = phone.sync()
    key = sync.keys[0]
    # the lock opens the wrap the phone made and finds the phone's own K
    anchors = {kid: pub for kid, pub, _s in sync.issuer_keys}
    got = verify_credential(key.credential, anchors, lid, int(world.clock()),
                            lock_kex_private=world.locks[lid].kex_private_bytes)
    assert got.secret == key.secret
    assert "secret" not in IssuedKey.__table__.c.keys() and "secret_sealed" not in \
        IssuedKey.__table__.c.keys()
    with world.rt.engine.connect() as conn:  # no column, no row anywhere holds K
        for table in ("issued_keys", "idempotency", "audit_log"):
            for row in conn.exec_driver_sql(f"SELECT * FROM {table}"):  # noqa: S608
                assert not any(isinstance(v, bytes) and key.secret in v for v in row)


def test_a_leaked_token_alone_downloads_nothing(world: World) -> None:
    op = world.operator()
    _uid, _lid, _rid, phone = world.setup_key(op)
    token = str(phone.token)
    assert _get(world, token, None) == (401, "invalid-dpop-proof")
    thief = Ed25519PrivateKey.generate()
    assert _get(world, token, make_proof(thief, "GET", PATH, access_token=token,
                                         now=int(world.clock()))) == (401, "invalid-dpop-proof")
    # a proof captured for another request, method, token or time does not carry over
    assert _get(world, token, _proof(world, phone, path="/v1/phone/time")) == (
        401, "invalid-dpop-proof")
    assert _get(world, token, _proof(world, phone, method="POST")) == (401, "invalid-dpop-proof")
    assert _get(world, token, _proof(world, phone, access_token="x" * 43)) == (
        401, "invalid-dpop-proof")
    assert _get(world, token, _proof(world, phone, now=int(world.clock()) - 301)) == (
        401, "invalid-dpop-proof")
    for path in ("/v1/phone/revocations", "/v1/phone/time"):
        assert _get(world, token, None, path) == (401, "invalid-dpop-proof")


def test_a_proof_is_accepted_once(world: World) -> None:
    op = world.operator()
    _uid, _lid, _rid, phone = world.setup_key(op)
    proof = _proof(world, phone)
    assert _get(world, str(phone.token), proof)[0] == 200
    assert _get(world, str(phone.token), proof) == (401, "replayed-proof")
    time_proof = _proof(world, phone, path="/v1/phone/time")
    assert _get(world, str(phone.token), time_proof, "/v1/phone/time")[0] == 200
    assert _get(world, str(phone.token), time_proof, "/v1/phone/time") == (401, "replayed-proof")


def test_a_phone_with_a_wrong_clock_signs_again_on_server_time(world: World) -> None:
    op = world.operator()
    _uid, _lid, _rid, phone = world.setup_key(op)
    world.clock.advance(3600)  # the phone's clock is an hour behind the server's
    assert len(phone.sync().keys) == 1
    assert phone.clock_offset > 3000  # learnt from the refusal (the test clock lags a bit)


def test_wraps_are_checked_for_form_and_lock(world: World) -> None:
    op = world.operator()
    _uid, lid, rid, phone = world.setup_key(op)

    def post(cnf: bytes) -> tuple[int, dict]:  # type: ignore[type-arg]
        r = world.http.post(PATH, json={"wraps": [{"request_id": rid, "cnf": cnf.hex()}]},
                            headers={"Authorization": f"Bearer {phone.token}",
                                     "DPoP": _proof(world, phone, method="POST")})
        return r.status_code, r.json()

    _secret, good = new_wrapped_secret(world.locks[lid].kex_public)
    broken = cbor.loads(good)
    broken[2][2] = broken[2][2][:-1]
    status, body = post(cbor.dumps(broken))
    assert (status, body["code"]) == (422, "invalid-key-wrap")
    # a wrap for another lock key (say the lock was re-provisioned meanwhile) signs nothing
    _s, foreign = new_wrapped_secret(LockIdentity.generate().kex_public)
    status, body = post(foreign)
    assert status == 200 and body["keys"] == [] and body["pending"][0]["request_id"] == rid
    status, body = post(good)
    assert status == 200 and len(body["keys"]) == 1 and body["pending"] == []
    assert "secret" not in body["keys"][0]


def test_refresh_ends_the_earlier_tokens(world: World) -> None:
    op = world.operator()
    _uid, _lid, _rid, phone = world.setup_key(op)
    tokens = [str(phone.token)]
    for _ in range(3):
        tokens.append(phone.refresh_token())
    assert len(set(tokens)) == 4
    for old in tokens[:-1]:
        stale = PhoneClient("", token=old, http=world.http)
        stale.phone_id, stale._device = phone.phone_id, phone._device
        with pytest.raises(ApiProblem) as ei:
            stale.sync()
        assert (ei.value.status, ei.value.code) == (401, "invalid-token")
    assert phone.sync().keys


@pytest.mark.parametrize("path,body,field", [
    ("/v1/installer-tokens", {"ttl_s": 3600}, "access_token"),
    ("enrollment", None, "code"),
])
def test_an_idempotent_replay_shows_a_secret_only_for_minutes(  # type: ignore[no-untyped-def]
    world: World, path, body, field
) -> None:
    op = world.operator()
    if path == "enrollment":
        path = f"/v1/users/{op.create_user()['user_id']}/enrollment-codes"
    headers = {"Authorization": f"Bearer {op.token}", "Idempotency-Key": "once-1"}
    first = world.http.post(path, json=body, headers=headers)
    assert first.status_code == 201 and first.json()[field]
    retry = world.http.post(path, json=body, headers=headers)  # the answer was lost: retry
    assert retry.json()[field] == first.json()[field]
    world.clock.advance(301)
    late = world.http.post(path, json=body, headers=headers)
    assert late.status_code == 201 and late.headers["Idempotent-Replayed"] == "true"
    assert late.json()[field] == "" and late.headers["Kagiya-Secret-Withheld"] == "true"
    assert {k: v for k, v in late.json().items() if k != field} == {
        k: v for k, v in first.json().items() if k != field}
    with world.rt.engine.connect() as conn:  # erased, not just hidden
        rows = conn.exec_driver_sql("SELECT secret_sealed FROM idempotency").all()
    assert rows and all(r[0] is None for r in rows)
