"""LockClient's session handling without a radio: a session always talks through the
client's current ``request``, and a refusal that ends the link starts afresh."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from kagiya.sdk import messages
from kagiya.sdk.client import LockClient
from kagiya.sdk.client_errors import LockBusyError, RateLimitedError
from kagiya.sdk.errors import ErrorCode

LOCK_ID = "KGY-0001"


def _challenge(n: int) -> bytes:
    return messages.encode(messages.Challenge(2, LOCK_ID, bytes([n]) * 16, 0, 0, 0, 2000))


class _Link:
    """A connected client stand-in: counts connects and disconnects."""

    def __init__(self) -> None:
        self.is_connected = True
        self.disconnects = 0

    async def disconnect(self) -> None:
        self.is_connected = False
        self.disconnects += 1


def _client() -> tuple[LockClient, _Link]:
    lock = LockClient(None, backend=SimpleNamespace(client=None), retries=0)  # type: ignore[arg-type]
    link = _Link()
    lock._client = link  # type: ignore[assignment]
    lock._transport = object()

    async def connect() -> None:
        link.is_connected = True
        lock._client, lock._transport = link, object()  # type: ignore[assignment]

    lock.connect = connect  # type: ignore[method-assign]
    return lock, link


def test_session_follows_the_current_request() -> None:
    """A tool that wraps ``request`` (sniffer, MITM, a new link) after a session started
    is used for the session's next exchange, with no poking at private state."""
    lock, _link = _client()
    seen: list[str] = []

    def via(name: str, reply: bytes) -> Any:
        async def request(message: bytes) -> bytes:
            seen.append(name)
            return reply
        return request

    lock.request = via("first", _challenge(1))  # type: ignore[method-assign]
    asyncio.run(lock.hello())
    lock.request = via("second", _challenge(2))  # type: ignore[method-assign]
    ch = asyncio.run(lock.hello())
    assert seen[-1] == "second" and ch.nonce == bytes([2]) * 16


@pytest.mark.parametrize(("code", "error"), [(ErrorCode.BUSY, LockBusyError),
                                             (ErrorCode.RATE_LIMITED, RateLimitedError)])
def test_link_ending_refusal_drops_the_session(code: ErrorCode, error: type) -> None:
    """BUSY (session cap) and RATE_LIMITED (the lock drops the link): the client does not
    keep the dead session; the next call connects again and starts a new one."""
    lock, link = _client()
    # a fresh session: the session's HELLO, then hello()'s own (a new nonce)
    replies = [_challenge(1), _challenge(2), messages.encode(messages.ErrorReply(code)),
               _challenge(3), _challenge(4)]

    async def request(message: bytes) -> bytes:
        return replies.pop(0)

    lock.request = request  # type: ignore[method-assign]
    asyncio.run(lock.hello())
    assert lock._session is not None
    with pytest.raises(error):
        asyncio.run(lock.hello())
    assert lock._session is None and link.disconnects == 1
    assert asyncio.run(lock.hello()).nonce == bytes([4]) * 16 and not replies
