"""Strict CBOR (RFC 8949) for the lock: a limited decoder and a deterministic encoder.

Decoder (protocol §1, §15): definite lengths only, shortest-form integers and lengths,
no duplicate map keys (keys are ints or text), no floats, no simple values other than
false/true/null, valid UTF-8, nesting depth at most 8, no trailing bytes, and no tags
except one optional tag at the top (COSE_Sign1, tag 18) when the caller asks for it -
else MALFORMED; more than ``max_size`` bytes, a text string over 64 bytes or more than
64 items in one array or map - TOO_LARGE (the same decisions as kagiya.sdk.cbor).
``decode`` never raises on bad input: it returns ``(value, code)`` with ``code`` an
error of §13 and ``value`` None on failure. Running out of heap is not bad input: a
``MemoryError`` propagates, so no caller can mistake it for a malformed (or forged)
message; the lock's handler answers it with ``INTERNAL`` (docs/firmware.md).

Encoder: RFC 8949 §4.2.1 deterministic encoding of int, bytes, str, list/tuple, dict
(keys sorted by their encoded bytes), bool and None.
"""

from micropython import const

from kagiya_lock import errors

MAX_DEPTH = const(8)
MAX_ITEMS = const(64)
MAX_TEXT = const(64)
MAX_MESSAGE = const(2048)

_MALFORMED = const(1)
_TOO_LARGE = const(2)


# State of the decode in progress (the decoder is not re-entrant; the lock is single
# threaded): read position and error code. Errors are returned, never raised, and no
# helper returns a tuple, so decoding a valid message allocates only its values.
_p = 0
_e = 0


def _arg(buf, ai, n):
    """Argument of an initial byte with additional info ``ai`` at ``_p``; advances ``_p``.
    On a bad encoding sets ``_e`` and returns 0."""
    global _p, _e
    if ai < 24:
        return ai
    p = _p
    if ai == 24:
        if p + 1 > n:
            _e = _MALFORMED
            return 0
        v = buf[p]
        low = 24
        p += 1
    elif ai == 25:
        if p + 2 > n:
            _e = _MALFORMED
            return 0
        v = (buf[p] << 8) | buf[p + 1]
        low = 0x100
        p += 2
    elif ai == 26 or ai == 27:
        size = 4 if ai == 26 else 8
        if p + size > n:
            _e = _MALFORMED
            return 0
        v = int.from_bytes(buf[p:p + size], "big")
        low = 0x10000 if ai == 26 else 0x100000000
        p += size
    else:  # 28..30 reserved, 31 indefinite length / break
        _e = _MALFORMED
        return 0
    if v < low:  # not the shortest form
        _e = _MALFORMED
        return 0
    _p = p
    return v


def _item(buf, n, depth):
    """Decode one item at ``_p``; returns it (None with ``_e`` set on failure)."""
    global _p, _e
    if _p >= n:
        _e = _MALFORMED
        return None
    ib = buf[_p]
    _p += 1
    major = ib >> 5
    v = _arg(buf, ib & 0x1F, n)
    if _e:
        return None
    if major == 0:
        return v
    if major == 1:
        return -1 - v
    if major == 2 or major == 3:
        start = _p
        end = start + v
        if end > n:  # a declared length beyond the data: truncated (malformed)
            _e = _MALFORMED
            return None
        if major == 3 and v > MAX_TEXT:
            _e = _TOO_LARGE
            return None
        raw = bytes(buf[start:end])
        _p = end
        if major == 2:
            return raw
        try:
            return str(raw, "utf-8")
        except UnicodeError:  # the only way to validate UTF-8 on MicroPython
            _e = _MALFORMED
            return None
    if major == 4 or major == 5:
        if depth >= MAX_DEPTH:
            _e = _MALFORMED
            return None
        if v > MAX_ITEMS:  # a §15 size limit (and §7: > 64 revocation entries)
            _e = _TOO_LARGE
            return None
        if major == 4:
            out = []
            for _ in range(v):
                x = _item(buf, n, depth + 1)
                if _e:
                    return None
                out.append(x)
            return out
        d = {}
        for _ in range(v):
            if _p >= n:
                _e = _MALFORMED
                return None
            kb = buf[_p] >> 5
            if kb > 1 and kb != 3:  # keys: integers or text only
                _e = _MALFORMED
                return None
            k = _item(buf, n, depth + 1)
            if _e:
                return None
            if k in d:
                _e = _MALFORMED
                return None
            x = _item(buf, n, depth + 1)
            if _e:
                return None
            d[k] = x
        return d
    if major == 6:  # tags are only allowed at the top (see decode)
        _e = _MALFORMED
        return None
    # major 7: simple values and floats
    ai = ib & 0x1F
    if ai == 20:
        return False
    if ai == 21:
        return True
    if ai == 22:
        return None
    _e = _MALFORMED
    return None


def decode(data, tag=None, max_size=MAX_MESSAGE):
    """Decode exactly one item from ``data``; returns ``(value, code)``.

    ``tag``: when not None the item must be that tag (e.g. 18) wrapping the value,
    which is returned without the tag. ``code`` is 0 on success.
    """
    global _p, _e
    n = len(data)
    if n > max_size:
        return None, _TOO_LARGE
    _p = 0
    _e = 0
    if tag is not None:
        if n == 0 or data[0] >> 5 != 6:
            return None, _MALFORMED
        _p = 1
        t = _arg(data, data[0] & 0x1F, n)
        if _e or t != tag:
            return None, _MALFORMED
    v = _item(data, n, 0)  # MemoryError propagates (module doc)
    if _e:
        return None, _e
    if _p != n:
        return None, _MALFORMED
    return v, errors.OK


def _head(out, major, v):
    if v < 24:
        out.append((major << 5) | v)
    elif v < 0x100:
        out.append((major << 5) | 24)
        out.append(v)
    elif v < 0x10000:
        out.append((major << 5) | 25)
        out.extend(v.to_bytes(2, "big"))
    elif v < 0x100000000:
        out.append((major << 5) | 26)
        out.extend(v.to_bytes(4, "big"))
    else:
        out.append((major << 5) | 27)
        out.extend(v.to_bytes(8, "big"))


def _enc(out, obj):
    if obj is None:
        out.append(0xF6)
    elif obj is True:
        out.append(0xF5)
    elif obj is False:
        out.append(0xF4)
    elif isinstance(obj, int):
        if obj >= 0:
            _head(out, 0, obj)
        else:
            _head(out, 1, -1 - obj)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _head(out, 2, len(obj))
        out.extend(obj)
    elif isinstance(obj, str):
        b = obj.encode()
        _head(out, 3, len(b))
        out.extend(b)
    elif isinstance(obj, (list, tuple)):
        _head(out, 4, len(obj))
        for x in obj:
            _enc(out, x)
    elif isinstance(obj, dict):
        _head(out, 5, len(obj))
        pairs = []
        for k in obj:
            kbuf = bytearray()
            _enc(kbuf, k)
            pairs.append((bytes(kbuf), k))
        pairs.sort()
        for kb, k in pairs:
            out.extend(kb)
            _enc(out, obj[k])
    else:
        raise TypeError("cbor: unsupported type")


def encode(obj):
    """Deterministic CBOR encoding of ``obj`` (RFC 8949 §4.2.1)."""
    out = bytearray()
    _enc(out, obj)
    return bytes(out)


def encode_into(out, obj):
    """Append the deterministic encoding of ``obj`` to the bytearray ``out``."""
    _enc(out, obj)
