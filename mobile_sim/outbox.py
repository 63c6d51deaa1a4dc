"""The offline-first outbox: uploads queued at the vehicle, delivered when back online.

Each queued item is its own sealed file in ``<profile>/outbox/`` named
``<sequence>-<random>.kgy`` so items are delivered in the order they were queued and
appending never rewrites older items. An item is deleted only after the server
acknowledged it; an item the server refuses for good (a 4xx other than rate limiting) is
moved to ``outbox/rejected/`` with the reason, never deleted. A damaged item is reported
(:class:`KeystoreCorrupt`) and left in place.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from kagiya.phone.vault import KeystoreCorrupt, ProfileKey, read_sealed, write_sealed

OUTBOX_DIR = "outbox"
REJECTED_DIR = "rejected"


class PermanentRejection(Exception):
    """Raised by a sender when the server refused an item for good (it is set aside)."""


@dataclass
class OutboxItem:
    """One queued upload: its kind (``"log"``), the payload and bookkeeping."""

    kind: str
    payload: dict[str, Any]
    created_at: int = field(default_factory=lambda: int(time.time()))
    attempts: int = 0
    last_error: str = ""
    name: str = ""  # file name inside the outbox (set when stored)


@dataclass
class FlushReport:
    """What :meth:`Outbox.flush` did."""

    sent: int = 0
    rejected: int = 0
    remaining: int = 0
    errors: list[str] = field(default_factory=list)


class Outbox:
    """The sealed, ordered, restart-safe upload queue of one profile."""

    def __init__(self, profile_dir: Path, pkey_source: Callable[[], ProfileKey]) -> None:
        self.directory = Path(profile_dir) / OUTBOX_DIR
        self._pkey_source = pkey_source

    def _pkey(self) -> ProfileKey:
        return self._pkey_source()

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("*.kgy") if p.is_file())

    def _next_seq(self) -> int:
        files = self._files()
        if not files:
            return 1
        return int(files[-1].name.split("-", 1)[0]) + 1

    def put(self, kind: str, payload: dict[str, Any]) -> OutboxItem:
        """Queue an item durably (fsynced before this returns). Call under the profile lock."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        item = OutboxItem(kind=kind, payload=payload)
        item.name = f"{self._next_seq():010d}-{secrets.token_hex(4)}.kgy"
        self._store(item)
        return item

    def _store(self, item: OutboxItem) -> None:
        data = {
            "kind": item.kind,
            "payload": item.payload,
            "created_at": item.created_at,
            "attempts": item.attempts,
            "last_error": item.last_error,
        }
        write_sealed(self._pkey(), self.directory / item.name, cbor2.dumps(data, canonical=True))

    def _load(self, path: Path) -> OutboxItem:
        plain = read_sealed(self._pkey(), path)
        try:
            data = cbor2.loads(plain)
            return OutboxItem(
                kind=data["kind"],
                payload=data["payload"],
                created_at=data["created_at"],
                attempts=data["attempts"],
                last_error=data["last_error"],
                name=path.name,
            )
        except (KeyError, TypeError, ValueError, cbor2.CBORDecodeError) as exc:
            raise KeystoreCorrupt(f"{path}: not an outbox item ({exc})") from None

    def items(self) -> Iterator[OutboxItem]:
        """Queued items in order; a damaged file raises :class:`KeystoreCorrupt`."""
        for path in self._files():
            yield self._load(path)

    def __len__(self) -> int:
        return len(self._files())

    def rejected(self) -> list[Path]:
        """Files the server refused for good (kept for inspection)."""
        d = self.directory / REJECTED_DIR
        return sorted(d.glob("*.kgy")) if d.is_dir() else []

    def flush(self, send: Callable[[OutboxItem], None]) -> FlushReport:
        """Deliver items in order with ``send``; stop at the first transient failure.

        ``send`` returns normally when the server acknowledged the item, raises
        :class:`PermanentRejection` when it refused it for good, and raises anything else
        for a transient failure (offline, 5xx): the item stays queued with its attempt count.
        """
        report = FlushReport()
        for path in self._files():
            try:
                item = self._load(path)
            except KeystoreCorrupt as exc:
                report.errors.append(f"{path.name}: left in place: {exc}")
                continue
            try:
                send(item)
            except PermanentRejection as exc:
                item.attempts += 1
                item.last_error = str(exc)
                self._store(item)
                rej = self.directory / REJECTED_DIR
                rej.mkdir(exist_ok=True, mode=0o700)
                os.replace(path, rej / path.name)
                report.rejected += 1
                report.errors.append(f"{item.name}: refused by the server: {exc}")
                continue
            except Exception as exc:
                item.attempts += 1
                item.last_error = str(exc) or type(exc).__name__
                self._store(item)
                report.errors.append(f"{item.name}: not sent yet: {item.last_error}")
                break
            path.unlink()
            report.sent += 1
        report.remaining = len(self)
        return report
