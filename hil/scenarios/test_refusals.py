"""Scenarios: keys the lock must refuse, each with its protocol error code."""

from __future__ import annotations

import time

import pytest
from kagiya.hil.sim_target import Target
from kagiya.sdk import messages
from kagiya.sdk.client import LockClient, Wallet, find_lock
from kagiya.sdk.client_errors import (
    KeyExpiredError,
    KeyNotYetValidError,
    KeyRevokedError,
    LockRefusedError,
    WrongLockError,
)
from kagiya.sdk.errors import ErrorCode
from kagiya.sdk.keys import IssuerKey


async def _refused(target: Target, key, exc=LockRefusedError) -> LockRefusedError:
    phone = target.phone()
    async with LockClient(await find_lock(target.lock_id, 5, backend=phone),
                          backend=phone) as lock:
        with pytest.raises(exc) as err:
            await lock.unlock(key)
        # the lock stays usable after a refusal
        assert (await lock.status(target.key())).command == 5
    if target.sim:
        assert target.sim.relays()["doors_locked"] is True
    return err.value


async def test_wrong_lock(target: Target) -> None:
    err = await _refused(target, target.key(aud="KGY-OTHER-9"), WrongLockError)
    assert err.code == ErrorCode.WRONG_LOCK


async def test_expired(target: Target) -> None:
    now = int(time.time())
    err = await _refused(target, target.key(nbf=now - 7200, exp=now - 3600), KeyExpiredError)
    assert err.code == ErrorCode.EXPIRED


async def test_not_yet_valid(target: Target) -> None:
    now = int(time.time())
    err = await _refused(target, target.key(nbf=now + 3600, exp=now + 7200),
                         KeyNotYetValidError)
    assert err.code == ErrorCode.NOT_YET_VALID


async def test_forged_key_unknown_issuer(target: Target) -> None:
    err = await _refused(target, target.key(issuer=IssuerKey.generate()))
    assert err.code == ErrorCode.UNKNOWN_ISSUER


async def test_forged_key_bad_signature(target: Target) -> None:
    key = target.key()
    key.credential = key.credential[:-1] + bytes([key.credential[-1] ^ 1])
    err = await _refused(target, key)
    assert err.code == ErrorCode.BAD_SIGNATURE


async def test_forged_secret_bad_proof(target: Target) -> None:
    key = target.key()
    key.secret = bytes(32)  # a stolen credential without its secret
    phone = target.phone()
    async with LockClient(await find_lock(target.lock_id, 5, backend=phone),
                          backend=phone) as lock:
        replies: list[bytes] = []
        orig = lock.request

        async def sniff(message: bytes) -> bytes:
            replies.append(await orig(message))
            return replies[-1]

        lock.request = sniff
        # v2: a request whose proof fails gets an unauthenticated ERROR, never a MAC
        with pytest.raises(LockRefusedError) as err:
            await lock.unlock(key)
        assert err.value.code == ErrorCode.BAD_PROOF
    result = messages.decode(replies[-1])
    assert isinstance(result, messages.ErrorReply) and result.code == ErrorCode.BAD_PROOF
    if target.sim:
        assert target.sim.relays()["doors_locked"] is True


async def test_revoked_by_update_carried_by_another_phone(target: Target) -> None:
    victim = target.key(sub="driver-A")
    other = target.key(sub="driver-B")
    phone_a = target.phone("A")
    async with LockClient(await find_lock(target.lock_id, 5, backend=phone_a),
                          backend=phone_a) as lock:
        await lock.unlock(victim)  # the lock caches A's key
    # phone B holds the newest revocation update; it pushes it on its own unlock
    wallet_b = Wallet()
    wallet_b.add_revocation(target.revocation(1, [victim]))
    phone_b = target.phone("B")
    async with LockClient(await find_lock(target.lock_id, 5, backend=phone_b),
                          backend=phone_b, wallet=wallet_b) as lock:
        assert lock.revocation_version is None  # no session yet
        await lock.lock(other)
        assert lock.revocation_version == 1  # pushed and acknowledged in this session
        assert (await lock.hello()).revocation_version == 1
    async with LockClient(await find_lock(target.lock_id, 5, backend=phone_a),
                          backend=phone_a) as lock:
        with pytest.raises(KeyRevokedError) as err:
            await lock.unlock(victim)
    assert err.value.code == ErrorCode.REVOKED
    if target.sim:
        assert target.sim.relays()["doors_locked"] is True
