"""``kagiya demo --connected``: the connected-lock story (docs/uplink.md, docs/tutorial.md).

A virtual board installed as a connected build with its broker account, the real Mosquitto
broker (TLS, per-lock accounts) and the SIM provider emulator, all on loopback. The
operator cancels Alice's key and the lock refuses it within seconds with no phone
carrying the update; once the lock's signed heartbeat acknowledged the update and the
lock is off lease, its SIM line is suspended. Without Mosquitto installed the story says
how to get it and skips the connected steps.
"""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

from kagiya.tools.demo import DAY, KAGIYA, LOCK_ID, Demo, StepFailed, free_port

MSISDN = "08012345678"
IMEI = "356938035643809"
WAIT_S = 30.0


def broker_missing() -> str | None:
    """Why the connected story cannot run here, or None."""
    missing = [n for n in ("mosquitto", "mosquitto_passwd") if shutil.which(n) is None]
    if missing:
        return (f"{' and '.join(missing)} not installed: run tools/sysdeps.sh (Debian package "
                "`mosquitto`) to see the connected lock; skipped")
    return None


class ConnectedDemo(Demo):
    """The story's state plus the broker and the SIM provider."""

    broker: Any = None

    def _wait(self, what: str, check: Any) -> Any:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise StepFailed(f"{what} did not happen within {WAIT_S:.0f} s")

    # steps
    def s_broker(self) -> str:
        from kagiya.server.uplink.mosquitto import SERVER_USER, Mosquitto

        self.broker = Mosquitto(self.workdir / "broker", free_port()).start()
        b = self.broker
        self.env.update({
            "KAGIYA_MQTT_HOST": "localhost", "KAGIYA_MQTT_PORT": str(b.port),
            "KAGIYA_MQTT_CA_FILE": str(b.tls.ca_pem), "KAGIYA_MQTT_USERNAME": SERVER_USER,
            "KAGIYA_MQTT_PASSWORD": b.server_password,
            "KAGIYA_MQTT_PASSWORD_FILE": str(b.password_file),
            "KAGIYA_MQTT_PID_FILE": str(b.pid_file),
            # a lease ends after 2 s off lease, looked at every second (demo pace)
            "KAGIYA_SIM_CONTRACTS_FILE": str(self.workdir / "sim.json"),
            "KAGIYA_SIM_IDLE_S": "2", "KAGIYA_SIM_INTERVAL_S": "1"})
        return f"Mosquitto on 127.0.0.1:{b.port} (TLS, one account per lock)"

    def s_sim_provider(self) -> str:
        import httpx

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        table = self.workdir / "contractors.json"
        table.write_text(json.dumps({"contractors": {
            "c-demo": {"password": "demo-sim-pw", "lines": [MSISDN]}}}))
        self.sup.start("sim-provider", [KAGIYA[0], "-m", "kagiya.server.simcontrol.emulator",
                                        "--port", str(port), "--contractors", str(table)])
        self._wait("the SIM provider emulator start", lambda: _answers(httpx, url))
        (self.workdir / "sim.json").write_text(json.dumps({self.creds["operator_id"]: {
            "url": url, "contractor_id": "c-demo", "password": "demo-sim-pw"}}))
        return f"SIM provider emulator on {url} (contractor c-demo, line {MSISDN})"

    def s_board_install(self) -> str:
        self.install_board("Connected car 品川 300 あ 56-78", "--connected",
                           "--mqtt-ca", str(self.broker.tls.ca_pem), "--mqtt-host", "127.0.0.1",
                           "--mqtt-server-name", "localhost", "--heartbeat", "10")
        return f"{LOCK_ID}: connected build, registered, broker account provisioned"

    def s_bind_sim(self) -> str:
        op = self.operator()
        line = op._request("POST", f"/v1/locks/{LOCK_ID}/sim",
                           json={"msisdn": MSISDN, "imei": IMEI})
        op.close()
        return f"line {MSISDN} bound to IMEI {IMEI}: {line['status']}"

    def s_online(self) -> str:
        op = self.operator()
        try:
            st = self._wait("the lock's first heartbeat", lambda: op._request(
                "GET", f"/v1/locks/{LOCK_ID}/uplink")["last_online"])
        finally:
            op.close()
        return f"{LOCK_ID} online over MQTT (last heartbeat at {st})"

    def s_key(self) -> str:
        op = self.operator()
        now = int(time.time())
        req = op.create_key_request(self.ids["alice"], LOCK_ID, now - 60, now + 30 * DAY,
                                    ["doors"])
        op.close()
        self.ids["request-alice"] = req["request_id"]
        return f"{req['request_id']} for Alice, 30 days"

    def s_cancel_pushed(self) -> tuple[str, dict[str, Any]]:
        op = self.operator()
        t0 = time.monotonic()
        op.cancel_key_request(self.ids["request-alice"])
        rev = op.get_lock(LOCK_ID)["revocation_version"]
        try:
            self._wait("the lock's acknowledgement", lambda: op._request(
                "GET", f"/v1/locks/{LOCK_ID}/uplink")["acked_revocation_version"] >= rev)
        finally:
            op.close()
        ms = (time.monotonic() - t0) * 1000
        return (f"revocation {rev} pushed and acknowledged in a signed heartbeat after "
                f"{ms:.0f} ms", {"ms": round(ms)})

    def s_refused_connected(self) -> tuple[str, dict[str, Any]]:
        done = self.phone("alice", "unlock", LOCK_ID, expect=1)
        line = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        if "[REVOKED 23]" not in line:
            raise StepFailed(f"expected a REVOKED refusal, got: {line}")
        return line, {"code": "REVOKED"}

    def s_suspended(self) -> str:
        op = self.operator()
        try:
            self._wait("the line's suspension", lambda: op._request(
                "GET", f"/v1/locks/{LOCK_ID}/sim")["status"] == "suspended")
            kinds = [r["kind"] for r in reversed(op._request(
                "GET", f"/v1/locks/{LOCK_ID}/sim")["records"])]
            acked = op._request("GET", f"/v1/locks/{LOCK_ID}/uplink")["acked_revocation_version"]
        finally:
            op.close()
        return (f"line {MSISDN} suspended, revocation {acked} acknowledged first (own "
                f"records, oldest first: {', '.join(kinds)})")

    def run(self) -> None:
        """The connected story, step by step (stops at the first unexpected outcome)."""
        st = self.story.step
        st("bootstrap", self.s_bootstrap)
        why = broker_missing()
        if why is not None:
            st("connected lock", lambda: why)
            return
        st("start the MQTT broker (Mosquitto)", self.s_broker)
        st("create the operator (service admin)", self.s_operator)
        st("start the SIM provider emulator", self.s_sim_provider)
        st("start the key server (SQLite, uplink on)", self.start_server)
        st("operator registers a partner and two users", self.s_partner_user)
        st("installer: connected build, registered, broker account", self.s_board_install)
        st("operator binds the lock's SIM line", self.s_bind_sim)
        st("lock firmware on the air (virtual BLE) and online (MQTT)", self.s_lock_on_air)
        st("the lock's signed heartbeat reaches the server", self.s_online)
        st("Alice's phone enrolls with a one-time code", lambda: self.s_enroll("alice"))
        st("operator requests a key for Alice", self.s_key)
        st("Alice's phone downloads its key", lambda: self.s_sync("alice"))
        st("Alice unlocks over BLE", lambda: self.s_ble("alice", "unlock", LOCK_ID))
        st("operator cancels Alice's key: pushed over MQTT, no phone nearby",
           self.s_cancel_pushed)
        st("Alice's next unlock is refused with REVOKED", self.s_refused_connected)
        st("off lease: the line is suspended only after the acknowledgement", self.s_suspended)


def _answers(httpx: Any, url: str) -> bool:
    try:
        httpx.get(url + "/v1/lines/0", timeout=1)
        return True
    except httpx.HTTPError:
        return False
