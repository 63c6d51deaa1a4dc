"""Strict CBOR (RFC 8949) for the lock: a limited decoder and a deterministic encoder.

Decoder (protocol §1, §15): definite lengths only, shortest-form integers and lengths,
no duplicate map keys (keys are ints or text), no floats, no simple values other than
false/true/null, valid UTF-8, nesting depth at most 8, no trailing bytes, and no tags
except one optional tag at the top (COSE_Sign1, tag 18) when the caller asks for it -
else MALFORMED; more than ``max_size`` bytes, a text string over 64 bytes or more than
64 items in one array or map - TOO_LARGE (the same decisions as kagiya.sdk.cbor).
``decode`` never raises on bad input: it returns ``(value, code)`` with ``code`` an
error of §13 and ``value`` None on failure.

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


class CBORError(Exception):
    """Internal: raised inside the decoder, turned into a code by ``decode``."""




def _arg(buf, pos, ai, n):
    """Argument of an initial byte with additional info ``ai``; returns (value, pos)."""
    if ai < 24:
        return ai, pos
    if ai == 24:
        size = 1
        low = 24
    elif ai == 25:
        size = 2
        low = 0x100
    elif ai == 26:
        size = 4
        low = 0x10000
    elif ai == 27:
        size = 8
        low = 0x100000000
    else:  # 28..30 reserved, 31 indefinite length / break
        raise CBORError(_MALFORMED)
    end = pos + size
    if end > n:
        raise CBORError(_MALFORMED)
    v = int.from_bytes(buf[pos:end], "big")
    if v < low:  # not the shortest form
        raise CBORError(_MALFORMED)
    return v, end


def _item(buf, pos, n, depth):
    """Decode one item at ``pos``; returns (value, new_pos)."""
    if pos >= n:
        raise CBORError(_MALFORMED)
    ib = buf[pos]
    major = ib >> 5
    v, pos = _arg(buf, pos + 1, ib & 0x1F, n)
    if major == 0:
        return v, pos
    if major == 1:
        return -1 - v, pos
    if major == 2 or major == 3:
        end = pos + v
        if end > n:
            # a declared length beyond the data is a truncated (malformed) item
            raise CBORError(_MALFORMED)
        raw = bytes(buf[pos:end])
        if major == 2:
            return raw, end
        if v > MAX_TEXT:
            raise CBORError(_TOO_LARGE)
        try:
            return str(raw, "utf-8"), end
        except Exception:  # UnicodeError: invalid UTF-8
            raise CBORError(_MALFORMED)
    if major == 4 or major == 5:
        if depth >= MAX_DEPTH:
            raise CBORError(_MALFORMED)
        if v > MAX_ITEMS:  # a §15 size limit (and §7: > 64 revocation entries)
            raise CBORError(_TOO_LARGE)
        if major == 4:
            out = []
            for _ in range(v):
                x, pos = _item(buf, pos, n, depth + 1)
                out.append(x)
            return out, pos
        d = {}
        for _ in range(v):
            if pos >= n:
                raise CBORError(_MALFORMED)
            kb = buf[pos] >> 5
            if kb > 1 and kb != 3:  # keys: integers or text only
                raise CBORError(_MALFORMED)
            k, pos = _item(buf, pos, n, depth + 1)
            if k in d:
                raise CBORError(_MALFORMED)
            d[k], pos = _item(buf, pos, n, depth + 1)
        return d, pos
    if major == 6:  # tags are only allowed at the top (see decode)
        raise CBORError(_MALFORMED)
    # major 7: simple values and floats
    ai = ib & 0x1F
    if ai == 20:
        return False, pos
    if ai == 21:
        return True, pos
    if ai == 22:
        return None, pos
    raise CBORError(_MALFORMED)


def decode(data, tag=None, max_size=MAX_MESSAGE):
    """Decode exactly one item from ``data``; returns ``(value, code)``.

    ``tag``: when not None the item must be that tag (e.g. 18) wrapping the value,
    which is returned without the tag. ``code`` is 0 on success.
    """
    n = len(data)
    if n > max_size:
        return None, _TOO_LARGE
    try:
        pos = 0
        if tag is not None:
            if n == 0 or data[0] >> 5 != 6:
                return None, _MALFORMED
            t, pos = _arg(data, 1, data[0] & 0x1F, n)
            if t != tag:
                return None, _MALFORMED
        v, pos = _item(data, pos, n, 0)
        if pos != n:
            return None, _MALFORMED
        return v, errors.OK
    except CBORError as e:
        return None, e.args[0]
    except Exception:  # RecursionError or MemoryError on hostile input
        return None, _MALFORMED


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
