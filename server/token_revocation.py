"""Revoking bearer tokens: what refresh and suspension do to the tokens already handed out.

A token is a row (its SHA-256); deleting the row ends the token on every process at once.
A phone's refresh ends the phone's earlier tokens (a token copied off the phone stops with
the next refresh); suspending a user ends its phones' tokens (after a resume the phone
refreshes with its device key); suspending an operator ends its operator and installer
tokens (and, through the users, nothing else is needed: every request checks the operator).
"""

from __future__ import annotations

from kagiya.server.models import Phone, Token
from kagiya.server.principal import PHONE
from sqlalchemy import delete, select
from sqlalchemy.orm import Session


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def revoke_phone(session: Session, phone_id: str) -> int:
    """End every token of one phone; returns how many."""
    return _count(session.execute(delete(Token).where(Token.phone_id == phone_id)))


def revoke_user(session: Session, user_pk: int) -> int:
    """End every token of the user's phones; returns how many."""
    phones = select(Phone.id).where(Phone.user_pk == user_pk)
    return _count(
        session.execute(delete(Token).where(Token.kind == PHONE, Token.phone_id.in_(phones)))
    )


def revoke_operator(session: Session, operator_id: str) -> int:
    """End every token of an operator (operator, installer and phone tokens)."""
    return _count(session.execute(delete(Token).where(Token.operator_id == operator_id)))
