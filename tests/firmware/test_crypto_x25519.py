"""X25519 (RFC 7748) on the real MicroPython interpreter, both back ends."""

from __future__ import annotations

import json
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.mpy import run_json

# RFC 7748 §5.2: (scalar, u, output)
VECTORS_5_2 = [
    (
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
    ),
]
# RFC 7748 §5.2 iterated test: k = u = 9, then (k, u) <- (x25519(k, u), k)
ITER_1 = "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
ITER_1000 = "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"
# RFC 7748 §6.1
ALICE_PRIV = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PUB = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB_PRIV = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
BOB_PUB = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"


@pytest.fixture(params=["fast", "v32", "field", "pure"])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    return {
        "fast": {},
        "v32": {"KAGIYA_CRYPTO_PURE": "v32"},
        "field": {"KAGIYA_CRYPTO_PURE": "field"},
        "pure": {"KAGIYA_CRYPTO_PURE": "1"},
    }[str(request.param)]


def test_rfc7748_vectors_and_dh(env: dict[str, str]) -> None:
    code = """
import sys, json
from kagiya_lock.x25519 import x25519, public_key
from kagiya_lock import x25519 as mod, _fe_select
d = json.loads(sys.stdin.read())
h = bytes.fromhex
out = {"v": [x25519(h(k), h(u)).hex() for k, u in d["v"]],
       "path": mod._be.__name__.split(".")[-1] + ("" if _fe_select.WIDE else "/32"),
       "apub": public_key(h(d["a"])).hex(), "bpub": public_key(h(d["b"])).hex()}
out["ab"] = x25519(h(d["a"]), bytes.fromhex(out["bpub"])).hex()
out["ba"] = x25519(h(d["b"]), bytes.fromhex(out["apub"])).hex()
print(json.dumps(out))
"""
    data = {"v": [[k, u] for k, u, _ in VECTORS_5_2], "a": ALICE_PRIV, "b": BOB_PRIV}
    got = run_json(code, stdin=json.dumps(data).encode(), env=env)
    want_path = {"": "_fe_viper", "v32": "_fe_viper/32"}.get(env.get("KAGIYA_CRYPTO_PURE", ""))
    assert got["path"] == (want_path or "_fe_int")
    assert got["v"] == [o for _, _, o in VECTORS_5_2]
    assert got["apub"] == ALICE_PUB
    assert got["bpub"] == BOB_PUB
    assert got["ab"] == SHARED
    assert got["ba"] == SHARED


def test_rfc7748_iterated_1000(env: dict[str, str]) -> None:
    code = """
import json
from kagiya_lock.x25519 import x25519
k = u = b"\\x09" + bytes(31)
out = []
for i in range(1000):
    k, u = x25519(k, u), k
    if i == 0:
        out.append(k.hex())
out.append(k.hex())
print(json.dumps(out))
"""
    assert run_json(code, env=env) == [ITER_1, ITER_1000]


def test_random_cross_check_with_cryptography(env: dict[str, str]) -> None:
    """Random scalars and u values (top bit set, non-canonical u >= p included)."""
    rng = random.Random(7748)  # noqa: S311  (reproducible test data)
    cases = []
    for i in range(40):
        k = rng.randbytes(32)
        if i % 4 == 0:
            u = (
                X25519PrivateKey.generate()
                .public_key()
                .public_bytes(Encoding.Raw, PublicFormat.Raw)
            )
        elif i % 4 == 1:
            u = rng.randbytes(32)  # top bit random: must be masked
        elif i % 4 == 2:
            u = (2**255 - 19 + rng.randrange(19)).to_bytes(32, "little")  # non-canonical
        else:
            u = bytes(32) if i == 3 else (1).to_bytes(32, "little")  # low-order points
        cases.append((k, u))
    code = """
import sys, json
from kagiya_lock.x25519 import x25519, public_key
d = json.loads(sys.stdin.read())
h = bytes.fromhex
print(json.dumps([[x25519(h(k), h(u)).hex(), public_key(h(k)).hex()] for k, u in d]))
"""
    got = run_json(code, stdin=json.dumps([[k.hex(), u.hex()] for k, u in cases]).encode(), env=env)
    for (k, u), (shared, pub) in zip(cases, got, strict=True):
        priv = X25519PrivateKey.from_private_bytes(k)
        assert pub == priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        try:
            want = priv.exchange(X25519PublicKey.from_public_bytes(u)).hex()
        except ValueError:  # OpenSSL refuses an all-zero result; the lock checks that itself
            want = "00" * 32
        assert shared == want


def test_wrong_lengths_raise_value_error(env: dict[str, str]) -> None:
    code = """
import json
from kagiya_lock.x25519 import x25519
out = []
for k, u in ((bytes(31), bytes(32)), (bytes(32), bytes(33)), (b"", b"")):
    try:
        x25519(k, u)
        out.append("ok")
    except ValueError:
        out.append("ValueError")
print(json.dumps(out))
"""
    assert run_json(code, env=env) == ["ValueError"] * 3
