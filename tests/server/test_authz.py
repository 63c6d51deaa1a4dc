"""Authorisation matrix: operator A vs B, phone vs operator, suspended IDs, expired tokens."""

from __future__ import annotations

import pytest
from kagiya.server import admin
from kagiya.server.client import ApiProblem, OperatorClient

from tests.server.conftest import World
from tests.server.logutil import make_log

DAY = 86400


def _status(
    world: World, token: str, method: str, path: str, json: object = None
) -> tuple[int, str]:
    r = world.http.request(method, path, json=json, headers={"Authorization": f"Bearer {token}"})
    return r.status_code, r.json().get("code", "")


def test_operator_cannot_see_or_touch_another_operators_data(world: World) -> None:
    a, b = world.operator(name="A"), world.operator(name="B")
    uid, lid, rid, phone = world.setup_key(a)
    phone.sync()
    phone.upload_log(**make_log(world.locks[lid], lid, 2, sub=uid))  # type: ignore[arg-type]
    partner = a.create_partner("Dealer")["partner_id"]
    now = int(world.clock())
    tb = str(b.token)
    for method, path, body in [
        ("GET", f"/v1/users/{uid}", None),
        ("POST", f"/v1/users/{uid}/suspend", None),
        ("POST", f"/v1/users/{uid}/leaked", None),
        ("DELETE", f"/v1/users/{uid}", None),
        ("GET", f"/v1/users/{uid}/export", None),
        ("POST", f"/v1/users/{uid}/enrollment-codes", None),
        ("GET", f"/v1/locks/{lid}", None),
        ("PATCH", f"/v1/locks/{lid}", {"vehicle_label": "stolen"}),
        ("POST", f"/v1/locks/{lid}/suspend", None),
        ("DELETE", f"/v1/locks/{lid}", None),
        ("GET", f"/v1/key-requests/{rid}", None),
        ("PATCH", f"/v1/key-requests/{rid}", {"permissions": ["drive"]}),
        ("POST", f"/v1/key-requests/{rid}/cancel", None),
        ("GET", f"/v1/partners/{partner}", None),
        ("POST", f"/v1/partners/{partner}/suspend", None),
        ("DELETE", f"/v1/partners/{partner}", None),
        (
            "POST",
            "/v1/key-requests",
            {
                "user_id": uid,
                "lock_id": lid,
                "nbf": now,
                "exp": now + DAY,
                "permissions": ["doors"],
            },
        ),
    ]:
        assert _status(world, tb, method, path, body) == (404, "not-found"), (method, path)
    # A's public keys (read over BLE) register nothing for B: no proof of possession
    ch = b.registration_challenge()["challenge"]
    ident = world.locks[lid]
    assert _status(world, tb, "POST", "/v1/locks",
                   {"lock_id": lid, "sign_public": ident.sign_public.hex(),
                    "kex_public": ident.kex_public.hex(), "challenge": ch,
                    "proof": "00" * 64}) == (403, "bad-registration-proof")
    for listing in ("/v1/users", "/v1/locks", "/v1/key-requests", "/v1/partners", "/v1/logs"):
        r = world.http.get(listing, headers={"Authorization": f"Bearer {tb}"})
        assert r.status_code == 200 and r.json()["items"] == [], listing
    assert all(e["target"] != uid for e in b.audit()["items"])
    # and A's data is intact
    assert a.get_key_request(rid)["status"] == "active"
    assert len(a.logs(lock_id=lid)["items"]) == 2


def test_phone_and_operator_tokens_do_not_mix(world: World) -> None:
    op = world.operator()
    _uid, _lid, _rid, phone = world.setup_key(op)
    assert _status(world, str(phone.token), "GET", "/v1/users") == (403, "wrong-token-kind")
    assert _status(world, str(phone.token), "POST", "/v1/users") == (403, "wrong-token-kind")
    assert _status(world, str(op.token), "GET", "/v1/phone/keys") == (403, "wrong-token-kind")
    assert _status(world, "nonsense", "GET", "/v1/users") == (401, "invalid-token")
    r = world.http.get("/v1/users")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    r = world.http.get("/v1/phone/keys", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert r.status_code == 401


def test_expired_tokens_are_refused(world: World) -> None:
    op = world.operator()
    _uid, _lid, _rid, phone = world.setup_key(op, days=90)
    world.clock.advance(world.rt.settings.operator_token_ttl_s + 1)
    assert _status(world, str(op.token), "GET", "/v1/users") == (401, "token-expired")
    assert phone.sync().keys  # phone tokens live longer
    world.clock.advance(world.rt.settings.phone_token_ttl_s)
    assert _status(world, str(phone.token), "GET", "/v1/phone/keys") == (401, "token-expired")
    phone.refresh_token(now=int(world.clock()))
    assert phone.sync().keys


def test_suspended_operator_and_contract_end_of_period(world: World) -> None:
    op = world.operator()
    _uid, _lid, _rid, phone = world.setup_key(op)
    admin.set_operator_status(world.rt, op.operator_id, admin.SUSPENDED)  # type: ignore[attr-defined]
    # suspension ends every token of the operator, its phones' too
    assert _status(world, str(op.token), "GET", "/v1/users") == (401, "invalid-token")
    assert _status(world, str(phone.token), "GET", "/v1/phone/keys") == (401, "invalid-token")
    with pytest.raises(ApiProblem) as ei:
        phone.refresh_token()
    assert (ei.value.status, ei.value.code) == (403, "operator-suspended")
    r = world.http.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": op.client_id,  # type: ignore[attr-defined]
            "client_secret": op.client_secret,
        },
    )  # type: ignore[attr-defined]
    assert (r.status_code, r.json()["code"]) == (403, "operator-suspended")
    admin.set_operator_status(world.rt, op.operator_id, admin.ACTIVE)  # type: ignore[attr-defined]
    assert _status(world, str(op.token), "GET", "/v1/users") == (401, "invalid-token")
    again = OperatorClient.login("", op.client_id, op.client_secret, http=world.http)  # type: ignore[attr-defined]
    assert _status(world, str(again.token), "GET", "/v1/users")[0] == 200
    phone.refresh_token()
    assert phone.sync().keys
    world.clock.advance(801 * DAY)
    r = world.http.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": op.client_id,  # type: ignore[attr-defined]
            "client_secret": op.client_secret,
        },
    )  # type: ignore[attr-defined]
    assert (r.status_code, r.json()["code"]) == (403, "contract-inactive")


@pytest.mark.parametrize("secret", ["wrong", ""])
def test_bad_client_credentials(world: World, secret: str) -> None:
    op = world.operator()
    r = world.http.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": op.client_id,  # type: ignore[attr-defined]
            "client_secret": secret,
        },
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = world.http.post("/v1/oauth/token", data={"grant_type": "password"})
    assert r.status_code == 400 and r.json()["code"] == "unsupported-grant-type"
    r = world.http.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(op.client_id, op.client_secret),
    )  # type: ignore[attr-defined]
    assert r.status_code == 200
