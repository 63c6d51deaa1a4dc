"""kagiya.sdk.framing: fragmentation and reassembly (§10)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.framing import Reassembler, fragment


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def code_of(r: Reassembler, frag: bytes) -> ErrorCode:
    with pytest.raises(ProtocolError) as e:
        r.feed(frag)
    return e.value.code


def test_fragment_shapes() -> None:
    assert fragment(b"\x01" * 17, 23) == [b"\x80\x00\x11" + b"\x01" * 17]
    frs = fragment(b"\x01" * 18, 23)
    assert frs == [b"\x80\x00\x12" + b"\x01" * 17, b"\x01\x01"]
    frs = fragment(bytes(2048), 23)
    assert len(frs) == 108 and frs[-1][0] == 107 and all(len(f) <= 20 for f in frs)
    for bad in ((b"", 23), (bytes(2049), 23), (b"x", 22), (b"x", 518)):
        with pytest.raises(ValueError):
            fragment(*bad)


def test_timeout_drops_partial() -> None:
    clock = FakeClock()
    r = Reassembler(clock=clock)
    frs = fragment(bytes(range(40)), 23)
    assert r.feed(frs[0]) is None
    clock.t += 2.0
    assert r.feed(frs[1]) is None  # exactly 2 s is still in time
    clock.t += 2.01
    assert code_of(r, frs[2]) == ErrorCode.FRAMING  # partial was dropped
    assert not r.in_progress
    assert [r.feed(f) for f in frs][-1] == bytes(range(40))


def test_first_fragment_restarts() -> None:
    r = Reassembler()
    a, b = fragment(bytes(30), 23), fragment(b"hello", 23)
    assert r.feed(a[0]) is None
    assert r.feed(b[0]) == b"hello"
    assert code_of(r, a[1]) == ErrorCode.FRAMING


def test_usable_after_errors() -> None:
    r = Reassembler()
    assert code_of(r, b"\x05abc") == ErrorCode.FRAMING
    assert code_of(r, b"\x80\x10\x00") == ErrorCode.TOO_LARGE
    frs = fragment(b"message", 23)
    assert r.feed(frs[0]) == b"message"
    r2 = Reassembler(max_size=10)
    assert code_of(r2, b"\x80\x00\x0b") == ErrorCode.TOO_LARGE
    assert r2.feed(b"\x80\x00\x02" + b"x") is None
    assert r2.feed(b"\x01y") == b"xy"


@given(st.binary(min_size=1, max_size=2048), st.integers(23, 517))
@settings(max_examples=200, deadline=None)
def test_roundtrip(message: bytes, mtu: int) -> None:
    r = Reassembler()
    frs = fragment(message, mtu)
    assert all(len(f) <= mtu - 3 for f in frs)
    out = [r.feed(f) for f in frs]
    assert out[-1] == message and all(o is None for o in out[:-1])


@given(st.lists(st.binary(max_size=30), max_size=30))
@settings(max_examples=500, deadline=None)
def test_random_fragments_only_protocol_errors(frags: list[bytes]) -> None:
    r = Reassembler()
    for f in frags:
        try:
            out = r.feed(f)
        except ProtocolError as e:
            assert e.code in (ErrorCode.FRAMING, ErrorCode.TOO_LARGE)
            assert not r.in_progress
        else:
            assert out is None or 1 <= len(out) <= 2048
