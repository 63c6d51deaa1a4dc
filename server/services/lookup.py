"""Operator-scoped lookups: another operator's object is "not found" too (no existence leak)."""

from __future__ import annotations

from typing import Any, TypeVar

from kagiya.server.models import RETIRED, KeyRequest, Lock, Partner, User
from kagiya.server.problems import not_found
from kagiya.server.services.context import Ctx
from sqlalchemy import select

Row = TypeVar("Row")


def _owned(c: Ctx, model: type[Row], column: Any, value: str, what: str, lock: bool) -> Row:
    """The row of ``model`` whose ``column`` is ``value`` and which belongs to the caller's
    operator (``lock``: ``SELECT … FOR UPDATE``), or 404 ``not-found``."""
    q = select(model).where(column == value, model.operator_id == c.operator_id)  # type: ignore[attr-defined]
    if lock:
        q = q.with_for_update()
    row = c.s.scalars(q).first()
    if row is None:
        raise not_found(what)
    return row


def get_user(c: Ctx, user_id: str, *, lock: bool = False) -> User:
    """The caller's user ``user_id`` or 404."""
    return _owned(c, User, User.user_id, user_id, "user", lock)


def get_lock(c: Ctx, lock_id: str, *, lock: bool = False) -> Lock:
    """The caller's lock ``lock_id`` or 404 (a retired lock, a tombstone, is not found)."""
    row = _owned(c, Lock, Lock.lock_id, lock_id, "lock", lock)
    if row.status == RETIRED:
        raise not_found("lock")
    return row


def get_partner(c: Ctx, partner_id: str, *, lock: bool = False) -> Partner:
    """The caller's partner or 404."""
    return _owned(c, Partner, Partner.id, partner_id, "partner", lock)


def get_request(c: Ctx, request_id: str, *, lock: bool = False) -> KeyRequest:
    """The caller's key request or 404."""
    return _owned(c, KeyRequest, KeyRequest.id, request_id, "key request", lock)
