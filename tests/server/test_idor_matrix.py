"""Another operator on the same server, generated from the OpenAPI document (so a new route is
covered the day it is added): operator B presents operator A's IDs on every operator and
installer route - in the path, in a query filter, in a body field next to B's own IDs - and
is answered 404 not-found (a listing filter: an empty page), and A's objects are untouched.

A route whose path parameter or ``*_id`` field is not known here fails the test: say which
object it names. A control call as A with the same paths proves that the 404s are the
tenancy check, not a malformed request."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kagiya.sdk.keys import LockIdentity
from kagiya.sdk.registration import sign_registration
from kagiya.server.client import OperatorClient

from tests.server.conftest import World
from tests.server.test_privacy import Driver, _filed

DAY = 86400
METHODS = ("get", "post", "put", "patch", "delete")
TEXT = {"title": {"ja": "お知らせ", "en": "A notice"}, "body": {"ja": "本文", "en": "Text"}}

#: (first path segment, path parameter) -> the object it names
PATH_IDS = {
    ("users", "user_id"): "user",
    ("locks", "lock_id"): "lock",
    ("install", "lock_id"): "lock",
    ("key-requests", "request_id"): "key_request",
    ("privacy-requests", "request_id"): "privacy_request",
    ("partners", "partner_id"): "partner",
    ("notices", "notice_id"): "notice",
}
#: ID fields in query strings and JSON bodies (any route) -> the object they name
FIELD_IDS = {"user_id": "user", "lock_id": "lock", "partner_id": "partner"}

#: body fields that name a new object (the lock a registration creates: each operator has its own
#: lock ID namespace, tests/server/test_tenancy.py), not one to look up
NEW_IDS = {("POST", "/v1/locks", "lock_id"), ("POST", "/v1/install/locks", "lock_id")}

#: answers about the server, not the object, which come before the lookup (this test's server
#: has no MQTT broker: tests/uplink/ covers those routes with one)
GLOBAL = {(409, "uplink-not-configured")}
#: IDs of the right shape that name nothing
ABSENT = {"user": "us_0123456789abcdef", "lock": "NO-SUCH-LOCK",
          "key_request": "kr_0123456789abcdef", "privacy_request": "pr_0123456789abcdef",
          "partner": "pt_0123456789abcdef", "notice": "nt_0123456789abcdef"}

Ids = dict[str, str]
Body = Callable[[OperatorClient, Ids], dict[str, Any]]


def _lock_body(op: OperatorClient, ids: Ids) -> dict[str, Any]:
    """A registration B may make (its own fresh board, a proof over its own challenge)."""
    ident = LockIdentity.generate()
    ch = op.registration_challenge()
    lock_id = f"NEW-{ident.lock_key_id.hex()[:8].upper()}"
    proof = sign_registration(ident, lock_id, ch["operator_id"], bytes.fromhex(ch["challenge"]))
    return {"lock_id": lock_id, "sign_public": ident.sign_public.hex(),
            "kex_public": ident.kex_public.hex(), "challenge": ch["challenge"],
            "proof": proof.hex()}


#: bodies valid for the route's owner: ``ids`` are the caller's own, but for the one field
#: under test (the test overwrites it with A's)
BODIES: dict[tuple[str, str], Body] = {
    ("PATCH", "/v1/key-requests/{request_id}"): lambda op, ids: {"permissions": ["doors"]},
    ("PATCH", "/v1/locks/{lock_id}"): lambda op, ids: {"vehicle_label": "stolen",
                                                       "partner_id": ids["partner"]},
    ("PUT", "/v1/locks/{lock_id}/identity"): lambda op, ids: {
        "sign_public": "00" * 32, "kex_public": "00" * 32, "challenge": "00" * 32,
        "proof": "00" * 64},
    ("POST", "/v1/locks/{lock_id}/sim"): lambda op, ids: {"msisdn": "819012345678",
                                                          "imei": "490154203237518"},
    ("POST", "/v1/privacy-requests/{request_id}/fulfil"): lambda op, ids: {"answer": "here"},
    ("POST", "/v1/privacy-requests/{request_id}/refuse"): lambda op, ids: {"answer": "no"},
    ("POST", "/v1/users/{user_id}/provisions"): lambda op, ids: {
        "recipient": "Dealer", "fields": ["name"], "provided_on": "2026-12-01",
        "purpose": "repair"},
    ("POST", "/v1/install/locks/{lock_id}/maintenance"): lambda op, ids: {"nonce": "00" * 16},
    ("POST", "/v1/key-requests"): lambda op, ids: {
        "user_id": ids["user"], "lock_id": ids["lock"], "nbf": ids["now"],
        "exp": str(int(ids["now"]) + DAY), "permissions": ["doors"]},
    ("POST", "/v1/notices"): lambda op, ids: {"kind": "notice", "user_id": ids["user"],
                                              **TEXT},
    ("POST", "/v1/console/staff"): lambda op, ids: {"name": "Mallory", "role": "partner",
                                                    "partner_id": ids["partner"]},
    ("POST", "/v1/partners"): lambda op, ids: {"name": "Dealer 2"},
    ("POST", "/v1/phone/logs"): lambda op, ids: {
        "lock_id": ids["lock"], "records": [], "prev_hash": "00" * 32, "head_seq": 0,
        "head_hash": "00" * 32, "lost": 0, "head_signature": "00" * 64},
    ("POST", "/v1/locks"): lambda op, ids: {**_lock_body(op, ids), "partner_id": ids["partner"]},
    ("POST", "/v1/install/locks"): lambda op, ids: {**_lock_body(op, ids),
                                                    "partner_id": ids["partner"]},
}


def _objects(world: World, op: OperatorClient) -> Ids:
    """One of each object for ``op``."""
    uid, lid, rid, phone = world.setup_key(op)
    phone.sync()
    notice = op._request("POST", "/v1/notices",
                         json={"kind": "notice", "user_id": uid, **TEXT})["notice_id"]
    return {"user": uid, "lock": lid, "key_request": rid,
            "partner": op.create_partner("Dealer")["partner_id"], "notice": notice,
            "privacy_request": _filed(Driver(world, uid), "disclosure"),
            "now": str(int(world.clock()) - 60)}


def _snapshot(op: OperatorClient, ids: Ids) -> dict[str, Any]:
    return {
        "user": op.get_user(ids["user"]),
        "lock": op.get_lock(ids["lock"]),
        "key_request": op.get_key_request(ids["key_request"]),
        "partner": op._request("GET", f"/v1/partners/{ids['partner']}"),
        "privacy_request": op._request("GET", f"/v1/privacy-requests/{ids['privacy_request']}"),
        "notices": op._request("GET", "/v1/notices")["items"],
        "locks": op.list_locks()["items"],
        "key_requests": op.list_key_requests()["items"],
    }


def _schema(doc: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    content = (op.get("requestBody") or {}).get("content", {})
    schema: dict[str, Any] = content.get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _fill(template: str, ids: Ids) -> str:
    segment = template.split("/")[2]
    for name in re.findall(r"\{(\w+)\}", template):
        assert (segment, name) in PATH_IDS, f"{template}: add {name!r} to PATH_IDS"
        template = template.replace("{" + name + "}", ids[PATH_IDS[(segment, name)]])
    return template


def test_every_route_refuses_another_operators_ids(world: World) -> None:
    a, b = world.operator(name="A"), world.operator(name="B")
    a_ids, b_ids = _objects(world, a), _objects(world, b)
    before = _snapshot(a, a_ids)
    tokens = {"operatorToken": str(b.token), "installerToken": b.installer_token()}
    a_tokens = {"operatorToken": str(a.token), "installerToken": a.installer_token()}
    doc = world.http.get("/openapi.json").json()

    def call(token: str, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        r = world.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
        return r.status_code, r.json()

    tried: list[str] = []
    controls: list[tuple[str, str, dict[str, Any]]] = []
    for template, item in doc["paths"].items():
        for method, op in ((m.upper(), o) for m, o in item.items() if m in METHODS):
            scheme = {n for req in op.get("security") or [] for n in req} & set(tokens)
            if not scheme:
                continue  # public and phone routes take no operator's IDs
            for kind in sorted(scheme):  # each token kind the route takes
                token = tokens[kind]
                where = f"{method} {template} ({kind})"
                fields = {f for f in _schema(doc, op).get("properties", {}) if f.endswith("_id")}
                unknown = fields - set(FIELD_IDS)
                assert not unknown, f"{where}: add {unknown} to FIELD_IDS"
                make = BODIES.get((method, template))
                if op.get("requestBody") and make is None:
                    make = lambda op_, ids: {}  # noqa: E731
                # 1. A's IDs in the path (the body is B's own)
                if "{" in template:
                    body = make(b, b_ids) if make else None
                    status, denied = call(token, method, _fill(template, a_ids), json=body)
                    answer = (status, denied.get("code"))
                    assert answer == (404, "not-found") or answer in GLOBAL, (where, denied)
                    # and the same answer as for an ID nobody holds: no oracle
                    status, out = call(token, method, _fill(template, ABSENT),
                                       json=make(b, b_ids) if make else None)
                    assert (status, out.get("code")) == answer, (where, out)
                    assert out.get("detail") == denied.get("detail"), (where, out, denied)
                    tried.append(where)
                    if method == "GET":
                        controls.append((kind, _fill(template, a_ids), denied))
                # 2. one of A's IDs in a body field, everything else B's own
                for field in sorted(f for f in fields if (method, template, f) not in NEW_IDS):
                    assert make is not None
                    body = make(b, b_ids)
                    assert field in body, f"{where}: give {field!r} in BODIES"
                    body[field] = a_ids[FIELD_IDS[field]]
                    status, out = call(token, method, _fill(template, b_ids), json=body)
                    assert (status, out.get("code")) == (404, "not-found"), (where, field, out)
                    tried.append(f"{where} {field}")
                # 3. one of A's IDs as a query filter
                for p in op.get("parameters", []):
                    if p["in"] == "query" and p["name"] in FIELD_IDS:
                        status, out = call(token, method, template,
                                           params={p["name"]: a_ids[FIELD_IDS[p["name"]]]})
                        assert status == 404 or (status == 200 and out["items"] == []), (
                            where, p["name"], out)
                        tried.append(f"{where}?{p['name']}")
    # A is untouched, and the same GETs as A get past the lookup (another answer)
    assert _snapshot(a, a_ids) == before
    for kind, path, denied in controls:
        if path.endswith("/decommission"):
            continue  # A's lock is in service: "retired lock not found" for A too
        status, out = call(a_tokens[kind], "GET", path)
        assert (status, out.get("detail")) != (denied["status"], denied["detail"]), (path, out)
    assert len(tried) >= 50, tried


def test_every_route_refuses_a_token_of_the_wrong_kind(world: World) -> None:
    """An installer token (a laptop at the vehicle), a phone's token and an operator's token
    each open only their own routes: any other route answers 401/403 with a code, before
    anything is looked up or changed."""
    a = world.operator(name="A")
    ids = _objects(world, a)
    before = _snapshot(a, ids)
    phone = world.phone(a, ids["user"])
    tokens = {"operatorToken": str(a.token), "installerToken": a.installer_token(),
              "phoneToken": str(phone.token)}
    doc = world.http.get("/openapi.json").json()
    tried = 0
    for template, item in doc["paths"].items():
        for method, op in ((m.upper(), o) for m, o in item.items() if m in METHODS):
            allowed = {n for req in op.get("security") or [] for n in req}
            if not allowed:
                continue
            make = BODIES.get((method, template))
            for kind, token in tokens.items():
                if kind in allowed:
                    continue
                body = make(a, ids) if make else ({} if op.get("requestBody") else None)
                r = world.http.request(method, _fill(template, ids), json=body,
                                       headers={"Authorization": f"Bearer {token}"})
                assert r.status_code in (401, 403) and r.json().get("code"), (
                    method, template, kind, r.status_code, r.text[:200])
                tried += 1
    assert _snapshot(a, ids) == before
    assert tried >= 60, tried
