"""Fuzzing the lock's message handler on the real MicroPython.

Hypothesis generates random bytes, CBOR structures shaped like messages, mutations of
valid frames (bit flips, truncation, insertion, splicing) and hostile CBOR (deep nesting,
huge declared lengths, many items). Everything goes through ``Lock.handle`` in ONE
long-lived micropython process. Every reply must be a well-formed protocol message, never
``INTERNAL`` (no uncaught failure inside), and a valid unlock still works afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kagiya.sdk.protocol import ErrorCode

from tests.firmware import peer
from tests.firmware.harness import NOW, Bench

REPLY_TYPES = {2, 4, 7, 9, 11, 15}
KNOWN_CODES = {int(c) for c in ErrorCode}  # the §13 table (it grew past 36: WRONG_OPERATOR ...)
FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzz_bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bench, list]]:
    b = Bench(Path(tmp_path_factory.mktemp("fuzz")) / "state")
    key = b.key()
    ch = b.hello()
    nonce = ch[3]
    corpus = [
        peer.hello(),
        peer.enc({0: 10}),
        peer.command(key, nonce, b.lock_id, 1, 1, with_credential=True),
        peer.command(key, nonce, b.lock_id, 2, 2),
        peer.log_fetch(key, nonce, b.lock_id, 3, 0),
        peer.enc({0: 5, 1: peer.time_statement(b.issuer, NOW)}),
        peer.enc({0: 6, 1: peer.revocation(b.issuer, b.lock_id, 1, [(key.cti, NOW + 9)])}),
    ]
    yield b, corpus
    b.close()


def _check(b: Bench, message: bytes) -> dict:
    raw = b.lock.raw(message)
    reply = cbor2.loads(raw)
    assert isinstance(reply, dict) and reply.get(0) in REPLY_TYPES, reply
    assert len(raw) <= 2048
    if reply[0] == 15:
        assert reply[1] in KNOWN_CODES and reply[1] != 63, reply
    return reply


cbor_leaf = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64 - 1), st.binary(max_size=80),
    st.text(max_size=70), st.booleans(), st.none())
cbor_tree = st.recursive(
    cbor_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=70),
        st.dictionaries(st.one_of(st.integers(-70000, 70000), st.text(max_size=4)),
                        children, max_size=10)),
    max_leaves=60)
message_like = st.builds(
    lambda t, fields: {0: t, **fields},
    st.integers(min_value=0, max_value=16),
    st.dictionaries(st.integers(min_value=1, max_value=16), cbor_tree, max_size=6))


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes(fuzz_bench: tuple[Bench, list], data: bytes) -> None:
    _check(fuzz_bench[0], data)


@FUZZ
@given(m=message_like)
def test_message_shaped_cbor(fuzz_bench: tuple[Bench, list], m: dict) -> None:
    _check(fuzz_bench[0], cbor2.dumps(m))


@FUZZ
@given(st.data())
def test_mutated_valid_frames(fuzz_bench: tuple[Bench, list], data: st.DataObject) -> None:
    b, corpus = fuzz_bench
    msg = bytearray(data.draw(st.sampled_from(corpus)))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete", "splice"]))
        pos = data.draw(st.integers(0, max(len(msg) - 1, 0)))
        if op == "flip" and msg:
            msg[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "truncate":
            del msg[pos:]
        elif op == "insert":
            msg[pos:pos] = data.draw(st.binary(min_size=1, max_size=9))
        elif op == "delete":
            del msg[pos:pos + data.draw(st.integers(1, 9))]
        else:
            other = data.draw(st.sampled_from(corpus))
            msg[pos:] = other[data.draw(st.integers(0, len(other) - 1)):]
    _check(b, bytes(msg))


@FUZZ
@given(kind=st.sampled_from(["deep_array", "deep_map", "big_len", "many", "long_text"]),
       n=st.integers(min_value=8, max_value=5000))
def test_hostile_cbor(fuzz_bench: tuple[Bench, list], kind: str, n: int) -> None:
    b = fuzz_bench[0]
    if kind == "deep_array":
        m = b"\xa2\x00\x01\x01" + b"\x81" * n + b"\x01"
    elif kind == "deep_map":
        m = b"\xa1\x00" + b"\xa1\x01" * n + b"\x01"
    elif kind == "big_len":
        m = b"\xa2\x00\x03\x05" + bytes([0x5A]) + n.to_bytes(4, "big") * 1 + b"\x00" * 8
    elif kind == "many":
        m = b"\xa2\x00\x01\x01\x99" + n.to_bytes(2, "big") + b"\x01" * min(n, 2000)
    else:
        m = b"\xa2\x00\x03\x01\x79" + n.to_bytes(2, "big") + b"a" * min(n, 2000)
    r = _check(b, m)
    assert r[0] == 15 and r[1] in (1, 2)


def test_lock_still_works_after_fuzzing(fuzz_bench: tuple[Bench, list]) -> None:
    b, _ = fuzz_bench
    b.lock.advance(61)  # leave any rate-limit block behind
    b.lock.call("disconnect", conn=1)
    key = b.key()
    nonce = b.hello()[3]
    r = b.command(key, 1, nonce=nonce, with_credential=True)
    assert r[0] == 4 and r[3] == 0
    assert b.lock.relays()["doors_locked"] is False
    assert b.lock.send(peer.enc({0: 10}))[10] is True
