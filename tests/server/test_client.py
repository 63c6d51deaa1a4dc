"""The operator client keeps working in a long-running backend: it logs in again after
``token-expired``, waits out ``Retry-After``, and its errors name the offending field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kagiya.server.client import ApiProblem, OperatorClient

from tests.server.conftest import World, make_world


@pytest.fixture
def slow_world(tmp_path: Path) -> Iterator[World]:
    """SQLite app whose public time endpoint admits one call a minute."""
    w, rt = make_world(f"sqlite:///{tmp_path / 'k.db'}", tmp_path / "data", time_rate_per_min=1)
    yield w
    w.http.close()
    rt.close()


def test_operator_client_logs_in_again_after_token_expired(world: World) -> None:
    op = world.operator()
    first = op.token
    world.clock.advance(world.rt.settings.operator_token_ttl_s + 1)
    uid = op.create_user()["user_id"]  # refused with token-expired, logged in, sent again
    assert op.token != first
    assert op.get_user(uid)["status"] == "active"
    assert len(op.list_users()["items"]) == 1  # the retry did not create a second user


def test_a_client_without_credentials_reports_token_expired(world: World) -> None:
    op = world.operator()
    bare = OperatorClient("", token=op.token, http=world.http)
    world.clock.advance(world.rt.settings.operator_token_ttl_s + 1)
    with pytest.raises(ApiProblem) as err:
        bare.create_user()
    assert (err.value.status, err.value.code) == (401, "token-expired")


def test_retry_after_is_honoured(slow_world: World) -> None:
    w = slow_world
    w.clock.t = w.clock.t - w.clock.t % 60 + 55  # 5 s before the rate window turns
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        w.clock.advance(s)

    client = OperatorClient("", http=w.http, sleep=sleep)
    client.server_time()
    t, _statement = client.server_time()  # 429 Retry-After: 5, waited, then answered
    assert slept == [5.0]
    assert t >= int(w.clock.t) - 1


def test_unknown_fields_are_refused_and_named(world: World) -> None:
    op = world.operator()
    r = world.http.post(
        "/v1/users", json={"partner_id": "pt_1"}, headers={"Authorization": f"Bearer {op.token}"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "invalid-request"
    assert "partner_id" in body["detail"]
    assert body["errors"][0]["loc"] == ["body", "partner_id"]
    assert op.list_users()["items"] == []  # nothing was created
    r = world.http.post("/v1/users", json={}, headers={"Authorization": f"Bearer {op.token}"})
    assert r.status_code == 201  # an empty object is no field


def test_api_problem_names_the_offending_field(world: World) -> None:
    op = world.operator()
    with pytest.raises(ApiProblem) as err:
        op._request("POST", "/v1/partners", json={"name": "Dealer", "colour": "red"})
    assert err.value.code == "invalid-request"
    assert "body.colour" in str(err.value)
