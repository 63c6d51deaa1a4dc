"""A stranger's oversized request body (no token needed: enrollment, the token endpoint) is
refused with 413 too-large before the server holds it, whether it declares its length or
streams it chunked; bodies up to the ceiling reach the route as before."""

from __future__ import annotations

import asyncio
import json

import pytest
from kagiya.server.bodylimit import MAX_REQUEST_BODY, BodyLimit

from tests.server.conftest import World

CHUNK = 64 * 1024


@pytest.mark.parametrize("path", ["/v1/phone/enroll", "/v1/partners", "/v1/phone/logs"])
def test_a_declared_oversized_body_is_refused_unread(world: World, path: str) -> None:
    body = json.dumps({"code": "A" * MAX_REQUEST_BODY}).encode()
    r = world.http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "too-large"


def test_a_chunked_oversized_body_is_cut_at_the_ceiling() -> None:
    """The ASGI wrapper itself, fed 50 MB chunked (no Content-Length): it pulls a little over
    the ceiling, answers 413 and never calls the app (the test client would buffer it all)."""
    pulled = [0]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        pulled[0] += CHUNK
        return {"type": "http.request", "body": b"A" * CHUNK,
                "more_body": pulled[0] < 50 * MAX_REQUEST_BODY}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("the app must not see the body")

    scope = {"type": "http", "method": "POST", "path": "/v1/phone/enroll",
             "headers": [(b"content-type", b"application/json")]}
    asyncio.run(BodyLimit(app)(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["code"] == "too-large"  # type: ignore[arg-type]
    assert pulled[0] <= MAX_REQUEST_BODY + CHUNK  # not the 50 MB it offered


def test_bodies_under_the_ceiling_reach_the_route(world: World) -> None:
    op = world.operator()
    # chunked and small: validated by the route as before
    r = world.http.post("/v1/phone/enroll", content=iter([b'{"code": ', b'"nope"}']),
                        headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid-request")
    # the biggest legitimate body (a notice of 2 x 20,000 characters) is taken
    big = {"kind": "notice", "title": {"ja": "お知らせ", "en": "Notice"},
           "body": {"ja": "本" * 20000, "en": "b" * 20000}}
    assert len(json.dumps(big)) < MAX_REQUEST_BODY
    out = op._request("POST", "/v1/notices", json=big)
    assert out["notice_id"]
