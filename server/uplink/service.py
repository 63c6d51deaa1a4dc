"""The key server's side of the uplink (docs/uplink.md, "The server side").

:class:`UplinkService` runs in every server process when ``mqtt_host`` is set: one paho
MQTT client (TLS, the server's broker account) and one daemon thread that

* drains the outbox (:func:`kagiya.server.uplink.outbox.publish_due`): each lock's newest
  revocation update is published *retained* to its ``down/revocation`` topic with QoS 1,
  and the claim commits only after the broker's PUBACK;
* publishes a time statement to every connected lock each ``uplink_time_interval_s``
  (one process per interval wins the ``server_state`` row ``uplink_time``);
* consumes what locks publish, through the shared subscription
  ``$share/kagiya-server/...`` (the broker hands each message to one process): heartbeats
  are verified against the lock's registered key and update its ``lock_uplink`` row (last
  online, acknowledged revocation version - never lowered, never above what the server
  issued); log pages go through the phone upload's verification and de-duplication, and
  once stored (after the commit) the signed log receipt (protocol §11 "Receipts") is
  published retained to the lock's ``down/receipt``, so a connected lock marks those
  records fetched with no phone, exactly as when a phone carries the receipt.

A bad message (forged, malformed, for an unknown lock) is counted and dropped, never
raised. No secret and no payload is logged.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections import Counter
from typing import Any

import paho.mqtt.client as paho
from kagiya.sdk import messages
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.protocol import MAX_MESSAGE, MessageType
from kagiya.server import audit, logs, revocations, timeauth
from kagiya.server.db import transaction
from kagiya.server.models import Lock, LockUplink, ServerState
from kagiya.server.problems import ApiError
from kagiya.server.runtime import Runtime
from kagiya.server.schemas import LogUploadIn
from kagiya.server.simcontrol.adapter import sim_for_settings
from kagiya.server.uplink import outbox, retire, topics
from kagiya.server.uplink.wire import parse_log_page, verify_heartbeat
from sqlalchemy import select, update
from sqlalchemy.orm import Session

log = logging.getLogger("kagiya.server.uplink")
PUBLISH_TIMEOUT_S = 5.0
_LEAF = {outbox.REVOCATION: topics.DOWN_REVOCATION,
         outbox.DECOMMISSION: topics.DOWN_DECOMMISSION}
_TYPE = {outbox.REVOCATION: 6, outbox.DECOMMISSION: 12}
_T_LOG_RECEIPT = int(MessageType.LOG_RECEIPT)


class PublishFailed(RuntimeError):
    """The broker did not acknowledge a publication in time."""


def message(mtype: MessageType, data: bytes) -> bytes:
    """The BLE message of type ``mtype`` (TIME, REVOCATION, DECOMMISSION or LOG_RECEIPT)
    carrying the signed object ``data``, as the lock accepts it (deterministic CBOR).

    The lock refuses a message over ``MAX_MESSAGE`` (2048) bytes with ``TOO_LARGE``,
    whichever way it comes, so such a message is never published: this raises
    ``ProtocolError(TOO_LARGE)`` instead (docs/uplink.md, "Publishing")."""
    try:
        return messages.encode(messages.MESSAGE_CLASSES[mtype](data))
    except ValueError:
        raise ProtocolError(ErrorCode.TOO_LARGE,
                            f"{mtype.name} message over {MAX_MESSAGE} bytes") from None


def record_heartbeat(session: Session, lock: Lock, payload: bytes, now: int) -> LockUplink:
    """Verify a heartbeat of ``lock`` and update its uplink state; raises ProtocolError."""
    hb = verify_heartbeat(lock.lock_id, lock.sign_public, payload)
    st = session.scalars(
        select(LockUplink).where(LockUplink.lock_pk == lock.pk).with_for_update()
    ).first()
    if st is None:  # not a connected lock (no broker account was made for it)
        raise ProtocolError(ErrorCode.MALFORMED, "not a connected lock")
    if hb.lock_time < st.lock_time:
        return st  # a replayed, older heartbeat: nothing new
    st.lock_time = hb.lock_time
    st.last_online = now
    st.state = hb.state
    st.heartbeats += 1
    # a version the server never issued is not an acknowledgement of anything
    if st.acked_version < hb.revocation_version <= lock.revocation_version:
        st.acked_version = hb.revocation_version
    return st


def record_log_page(session: Session, lock: Lock, payload: bytes, now: int) -> logs.Outcome:
    """Verify and store a published log page exactly like a phone's upload."""
    page = parse_log_page(payload)
    body = LogUploadIn(lock_id=lock.lock_id, records=[r.hex() for r in page.records],
                       prev_hash=page.prev_hash.hex(), head_seq=page.head_seq,
                       head_hash=page.head_hash.hex(), lost=page.lost,
                       head_signature=page.head_signature.hex())
    outcome = logs.ingest(session, lock, body, now)
    if outcome.conflicts:
        audit.record(session, now, "uplink", "log.conflict", operator_id=lock.operator_id,
                     target=lock.lock_id, detail={"seqs": outcome.conflicts[:16]})
    return outcome


