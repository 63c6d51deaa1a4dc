"""The BLE client integrators use: find a lock, connect, unlock (bleak style).

```python
from kagiya.sdk.client import DigitalKey, LockClient, Wallet, find_lock

key = DigitalKey.from_credential(credential, secret)   # from the key server
device = await find_lock("KGY-0001", timeout=5)
async with LockClient(device, wallet=wallet) as lock:
    await lock.unlock(key)
```

Transport is bleak's ``BleakScanner``/``BleakClient``: the platform backend on a phone or
laptop, or Bumble (:mod:`kagiya.hil.bumble_backend`) on the virtual bench - chosen by
``backend=`` or ``$KAGIYA_BLE_TRANSPORT`` (:func:`kagiya.sdk.ble.default_backend`).

Reliability: requests time out (``timeout``); a dropped link is reconnected and the
request repeated up to ``retries`` times (commands set a state, so repeating is safe);
when the link fails after a command was sent and no authenticated reply arrived, the
client raises :class:`CommandOutcomeUnknownError` - it never reports such a command as
done.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from . import messages
from .ble import SERVICE_UUID, Backend, default_backend, unavailable
from .client_errors import (
    BleUnavailableError,
    CommandOutcomeUnknownError,
    LinkLostError,
    LockNotFoundError,
    LockRefusedError,
    LockTimeoutError,
)
from .client_keys import DigitalKey, Wallet
from .client_session import CommandResult, PhoneSession
from .errors import ErrorCode, ProtocolError
from .logchain import LogRecord, chain, verify_log_pages
from .messages import Command, LockState

__all__ = ["CommandResult", "DigitalKey", "LockClient", "LockLog", "Wallet", "find_lock"]

T = TypeVar("T")


async def find_lock(lock_id: str, timeout: float = 10.0, *,
                    backend: Backend | None = None) -> BLEDevice:
    """Scan for the lock advertising ``lock_id``; raises LockNotFoundError on timeout."""
    backend = backend or default_backend()
    kw: dict[str, Any] = {"backend": backend.scanner} if backend.scanner else {}
    try:
        device = await BleakScanner.find_device_by_filter(
            lambda _d, ad: ad.local_name == lock_id and SERVICE_UUID in ad.service_uuids,
            timeout=timeout, **kw)
    except (BleakError, OSError) as exc:
        err = unavailable(exc)
        if err is None:
            raise LinkLostError(f"scanning failed: {exc}") from exc
        raise err from exc
    if device is None:
        raise LockNotFoundError(f"lock {lock_id} not found within {timeout} s")
    return device


async def _log_page(key: DigitalKey, seq: int, session: PhoneSession) -> messages.LogReply:
    return await session.log_page(key, seq)


@dataclass(frozen=True)
class LockLog:
    """The usage log fetched from a lock (protocol §11): MAC-checked ``LOG`` pages joined
    into one hash chain that ends at the lock's signed head.

    It carries everything the key server's upload needs (docs/server.md,
    ``POST /v1/phone/logs``: ``records`` = :attr:`raw`, :attr:`prev_hash`,
    :attr:`head_seq`, :attr:`head_hash`, :attr:`lost`, :attr:`head_signature`), so a phone
    can forward it without the lock's signing key; :attr:`pages` are the ``LOG`` replies as
    received. ``verified`` is true when the chain and the head signature were checked with
    the lock's Ed25519 key (``fetch_log(..., sign_public=...)``); without it the pages are
    still authenticated by their reply MACs and checked to join up.
    """

    lock_id: str
    records: list[LogRecord]
    raw: list[bytes]
    prev_hash: bytes
    head_seq: int
    head_hash: bytes
    lost: int
    head_signature: bytes
    state: LockState
    verified: bool
    pages: tuple[messages.LogReply, ...] = ()

    @classmethod
    def from_pages(cls, lock_id: str, pages: Sequence[messages.LogReply], *,
                   sign_public: bytes | None = None) -> LockLog:
        """Join consecutive ``LOG`` pages (at least one); with ``sign_public`` verify the
        chain and the signed head (:func:`~kagiya.sdk.logchain.verify_log_pages`), else
        check that they join up. Raises ``ProtocolError`` (``MALFORMED`` /
        ``BAD_SIGNATURE``) otherwise."""
        if not pages:
            raise ValueError("a log has at least one LOG page")
        if sign_public is not None:
            records = verify_log_pages(lock_id, sign_public, pages)
        else:
            records = _join_pages(pages)
        first, last = pages[0], pages[-1]
        return cls(lock_id, records, [r for p in pages for r in p.records], first.prev_hash,
                   last.head_seq, last.head_hash, last.lost, last.head_signature,
                   LockState(last.state), sign_public is not None, tuple(pages))


def _join_pages(pages: Sequence[messages.LogReply]) -> list[LogRecord]:
    """Decode the pages' records; each page must start where the previous one ended."""
    out: list[LogRecord] = []
    h: bytes | None = None
    for page in pages:
        if h is not None and page.records and page.prev_hash != h:
            raise ProtocolError(ErrorCode.BAD_SIGNATURE, "log pages do not join")
        for raw in page.records:
            rec = LogRecord.decode(raw)
            if out and rec.seq != out[-1].seq + 1:
                raise ProtocolError(ErrorCode.MALFORMED, f"log seq {rec.seq} follows "
                                                         f"{out[-1].seq}")
            out.append(rec)
            h = chain(h if h is not None else page.prev_hash, raw)
    return out


