"""Connected locks: broker accounts and uplink status (docs/uplink.md, "API").

* :func:`connect`: make a lock a connected lock - create (or replace) its broker account,
  whose username is the lock ID, and return the password **once** (the installer
  provisions it to the lock; the server keeps no copy). The current revocation update is
  published at once, so the retained message is there before the lock first connects. The
  route takes no ``Idempotency-Key``: a retry draws a new password, and no password is ever
  stored in an idempotency record.
* :func:`status`: last online, the revocation version the lock acknowledged in a signed
  heartbeat, what was published.
* :func:`disconnect`: delete the broker account (the lock can no longer connect; BLE keeps
  working) and the uplink state. :func:`drop_account` does the same for lock deletion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kagiya.server.config import Settings
from kagiya.server.models import LockUplink
from kagiya.server.problems import ApiError
from kagiya.server.services.context import Ctx
from kagiya.server.services.lookup import get_lock
from kagiya.server.uplink import outbox
from kagiya.server.uplink.mosquitto import BrokerAccounts
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.orm import Session


class UplinkAccountOut(BaseModel):
    """A connected lock's broker account: provision these to the lock (shown once)."""

    lock_id: str
    host: str
    port: int
    username: str
    password: str


class UplinkStatusOut(BaseModel):
    """A connected lock's uplink state."""

    lock_id: str
    last_online: int | None
    lock_time: int
    state: int
    heartbeats: int
    revocation_version: int
    published_revocation_version: int
    acked_revocation_version: int


def accounts(settings: Settings) -> BrokerAccounts:
    """The broker's account store, or 409 ``uplink-not-configured``."""
    if not settings.mqtt_host or not settings.mqtt_password_file:
        raise ApiError(409, "uplink-not-configured",
                       "this key server has no MQTT broker configured (KAGIYA_MQTT_HOST, "
                       "KAGIYA_MQTT_PASSWORD_FILE)")
    pid = Path(settings.mqtt_pid_file) if settings.mqtt_pid_file else None
    return BrokerAccounts(Path(settings.mqtt_password_file), pid)


def _out(lock_id: str, revocation_version: int, st: LockUplink) -> UplinkStatusOut:
    return UplinkStatusOut(
        lock_id=lock_id, last_online=st.last_online, lock_time=st.lock_time, state=st.state,
        heartbeats=st.heartbeats, revocation_version=revocation_version,
        published_revocation_version=st.published_version,
        acked_revocation_version=st.acked_version)


def drop_account(s: Session, settings: Settings, lock_pk: int, lock_id: str) -> bool:
    """Delete a lock's broker account and uplink state; True if it was connected."""
    result: Any = s.execute(delete(LockUplink).where(LockUplink.lock_pk == lock_pk))
    had = bool(result.rowcount)
    if had and settings.mqtt_password_file:
        accounts(settings).delete(lock_id)
    if had:  # its retained messages go too (kagiya.server.uplink.outbox.clear_due)
        outbox.order_clear(s, lock_id, int(settings.clock()))
    return had


def connect(c: Ctx, lock_id: str) -> UplinkAccountOut:
    """A new broker account for the lock (see the module doc)."""
    store = accounts(c.settings)
    lk = get_lock(c, lock_id, lock=True)
    if c.s.get(LockUplink, lk.pk) is None:
        c.s.add(LockUplink(lock_pk=lk.pk, published_version=0, acked_version=0,
                           lock_time=0, state=0, heartbeats=0))
        c.s.flush()
    if lk.revocation_version > 0:
        outbox.enqueue(c.s, [lk.pk], outbox.REVOCATION, c.now)
    password = store.create(lk.lock_id)
    c.audit("lock.uplink-connect", lk.lock_id)
    return UplinkAccountOut(lock_id=lk.lock_id, host=c.settings.mqtt_host,
                            port=c.settings.mqtt_port, username=lk.lock_id, password=password)


def _state(c: Ctx, lock_id: str, *, lock: bool = False) -> tuple[Any, LockUplink]:
    lk = get_lock(c, lock_id, lock=lock)
    st = c.s.scalars(select(LockUplink).where(LockUplink.lock_pk == lk.pk)).first()
    if st is None:
        raise ApiError(404, "not-found", "not a connected lock")
    return lk, st


def status(c: Ctx, lock_id: str) -> UplinkStatusOut:
    """The lock's uplink state, or 404 when it is not a connected lock."""
    lk, st = _state(c, lock_id)
    return _out(lk.lock_id, lk.revocation_version, st)


def disconnect(c: Ctx, lock_id: str) -> UplinkStatusOut:
    """Delete the lock's broker account and uplink state; returns the last state."""
    lk, st = _state(c, lock_id, lock=True)
    out = _out(lk.lock_id, lk.revocation_version, st)
    drop_account(c.s, c.settings, lk.pk, lk.lock_id)
    c.audit("lock.uplink-disconnect", lk.lock_id)
    return out
