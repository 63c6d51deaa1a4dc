"""Issuer signing keys: creation, rotation and the public list locks trust.

States: ``next`` (published so installers can pre-install it as a trust anchor, not yet
signing), ``active`` (signs everything; exactly one), ``retired`` (listed until every key it
signed has expired, then dropped from the list). Private halves are sealed with the master
key (:mod:`kagiya.server.secrets_store`).

Caching across processes: every change of the key set (first key, stage, rotate) bumps the
``issuer_keys`` row of ``server_state`` in the same transaction. A request reads that
version (in its authentication query) and :meth:`IssuerStore.snapshot` reuses the process's
cached key set only while the version is unchanged, so a rotation committed by any process
is seen by the next request of every process. Decrypted private keys are cached by ``kid``
(immutable).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from kagiya.sdk.keys import IssuerKey
from kagiya.server.models import IssuerKeyRow, ServerState
from kagiya.server.prepared import Handle, Prepared
from kagiya.server.secrets_store import Sealer
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

NEXT, ACTIVE, RETIRED = "next", "active", "retired"
STATE_NAME = "issuer_keys"
_CONTEXT = b"kagiya issuer key "


@dataclass(frozen=True)
class PublicKeyInfo:
    """One issuer key as phones and installers see it."""

    kid: str
    public: bytes
    state: str
    created_at: int
    signed_until: int


@dataclass(frozen=True)
class KeySet:
    """The issuer keys at one ``server_state`` version: the signer and the public list."""

    version: int
    active: IssuerKey
    active_kid: str
    keys: tuple[PublicKeyInfo, ...]

    def listed(self, now: int) -> list[dict[str, str]]:
        """Keys to trust now (next, active, retired-but-still-needed), as the API shows them."""
        return [
            {"kid": k.kid, "public_key": k.public.hex(), "state": k.state}
            for k in self.keys
            if k.state in (NEXT, ACTIVE) or k.signed_until > now
        ]


def version_query() -> object:
    """A scalar subquery of the key-set version (embedded in the authentication query)."""
    return select(ServerState.version).where(ServerState.name == STATE_NAME).scalar_subquery()


VERSION_QUERY = Prepared(select(version_query()))  # type: ignore[call-overload]
_KEYS_QUERY = Prepared(
    select(
        IssuerKeyRow.kid,
        IssuerKeyRow.public,
        IssuerKeyRow.private_sealed,
        IssuerKeyRow.state,
        IssuerKeyRow.created_at,
        IssuerKeyRow.signed_until,
    ).order_by(IssuerKeyRow.created_at, IssuerKeyRow.kid)
)


def bump_version(session: Session) -> None:
    """Mark the key set changed (same transaction as the change)."""
    res = session.execute(
        update(ServerState)
        .where(ServerState.name == STATE_NAME)
        .values(version=ServerState.version + 1)
    )
    if not res.rowcount:  # type: ignore[attr-defined]
        session.add(ServerState(name=STATE_NAME, version=1))


class IssuerStore:
    """Access to the issuer keys for one deployment."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer
        self._cache: dict[str, IssuerKey] = {}
        self._lock = threading.Lock()
        self._set: KeySet | None = None

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

    def _load(self, row: Any) -> IssuerKey:
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
            bump_version(session)
        return row.kid

    def snapshot(self, session: Handle, version: int | None) -> KeySet:
        """The key set at ``version`` (as read earlier in this transaction): cached while the
        version is unchanged, otherwise read again. Rows read after the version are at least
        as new as it, so the cache never holds a set older than its version says."""
        cached = self._set
        if cached is not None and version is not None and cached.version == version:
            return cached
        rows = _KEYS_QUERY.rows(session)
        active = next((r for r in rows if r.state == ACTIVE), None)
        if active is None:
            raise RuntimeError("no active issuer key: run the server once to create it")
        ks = KeySet(
            version=version if version is not None else -1,
            active=self._load(active),
            active_kid=active.kid,
            keys=tuple(
                PublicKeyInfo(r.kid, bytes(r.public), r.state, r.created_at, r.signed_until)
                for r in rows
            ),
        )
        if version is not None:
            self._set = ks
        return ks

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
            bump_version(session)
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
        bump_version(session)
        return staged.kid
