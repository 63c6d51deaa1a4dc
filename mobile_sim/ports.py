"""The two things the phone app talks to, as narrow interfaces.

:class:`ServerPort` is the key server's phone API (docs/server.md), :class:`LockPort` a BLE
session with one lock (the host SDK's client). The app logic in :mod:`kagiya.phone.app`
depends only on these, so it is testable without a network and an integrator can see at a
glance which calls a phone app makes. The real adapters are :mod:`kagiya.phone.server_link`
(over the one phone-side HTTP client, :class:`kagiya.server.client.PhoneClient`) and
:mod:`kagiya.phone.lock_link`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from kagiya.sdk.i18n import _
from kagiya.sdk.protocol import LockState as Bits
from kagiya.server.client import Prover  # (method, url, token, now) -> DPoP header


class Offline(Exception):
    """The key server could not be reached (no network, server down, timeout, 5xx)."""


class ServerRefused(Exception):
    """The key server refused a request for good (problem+json ``code`` and ``detail``)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} [{code}, HTTP {status}]")
        self.status = status
        self.code = code
        self.detail = detail


class TokenRejected(ServerRefused):
    """The phone token expired or was revoked, or its proof was refused (HTTP 401):
    re-authenticate with the device key. ``server_time`` is the server's clock when it
    refused a proof signed at a time too far from it."""

    server_time: int | None = None


@dataclass
class Enrolled:
    """A phone token issued at enrollment or re-authentication."""

    phone_id: str
    user_id: str
    token: str
    expires_in: int


@dataclass
class SyncBundle:
    """Everything the server hands a phone before it goes offline (``SyncOut``)."""

    keys: list[dict[str, Any]]
    revocations: list[dict[str, Any]]
    time: int
    time_statement: bytes
    issuer_keys: list[dict[str, Any]] = field(default_factory=list)
    # requests without a usable key: the phone draws K, wraps it to ``lock_kex_public``
    pending: list[dict[str, Any]] = field(default_factory=list)


class ServerPort(Protocol):
    """The key server's phone API."""

    def enroll(self, code: str, device_public: bytes, signature: bytes) -> Enrolled:
        """Exchange a one-time code + device key for a phone token."""
        ...

    def phone_token(self, phone_id: str, timestamp: int, signature: bytes) -> Enrolled:
        """Get a fresh token by signing with the device key."""
        ...

    def sync(self, token: str, prove: Prover,
             wraps: list[dict[str, str]] | None = None) -> SyncBundle:
        """Download keys, revocation updates and a time statement; with ``wraps``
        (``[{request_id, cnf}]``, the phone's own wrapped secrets) new keys are signed
        around them. Every call carries a proof made by ``prove``."""
        ...

    def upload_log(self, token: str, payload: dict[str, Any], prove: Prover,
                   idempotency_key: str | None = None) -> dict[str, Any]:
        """Upload one fetched log batch (``LogUploadIn``); returns ``LogUploadOut``.
        Retrying with the same ``idempotency_key`` is harmless."""
        ...


@dataclass
class LockState:
    """The lock state bits (protocol §8) and the lock's view of time and revocations."""

    bits: int
    lock_time: int = 0
    revocation_version: int = 0

    @property
    def doors_locked(self) -> bool:
        """Bit 0."""
        return bool(self.bits & Bits.DOORS_LOCKED)

    @property
    def drive_enabled(self) -> bool:
        """Bit 1."""
        return bool(self.bits & Bits.DRIVE_ENABLED)

    @property
    def moving(self) -> bool:
        """Bit 2."""
        return bool(self.bits & Bits.MOVING)

    @property
    def time_trusted(self) -> bool:
        """Bit 3."""
        return bool(self.bits & Bits.TIME_TRUSTED)

    def chips(self) -> list[str]:
        """The state as short phrases in the current language."""
        return [
            _("doors locked") if self.doors_locked else _("doors unlocked"),
            _("drive enabled") if self.drive_enabled else _("drive disabled"),
            *([_("moving")] if self.moving else []),
            _("clock trusted") if self.time_trusted else _("clock NOT trusted"),
        ]

    def describe(self) -> str:
        """One line for people, in the current language."""
        return _(", ").join(self.chips())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (web UI)."""
        return {
            "bits": self.bits,
            "doors_locked": self.doors_locked,
            "drive_enabled": self.drive_enabled,
            "moving": self.moving,
            "time_trusted": self.time_trusted,
            "lock_time": self.lock_time,
            "revocation_version": self.revocation_version,
        }


@dataclass
class LogBatch:
    """One verified-by-MAC ``LOG`` reply (protocol §9/§11), ready to upload."""

    lock_id: str
    records: list[bytes]
    prev_hash: bytes
    head_seq: int
    head_hash: bytes
    lost: int
    head_signature: bytes
    more: bool = False
    next_seq: int = 1  # the from_seq to ask for next time
    decoded: list[list[Any]] = field(default_factory=list)  # [seq, time, event, code, cti, sub]

    def upload_payload(self) -> dict[str, Any]:
        """The ``LogUploadIn`` body."""
        return {
            "lock_id": self.lock_id,
            "records": [r.hex() for r in self.records],
            "prev_hash": self.prev_hash.hex(),
            "head_seq": self.head_seq,
            "head_hash": self.head_hash.hex(),
            "lost": self.lost,
            "head_signature": self.head_signature.hex(),
        }


class LockPort(Protocol):
    """One connected BLE session with a lock (the SDK client), used with ``async with``."""

    @property
    def lock_id(self) -> str:
        """The lock's ID from its challenge."""
        ...

    async def command(self, key: Any, command: str) -> LockState:
        """Run ``unlock|lock|drive-on|drive-off|status`` with ``key``; raises the SDK's typed
        protocol error (with ``.code``) on refusal."""
        ...

    async def fetch_log(self, key: Any, from_seq: int) -> list[LogBatch]:
        """Fetch log records from ``from_seq`` (all pages)."""
        ...
