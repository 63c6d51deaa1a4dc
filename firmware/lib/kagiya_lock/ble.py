"""The lock's BLE layer: a GATT peripheral on MicroPython's ``bluetooth`` API (§10).

Runs unchanged on ESP32 (NimBLE) and on the unix port with the virtual bench's shim.

* Service ``5d1a0001-…`` with the request characteristic (write, write without
  response) and the response characteristic (notify; no read flag, so reads are
  refused with "read not permitted").
* Advertising: flags + the complete list of 128-bit service UUIDs; the scan response
  carries the lock ID as the complete local name. 20 ms for 30 s after boot or a
  disconnect, then 500 ms. Up to ``MAX_CONNECTIONS`` centrals at once (a second phone
  can connect while one is busy and gets ``BUSY`` from the lock).
* Framing (``kagiya_lock.framing``) for any ATT MTU 23–517, one reassembler per
  connection. Framing errors are answered with ``ERROR``; a request completed while the
  previous reply is not yet sent gets ``BUSY``.

IRQ handlers only reassemble and queue; the main loop (``run``) calls ``Lock.handle``
and sends the fragmented reply, so the BLE event path never waits on cryptography.
"""

import time

import bluetooth
from micropython import const

from kagiya_lock import errors, framing, messages

SERVICE_UUID = "5d1a0001-1c6e-4b8e-9a7a-6b6167697961"
REQUEST_UUID = "5d1a0002-1c6e-4b8e-9a7a-6b6167697961"
RESPONSE_UUID = "5d1a0003-1c6e-4b8e-9a7a-6b6167697961"

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_MTU_EXCHANGED = const(21)

_FLAG_WRITE_NO_RESPONSE = const(0x0004)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)

FAST_INTERVAL_US = const(20000)
SLOW_INTERVAL_US = const(500000)
FAST_PERIOD_MS = const(30000)
MAX_CONNECTIONS = const(3)
PREFERRED_MTU = const(517)
_MAX_QUEUE = const(24)
_TICK_MS = const(1000)

_JOB_MESSAGE = const(0)
_JOB_REPLY = const(1)


def uuid_bytes(uuid):
    """A 128-bit UUID string as the 16 little-endian bytes of advertising data."""
    return bytes(reversed(bytes.fromhex(uuid.replace("-", ""))))


def advertising_payloads(lock_id):
    """(advertising data, scan response) for the lock (Core Supplement Part A §1)."""
    u = uuid_bytes(SERVICE_UUID)
    adv = bytes((2, 0x01, 0x06, len(u) + 1, 0x07)) + u
    name = lock_id.encode()
    resp = bytes((len(name) + 1, 0x09)) + name if name else b""
    return adv, resp


def error_reply(code):
    """An unauthenticated ``ERROR`` message (§9)."""
    return messages.encode(messages.ERROR, code, None)


class _Conn:
    """Per-connection state: reassembler, negotiated MTU, request in flight."""

    def __init__(self):
        self.rx = framing.Reassembler()
        self.mtu = 23
        self.busy = False


