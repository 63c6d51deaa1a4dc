"""kagiya.sdk.messages: every message of §9, round trips and refusals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kagiya.sdk import cbor, messages
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.messages import (
    Ack,
    Challenge,
    Command,
    CommandRequest,
    DecommissionMessage,
    ErrorReply,
    Hello,
    Info,
    LockInfo,
    LockState,
    LogFetch,
    LogReceiptMessage,
    LogReply,
    MessageType,
    Result,
    RevocationMessage,
    TimeMessage,
)

B16, B32, B64 = bytes(range(16)), bytes(range(32)), bytes(range(64))
ALL = [
    Hello(), Hello((1, 2)), Challenge(2, "KGY-0001", B16, 1_800_000_000, 9, 0, 2000),
    CommandRequest(B16, 1, Command.UNLOCK, B32), CommandRequest(B16, 2, 5, B32, b"cred"),
    Result(1, 1, 0, LockState.DOORS_LOCKED | LockState.TIME_TRUSTED, 5, 3, B16, B32),
    TimeMessage(b"ts"), RevocationMessage(b"ru"), Ack(0, 1, 2), LogFetch(B16, 3, 1, B32),
    LogFetch(B16, 3, 1, B32, b"c"),
    LogReply(4, (b"\x86\x01\x02\x03\x04\xf6\xf6",), B32, 1, B32, 0, B64, True, B32, 8, 7,
             2, B16),
    Info(), LockInfo("KGY-0001", "0.1.0", (1,), B32, B32, 5, 0, 0, 3, True),
    ErrorReply(1), ErrorReply(29, 7), DecommissionMessage(b"du"), LogReceiptMessage(b"lr"),
]


@pytest.mark.parametrize("msg", ALL, ids=lambda m: type(m).__name__)
def test_roundtrip(msg: messages.Message) -> None:
    data = messages.encode(msg)
    assert cbor.loads(data)[0] == msg.TYPE
    assert messages.decode(data) == msg


def test_every_type_has_a_class() -> None:
    assert set(messages.MESSAGE_CLASSES) == set(MessageType)
    assert {type(m) for m in ALL} == set(messages.MESSAGE_CLASSES.values())


def test_mac_body_is_the_whole_reply_without_its_mac() -> None:
    reply = ALL[11]
    assert isinstance(reply, LogReply)
    body = cbor.loads(messages.mac_body(reply))
    assert 15 not in body and body[0] == 9 and body[8] is True
    assert body[10] == 7 and body[11] == 2 and body[12] == B16
    result = ALL[5]
    assert isinstance(result, Result)
    body = cbor.loads(messages.mac_body(result))
    assert sorted(body) == [0, 1, 2, 3, 4, 5, 6, 7]  # every field but the MAC


def code_of(data: bytes) -> ErrorCode:
    with pytest.raises(ProtocolError) as e:
        messages.decode(data)
    return e.value.code


def test_refusals() -> None:
    assert code_of(cbor.dumps({0: 99})) == ErrorCode.UNKNOWN_MESSAGE
    assert code_of(cbor.dumps({1: 1})) == ErrorCode.MALFORMED
    assert code_of(cbor.dumps({0: 3, 1: B16, 2: 1, 3: 7, 4: B32})) == ErrorCode.UNKNOWN_MESSAGE
    assert code_of(cbor.dumps({0: 3, 1: B16, 2: True, 3: 1, 4: B32})) == ErrorCode.MALFORMED
    assert code_of(cbor.dumps({0: 15, 1: 1, 2: "x"})) == ErrorCode.MALFORMED
    assert code_of(cbor.dumps({0: 11, 1: "K", 2: "v", 3: [1], 4: bytes(31), 5: B32, 6: 0,
                               7: 0, 8: 0, 9: 0, 10: True})) == ErrorCode.MALFORMED
    assert code_of(b"\x00" * 3000) == ErrorCode.TOO_LARGE


def test_encode_refuses_out_of_range() -> None:
    with pytest.raises(ValueError):
        messages.encode(CommandRequest(B16, 2**32, 1, B32))
    with pytest.raises(ValueError):
        messages.encode(Challenge(2, "bad", B16, 0, 0, 0, 2000))
    with pytest.raises(ValueError):
        messages.encode(TimeMessage(bytes(2100)))


@given(st.binary(max_size=200))
@settings(max_examples=1500, deadline=None)
def test_random_bytes_only_protocol_errors(data: bytes) -> None:
    try:
        messages.decode(data)
    except ProtocolError as e:
        assert e.code in (ErrorCode.MALFORMED, ErrorCode.TOO_LARGE, ErrorCode.UNKNOWN_MESSAGE)


@given(st.sampled_from(ALL), st.dictionaries(st.integers(-5, 20),
       st.none() | st.booleans() | st.integers(-3, 2**40) | st.binary(max_size=40)
       | st.text(max_size=8) | st.lists(st.integers(0, 3), max_size=3), max_size=4))
@settings(max_examples=800, deadline=None)
def test_mutated_fields_only_protocol_errors(msg: messages.Message, patch: dict) -> None:
    obj = cbor.loads(messages.encode(msg))
    obj.update(patch)
    try:
        decoded = messages.decode(cbor.dumps(obj))
    except ProtocolError as e:
        assert e.code in (ErrorCode.MALFORMED, ErrorCode.TOO_LARGE, ErrorCode.UNKNOWN_MESSAGE)
    else:
        assert messages.decode(messages.encode(decoded)) == decoded
