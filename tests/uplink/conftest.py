"""Fixtures of the uplink tests: a real Mosquitto broker (TLS, passwords, the lock ACL)
on a free loopback port, and a key-server-side MQTT client (paho)."""

from __future__ import annotations

import queue
import ssl
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from kagiya.server.uplink.mosquitto import SERVER_USER, Mosquitto

from tests.firmware.harness import Bench
from tests.server.live import free_port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A started broker in its own directory; stopped after the test."""
    b = Mosquitto(tmp_path / "broker", free_port())
    with b:
        yield b


class Peer:
    """A paho client on the broker (the server, or an attacker with some account)."""

    def __init__(self, broker: Mosquitto, user: str, password: str, client_id: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.subacks: queue.Queue[list[int]] = queue.Queue()
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=paho.MQTTv311)
        c.username_pw_set(user, password)
        ctx = ssl.create_default_context(cafile=str(broker.tls.ca_pem))
        c.tls_set_context(ctx)
        c.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload, m.retain))
        c.on_subscribe = lambda _c, _u, _mid, codes, _p: self.subacks.put(
            [int(getattr(x, "value", x)) for x in codes])
        c.connect("localhost", broker.port, keepalive=30)
        c.loop_start()
        self.client = c

    def subscribe(self, topic: str) -> list[int]:
        """Subscribe (QoS 1); returns the granted codes (128 = refused)."""
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=20)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(20)

    def next(self, timeout: float = 30) -> tuple[str, bytes, bool]:
        """The next received message (raises queue.Empty after ``timeout``)."""
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        """Disconnect."""
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def server_peer(broker: Mosquitto) -> Iterator[Peer]:
    """The key server's account on the broker."""
    p = Peer(broker, SERVER_USER, broker.server_password, "test-server")
    yield p
    p.close()


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    """A provisioned lock process (tests.firmware.harness) with its issuer."""
    b = Bench(tmp_path / "lock")
    yield b
    b.close()
