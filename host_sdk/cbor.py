"""Deterministic CBOR encoder and strict decoder (RFC 8949; docs/protocol.md §1, §15).

The encoder follows RFC 8949 §4.2.1 "core deterministic encoding": shortest-form heads,
definite lengths, and map keys sorted by the *bytewise lexicographic order of their
encodings* (not the length-first order of RFC 7049 §3.9 that ``cbor2``'s ``canonical`` mode
uses). The decoder accepts only what protocol v1 allows and refuses everything else with a
:class:`~kagiya.sdk.errors.ProtocolError`:

* ``MALFORMED``: truncation, trailing bytes, indefinite lengths, non-shortest heads, floats,
  simple values other than false/true/null, any tag except one tag 18 at the top, map keys
  that are not integers or text, duplicate keys, invalid UTF-8, nesting deeper than 8;
* ``TOO_LARGE``: more than ``max_size`` bytes in total, a text string over 64 bytes, or more
  than 64 items in one array or map (§13: "a size limit of §15 exceeded"; §7 requires
  TOO_LARGE for a revocation list over 64 entries).

Map keys out of order are accepted (§1 "MAY"); signatures always cover the bytes as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ErrorCode, ProtocolError
from .protocol import MAX_DEPTH, MAX_ITEMS, MAX_MESSAGE, MAX_TEXT, TAG_SIGN1

TAG_COSE_SIGN1 = TAG_SIGN1

_UINT64_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class Tag:
    """A CBOR tag (major type 6) around ``value``; v1 only uses tag 18 (COSE_Sign1)."""

    tag: int
    value: Any


# --------------------------------------------------------------------------- encoder


def _head(out: bytearray, major: int, n: int) -> None:
    if n < 0 or n > _UINT64_MAX:
        raise ValueError(f"CBOR argument out of range: {n}")
    mt = major << 5
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out += bytes((mt | 24, n))
    elif n < 0x10000:
        out.append(mt | 25)
        out += n.to_bytes(2, "big")
    elif n < 0x100000000:
        out.append(mt | 26)
        out += n.to_bytes(4, "big")
    else:
        out.append(mt | 27)
        out += n.to_bytes(8, "big")


def _encode(out: bytearray, obj: Any) -> None:
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
    elif isinstance(obj, bytes | bytearray | memoryview):
        raw = bytes(obj)
        _head(out, 2, len(raw))
        out += raw
    elif isinstance(obj, str):
        raw = obj.encode("utf-8")
        _head(out, 3, len(raw))
        out += raw
    elif isinstance(obj, list | tuple):
        _head(out, 4, len(obj))
        for item in obj:
            _encode(out, item)
    elif isinstance(obj, dict):
        pairs = []
        for key, value in obj.items():
            kb = bytearray()
            _encode(kb, key)
            pairs.append((bytes(kb), value))
        pairs.sort(key=lambda p: p[0])
        for i in range(1, len(pairs)):
            if pairs[i][0] == pairs[i - 1][0]:
                raise ValueError("duplicate map key after encoding")
        _head(out, 5, len(pairs))
        for kbytes, value in pairs:
            out += kbytes
            _encode(out, value)
    elif isinstance(obj, Tag) or type(obj).__name__ == "CBORTag":
        _head(out, 6, obj.tag)
        _encode(out, obj.value)
    else:
        raise TypeError(f"cannot CBOR-encode {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` with RFC 8949 §4.2.1 deterministic encoding.

    Supports None, bool, int (64-bit range), bytes, str, list/tuple, dict and :class:`Tag`.
    Raises TypeError/ValueError for anything else (a programming error, not bad input).
    """
    out = bytearray()
    _encode(out, obj)
    return bytes(out)


# --------------------------------------------------------------------------- decoder

_MIN_FOR_AI = {24: 24, 25: 0x100, 26: 0x10000, 27: 0x100000000}
_SIZE_FOR_AI = {24: 1, 25: 2, 26: 4, 27: 8}


