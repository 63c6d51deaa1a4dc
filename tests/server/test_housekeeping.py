"""Housekeeping: expired rows go, live ones stay; on a schedule in every server process and
from the admin CLI."""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kagiya.server import cli
from kagiya.server.app import serving_app
from kagiya.server.client import OperatorClient
from kagiya.server.housekeeping import Housekeeper, purge
from kagiya.server.models import Idempotency, IssuedKey, Revocation, Token
from sqlalchemy import func, select

from tests.server.conftest import World

DAY = 86400


def _count(world: World, model: Any) -> int:
    with world.rt.engine.connect() as c:
        return int(c.scalar(select(func.count()).select_from(model)) or 0)


def _relogin(world: World, op: OperatorClient) -> OperatorClient:
    fresh = OperatorClient.login(
        "",
        op.client_id,  # type: ignore[attr-defined]
        op.client_secret,  # type: ignore[attr-defined]
        http=world.http,
    )
    fresh.client_id, fresh.client_secret = op.client_id, op.client_secret  # type: ignore[attr-defined]
    return fresh


def test_purge_drops_expired_keys_and_tokens_keeps_live_ones(world: World) -> None:
    op = world.operator()
    _uid, _lid, _rid, phone = world.setup_key(op)
    first = phone.sync().keys[0]
    assert purge(world.rt) == dict.fromkeys(purge(world.rt), 0)  # nothing expired yet
    world.clock.advance(world.rt.settings.key_lifetime_s + 2 * DAY)
    tokens_before = _count(world, Token)
    counts = purge(world.rt)
    assert counts["issued_keys"] == 1 and _count(world, IssuedKey) == 0
    assert counts["tokens"] >= 1 and _count(world, Token) < tokens_before  # operator token
    # the phone's token expired too: it refreshes with its device key and gets a new key
    phone.refresh_token(now=int(world.clock()))
    second = phone.sync().keys[0]
    assert second.key_id != first.key_id and _count(world, IssuedKey) == 1


def test_purge_drops_revocations_once_their_keys_expired(world: World) -> None:
    op = world.operator()
    _uid, lid, rid, phone = world.setup_key(op)
    _uid2, _lid2, _rid2, other = world.setup_key(op)
    phone.sync()
    op.cancel_key_request(rid)
    assert _count(world, Revocation) == 1
    purge(world.rt)
    assert _count(world, Revocation) == 1  # the revoked key is still valid: keep carrying it
    world.clock.advance(world.rt.settings.key_lifetime_s + 1)
    assert purge(world.rt)["revocations"] == 1 and _count(world, Revocation) == 0
    other.refresh_token(now=int(world.clock()))  # a week later: the 1-day token expired
    assert other.sync().keys  # the other user's key request is untouched
    assert lid in world.locks


def test_idempotency_key_replays_within_a_day_only(world: World) -> None:
    op = world.operator()
    first = op.create_user(idempotency_key="k-1")
    assert op.create_user(idempotency_key="k-1") == first  # a retry: same user
    world.clock.advance(DAY + 1)
    op = _relogin(world, op)
    # expired: a new request, before and after housekeeping ran
    second = op.create_user(idempotency_key="k-1")
    assert second["user_id"] != first["user_id"]
    world.clock.advance(DAY + 1)
    op = _relogin(world, op)
    assert purge(world.rt)["idempotency"] >= 1 and _count(world, Idempotency) == 0
    assert op.create_user(idempotency_key="k-1")["user_id"] != second["user_id"]


def test_housekeeper_thread_purges_until_stopped(world: World) -> None:
    op = world.operator()
    _uid, _lid, _rid, phone = world.setup_key(op)
    phone.sync()
    world.clock.advance(world.rt.settings.key_lifetime_s + 2 * DAY)
    keeper = Housekeeper(world.rt, 0.05)
    keeper.start()
    try:
        deadline = time.monotonic() + 30
        while _count(world, IssuedKey) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _count(world, IssuedKey) == 0
    finally:
        keeper.stop()
    assert not any(t.name == "kagiya-housekeeping" for t in threading.enumerate())


def test_served_app_runs_housekeeping_between_startup_and_shutdown(world: World) -> None:
    names = lambda: {t.name for t in threading.enumerate()}  # noqa: E731
    with TestClient(serving_app(world.rt)):
        assert "kagiya-housekeeping" in names()
    assert "kagiya-housekeeping" not in names()


def test_admin_purge_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = argparse.ArgumentParser()
    cli.register(p)
    args = p.parse_args(["admin", "purge", "--data-dir", str(tmp_path)])
    assert args.handler(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"issued_keys", "revocations", "tokens", "idempotency"}
