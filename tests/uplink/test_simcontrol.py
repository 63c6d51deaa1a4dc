"""SIM line lifecycle through the adapter's real HTTP path to a provider emulator running
as a separate process, which enforces the M2M seed's rules (per-contractor credentials,
status transitions, a cancelled line is never resumed)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kagiya.sdk.keys import LockIdentity
from kagiya.server.db import transaction
from kagiya.server.models import AuditEntry, Lock, LockUplink, SimLine
from kagiya.server.simcontrol.adapter import HttpSimControl, SimControlError, sim_for_settings
from kagiya.server.simcontrol.lifecycle import cancel_line, reconcile
from sqlalchemy import select, update

from tests.server.conftest import World, db_url, make_world, postgres  # noqa: F401
from tests.server.live import free_port

IMEI = "356938035643809"
IDLE_S = 600  # below the operator token lifetime (900 s)


class Emulator:
    """``python -m kagiya.server.simcontrol.emulator`` on a free loopback port."""

    def __init__(self, tmp: Path, contractors: dict[str, dict[str, object]]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        table = tmp / "contractors.json"
        table.write_text(json.dumps({"contractors": contractors}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kagiya.server.simcontrol.emulator", "--port",
             str(self.port), "--contractors", str(table)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/v1/lines/0", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("emulator did not start")

    def stop(self) -> None:
        """Terminate the process."""
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    """Two contractors with their own lines."""
    e = Emulator(tmp_path, {"c-acme": {"password": "acme-pw",
                                       "lines": ["08012345678", "08012340001"]},
                            "c-other": {"password": "other-pw", "lines": ["08099999999"]}})
    yield e
    e.stop()


@pytest.mark.timeout(120)
def test_provider_rules_reach_the_adapter_as_specific_codes(emulator: Emulator) -> None:
    sim = HttpSimControl(emulator.url, "c-acme", "acme-pw")
    bad = HttpSimControl(emulator.url, "c-acme", "wrong")
    with pytest.raises(SimControlError) as e:
        bad.status("08012345678")
    assert e.value.code == "sim-unauthorized"
    with pytest.raises(SimControlError) as e:  # another contractor's line
        sim.status("08099999999")
    assert e.value.code == "sim-line-not-found"
    with pytest.raises(SimControlError) as e:  # not registered yet
        sim.activate("08012345678")
    assert e.value.code == "sim-invalid-transition"
    assert sim.register_imei("08012345678", IMEI).status == "registered"
    assert sim.activate("08012345678").status == "active"
    assert sim.suspend("08012345678").status == "suspended"
    assert sim.resume("08012345678").status == "active"
    assert sim.cancel("08012345678").status == "cancelled"
    for action in (sim.resume, sim.suspend, sim.cancel):  # cancelled is final
        with pytest.raises(SimControlError) as e:
            action("08012345678")
        assert e.value.code == "sim-invalid-transition"
    down = HttpSimControl(f"http://127.0.0.1:{free_port()}", "c-acme", "acme-pw", timeout=2)
    with pytest.raises(SimControlError) as e:
        down.status("08012345678")
    assert e.value.code == "sim-provider-unavailable" and e.value.retryable


def _set_acked(w: World, lock_id: str, version: int) -> None:
    """The lock's signed heartbeat acknowledged ``version`` (the consumer's effect; the
    heartbeat path itself is tested in test_server_uplink)."""
    with transaction(w.rt.sessions) as s:
        pk = s.scalar(select(Lock.pk).where(Lock.lock_id == lock_id))
        if s.get(LockUplink, pk) is None:
            s.add(LockUplink(lock_pk=pk, published_version=0, acked_version=0, lock_time=0,
                             state=0, heartbeats=0))
        s.execute(update(LockUplink).where(LockUplink.lock_pk == pk)
                  .values(acked_version=version))


@pytest.mark.timeout(300)
def test_line_follows_the_lease_and_never_strands_a_revocation(
        emulator: Emulator, tmp_path: Path) -> None:
    contracts = tmp_path / "sim.json"
    w, rt = make_world("sqlite:///" + str(tmp_path / "k.db"), tmp_path / "data",
                       sim_contracts_file=str(contracts))
    try:
        op = w.operator()
        contracts.write_text(json.dumps({op.operator_id: {  # type: ignore[attr-defined]
            "url": emulator.url, "contractor_id": "c-acme", "password": "acme-pw"}}))
        sim_for = sim_for_settings(rt.settings)
        provider = HttpSimControl(emulator.url, "c-acme", "acme-pw")
        ident = LockIdentity.generate()
        op.register_simulated_lock(ident, "SIM-0001")
        _set_acked(w, "SIM-0001", 0)
        with pytest.raises(Exception) as e:  # another contractor's line: refused, 404
            op._request("POST", "/v1/locks/SIM-0001/sim",
                        json={"msisdn": "08099999999", "imei": IMEI})
        assert getattr(e.value, "status", None) == 404
        line = op._request("POST", "/v1/locks/SIM-0001/sim",
                           json={"msisdn": "08012345678", "imei": IMEI})
        assert line["status"] == "active" and provider.status("08012345678").status == "active"
        uid = op.create_user()["user_id"]
        now = int(w.clock())
        rid = op.create_key_request(uid, "SIM-0001", now - 60, now + 86400, ["doors"])[
            "request_id"]
        w.phone(op, uid).sync()
        assert reconcile(rt.sessions, sim_for, int(w.clock()), IDLE_S) == {}
        op.cancel_key_request(rid)  # off lease; revocation version 1 not yet acknowledged
        assert reconcile(rt.sessions, sim_for, int(w.clock()), IDLE_S) == {}  # idle from now
        w.clock.advance(IDLE_S + 1)
        assert reconcile(rt.sessions, sim_for, int(w.clock()), IDLE_S) == {}
        assert provider.status("08012345678").status == "active"  # never strands it
        _set_acked(w, "SIM-0001", 1)
        assert reconcile(rt.sessions, sim_for, int(w.clock()), IDLE_S) == {"suspend": 1}
        assert provider.status("08012345678").status == "suspended"
        now = int(w.clock())
        op.create_key_request(uid, "SIM-0001", now - 1, now + 86400, ["doors"])
        assert reconcile(rt.sessions, sim_for, int(w.clock()), IDLE_S) == {"resume": 1}
        assert provider.status("08012345678").status == "active"
        with transaction(rt.sessions) as s:
            pk = s.scalar(select(Lock.pk).where(Lock.lock_id == "SIM-0001"))
            assert cancel_line(s, sim_for(op.operator_id), pk, int(w.clock()),  # type: ignore[attr-defined]
                               "test")
        assert provider.status("08012345678").status == "cancelled"
        out = op._request("GET", "/v1/locks/SIM-0001/sim")
        kinds = [r["kind"] for r in reversed(out["records"])]
        assert kinds == ["line.active", "suspend.deferred", "line.suspended", "line.active",
                         "line.cancelled"]
        with transaction(rt.sessions) as s:
            actions = list(s.scalars(select(AuditEntry.action).where(
                AuditEntry.action.like("sim.%")).order_by(AuditEntry.id)))
            assert actions == ["sim.active", "sim.suspended", "sim.active", "sim.cancelled"]
            assert s.get(SimLine, pk).status == "cancelled"  # type: ignore[union-attr]
    finally:
        w.http.close()
        rt.close()


@pytest.mark.timeout(300)
def test_a_decommissioned_lock_gets_its_line_back_then_loses_it_after_the_grace(
        emulator: Emulator, tmp_path: Path, db_url: str) -> None:  # noqa: F811
    """A suspended line of a decommissioned lock is resumed (the decommission must reach
    the lock); a lock that never acknowledges loses its line and its broker account
    ``uplink_retire_grace_s`` after the retirement, audited as unacknowledged."""
    from kagiya.server.simcontrol.lifecycle import LifecycleThread

    contracts = tmp_path / "sim.json"
    w, rt = make_world(db_url, tmp_path / "data",  # both: the claims use SKIP LOCKED
                       sim_contracts_file=str(contracts), sim_idle_s=IDLE_S,
                       uplink_retire_grace_s=IDLE_S)
    try:
        op = w.operator()
        contracts.write_text(json.dumps({op.operator_id: {  # type: ignore[attr-defined]
            "url": emulator.url, "contractor_id": "c-acme", "password": "acme-pw"}}))
        provider = HttpSimControl(emulator.url, "c-acme", "acme-pw")
        op.register_simulated_lock(LockIdentity.generate(), "SIM-0002")
        _set_acked(w, "SIM-0002", 0)  # a connected lock, up to date
        op._request("POST", "/v1/locks/SIM-0002/sim",
                    json={"msisdn": "08012345678", "imei": IMEI})
        life = LifecycleThread(rt)
        assert life.run_once() == {}  # off lease from now
        w.clock.advance(IDLE_S + 1)
        assert life.run_once() == {"suspend": 1}
        assert provider.status("08012345678").status == "suspended"
        op.decommission_lock("SIM-0002")  # the lock is offline, its line suspended
        assert life.run_once() == {"resume": 1}  # so the decommission can arrive
        assert provider.status("08012345678").status == "active"
        assert life.run_once() == {}  # within the grace: kept, never suspended again
        w.clock.advance(IDLE_S)
        assert life.run_once() == {"retired": 1}
        assert provider.status("08012345678").status == "cancelled"
        with transaction(rt.sessions) as s:
            assert s.scalars(select(LockUplink)).first() is None
            assert s.scalars(select(SimLine)).one().status == "cancelled"
            entries = list(s.scalars(select(AuditEntry).where(
                AuditEntry.action.in_(("uplink.decommissioned", "sim.active",
                                       "sim.suspended", "sim.cancelled")))
                .order_by(AuditEntry.id)))
        assert [e.action for e in entries] == ["sim.active", "sim.suspended", "sim.active",
                                               "sim.cancelled", "uplink.decommissioned"]
        assert json.loads(entries[-1].detail) == {"acknowledged": False,
                                                  "line_cancelled": True}
        assert life.run_once() == {}  # nothing left to do
        # the lock ID registered again (revived): a new SIM, the cancelled line makes way
        op.register_simulated_lock(LockIdentity.generate(), "SIM-0002")
        line = op._request("POST", "/v1/locks/SIM-0002/sim",
                           json={"msisdn": "08012340001", "imei": IMEI})
        assert line["status"] == "active"
        op.register_simulated_lock(LockIdentity.generate(), "SIM-0003")
        with pytest.raises(Exception) as e:  # a cancelled line is final, never reused
            op._request("POST", "/v1/locks/SIM-0003/sim",
                        json={"msisdn": "08012345678", "imei": IMEI})
        assert getattr(e.value, "status", None) == 409
        assert getattr(e.value, "code", None) == "sim-invalid-transition"
    finally:
        w.http.close()
        rt.close()
