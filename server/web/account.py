"""A driver's account on My Page: contact details and withdrawal at the end of the contract.

- **Contact** (contract portal 第9条5項: the driver reports a change of contact): the one
  part of the profile a driver changes themselves. Everything else (user ID, vehicles, leases)
  is the operator's contract data and changes only through the operator.
- **Withdrawal** (第12条1項): the My Page contract ends with the vehicle contract. When no
  lease of the driver runs any more, the driver (on My Page) or the operator (API, console)
  ends the account: every key of the driver's phones is revoked (into the locks' signed
  revocation updates), their tokens, phones and enrollment codes are deleted, every way to sign
  in to My Page (passkeys, sessions, invitations, linked IDs) and the contact details are
  deleted, and the user ID is suspended. Key requests and usage logs stay, as the privacy
  policy allows (第12条4項); erasing them is a data-subject request. A new contract starts
  over with a new invitation (第12条5項). While a lease runs, withdrawal is refused (409
  ``contract-running``): the operator cancels the lease first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kagiya.server import audit, token_revocation
from kagiya.server.issuance import revoke_where
from kagiya.server.models import (
    ACTIVE,
    SUSPENDED,
    EnrollmentCode,
    KeyRequest,
    Phone,
    User,
)
from kagiya.server.problems import ApiError
from kagiya.server.services.context import Ctx
from kagiya.server.services.lookup import get_user
from kagiya.server.services.users import user_keys
from kagiya.server.web import identities, notices, store
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

EMAIL = re.compile(r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z]{2,}$")
PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,30}$")


class ContactOut(BaseModel):
    """A driver's contact details as they gave them (empty when they gave none)."""

    user_id: str
    email: str
    phone: str
    updated_at: int | None


class WithdrawalOut(BaseModel):
    """What a withdrawal did."""

    user_id: str
    revoked_keys: int
    phones: int
    status: str


class ContactIn(BaseModel):
    """New contact details (both may be empty)."""

    model_config = ConfigDict(extra="forbid")
    email: str = Field("", max_length=254)
    phone: str = Field("", max_length=32)


def check_contact(email: str, phone: str) -> tuple[str, str]:
    """The normalised contact, or 422 ``invalid-contact``."""
    email, phone = email.strip(), phone.strip()
    if email and not EMAIL.match(email):
        raise ApiError(422, "invalid-contact", "the e-mail address is not valid",
                       extra={"field": "email"})
    if phone and not PHONE.match(phone):
        raise ApiError(422, "invalid-contact", "the phone number is not valid",
                       extra={"field": "phone"})
    return email, phone


def set_contact(s: Session, user_pk: int, email: str, phone: str, now: int) -> list[str]:
    """Save the driver's contact details; which fields changed (audited, not their values)."""
    email, phone = check_contact(email, phone)
    row = s.get(notices.Contact, user_pk)
    if row is None:
        row = notices.Contact(user_pk=user_pk, email="", phone="", updated_at=now)
        s.add(row)
    changed = [f for f, old, new in (("email", row.email, email), ("phone", row.phone, phone))
               if old != new]
    row.email, row.phone, row.updated_at = email, phone, now
    user = s.get(User, user_pk)
    if changed and user is not None:
        audit.record(s, now, f"user:{user.user_id}", "mypage.contact-change",
                     operator_id=user.operator_id, target=user.user_id,
                     detail={"fields": changed})
    return changed


def contact(c: Ctx, user_id: str) -> ContactOut:
    """The operator reads a driver's contact details (404 for another operator's user)."""
    user = get_user(c, user_id)
    row = notices.contact_of(c.s, user.pk)
    return ContactOut(user_id=user.user_id, email=row.email if row else "",
                      phone=row.phone if row else "", updated_at=row.updated_at if row else None)


def running_until(s: Session, user_pk: int, now: int) -> int | None:
    """The end of the driver's last running lease (None: no lease runs, the contract ended)."""
    end = s.scalar(select(func.max(KeyRequest.exp)).where(
        KeyRequest.user_pk == user_pk, KeyRequest.status == ACTIVE, KeyRequest.exp > now))
    return int(end) if end is not None else None


@dataclass
class Withdrawn:
    """What a withdrawal did."""

    user_id: str
    revoked_keys: int
    phones: int


def withdraw(s: Session, user: User, now: int, actor: str, *, reason: str = "") -> Withdrawn:
    """End the driver's My Page account at the end of their contract (see the module);
    ``reason`` (audited) is ``contract-end`` when the housekeeping pass does it
    (:mod:`kagiya.server.web.contract_end`)."""
    from kagiya.server.web import contract_end

    if running_until(s, user.pk, now) is not None:
        raise ApiError(409, "contract-running",
                       "a lease of this user still runs; it ends the contract, or cancel it")
    revoked = revoke_where(s, now, user_keys(user))
    token_revocation.revoke_user(s, user.pk)
    phones = len(s.scalars(delete(Phone).where(Phone.user_pk == user.pk)
                           .returning(Phone.id)).all())
    s.execute(delete(EnrollmentCode).where(EnrollmentCode.user_pk == user.pk))
    for model in (store.Passkey, store.WebSession, store.Invitation):
        s.execute(delete(model).where(model.user_pk == user.pk))
    s.execute(delete(identities.Identity).where(identities.Identity.user_pk == user.pk))
    s.execute(delete(notices.Contact).where(notices.Contact.user_pk == user.pk))
    contract_end.close_for_withdrawal(s, user, now)
    user.status = SUSPENDED
    detail: dict[str, object] = {"revoked_keys": revoked, "phones": phones}
    if reason:
        detail["reason"] = reason
    audit.record(s, now, actor, "mypage.withdrawal", operator_id=user.operator_id,
                 target=user.user_id, detail=detail)
    return Withdrawn(user.user_id, revoked, phones)


def withdraw_by_operator(c: Ctx, user_id: str) -> WithdrawalOut:
    """The operator ends a driver's My Page account at contract end (409
    ``contract-running`` while a lease runs)."""
    user = get_user(c, user_id, lock=True)
    done = withdraw(c.s, user, c.now, c.p.actor)
    return WithdrawalOut(user_id=done.user_id, revoked_keys=done.revoked_keys,
                         phones=done.phones, status=user.status)
