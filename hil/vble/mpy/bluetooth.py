# mypy: ignore-errors
"""MicroPython ``bluetooth`` module for the unix port, bridged to a real BLE stack.

This is the virtual bench's stand-in for the module MicroPython provides on ESP32 (the
same API subset: ``BLE``, ``UUID``, the ``FLAG_*`` constants). Every call goes to the BLE
sidecar (``kagiya.hil.vble.sidecar``), which drives a Bumble device on a virtual
controller, so ATT/GATT, MTU exchange and notification truncation really happen.

IRQs are delivered like on ESP32: a reader thread receives events from the sidecar and
schedules the handler with ``micropython.schedule``, so the handler runs in the main
thread between bytecodes (also while it sleeps in ``time.sleep_ms``). The unix port runs
threads without a GIL (``sys.implementation._thread == 'unsafe'``): the reader thread and
the main thread hand events over under a lock only (an unguarded list shared by both lost,
repeated and reordered events, and could crash the interpreter, under load).

The sidecar address comes from the environment variable ``KAGIYA_VBLE`` (``host:port``).
It lives on the lock's MICROPYPATH only in the virtual bench, never on a board.
"""

import _thread
import json
import os
import socket
import struct
import sys
import time

import micropython

FLAG_BROADCAST = 0x0001
FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_MTU_EXCHANGED = 21

_OP_REGISTER = 0x01
_OP_ADVERTISE = 0x02
_OP_NOTIFY = 0x03
_OP_DISCONNECT = 0x04
_OP_CONFIG = 0x05
_OP_ACTIVE = 0x06
_EV_CONNECT = 0x81
_EV_DISCONNECT = 0x82
_EV_WRITE = 0x83
_EV_MTU = 0x84


class UUID:
    """A 16-bit (int) or 128-bit (string) UUID."""

    def __init__(self, value):
        if isinstance(value, UUID):
            value = value._s
        if isinstance(value, int):
            value = f"{value:04x}"
        self._s = str(value).lower()

    def __str__(self):
        return self._s

    def __repr__(self):
        return f"UUID('{self._s}')"

    def __eq__(self, other):
        return isinstance(other, UUID) and other._s == self._s

    def __hash__(self):
        return hash(self._s)


