"""Signed revocation updates for phones to carry to offline locks (protocol §7).

A phone gets the newest update of every lock it should carry one to: the locks of its
user's active key requests and of any unexpired key it was ever given. One query finds
those locks with a revocation version >= 1. Every change that ends a request's keys (change,
cancel, user/partner/lock suspension or deletion, identity replacement) revokes them, so a
phone's unrevoked keys all belong to its user's active requests: the query only has to look
at the phone's *revoked* unexpired keys for other locks, a lookup that stays small however
many keys the phone has been issued.

Each update names the lock's operator and carries its generation floor (every key issued
below it is revoked) and the unexpired revoked keys at or above the floor, newest expiry
first, at most 64 (protocol §15): when more would be listed, the revoking transaction
raises the floor instead (:func:`kagiya.server.issuance.revoke_lock`), so nothing is ever
left out. Locks merge updates, so an update never makes a refused key usable again. A
retired lock (deleted or decommissioned) also gets its signed decommission update (§7a),
which phones carry to the lock. Building one costs a query and a signature, so each process caches
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

from kagiya.sdk.keys import lock_key_id
from kagiya.sdk.signed import (
    MAX_REVOCATION_ENTRIES,
    DecommissionUpdate,
    RevocationUpdate,
    sign_decommission_update,
    sign_revocation_update,
)
from kagiya.server import audit
from kagiya.server.issuer import KeySet
from kagiya.server.models import ACTIVE, RETIRED, IssuedKey, KeyRequest, Lock, Revocation
from kagiya.server.prepared import Handle, Prepared
from kagiya.server.principal import PhoneRef
from sqlalchemy import bindparam, func, select, union
from sqlalchemy.orm import Session

log = logging.getLogger("kagiya.server")
MAX_AGE_S = 300
CACHE_SIZE = 4096


@dataclass(frozen=True)
class _Built:
    built_at: int
    entries: int
    update_hex: str
    decommission_hex: str | None


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
    select(
        Lock.pk,
        Lock.lock_id,
        Lock.revocation_version,
        Lock.incarnation,
        Lock.operator_id,
        Lock.min_generation,
        Lock.status,
        Lock.kex_public,
    )
    .where(
        Lock.revocation_version > 0,
        # one IN over a UNION, not an OR of two INs: PostgreSQL plans the OR as a scan of
        # every lock of the fleet (10,000 rows, ~1 ms quiet); the UNION is two index lookups
        # (the user's requests, the phone's revoked keys) and a primary-key probe per lock
        Lock.pk.in_(
            union(
                select(KeyRequest.lock_pk).where(
                    KeyRequest.user_pk == bindparam("user_pk"), KeyRequest.status == ACTIVE
                ),
                select(IssuedKey.lock_pk).where(
                    IssuedKey.phone_id == bindparam("phone_id"),
                    IssuedKey.revoked.is_(True),
                    IssuedKey.exp > bindparam("now"),
                ),
            )
        ),
    )
    .order_by(Lock.lock_id)
)


# a lock's unexpired revoked keys at or above its floor, in update order
_ENTRIES = Prepared(
    select(Revocation.cti, Revocation.exp)
    .where(
        Revocation.lock_pk == bindparam("lock_pk"),
        Revocation.exp > bindparam("now"),
        Revocation.generation >= bindparam("floor"),
    )
    .order_by(Revocation.exp.desc(), Revocation.cti)
    .limit(MAX_REVOCATION_ENTRIES)
)


def over_capacity(session: Session, lock_pks: list[int], now: int) -> list[int]:
    """The locks among ``lock_pks`` whose listed revoked keys no longer fit one update."""
    out = []
    for lock_pk in lock_pks:
        floor = session.scalar(select(Lock.min_generation).where(Lock.pk == lock_pk)) or 0
        listed = session.scalar(
            select(func.count()).select_from(Revocation).where(
                Revocation.lock_pk == lock_pk, Revocation.exp > now,
                Revocation.generation >= floor,
            )
        )
        if (listed or 0) > MAX_REVOCATION_ENTRIES:
            out.append(lock_pk)
    return out


def record_overflow(session: Session, lock: Lock, revoked: int, now: int) -> None:
    """Say that a lock's floor was raised because its revoked keys would not fit one update:
    every key of the lock was revoked with it (``revoked`` still-valid ones, which phones
    replace on their next download). An audit entry ``lock.revocation-floor`` for the
    operator and an info line in the server log."""
    log.info("lock %s: revoked keys exceed one update; generation floor raised to %d",
             lock.lock_id, lock.min_generation)
    audit.record(
        session,
        now,
        "server",
        "lock.revocation-floor",
        operator_id=lock.operator_id,
        target=lock.lock_id,
        detail={"min_generation": lock.min_generation, "reissued": revoked},
    )


def phone_locks(session: Handle, phone: PhoneRef, now: int) -> list[Any]:
    """``(pk, lock_id, revocation_version, incarnation)`` of the locks with revocations that
    this phone should carry updates to, ordered by lock ID."""
    params = {"user_pk": phone.user_pk, "phone_id": phone.id, "now": now}
    return _PHONE_LOCKS.rows(session, params)


def updates_for_phone(
    session: Handle, phone: PhoneRef, now: int, keys: KeySet, cache: RevocationCache
) -> list[dict[str, Any]]:
    """The newest signed revocation update for each lock the phone should carry one to (and
    the decommission update of a retired one)."""
    out = []
    for lock in phone_locks(session, phone, now):
        key = (lock.pk, lock.incarnation, lock.revocation_version, keys.active_kid)
        built = cache.get(key, now)
        if built is None:
            built = _build(session, lock, now, keys)
            cache.put(key, built)
        item = {
            "lock_id": lock.lock_id,
            "version": lock.revocation_version,
            "entries": built.entries,
            "update": built.update_hex,
        }
        if built.decommission_hex is not None:
            item["decommission"] = built.decommission_hex
        out.append(item)
    return out


def signed_update(session: Handle, lock: Any, now: int, keys: KeySet) -> bytes:
    """The signed revocation update of ``lock``'s current snapshot (its revocation version)
    - what the uplink publishes (docs/uplink.md)."""
    return bytes.fromhex(_build(session, lock, now, keys).update_hex)


def decommission_update(keys: KeySet, lock: Any, now: int) -> str:
    """The signed decommission update (§7a) for ``lock``'s current identity, hex."""
    upd = DecommissionUpdate(lock.lock_id, now, lock.operator_id,
                             lock_key_id(bytes(lock.kex_public)))
    return sign_decommission_update(keys.active, upd).hex()


def _build(session: Handle, lock: Any, now: int, keys: KeySet) -> _Built:
    params = {"lock_pk": lock.pk, "now": now, "floor": lock.min_generation}
    entries = _ENTRIES.rows(session, params)
    upd = RevocationUpdate(
        lock_id=lock.lock_id,
        version=lock.revocation_version,
        iat=now,
        entries=[(bytes(e.cti), int(e.exp)) for e in entries],
        operator=lock.operator_id,
        min_generation=lock.min_generation,
    )
    dec = decommission_update(keys, lock, now) if lock.status == RETIRED else None
    return _Built(now, len(entries), sign_revocation_update(keys.active, upd).hex(), dec)
