"""User IDs: issuing within the contract quota, suspension, leaked-ID handling, deletion,
disclosure export and enrollment codes."""

from __future__ import annotations

from typing import Any

from kagiya.sdk.enrollment import enrollment_link
from kagiya.server import audit, token_revocation
from kagiya.server.issuance import revoke_where
from kagiya.server.models import (
    ACTIVE,
    SUSPENDED,
    EnrollmentCode,
    IssuedKey,
    KeyRequest,
    Lock,
    Operator,
    Phone,
    UsageLog,
    User,
)
from kagiya.server.problems import ApiError
from kagiya.server.schemas import (
    DeletedOut,
    EnrollmentCodeOut,
    UserExport,
    UserOut,
    UserPage,
)
from kagiya.server.secrets_store import new_enrollment_code, new_user_id, token_hash
from kagiya.server.services.context import Ctx
from kagiya.server.services.lookup import get_user
from kagiya.server.services.paging import page
from kagiya.server.views import log_out, request_out, user_out
from sqlalchemy import delete, func, select


def create(c: Ctx) -> UserOut:
    """Issue a new user ID; 403 ``quota-exceeded`` once the contract quota is used up.

    The operator row is locked first, so two concurrent calls cannot both take the last ID.
    """
    op = c.s.scalars(select(Operator).where(Operator.id == c.operator_id).with_for_update()).one()
    used = c.s.scalar(select(func.count()).select_from(User).where(User.operator_id == op.id))
    if (used or 0) >= op.quota:
        raise ApiError(
            403, "quota-exceeded", f"the contract allows {op.quota} user IDs and all are in use"
        )
    u = User(
        user_id=new_user_id(), operator_id=op.id, status=ACTIVE, leaked=False, created_at=c.now
    )
    c.s.add(u)
    c.s.flush()
    c.audit("user.create", u.user_id)
    return user_out(u)


def list_page(c: Ctx, status: str | None, after: int, limit: int) -> UserPage:
    """The operator's user IDs after cursor ``after``, optionally only those in ``status``."""
    q = select(User).where(User.operator_id == c.operator_id, User.pk > after)
    if status:
        q = q.where(User.status == status)
    rows, more = page(c.s.scalars(q.order_by(User.pk).limit(limit + 1)).all(), limit,
                      lambda u: str(u.pk))
    return UserPage(items=[user_out(u) for u in rows], next_cursor=more)


def read(c: Ctx, user_id: str) -> UserOut:
    """One user ID (404 if it is not the caller's)."""
    return user_out(get_user(c, user_id))


def user_keys(user: User) -> Any:
    """SQL condition: the issued keys of ``user``'s key requests."""
    return IssuedKey.request_id.in_(select(KeyRequest.id).where(KeyRequest.user_pk == user.pk))


def set_status(c: Ctx, user_id: str, status: str, *, leaked: bool = False) -> UserOut:
    """Suspend (its keys are revoked) or resume a user ID; ``leaked`` also marks it leaked
    and removes its phones and enrollment codes. A leaked ID is never resumed (409
    ``user-leaked``): the operator issues a new one."""
    u = get_user(c, user_id, lock=True)
    if status == ACTIVE and u.leaked:
        raise ApiError(
            409, "user-leaked", "a leaked user ID cannot be resumed; issue a new user ID"
        )
    u.status = status
    revoked = 0
    if status == SUSPENDED:
        revoked = revoke_where(c.s, c.now, user_keys(u))
        token_revocation.revoke_user(c.s, u.pk)  # a resume needs a refresh with the device key
    if leaked:
        u.leaked = True
        c.s.execute(delete(Phone).where(Phone.user_pk == u.pk))
        c.s.execute(delete(EnrollmentCode).where(EnrollmentCode.user_pk == u.pk))
    action = "user.leaked" if leaked else f"user.{'resume' if status == ACTIVE else 'suspend'}"
    c.audit(action, u.user_id, revoked_keys=revoked)
    return user_out(u)


def suspend(c: Ctx, user_id: str) -> UserOut:
    """Suspend: keys revoked, its phones get nothing until resumed."""
    return set_status(c, user_id, SUSPENDED)


