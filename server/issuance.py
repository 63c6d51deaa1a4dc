"""Issuing digital keys, revoking them, and building revocation updates and time statements.

A key request can be valid for years (leases of 360 or 710 days); the keys issued for it are
not. Each issued key lives at most ``key_lifetime_s`` (protocol §3 caps it at 400 days) and is
re-issued on download while the request is active, so a revoked key that somehow misses a
lock still stops working soon. A changed request is re-issued under a new key ID and the old
keys are revoked; a cancelled request's keys are revoked. Revocation bumps the lock's
``revocation_version``; the next update (a full snapshot, protocol §7) carries them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kagiya.sdk.credential import issue_credential
from kagiya.sdk.errors import ProtocolError
from kagiya.sdk.signed import RevocationUpdate, sign_revocation_update, sign_time_statement
from kagiya.server.config import Settings
from kagiya.server.issuer import IssuerStore
from kagiya.server.models import (
    ACTIVE,
    IssuedKey,
    KeyRequest,
    Lock,
    Operator,
    Partner,
    Phone,
    Revocation,
    User,
)
from kagiya.server.secrets_store import Sealer
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

MAX_PROTOCOL_LIFETIME = 400 * 86400  # protocol §3
MAX_REVOCATION_ENTRIES = 64  # protocol §15
_SECRET_CONTEXT = b"kagiya key secret "
log = logging.getLogger("kagiya.server")


@dataclass
class Issuer:
    """What issuance needs: settings, the issuer key store and the sealer."""

    settings: Settings
    keys: IssuerStore
    sealer: Sealer


def key_window(settings: Settings, nbf: int, exp: int, now: int) -> tuple[int, int] | None:
    """The (nbf, exp) of a key issued now for a request window, or None when it is over."""
    if now >= exp:
        return None
    lifetime = min(settings.key_lifetime_s, MAX_PROTOCOL_LIFETIME)
    start = max(nbf, now - settings.nbf_backdate_s)
    end = min(exp, max(now, nbf) + lifetime, start + lifetime)
    if end <= start:
        return None
    return start, end


def revoke_where(session: Session, now: int, *conditions: ColumnElement[bool]) -> int:
    """Revoke every unexpired, unrevoked issued key matching ``conditions``.

    Adds the key IDs to their locks' revocation lists and bumps each affected lock's
    revocation version. Returns how many keys were revoked.
    """
    rows = session.execute(
        select(IssuedKey.cti, IssuedKey.lock_pk, IssuedKey.exp).where(
            IssuedKey.revoked.is_(False), IssuedKey.exp > now, *conditions
        )
    ).all()
    if not rows:
        return 0
    ctis = [r.cti for r in rows]
    session.execute(update(IssuedKey).where(IssuedKey.cti.in_(ctis)).values(revoked=True))
    session.add_all(Revocation(lock_pk=r.lock_pk, cti=r.cti, exp=r.exp) for r in rows)
    for lock_pk in sorted({r.lock_pk for r in rows}):
        session.execute(
            update(Lock)
            .where(Lock.pk == lock_pk)
            .values(revocation_version=Lock.revocation_version + 1)
        )
    session.flush()
    return len(rows)


def _key_json(
    row: IssuedKey, secret: bytes, req: KeyRequest, lock: Lock, user: User
) -> dict[str, Any]:
    return {
        "request_id": req.id,
        "request_version": row.request_version,
        "key_id": row.cti.hex(),
        "lock_id": lock.lock_id,
        "user_id": user.user_id,
        "nbf": row.nbf,
        "exp": row.exp,
        "iat": row.iat,
        "permissions": req.permissions,
        "kid": row.kid,
        "credential": row.credential.hex(),
        "secret": secret.hex(),
    }


def _reusable(settings: Settings, row: IssuedKey, now: int) -> bool:
    lifetime = max(1, row.exp - row.iat)
    return row.exp - now >= settings.reuse_min_remaining * lifetime


def issue_for_phone(iss: Issuer, session: Session, phone: Phone, now: int) -> list[dict[str, Any]]:
    """Current keys (credential + secret) for every active request of the phone's user.

    Rows of the request, user and lock are share-locked so a concurrent change, cancel or
    suspension waits for this download and then revokes whatever it issued.
    """
    q = (
        select(KeyRequest, Lock, User)
        .join(Lock, Lock.pk == KeyRequest.lock_pk)
        .join(User, User.pk == KeyRequest.user_pk)
        .join(Operator, Operator.id == KeyRequest.operator_id)
        .outerjoin(Partner, Partner.id == Lock.partner_id)
        .where(
            KeyRequest.user_pk == phone.user_pk,
            KeyRequest.status == ACTIVE,
            KeyRequest.exp > now,
            User.status == ACTIVE,
            Lock.status == ACTIVE,
            Operator.status == ACTIVE,
            (Partner.id.is_(None)) | (Partner.status == ACTIVE),
        )
        .order_by(KeyRequest.created_at, KeyRequest.id)
        .with_for_update(read=True, of=[KeyRequest, Lock, User])
    )
    found = session.execute(q).all()
    if not found:
        return []
    req_ids = [r.KeyRequest.id for r in found]
    existing: dict[str, IssuedKey] = {}
    for row in session.scalars(
        select(IssuedKey).where(
            IssuedKey.phone_id == phone.id,
            IssuedKey.request_id.in_(req_ids),
            IssuedKey.revoked.is_(False),
            IssuedKey.exp > now,
        )
    ):
        best = existing.get(row.request_id)
        if best is None or row.exp > best.exp:
            existing[row.request_id] = row
    out: list[dict[str, Any]] = []
    signer = None
    for req, lock, user in found:
        window = key_window(iss.settings, req.nbf, req.exp, now)
        if window is None:
            continue
        have = existing.get(req.id)
        if (
            have is not None
            and have.request_version == req.version
            and _reusable(iss.settings, have, now)
        ):
            secret = iss.sealer.open(have.secret_sealed, _SECRET_CONTEXT + have.cti)
            out.append(_key_json(have, secret, req, lock, user))
            continue
        if signer is None:
            signer = iss.keys.active(session)
        try:
            issued = issue_credential(
                signer,
                iss=iss.settings.issuer_name,
                sub=user.user_id,
                aud=lock.lock_id,
                nbf=window[0],
                exp=window[1],
                iat=now,
                permissions=req.permissions,
                request_version=req.version,
                lock_kex_public=lock.kex_public,
            )
        except (ProtocolError, ValueError) as exc:  # e.g. a user ID the protocol cannot carry
            log.warning("cannot issue a key for request %s: %s", req.id, exc)
            continue
        row = IssuedKey(
            cti=issued.cti,
            operator_id=req.operator_id,
            request_id=req.id,
            phone_id=phone.id,
            lock_pk=lock.pk,
            request_version=req.version,
            nbf=window[0],
            exp=window[1],
            iat=now,
            kid=signer.kid.hex(),
            credential=issued.credential,
            secret_sealed=iss.sealer.seal(issued.secret, _SECRET_CONTEXT + issued.cti),
            revoked=False,
        )
        session.add(row)
        out.append(_key_json(row, issued.secret, req, lock, user))
    session.flush()
    return out


def phone_lock_pks(session: Session, phone: Phone, now: int) -> list[int]:
    """Locks this phone should carry revocation updates to: its active requests' locks and
    the locks of any unexpired key it was ever given (revoked ones included)."""
    a = select(KeyRequest.lock_pk).where(
        KeyRequest.user_pk == phone.user_pk, KeyRequest.status == ACTIVE
    )
    b = select(IssuedKey.lock_pk).where(IssuedKey.phone_id == phone.id, IssuedKey.exp > now)
    return sorted(set(session.scalars(a)) | set(session.scalars(b)))


def revocation_updates(
    iss: Issuer, session: Session, lock_pks: list[int], now: int
) -> list[dict[str, Any]]:
    """The newest signed revocation update for each lock that has one (version >= 1).

    The snapshot holds the unexpired revoked keys, latest expiry first, at most 64
    (protocol §15); with bounded key lifetimes the list stays far below that.
    """
    if not lock_pks:
        return []
    locks = session.scalars(
        select(Lock)
        .where(Lock.pk.in_(lock_pks), Lock.revocation_version > 0)
        .order_by(Lock.lock_id)
    ).all()
    out = []
    signer = None
    for lock in locks:
        entries = session.execute(
            select(Revocation.cti, Revocation.exp)
            .where(Revocation.lock_pk == lock.pk, Revocation.exp > now)
            .order_by(Revocation.exp.desc(), Revocation.cti)
            .limit(MAX_REVOCATION_ENTRIES)
        ).all()
        if signer is None:
            signer = iss.keys.active(session)
        upd = RevocationUpdate(
            lock_id=lock.lock_id,
            version=lock.revocation_version,
            iat=now,
            entries=[(bytes(e.cti), int(e.exp)) for e in entries],
        )
        out.append(
            {
                "lock_id": lock.lock_id,
                "version": lock.revocation_version,
                "entries": len(entries),
                "update": sign_revocation_update(signer, upd).hex(),
            }
        )
    return out


def time_statement(iss: Issuer, session: Session, now: int) -> str:
    """A fresh signed time statement (protocol §6), hex."""
    return sign_time_statement(iss.keys.active(session), now).hex()


def purge_expired(session: Session, now: int) -> None:
    """Drop revocation entries and issued keys that have expired (they matter no more)."""
    session.query(Revocation).filter(Revocation.exp <= now).delete()
    session.query(IssuedKey).filter(IssuedKey.exp <= now - 86400).delete()