class BLELock:
    """Binds a ``Lock`` to a ``bluetooth.BLE`` radio."""

    def __init__(self, ble, lock, ticks_ms=None):
        self.ble = ble
        self.lock = lock
        self._ticks = ticks_ms or lock.hal.ticks_ms
        self.conns = {}
        self.queue = []
        self._adv_fast_until = 0
        self._adv_interval = 0
        self._last_tick = 0
        ble.active(True)
        ble.config(mtu=PREFERRED_MTU)
        ble.irq(self._irq)
        svc = (bluetooth.UUID(SERVICE_UUID), (
            (bluetooth.UUID(REQUEST_UUID), _FLAG_WRITE | _FLAG_WRITE_NO_RESPONSE),
            (bluetooth.UUID(RESPONSE_UUID), _FLAG_NOTIFY)))
        ((self.req_handle, self.rsp_handle),) = ble.gatts_register_services((svc,))
        ble.gatts_set_buffer(self.req_handle, PREFERRED_MTU)
        self.advertise(True)

    # -- advertising ------------------------------------------------------------
    def advertise(self, fast):
        """(Re)start advertising; ``fast`` starts the 30 s fast-interval period."""
        if len(self.conns) >= MAX_CONNECTIONS:
            self.ble.gap_advertise(None)
            self._adv_interval = 0
            return
        now = time.ticks_ms()
        if fast:
            self._adv_fast_until = time.ticks_add(now, FAST_PERIOD_MS)
        interval = FAST_INTERVAL_US
        if time.ticks_diff(self._adv_fast_until, now) <= 0:
            interval = SLOW_INTERVAL_US
        adv, resp = advertising_payloads(self.lock.lock_id)
        self.ble.gap_advertise(interval, adv, resp_data=resp)
        self._adv_interval = interval

    # -- IRQ (scheduled; keep short) ----------------------------------------------
    def _irq(self, event, data):
        try:
            if event == _IRQ_GATTS_WRITE:
                self._on_write(data[0], data[1])
            elif event == _IRQ_CENTRAL_CONNECT:
                self.conns[data[0]] = _Conn()
                self.lock.connected(data[0])
                self.advertise(True)
            elif event == _IRQ_CENTRAL_DISCONNECT:
                conn = data[0]
                if self.conns.pop(conn, None) is not None:
                    self.lock.disconnected(conn)
                self.advertise(True)
            elif event == _IRQ_MTU_EXCHANGED:
                st = self.conns.get(data[0])
                if st is not None:
                    st.mtu = data[1]
        except Exception:  # an IRQ handler must never take the radio down
            pass

    def _on_write(self, conn, handle):
        if handle != self.req_handle:
            return
        st = self.conns.get(conn)
        data = self.ble.gatts_read(handle)
        if st is None:
            return
        status, value = st.rx.feed(data, self._ticks())
        if status == framing.COMPLETE:
            if st.busy:
                self._enqueue(conn, _JOB_REPLY, error_reply(errors.BUSY))
            else:
                st.busy = True
                self.queue.append((conn, _JOB_MESSAGE, value))
        elif status == framing.ERROR:
            self._enqueue(conn, _JOB_REPLY, error_reply(value))

    def _enqueue(self, conn, kind, data):
        if len(self.queue) < _MAX_QUEUE:  # a flood of garbage cannot exhaust memory
            self.queue.append((conn, kind, data))

    # -- main loop -------------------------------------------------------------
    def _send(self, conn, message, request_done=False):
        """Notify ``message`` in fragments. ``request_done``: the reply ends the request
        in flight, which ends (no more BUSY) as the last fragment goes to the stack -
        the phone may answer it before this loop resumes."""
        st = self.conns.get(conn)
        if st is None:
            return
        frags = framing.fragments(message, st.mtu)
        last = frags[-1]
        for frag in frags:
            if request_done and frag is last:
                st.busy = False
            for _ in range(50):
                try:
                    self.ble.gatts_notify(conn, self.rsp_handle, frag)
                    break
                except OSError:  # controller buffers full (ESP32): wait for room
                    if conn not in self.conns:
                        return
                    time.sleep_ms(2)
            else:
                return

    def step(self):
        """Process queued requests and run housekeeping; returns True if work was done."""
        did = False
        while self.queue:
            conn, kind, data = self.queue.pop(0)
            did = True
            if conn not in self.conns:
                continue
            if kind == _JOB_MESSAGE:
                reply = self.lock.handle(conn, data)
                self._send(conn, reply, True)
            else:
                self._send(conn, data)
        now = time.ticks_ms()
        if time.ticks_diff(now, self._last_tick) >= _TICK_MS:
            self._last_tick = now
            self.lock.tick()
            ticks = self._ticks()
            for st in self.conns.values():
                st.rx.expire(ticks)
            if (self._adv_interval == FAST_INTERVAL_US
                    and time.ticks_diff(self._adv_fast_until, now) <= 0):
                self.advertise(False)
        return did

    def run(self, idle=None):
        """Serve forever (the firmware's main loop). ``idle(ticks_ms)`` (the uplink, on
        connected builds) runs only while no BLE request is queued, so it never delays one."""
        while True:
            try:
                busy = self.step()
                if idle is not None and not self.queue:
                    busy = idle(self._ticks()) or busy
            except Exception:  # the loop must survive anything
                busy = False
            if not busy:
                time.sleep_ms(1 if self.conns else 20)

