"""The download fast path reads credentials exactly like the routers, and changes
process-wide interpreter settings only when a server starts, never when it is built."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kagiya.server.app import serving_app
from kagiya.server.bearer import parse_bearer
from kagiya.server.fastpath import SWITCH_INTERVAL_S

from tests.server.conftest import World, make_world


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("BEARER abc", "abc"),
        ("Basic abc", None),
        ("Bearer ", None),
        ("Bearer", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_bearer(header: str | None, token: str | None) -> None:
    assert parse_bearer(header) == token


@pytest.mark.parametrize(
    "template", ["Bearer {}", "bearer  {} ", "BEARER {}", "Basic {}", "Bearer", "{}"]
)
def test_fast_path_and_routers_agree_on_credentials(world: World, template: str) -> None:
    op = world.operator()
    *_, phone = world.setup_key(op)
    header = {"Authorization": template.format(phone.token)}
    keys = world.http.get("/v1/phone/keys", headers=header)  # the fast path
    time = world.http.get("/v1/phone/time", headers=header)  # a FastAPI route
    # No DPoP proof is sent: a well-formed bearer token is refused for the missing proof,
    # anything else as unauthorized, and both paths must agree on which.
    assert keys.status_code == time.status_code == 401
    parsed = parse_bearer(template.format(phone.token)) == phone.token
    expected = "invalid-dpop-proof" if parsed else "unauthorized"
    assert keys.json()["code"] == time.json()["code"] == expected


def test_switch_interval_is_set_at_startup_not_at_construction(tmp_path: Path) -> None:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        w, rt = make_world(f"sqlite:///{tmp_path / 'k.db'}", tmp_path / "data")
        w.http.close()
        app = serving_app(rt)
        assert sys.getswitchinterval() == pytest.approx(0.005)
        with TestClient(app):  # runs the startup handlers
            assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
        rt.close()
    finally:
        sys.setswitchinterval(before)
