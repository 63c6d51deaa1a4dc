"""Decommissioning a connected lock: the decommission update reaches the lock over the
uplink with no phone nearby, and its broker account and SIM line go only once the lock's
signed heartbeat shows it applied (never before: a cancelled line cannot be resumed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kagiya.server.db import transaction
from kagiya.server.models import AuditEntry, LockUplink, SimLine
from kagiya.server.simcontrol.adapter import HttpSimControl
from kagiya.server.uplink.mosquitto import Mosquitto
from kagiya.server.uplink.service import UplinkService
from sqlalchemy import select

from tests.server.conftest import make_world
from tests.uplink.test_server_uplink import ConnectedLock, mqtt_settings
from tests.uplink.test_simcontrol import IMEI, Emulator

DECOMMISSIONED = 38
MSISDN = "08012345678"


def _has_account(broker: Mosquitto, lock_id: str) -> bool:
    text = broker.password_file.read_text() if broker.password_file.exists() else ""
    return any(line.split(":", 1)[0] == lock_id for line in text.splitlines())


@pytest.mark.timeout(300)
def test_decommission_reaches_the_lock_then_account_and_line_go(
        broker: Mosquitto, tmp_path: Path) -> None:
    emulator = Emulator(tmp_path, {"c-acme": {"password": "acme-pw", "lines": [MSISDN]}})
    contracts = tmp_path / "sim.json"
    w, rt = make_world("sqlite:///" + str(tmp_path / "k.db"), tmp_path / "data",
                       sim_contracts_file=str(contracts), **mqtt_settings(broker))
    svc = UplinkService(rt)
    svc.start()
    lock = None
    try:
        assert svc.wait_connected(30)
        op = w.operator()
        contracts.write_text(json.dumps({op.operator_id: {
            "url": emulator.url, "contractor_id": "c-acme", "password": "acme-pw"}}))
        provider = HttpSimControl(emulator.url, "c-acme", "acme-pw")
        lock = ConnectedLock(w, op, tmp_path / "lock", broker, "DEC-0001")
        op._request("POST", f"/v1/locks/{lock.lock_id}/sim",
                    json={"msisdn": MSISDN, "imei": IMEI})
        uid = op.create_user()["user_id"]
        now = int(w.clock())
        op.create_key_request(uid, lock.lock_id, now - 60, now + 86400, ["doors"])
        key = w.phone(op, uid).sync().keys[0]
        assert lock.pump("uplink.online")
        assert lock.unlock(key) == 0

        lock.proc.eval("uplink.close()")  # the lock is offline when it is decommissioned
        op.decommission_lock(lock.lock_id)
        time.sleep(1)  # the server publishes; nothing may be torn down before the lock saw it
        assert provider.status(MSISDN).status == "active"
        assert _has_account(broker, lock.lock_id)

        lock.proc.eval("hal.advance(600)")  # past the reconnect backoff
        assert lock.pump("lock.revocations.decommissioned"), "no decommission over the uplink"
        assert lock.unlock(key) == DECOMMISSIONED  # no phone came by
        deadline = time.monotonic() + 30
        while _has_account(broker, lock.lock_id) and time.monotonic() < deadline:
            lock.pump("False", 100)
        assert not _has_account(broker, lock.lock_id)
        assert provider.status(MSISDN).status == "cancelled"
        with transaction(rt.sessions) as s:
            assert s.scalars(select(LockUplink)).first() is None
            line = s.scalars(select(SimLine)).first()
            assert line is not None and line.status == "cancelled"
            actions = list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        assert "uplink.decommissioned" in actions and "sim.cancelled" in actions
        # the account is gone: the retired lock cannot connect again
        lock.proc.eval("uplink.close()")
        lock.proc.eval("hal.advance(600)")
        assert not lock.pump("uplink.online", 3000)
    finally:
        if lock is not None:
            lock.proc.stop()
        svc.stop()
        w.http.close()
        rt.close()
        emulator.stop()


def _actions(rt: object) -> list[tuple[str, str]]:
    with transaction(rt.sessions) as s:  # type: ignore[attr-defined]
        return [(a.action, a.detail or "") for a in
                s.scalars(select(AuditEntry).order_by(AuditEntry.id))]


@pytest.mark.timeout(300)
def test_deleting_a_connected_lock_cancels_its_line_and_drops_its_session(
        broker: Mosquitto, tmp_path: Path) -> None:
    """DELETE /v1/locks/{id}: the broker account goes and the broker drops the lock's live
    session at once; the SIM line is cancelled through the adapter, audited. A provider
    that refuses leaves the line cancel-pending, and the next lifecycle pass cancels it."""
    from kagiya.server.simcontrol.lifecycle import LifecycleThread

    emulator = Emulator(tmp_path, {"c-acme": {"password": "acme-pw",
                                              "lines": [MSISDN, "08012340000"]}})
    contracts = tmp_path / "sim.json"
    w, rt = make_world("sqlite:///" + str(tmp_path / "k.db"), tmp_path / "data",
                       sim_contracts_file=str(contracts), **mqtt_settings(broker))
    svc = UplinkService(rt)
    svc.start()
    locks = []
    try:
        assert svc.wait_connected(30)
        op = w.operator()
        contract = {op.operator_id: {"url": emulator.url, "contractor_id": "c-acme",
                                     "password": "acme-pw"}}
        contracts.write_text(json.dumps(contract))
        provider = HttpSimControl(emulator.url, "c-acme", "acme-pw")
        lock = ConnectedLock(w, op, tmp_path / "lock", broker, "DEL-0001")
        locks.append(lock)
        op._request("POST", f"/v1/locks/{lock.lock_id}/sim",
                    json={"msisdn": MSISDN, "imei": IMEI})
        assert lock.pump("uplink.online")

        op.delete_lock(lock.lock_id)  # the lock stays online on its side: nothing closed
        assert provider.status(MSISDN).status == "cancelled"
        assert not _has_account(broker, lock.lock_id)
        assert lock.pump("not uplink.online", 20000), "the broker kept the deleted session"
        lock.proc.eval("hal.advance(600)")  # past the reconnect backoff
        assert not lock.pump("uplink.online", 3000)
        acts = _actions(rt)
        assert ("sim.cancelled", json.dumps({"reason": "deleted"})) in acts
        delete = [d for a, d in acts if a == "lock.delete"]
        assert json.loads(delete[0])["line_cancelled"] is True
        assert json.loads(delete[0])["uplink_dropped"] is True

        # the provider refuses the contractor (rotated password): cancel-pending, retried
        other = ConnectedLock(w, op, tmp_path / "lock2", broker, "DEL-0002")
        locks.append(other)
        op._request("POST", f"/v1/locks/{other.lock_id}/sim",
                    json={"msisdn": "08012340000", "imei": IMEI})
        contracts.write_text(json.dumps({op.operator_id: {**contract[op.operator_id],
                                                          "password": "stale"}}))
        op.delete_lock(other.lock_id)
        assert provider.status("08012340000").status == "active"  # never claimed cancelled
        with transaction(rt.sessions) as s:
            line = s.scalars(select(SimLine).where(SimLine.msisdn == "08012340000")).one()
            assert line.status == "cancel-pending"
        life = LifecycleThread(rt)
        assert life.run_once() == {}  # still refused: stays pending, audited once
        assert provider.status("08012340000").status == "active"
        contracts.write_text(json.dumps(contract))
        assert life.run_once() == {"cancel": 1}
        assert provider.status("08012340000").status == "cancelled"
        assert [a for a, _ in _actions(rt) if a.startswith("sim.")][-2:] == [
            "sim.cancel-pending", "sim.cancelled"]
    finally:
        for lk in locks:
            lk.proc.stop()
        svc.stop()
        w.http.close()
        rt.close()
        emulator.stop()
