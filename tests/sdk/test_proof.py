"""kagiya.sdk.proof: command proofs and reply MACs (§8)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from kagiya.sdk import proof
from kagiya.sdk.errors import ErrorCode, ProtocolError

K, NONCE, CTI, LID = bytes(range(32)), bytes(16), bytes([7]) * 16, "KGY-0001"


def test_command_proof_layout() -> None:
    msg = (b"KGY2-CMD" + NONCE + b"\x08KGY-0001" + CTI + b"\x10" + (5).to_bytes(4, "big")
           + (300).to_bytes(4, "big"))
    want = hmac.new(K, msg, hashlib.sha256).digest()
    assert proof.command_proof(K, NONCE, LID, CTI, 16, 5, 300) == want
    assert proof.verify_command_proof(K, NONCE, LID, CTI, 16, 5, 300, want)
    assert not proof.verify_command_proof(K, NONCE, LID, CTI, 16, 5, 301, want)
    assert not proof.verify_command_proof(K, NONCE, LID, CTI, 16, 5, 300, want[:31])


def test_reply_mac_layout() -> None:
    body = b"\xa1\x00\x09"
    msg = (b"KGY2-RES" + NONCE + b"\x08KGY-0001" + CTI + b"\x01" + (9).to_bytes(4, "big")
           + (27).to_bytes(2, "big") + hashlib.sha256(body).digest())
    want = hmac.new(K, msg, hashlib.sha256).digest()
    assert proof.reply_mac(K, NONCE, LID, CTI, 1, 9, 27, body) == want
    assert proof.verify_reply_mac(K, NONCE, LID, CTI, 1, 9, 27, body, want)
    assert not proof.verify_reply_mac(K, NONCE, LID, CTI, 1, 9, 0, body, want)
    assert not proof.verify_reply_mac(K, NONCE, LID, CTI, 1, 9, 27, body + b"\x00", want)
    assert proof.reply_mac(K, NONCE, LID, CTI, 1, 9, 0, b"") == proof.reply_mac(
        K, NONCE, LID.encode(), CTI, 1, 9, 0, b"")


@pytest.mark.parametrize("args", [
    (K, bytes(15), LID, CTI, 1, 1, 0), (K, NONCE, LID, bytes(17), 1, 1, 0),
    (K, NONCE, LID, CTI, 256, 1, 0), (K, NONCE, LID, CTI, 1, 2**32, 0),
    (K, NONCE, LID, CTI, 1, -1, 0), (K, NONCE, "x" * 256, CTI, 1, 1, 0),
])
def test_bad_inputs_are_programming_errors(args: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        proof.command_proof(*args)


def test_replay_guard() -> None:
    g = proof.ReplayGuard()
    with pytest.raises(ProtocolError) as e:
        g.check(0)
    assert e.value.code == ErrorCode.REPLAYED
    g.check(1)
    g.accept(1)
    for c in (0, 1):
        with pytest.raises(ProtocolError):
            g.check(c)
    g.check(5)
