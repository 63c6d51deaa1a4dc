"""Locks: registration with proof of possession (operator and installer), changes, identity
replacement, suspension cascading to their keys, retirement (decommission / delete) that
revokes every key first and keeps the lock ID as a tombstone (:mod:`kagiya.server.tenancy`)."""

from __future__ import annotations

import secrets

from kagiya.sdk.keys import lock_key_id
from kagiya.server import tenancy
from kagiya.server.issuance import revoke_lock
from kagiya.server.issuer import KeySet
from kagiya.server.lockkeys import usable_lock_keys
from kagiya.server.logs import reset_log_state
from kagiya.server.models import ACTIVE, RETIRED, SUSPENDED, Lock, UsageLog
from kagiya.server.principal import INSTALLER
from kagiya.server.problems import ApiError, not_found
from kagiya.server.revocations import decommission_update
from kagiya.server.schemas import (
    DecommissionOut,
    DeletedOut,
    LockIdentityIn,
    LockIn,
    LockOut,
    LockPage,
    LockPatch,
    OperatorIdOut,
    RegistrationChallengeOut,
)
from kagiya.server.services.context import Ctx
from kagiya.server.services.lookup import get_lock, get_partner
from kagiya.server.services.paging import page
from kagiya.server.uplink import outbox
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


def challenge(c: Ctx) -> RegistrationChallengeOut:
    """A one-time registration challenge for the caller's operator (protocol §5)."""
    return RegistrationChallengeOut(**tenancy.new_challenge(c.s, c.operator_id, c.now))


def operator(c: Ctx) -> OperatorIdOut:
    """The caller's operator ID (what the installer provisions a lock for)."""
    return OperatorIdOut(operator_id=c.operator_id)


def _proved(c: Ctx, lock_id: str, body: LockIn | LockIdentityIn) -> tuple[bytes, bytes]:
    check_lock_keys(body.sign_public, body.kex_public)
    sign, kex = bytes.fromhex(body.sign_public), bytes.fromhex(body.kex_public)
    tenancy.check_proof(c.s, c.operator_id, c.now, lock_id, sign, kex, body.challenge,
                        body.proof)
    return sign, kex


def register(c: Ctx, body: LockIn) -> tuple[int, LockOut]:
    """Register a lock for the caller's operator (operator and installer endpoints), with
    the lock's proof of possession.

    Lock IDs are unique per operator: nothing here looks at another operator's locks, so
    no answer says whether another operator holds the ID (the lock itself refuses other
    operators' keys). 201 for a new or revived (tombstoned) ID, 200 when this identity is
    already registered, 409 ``lock-registered`` when the operator's ID has another identity
    (replace it with ``PUT /v1/locks/{id}/identity``; the problem names the current label and
    lock key ID)."""
    if body.partner_id is not None:
        get_partner(c, body.partner_id)
    sign, kex = _proved(c, body.lock_id, body)
    lk = tenancy.find(c.s, c.operator_id, body.lock_id, lock=True)
    if lk is not None and lk.status != RETIRED:
        if lk.sign_public == sign and lk.kex_public == kex:
            return 200, lock_out(lk)
        cur = lock_out(lk)
        raise ApiError(409, "lock-registered",
                       f"lock {body.lock_id} is registered with another identity",
                       extra={"lock_id": cur.lock_id, "vehicle_label": cur.vehicle_label,
                              "lock_key_id": cur.lock_key_id})
    if lk is not None:  # a tombstone: versions and generations go on
        tenancy.revive(lk, sign_public=sign, kex_public=kex,
                       vehicle_label=body.vehicle_label or "", partner_id=body.partner_id,
                       now=c.now)
    else:
        lk = Lock(
            lock_id=body.lock_id,
            operator_id=c.operator_id,
            partner_id=body.partner_id,
            sign_public=sign,
            kex_public=kex,
            vehicle_label=body.vehicle_label or "",
            status=ACTIVE,
            revocation_version=0,
            incarnation=secrets.randbits(62),
            created_at=c.now,
        )
        c.s.add(lk)
    lk.care_plan = body.care_plan
    c.s.flush()
    c.audit("lock.register", lk.lock_id)
    return 201, lock_out(lk)


def list_page(c: Ctx, partner_id: str | None, after: int, limit: int) -> LockPage:
    """The operator's locks (not retired ones) after cursor ``after``, optionally of one
    partner."""
    q = select(Lock).where(Lock.operator_id == c.operator_id, Lock.pk > after,
                           Lock.status != RETIRED)
    if partner_id:
        q = q.where(Lock.partner_id == partner_id)
    rows, more = page(c.s.scalars(q.order_by(Lock.pk).limit(limit + 1)).all(), limit,
                      lambda lk: str(lk.pk))
    return LockPage(items=[lock_out(x) for x in rows], next_cursor=more)


def read(c: Ctx, lock_id: str) -> LockOut:
    """One lock (404 if it is not the caller's)."""
    return lock_out(get_lock(c, lock_id))


def update(c: Ctx, lock_id: str, body: LockPatch) -> LockOut:
    """Change the vehicle label, the partner (``partner_id: null`` detaches it) or the
    care plan (``null``: no driver cap)."""
    lk = get_lock(c, lock_id, lock=True)
    fields = body.model_fields_set
    if "partner_id" in fields:
        if body.partner_id is not None:
            get_partner(c, body.partner_id)
        lk.partner_id = body.partner_id
    if "vehicle_label" in fields:
        lk.vehicle_label = body.vehicle_label or ""
    if "care_plan" in fields:
        lk.care_plan = body.care_plan
    c.audit("lock.update", lk.lock_id, fields=sorted(fields))
    return lock_out(lk)


