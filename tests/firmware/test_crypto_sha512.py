"""SHA-512 on the real MicroPython interpreter (FIPS 180-4 vectors, CPython cross-check).

Runs the port's default path (viper compression on the unix port, which has no
hashlib.sha512) and the plain-integer fallback (``KAGIYA_CRYPTO_PURE=1``).
"""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from tests.mpy import run_json

# FIPS 180-4 examples (NIST CSRC "SHA512.pdf"): "abc" (one block) and the
# 896-bit two-block message; the empty string.
KNOWN = [
    (
        b"",
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
    ),
    (
        b"abc",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    ),
    (
        b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
        b"ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
        "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
        "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909",
    ),
]

CODE = """
import sys, json
from kagiya_lock import sha512
ins = json.loads(sys.stdin.read())
out = [sha512.sha512(bytes.fromhex(x)).hex() for x in ins]
print(json.dumps({"backend": sha512.BACKEND, "out": out}))
"""


@pytest.mark.parametrize("backend", ["fast", "pure"])
def test_sha512_vectors_and_random(backend: str) -> None:
    rng = random.Random(512)  # noqa: S311  (reproducible test data)
    inputs = [m for m, _ in KNOWN]
    # boundary lengths around the 111/112-byte padding split and block multiples
    for n in (1, 55, 56, 63, 64, 110, 111, 112, 113, 127, 128, 129, 239, 240, 255, 256, 257, 1000):
        inputs.append(rng.randbytes(n))
    inputs += [rng.randbytes(rng.randrange(0, 700)) for _ in range(40)]
    env = {"KAGIYA_CRYPTO_PURE": "1"} if backend == "pure" else {}
    got = run_json(CODE, stdin=json.dumps([m.hex() for m in inputs]).encode(), env=env)
    assert got["backend"] == ("viper" if backend == "fast" else "int")
    for msg, want in KNOWN:
        assert got["out"][inputs.index(msg)] == want
    assert got["out"] == [hashlib.sha512(m).hexdigest() for m in inputs]


def test_sha512_million_a() -> None:
    """FIPS 180-4 long-message example: one million 'a' (fast path only)."""
    code = """
from kagiya_lock.sha512 import sha512
import json
print(json.dumps(sha512(b"a" * 1000000).hex()))
"""
    assert run_json(code, heap="8m") == hashlib.sha512(b"a" * 1_000_000).hexdigest()
