"""Signed revocation updates for phones to carry to offline locks (protocol §7).

A phone gets the newest update of every lock it should carry one to: the locks of its
user's active key requests and of any unexpired key it was ever given. One query finds
those locks with a revocation version >= 1. Every change that ends a request's keys (change,
cancel, user/partner/lock suspension or deletion, identity replacement) revokes them, so a
phone's unrevoked keys all belong to its user's active requests: the query only has to look
at the phone's *revoked* unexpired keys for other locks, a lookup that stays small however
many keys the phone has been issued.

Each update is a full snapshot of the lock's unexpired revoked keys, newest expiry first,
at most 64 (protocol §15). Building one costs a query and a signature, so each process caches
it under a key that names the snapshot exactly as every process sees it in the database:
``(lock pk, lock incarnation, revocation version, active issuer kid)``. Any revocation bumps
the version (in the revoking transaction), a new registration or identity change draws a new
incarnation, a rotation changes the kid, so a cached update is never older than the
database. A cached snapshot may still list a key that has expired since it was built
(harmless: locks drop expired entries); entries are rebuilt after ``MAX_AGE_S`` anyway.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from kagiya.sdk.signed import MAX_REVOCATION_ENTRIES, RevocationUpdate, sign_revocation_update
from kagiya.server import audit
from kagiya.server.issuer import KeySet
from kagiya.server.models import ACTIVE, IssuedKey, KeyRequest, Lock, Revocation
from kagiya.server.prepared import Handle, Prepared
from kagiya.server.principal import PhoneRef
from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

log = logging.getLogger("kagiya.server")
MAX_AGE_S = 300
CACHE_SIZE = 4096


@dataclass(frozen=True)
class _Built:
    built_at: int
    entries: int
    update_hex: str


class RevocationCache:
    """Per-process cache of signed revocation updates (thread-safe, bounded)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[tuple[int, int, int, str], _Built] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int, int, str], now: int) -> _Built | None:
        """The cached update for ``key`` if it is younger than ``MAX_AGE_S``."""
        with self._lock:
            hit = self._items.get(key)
            if hit is None or not 0 <= now - hit.built_at < MAX_AGE_S:
                return None
            self._items.move_to_end(key)
            return hit

    def put(self, key: tuple[int, int, int, str], value: _Built) -> None:
        """Remember an update, evicting the least recently used beyond the size."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_PHONE_LOCKS = Prepared(
    select(Lock.pk, Lock.lock_id, Lock.revocation_version, Lock.incarnation)
    .where(
        Lock.revocation_version > 0,
        or_(
            Lock.pk.in_(
                select(KeyRequest.lock_pk).where(
                    KeyRequest.user_pk == bindparam("user_pk"), KeyRequest.status == ACTIVE
                )
            ),
            Lock.pk.in_(
                select(IssuedKey.lock_pk).where(
                    IssuedKey.phone_id == bindparam("phone_id"),
                    IssuedKey.revoked.is_(True),
                    IssuedKey.exp > bindparam("now"),
                )
            ),
        ),
    )
    .order_by(Lock.lock_id)
)


# a lock's unexpired revoked keys in update order: the first MAX_REVOCATION_ENTRIES are
# carried (_ENTRIES), the rest are left out (check_capacity)
_UNEXPIRED = (
    select(Revocation.cti, Revocation.exp)
    .where(Revocation.lock_pk == bindparam("lock_pk"), Revocation.exp > bindparam("now"))
    .order_by(Revocation.exp.desc(), Revocation.cti)
)
_ENTRIES = Prepared(_UNEXPIRED.limit(MAX_REVOCATION_ENTRIES))
_LEFT_OUT = _UNEXPIRED.offset(MAX_REVOCATION_ENTRIES)


def check_capacity(session: Session, lock_pks: list[int], now: int) -> None:
    """After a revocation: when a lock has more unexpired revoked keys than one update can
    carry (protocol §15), say so — a warning in the server log and an audit entry
    ``lock.revocation-overflow`` for the lock's operator — because the revoked keys that
    expire soonest are then left out of the update and work again at a lock that has not
    yet seen them. Nothing else can be done within the protocol; the entry tells the
    operator how many keys are affected and until when (shorter key lifetimes keep the list
    short)."""
    for lock_pk in lock_pks:
        rows = session.execute(_LEFT_OUT, {"lock_pk": lock_pk, "now": now}).all()
        if not rows:
            continue
        lock = session.get(Lock, lock_pk)
        if lock is None:
            continue
        left_out_until = int(rows[0].exp)
        log.warning(
            "lock %s: %d revoked keys do not fit its revocation update (until %d)",
            lock.lock_id,
            len(rows),
            left_out_until,
        )
        audit.record(
            session,
            now,
            "server",
            "lock.revocation-overflow",
            operator_id=lock.operator_id,
            target=lock.lock_id,
            detail={
                "carried": MAX_REVOCATION_ENTRIES,
                "left_out": len(rows),
                "left_out_until": left_out_until,
            },
        )


def phone_locks(session: Handle, phone: PhoneRef, now: int) -> list[Any]:
    """``(pk, lock_id, revocation_version, incarnation)`` of the locks with revocations that
    this phone should carry updates to, ordered by lock ID."""
    params = {"user_pk": phone.user_pk, "phone_id": phone.id, "now": now}
    return _PHONE_LOCKS.rows(session, params)


def updates_for_phone(
    session: Handle, phone: PhoneRef, now: int, keys: KeySet, cache: RevocationCache
) -> list[dict[str, Any]]:
    """The newest signed revocation update for each lock the phone should carry one to."""
    out = []
    for lock in phone_locks(session, phone, now):
        key = (lock.pk, lock.incarnation, lock.revocation_version, keys.active_kid)
        built = cache.get(key, now)
        if built is None:
            built = _build(session, lock, now, keys)
            cache.put(key, built)
        out.append(
            {
                "lock_id": lock.lock_id,
                "version": lock.revocation_version,
                "entries": built.entries,
                "update": built.update_hex,
            }
        )
    return out


def signed_update(session: Handle, lock: Any, now: int, keys: KeySet) -> bytes:
    """The signed revocation update of ``lock``'s current snapshot (its revocation version)
    - what the uplink publishes (docs/uplink.md)."""
    return bytes.fromhex(_build(session, lock, now, keys).update_hex)


def _build(session: Handle, lock: Any, now: int, keys: KeySet) -> _Built:
    entries = _ENTRIES.rows(session, {"lock_pk": lock.pk, "now": now})
    upd = RevocationUpdate(
        lock_id=lock.lock_id,
        version=lock.revocation_version,
        iat=now,
        entries=[(bytes(e.cti), int(e.exp)) for e in entries],
    )
    return _Built(now, len(entries), sign_revocation_update(keys.active, upd).hex())
