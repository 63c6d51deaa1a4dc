"""My Page's service functions: what a driver sees, and "I lost my phone".

Everything is scoped to one user (the signed-in session's): a driver never reads another
user's rows. Route handlers (:mod:`kagiya.server.web.routes_mypage`) only render these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kagiya.server import audit
from kagiya.server.issuance import revoke_where
from kagiya.server.models import ACTIVE, IssuedKey, KeyRequest, Lock, Phone, Token, UsageLog, User
from kagiya.server.schemas import MyPageInvitationOut
from kagiya.server.services import usage_logs
from kagiya.server.services.context import Ctx
from kagiya.server.services.lookup import get_user
from kagiya.server.web import account, notices, store
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

HISTORY_LIMIT = 50


@dataclass
class Lease:
    """One key request of the driver: the vehicle, the window, and the phone's short keys."""

    request_id: str
    lock_id: str
    vehicle: str
    nbf: int
    exp: int
    permissions: int
    status: str
    key_exp: int | None  # expiry of the newest unrevoked key a phone holds, if any


@dataclass
class PhoneRow:
    """An enrolled phone of the driver."""

    phone_id: str
    enrolled_at: int
    live_keys: int


@dataclass
class MyPage:
    """What My Page shows."""

    user_id: str
    operator_id: str
    status: str
    passkeys: int = 0
    email: str = ""
    phone: str = ""
    contract_until: int | None = None  # the end of the last running lease (None: ended)
    leases: list[Lease] = field(default_factory=list)
    phones: list[PhoneRow] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def load(s: Session, user_pk: int, now: int) -> MyPage | None:
    """My Page of ``user_pk`` (None when the user no longer exists)."""
    user = s.get(User, user_pk)
    if user is None:
        return None
    page = MyPage(user.user_id, user.operator_id, user.status)
    page.passkeys = len(store.passkeys_of(s, user_pk))
    contact = notices.contact_of(s, user_pk)
    if contact is not None:
        page.email, page.phone = contact.email, contact.phone
    page.contract_until = account.running_until(s, user_pk, now)
    newest = (
        select(IssuedKey.request_id, func.max(IssuedKey.exp).label("exp"))
        .join(Phone, Phone.id == IssuedKey.phone_id)
        .where(Phone.user_pk == user_pk, IssuedKey.revoked.is_(False), IssuedKey.exp > now)
        .group_by(IssuedKey.request_id)
        .subquery()
    )
    rows = s.execute(
        select(KeyRequest, Lock.lock_id, Lock.vehicle_label, newest.c.exp)
        .join(Lock, Lock.pk == KeyRequest.lock_pk)
        .outerjoin(newest, newest.c.request_id == KeyRequest.id)
        .where(KeyRequest.user_pk == user_pk)
        .order_by(KeyRequest.exp.desc())
    ).all()
    for req, lock_id, label, key_exp in rows:
        status = req.status if req.status != ACTIVE or req.exp > now else "ended"
        page.leases.append(Lease(req.id, lock_id, label, req.nbf, req.exp, req.permissions,
                                 status, key_exp))
    for phone in s.scalars(select(Phone).where(Phone.user_pk == user_pk)
                           .order_by(Phone.created_at)):
        live = s.scalar(select(func.count()).select_from(IssuedKey).where(
            IssuedKey.phone_id == phone.id, IssuedKey.revoked.is_(False), IssuedKey.exp > now))
        page.phones.append(PhoneRow(phone.id, phone.created_at, int(live or 0)))
    logs = s.execute(  # with the refusals of the driver's keys (logged by key ID alone)
        usage_logs.with_holder(
            select(UsageLog.time, UsageLog.event, UsageLog.code, Lock.lock_id,
                   Lock.vehicle_label).join(Lock, Lock.pk == UsageLog.lock_pk))
        .where(usage_logs.of_user(user.user_id), UsageLog.operator_id == user.operator_id)
        .order_by(UsageLog.time.desc(), UsageLog.id.desc()).limit(HISTORY_LIMIT)
    ).all()
    page.history = [{"time": t, "event": e, "code": c, "lock_id": lid, "vehicle": label}
                    for t, e, c, lid, label in logs]
    return page


@dataclass
class LostPhone:
    """What "I lost my phone" did."""

    phone_id: str
    revoked_keys: int
    tokens: int
    lock_ids: list[str]
    latest_key_exp: int


def report_lost(s: Session, user_pk: int, phone_id: str, now: int) -> LostPhone | None:
    """Revoke every key of the user's phone ``phone_id`` and end its tokens and enrollment,
    in one transaction (None when the phone is not this user's).

    The revocations go into the affected locks' signed revocation updates (their versions are
    bumped) and reach an offline lock with the next phone that syncs and visits it; keys the
    lock never hears about still end at their own expiry, reported as ``latest_key_exp``.
    """
    phone = s.scalar(select(Phone).where(Phone.id == phone_id, Phone.user_pk == user_pk)
                     .with_for_update())
    if phone is None:
        return None
    live = s.execute(
        select(IssuedKey.exp, Lock.lock_id).join(Lock, Lock.pk == IssuedKey.lock_pk).where(
            IssuedKey.phone_id == phone.id, IssuedKey.revoked.is_(False), IssuedKey.exp > now)
    ).all()
    revoked = revoke_where(s, now, IssuedKey.phone_id == phone.id)
    tokens = len(s.scalars(delete(Token).where(Token.phone_id == phone.id)
                           .returning(Token.token_hash)).all())
    s.delete(phone)  # the device key can never sign in again (its issued keys go with it)
    user = s.get(User, user_pk)
    audit.record(s, now, f"user:{user.user_id if user else user_pk}", "phone.lost",
                 operator_id=phone.operator_id, target=phone_id,
                 detail={"revoked_keys": revoked, "tokens": tokens})
    return LostPhone(phone_id, revoked, tokens, sorted({r.lock_id for r in live}),
                     max((r.exp for r in live), default=now))


def create_invitation(c: Ctx, user_id: str, base_url: str) -> MyPageInvitationOut:
    """A one-time My Page link for the operator's user ``user_id`` (404 for another's)."""
    user = get_user(c, user_id)
    token = store.new_invitation(c.s, user.pk, c.now)
    c.audit("mypage.invitation", user.user_id)
    return MyPageInvitationOut(user_id=user.user_id, url=f"{base_url}/my/welcome?invite={token}",
                               expires_at=c.now + store.INVITATION_TTL_S)
