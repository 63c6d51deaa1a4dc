"""Every time statement the key server hands out goes through its time authority
(kagiya.server.timeauth), on SQLite and PostgreSQL: phone downloads, the phone's time route
and the public one refuse to sign when the clock jumped, and each raises the persisted
high-water mark a restart on a clock behind it is checked against."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kagiya.sdk.signed import verify_time_statement
from kagiya.server import timeauth
from kagiya.server.client import ApiProblem
from kagiya.server.models import ServerState
from sqlalchemy import select

from tests.server.conftest import make_world

SERVER = Path(__file__).resolve().parents[2] / "server"


def _hwm(rt: object) -> int | None:
    with rt.engine.connect() as c:  # type: ignore[attr-defined]
        return c.scalar(select(ServerState.version).where(
            ServerState.name == timeauth.STATE_NAME))


def test_every_statement_path_refuses_on_a_jumped_clock(db_url: str, tmp_path: Path) -> None:
    mono = [1000.0]
    w, rt = make_world(db_url, tmp_path / "data", monotonic=lambda: mono[0])
    try:
        op = w.operator()
        _uid, _lid, _rid, phone = w.setup_key(op)
        sync = phone.sync()
        keys = {bytes.fromhex(k["kid"]): bytes.fromhex(k["public_key"])
                for k in w.http.get("/v1/issuer-keys").json()["keys"]}
        assert verify_time_statement(sync.time_statement, keys) == int(w.clock())
        # the wall clock stands still while the monotonic clock runs on: it was stepped back
        mono[0] += timeauth.TOLERANCE_S + 60
        for method, path in (("GET", "/v1/phone/keys"), ("POST", "/v1/phone/keys"),
                             ("GET", "/v1/phone/time")):
            with pytest.raises(ApiProblem) as got:
                phone._request(method, path, json={"wraps": []} if method == "POST" else None)
            assert (got.value.status, got.value.code) == (503, "clock-unreliable"), path
        assert w.http.get("/v1/time").status_code == 503
        mono[0] -= timeauth.TOLERANCE_S + 60  # the clock is right again: signing resumes
        assert verify_time_statement(phone.time_statement(), keys) == int(w.clock())
    finally:
        w.http.close()
        rt.close()


def test_downloads_raise_the_high_water_mark(db_url: str, tmp_path: Path) -> None:
    w, rt = make_world(db_url, tmp_path / "data")
    try:
        op = w.operator()
        _uid, _lid, _rid, phone = w.setup_key(op)
        phone.sync()
        assert _hwm(rt) == int(w.clock())
        w.clock.advance(50)
        phone.sync()  # a GET with nothing new: still recorded as the newest signed time
        assert _hwm(rt) == int(w.clock())
        w.clock.advance(7)
        phone.time_statement()
        assert _hwm(rt) == int(w.clock())
    finally:
        w.http.close()
        rt.close()


def test_only_the_time_authority_signs_a_time() -> None:
    """A new path that signs a time without the authority's check fails here."""
    signers = sorted(str(p.relative_to(SERVER)) for p in SERVER.rglob("*.py")
                     if re.search(r"\bsign_time_statement\b", p.read_text(encoding="utf-8")))
    assert signers == ["timeauth.py"]
