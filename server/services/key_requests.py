"""Key requests: validity-window rules, creation for an active user and lock, changes that
revoke the old keys (new version), cancellation."""

from __future__ import annotations

from kagiya.server.config import Settings
from kagiya.server.issuance import revoke_where
from kagiya.server.models import ACTIVE, CANCELLED, IssuedKey, KeyRequest, Lock, User
from kagiya.server.problems import ApiError
from kagiya.server.schemas import (
    KeyRequestIn,
    KeyRequestOut,
    KeyRequestPage,
    KeyRequestPatch,
    perm_bits,
)
from kagiya.server.secrets_store import new_id
from kagiya.server.services.context import Ctx
from kagiya.server.services.drivers import check_driver_cap
from kagiya.server.services.lookup import get_lock, get_request, get_user
from kagiya.server.services.paging import page
from kagiya.server.views import request_out
from sqlalchemy import select


def check_window(settings: Settings, now: int, nbf: int, exp: int) -> None:
    """422 ``invalid-window`` unless ``nbf < exp``, ``exp`` is in the future and the window
    is at most ``settings.max_window_s`` long."""
    if exp <= nbf:
        raise ApiError(422, "invalid-window", "exp must be after nbf")
    if exp <= now:
        raise ApiError(422, "invalid-window", "the window has already ended")
    if exp - nbf > settings.max_window_s:
        raise ApiError(
            422, "invalid-window", f"the window may be at most {settings.max_window_s} s long"
        )


def create(c: Ctx, body: KeyRequestIn) -> KeyRequestOut:
    """Store a key request (effective at once: the user's phones download its key). The
    user and lock must be the caller's and active (409 ``user-suspended``/``lock-suspended``)
    and the vehicle's care plan must admit one more driver (409 ``driver-cap-reached``)."""
    check_window(c.settings, c.now, body.nbf, body.exp)
    u = get_user(c, body.user_id)
    lk = get_lock(c, body.lock_id, lock=True)  # concurrent requests count drivers in turn
    if u.status != ACTIVE:
        raise ApiError(409, "user-suspended", "this user ID is suspended")
    if lk.status != ACTIVE:
        raise ApiError(409, "lock-suspended", "this lock is suspended")
    check_driver_cap(c, lk, u.pk)
    r = KeyRequest(
        id=new_id("kr"),
        operator_id=c.operator_id,
        user_pk=u.pk,
        lock_pk=lk.pk,
        nbf=body.nbf,
        exp=body.exp,
        permissions=perm_bits(body.permissions),
        version=1,
        status=ACTIVE,
        created_at=c.now,
        updated_at=c.now,
    )
    c.s.add(r)
    c.s.flush()
    c.audit("key-request.create", r.id, user_id=u.user_id, lock_id=lk.lock_id)
    return request_out(r, u.user_id, lk.lock_id)


def _out(c: Ctx, r: KeyRequest) -> KeyRequestOut:
    uid = c.s.scalar(select(User.user_id).where(User.pk == r.user_pk)) or ""
    lid = c.s.scalar(select(Lock.lock_id).where(Lock.pk == r.lock_pk)) or ""
    return request_out(r, uid, lid)


def list_page(
    c: Ctx,
    *,
    user_id: str | None,
    lock_id: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> KeyRequestPage:
    """The operator's key requests ordered by ID after cursor ``after`` (a request ID),
    optionally of one user, one lock, one status."""
    q = (
        select(KeyRequest, User.user_id, Lock.lock_id)
        .join(User, User.pk == KeyRequest.user_pk)
        .join(Lock, Lock.pk == KeyRequest.lock_pk)
        .where(KeyRequest.operator_id == c.operator_id)
    )
    # one user's / one lock's requests: an equality on the request's own column, so the
    # (user_pk, id) / (lock_pk, id) index gives the page in order (migration 0011)
    if user_id:
        q = q.where(KeyRequest.user_pk == select(User.pk).where(
            User.user_id == user_id, User.operator_id == c.operator_id).scalar_subquery())
    if lock_id:
        q = q.where(KeyRequest.lock_pk == select(Lock.pk).where(
            Lock.lock_id == lock_id, Lock.operator_id == c.operator_id).scalar_subquery())
    if status:
        q = q.where(KeyRequest.status == status)
    if after:
        q = q.where(KeyRequest.id > after)
    rows, more = page(c.s.execute(q.order_by(KeyRequest.id).limit(limit + 1)).all(), limit,
                      lambda row: row[0].id)
    return KeyRequestPage(
        items=[request_out(r, uid, lid) for r, uid, lid in rows], next_cursor=more
    )


def read(c: Ctx, request_id: str) -> KeyRequestOut:
    """One key request (404 if it is not the caller's)."""
    return _out(c, get_request(c, request_id))


def change(c: Ctx, request_id: str, body: KeyRequestPatch) -> KeyRequestOut:
    """New window and/or permissions: the version goes up and every key issued so far is
    revoked (phones download the new version). 409 ``request-cancelled`` for a cancelled
    request, 422 ``nothing-to-change`` for an empty change."""
    r = get_request(c, request_id, lock=True)
    if r.status != ACTIVE:
        raise ApiError(409, "request-cancelled", "a cancelled key request cannot be changed")
    fields = {f for f in body.model_fields_set if getattr(body, f) is not None}
    if not fields:
        raise ApiError(422, "nothing-to-change", "give nbf, exp or permissions")
    nbf = body.nbf if body.nbf is not None else r.nbf
    exp = body.exp if body.exp is not None else r.exp
    check_window(c.settings, c.now, nbf, exp)
    r.nbf, r.exp = nbf, exp
    if body.permissions is not None:
        r.permissions = perm_bits(body.permissions)
    r.version += 1
    r.updated_at = c.now
    revoked = revoke_where(c.s, c.now, IssuedKey.request_id == r.id)
    c.audit(
        "key-request.change",
        r.id,
        fields=sorted(fields),
        revoked_keys=revoked,
        version=r.version,
    )
    return _out(c, r)


def cancel(c: Ctx, request_id: str) -> KeyRequestOut:
    """Cancel: the request's keys are revoked (in the lock's next revocation update).
    Cancelling again changes nothing."""
    r = get_request(c, request_id, lock=True)
    if r.status != CANCELLED:
        r.status = CANCELLED
        r.updated_at = c.now
        revoked = revoke_where(c.s, c.now, IssuedKey.request_id == r.id)
        c.audit("key-request.cancel", r.id, revoked_keys=revoked)
    return _out(c, r)
