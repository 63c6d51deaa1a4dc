"""AES-CCM (RFC 3610) under MicroPython: RFC packet vectors, cryptography cross-check, tampering."""

from __future__ import annotations

import json
import random

from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from tests.mpy import run_json

# RFC 3610 §8 packet vectors #1, #2, #3 (M = 8) and #7 (M = 10): key, nonce, packet
# (first `aad_len` bytes are the cleartext header), aad_len, tag_len, expected output
# (header || ciphertext || tag).
KEY = "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
RFC3610 = [
    (
        "00000003020100a0a1a2a3a4a5",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
        8,
        8,
        "0001020304050607588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0",
    ),
    (
        "00000004030201a0a1a2a3a4a5",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        8,
        8,
        "000102030405060772c91a36e135f8cf291ca894085c87e3cc15c439c9e43a3ba091d56e10400916",
    ),
    (
        "00000005040302a0a1a2a3a4a5",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
        8,
        8,
        "000102030405060751b1e5f44a197d1da46b0f8e2d282ae871e838bb64da8596574adaa76fbd9fb0c5",
    ),
    (
        "00000009080706a0a1a2a3a4a5",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
        8,
        10,
        "00010203040506070135d1b2c95f41d5d1d4fec185d166b8094e999dfed96c048c56602c97acbb7490",
    ),
]

CODE = """
import sys, json
from kagiya_lock import aesccm
h = bytes.fromhex
out = []
for k, n, p, a, t in json.loads(sys.stdin.read()):
    c = aesccm.encrypt(h(k), h(n), h(p), h(a), t)
    back = aesccm.decrypt(h(k), h(n), c, h(a), t)
    out.append([c.hex(), None if back is None else back.hex()])
print(json.dumps(out))
"""


def _run(cases: list[tuple[bytes, bytes, bytes, bytes, int]]) -> list[list[str | None]]:
    payload = json.dumps([[k.hex(), n.hex(), p.hex(), a.hex(), t] for k, n, p, a, t in cases])
    return list(run_json(CODE, stdin=payload.encode()))


def test_rfc3610_packet_vectors() -> None:
    cases = []
    for nonce, packet, alen, tlen, _ in RFC3610:
        pkt = bytes.fromhex(packet)
        cases.append((bytes.fromhex(KEY), bytes.fromhex(nonce), pkt[alen:], pkt[:alen], tlen))
    got = _run(cases)
    for (_, packet, alen, _, want), (c, back) in zip(RFC3610, got, strict=True):
        assert c is not None
        assert packet[: 2 * alen] + c == want
        assert back == packet[2 * alen :]


def test_cross_check_with_cryptography_13_byte_nonce() -> None:
    rng = random.Random(3610)  # noqa: S311  (reproducible test data)
    cases = []
    for i in range(40):
        key = rng.randbytes(16 if i % 2 else 32)
        nonce = rng.randbytes(13)
        pt = rng.randbytes(rng.choice([0, 1, 15, 16, 17, 48, 100, 300]))
        aad = rng.randbytes(rng.choice([0, 1, 14, 16, 40, 300]))
        cases.append((key, nonce, pt, aad, 16))
    got = _run(cases)
    for (key, nonce, pt, aad, _), (c, back) in zip(cases, got, strict=True):
        assert c == AESCCM(key, tag_length=16).encrypt(nonce, pt, aad).hex()
        assert back == pt.hex()


def test_tampering_gives_none() -> None:
    rng = random.Random(30)  # noqa: S311  (reproducible test data)
    key, nonce = rng.randbytes(16), rng.randbytes(13)
    pt, aad = rng.randbytes(48), rng.randbytes(20)
    ct = AESCCM(key, tag_length=16).encrypt(nonce, pt, aad)
    variants = [ct]
    for pos in (0, 10, 47, 48, 55, 63):  # ciphertext bytes and tag bytes
        b = bytearray(ct)
        b[pos] ^= 0x01
        variants.append(bytes(b))
    code = """
import sys, json
from kagiya_lock import aesccm
d = json.loads(sys.stdin.read())
h = bytes.fromhex
k, n, a = h(d["k"]), h(d["n"]), h(d["a"])
out = []
for c in d["c"]:
    r = aesccm.decrypt(k, n, h(c), a)
    out.append(None if r is None else r.hex())
out.append(aesccm.decrypt(k, n, h(d["c"][0]), a + b"x"))  # wrong AAD
n2 = bytes(n[:-1]) + bytes([n[-1] ^ 1])
out.append(aesccm.decrypt(k, n2, h(d["c"][0]), a))  # wrong nonce
out.append(aesccm.decrypt(k, n, h(d["c"][0])[:15], a))  # shorter than the tag
out.append(aesccm.decrypt(bytes(16), n, h(d["c"][0]), a))  # wrong key
print(json.dumps(out))
"""
    payload = json.dumps(
        {"k": key.hex(), "n": nonce.hex(), "a": aad.hex(), "c": [v.hex() for v in variants]}
    )
    got = run_json(code, stdin=payload.encode())
    assert got[0] == pt.hex()
    assert got[1:] == [None] * (len(got) - 1)


def test_bad_parameters_raise_value_error() -> None:
    code = """
import json
from kagiya_lock import aesccm
out = []
for k, n, t in ((bytes(15), bytes(13), 16), (bytes(16), bytes(6), 16), (bytes(16), bytes(14), 16),
                (bytes(16), bytes(13), 5), (bytes(16), bytes(13), 18)):
    try:
        aesccm.encrypt(k, n, b"x", b"", t)
        out.append("ok")
    except ValueError:
        out.append("ValueError")
print(json.dumps(out))
"""
    assert run_json(code) == ["ValueError"] * 5
