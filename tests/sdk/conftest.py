"""Shared fixtures for the kagiya.sdk tests: keys are generated per test run, never stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kagiya.sdk.credential import IssuedKey, Permission, issue_credential
from kagiya.sdk.keys import IssuerKey, LockIdentity

LOCK_ID = "KGY-TEST1"
NOW = 1_800_000_000
NBF = NOW - 60
EXP = NOW + 3600


@pytest.fixture(scope="session")
def issuer() -> IssuerKey:
    return IssuerKey.generate()


@pytest.fixture(scope="session")
def lock() -> LockIdentity:
    return LockIdentity.generate()


@pytest.fixture(scope="session")
def issue(issuer: IssuerKey, lock: LockIdentity) -> Callable[..., IssuedKey]:
    def _issue(**over: Any) -> IssuedKey:
        args: dict[str, Any] = {
            "iss": "kagiya.test", "sub": "user-1", "aud": LOCK_ID, "nbf": NBF, "exp": EXP,
            "iat": NBF, "permissions": Permission.DOORS | Permission.DRIVE,
            "request_version": 1, "lock_kex_public": lock.kex_public, "operator": "op_test"}
        args.update(over)
        return issue_credential(issuer, **args)

    return _issue
