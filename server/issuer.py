"""Issuer signing keys: creation, rotation and the public list locks trust.

States: ``next`` (published so installers can pre-install it as a trust anchor, not yet
signing), ``active`` (signs everything; exactly one), ``retired`` (listed until every key it
signed has expired, then dropped from the list). Private halves are sealed with the master
key (:mod:`kagiya.server.secrets_store`). Processes cache decrypted keys by ``kid`` only —
keys never change — and read which ``kid`` is active from the database on every use, so a
rotation made by one process is seen by all.
"""

from __future__ import annotations

import threading

from kagiya.sdk.keys import IssuerKey
from kagiya.server.models import IssuerKeyRow
from kagiya.server.secrets_store import Sealer
from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

NEXT, ACTIVE, RETIRED = "next", "active", "retired"
_CONTEXT = b"kagiya issuer key "


class IssuerStore:
    """Access to the issuer keys for one deployment."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer
        self._cache: dict[str, IssuerKey] = {}
        self._lock = threading.Lock()

    def _new_row(self, state: str, now: int) -> IssuerKeyRow:
        key = IssuerKey.generate()
        kid = key.kid.hex()
        sealed = self._sealer.seal(key.private_bytes(), _CONTEXT + kid.encode())
        return IssuerKeyRow(
            kid=kid,
            public=key.public_bytes(),
            private_sealed=sealed,
            state=state,
            created_at=now,
            signed_until=0,
        )

    def _load(self, row: IssuerKeyRow) -> IssuerKey:
        with self._lock:
            key = self._cache.get(row.kid)
            if key is None:
                raw = self._sealer.open(row.private_sealed, _CONTEXT + row.kid.encode())
                key = IssuerKey.from_private_bytes(raw)
                self._cache[row.kid] = key
            return key

    @staticmethod
    def _serialise(session: Session) -> None:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(7261)"))

    def ensure_active(self, session: Session, now: int) -> str:
        """Create the first issuer key if there is none; returns the active ``kid``."""
        self._serialise(session)
        row = session.scalars(select(IssuerKeyRow).where(IssuerKeyRow.state == ACTIVE)).first()
        if row is None:
            row = self._new_row(ACTIVE, now)
            session.add(row)
            session.flush()
        return row.kid

    def active(self, session: Session) -> IssuerKey:
        """The key that signs now."""
        row = session.scalars(select(IssuerKeyRow).where(IssuerKeyRow.state == ACTIVE)).first()
        if row is None:
            raise RuntimeError("no active issuer key: run the server once to create it")
        return self._load(row)

    def rotate(
        self, session: Session, now: int, retire_listing_s: int, *, stage: bool = False
    ) -> str:
        """Rotate: ``stage`` publishes a ``next`` key; otherwise the next (or a new) key becomes
        active and the old one is retired, listed for ``retire_listing_s`` more seconds
        (the longest lifetime of a key it may have signed). Returns the affected ``kid``.
        """
        self._serialise(session)
        staged = session.scalars(select(IssuerKeyRow).where(IssuerKeyRow.state == NEXT)).first()
        if stage:
            if staged is not None:
                return staged.kid
            row = self._new_row(NEXT, now)
            session.add(row)
            session.flush()
            return row.kid
        for old in session.scalars(select(IssuerKeyRow).where(IssuerKeyRow.state == ACTIVE)):
            old.state = RETIRED
            old.retired_at = now
            old.signed_until = now + retire_listing_s
        if staged is None:
            staged = self._new_row(ACTIVE, now)
            session.add(staged)
        staged.state = ACTIVE
        session.flush()
        return staged.kid

    @staticmethod
    def listed(session: Session, now: int) -> list[IssuerKeyRow]:
        """Keys locks and phones should trust now: next, active, retired-but-still-needed."""
        rows = session.scalars(
            select(IssuerKeyRow)
            .where(
                or_(
                    IssuerKeyRow.state.in_((NEXT, ACTIVE)),
                    IssuerKeyRow.signed_until > now,
                )
            )
            .order_by(IssuerKeyRow.created_at, IssuerKeyRow.kid)
        )
        return list(rows)
