"""A small non-blocking MQTT 3.1.1 client for the lock's uplink (docs/uplink.md).

Written from the OASIS MQTT 3.1.1 standard (§2 fixed header and remaining length, §3
CONNECT/CONNACK/PUBLISH/PUBACK/SUBSCRIBE/SUBACK/PINGREQ/PINGRESP/DISCONNECT). It never
blocks: ``poll`` writes what the socket takes, reads what has arrived into one fixed
receive buffer and returns at most one received PUBLISH, so the BLE loop that calls it is
never held up by the network. The socket is any non-blocking stream whose ``write``
returns the bytes taken (or None) and ``readinto`` the bytes read (or None): a TLS socket
from ``ssl`` on the unix port and on ESP32 alike (see ``open_tls``).

Anything unexpected from the broker (a malformed or oversized packet, a refused CONNECT,
a refused subscription, silence past the keep-alive) raises ``MQTTError``; the caller
closes the connection and reconnects later. The broker is not trusted: payloads are
handed on as bytes and verified by the lock like anything from BLE.
"""

import socket

from micropython import const

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)
_SUBACK = const(0x90)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)

_TX_MAX = const(8192)  # queued output beyond this is refused (publish returns 0)
_EAGAIN = (11, 115, 119)  # EAGAIN, EINPROGRESS (unix), EINPROGRESS (lwIP)


class MQTTError(Exception):
    """The broker or the connection misbehaved; close and reconnect later."""


def open_tls(host, port, cadata, server_hostname):
    """A non-blocking TLS client socket to ``host:port`` verified against the CA
    certificate ``cadata`` (DER) and ``server_hostname``; the handshake runs inside the
    first writes and reads, so this returns at once (after name resolution)."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]  # (not in the stubs)
    ctx.load_verify_locations(cadata=cadata)
    addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1]
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(addr)
    except OSError as e:
        if e.args[0] not in _EAGAIN:
            s.close()
            raise
    return ctx.wrap_socket(s, server_hostname=server_hostname,
                           do_handshake_on_connect=False)


def _str(out, b):
    out.append(len(b) >> 8)
    out.append(len(b) & 0xFF)
    out.extend(b)


def _header(out, first, n):
    out.append(first)
    while True:  # remaining length: 7 bits a byte, least significant first (§2.2.3)
        d = n & 0x7F
        n >>= 7
        out.append(d | 0x80 if n else d)
        if not n:
            return


class Client:
    """One MQTT session over one socket; create a new one for every connection."""

    def __init__(self, sock, client_id, user, password, keepalive_s, now_ms, rx_size=2560):
        self.sock = sock
        self.connected = False  # CONNACK accepted
        self.subscribed = False  # every SUBACK granted
        self.acked = 0  # packet id of the newest PUBACK
        self._rx = bytearray(rx_size)
        self._n = 0
        self._tx = bytearray()
        self._pid = 0
        self._subs = 0
        self._keep_ms = keepalive_s * 1000
        self._last_tx = now_ms
        self._last_rx = now_ms
        body = bytearray()
        _str(body, b"MQTT")
        body.append(4)  # protocol level 3.1.1
        body.append(0xC2)  # user name, password, clean session
        body.append(keepalive_s >> 8)
        body.append(keepalive_s & 0xFF)
        _str(body, client_id)
        _str(body, user)
        _str(body, password)
        _header(self._tx, _CONNECT, len(body))
        self._tx.extend(body)

    def _next_pid(self):
        self._pid = self._pid % 0xFFFF + 1
        return self._pid

    def subscribe(self, topic):
        """Queue a QoS 0 subscription to ``topic`` (bytes)."""
        pid = self._next_pid()
        out = self._tx
        _header(out, _SUBSCRIBE, 2 + 2 + len(topic) + 1)
        out.append(pid >> 8)
        out.append(pid & 0xFF)
        _str(out, topic)
        out.append(0)
        self._subs += 1

    def publish(self, topic, payload, qos=0):
        """Queue a PUBLISH; returns its packet id (QoS 1), 1 (QoS 0), or 0 when the output
        queue is full (nothing queued)."""
        n = 2 + len(topic) + len(payload) + (2 if qos else 0)
        if len(self._tx) + n + 5 > _TX_MAX:
            return 0
        out = self._tx
        _header(out, _PUBLISH | (qos << 1), n)
        _str(out, topic)
        pid = 1
        if qos:
            pid = self._next_pid()
            out.append(pid >> 8)
            out.append(pid & 0xFF)
        out.extend(payload)
        return pid

    def pending(self):
        """Bytes queued but not yet taken by the socket."""
        return len(self._tx)

    def close(self, polite=True):
        """Send DISCONNECT (best effort) and close the socket."""
        try:
            if polite and self.connected:
                self.sock.write(b"\xe0\x00")
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def poll(self, now_ms):
        """Move bytes both ways; returns ``(topic, payload)`` of one received PUBLISH or
        None. Raises MQTTError / OSError when the connection must be dropped."""
        tx = self._tx
        if tx:
            w = self.sock.write(tx)
            if w:
                self._last_tx = now_ms
                tx[:w] = b""
        elif self.connected and now_ms - self._last_tx >= self._keep_ms // 2:
            tx.extend(b"\xc0\x00")  # PINGREQ
        msg = self._packet(now_ms)
        if msg is None:
            free = len(self._rx) - self._n
            if free:
                r = self.sock.readinto(memoryview(self._rx)[self._n:], free)
                if r:
                    self._n += r
                    self._last_rx = now_ms
                    msg = self._packet(now_ms)
                elif r == 0:
                    raise MQTTError("closed")
        if now_ms - self._last_rx > self._keep_ms + self._keep_ms // 2:
            raise MQTTError("silent")
        return msg

    def _packet(self, now_ms):
        """Handle one complete packet at the start of the receive buffer, if there is one."""
        buf = self._rx
        n = self._n
        if n < 2:
            return None
        length = 0
        shift = 0
        i = 1
        while True:
            if i >= n:
                return None
            if i > 4:
                raise MQTTError("length")
            b = buf[i]
            length |= (b & 0x7F) << shift
            shift += 7
            i += 1
            if not b & 0x80:
                break
        end = i + length
        if end > len(buf):
            raise MQTTError("too large")
        if end > n:
            return None
        kind = buf[0]
        body = bytes(buf[i:end])
        buf[:n - end] = buf[end:n]
        self._n = n - end
        t = kind & 0xF0
        msg = None
        if t == _PUBLISH:
            qos = (kind >> 1) & 3
            if len(body) < 2:
                raise MQTTError("publish")
            tl = (body[0] << 8) | body[1]
            p = 2 + tl
            if qos:
                if qos > 1 or len(body) < p + 2:
                    raise MQTTError("qos")
                self._tx.extend(bytes((_PUBACK, 2, body[p], body[p + 1])))
                p += 2
            if p > len(body):
                raise MQTTError("publish")
            msg = (body[2:2 + tl], body[p:])
        elif t == _CONNACK:
            if kind != _CONNACK or len(body) != 2 or body[1] != 0:
                raise MQTTError("refused")
            self.connected = True
        elif t == _SUBACK:
            if len(body) < 3 or 0x80 in body[2:]:
                raise MQTTError("subscription refused")
            self._subs -= 1
            self.subscribed = self._subs == 0
        elif t == _PUBACK:
            if len(body) != 2:
                raise MQTTError("puback")
            self.acked = (body[0] << 8) | body[1]
        elif t != _PINGRESP:
            raise MQTTError("unexpected")
        return msg
