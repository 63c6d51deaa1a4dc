"""Scenarios: the stranger in radio range and the man in the middle (protocol §16).

Each scenario is one attack of issue #13 that worked on protocol v1, run through the real
BLE stack: it must now fail with its specific code while the owner still gets in. The
attacker is a phone of its own (its own radio) sending raw protocol messages; the man in
the middle is a wrapper around the owner's ``request``.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from kagiya.hil.sim_target import Target
from kagiya.sdk import messages, proof
from kagiya.sdk.client import LockClient, Wallet, find_lock
from kagiya.sdk.client_errors import (
    KeyRevokedError,
    PresenceRequiredError,
    ReplyNotAuthenticError,
    UpdateNotAppliedError,
)
from kagiya.sdk.errors import ErrorCode
from kagiya.sdk.keys import IssuerKey
from kagiya.sdk.messages import LockState
from kagiya.sdk.signed import sign_time_statement


def _code(reply: bytes) -> int:
    m = messages.decode(reply)
    assert isinstance(m, messages.ErrorReply | messages.Result | messages.Ack), m
    return m.code


async def _client(target: Target, name: str, **kw: object) -> LockClient:
    phone = target.phone(name)
    c = LockClient(await find_lock(target.lock_id, 10, backend=phone), backend=phone, **kw)
    await c.connect()
    return c


async def test_stranger_failures_never_block_the_owner(target: Target) -> None:
    """v1: five unknown-issuer TIME messages blocked every check, up to 60 s at a time."""
    key = target.key()
    owner = await _client(target, "owner")
    try:
        await owner.unlock(key)  # the key is cached
        stranger = await _client(target, "stranger")
        try:
            forger = IssuerKey.generate()
            for i in range(8):  # no session, no credential, no crypto cost
                st = sign_time_statement(forger, int(time.time()) + i)
                assert _code(await stranger.request(messages.encode(
                    messages.TimeMessage(st)))) == ErrorCode.UNKNOWN_ISSUER
        finally:
            await stranger.disconnect()
        # the owner's first attempt succeeds
        assert (await owner.lock(key)).state & LockState.DOORS_LOCKED
    finally:
        await owner.disconnect()


async def test_idle_connections_cannot_keep_the_owner_out(sim: Target) -> None:
    """v1: three idle connections stopped advertising, with no idle timeout."""
    assert sim.sim is not None
    squatters = [await _client(sim, f"squatter-{i}") for i in range(3)]
    try:
        # the third link took the last slot: the oldest unauthenticated one was evicted
        for _ in range(100):
            if not squatters[0].is_connected:
                break
            await asyncio.sleep(0.1)
        assert not squatters[0].is_connected
        key = sim.key()
        owner = await _client(sim, "owner")  # the lock still advertises
        try:
            assert not (await owner.unlock(key)).state & LockState.DOORS_LOCKED
        finally:
            await owner.disconnect()
        # links that never prove a key are dropped (6 s), so none holds a slot forever
        for _ in range(150):
            if not any(s.is_connected for s in squatters):
                break
            await asyncio.sleep(0.1)
        assert not any(s.is_connected for s in squatters)
    finally:
        for s in squatters:
            await s.disconnect()


async def test_hello_flood_cannot_hold_the_session(target: Target) -> None:
    """v1: a HELLO every 29 s held the single session forever (BUSY for everyone else)."""
    holder = await _client(target, "holder")
    try:
        ch = messages.decode(await holder.request(messages.encode(messages.Hello())))
        assert isinstance(ch, messages.Challenge) and ch.version == 2
        owner = await _client(target, "owner")
        try:
            # one session per connection: the owner is never BUSY
            assert not (await owner.unlock(target.key())).state & LockState.DOORS_LOCKED
        finally:
            await owner.disconnect()
    finally:
        await holder.disconnect()


async def test_command_held_back_by_a_relay_is_stale(target: Target) -> None:
    """v1 accepted a COMMAND up to 30 s (119 s) after its CHALLENGE."""
    key = target.key()
    lock = await _client(target, "owner")
    try:
        await lock.status(key)  # first use: the key is cached
        session = lock._session
        assert session is not None and session.challenge is not None
        session.counter += 1
        p = proof.command_proof(key.secret, session.nonce, target.lock_id, key.cti, 1,
                                session.counter)
        held = messages.encode(messages.CommandRequest(key.cti, session.counter, 1, p))
        await asyncio.sleep(2.5)  # the relay holds the command past the 2 s window
        assert _code(await lock.request(held)) == ErrorCode.STALE_CHALLENGE
        if target.sim:
            assert target.sim.relays()["doors_locked"] is True
        # the SDK itself starts again with HELLO and gets in
        assert not (await lock.unlock(key)).state & LockState.DOORS_LOCKED
    finally:
        await lock.disconnect()


async def test_drive_needs_someone_in_the_vehicle(sim: Target) -> None:
    """v1: DRIVE_ENABLE was a BLE command like any other (a relay could start the car)."""
    assert sim.sim is not None
    key = sim.key()
    lock = await _client(sim, "owner")
    try:
        with pytest.raises(PresenceRequiredError) as err:
            await lock.enable_drive(key)
        assert err.value.code == ErrorCode.PRESENCE_REQUIRED
        assert err.value.state is not None and err.value.state & LockState.DRIVE_PENDING
        assert sim.sim.relays()["drive"] is False
        sim.sim.set_presence(True)  # the driver presses the brake pedal
        for _ in range(50):
            if sim.sim.relays()["drive"]:
                break
            await asyncio.sleep(0.1)
        assert sim.sim.relays()["drive"] is True
        assert (await lock.status(key)).state & LockState.DRIVE_ENABLED
    finally:
        await lock.disconnect()


async def test_forged_challenge_cannot_keep_a_revoked_key_working(target: Target) -> None:
    """v1: a MITM set the CHALLENGE's revocation version high, the SDK skipped the push,
    reported it applied, and the revoked key still opened."""
    victim = target.key(sub="revoked-driver")
    other = target.key(sub="driver-B")
    a = await _client(target, "A")
    try:
        await a.unlock(victim)  # the lock caches the key that will be revoked
    finally:
        await a.disconnect()
    wallet = Wallet()
    wallet.add_revocation(target.revocation(1, [victim]))
    b = await _client(target, "B", wallet=wallet)
    try:
        real = b.request

        async def mitm(message: bytes) -> bytes:
            reply = await real(message)
            m = messages.decode(reply)
            if isinstance(m, messages.Challenge):  # the lock "already has" version 99
                m = messages.Challenge(m.version, m.lock_id, m.nonce, m.lock_time,
                                       m.state, 99, m.window_ms)
                return messages.encode(m)
            return reply

        b.request = mitm
        await b.lock(other)
        assert b.revocation_version == 1  # from the MACed RESULT, never the forged hint
    finally:
        await b.disconnect()
    a = await _client(target, "A")
    try:
        with pytest.raises(KeyRevokedError):
            await a.unlock(victim)
    finally:
        await a.disconnect()


async def test_forged_result_fields_are_never_believed(target: Target) -> None:
    """Every field of a RESULT is MACed (v2): a MITM changing the lock time or revocation
    version makes the reply unauthentic, never a success."""
    key = target.key()
    lock = await _client(target, "owner")
    try:
        await lock.status(key)
        real = lock.request

        async def mitm(message: bytes) -> bytes:
            reply = await real(message)
            m = messages.decode(reply)
            if isinstance(m, messages.Result):
                m = messages.Result(m.counter, m.command, m.code, m.state, m.lock_time + 10**6,
                                    m.revocation_version + 5, m.next_nonce, m.mac)
                return messages.encode(m)
            return reply

        lock.request = mitm
        with pytest.raises(ReplyNotAuthenticError):
            await lock.unlock(key)
    finally:
        await lock.disconnect()


async def test_far_future_time_is_refused_and_recoverable(sim: Target) -> None:
    """v1: one far-future statement made every key EXPIRED forever."""
    assert sim.sim is not None
    key = sim.key()
    lock = await _client(sim, "owner")
    try:
        far = sign_time_statement(sim.issuer, int(time.time()) + 400 * 86400)
        assert _code(await lock.request(messages.encode(messages.TimeMessage(far)))) \
            == ErrorCode.TIME_IMPLAUSIBLE
        assert not (await lock.unlock(key)).state & LockState.DOORS_LOCKED
    finally:
        await lock.disconnect()


async def test_floods_never_push_out_the_owners_records(sim: Target) -> None:
    """v1: 300 time statements or pre-proof refusals against a sniffed key ID wiped the
    owner's unfetched records."""
    assert sim.sim is not None
    key = sim.key()
    owner = await _client(sim, "owner")
    try:
        for _ in range(5):
            await owner.unlock(key)
            await owner.lock(key)
    finally:
        await owner.disconnect()
    for round_ in range(4):  # several connections, each refused again and again
        attacker = await _client(sim, f"flood-{round_}")
        try:
            ch = messages.decode(await attacker.request(messages.encode(messages.Hello())))
            assert isinstance(ch, messages.Challenge)
            for c in range(1, 7):
                bad = messages.CommandRequest(key.cti, c, 1, bytes(32))  # sniffed key ID
                assert _code(await attacker.request(messages.encode(bad))) \
                    == ErrorCode.KEY_UNKNOWN  # the same answer as for an unknown key
            st = sign_time_statement(sim.issuer, int(time.time()))
            for _ in range(5):
                await attacker.request(messages.encode(messages.TimeMessage(st)))
        finally:
            await attacker.disconnect()
    owner = await _client(sim, "owner")
    try:
        log = await owner.fetch_log(key, sign_public=sim.sign_public)
    finally:
        await owner.disconnect()
    assert log.verified and log.lost == 0
    events = [(int(r.event), int(r.code)) for r in log.records]
    assert events.count((1, 0)) == 5 and events.count((2, 0)) == 5
    assert sum(1 for e in events if e[1] == ErrorCode.KEY_UNKNOWN) <= 8  # throttled


