"""Who may do what in the operator console: three roles and the partner scope.

- ``admin``: everything, including the staff list and invitations.
- ``staff``: everything of the operator except managing staff.
- ``partner``: a partner's staff (privacy policy §4(3)–(4)): only that partner's locks, the
  users who hold a key request on one of them, their key requests and usage logs. They can
  issue a key request on their locks (for a new user ID, or one they can already see) and
  hand out enrollment codes to those users; nothing else.

Anything outside a member's scope is "not found" (404 ``not-found``), exactly like another
operator's object in the API, so guessing URLs tells nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kagiya.sdk.i18n import N_
from kagiya.server.models import KeyRequest, Lock, User
from kagiya.server.principal import CONSOLE, OperatorRef, Principal
from kagiya.server.problems import ApiError, not_found
from sqlalchemy import exists, select, true
from sqlalchemy.orm import Session

ADMIN, STAFF, PARTNER = "admin", "staff", "partner"
ROLES = (ADMIN, STAFF, PARTNER)
ROLE_WORDS = {ADMIN: N_("administrator"), STAFF: N_("staff"), PARTNER: N_("partner staff")}
EVERYONE = frozenset(ROLES)
OPERATOR_WIDE = frozenset({ADMIN, STAFF})

# the tested matrix (tests/web/test_console_access.py): ability -> roles that have it
ABILITIES: dict[str, frozenset[str]] = {
    "users.read": EVERYONE,
    "users.write": OPERATOR_WIDE,  # issue IDs, suspend/resume, leaked
    "enrollment.create": EVERYONE,
    "partners.read": OPERATOR_WIDE,
    "partners.write": frozenset({ADMIN}),
    "locks.read": EVERYONE,
    "locks.write": OPERATOR_WIDE,
    "requests.read": EVERYONE,
    "requests.write": EVERYONE,
    "logs.read": EVERYONE,
    "audit.read": OPERATOR_WIDE,
    "notices.read": OPERATOR_WIDE,  # My Page notices, maintenance, terms
    "notices.write": OPERATOR_WIDE,
    "privacy.read": OPERATOR_WIDE,  # data-subject requests and the provisions register
    "privacy.write": OPERATOR_WIDE,
    "staff.manage": frozenset({ADMIN}),
}


@dataclass(frozen=True)
class Member:
    """A signed-in staff member of one operator."""

    pk: int
    operator: OperatorRef
    name: str
    role: str
    partner_id: str | None

    def can(self, ability: str) -> bool:
        """Does this member's role have ``ability``?"""
        return self.role in ABILITIES.get(ability, frozenset())

    def require(self, ability: str) -> None:
        """403 ``role-forbidden`` unless the role has ``ability``."""
        if not self.can(ability):
            raise ApiError(403, "role-forbidden", f"the {self.role} role may not do this")

    @property
    def principal(self) -> Principal:
        """The caller the service functions see (audited as this staff member)."""
        return Principal(CONSOLE, self.operator, token_ref=f"staff{self.pk}")

    @property
    def scoped(self) -> bool:
        """Is this a partner's staff (seeing one partner's data only)?"""
        return self.role == PARTNER


def locks_visible(m: Member) -> Any:
    """SQL condition on :class:`Lock`: the locks ``m`` may see."""
    if not m.scoped:
        return true()
    return Lock.partner_id == m.partner_id


def users_visible(m: Member) -> Any:
    """SQL condition on :class:`User`: the users ``m`` may see."""
    if not m.scoped:
        return true()
    return exists(select(KeyRequest.id).join(Lock, Lock.pk == KeyRequest.lock_pk).where(
        KeyRequest.user_pk == User.pk, Lock.partner_id == m.partner_id))


def check_lock(s: Session, m: Member, lock_id: str) -> None:
    """404 unless ``m`` may see lock ``lock_id`` (of its operator)."""
    if s.scalar(select(Lock.pk).where(Lock.lock_id == lock_id,
                                      Lock.operator_id == m.operator.id,
                                      locks_visible(m))) is None:
        raise not_found("lock")


def check_user(s: Session, m: Member, user_id: str) -> None:
    """404 unless ``m`` may see user ``user_id`` (of its operator)."""
    if s.scalar(select(User.pk).where(User.user_id == user_id,
                                      User.operator_id == m.operator.id,
                                      users_visible(m))) is None:
        raise not_found("user")


def check_request(s: Session, m: Member, request_id: str) -> None:
    """404 unless ``m`` may see key request ``request_id`` (its lock is visible)."""
    if s.scalar(select(KeyRequest.id).join(Lock, Lock.pk == KeyRequest.lock_pk).where(
            KeyRequest.id == request_id, KeyRequest.operator_id == m.operator.id,
            locks_visible(m))) is None:
        raise not_found("key request")


def check_new_driver(s: Session, m: Member, user_id: str) -> None:
    """404 unless ``m`` may give user ``user_id`` a key request: operator-wide staff any
    user, a partner's staff a user they see or one who holds no key request yet (a new
    driver; saying so tells nothing about another partner's customers)."""
    if not m.scoped:
        return
    fresh = ~exists(select(KeyRequest.id).where(KeyRequest.user_pk == User.pk))
    if s.scalar(select(User.pk).where(User.user_id == user_id,
                                      User.operator_id == m.operator.id,
                                      users_visible(m) | fresh)) is None:
        raise not_found("user")