class _Decoder:
    __slots__ = ("data", "max_text", "n", "pos")

    def __init__(self, data: bytes, max_text: int) -> None:
        self.data = data
        self.n = len(data)
        self.pos = 0
        self.max_text = max_text

    def fail(self, detail: str) -> ProtocolError:
        return ProtocolError(ErrorCode.MALFORMED, f"CBOR at offset {self.pos}: {detail}")

    def head(self) -> tuple[int, int, int]:
        """Read an initial byte and its argument; returns (major, additional info, arg)."""
        if self.pos >= self.n:
            raise self.fail("truncated")
        ib = self.data[self.pos]
        self.pos += 1
        major, ai = ib >> 5, ib & 0x1F
        if major == 7:
            return major, ai, 0  # the caller decides about simple values and floats
        if ai < 24:
            return major, ai, ai
        if ai > 27:
            raise self.fail("indefinite length or reserved additional information")
        size = _SIZE_FOR_AI[ai]
        end = self.pos + size
        if end > self.n:
            raise self.fail("truncated head")
        arg = int.from_bytes(self.data[self.pos : end], "big")
        if arg < _MIN_FOR_AI[ai]:
            raise self.fail("non-shortest integer or length")
        self.pos = end
        return major, ai, arg

    def item(self, depth: int) -> Any:
        major, ai, arg = self.head()
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major in (2, 3):
            end = self.pos + arg
            if end > self.n:
                raise self.fail("truncated string")
            raw = self.data[self.pos : end]
            if major == 2:
                self.pos = end
                return raw
            if arg > self.max_text:
                raise ProtocolError(ErrorCode.TOO_LARGE, f"text string of {arg} bytes")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise self.fail("invalid UTF-8") from None
            self.pos = end
            return text
        if major in (4, 5):
            if depth >= MAX_DEPTH:
                raise self.fail("nesting too deep")
            if arg > MAX_ITEMS:
                raise ProtocolError(ErrorCode.TOO_LARGE, f"{arg} items in one container")
            if major == 4:
                return [self.item(depth + 1) for _ in range(arg)]
            result: dict[Any, Any] = {}
            for _ in range(arg):
                if self.pos >= self.n:
                    raise self.fail("truncated map")
                if self.data[self.pos] >> 5 not in (0, 1, 3):
                    raise self.fail("map key is not an integer or text")
                key = self.item(depth + 1)
                if key in result:
                    raise self.fail("duplicate map key")
                result[key] = self.item(depth + 1)
            return result
        if major == 6:
            raise self.fail("tag not allowed here")
        # major 7
        if ai == 20:
            return False
        if ai == 21:
            return True
        if ai == 22:
            return None
        raise self.fail("float or simple value not allowed")


def loads(data: bytes | bytearray | memoryview, *, max_size: int = MAX_MESSAGE,
          max_text: int = MAX_TEXT) -> Any:
    """Decode exactly one CBOR item, strictly (§1, §15).

    A single tag 18 (COSE_Sign1) is allowed around the top item and returned as
    :class:`Tag`; no other tag is accepted anywhere. Raises ProtocolError(MALFORMED or
    TOO_LARGE) on any violation; never any other exception for bad bytes.
    """
    raw = bytes(data)
    if len(raw) > max_size:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"{len(raw)} bytes > {max_size}")
    dec = _Decoder(raw, max_text)
    if raw and raw[0] >> 5 == 6:
        _, _, tag = dec.head()
        if tag != TAG_COSE_SIGN1:
            raise ProtocolError(ErrorCode.MALFORMED, f"CBOR tag {tag} not allowed")
        value: Any = Tag(tag, dec.item(0))
    else:
        value = dec.item(0)
    if dec.pos != dec.n:
        raise ProtocolError(ErrorCode.MALFORMED, f"{dec.n - dec.pos} trailing bytes")
    return value
