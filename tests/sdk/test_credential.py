"""kagiya.sdk.credential / keys / keywrap: issuing and the §3 decision function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kagiya.hil.drbg import DeterministicRng
from kagiya.sdk import cbor, cose
from kagiya.sdk.credential import (
    IssuedKey,
    Permission,
    decode_claims_unverified,
    permission_for,
    verify_credential,
)
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import IssuerKey, LockIdentity, issuer_kid, lock_key_id
from kagiya.sdk.keywrap import recipient_key_id, unwrap_secret, wrap_secret

from .conftest import EXP, LOCK_ID, NBF, NOW


def code_of(fn: Callable[[], object]) -> ErrorCode:
    with pytest.raises(ProtocolError) as e:
        fn()
    assert str(e.value).startswith(e.value.code.name)
    return e.value.code


def test_issue_and_verify_roundtrip(issuer: IssuerKey, lock: LockIdentity,
                                    issue: Callable[..., IssuedKey]) -> None:
    key = issue(permissions=Permission.DOORS | Permission.LOG, request_version=7)
    assert len(key.cti) == 16 and len(key.secret) == 32
    assert len(key.credential) < 400
    v = verify_credential(key.credential, issuer.anchors(), LOCK_ID, NOW,
                          lock_kex_private=lock.kex_private_bytes)
    assert v.secret == key.secret
    assert v.claims == key.claims
    assert v.claims.permissions == Permission.DOORS | Permission.LOG
    assert v.claims.request_version == 7
    assert verify_credential(key.credential, issuer.anchors(), LOCK_ID, NOW).secret is None
    assert decode_claims_unverified(key.credential) == key.claims


def test_issue_is_deterministic_with_seeded_rng(issuer: IssuerKey, lock: LockIdentity,
                                                issue: Callable[..., IssuedKey]) -> None:
    a = issue(rng=DeterministicRng("x"))
    b = issue(rng=DeterministicRng("x"))
    c = issue(rng=DeterministicRng("y"))
    assert a.credential == b.credential != c.credential
    fixed = issue(cti=bytes(range(16)), secret=bytes(32))
    assert fixed.cti == bytes(range(16)) and fixed.secret == bytes(32)


def test_kids() -> None:
    issuer = IssuerKey.from_private_bytes(bytes(32))
    assert issuer.kid == issuer_kid(issuer.public_bytes()) and len(issuer.kid) == 8
    assert IssuerKey.from_private_bytes(issuer.private_bytes()).kid == issuer.kid
    lock = LockIdentity.from_private_bytes(bytes(32), bytes(range(32)))
    assert lock.lock_key_id == lock_key_id(lock.kex_public)
    with pytest.raises(ValueError):
        IssuerKey.from_private_bytes(bytes(31))


def test_window_boundaries(issuer: IssuerKey, issue: Callable[..., IssuedKey]) -> None:
    cred, anchors = issue().credential, issuer.anchors()
    verify_credential(cred, anchors, LOCK_ID, NBF)
    verify_credential(cred, anchors, LOCK_ID, EXP - 1)
    assert code_of(lambda: verify_credential(cred, anchors, LOCK_ID, NBF - 1)) \
        == ErrorCode.NOT_YET_VALID
    assert code_of(lambda: verify_credential(cred, anchors, LOCK_ID, EXP)) == ErrorCode.EXPIRED


def test_refusals(issuer: IssuerKey, lock: LockIdentity, issue: Callable[..., IssuedKey]) -> None:
    key = issue()
    cred, anchors = key.credential, issuer.anchors()
    assert code_of(lambda: verify_credential(cred, anchors, "KGY-OTHER", NOW)) \
        == ErrorCode.WRONG_LOCK
    assert code_of(lambda: verify_credential(cred, {}, LOCK_ID, NOW)) == ErrorCode.UNKNOWN_ISSUER
    assert code_of(lambda: verify_credential(cred, anchors, LOCK_ID, NOW, revoked=[key.cti])) \
        == ErrorCode.REVOKED
    assert code_of(lambda: verify_credential(cred + b"\0", anchors, LOCK_ID, NOW)) \
        == ErrorCode.MALFORMED
    assert code_of(lambda: verify_credential(bytes(641), anchors, LOCK_ID, NOW)) \
        == ErrorCode.TOO_LARGE
    other = LockIdentity.generate()
    assert code_of(lambda: verify_credential(cred, anchors, LOCK_ID, NOW,
                                             lock_kex_private=other.kex_private_bytes)) \
        == ErrorCode.WRONG_RECIPIENT
    assert code_of(lambda: verify_credential(cred, anchors, LOCK_ID, NOW,
                                             lock_kex_private=other.kex_private_bytes,
                                             lock_key_id=lock.lock_key_id)) \
        == ErrorCode.BAD_KEY_WRAP


def test_permissions(issuer: IssuerKey, issue: Callable[..., IssuedKey]) -> None:
    cred = issue(permissions=Permission.DOORS).credential
    anchors = issuer.anchors()
    for command in (1, 2, 5):
        verify_credential(cred, anchors, LOCK_ID, NOW, command=command)
    for command in (3, 4, 16):
        with pytest.raises(ProtocolError) as e:
            verify_credential(cred, anchors, LOCK_ID, NOW, command=command)
        assert e.value.code == ErrorCode.PERMISSION_DENIED
    assert code_of(lambda: verify_credential(cred, anchors, LOCK_ID, NOW, command=9)) \
        == ErrorCode.UNKNOWN_MESSAGE
    assert permission_for(5) == Permission(0)
    assert permission_for(16) == Permission.LOG


@pytest.mark.parametrize(("over", "code"), [
    ({"nbf": EXP}, ErrorCode.INVALID_CLAIMS),
    ({"nbf": 0, "exp": 400 * 86400 + 1}, ErrorCode.INVALID_CLAIMS),
    ({"aud": "lower-case"}, ErrorCode.INVALID_CLAIMS),
    ({"aud": "ABC"}, ErrorCode.INVALID_CLAIMS),
    ({"sub": ""}, ErrorCode.INVALID_CLAIMS),
    ({"sub": "x" * 65}, ErrorCode.INVALID_CLAIMS),
    ({"iss": "i" * 65}, ErrorCode.INVALID_CLAIMS),
    ({"nbf": -1}, ErrorCode.INVALID_CLAIMS),
    ({"cti": bytes(15)}, ErrorCode.INVALID_CLAIMS),
    ({"secret": bytes(16)}, ErrorCode.INVALID_CLAIMS),
])
def test_issue_refuses_bad_input(issue: Callable[..., IssuedKey], over: dict[str, object],
                                 code: ErrorCode) -> None:
    assert code_of(lambda: issue(**over)) == code


def test_largest_legal_identifiers_fit(issue: Callable[..., IssuedKey]) -> None:
    key = issue(iss="i" * 64, sub="u" * 64, aud="A" * 20)
    assert len(key.credential) <= 640


def test_decode_claims_unverified_refuses_garbage() -> None:
    assert code_of(lambda: decode_claims_unverified(b"\x01")) == ErrorCode.MALFORMED
    assert code_of(lambda: decode_claims_unverified(bytes(700))) == ErrorCode.TOO_LARGE


def test_strict_ed25519() -> None:
    issuer = IssuerKey.generate()
    sig = issuer.sign(b"m")
    assert cose.ed25519_verify_strict(issuer.public_bytes(), b"m", sig)
    s = int.from_bytes(sig[32:], "little") + cose.L25519
    assert not cose.ed25519_verify_strict(issuer.public_bytes(), b"m",
                                          sig[:32] + s.to_bytes(32, "little"))
    assert not cose.ed25519_verify_strict(issuer.public_bytes(), b"m", sig[:63])
    assert not cose.ed25519_verify_strict(issuer.public_bytes()[:31], b"m", sig)
    # non-canonical point encodings: y >= p, and x = 0 with the sign bit set
    y_ge_p = (cose.P25519 + 1).to_bytes(32, "little")
    assert not cose._canonical_point(y_ge_p)
    assert not cose._canonical_point((1).to_bytes(32, "little")[:31] + b"\x80")
    assert cose._canonical_point((1).to_bytes(32, "little"))
    assert not cose.ed25519_verify_strict(y_ge_p, b"m", sig)


def test_keywrap_roundtrip_and_refusals(lock: LockIdentity) -> None:
    secret = bytes(range(32))
    cnf = wrap_secret(secret, lock.kex_public)
    assert recipient_key_id(cnf) == lock.lock_key_id
    assert unwrap_secret(cnf, lock.kex_private_bytes, lock.lock_key_id) == secret
    assert unwrap_secret(cnf[2], lock.kex_private_bytes, lock.lock_key_id) == secret
    assert cbor.loads(cbor.dumps(cnf)) == cnf
    with pytest.raises(ValueError):
        wrap_secret(bytes(31), lock.kex_public)

    def bad(mutate: Callable[[Any], object]) -> ErrorCode:
        enc = cbor.loads(cbor.dumps(cnf[2]))
        mutate(enc)
        return code_of(lambda: unwrap_secret(enc, lock.kex_private_bytes, lock.lock_key_id))

    assert bad(lambda e: e.__setitem__(3, [])) == ErrorCode.BAD_KEY_WRAP
    # flip a bit of the tag (overwriting the last byte with 0 left it unchanged 1 run in 256)
    assert bad(lambda e: e.__setitem__(2, e[2][:-1] + bytes([e[2][-1] ^ 1]))) \
        == ErrorCode.BAD_KEY_WRAP
    assert bad(lambda e: e.__setitem__(0, b"\xff")) == ErrorCode.BAD_KEY_WRAP
    assert bad(lambda e: e[3][0].__setitem__(2, b"x")) == ErrorCode.BAD_KEY_WRAP
    assert bad(lambda e: e[3][0][1].__setitem__(4, bytes(8))) == ErrorCode.WRONG_RECIPIENT
    assert bad(lambda e: e[3][0][1].pop(4)) == ErrorCode.BAD_KEY_WRAP
    assert bad(lambda e: e[3][0][1][-1].__setitem__(-1, 6)) == ErrorCode.BAD_KEY_WRAP
    assert bad(lambda e: e.pop()) == ErrorCode.BAD_KEY_WRAP
    assert code_of(lambda: unwrap_secret("junk", lock.kex_private_bytes, lock.lock_key_id)) \
        == ErrorCode.BAD_KEY_WRAP