class BLE:
    """The BLE radio (a singleton, like on MicroPython)."""

    _instance = None

    def __new__(cls):
        if BLE._instance is None:
            BLE._instance = object.__new__(cls)
            BLE._instance._init()
        return BLE._instance

    def _init(self):
        self._handler = None
        self._active = False
        self._values = {}
        self._append = {}
        self._events = []  # sidecar events not yet dispatched, guarded by _guard
        self._guard = _thread.allocate_lock()
        self._scheduled = False  # a _drain is scheduled or running (guarded by _guard)
        self._mtu = 23
        self._name = "MPY"
        self._sock = None
        self._drain_ref = self._drain

    # -- link to the sidecar --------------------------------------------------
    def _connect(self):
        addr = os.getenv("KAGIYA_VBLE")
        if not addr:
            raise OSError("KAGIYA_VBLE is not set: no virtual BLE sidecar")
        host, port = addr.rsplit(":", 1)
        s = socket.socket()
        s.connect(socket.getaddrinfo(host, int(port))[0][-1])
        self._sock = s
        _thread.start_new_thread(self._reader, ())

    def _send(self, op, body=b""):
        data = struct.pack(">HB", len(body) + 1, op) + body
        sock = self._sock
        view = memoryview(data)
        while view:
            n = sock.write(view)
            view = view[n:]

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self._sock.read(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _reader(self):
        while True:
            head = self._recv_exact(2)
            if head is None:
                return
            body = self._recv_exact(struct.unpack(">H", head)[0])
            if body is None:
                return
            self._guard.acquire()
            self._events.append(body)
            kick = not self._scheduled
            self._scheduled = True
            self._guard.release()
            if kick:
                self._kick()

    def _kick(self):
        while True:
            try:
                micropython.schedule(self._drain_ref, None)
                return
            except RuntimeError:  # schedule queue full: retry shortly
                time.sleep_ms(1)

    def _drain(self, _arg):
        # runs in the main thread; takes the queued events in batches, and says it is no
        # longer scheduled only once it found the queue empty (under the same lock as the
        # reader's append, so no event is left behind without a drain to come)
        while True:
            self._guard.acquire()
            events = self._events
            self._events = []
            if not events:
                self._scheduled = False
            self._guard.release()
            if not events:
                return
            for body in events:
                try:
                    self._dispatch(body)
                except Exception as e:  # one bad event never stops the ones after it
                    sys.print_exception(e)

    def _dispatch(self, body):
        op = body[0]
        handler = self._handler
        if op == _EV_WRITE:
            conn, handle = struct.unpack(">HH", body[1:5])
            data = body[5:]
            if self._append.get(handle):
                self._values[handle] = self._values.get(handle, b"") + data
            else:
                self._values[handle] = data
            if handler:
                handler(_IRQ_GATTS_WRITE, (conn, handle))
        elif op == _EV_CONNECT or op == _EV_DISCONNECT:
            conn = struct.unpack(">H", body[1:3])[0]
            event = _IRQ_CENTRAL_CONNECT if op == _EV_CONNECT else _IRQ_CENTRAL_DISCONNECT
            if handler:
                handler(event, (conn, body[3], memoryview(body[4:10])))
        elif op == _EV_MTU:
            conn, mtu = struct.unpack(">HH", body[1:5])
            if handler:
                handler(_IRQ_MTU_EXCHANGED, (conn, mtu))

    # -- the bluetooth.BLE API -------------------------------------------------
    def active(self, state=None):
        """Get or set whether the radio is on."""
        if state is None:
            return self._active
        state = bool(state)
        if state and self._sock is None:
            self._connect()
        if self._sock is not None and state != self._active:
            self._send(_OP_ACTIVE, b"\x01" if state else b"\x00")
        self._active = state
        return state

    def config(self, *args, **kw):
        """Get (``config('mtu')``) or set (``config(mtu=…, gap_name=…)``) parameters."""
        if args:
            name = args[0]
            if name == "mtu":
                return self._mtu
            if name == "gap_name":
                return self._name
            if name == "mac":
                return (1, b"\xc0\x00\x00\x00\x00\x01")
            raise ValueError("unknown config param")
        if "mtu" in kw:
            self._mtu = int(kw["mtu"])
            self._send(_OP_CONFIG, json.dumps({"mtu": self._mtu}).encode())
        if "gap_name" in kw:
            self._name = kw["gap_name"]
            self._send(_OP_CONFIG, json.dumps({"gap_name": self._name}).encode())

    def irq(self, handler):
        """Set the event handler ``handler(event, data)``."""
        self._handler = handler

    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        """Start (interval in µs) or stop (``None``) advertising."""
        adv = bytes(adv_data or b"")
        resp = bytes(resp_data or b"")
        interval = 0 if interval_us is None else int(interval_us)
        self._send(_OP_ADVERTISE, struct.pack(">IH", interval, len(adv)) + adv + resp)

    def gap_disconnect(self, conn_handle):
        """Disconnect a central; True if the request was sent."""
        self._send(_OP_DISCONNECT, struct.pack(">H", conn_handle))
        return True

    def gatts_register_services(self, services):
        """Register services; returns a tuple (per service) of value-handle tuples."""
        definition = []
        handles = []
        h = 0
        for svc_uuid, chars in services:
            entry = []
            svc_handles = []
            for char in chars:
                h += 1
                entry.append([str(UUID(char[0])), int(char[1])])
                svc_handles.append(h)
                self._values[h] = b""
            definition.append([str(UUID(svc_uuid)), entry])
            handles.append(tuple(svc_handles))
        self._send(_OP_REGISTER, json.dumps(definition).encode())
        return tuple(handles)

    def gatts_read(self, value_handle):
        """The local value of a characteristic (in append mode: and clear it)."""
        v = self._values.get(value_handle, b"")
        if self._append.get(value_handle):
            self._values[value_handle] = b""
        return v

    def gatts_write(self, value_handle, data, send_update=False):
        """Set the local value of a characteristic."""
        self._values[value_handle] = bytes(data)

    def gatts_set_buffer(self, value_handle, length, append=False):
        """Set the value buffer size; ``append`` keeps successive writes."""
        self._append[value_handle] = bool(append)

    def gatts_notify(self, conn_handle, value_handle, data=None):
        """Send a notification (longer than MTU-3 bytes is truncated by the stack)."""
        if data is None:
            data = self._values.get(value_handle, b"")
        self._send(_OP_NOTIFY, struct.pack(">HH", conn_handle, value_handle) + bytes(data))
