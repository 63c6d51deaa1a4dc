"""Hostile bytes into the verifiers: only ProtocolError with a §13 code, never a crash."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kagiya.hil.drbg import DeterministicRng
from kagiya.sdk import cbor
from kagiya.sdk.credential import Permission, issue_credential, verify_credential
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import IssuerKey, LockIdentity
from kagiya.sdk.signed import (
    RevocationUpdate,
    sign_revocation_update,
    sign_time_statement,
    verify_revocation_update,
    verify_time_statement,
)

ISSUER = IssuerKey.generate(DeterministicRng("fuzz-issuer"))
LOCK = LockIdentity.generate(DeterministicRng("fuzz-lock"))
NOW = 1_800_000_000
CRED = issue_credential(ISSUER, iss="i", sub="u", aud="KGY-0001", nbf=NOW - 1, exp=NOW + 9,
                        iat=NOW, permissions=Permission.DOORS, request_version=1,
                        lock_kex_public=LOCK.kex_public, operator="op_fuzz",
                        rng=DeterministicRng("fuzz")).credential
TIME = sign_time_statement(ISSUER, NOW)
REVOCATION = sign_revocation_update(ISSUER, RevocationUpdate(
    "KGY-0001", 2, NOW, [(bytes(16), NOW + 5)], operator="op_fuzz", min_generation=3))
CODES = set(ErrorCode) - {ErrorCode.OK, ErrorCode.INTERNAL}


def mutate(data: bytes, draw: st.DataObject) -> bytes:
    raw = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 3))):
        pos = draw.draw(st.integers(0, max(len(raw) - 1, 0)))
        op = draw.draw(st.integers(0, 3))
        if op == 0 and raw:
            raw[pos] ^= 1 << draw.draw(st.integers(0, 7))
        elif op == 1:
            raw.insert(pos, draw.draw(st.integers(0, 255)))
        elif op == 2 and raw:
            del raw[pos]
        else:
            raw = raw[:pos]
    return bytes(raw)


def check_credential(data: bytes) -> None:
    try:
        verify_credential(data, ISSUER.anchors(), "KGY-0001", NOW,
                          lock_kex_private=LOCK.kex_private_bytes, command=1)
    except ProtocolError as e:
        assert e.code in CODES


@given(st.data())
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_credentials(data: st.DataObject) -> None:
    check_credential(mutate(CRED, data))


@given(st.binary(max_size=700))
@settings(max_examples=500, deadline=None)
def test_random_credentials(data: bytes) -> None:
    check_credential(data)
    check_credential(b"\xd2" + data)
    check_credential(b"\xd2\x84" + data)


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_signed_objects(data: st.DataObject) -> None:
    for fn, blob in ((lambda d: verify_time_statement(d, ISSUER.anchors()), TIME),
                     (lambda d: verify_revocation_update(d, ISSUER.anchors(), "KGY-0001",
                                                         current_version=1), REVOCATION)):
        try:
            fn(mutate(blob, data))
        except ProtocolError as e:
            assert e.code in CODES


@given(st.recursive(st.none() | st.integers(-3, 300) | st.binary(max_size=20)
                    | st.text(max_size=5), lambda s: st.lists(s, max_size=4)
                    | st.dictionaries(st.integers(-3, 9), s, max_size=4), max_leaves=12))
@settings(max_examples=300, deadline=None)
def test_structurally_wrong_sign1_objects(value: object) -> None:
    """Well-formed CBOR of the wrong shape inside tag 18 (and as claims, validly signed)."""
    check_credential(cbor.dumps(cbor.Tag(18, value)))
    from kagiya.sdk.credential import sign_claims
    check_credential(sign_claims(ISSUER, cbor.dumps(value)))