class UplinkService:
    """The MQTT client and thread of one server process (see the module doc)."""

    def __init__(self, rt: Runtime, client_id: str | None = None, batch: int = 32) -> None:
        self.rt = rt
        self.batch = batch
        st = rt.settings
        self.stats: Counter[str] = Counter()
        self._sim_for = sim_for_settings(st)
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=10000)
        self._late: dict[str, bytes] = {}  # receipts the broker did not take (it was down)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kagiya-uplink", daemon=True)
        cid = client_id or f"kagiya-server-{threading.get_native_id()}-{time.monotonic_ns()}"
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=cid,
                        protocol=paho.MQTTv311, clean_session=True)
        c.username_pw_set(st.mqtt_username, st.mqtt_password)
        ctx = ssl.create_default_context(cafile=st.mqtt_ca_file or None)
        c.tls_set_context(ctx)
        c.on_connect = self._on_connect
        c.on_disconnect = lambda *_a: self._connected.clear()
        c.on_message = self._on_message
        c.reconnect_delay_set(1, 30)
        self.client = c

    # -- paho callbacks (its network thread) ------------------------------------------
    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if getattr(rc, "is_failure", False):
            log.warning("uplink: broker refused the connection (%s)", rc)
            return
        client.subscribe(topics.SHARED_UP, qos=1)
        self._connected.set()
        self._wake.set()

    def _on_message(self, _c: paho.Client, _u: Any, m: paho.MQTTMessage) -> None:
        try:
            self._inbox.put_nowait((m.topic, bytes(m.payload)))
        except queue.Full:
            self.stats["inbox_full"] += 1
        self._wake.set()

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Connect (asynchronously; reconnects by itself) and start the thread."""
        st = self.rt.settings
        outbox.on_commit(self.wake)
        self.client.connect_async(st.mqtt_host, st.mqtt_port, keepalive=30)
        self.client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and disconnect."""
        self._stop.set()
        self._wake.set()
        if self.wake in outbox._wakers:
            outbox._wakers.remove(self.wake)
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.client.disconnect()
        self.client.loop_stop()

    def wake(self) -> None:
        """Look at the outbox now (this process just committed a change)."""
        self._wake.set()

    def wait_connected(self, timeout: float) -> bool:
        """True once connected and subscribed (tests, the bench)."""
        return self._connected.wait(timeout)

    # -- the thread -----------------------------------------------------------------------
    def _loop(self) -> None:
        poll = max(self.rt.settings.uplink_poll_ms, 10) / 1000
        while not self._stop.is_set():
            self._wake.wait(poll)
            self._wake.clear()
            try:
                self._drain_inbox()
                if self._connected.is_set():
                    while self.publish_once():
                        pass
                    while self.clear_once():
                        pass
                    self._late_receipts()
                    self._time_statements()
            except Exception as exc:  # a busy or restarting database or broker: next time
                self.stats["errors"] += 1
                log.warning("uplink: %s", type(exc).__name__)

    def _publish(self, lock_id: str, kind: str, payload: bytes, retain: bool = True) -> None:
        info = self.client.publish(topics.lock_topic(lock_id, _LEAF.get(kind, kind)),
                                   payload, qos=1, retain=retain)
        info.wait_for_publish(PUBLISH_TIMEOUT_S)
        if not info.is_published():
            raise PublishFailed(lock_id)
        self.stats["published"] += 1

    def _build(self, session: Session, lock: Any, kind: str, now: int) -> tuple[int, bytes]:
        keys = self.rt.keyset(session)
        if kind == outbox.REVOCATION:
            return lock.revocation_version, message(
                MessageType.REVOCATION, revocations.signed_update(session, lock, now, keys))
        if kind == outbox.DECOMMISSION:
            return 0, message(MessageType.DECOMMISSION, bytes.fromhex(
                revocations.decommission_update(keys, lock, now)))
        raise ValueError(f"no builder for {kind}")

    def publish_once(self) -> int:
        """One outbox claim (one transaction); returns how many objects were published."""
        rt = self.rt
        with transaction(rt.sessions) as s:
            return outbox.publish_due(s, rt.now(), self._build, self._publish, self.batch,
                                      self._refused)

    def clear_once(self) -> int:
        """One claim of clear orders (one transaction): a deleted account's retained
        messages are removed from the broker; returns how many lock IDs were cleared."""
        rt = self.rt
        with transaction(rt.sessions) as s:
            return outbox.clear_due(s, self._clear, self.batch)

    def _clear(self, lock_id: str) -> None:
        """An empty retained message on each of the lock's ``down/`` topics: the broker
        then keeps nothing retained for it (MQTT 3.1.1 §3.3.1.3)."""
        for leaf in topics.DOWN.values():
            info = self.client.publish(topics.lock_topic(lock_id, leaf), b"", qos=1,
                                       retain=True)
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
            if not info.is_published():
                raise PublishFailed(lock_id)
        self.stats["cleared"] += 1

    def _refused(self, session: Session, lock: Any, kind: str, e: ProtocolError) -> None:
        """An object the lock would refuse (TOO_LARGE) is not published: counted, logged
        by code and audited for the operator (no payload)."""
        code = e.code.name  # the protocol's refusal code (§13), e.g. TOO_LARGE
        self.stats[code.lower()] += 1
        log.warning("uplink: %s for %s not published: %s", kind, lock.lock_id, code)
        audit.record(session, self.rt.now(), "uplink", "uplink.refused",
                     operator_id=lock.operator_id, target=lock.lock_id,
                     detail={"kind": kind, "code": code})

    def _time_statements(self) -> None:
        rt = self.rt
        interval = rt.settings.uplink_time_interval_s
        if interval <= 0:
            return
        now = rt.now()
        with transaction(rt.sessions) as s:
            row = s.get(ServerState, "uplink_time")
            if row is None:
                s.add(ServerState(name="uplink_time", version=0))
                s.flush()
            won = s.execute(
                update(ServerState)
                .where(ServerState.name == "uplink_time", ServerState.version <= now)
                .values(version=now + interval)
            ).rowcount
            if not won:
                return
            try:
                t = timeauth.signable_now(s, now, timeauth.anchor_of(rt))
            except timeauth.ClockFault as e:
                log.warning("uplink: no time statement published: %s", e)
                return
            statement = message(MessageType.TIME, timeauth.sign(rt.keyset(s).active, t))
            for (lock_id,) in s.execute(
                    select(Lock.lock_id).join(LockUplink, LockUplink.lock_pk == Lock.pk)):
                self._publish(lock_id, topics.DOWN_TIME, statement)

    def _drain_inbox(self) -> None:
        while True:
            try:
                topic, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            self.handle(topic, payload)

    def handle(self, topic: str, payload: bytes) -> str:
        """Process one message a lock published; returns what became of it."""
        parsed = topics.parse_up(topic)
        if parsed is None:
            return self._count("ignored")
        lock_id, leaf = parsed
        rt = self.rt
        try:
            with transaction(rt.sessions) as s:
                lock = s.scalars(select(Lock).where(Lock.lock_id == lock_id)).first()
                if lock is None:
                    return self._count("unknown_lock")
                if leaf == topics.UP_HEARTBEAT:
                    st = record_heartbeat(s, lock, payload, rt.now())
                    if retire.on_heartbeat(s, rt.settings, self._sim_for, lock, st,
                                           rt.now()):
                        self._count("retired")
                    return self._count("heartbeat")
                if leaf == topics.UP_LOG:
                    outcome = record_log_page(s, lock, payload, rt.now())
                    receipt = logs.receipt(lock, outcome, rt.keyset(s), rt.now())
                else:
                    return self._count("ignored")
        except (ProtocolError, ApiError, ValueError):
            return self._count("refused")
        # committed: the records are stored, so the receipt may say so
        if receipt is not None:
            self._send_receipt(lock_id, receipt)
        return self._count("log")

    def _send_receipt(self, lock_id: str, receipt: str) -> None:
        """Publish a receipt (retained, QoS 1). One the broker did not acknowledge (it is
        down) is kept, the newest per lock, and published again by the thread once the
        broker is back (:meth:`_late_receipts`), not only with the lock's next page."""
        try:
            payload = message(_T_LOG_RECEIPT, bytes.fromhex(receipt))
        except ProtocolError as e:  # TOO_LARGE: the lock would refuse it
            self.stats[e.code.name.lower()] += 1
            return
        try:
            self._publish(lock_id, topics.DOWN_RECEIPT, payload)
        except (PublishFailed, RuntimeError, ValueError):  # paho: not connected, full
            self.stats["receipt_failed"] += 1
            self._late[lock_id] = payload
            return
        self._late.pop(lock_id, None)  # superseded
        self.stats["receipts"] += 1

    def _late_receipts(self) -> None:
        """Publish the receipts kept while the broker was down (connected again)."""
        for lock_id, payload in list(self._late.items()):
            try:
                self._publish(lock_id, topics.DOWN_RECEIPT, payload)
            except (PublishFailed, RuntimeError, ValueError):
                return  # still down: the next pass
            if self._late.get(lock_id) is payload:
                del self._late[lock_id]
            self.stats["receipts"] += 1
            self.stats["receipts_late"] += 1

    def _count(self, what: str) -> str:
        self.stats[what] += 1
        return what
