"""kagiya.sdk.signed: time statements (§6) and revocation updates (§7)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kagiya.sdk.credential import IssuedKey
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import IssuerKey
from kagiya.sdk.signed import (
    RevocationUpdate,
    sign_revocation_update,
    sign_time_statement,
    verify_revocation_update,
    verify_time_statement,
)

from .conftest import LOCK_ID, NOW


def code_of(fn: Callable[[], object]) -> ErrorCode:
    with pytest.raises(ProtocolError) as e:
        fn()
    return e.value.code


def test_time_statement(issuer: IssuerKey, issue: Callable[..., IssuedKey]) -> None:
    ts = sign_time_statement(issuer, NOW)
    assert verify_time_statement(ts, issuer.anchors()) == NOW
    assert code_of(lambda: verify_time_statement(ts, {})) == ErrorCode.UNKNOWN_ISSUER
    assert code_of(lambda: verify_time_statement(ts[:-1] + bytes([ts[-1] ^ 1]),
                                                 issuer.anchors())) == ErrorCode.BAD_SIGNATURE
    assert code_of(lambda: verify_time_statement(issue().credential, issuer.anchors())) \
        == ErrorCode.WRONG_CONTENT_TYPE
    assert code_of(lambda: verify_time_statement(b"", issuer.anchors())) == ErrorCode.MALFORMED
    with pytest.raises(ValueError):
        sign_time_statement(issuer, -1)


def test_revocation_update(issuer: IssuerKey) -> None:
    entries = [(bytes([i]) * 16, NOW + i) for i in range(3)]
    upd = RevocationUpdate(LOCK_ID, 3, NOW, entries, operator="op_test")
    data = sign_revocation_update(issuer, upd)
    got = verify_revocation_update(data, issuer.anchors(), LOCK_ID, current_version=2)
    assert got == upd
    assert got.revoked_ctis(now=NOW + 1) == {bytes([2]) * 16}
    assert verify_revocation_update(data, issuer.anchors()) == upd
    assert code_of(lambda: verify_revocation_update(data, issuer.anchors(), "KGY-OTHER")) \
        == ErrorCode.WRONG_LOCK
    for current in (3, 4):
        with pytest.raises(ProtocolError) as e:
            verify_revocation_update(data, issuer.anchors(), LOCK_ID, current_version=current)
        assert e.value.code == ErrorCode.STALE_UPDATE
    assert code_of(lambda: verify_revocation_update(sign_time_statement(issuer, 1),
                                                    issuer.anchors())) \
        == ErrorCode.WRONG_CONTENT_TYPE
    assert code_of(lambda: sign_revocation_update(
        issuer, RevocationUpdate(LOCK_ID, 1, NOW, [(bytes(16), 1)] * 65, operator="o"))) \
        == ErrorCode.TOO_LARGE
    for bad in (RevocationUpdate("bad id", 1, NOW, [], operator="o"),
                RevocationUpdate(LOCK_ID, 0, NOW, [], operator="o"),
                RevocationUpdate(LOCK_ID, 1, NOW, [(bytes(15), 1)], operator="o"),
                RevocationUpdate(LOCK_ID, 1, NOW, []),  # no operator
                RevocationUpdate(LOCK_ID, 1, NOW, [], operator="o", min_generation=-1)):
        with pytest.raises(ValueError):
            sign_revocation_update(issuer, bad)