#: Refusals after which the lock drops the connection or will not continue its session:
#: the client disconnects, so the next call connects and starts a fresh session.
_SESSION_ENDING = frozenset({ErrorCode.BUSY, ErrorCode.RATE_LIMITED})
#: attempts to set up one link (:meth:`LockClient.connect`)
_CONNECT_ATTEMPTS = 3


class LockClient:
    """A connection to one lock (async context manager, like ``BleakClient``)."""

    def __init__(self, device: BLEDevice | str, *, wallet: Wallet | None = None,
                 backend: Backend | None = None, timeout: float = 5.0,
                 connect_timeout: float = 10.0, retries: int = 1,
                 write_with_response: bool = True) -> None:
        self.device = device
        self.wallet = wallet if wallet is not None else Wallet()
        self.backend = backend or default_backend()
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.write_with_response = write_with_response
        self._client: BleakClient | None = None
        self._transport: Any = None
        self._session: PhoneSession | None = None

    async def __aenter__(self) -> LockClient:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.disconnect()

    # -- link ----------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        """True while the BLE link is up."""
        return self._client is not None and self._client.is_connected

    @property
    def mtu(self) -> int:
        """The negotiated ATT MTU (23 when not connected)."""
        return self._transport.mtu if self._transport is not None else 23

    async def connect(self) -> None:
        """Connect, negotiate the MTU and subscribe to replies.

        A link that fails while it is being set up (BLE's "connection failed to be
        established", HCI 0x3E, when the lock stopped advertising as the request went
        out: it restarts advertising at every connect and disconnect) is tried again
        while within ``connect_timeout`` of the first attempt, up to three attempts:
        nothing was sent on it, so trying again is always safe."""
        started = time.monotonic()
        for attempt in range(_CONNECT_ATTEMPTS):
            try:
                await self._connect_once()
                return
            except BleUnavailableError:
                raise
            except LinkLostError:
                if attempt == _CONNECT_ATTEMPTS - 1 \
                        or time.monotonic() - started >= self.connect_timeout:
                    raise

    async def _connect_once(self) -> None:
        from .transport import GattTransport

        kw: dict[str, Any] = {"backend": self.backend.client} if self.backend.client else {}
        client = BleakClient(self.device, disconnected_callback=self._on_disconnect,
                             timeout=self.connect_timeout, **kw)
        try:
            await client.connect()
            transport = GattTransport(client, write_with_response=self.write_with_response)
            await transport.start()
        except (BleakError, TimeoutError, OSError) as exc:
            with contextlib.suppress(Exception):
                await client.disconnect()
            err = unavailable(exc)
            if err is not None:
                raise err from exc
            raise LinkLostError(f"connect failed: {exc}") from exc
        self._client, self._transport, self._session = client, transport, None

    def _on_disconnect(self, _client: BleakClient) -> None:
        if self._transport is not None:
            self._transport.link_lost()

    async def disconnect(self) -> None:
        """Disconnect (ends the lock session)."""
        client, self._client, self._transport, self._session = self._client, None, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()

    async def request(self, message: bytes) -> bytes:
        """Send one raw protocol message and return the raw reply (bench and tools)."""
        if self._transport is None:
            raise LinkLostError("not connected")
        return bytes(await self._transport.request(message, self.timeout))

    async def _request_now(self, message: bytes) -> bytes:
        return await self.request(message)

    # -- sessions ----------------------------------------------------------------------
    async def _with_session(self, op: Callable[[PhoneSession], Awaitable[T]]) -> T:
        for attempt in range(self.retries + 1):
            session: PhoneSession | None = None
            try:
                if not self.is_connected:
                    await self.connect()
                if self._session is None:
                    # through the client's current ``request`` on every exchange (never
                    # the one of the connection or wrapper the session started on)
                    session = PhoneSession(self._request_now, self.wallet)
                    await session.hello()
                    await session.attach_updates()
                    self._session = session
                session = self._session
                session.command_sent = False
                return await op(session)
            except LockRefusedError as exc:
                if exc.code in _SESSION_ENDING:  # the lock ends this link: start afresh
                    await self.disconnect()
                raise
            except (LinkLostError, LockTimeoutError) as exc:
                sent = session is not None and session.command_sent
                await self.disconnect()
                if attempt == self.retries:
                    if sent:
                        raise CommandOutcomeUnknownError(
                            f"link failed after the command was sent: {exc}") from exc
                    raise
        raise AssertionError("unreachable")

    async def _command(self, key: DigitalKey, command: Command) -> CommandResult:
        return await self._with_session(lambda s: s.command(key, command))

    async def unlock(self, key: DigitalKey) -> CommandResult:
        """Unlock the doors."""
        return await self._command(key, Command.UNLOCK)

    async def lock(self, key: DigitalKey) -> CommandResult:
        """Lock the doors."""
        return await self._command(key, Command.LOCK)

    async def enable_drive(self, key: DigitalKey) -> CommandResult:
        """Enable the motor drive (start)."""
        return await self._command(key, Command.DRIVE_ENABLE)

    async def disable_drive(self, key: DigitalKey) -> CommandResult:
        """Disable the motor drive (refused with VehicleMovingError while moving)."""
        return await self._command(key, Command.DRIVE_DISABLE)

    async def status(self, key: DigitalKey) -> CommandResult:
        """The lock's authenticated state (any valid key)."""
        return await self._command(key, Command.STATUS)

    @property
    def revocation_version(self) -> int | None:
        """The lock's revocation version as the last MACed reply of the current session
        showed it (v2: never the unauthenticated CHALLENGE or ACK); None before one."""
        return self._session.revocation_version if self._session is not None else None

    async def hello(self) -> messages.Challenge:
        """Start a fresh session (after pushing updates); returns the lock's CHALLENGE."""
        async def op(s: PhoneSession) -> messages.Challenge:
            return await s.hello()

        return await self._with_session(op)

    async def info(self) -> messages.LockInfo:
        """The lock's public information (INFO; no key or session needed)."""
        reply = messages.decode(await self.request(messages.encode(messages.Info())))
        if not isinstance(reply, messages.LockInfo):
            raise LinkLostError(f"unexpected reply to INFO: {type(reply).__name__}")
        return reply

    async def fetch_log(self, key: DigitalKey, from_seq: int = 1, *,
                        sign_public: bytes | None = None) -> LockLog:
        """Fetch the usage log from ``from_seq`` (all pages; needs the read-log permission).

        Every page's reply MAC is checked (§8, covering every field of the page). With
        ``sign_public`` (the lock's registered Ed25519 key) the hash chain and the signed
        head are verified too (§11). The :class:`LockLog` is ready to upload to the key
        server as it is.
        """
        pages: list[messages.LogReply] = []
        seq = from_seq
        while True:
            page = await self._with_session(functools.partial(_log_page, key, seq))
            pages.append(page)
            if not page.more or not page.records:
                break
            seq = LogRecord.decode(page.records[-1]).seq + 1
        lock_id = self._session.challenge.lock_id if self._session and \
            self._session.challenge else key.lock_id
        return LockLog.from_pages(lock_id, pages, sign_public=sign_public)
