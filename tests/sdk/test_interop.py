"""Independent interop: a third-party COSE library reads Kagiya keys (docs/protocol.md §3, §4).

* The issuer signature (COSE_Sign1, EdDSA) is verified by **pycose** with the issuer's
  public key.
* The ``cnf`` Encrypted_COSE_Key: pycose 1.1 parses the COSE_Encrypt, its recipient and
  headers, builds the COSE_KDF_Context and performs the AES-CCM-16-128-128 decryption with
  its own Enc_structure. pycose 1.1 cannot do ECDH with OKP (X25519) keys (its
  DirectKeyAgreement accepts only EC2 keys), so the key agreement is checked with a
  **second independent implementation**: the RFC 7748 Montgomery ladder and RFC 5869 HKDF
  written below in plain Python (the SDK uses OpenSSL through ``cryptography``).
* pycose 1.1 with cbor2 ≥ 6 cannot ``decode()`` bytes (cbor2 6 returns tuples inside
  tags), so the messages are split with cbor2 and handed to pycose's ``from_cose_obj``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from cryptography.exceptions import InvalidTag
from kagiya.sdk.credential import IssuedKey
from kagiya.sdk.keys import IssuerKey, LockIdentity
from pycose.algorithms import AESCCM16128128, EcdhEsHKDF256, EdDSA
from pycose.headers import KID, Algorithm, ContentType, EphemeralKey
from pycose.keys import OKPKey, SymmetricKey
from pycose.keys.curves import Ed25519
from pycose.keys.keyops import DecryptOp
from pycose.keys.keyparam import KpAlg, KpKeyOps
from pycose.messages import EncMessage, Sign1Message
from pycose.messages.cosemessage import CoseMessage

P = 2**255 - 19
A24 = 121665


def x25519_reference(k: bytes, u: bytes) -> bytes:
    """RFC 7748 §5 X25519, straight from the pseudocode (independent of OpenSSL)."""
    scalar = bytearray(k)
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    n = int.from_bytes(scalar, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (n >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + A24 * e) % P
    if swap:
        x2, x3, z2, z3 = x3, x2, z3, z2
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


def hkdf_reference(ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA-256 with an all-zero salt, from the RFC's two steps."""
    prk = hmac.new(bytes(32), ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes((i,)), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def _lists(o: Any) -> Any:
    if isinstance(o, list | tuple):
        return [_lists(x) for x in o]
    if hasattr(o, "items"):
        return {k: _lists(v) for k, v in o.items()}
    return o


def test_reference_x25519_matches_rfc7748() -> None:
    # RFC 7748 §5.2 first test vector
    k = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert x25519_reference(k, u).hex() == (
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")


def test_pycose_verifies_kagiya_key(issuer: IssuerKey, issue: Callable[..., IssuedKey]) -> None:
    key = issue()
    tagged = cbor2.loads(key.credential)
    assert tagged.tag == Sign1Message.cbor_tag == 18
    msg = Sign1Message.from_cose_obj(_lists(tagged.value), True)
    assert msg.phdr[Algorithm] is EdDSA
    assert msg.phdr[ContentType] == 61
    assert msg.phdr[KID] == issuer.kid
    msg.key = OKPKey(crv=Ed25519, x=issuer.public_bytes())
    assert msg.verify_signature()
    assert msg.payload is not None
    claims = cbor2.loads(msg.payload)
    assert claims[7] == key.cti and claims[3] == key.claims.aud


def test_pycose_refuses_tampered_key(issuer: IssuerKey, issue: Callable[..., IssuedKey]) -> None:
    tagged = cbor2.loads(issue().credential)
    obj = _lists(tagged.value)
    obj[2] = obj[2][:-1] + bytes([obj[2][-1] ^ 1])
    msg = Sign1Message.from_cose_obj(obj, True)
    msg.key = OKPKey(crv=Ed25519, x=issuer.public_bytes())
    assert not msg.verify_signature()
    other = IssuerKey.generate()
    msg = Sign1Message.from_cose_obj(_lists(tagged.value), True)
    msg.key = OKPKey(crv=Ed25519, x=other.public_bytes())
    assert not msg.verify_signature()


def test_pycose_sign1_is_accepted_by_kagiya(issuer: IssuerKey, lock: LockIdentity,
                                            issue: Callable[..., IssuedKey]) -> None:
    """The reverse direction: a COSE_Sign1 *produced by pycose* over Kagiya claims."""
    from kagiya.sdk.credential import verify_credential

    from tests.sdk.conftest import LOCK_ID, NOW

    key = issue()
    payload = cbor2.loads(key.credential).value[2]
    msg = Sign1Message(phdr={Algorithm: EdDSA, ContentType: 61, KID: issuer.kid},
                       payload=payload)
    msg.key = OKPKey(crv=Ed25519, d=issuer.private_bytes(), x=issuer.public_bytes())
    encoded = msg.encode(tag=True)
    verified = verify_credential(encoded, issuer.anchors(), LOCK_ID, NOW,
                                 lock_kex_private=lock.kex_private_bytes)
    assert verified.secret == key.secret


@pytest.mark.parametrize("n", range(3))
def test_independent_unwrap_of_cnf(n: int, lock: LockIdentity,
                                   issue: Callable[..., IssuedKey]) -> None:
    key = issue()
    claims = cbor2.loads(cbor2.loads(key.credential).value[2])
    enc = EncMessage.from_cose_obj(_lists(claims[8][2]), True)
    assert enc.phdr[Algorithm] is AESCCM16128128
    (recipient,) = enc.recipients
    assert recipient.phdr[Algorithm] is EcdhEsHKDF256
    assert recipient.uhdr[KID] == lock.lock_key_id
    eph = recipient.uhdr[EphemeralKey]
    assert isinstance(eph, OKPKey) and eph.crv is not None
    assert eph.crv.fullname == "X25519"
    # key agreement and KDF: independent implementations; KDF context built by pycose
    shared = x25519_reference(lock.kex_private_bytes, eph.x)
    context = recipient.get_kdf_context(AESCCM16128128).encode()  # type: ignore[arg-type]
    cek = hkdf_reference(shared, context, 16)
    enc.key = SymmetricKey(k=cek, optional_params={KpAlg: AESCCM16128128,
                                                   KpKeyOps: [DecryptOp]})
    plaintext = super(EncMessage, enc).decrypt()  # pycose's AES-CCM with its Enc_structure
    cose_key = cbor2.loads(plaintext)
    assert cose_key == {1: 4, -1: key.secret}
    assert isinstance(enc, CoseMessage)


def test_independent_unwrap_fails_for_another_lock(issue: Callable[..., IssuedKey]) -> None:
    key = issue()
    claims = cbor2.loads(cbor2.loads(key.credential).value[2])
    enc = EncMessage.from_cose_obj(_lists(claims[8][2]), True)
    recipient = enc.recipients[0]
    wrong = LockIdentity.generate()
    shared = x25519_reference(wrong.kex_private_bytes, recipient.uhdr[EphemeralKey].x)
    ctx = recipient.get_kdf_context(AESCCM16128128).encode()  # type: ignore[arg-type]
    enc.key = SymmetricKey(k=hkdf_reference(shared, ctx, 16),
                           optional_params={KpAlg: AESCCM16128128, KpKeyOps: [DecryptOp]})
    with pytest.raises(InvalidTag):
        super(EncMessage, enc).decrypt()