def _not_in_service(c: Ctx, lk: Lock, doing: str) -> None:
    """Installer tokens may not disable the phones of a lock in service."""
    if c.p.kind == INSTALLER and tenancy.in_service(c.s, lk, c.now):
        raise ApiError(403, "lock-in-service",
                       f"lock {lk.lock_id} has active key requests: an installer token cannot "
                       f"{doing}; the operator can (or ends its key requests first)")


def replace_identity(c: Ctx, lock_id: str, body: LockIdentityIn) -> LockOut:
    """New identity keys for a re-provisioned lock, with the new identity's proof: every key
    so far (wrapped to the old X25519 key) is revoked (the generation floor), a new
    incarnation starts; the same keys again change nothing. An installer token cannot do it
    for a lock in service (403 ``lock-in-service``)."""
    lk = get_lock(c, lock_id, lock=True)
    sign, kex = _proved(c, lock_id, body)
    if lk.sign_public == sign and lk.kex_public == kex:
        return lock_out(lk)  # already this identity: nothing to do
    _not_in_service(c, lk, "replace its identity")
    old_key_id = lock_out(lk).lock_key_id
    revoked = revoke_lock(c.s, c.now, lk.pk, reason="identity")
    c.s.refresh(lk)
    lk.sign_public, lk.kex_public = sign, kex
    lk.incarnation = secrets.randbits(62)
    lk.identity_changed_at = c.now
    reset_log_state(lk)
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
    """Suspend (every key revoked with the generation floor; no new ones issued) or resume."""
    lk = get_lock(c, lock_id, lock=True)
    lk.status = status
    revoked = 0
    if status == SUSPENDED:
        revoked = revoke_lock(c.s, c.now, lk.pk, reason="suspend")
        c.s.refresh(lk)
    c.audit(f"lock.{'resume' if status == ACTIVE else 'suspend'}", lk.lock_id, revoked_keys=revoked)
    return lock_out(lk)


def _decommission_out(c: Ctx, lk: Lock, keys: KeySet) -> DecommissionOut:
    return DecommissionOut(lock_id=lk.lock_id, lock_key_id=lock_key_id(lk.kex_public).hex(),
                           revocation_version=lk.revocation_version,
                           decommission_update=decommission_update(keys, lk, c.now))


def decommission(c: Ctx, lock_id: str, keys: KeySet) -> DecommissionOut:
    """Retire a lock: revoke every key first (generation floor), cancel its key requests,
    keep the row as a tombstone, and return the signed decommission update (protocol §7a)
    that phones and the installer carry to the lock. Again on a retired lock: the same
    retirement. Installer tokens only for a lock not in service."""
    lk = tenancy.find(c.s, c.operator_id, lock_id, lock=True)
    if lk is None:
        raise not_found("lock")
    if lk.status != RETIRED:
        _not_in_service(c, lk, "decommission it")
        revoked = tenancy.retire(c.s, lk, c.now)
        # a connected lock gets the update over its uplink too; its broker account and
        # SIM line go once its signed heartbeat shows it applied (kagiya.server.uplink.retire)
        outbox.enqueue(c.s, [lk.pk], outbox.DECOMMISSION, c.now)
        c.audit("lock.decommission", lk.lock_id, revoked_keys=revoked)
    return _decommission_out(c, lk, keys)


def _drop_uplink(c: Ctx, lk: Lock) -> dict[str, bool]:
    """A deleted lock's broker account and SIM line go with it at once (#16,
    docs/uplink.md): the account is deleted (the broker drops a session it had), the line
    cancelled through the operator's SIM control adapter (``cancel-pending`` when the
    provider does not answer; the lifecycle pass retries), both audited."""
    from kagiya.server.services.uplink import drop_account
    from kagiya.server.simcontrol.adapter import sim_for_settings
    from kagiya.server.simcontrol.lifecycle import cancel_line

    connected = drop_account(c.s, c.settings, lk.pk, lk.lock_id)
    if connected:
        c.audit("lock.uplink-disconnect", lk.lock_id)
    cancelled = cancel_line(c.s, sim_for_settings(c.settings)(lk.operator_id), lk.pk, c.now,
                            c.p.actor, "deleted")
    return {"uplink_dropped": connected, "line_cancelled": cancelled}


def decommission_again(c: Ctx, lock_id: str, keys: KeySet) -> DecommissionOut:
    """The decommission update of a retired lock, signed now (404 for a lock in service)."""
    lk = tenancy.find(c.s, c.operator_id, lock_id)
    if lk is None or lk.status != RETIRED:
        raise not_found("retired lock")
    return _decommission_out(c, lk, keys)


def delete_lock(c: Ctx, lock_id: str) -> DeletedOut:
    """Delete a lock: retired as by :func:`decommission` (every key revoked first, the ID
    kept as a tombstone so versions never go back), and its usage logs deleted."""
    lk = get_lock(c, lock_id, lock=True)
    revoked = tenancy.retire(c.s, lk, c.now)
    c.s.execute(delete(UsageLog).where(UsageLog.lock_pk == lk.pk))
    c.audit("lock.delete", lock_id, revoked_keys=revoked, **_drop_uplink(c, lk))
    return DeletedOut(deleted=lock_id)
