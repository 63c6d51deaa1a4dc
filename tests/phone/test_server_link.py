"""The phone against the real key server: enroll, download, refresh, cancel, offline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kagiya.phone.app import PhoneApp
from kagiya.phone.ports import Offline, ServerRefused, SyncBundle
from kagiya.phone.profile import Profile
from kagiya.sdk.keys import LockIdentity

from tests.phone.conftest import RealServer

STALE = "expired-" + "token"


def test_enroll_download_cancel_against_real_server(tmp_path: Path,
                                                    real_server: RealServer) -> None:
    op = real_server.operator()
    user = op.create_user()["user_id"]
    op.register_simulated_lock(LockIdentity.generate(), "CAR-0001")
    now = int(time.time())
    req = op.create_key_request(user, "CAR-0001", now - 60, now + 30 * 86400,
                                ["doors", "drive", "log"])
    code = op.enrollment_code(user)["code"]

    app = PhoneApp(Profile("p1", home=tmp_path))
    st = app.enroll(real_server.url, code)
    assert st.user_id == user and st.phone_id
    report = app.sync()
    assert len(report.added) == 1
    key = next(iter(app.state().keys.values()))
    assert key.lock_id == "CAR-0001" and key.permissions == 7 and len(key.secret) == 32
    assert app.state().time_statement

    # the one-time code cannot be used twice
    with pytest.raises(ServerRefused) as exc:
        PhoneApp(Profile("p2", home=tmp_path)).enroll(real_server.url, code)
    assert exc.value.code == "invalid-enrollment-code"

    # an expired token is renewed with the device key
    with app.profile.keystore.transaction() as s:
        s.token = STALE
    app.sync()
    assert app.state().token != STALE

    op.cancel_key_request(req["request_id"])
    report = app.sync()
    assert [k.key_id for k in report.removed] == [key.key_id]
    assert app.state().revocations["CAR-0001"].version >= 1

    real_server.proc.terminate()
    real_server.proc.wait(10)
    with pytest.raises(Offline):
        app.sync()
    assert app.state().revocations["CAR-0001"].version >= 1  # nothing lost offline


def test_fleet_enrolls_downloads_and_uploads_real_logs(tmp_path: Path,
                                                       real_server: RealServer) -> None:
    from kagiya.phone.fleet import Fleet

    fleet = Fleet(real_server.url, real_server.client_id, real_server.client_secret, 6,
                  concurrency=3, home=tmp_path / "fleet", uses=2)
    seen: list[str] = []
    rep = fleet.run(lambda step, _n: seen.append(step))
    assert rep.all_ok, rep.steps
    assert seen.count("upload") == 6 and rep.records_uploaded == 12
    logs = real_server.operator().logs()["items"]
    assert len(logs) == 12
    assert {r["event"] for r in logs} == {1, 2}


def test_tampered_download_is_refused_and_nothing_stored(tmp_path: Path,
                                                         real_server: RealServer) -> None:
    from kagiya.phone.server_link import HttpServerLink
    from kagiya.phone.verify import DownloadRejected

    op = real_server.operator()
    user = op.create_user()["user_id"]
    op.register_simulated_lock(LockIdentity.generate(), "CAR-0002")
    now = int(time.time())
    op.create_key_request(user, "CAR-0002", now - 60, now + 86400, ["doors"])
    code = op.enrollment_code(user)["code"]

    class Tampering(HttpServerLink):
        def sync(self, token: str, prove: Any,
                 wraps: list[dict[str, str]] | None = None) -> SyncBundle:
            bundle = super().sync(token, prove, wraps)
            for k in bundle.keys:
                k["permissions"] = 7  # claim more than the issuer signed
            return bundle

    app = PhoneApp(Profile("t", home=tmp_path), server_factory=Tampering)
    app.enroll(real_server.url, code)
    with pytest.raises(DownloadRejected, match="signed claims differ"):
        app.sync()
    assert app.state().keys == {} and app.state().last_sync == 0
    app2 = PhoneApp(Profile("t", home=tmp_path))
    assert len(app2.sync().added) == 1


def test_fleet_cli_prints_progress_and_summary(tmp_path: Path, real_server: RealServer,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from kagiya.tools.cli import main

    monkeypatch.setenv("KAGIYA_CLIENT_ID", real_server.client_id)
    monkeypatch.setenv("KAGIYA_CLIENT_SECRET", real_server.client_secret)
    assert main(["phone", "fleet", "--phones", "3", "--server", real_server.url,
                 "--home", str(tmp_path / "fleet")]) == 0
    out = capsys.readouterr().out
    assert "fleet: 3 phones" in out and "download" in out
    assert out.strip().splitlines()[-1].startswith("records_uploaded=9 ")
    monkeypatch.delenv("KAGIYA_CLIENT_SECRET")
    assert main(["phone", "fleet", "--phones", "3", "--server", real_server.url]) == 2
