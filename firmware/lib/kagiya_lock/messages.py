"""Protocol messages (docs/protocol.md §9): strict decoding and the lock's reply encoders.

``decode(data)`` checks one message the way kagiya.sdk.messages does: strict CBOR (§1),
a map whose key 0 is a known type (else ``MALFORMED`` / ``UNKNOWN_MESSAGE``), then each
field of that type in key order - missing or mistyped -> ``MALFORMED``, a ``COMMAND``
command that is not a session command -> ``UNKNOWN_MESSAGE``. Unknown keys are ignored.
It returns ``(map, code)`` and never raises; on a failure the map is returned when it was
parsed, so the lock can echo a request's counter in its ``ERROR``.

``encode(type, *fields)`` writes the deterministic encoding directly: every message key
is a small uint in ascending order, so no map needs sorting (RFC 8949 §4.2.1).
"""

from micropython import const

from kagiya_lock import cbor, errors, identity

# message types
HELLO = const(1)
CHALLENGE = const(2)
COMMAND = const(3)
RESULT = const(4)
TIME = const(5)
REVOCATION = const(6)
ACK = const(7)
LOG_FETCH = const(8)
LOG = const(9)
INFO = const(10)
LOCK_INFO = const(11)
ERROR = const(15)
KEY_MAC = const(15)

# field kinds
_U8 = const(0)
_U16 = const(1)
_U32 = const(2)
_U64 = const(3)
_B16 = const(4)
_B32 = const(5)
_B64 = const(6)
_BYTES = const(7)
_KEY = const(8)  # 32-byte public key, or empty before provisioning
_TEXT = const(9)
_LOCK_ID = const(10)
_BOOL = const(11)
_UINTS = const(12)
_BLOBS = const(13)
_COMMAND = const(14)  # u8, and a session command (1-5)

_UMAX = (0xFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
_BLEN = (16, 32, 64)

# type -> ((key, kind, optional), ...) in key order: the table of §9
SCHEMA = {
    HELLO: ((1, _UINTS, 0),),
    CHALLENGE: ((1, _U64, 0), (2, _LOCK_ID, 0), (3, _B16, 0), (4, _U64, 0), (5, _U8, 0),
                (6, _U64, 0)),
    COMMAND: ((1, _B16, 0), (2, _U32, 0), (3, _COMMAND, 0), (4, _B32, 0), (5, _BYTES, 1)),
    RESULT: ((1, _U32, 0), (2, _U8, 0), (3, _U16, 0), (4, _U8, 0), (5, _U64, 0),
             (15, _B32, 0)),
    TIME: ((1, _BYTES, 0),),
    REVOCATION: ((1, _BYTES, 0),),
    ACK: ((1, _U16, 0), (2, _U64, 0), (3, _U64, 0)),
    LOG_FETCH: ((1, _B16, 0), (2, _U32, 0), (3, _U32, 0), (4, _B32, 0), (5, _BYTES, 1)),
    LOG: ((1, _U32, 0), (2, _BLOBS, 0), (3, _B32, 0), (4, _U64, 0), (5, _B32, 0),
          (6, _U32, 0), (7, _B64, 0), (8, _BOOL, 0), (9, _U8, 0), (15, _B32, 0)),
    INFO: (),
    LOCK_INFO: ((1, _TEXT, 0), (2, _TEXT, 0), (3, _UINTS, 0), (4, _KEY, 0), (5, _KEY, 0),
                (6, _U64, 0), (7, _U8, 0), (8, _U64, 0), (9, _U64, 0), (10, _BOOL, 0)),
    ERROR: ((1, _U16, 0), (2, _U32, 1)),
}


def valid(kind, v):
    """True iff ``v`` is a well-formed value of field kind ``kind``."""
    t = type(v)
    if kind <= _U64:
        return t is int and 0 <= v <= _UMAX[kind]
    if kind <= _B64:
        return t is bytes and len(v) == _BLEN[kind - _B16]
    if kind == _BYTES:
        return t is bytes
    if kind == _KEY:
        return t is bytes and (len(v) == 0 or len(v) == 32)
    if kind == _TEXT:
        return t is str
    if kind == _LOCK_ID:
        return identity.valid_lock_id(v)
    if kind == _BOOL:
        return t is bool
    if kind == _UINTS or kind == _BLOBS:
        if t is not list:
            return False
        for x in v:
            if (type(x) is not int or x < 0) if kind == _UINTS else type(x) is not bytes:
                return False
        return True
    # _COMMAND
    return t is int and 0 <= v <= 0xFF


def decode(data):
    """Decode and check one message; returns ``(map, code)`` (see the module doc)."""
    m, code = cbor.decode(data)
    if code:
        return None, code
    if type(m) is not dict:
        return None, errors.MALFORMED
    t = m.get(0)
    if type(t) is not int:
        return None, errors.MALFORMED
    fields = SCHEMA.get(t)
    if fields is None:
        return None, errors.UNKNOWN_MESSAGE
    for key, kind, optional in fields:
        if key not in m:
            if optional:
                continue
            return m, errors.MALFORMED
        v = m[key]
        if not valid(kind, v):
            return m, errors.MALFORMED
        if kind == _COMMAND and not 1 <= v <= 5:
            return m, errors.UNKNOWN_MESSAGE
    return m, errors.OK


def counter_of(m):
    """The counter of a parsed COMMAND / LOG_FETCH when it is a valid u32, else None."""
    if m is None or (m.get(0) != COMMAND and m.get(0) != LOG_FETCH):
        return None
    c = m.get(2)
    return c if valid(_U32, c) else None


# -- encoder (lock -> phone) ----------------------------------------------------------


def encode(mtype, *values):
    """The deterministic encoding of a message of type ``mtype`` whose fields are
    ``values`` in the key order of ``SCHEMA`` (the order of §9's table); a ``None``
    value leaves its key out (ERROR without a counter; LOG without its MAC, the body
    the reply MAC covers). Every key is below 24 and they ascend, so the encoding is
    written directly, with no map to sort."""
    fields = SCHEMA[mtype]
    n = 1
    for v in values:
        if v is not None:
            n += 1
    out = bytearray()
    out.append(0xA0 | n)  # fewer than 24 keys
    out.append(0)
    out.append(mtype)
    for i in range(len(values)):
        v = values[i]
        if v is not None:
            out.append(fields[i][0])
            cbor.encode_into(out, v)
    return bytes(out)


def with_mac(body, mac):
    """A MAC body (a map without key 15, fewer than 23 keys) with key 15 = ``mac`` added."""
    out = bytearray(body)
    out[0] += 1
    out.append(KEY_MAC)
    cbor.encode_into(out, mac)
    return bytes(out)
