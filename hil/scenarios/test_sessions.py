"""Scenarios: replayed and stale exchanges captured over the air."""

from __future__ import annotations

from kagiya.hil.sim_target import Target
from kagiya.sdk import messages
from kagiya.sdk.client import LockClient, find_lock
from kagiya.sdk.errors import ErrorCode


def _code(reply: bytes) -> int:
    m = messages.decode(reply)
    assert isinstance(m, (messages.ErrorReply, messages.Result)), m
    return m.code


async def test_replay_of_captured_exchange(target: Target) -> None:
    key = target.key()
    phone = target.phone()
    device = await find_lock(target.lock_id, 5, backend=phone)
    captured: list[bytes] = []
    async with LockClient(device, backend=phone) as lock:
        orig = lock.request

        async def sniff(message: bytes) -> bytes:
            captured.append(message)
            return await orig(message)

        lock.request = sniff
        await lock.unlock(key)
        await lock.lock(key)
        unlock_msg = next(m for m in captured
                          if isinstance(messages.decode(m), messages.CommandRequest)
                          and messages.decode(m).command == 1)
        # same session: the counter was used
        assert _code(await orig(unlock_msg)) == ErrorCode.REPLAYED
    async with LockClient(device, backend=phone) as lock:
        # new connection, no HELLO: no live session
        assert _code(await lock.request(unlock_msg)) == ErrorCode.STALE_CHALLENGE
        # new session: the old proof does not match the new nonce
        await lock.hello()
        assert _code(await lock.request(unlock_msg)) == ErrorCode.BAD_PROOF
    if target.sim:
        assert target.sim.relays()["doors_locked"] is True


async def test_stale_challenge_after_reconnect(target: Target) -> None:
    key = target.key()
    phone = target.phone()
    device = await find_lock(target.lock_id, 5, backend=phone)
    async with LockClient(device, backend=phone) as lock:
        await lock.status(key)
        session = lock._session
        assert session is not None
    async with LockClient(device, backend=phone) as lock:
        # a request built on the previous connection's challenge
        session.counter += 1
        from kagiya.sdk import proof

        ch = session.challenge
        assert ch is not None
        p = proof.command_proof(key.secret, ch.nonce, ch.lock_id, key.cti, 1, session.counter)
        msg = messages.encode(messages.CommandRequest(key.cti, session.counter, 1, p))
        assert _code(await lock.request(msg)) == ErrorCode.STALE_CHALLENGE
        # the client itself recovers with a new HELLO
        await lock.unlock(key)
