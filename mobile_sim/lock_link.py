"""A BLE session with one lock through the host SDK's client, as a :class:`LockPort`.

``connect(lock_id, …)`` scans for the lock (``find_lock``), connects (``LockClient``) and
hands the client the phone's :class:`~kagiya.sdk.client.Wallet`: the stored time statement
and revocation update, pushed when the lock's challenge shows older ones (protocol §6, §7),
and which keys this lock already accepted (the credential is sent only on first use).
The transport is bleak's platform backend, or Bumble on ``$KAGIYA_BLE_TRANSPORT`` (the
virtual radio of the bench).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from kagiya.phone.ports import LockState, LogBatch
from kagiya.phone.state import StoredKey
from kagiya.sdk.client import CommandResult, DigitalKey, LockClient, LockLog, Wallet, find_lock
from kagiya.sdk.client_keys import FreshTime

MAX_UPLOAD_RECORDS = 512  # LogUploadIn.records (docs/openapi.json); a lock's ring holds 256


def to_sdk_key(key: StoredKey) -> DigitalKey:
    """The SDK's view of a stored key."""
    return DigitalKey(credential=key.credential, cti=key.key_id, secret=key.secret,
                      lock_id=key.lock_id)


def _state(result: CommandResult, revocation_version: int) -> LockState:
    return LockState(int(result.state), result.lock_time, revocation_version)


def log_batch(log: LockLog) -> list[LogBatch]:
    """The fetched log as one upload ending at the lock's signed head (none if empty).

    The server verifies an upload only when its last record is the signed head (protocol
    §11), so the log is never split; a lock's ring (256 records) fits one upload.
    """
    if not log.raw:
        return []
    if len(log.raw) > MAX_UPLOAD_RECORDS:
        raise ValueError(f"{len(log.raw)} log records exceed one upload "
                         f"({MAX_UPLOAD_RECORDS}); fetch from a later sequence number")
    return [LogBatch(
        lock_id=log.lock_id, records=list(log.raw), prev_hash=log.prev_hash,
        head_seq=log.head_seq, head_hash=log.head_hash, lost=log.lost,
        head_signature=log.head_signature, next_seq=log.records[-1].seq + 1,
        decoded=[[r.seq, r.time, r.event, r.code, r.cti, r.sub] for r in log.records],
    )]


class BleLockSession:
    """The :class:`~kagiya.phone.ports.LockPort` over one connected :class:`LockClient`."""

    def __init__(self, client: LockClient, lock_id: str) -> None:
        self.client = client
        self._lock_id = lock_id

    @property
    def lock_id(self) -> str:
        """The lock's ID."""
        return self._lock_id

    async def command(self, key: Any, command: str) -> LockState:
        """Run one command with a stored key; the SDK raises typed refusals."""
        sdk_key = to_sdk_key(key)
        c = self.client
        run = {"unlock": c.unlock, "lock": c.lock, "drive-on": c.enable_drive,
               "drive-off": c.disable_drive, "status": c.status}[command]
        result = await run(sdk_key)
        return _state(result, c.revocation_version or 0)

    async def fetch_log(self, key: Any, from_seq: int) -> list[LogBatch]:
        """Fetch every page from ``from_seq`` (MACs checked by the SDK) as an upload batch."""
        return log_batch(await self.client.fetch_log(to_sdk_key(key), from_seq))


@asynccontextmanager
async def connect(lock_id: str, *, timeout: float = 10.0, time_statement: bytes | None = None,
                  revocation: tuple[bytes, int] | None = None,
                  accepted: set[bytes] | None = None,
                  fresh_time: FreshTime | None = None,
                  decommission: bytes | None = None,
                  log_receipt: bytes | None = None) -> AsyncIterator[BleLockSession]:
    """Find ``lock_id`` over BLE and open a session carrying the phone's updates (and the
    lock's decommission update when the operator retired it); ``fresh_time`` fetches a
    fresh time statement when the lock lost its time."""
    wallet = Wallet(fresh_time=fresh_time)
    if time_statement:
        wallet.add_time_statement(time_statement)
    if revocation:
        wallet.add_revocation(revocation[0])
    if decommission:
        wallet.add_decommission(decommission)
    if log_receipt:
        wallet.add_log_receipt(log_receipt)
    for cti in accepted or ():
        wallet.accepted.add((lock_id, cti))
    device = await find_lock(lock_id, timeout=timeout)
    # the first use of a key costs the lock an Ed25519 verification and an X25519 unwrap in
    # MicroPython: allow each request as long as finding the lock
    async with LockClient(device, wallet=wallet, timeout=max(5.0, timeout)) as client:
        yield BleLockSession(client, lock_id)
