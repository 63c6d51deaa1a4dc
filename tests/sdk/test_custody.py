"""Key custody and device-bound requests on the SDK side: the phone's wrap of its own
secret, the server's form check of it, and DPoP-style proofs (RFC 9449)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kagiya.sdk import cbor
from kagiya.sdk.credential import credential_cnf, sign_credential, verify_credential
from kagiya.sdk.dpop import ProofError, make_proof, verify_proof
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import IssuerKey, LockIdentity
from kagiya.sdk.keywrap import check_wrap_form, new_wrapped_secret

NOW = 1_800_000_000
TOKEN = "tok-" + "1" * 8  # a test value, not a secret


def test_phone_wrap_signed_by_the_server_opens_at_the_lock() -> None:
    lock, issuer = LockIdentity.generate(), IssuerKey.generate()
    secret, cnf = new_wrapped_secret(lock.kex_public)
    wrap = check_wrap_form(cnf, lock.kex_public)
    credential, cti = sign_credential(
        issuer, iss="kagiya", sub="U1", aud="CAR-1", nbf=NOW, exp=NOW + 60, iat=NOW,
        permissions=1, request_version=1, cnf=wrap, operator="op_test",
    )
    got = verify_credential(credential, issuer.anchors(), "CAR-1", NOW,
                            lock_kex_private=lock.kex_private_bytes)
    assert got.secret == secret and got.claims.cti == cti
    assert credential_cnf(credential) == cnf  # how the phone finds its K again
    assert secret not in credential


def _mutated(cnf: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    value = cbor.loads(cnf)
    change(value[2])
    return cbor.dumps(value)


BAD_WRAPS = {
    "not CBOR": lambda c: b"\xff" + c,
    "trailing byte": lambda c: c + b"\x00",
    "extra cnf key": lambda c: cbor.dumps({**cbor.loads(c), 3: 1}),
    "short IV": lambda c: _mutated(c, lambda e: e.__setitem__(1, {5: bytes(12)})),
    "short ciphertext": lambda c: _mutated(c, lambda e: e.__setitem__(2, e[2][:-1])),
    "other content alg": lambda c: _mutated(c, lambda e: e.__setitem__(0, cbor.dumps({1: 10}))),
    "low-order ephemeral key": lambda c: _mutated(
        c, lambda e: e[3][0][1][-1].__setitem__(-2, bytes(32))),
    "ephemeral curve as bool": lambda c: _mutated(
        c, lambda e: e[3][0][1][-1].__setitem__(1, True)),
    "recipient ciphertext": lambda c: _mutated(c, lambda e: e[3][0].__setitem__(2, b"x")),
}


@pytest.mark.parametrize("bad", BAD_WRAPS.values(), ids=list(BAD_WRAPS))
def test_malformed_wraps_are_refused(bad) -> None:  # type: ignore[no-untyped-def]
    lock = LockIdentity.generate()
    _secret, cnf = new_wrapped_secret(lock.kex_public)
    with pytest.raises(ProtocolError) as ei:
        check_wrap_form(bad(cnf), lock.kex_public)
    assert ei.value.code == ErrorCode.BAD_KEY_WRAP


def test_wrap_for_another_lock_key_is_wrong_recipient() -> None:
    _secret, cnf = new_wrapped_secret(LockIdentity.generate().kex_public)
    with pytest.raises(ProtocolError) as ei:
        check_wrap_form(cnf, LockIdentity.generate().kex_public)
    assert ei.value.code == ErrorCode.WRONG_RECIPIENT


DEVICE = Ed25519PrivateKey.generate()
PUBLIC = DEVICE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _verify(proof: str | None, **kw) -> None:  # type: ignore[no-untyped-def]
    args = {"device_public": PUBLIC, "method": "GET", "path": "/v1/phone/keys",
            "access_token": TOKEN, "now": NOW, **kw}
    verify_proof(proof, **args)


def test_proof_verifies_for_its_request() -> None:
    proof = make_proof(DEVICE, "GET", "https://k.example/v1/phone/keys?x=1", access_token=TOKEN,
                       now=NOW)
    _verify(proof)
    _verify(proof, now=NOW + 300)  # within the clock window


@pytest.mark.parametrize("kw,why", [
    ({"method": "POST"}, "method"),
    ({"path": "/v1/phone/logs"}, "URI"),
    ({"access_token": "other"}, "token"),
    ({"now": NOW + 301}, "clock"),
    ({"device_public": Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)}, "device key"),
])
def test_proof_for_another_request_is_refused(kw, why) -> None:  # type: ignore[no-untyped-def]
    proof = make_proof(DEVICE, "GET", "/v1/phone/keys", access_token=TOKEN, now=NOW)
    with pytest.raises(ProofError, match=why):
        _verify(proof, **kw)


def test_forged_missing_and_garbage_proofs_are_refused() -> None:
    proof = make_proof(DEVICE, "GET", "/v1/phone/keys", access_token=TOKEN, now=NOW)
    head, claims, sig = proof.split(".")
    other = make_proof(DEVICE, "GET", "/v1/phone/keys", access_token=TOKEN, now=NOW + 1)
    for bad in (None, "", "a.b", f"{head}.{other.split('.')[1]}.{sig}", "x" * 2000,
                f"{head}.{claims}.", "é.é.é", "!!.!!.!!"):
        with pytest.raises(ProofError):
            _verify(bad)
