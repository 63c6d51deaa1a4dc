"""Locks: registration (operator and installer), changes, identity replacement, suspension
cascading to their keys, deletion with their requests, keys and logs."""

from __future__ import annotations

import secrets

from kagiya.server.issuance import revoke_where
from kagiya.server.lockkeys import usable_lock_keys
from kagiya.server.models import ACTIVE, SUSPENDED, IssuedKey, KeyRequest, Lock, UsageLog
from kagiya.server.problems import ApiError
from kagiya.server.schemas import DeletedOut, LockIdentityIn, LockIn, LockOut, LockPage, LockPatch
from kagiya.server.services.context import Ctx
from kagiya.server.services.lookup import get_lock, get_partner
from kagiya.server.services.paging import page
from kagiya.server.views import lock_out
from sqlalchemy import delete, select


def check_lock_keys(sign_public: str, kex_public: str) -> None:
    """Refuse (422 ``invalid-lock-keys``) keys a lock cannot have made: a low-order X25519
    key, a non-canonical, off-curve or small-order Ed25519 key, or the same key twice
    (:mod:`kagiya.server.lockkeys`)."""
    if not usable_lock_keys(bytes.fromhex(sign_public), bytes.fromhex(kex_public)):
        raise ApiError(
            422,
            "invalid-lock-keys",
            "sign_public must be a usable Ed25519 key and kex_public a usable X25519 key "
            "(distinct, not of small order)",
        )


def register(c: Ctx, body: LockIn) -> LockOut:
    """Register a lock for the caller's operator (operator and installer endpoints).

    Lock IDs are unique across operators (409 ``lock-exists``): a revocation update names
    only the lock ID, so a second registration of an ID would let its holder speak to a
    lock it does not own."""
    if body.partner_id is not None:
        get_partner(c, body.partner_id)
    if c.s.scalar(select(Lock.pk).where(Lock.lock_id == body.lock_id)) is not None:
        raise ApiError(409, "lock-exists", f"lock ID {body.lock_id} is already registered")
    check_lock_keys(body.sign_public, body.kex_public)
    lk = Lock(
        lock_id=body.lock_id,
        operator_id=c.operator_id,
        partner_id=body.partner_id,
        sign_public=bytes.fromhex(body.sign_public),
        kex_public=bytes.fromhex(body.kex_public),
        vehicle_label=body.vehicle_label or "",
        status=ACTIVE,
        revocation_version=0,
        incarnation=secrets.randbits(62),
        created_at=c.now,
    )
    c.s.add(lk)
    c.s.flush()
    c.audit("lock.register", lk.lock_id)
    return lock_out(lk)


def list_page(c: Ctx, partner_id: str | None, after: int, limit: int) -> LockPage:
    """The operator's locks after cursor ``after``, optionally of one partner."""
    q = select(Lock).where(Lock.operator_id == c.operator_id, Lock.pk > after)
    if partner_id:
        q = q.where(Lock.partner_id == partner_id)
    rows, more = page(c.s.scalars(q.order_by(Lock.pk).limit(limit + 1)).all(), limit,
                      lambda lk: str(lk.pk))
    return LockPage(items=[lock_out(x) for x in rows], next_cursor=more)


def read(c: Ctx, lock_id: str) -> LockOut:
    """One lock (404 if it is not the caller's)."""
    return lock_out(get_lock(c, lock_id))


def update(c: Ctx, lock_id: str, body: LockPatch) -> LockOut:
    """Change the vehicle label or the partner (``partner_id: null`` detaches it)."""
    lk = get_lock(c, lock_id, lock=True)
    fields = body.model_fields_set
    if "partner_id" in fields:
        if body.partner_id is not None:
            get_partner(c, body.partner_id)
        lk.partner_id = body.partner_id
    if "vehicle_label" in fields:
        lk.vehicle_label = body.vehicle_label or ""
    c.audit("lock.update", lk.lock_id, fields=sorted(fields))
    return lock_out(lk)


def replace_identity(c: Ctx, lock_id: str, body: LockIdentityIn) -> LockOut:
    """New identity keys for a re-provisioned lock: its keys so far (wrapped to the old
    X25519 key) are revoked, a new incarnation starts; the same keys again change nothing."""
    lk = get_lock(c, lock_id, lock=True)
    sign, kex = bytes.fromhex(body.sign_public), bytes.fromhex(body.kex_public)
    check_lock_keys(body.sign_public, body.kex_public)
    if lk.sign_public == sign and lk.kex_public == kex:
        return lock_out(lk)  # already this identity: nothing to do
    old_key_id = lock_out(lk).lock_key_id
    revoked = revoke_where(c.s, c.now, IssuedKey.lock_pk == lk.pk)
    c.s.refresh(lk)
    lk.sign_public, lk.kex_public = sign, kex
    lk.incarnation = secrets.randbits(62)
    lk.identity_changed_at = c.now
    out = lock_out(lk)
    c.audit(
        "lock.identity-replace",
        lk.lock_id,
        old_lock_key_id=old_key_id,
        new_lock_key_id=out.lock_key_id,
        revoked_keys=revoked,
    )
    return out


def set_status(c: Ctx, lock_id: str, status: str) -> LockOut:
    """Suspend (its keys are revoked; no new ones are issued) or resume a lock."""
    lk = get_lock(c, lock_id, lock=True)
    lk.status = status
    revoked = 0
    if status == SUSPENDED:
        revoked = revoke_where(c.s, c.now, IssuedKey.lock_pk == lk.pk)
        c.s.refresh(lk)
    c.audit(f"lock.{'resume' if status == ACTIVE else 'suspend'}", lk.lock_id, revoked_keys=revoked)
    return lock_out(lk)


def delete_lock(c: Ctx, lock_id: str) -> DeletedOut:
    """Delete a lock with its key requests, issued keys and usage logs."""
    lk = get_lock(c, lock_id, lock=True)
    c.s.execute(delete(UsageLog).where(UsageLog.lock_pk == lk.pk))
    c.s.execute(delete(IssuedKey).where(IssuedKey.lock_pk == lk.pk))
    c.s.execute(delete(KeyRequest).where(KeyRequest.lock_pk == lk.pk))
    # a connected lock's broker account goes with it (#16, docs/uplink.md)
    from kagiya.server.services.uplink import drop_account

    drop_account(c.s, c.settings, lk.pk, lk.lock_id)
    c.s.delete(lk)
    c.audit("lock.delete", lock_id)
    return DeletedOut(deleted=lock_id)
