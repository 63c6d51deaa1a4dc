"""The console's view of one driver's My Page account: how they sign in, the terms version
they agreed to, their contact details, whether their contract still runs; and the actions
the operator API offers for it (a My Page invitation with a QR code, withdrawal at contract
end). Pages: :mod:`kagiya.server.web.routes_console_notices`."""

from __future__ import annotations

from dataclasses import dataclass

from kagiya.server.models import User
from kagiya.server.web import account, identities, notices, store
from kagiya.server.web.access import Member
from sqlalchemy import func, select
from sqlalchemy.orm import Session


@dataclass
class Account:
    """A driver's My Page account as the operator sees it."""

    user_id: str
    status: str
    passkeys: int
    issuers: list[str]
    sessions: int
    agreed: str | None
    email: str
    phone: str
    contact_at: int | None
    contract_until: int | None


def load(s: Session, m: Member, user_id: str, now: int) -> Account:
    """The account of ``user_id`` (the caller checked the member's scope)."""
    user = s.scalars(select(User).where(User.user_id == user_id,
                                        User.operator_id == m.operator.id)).one()
    sessions = s.scalar(select(func.count()).select_from(store.WebSession).where(
        store.WebSession.user_pk == user.pk, store.WebSession.expires_at > now))
    agreed = s.scalar(select(notices.Notice.version).join(
        notices.TermsAcceptance, notices.TermsAcceptance.notice_id == notices.Notice.id)
        .where(notices.TermsAcceptance.user_pk == user.pk)
        .order_by(notices.Notice.starts_at.desc()).limit(1))
    contact = notices.contact_of(s, user.pk)
    return Account(user.user_id, user.status, len(store.passkeys_of(s, user.pk)),
                   identities.issuers_of(s, user.pk), int(sessions or 0), agreed,
                   contact.email if contact else "", contact.phone if contact else "",
                   contact.updated_at if contact else None,
                   account.running_until(s, user.pk, now))
