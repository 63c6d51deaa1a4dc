"""What a phone holds for the BLE client: its digital keys and the updates it carries.

:class:`DigitalKey` is a key as downloaded from the key server (credential bytes + the
per-key secret K, protocol §3/§4). :class:`Wallet` holds the newest time statement
(§6), the newest revocation update per lock (§7) and any decommission update (§7a) the
phone has, plus which keys each
lock has already accepted (so the credential is sent only on first use). The phone app
and the server's download format map onto these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import cbor
from .cose import parse_sign1
from .credential import Claims, decode_claims_unverified
from .logreceipt import RECEIVED
from .signed import AUD, IAT, MAX_SIGNED, RV_VERSION


@dataclass
class DigitalKey:
    """One digital key on the phone."""

    credential: bytes
    cti: bytes
    secret: bytes
    lock_id: str
    claims: Claims | None = None

    @classmethod
    def from_credential(cls, credential: bytes, secret: bytes) -> DigitalKey:
        """Build from the server's download (credential + secret); claims are for display
        only (the lock verifies them)."""
        claims = decode_claims_unverified(credential)
        return cls(bytes(credential), claims.cti, bytes(secret), claims.aud, claims)


def _payload(signed: bytes) -> dict[Any, Any]:
    obj = cbor.loads(parse_sign1(signed, MAX_SIGNED).payload)
    if not isinstance(obj, dict):
        raise ValueError("signed object payload is not a map")
    return obj


FreshTime = Callable[[str, bytes], Awaitable[bytes | None]]
"""``fresh_time(lock_id, nonce)``: a fresh time statement bound to that lock and nonce
(the key server's ``GET /v1/time?lock_id=…&nonce=…``), or None when offline."""


@dataclass
class Wallet:
    """Time statements, revocation updates and first-use bookkeeping of one phone.

    ``confirmed`` holds, per lock, the revocation version and lock time the lock last
    reported in a MACed reply: what the phone acts on (CHALLENGE and ACK fields are not
    authenticated, v2). ``fresh_time`` (optional) fetches a fresh time statement when a
    lock lost its time in a power cut (``TIME_UNTRUSTED``).
    """

    time_statement: bytes | None = None
    time: int = 0
    revocations: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    decommissions: dict[str, bytes] = field(default_factory=dict)
    log_receipts: dict[str, bytes] = field(default_factory=dict)
    accepted: set[tuple[str, bytes]] = field(default_factory=set)
    confirmed: dict[str, tuple[int, int]] = field(default_factory=dict)
    fresh_time: FreshTime | None = None

    def add_time_statement(self, statement: bytes) -> None:
        """Keep ``statement`` if it is newer than the one held (§6 payload key 6)."""
        t = _payload(statement).get(IAT)
        if isinstance(t, int) and t > self.time:
            self.time, self.time_statement = t, bytes(statement)

    def add_revocation(self, update: bytes) -> None:
        """Keep ``update`` if its version is the newest held for its lock (§7)."""
        p = _payload(update)
        lock_id, version = p.get(AUD), p.get(RV_VERSION)
        if isinstance(lock_id, str) and isinstance(version, int):
            held = self.revocations.get(lock_id)
            if held is None or version > held[0]:
                self.revocations[lock_id] = (version, bytes(update))

    def add_decommission(self, update: bytes) -> None:
        """Keep a decommission update to carry to its lock (§7a)."""
        lock_id = _payload(update).get(AUD)
        if isinstance(lock_id, str):
            self.decommissions[lock_id] = bytes(update)

    def add_log_receipt(self, receipt: bytes) -> None:
        """Keep the key server's log receipt (§11) to carry to its lock; the newest
        (highest ``received`` seq) per lock wins."""
        p = _payload(receipt)
        lock_id, seq = p.get(AUD), p.get(RECEIVED)
        if isinstance(lock_id, str) and isinstance(seq, int):
            held = self.log_receipts.get(lock_id)
            if held is None or seq > _payload(held).get(RECEIVED, 0):
                self.log_receipts[lock_id] = bytes(receipt)

    def log_receipt_for(self, lock_id: str) -> bytes | None:
        """The log receipt held for ``lock_id``."""
        return self.log_receipts.get(lock_id)

    def decommission_for(self, lock_id: str) -> bytes | None:
        """The decommission update held for ``lock_id``."""
        return self.decommissions.get(lock_id)

    def revocation_for(self, lock_id: str) -> tuple[int, bytes] | None:
        """(version, update bytes) held for ``lock_id``."""
        return self.revocations.get(lock_id)

    def confirm(self, lock_id: str, revocation_version: int, lock_time: int) -> None:
        """Record what a MACed reply of ``lock_id`` showed."""
        self.confirmed[lock_id] = (revocation_version, lock_time)

    def is_accepted(self, key: DigitalKey, lock_id: str) -> bool:
        """True once ``lock_id`` accepted ``key``'s credential."""
        return (lock_id, key.cti) in self.accepted

    def mark_accepted(self, key: DigitalKey, lock_id: str, accepted: bool = True) -> None:
        """Record that the lock knows (or forgot) the key."""
        if accepted:
            self.accepted.add((lock_id, key.cti))
        else:
            self.accepted.discard((lock_id, key.cti))
