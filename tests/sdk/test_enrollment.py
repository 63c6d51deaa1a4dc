"""The phone's device-key proofs to the key server (kagiya.sdk.enrollment, docs/server.md)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kagiya.sdk.enrollment import auth_message, enroll_message

PUB = bytes(range(32))


def test_enroll_message_is_label_code_key() -> None:
    assert enroll_message("ABCD-EFGH-2345", PUB) == b"KGY1-ENROLL" + b"ABCD-EFGH-2345" + PUB


def test_auth_message_is_label_phone_id_u64be() -> None:
    assert auth_message("ph_0a1b", 1_800_000_000) == (
        b"KGY1-PHONE" + b"ph_0a1b" + bytes.fromhex("000000006b49d200"))
    assert auth_message("ph_1", 0).endswith(bytes(8))
    assert auth_message("ph_1", (1 << 64) - 1).endswith(b"\xff" * 8)


@pytest.mark.parametrize(("code", "pub"), [
    ("ABCD-EFGH-2345", PUB[:31]),            # not a raw Ed25519 key
    ("ABCD-EFGH-2345", PUB + b"\0"),
    ("ÄBCD-EFGH-2345", PUB),                  # not ASCII
    ("ABCD EFGH 2345", PUB),                  # spaces
    ("", PUB),
])
def test_enroll_message_refuses_what_the_server_cannot_verify(code: str, pub: bytes) -> None:
    with pytest.raises(ValueError):
        enroll_message(code, pub)


@pytest.mark.parametrize(("phone_id", "ts"), [
    ("ph_1", -1), ("ph_1", 1 << 64), ("ph_1", True), ("ph_1", 1.5), ("", 1), ("ph_é", 1),
])
def test_auth_message_refuses_bad_input(phone_id: str, ts: int) -> None:
    with pytest.raises(ValueError):
        auth_message(phone_id, ts)


def test_the_key_server_verifies_what_a_phone_signs() -> None:
    """One format on both sides: the server's check accepts the SDK's messages and refuses
    the same signature over another code, key, phone or time."""
    server = pytest.importorskip("kagiya.server.enrollment")
    device = Ed25519PrivateKey.generate()
    pub = device.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    sig = device.sign(enroll_message("ABCD-EFGH-2345", pub))
    assert server.verify(pub, sig, server.enroll_message("ABCD-EFGH-2345", pub))
    assert not server.verify(pub, sig, server.enroll_message("ABCD-EFGH-2346", pub))
    sig = device.sign(auth_message("ph_0a1b", 1_800_000_000))
    assert server.verify(pub, sig, server.auth_message("ph_0a1b", 1_800_000_000))
    assert not server.verify(pub, sig, server.auth_message("ph_0a1b", 1_800_000_001))
