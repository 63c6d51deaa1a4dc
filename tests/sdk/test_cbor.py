"""kagiya.sdk.cbor: RFC 8949 §4.2.1 deterministic encoding and the strict decoder (§1, §15)."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kagiya.sdk import cbor
from kagiya.sdk.errors import ErrorCode, ProtocolError

# RFC 8949 Appendix A examples that are in the protocol's subset
RFC_EXAMPLES: list[tuple[Any, str]] = [
    (0, "00"), (1, "01"), (10, "0a"), (23, "17"), (24, "1818"), (25, "1819"), (100, "1864"),
    (1000, "1903e8"), (1000000, "1a000f4240"), (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"), (-18446744073709551616, "3bffffffffffffffff"),
    (-1, "20"), (-10, "29"), (-100, "3863"), (-1000, "3903e7"), (False, "f4"), (True, "f5"),
    (None, "f6"), (b"", "40"), (b"\x01\x02\x03\x04", "4401020304"), ("", "60"), ("a", "6161"),
    ("IETF", "6449455446"), ("\"\\", "62225c"), ("\u00fc", "62c3bc"), ("\u6c34", "63e6b0b4"),
    ([], "80"), ([1, 2, 3], "83010203"), ([1, [2, 3], [4, 5]], "8301820203820405"),
    ({}, "a0"), ({1: 2, 3: 4}, "a201020304"), ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    (["a", {"b": "c"}], "826161a161626163"),
]


@pytest.mark.parametrize(("value", "hexstr"), RFC_EXAMPLES)
def test_rfc8949_examples(value: Any, hexstr: str) -> None:
    assert cbor.dumps(value).hex() == hexstr
    assert cbor.loads(bytes.fromhex(hexstr)) == value


def test_map_keys_bytewise_not_length_first() -> None:
    # RFC 8949 §4.2.1 sorts by encoded bytes: 24 (0x1818) before -1 (0x20);
    # RFC 7049 canonical (cbor2 canonical=True) puts the shorter key -1 first.
    value = {-1: 0, 24: 0, "a": 0, 10: 0}
    ours = cbor.dumps(value)
    assert ours.hex() == "a40a00181800200061610" + "0"
    keys_in_order = [k for k in cbor2.loads(ours)]
    assert keys_in_order == [10, 24, -1, "a"]
    assert cbor2.dumps(value, canonical=True) != ours  # why we do not use cbor2's mode


def test_protocol_maps_agree_with_cbor2_decoding() -> None:
    value = {0: 3, 1: b"\x00" * 16, 2: 2**32 - 1, -65537: 7, 3: [1, "x", None, True]}
    assert cbor2.loads(cbor.dumps(value)) == value


def test_tag_18_at_top_only() -> None:
    data = cbor.dumps(cbor.Tag(18, [b"", {}, b"", b""]))
    assert data[0] == 0xD2
    assert cbor.loads(data) == cbor.Tag(18, [b"", {}, b"", b""])
    with pytest.raises(ProtocolError) as e:
        cbor.loads(cbor.dumps([cbor.Tag(18, 1)]))
    assert e.value.code == ErrorCode.MALFORMED


@pytest.mark.parametrize(("hexstr", "why"), [
    ("", "empty"),
    ("18", "truncated head"),
    ("1900", "truncated 2-byte head"),
    ("1817", "non-shortest uint"),
    ("190017", "non-shortest 2-byte uint"),
    ("1a0000ffff", "non-shortest 4-byte uint"),
    ("1b00000000ffffffff", "non-shortest 8-byte uint"),
    ("3817", "non-shortest negative"),
    ("5801ff", "non-shortest byte string length"),
    ("62c3", "truncated text"),
    ("62c328", "invalid UTF-8"),
    ("5f41ff", "indefinite byte string"),
    ("9fff", "indefinite array"),
    ("bfff", "indefinite map"),
    ("ff", "break outside indefinite"),
    ("1c", "reserved additional info 28"),
    ("f93c00", "half float"),
    ("fa3f800000", "single float"),
    ("fb3ff0000000000000", "double float"),
    ("f7", "undefined"),
    ("f0", "simple value 16"),
    ("f820", "two-byte simple value"),
    ("c11a514b67b0", "tag 1 at top"),
    ("d1a0", "tag 17 at top"),
    ("d83d00", "tag 61 at top"),
    ("d818d81800", "nested tags"),
    ("a20101" + "0102", "duplicate key"),
    ("a1410100", "byte-string map key"),
    ("a1800000", "array map key"),
    ("a1f400", "bool map key"),
    ("0000", "trailing bytes"),
    ("830102", "array shorter than declared"),
    ("81" * 9 + "00", "nesting 9 deep"),
])
def test_malformed(hexstr: str, why: str) -> None:
    with pytest.raises(ProtocolError) as e:
        cbor.loads(bytes.fromhex(hexstr))
    assert e.value.code == ErrorCode.MALFORMED, why


def test_nesting_limit_is_8() -> None:
    assert cbor.loads(bytes.fromhex("81" * 8 + "00")) == [[[[[[[[0]]]]]]]]


def test_too_large_total_text_and_items() -> None:
    for data in (bytes(2049), cbor.dumps(bytes(2100))):
        with pytest.raises(ProtocolError) as e:
            cbor.loads(data)
        assert e.value.code == ErrorCode.TOO_LARGE
    assert cbor.loads(cbor.dumps("x" * 64)) == "x" * 64
    with pytest.raises(ProtocolError) as e:
        cbor.loads(cbor.dumps("x" * 65))
    assert e.value.code == ErrorCode.TOO_LARGE
    assert cbor.loads(cbor.dumps(list(range(64)))) == list(range(64))
    with pytest.raises(ProtocolError) as e:
        cbor.loads(cbor.dumps(list(range(65))))
    assert e.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(ProtocolError) as e:
        cbor.loads(cbor.dumps(bytes(20)), max_size=10)
    assert e.value.code == ErrorCode.TOO_LARGE


def test_out_of_order_keys_are_accepted() -> None:
    assert cbor.loads(bytes.fromhex("a203040102")) == {1: 2, 3: 4}


def test_encoder_refuses_unsupported() -> None:
    with pytest.raises(TypeError):
        cbor.dumps(1.5)
    with pytest.raises(ValueError):
        cbor.dumps(2**64)
    with pytest.raises(ValueError):
        cbor.dumps(-(2**64) - 1)


# ---------------------------------------------------------------- property tests

scalars = (st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1)
           | st.binary(max_size=40) | st.text(max_size=20).filter(lambda s: len(s.encode()) <= 64))
keys = st.integers(-(2**64), 2**64 - 1) | st.text(max_size=10)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(keys, inner, max_size=5), max_leaves=20)


@given(values)
@settings(max_examples=300, deadline=None)
def test_roundtrip_and_cbor2_agree(value: Any) -> None:
    data = cbor.dumps(value)
    if len(data) <= 2048:
        assert cbor.loads(data) == value
    assert cbor2.loads(data) == value
    assert cbor.dumps(cbor2.loads(data)) == data  # re-encoding is stable


@given(st.binary(max_size=300))
@settings(max_examples=2000, deadline=None)
def test_random_bytes_only_protocol_errors(data: bytes) -> None:
    try:
        value = cbor.loads(data)
    except ProtocolError as e:
        assert e.code in (ErrorCode.MALFORMED, ErrorCode.TOO_LARGE)
    else:
        # whatever is accepted is deterministic unless map keys were out of order
        assert cbor.loads(cbor.dumps(value)) == value


@given(values, st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_encodings_only_protocol_errors(value: Any, data: st.DataObject) -> None:
    raw = bytearray(cbor.dumps(value))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.integers(0, 2))
        pos = data.draw(st.integers(0, len(raw)))
        if op == 0 and pos < len(raw):
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == 1:
            raw.insert(pos, data.draw(st.integers(0, 255)))
        elif pos < len(raw):
            del raw[pos]
    try:
        cbor.loads(bytes(raw))
    except ProtocolError:
        pass


@given(st.integers(1, 3000))
@settings(max_examples=50, deadline=None)
def test_deep_nesting_is_refused_not_recursion_error(depth: int) -> None:
    for opener in (b"\x81", b"\xa1\x00", b"\x9f"):
        data = opener * depth + b"\x00"
        try:
            cbor.loads(data, max_size=10_000)
        except ProtocolError as e:
            assert e.code in (ErrorCode.MALFORMED, ErrorCode.TOO_LARGE)
