"""The operator token endpoint under guessing: per-address limits that a header cannot
dodge, and wrong guesses that never lock the real client out from its own address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kagiya.server import admin
from kagiya.server.models import AuditEntry
from sqlalchemy import select

from tests.server.conftest import World, make_world

ATTACKER, REAL = "203.0.113.9", "198.51.100.7"


@pytest.fixture
def proxied(db_url: str, tmp_path: Path) -> Iterator[World]:
    """The app behind a trusted reverse proxy (the test client's peer address)."""
    w, rt = make_world(db_url, tmp_path / "data", trusted_proxies=frozenset({"testclient"}))
    yield w
    w.http.close()
    rt.close()


def _login(world: World, client_id: str, secret: str, xff: str | None = None) -> int:
    headers = {"X-Forwarded-For": xff} if xff else {}
    r = world.http.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        headers=headers,
    )
    return r.status_code


def test_guesses_from_one_address_never_lock_out_the_real_client(proxied: World) -> None:
    world = proxied
    now = int(world.clock())
    new = admin.create_operator(world.rt, "Victim", 5, now - 60, now + 86400)
    limit = world.rt.settings.token_failures_per_min
    codes = [_login(world, new.client_id, "guess", ATTACKER) for _ in range(limit + 3)]
    assert codes[:limit] == [401] * limit and set(codes[limit:]) == {429}
    # the real client, from its own address, in the same minute
    assert _login(world, new.client_id, new.client_secret, REAL) == 200
    # the attacker is still refused, even with the right secret (its address is limited)
    assert _login(world, new.client_id, new.client_secret, ATTACKER) == 429
    with world.rt.engine.connect() as conn:
        failed = conn.execute(
            select(AuditEntry.actor, AuditEntry.operator_id).where(
                AuditEntry.action == "token.failed"
            )
        ).all()
    assert len(failed) == limit and {a for a, _o in failed} == {f"address:{ATTACKER}"}
    assert {o for _a, o in failed} == {new.operator_id}  # the operator sees the guessing


def test_a_spoofed_forwarded_for_does_not_dodge_the_address_limit(world: World) -> None:
    object.__setattr__(world.rt.settings, "token_rate_per_min", 3)
    codes = [_login(world, "nobody", "x", f"192.0.2.{i}") for i in range(5)]
    assert codes == [401, 401, 401, 429, 429]


def test_forwarded_for_is_read_only_behind_a_trusted_proxy(proxied: World) -> None:
    world = proxied
    object.__setattr__(world.rt.settings, "token_rate_per_min", 2)
    # the rightmost untrusted hop counts; what the client prepends does not
    codes = [_login(world, "nobody", "x", f"192.0.2.{i}, {ATTACKER}") for i in range(3)]
    assert codes == [401, 401, 429]
    assert _login(world, "nobody", "x", REAL) == 401  # another address, its own budget