async def test_stale_valid_objects_cost_no_verify(target: Target) -> None:
    """v1: every replayed valid object (old time statement, stale revocation update,
    expired credential) cost a full Ed25519 verify, never rate limited. v2 refuses them
    from their cheap fields: a stranger replaying 9 of them on one connection has not
    spent its budget of 4 verifies (one went on the first genuine update), so a second one
    on that link still verifies. (Few exchanges: a link that proves no key is dropped
    after 6 s, also on a loaded host.)"""
    now = int(time.time())
    old_time = sign_time_statement(target.issuer, now - 3600)
    stale_revocation = target.revocation(1, [])
    expired = target.key(nbf=now - 7200, exp=now - 3600)
    stranger = await _client(target, "stranger")
    try:
        # the lock takes version 1 (one verify), then the stranger replays it
        assert _code(await stranger.request(messages.encode(
            messages.RevocationMessage(stale_revocation)))) == ErrorCode.OK
        for _ in range(4):
            assert _code(await stranger.request(messages.encode(
                messages.TimeMessage(old_time)))) == ErrorCode.STALE_UPDATE
            assert _code(await stranger.request(messages.encode(
                messages.RevocationMessage(stale_revocation)))) == ErrorCode.STALE_UPDATE
        ch = messages.decode(await stranger.request(messages.encode(messages.Hello())))
        assert isinstance(ch, messages.Challenge)
        p = proof.command_proof(expired.secret, ch.nonce, target.lock_id, expired.cti, 1, 1)
        cmd = messages.CommandRequest(expired.cti, 1, 1, p, expired.credential)
        assert _code(await stranger.request(messages.encode(cmd))) == ErrorCode.EXPIRED
        # 9 replays, and the budget of verifies is untouched: a genuine update verifies
        assert _code(await stranger.request(messages.encode(
            messages.RevocationMessage(target.revocation(2, []))))) == ErrorCode.OK
    finally:
        await stranger.disconnect()


async def test_dropped_update_with_a_forged_ack_is_never_reported_applied(
        target: Target) -> None:
    """v1: the ACK was believed, so a MITM that dropped the revocation update and answered
    ACK 0 made the SDK report it applied while the revoked key still opened. v2: the
    phone sees from the MACed RESULT that the lock lacks it, pushes again, and raises."""
    victim = target.key(sub="revoked-driver")
    other = target.key(sub="driver-B")
    wallet = Wallet()
    wallet.add_revocation(target.revocation(1, [victim]))
    b = await _client(target, "B", wallet=wallet)
    try:
        real = b.request
        dropped: list[bytes] = []

        async def mitm(message: bytes) -> bytes:
            if isinstance(messages.decode(message), messages.RevocationMessage):
                dropped.append(message)  # never reaches the lock; a forged "applied"
                return messages.encode(messages.Ack(0, int(time.time()), 1))
            return await real(message)

        b.request = mitm
        with pytest.raises(UpdateNotAppliedError):
            await b.lock(other)
        assert len(dropped) >= 2  # pushed, then pushed again after the MACed RESULT
        assert b.revocation_version == 0  # what the lock's MACed replies showed
    finally:
        await b.disconnect()
