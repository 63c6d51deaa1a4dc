"""``kagiya install uplink`` on a virtual board: the broker account is created by the key
server, stored on the lock only, and lets the lock (and nobody else) log in to the broker."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cbor2
import paho.mqtt.client as paho
import pytest
from kagiya.hil.board import VirtualBoard
from kagiya.server.uplink.mosquitto import Mosquitto

from tests.server.live import free_port
from tests.tools.conftest import LiveServer, _cache_dir, board, board_factory, kagiya  # noqa: F401
from tests.uplink.test_server_uplink import mqtt_settings


@pytest.fixture
def connected_server(tmp_path: Path, broker: Mosquitto) -> Iterator[LiveServer]:
    """A key server (uvicorn, SQLite) configured for ``broker``, with an operator."""
    import uvicorn
    from kagiya.server import admin
    from kagiya.server.app import create_app
    from kagiya.server.client import OperatorClient
    from kagiya.server.config import Settings

    app = create_app(Settings(data_dir=tmp_path / "server", **mqtt_settings(broker)))
    now = int(time.time())
    op = admin.create_operator(app.state.runtime, "Fleet", 100, now - 86400, now + 86400 * 30)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    client = OperatorClient.login(url, op.client_id, op.client_secret)
    installer = client.installer_token()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    yield LiveServer(url, str(client.token), installer, op.client_id, op.client_secret, stop)
    client.close()
    stop()


def _can_login(broker: Mosquitto, user: str, password: str) -> bool:
    done = threading.Event()
    ok: list[bool] = []
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"probe-{user}",
                    protocol=paho.MQTTv311)
    c.username_pw_set(user, password)
    c.tls_set_context(ssl.create_default_context(cafile=str(broker.tls.ca_pem)))
    c.on_connect = lambda _c, _u, _f, rc, _p: (ok.append(not rc.is_failure), done.set())
    c.connect("localhost", broker.port)
    c.loop_start()
    done.wait(20)
    c.loop_stop()
    c.disconnect()
    return bool(ok and ok[0])


@pytest.mark.timeout(300)
def test_install_uplink_stores_the_account_on_the_lock_only(
        kagiya, board: VirtualBoard, connected_server: LiveServer,  # noqa: F811
        broker: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGIYA_OPERATOR_TOKEN", connected_server.installer_token)
    r = kagiya("install", "all", "--port", board.port, "--server", connected_server.url,
               "--lock-id", "CONN-0100", "--connected", "--json")
    assert r.status == 0, r.out + r.err
    assert b"uplink.mpy" in board.romfs_path.read_bytes()  # connected build, in ROMFS
    r = kagiya("install", "uplink", "--port", board.port, "--server", connected_server.url,
               "--mqtt-ca", str(broker.tls.ca_pem), "--mqtt-host", "127.0.0.1",
               "--mqtt-server-name", "localhost", "--json")
    assert r.status == 0, r.out + r.err
    cfg = cbor2.loads((board.root / "uplink").read_bytes()[:-4])
    password = cfg[3]
    assert cfg[1] == "127.0.0.1" and cfg[2] == broker.port and cfg[5] == "localhost"
    assert cfg[4] == broker.tls.ca_der
    assert password not in r.out + r.err  # never printed
    assert json.loads(r.out)["steps"]["uplink"]["lock_id"] == "CONN-0100"
    assert _can_login(broker, "CONN-0100", password)
    assert not _can_login(broker, "CONN-0100", password + "x")
    # without a CA file the step is a usage error, and nothing changes on the lock
    r = kagiya("install", "uplink", "--port", board.port, "--server", connected_server.url,
               "--mqtt-ca", "/nonexistent.pem", "--json")
    assert r.status != 0
    assert cbor2.loads((board.root / "uplink").read_bytes()[:-4])[3] == password


@pytest.mark.timeout(300)
def test_install_all_connected_gives_the_lock_its_account_at_registration(
        kagiya, board: VirtualBoard, connected_server: LiveServer,  # noqa: F811
        broker: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGIYA_OPERATOR_TOKEN", connected_server.installer_token)
    # a plain build cannot take an account: refused before the board is touched
    r = kagiya("install", "all", "--port", board.port, "--server", connected_server.url,
               "--lock-id", "CONN-0200", "--mqtt-ca", str(broker.tls.ca_pem), "--json")
    assert r.status == 2 and json.loads(r.out)["error"] == "uplink-needs-connected"
    assert not (board.root / "uplink").exists()
    r = kagiya("install", "all", "--port", board.port, "--server", connected_server.url,
               "--lock-id", "CONN-0200", "--connected", "--mqtt-ca", str(broker.tls.ca_pem),
               "--mqtt-host", "127.0.0.1", "--mqtt-server-name", "localhost", "--json")
    assert r.status == 0, r.out + r.err
    steps = json.loads(r.out)["steps"]
    assert steps["uplink"]["lock_id"] == "CONN-0200" and "lockdown" in steps
    cfg = cbor2.loads((board.root / "uplink").read_bytes()[:-4])
    assert cfg[3] not in r.out + r.err  # the password is never printed
    assert _can_login(broker, "CONN-0200", cfg[3])
