"""The connected lock's uplink over MQTT (docs/uplink.md). Only on connected builds.

``Uplink(lock, cfg).step(now_ms)`` is called by the main loop whenever BLE has nothing
queued; each call does a bounded amount of work and never blocks. It

* connects out over TLS to the broker (HAL ``link_up()`` first), subscribes to the lock's
  ``down/+`` topics and reconnects with exponential backoff (1 s .. 5 min, jittered);
* hands every received revocation update, time statement and decommission update
  (``down/revocation``, ``down/time``, ``down/decommission``) to ``Lock.handle`` - the
  very handler BLE uses, with its own rate limiter of the same rules, so a hostile
  network can neither forge an object nor push the BLE owner into a rate-limit block;
  any other message type is dropped before it reaches the lock;
* publishes a signed heartbeat (at once after every accepted object, that is its
  acknowledgement, and every ``heartbeat_s``) and the log records since the last page the
  broker acknowledged, each page ending at the signed head (§11), so the server verifies
  it exactly like a phone's upload.

``cfg`` is the ``uplink`` state object written at provisioning:
``{1: host, 2: port, 3: password, 4: CA certificate (DER), 5: TLS server name,
6: heartbeat_s}``; the broker username is the lock ID.
"""

from micropython import const

from kagiya_lock import cbor, ed25519, mqtt

UPLINK_CONN = const(-1)  # the connection id Lock.handle sees for pushed objects
_T_TIME = const(5)
_T_REVOCATION = const(6)
_T_ACK = const(7)
_T_DECOMMISSION = const(12)  # protocol v2 (#14)
# down/<leaf> -> the one message type accepted on it
_LEAVES = {b"revocation": _T_REVOCATION, b"time": _T_TIME, b"decommission": _T_DECOMMISSION}
_KEEPALIVE_S = const(60)
_BACKOFF_MIN_MS = const(1000)
_BACKOFF_MAX_MS = const(300000)
_CONNECT_MS = const(15000)  # CONNACK + SUBACK must arrive within this
_LOG_BUDGET = const(1700)  # record bytes per log page
_PREFIX = b"kagiya/v1/locks/"
_BEAT = b"KGY1-BEAT"


def heartbeat_message(lock_id, now, rv, head, head_hash, state):
    """The bytes a heartbeat's signature covers (docs/uplink.md, "Heartbeat")."""
    lid = lock_id.encode()
    return (_BEAT + bytes((len(lid),)) + lid + now.to_bytes(8, "big") + rv.to_bytes(8, "big")
            + head.to_bytes(8, "big") + head_hash + bytes((state,)))


class Uplink:
    """The uplink state machine of one lock (see the module doc)."""

    def __init__(self, lock, cfg, opener=mqtt.open_tls):
        self.lock = lock
        self.cfg = cfg
        self._open = opener
        self.client = None
        self.online = False  # connected and subscribed
        self.connects = 0
        self.drops = 0
        self.received = 0
        self.refused = 0  # pushed objects the lock refused (forged, stale, rate-limited)
        self._backoff = _BACKOFF_MIN_MS
        self._retry_at = 0
        self._started = 0
        self._hb_due = 0
        self._hb_ms = max(10, cfg.get(6, 300)) * 1000
        self._sent = 0  # newest log seq in a page the broker acknowledged
        self._page = None  # (packet id, last seq) of the page in flight
        base = _PREFIX + lock.lock_id.encode()
        self._down = base + b"/down/"
        self._hb_topic = base + b"/up/heartbeat"
        self._log_topic = base + b"/up/log"

    # -- connection -----------------------------------------------------------------
    def _drop(self, now_ms):
        c = self.client
        self.client = None
        self.online = False
        self._page = None
        if c is not None:
            c.close(False)
            self.drops += 1
        jitter = self.lock.hal.random(1)[0] * self._backoff // 512  # up to +50 %
        self._retry_at = now_ms + self._backoff + jitter
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX_MS)

    def _connect(self, now_ms):
        cfg = self.cfg
        lid = self.lock.lock_id.encode()
        sock = self._open(cfg[1], cfg[2], cfg[4], cfg[5])
        c = mqtt.Client(sock, lid, lid, cfg[3].encode(), _KEEPALIVE_S, now_ms)
        c.subscribe(self._down + b"+")
        self.client = c
        self._started = now_ms

    def close(self):
        """Disconnect politely (power-down, tests)."""
        if self.client is not None:
            self.client.close()
            self.client = None
            self.online = False

    # -- the loop -----------------------------------------------------------------------
    def step(self, now_ms):
        """Bounded work; returns True when it did something (the caller may loop again)."""
        try:
            return self._step(now_ms)
        except Exception:  # OSError, MQTTError, MemoryError: drop and back off
            self._drop(now_ms)
            return False

    def _step(self, now_ms):
        c = self.client
        if c is None:
            if now_ms < self._retry_at or not self.lock.hal.link_up():
                return False
            self._connect(now_ms)
            return True
        msg = c.poll(now_ms)
        if not self.online:
            if c.connected and c.subscribed:
                self.online = True
                self.connects += 1
                self._backoff = _BACKOFF_MIN_MS
                self._hb_due = now_ms
            elif now_ms - self._started > _CONNECT_MS:
                raise mqtt.MQTTError("connect timeout")
            return msg is not None
        if msg is not None:
            self._pushed(msg, now_ms)
            return True
        page = self._page
        if page is not None and c.acked == page[0]:
            self._page = None
            self._sent = page[1]
            self.lock.log.mark_fetched(page[1])
        if c.pending():
            return False
        if now_ms >= self._hb_due:
            self._heartbeat(c, now_ms)
            return True
        if self._page is None and self.lock.log.head > self._sent:
            self._publish_log(c)
            return True
        return False

    def _pushed(self, msg, now_ms):
        topic, payload = msg
        if not topic.startswith(self._down):
            return
        want = _LEAVES.get(topic[len(self._down):])
        if want is None:
            return
        self.received += 1
        m, code = cbor.decode(payload)
        if code or type(m) is not dict or m.get(0) != want:
            self.refused += 1
            return
        reply = self.lock.handle_pushed(payload)
        r, code = cbor.decode(reply)
        if not code and type(r) is dict and r.get(0) == _T_ACK:
            self._hb_due = now_ms  # the signed heartbeat is the acknowledgement
        else:
            self.refused += 1

    def _heartbeat(self, c, now_ms):
        lock = self.lock
        log = lock.log
        now = lock.clock.now()
        rv = lock.revocations.version
        state = lock.state()
        sig = ed25519.sign(lock.ident["sk"], heartbeat_message(
            lock.lock_id, now, rv, log.head, log.head_hash, state))
        body = cbor.encode({1: lock.lock_id, 2: now, 3: rv, 4: log.head, 5: log.head_hash,
                            6: state, 15: sig})
        if c.publish(self._hb_topic, body):
            self._hb_due = now_ms + self._hb_ms

    def _publish_log(self, c):
        log = self.lock.log
        head = log.head
        start = self._sent + 1
        records, prev, more = log.fetch(start, _LOG_BUDGET)
        if more:  # a backlog: send the newest page that ends at the head; phones
            start = max(start, head - 15)  # still fetch the older records (docs/uplink.md)
            records, prev, more = log.fetch(start, _LOG_BUDGET)
            if more:
                return
        body = cbor.encode({1: records, 2: prev, 3: head, 4: log.head_hash, 5: log.lost,
                            6: log.head_signature(self.lock.ident["sk"])})
        pid = c.publish(self._log_topic, body, 1)
        if pid:
            self._page = (pid, head)