def resume(c: Ctx, user_id: str) -> UserOut:
    """Resume a suspended (not leaked) user ID."""
    return set_status(c, user_id, ACTIVE)


def mark_leaked(c: Ctx, user_id: str) -> UserOut:
    """A leaked ID: suspended at once, keys revoked, phones and codes removed, for good."""
    return set_status(c, user_id, SUSPENDED, leaked=True)


def delete_user(c: Ctx, user_id: str) -> DeletedOut:
    """Delete a user ID and everything about it: keys are revoked first (the locks learn of
    it), then its usage logs, keys, key requests, phones and codes are deleted."""
    u = get_user(c, user_id, lock=True)
    revoked = revoke_where(c.s, c.now, user_keys(u))
    c.s.execute(
        delete(UsageLog).where(UsageLog.operator_id == c.operator_id, UsageLog.sub == u.user_id)
    )
    c.s.execute(delete(IssuedKey).where(user_keys(u)))
    c.s.execute(delete(KeyRequest).where(KeyRequest.user_pk == u.pk))
    c.s.execute(delete(Phone).where(Phone.user_pk == u.pk))
    c.s.execute(delete(EnrollmentCode).where(EnrollmentCode.user_pk == u.pk))
    c.s.delete(u)
    c.audit("user.delete", user_id, revoked_keys=revoked)
    c.s.flush()
    # the audit log keeps what happened, not who: the ID becomes a pseudonym everywhere
    audit.pseudonymise_user(c.s, c.operator_id, user_id)
    return DeletedOut(deleted=user_id)


def export(c: Ctx, user_id: str) -> UserExport:
    """Everything stored about a user ID (a disclosure request)."""
    u = get_user(c, user_id)
    reqs = c.s.execute(
        select(KeyRequest, Lock.lock_id)
        .join(Lock, Lock.pk == KeyRequest.lock_pk)
        .where(KeyRequest.user_pk == u.pk)
        .order_by(KeyRequest.id)
    ).all()
    phones = c.s.scalars(select(Phone).where(Phone.user_pk == u.pk).order_by(Phone.id)).all()
    keys = c.s.scalars(select(IssuedKey).where(user_keys(u)).order_by(IssuedKey.iat)).all()
    logs = c.s.execute(
        select(UsageLog, Lock.lock_id)
        .join(Lock, Lock.pk == UsageLog.lock_pk)
        .where(UsageLog.operator_id == c.operator_id, UsageLog.sub == u.user_id)
        .order_by(UsageLog.id)
    ).all()
    return UserExport(
        user=user_out(u),
        key_requests=[request_out(r, u.user_id, lid) for r, lid in reqs],
        phones=[
            {
                "phone_id": ph.id,
                "device_public": ph.device_public.hex(),
                "created_at": ph.created_at,
            }
            for ph in phones
        ],
        issued_keys=[
            {
                "key_id": k.cti.hex(),
                "request_id": k.request_id,
                "phone_id": k.phone_id,
                "nbf": k.nbf,
                "exp": k.exp,
                "iat": k.iat,
                "revoked": k.revoked,
            }
            for k in keys
        ],
        usage_logs=[log_out(row, lid) for row, lid in logs],
    )


def create_enrollment_code(c: Ctx, user_id: str, server_url: str) -> EnrollmentCodeOut:
    """A one-time enrollment code for an active user ID (409 ``user-suspended``); only its
    hash is stored. ``server_url`` goes into the enrollment link with the code."""
    u = get_user(c, user_id)
    if u.status != ACTIVE:
        raise ApiError(409, "user-suspended", "this user ID is suspended")
    code = new_enrollment_code()
    exp = c.now + c.settings.enrollment_code_ttl_s
    c.s.add(
        EnrollmentCode(
            code_hash=token_hash(code), operator_id=c.operator_id, user_pk=u.pk, expires_at=exp
        )
    )
    c.audit("enrollment-code.create", u.user_id)
    return EnrollmentCodeOut(code=code, user_id=u.user_id, expires_at=exp,
                             enrollment_link=enrollment_link(server_url, code))
