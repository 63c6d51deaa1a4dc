"""Issuing digital keys, revoking them, and building revocation updates and time statements.

A key request can be valid for years (leases of 360 or 710 days); the keys issued for it are
not. Each issued key lives at most ``key_lifetime_s`` (protocol §3 caps it at 400 days) and is
re-issued on download while the request is active, so a revoked key that somehow misses a
lock still stops working soon. A changed request is re-issued under a new key ID and the old
keys are revoked; a cancelled request's keys are revoked. Revocation bumps the lock's
``revocation_version``; the next update (protocol §7, built in
:mod:`kagiya.server.revocations`) carries them.

Every key names its operator (``kgy_op``) and the lock's key generation (``kgy_gen``).
Revoking everything at a lock (:func:`revoke_lock`) raises the lock's generation floor, so
one number in the update covers any number of keys; when the keys revoked one by one would
no longer fit one update, :func:`revoke_where` does the same (nothing is ever left out).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from kagiya.sdk.credential import MAX_LIFETIME, sign_credential
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import IssuerKey, lock_key_id
from kagiya.sdk.keywrap import check_wrap_form
from kagiya.server import revocations
from kagiya.server.config import Settings
from kagiya.server.issuer import VERSION_QUERY, IssuerStore
from kagiya.server.models import (
    ACTIVE,
    AuditEntry,
    IssuedKey,
    KeyRequest,
    Lock,
    Operator,
    Partner,
    Revocation,
    User,
)
from kagiya.server.prepared import Handle, Prepared
from kagiya.server.principal import PhoneRef
from kagiya.server.problems import ApiError
from kagiya.server.secrets_store import Sealer
from kagiya.server.uplink import outbox
from sqlalchemy import ColumnElement, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session, aliased

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
    lifetime = min(settings.key_lifetime_s, MAX_LIFETIME)
    start = max(nbf, now - settings.nbf_backdate_s)
    end = min(exp, max(now, nbf) + lifetime, start + lifetime)
    if end <= start:
        return None
    return start, end


def revoke_where(session: Session, now: int, *conditions: ColumnElement[bool]) -> int:
    """Revoke every unexpired, unrevoked issued key matching ``conditions``.

    Adds the key IDs to their locks' revocation lists and bumps each affected lock's
    revocation version. A lock whose listed keys would then not fit one update has its
    generation floor raised instead (:func:`revoke_lock`), so no revoked key is ever left
    out. Returns how many keys were revoked.
    """
    rows = session.execute(
        select(IssuedKey.cti, IssuedKey.lock_pk, IssuedKey.exp, IssuedKey.generation).where(
            IssuedKey.revoked.is_(False), IssuedKey.exp > now, *conditions
        )
    ).all()
    if not rows:
        return 0
    ctis = [r.cti for r in rows]
    session.execute(update(IssuedKey).where(IssuedKey.cti.in_(ctis)).values(revoked=True))
    session.add_all(
        Revocation(lock_pk=r.lock_pk, cti=r.cti, exp=r.exp, generation=r.generation)
        for r in rows
    )
    locks = sorted({r.lock_pk for r in rows})
    for lock_pk in locks:
        session.execute(
            update(Lock)
            .where(Lock.pk == lock_pk)
            .values(revocation_version=Lock.revocation_version + 1)
        )
    outbox.enqueue(session, locks, outbox.REVOCATION, now)  # connected locks (#16)
    session.flush()
    for lock_pk in revocations.over_capacity(session, locks, now):
        revoke_lock(session, now, lock_pk, reason="overflow")
    return len(rows)


def revoke_lock(session: Session, now: int, lock_pk: int, *, reason: str) -> int:
    """Revoke every key of one lock issued so far with one number: the lock's generation
    floor rises past every key issued (``min_generation = key_generation + 1``) and new keys
    get the new generation. Marks the keys revoked (phones then get new ones), bumps the
    revocation version and drops the listed entries the floor now covers. Returns how many
    unrevoked keys it revoked; ``reason`` "overflow" is audited for the operator."""
    lock = session.get(Lock, lock_pk, with_for_update=True)
    if lock is None:
        return 0
    new_gen = lock.key_generation + 1
    res = session.execute(
        update(IssuedKey)
        .where(IssuedKey.lock_pk == lock_pk, IssuedKey.revoked.is_(False), IssuedKey.exp > now)
        .values(revoked=True)
    )
    lock.key_generation = new_gen
    lock.min_generation = new_gen
    lock.revocation_version = lock.revocation_version + 1
    session.execute(
        delete(Revocation).where(Revocation.lock_pk == lock_pk, Revocation.generation < new_gen)
    )
    outbox.enqueue(session, [lock_pk], outbox.REVOCATION, now)  # connected locks (#16)
    session.flush()
    revoked = int(res.rowcount or 0)  # type: ignore[attr-defined]
    if reason == "overflow":
        revocations.record_overflow(session, lock, revoked, now)
    return revoked


def _key_json(k: Any, req: Any, lock_id: str, user_id: str) -> dict[str, Any]:
    return {
        "request_id": req.id,
        "request_version": k.request_version,
        "key_id": bytes(k.cti).hex(),
        "lock_id": lock_id,
        "user_id": user_id,
        "nbf": k.nbf,
        "exp": k.exp,
        "iat": k.iat,
        "permissions": req.permissions,
        "kid": k.kid,
        "credential": bytes(k.credential).hex(),
        "lock_kex_public": bytes(req.kex_public).hex(),
    }


def _pending_json(req: Any) -> dict[str, Any]:
    """A request the phone must send a wrap for: it draws K and wraps it to this lock key."""
    kex = bytes(req.kex_public)
    return {
        "request_id": req.id,
        "request_version": req.version,
        "lock_id": req.lock_id,
        "lock_kex_public": kex.hex(),
        "lock_key_id": lock_key_id(kex).hex(),
    }


def _reusable(settings: Settings, row: Any, now: int) -> bool:
    lifetime = max(1, row.exp - row.iat)
    return bool(row.exp - now >= settings.reuse_min_remaining * lifetime)


def _issue_query(*, locked: bool) -> Any:
    """The active requests of a user with lock, user and the phone's newest unrevoked key
    (if any) for each request's current version; built once, run with bind parameters.
    ``locked`` share-locks the request, lock and user rows (PostgreSQL; SQLite's writer turn
    already excludes every other writer)."""
    ik = IssuedKey
    now: Any = bindparam("now")
    cand = aliased(IssuedKey)
    newest = (
        select(cand.cti)
        .where(
            cand.request_id == KeyRequest.id,
            cand.phone_id == bindparam("phone_id"),
            cand.request_version == KeyRequest.version,
            cand.revoked.is_(False),
            cand.exp > now,
        )
        .order_by(cand.exp.desc(), cand.iat.desc())
        .limit(1)
        .correlate(KeyRequest)
        .scalar_subquery()
    )
    query = (
        select(
            KeyRequest.id,
            KeyRequest.operator_id,
            KeyRequest.nbf.label("req_nbf"),
            KeyRequest.exp.label("req_exp"),
            KeyRequest.permissions,
            KeyRequest.version,
            Lock.pk.label("lock_pk"),
            Lock.lock_id,
            Lock.kex_public,
            Lock.incarnation,
            Lock.key_generation,
            User.user_id,
            ik.cti,
            ik.request_version,
            ik.nbf,
            ik.exp,
            ik.iat,
            ik.kid,
            ik.credential,
        )
        .join(Lock, Lock.pk == KeyRequest.lock_pk)
        .join(User, User.pk == KeyRequest.user_pk)
        .join(Operator, Operator.id == KeyRequest.operator_id)
        .outerjoin(Partner, Partner.id == Lock.partner_id)
        .outerjoin(ik, ik.cti == newest)
        .where(
            KeyRequest.user_pk == bindparam("user_pk"),
            KeyRequest.status == ACTIVE,
            KeyRequest.exp > now,
            User.status == ACTIVE,
            Lock.status == ACTIVE,
            Operator.status == ACTIVE,
            (Partner.id.is_(None)) | (Partner.status == ACTIVE),
        )
        .order_by(KeyRequest.created_at, KeyRequest.id)
    )
    return query.with_for_update(read=True, of=[KeyRequest, Lock, User]) if locked else query


_PLAN_QUERY = Prepared(_issue_query(locked=False))
_LOCKED_QUERY = Prepared(_issue_query(locked=True))
_INSERT_KEY = Prepared(insert(IssuedKey))
_INSERT_AUDIT = Prepared(insert(AuditEntry))


@dataclass(frozen=True)
class _NewKey:
    cti: bytes
    request_version: int
    nbf: int
    exp: int
    iat: int
    kid: str
    credential: bytes


@dataclass(frozen=True)
class KeyPlan:
    """The keys a download answers with, worked out (and new ones signed) from one read.

    ``basis`` is everything the keys were derived from: per active request its version,
    window, permissions, operator, lock and its identity (X25519 key and incarnation, which
    every registration or identity replacement redraws), user ID and the phone's newest
    key, plus the issuer key-set version. :func:`store_plan` inserts ``fresh`` only while
    the basis is unchanged.
    """

    keys: list[dict[str, Any]]
    fresh: list[dict[str, Any]]
    basis: tuple[Any, ...]
    now: int
    pending: list[dict[str, Any]]


def _basis(rows: list[Any], issuer_version: int | None) -> tuple[Any, ...]:
    per_request = tuple(
        (
            r.id,
            r.version,
            r.req_nbf,
            r.req_exp,
            r.permissions,
            r.operator_id,
            r.lock_pk,
            r.lock_id,
            bytes(r.kex_public),
            r.incarnation,
            r.key_generation,
            r.user_id,
            None if r.cti is None else bytes(r.cti),
        )
        for r in rows
    )
    return (issuer_version, per_request)


def _requests(session: Handle, phone: PhoneRef, now: int, *, locked: bool) -> list[Any]:
    params = {"phone_id": phone.id, "user_pk": phone.user_pk, "now": now}
    return (_LOCKED_QUERY if locked else _PLAN_QUERY).rows(session, params)


def _wrap_for(req: Any, wraps: dict[str, bytes]) -> dict[int, Any] | None:
    """The phone's wrap for ``req`` checked for form (§4), or None when it sent none or
    wrapped to a lock key the lock no longer has (its identity changed meanwhile: the
    request stays pending with the new key). 422 ``invalid-key-wrap`` for a malformed wrap."""
    cnf = wraps.get(req.id)
    if cnf is None:
        return None
    try:
        return check_wrap_form(cnf, bytes(req.kex_public))
    except ProtocolError as exc:
        if exc.code == ErrorCode.WRONG_RECIPIENT:
            return None
        raise ApiError(
            422, "invalid-key-wrap", f"the wrap for request {req.id} is unusable: {exc.detail}"
        ) from None


def plan_keys(
    iss: Issuer,
    session: Handle,
    phone: PhoneRef,
    now: int,
    signer: IssuerKey,
    *,
    issuer_version: int | None = None,
    locked: bool = False,
    wraps: dict[str, bytes] | None = None,
) -> KeyPlan:
    """Current keys (credentials) for every active request of the phone's user, and the
    requests still ``pending`` a wrap.

    One query reads the active requests with their lock and user and the phone's reusable
    key for the current version of each. The server never draws or sees a key's secret K:
    for a request with a wrap in ``wraps`` (request ID → the ``cnf`` bytes the phone made,
    :func:`kagiya.sdk.keywrap.new_wrapped_secret`) a new credential is signed around that
    wrap, even if a reusable key exists (the phone lost its K); a request with neither is
    pending. Nothing is written: the caller stores ``fresh`` with :func:`store_plan`
    (optimistic, signing outside the write transaction) or inserts it in this same
    transaction (``locked``: rows of the request, user and lock are share-locked so a
    concurrent change, cancel, suspension or identity change waits for this download and
    then revokes whatever it issued).
    """
    wraps = wraps or {}
    requests = _requests(session, phone, now, locked=locked)
    out: list[dict[str, Any]] = []
    fresh: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for req in requests:
        window = key_window(iss.settings, req.req_nbf, req.req_exp, now)
        if window is None:
            continue
        if req.cti is not None and req.id not in wraps and _reusable(iss.settings, req, now):
            out.append(_key_json(req, req, req.lock_id, req.user_id))
            continue
        cnf = _wrap_for(req, wraps)
        if cnf is None:
            pending.append(_pending_json(req))
            continue
        try:
            credential, cti = sign_credential(
                signer,
                iss=iss.settings.issuer_name,
                sub=req.user_id,
                aud=req.lock_id,
                nbf=window[0],
                exp=window[1],
                iat=now,
                permissions=req.permissions,
                request_version=req.version,
                cnf=cnf,
                operator=req.operator_id,
                generation=req.key_generation,
            )
        except (ProtocolError, ValueError) as exc:  # e.g. a user ID the protocol cannot carry
            log.warning("cannot issue a key for request %s: %s", req.id, exc)
            continue
        key = _NewKey(cti, req.version, window[0], window[1], now, signer.kid.hex(), credential)
        fresh.append(
            {
                "cti": key.cti,
                "operator_id": req.operator_id,
                "request_id": req.id,
                "phone_id": phone.id,
                "lock_pk": req.lock_pk,
                "request_version": key.request_version,
                "nbf": key.nbf,
                "exp": key.exp,
                "iat": now,
                "kid": key.kid,
                "generation": req.key_generation,
                "credential": key.credential,
                "revoked": False,
            }
        )
        out.append(_key_json(key, req, req.lock_id, req.user_id))
    return KeyPlan(out, fresh, _basis(requests, issuer_version), now, pending)


def insert_fresh(session: Handle, plan: KeyPlan) -> None:
    """Insert the plan's new keys, audited (``key.issue``: which phone got which key IDs
    around its own wraps) in the same transaction."""
    if not plan.fresh:
        return
    _INSERT_KEY.insert(session, plan.fresh)
    first = plan.fresh[0]
    user_id = next((k["user_id"] for k in plan.keys), "")
    detail = {
        "keys": [bytes(k["cti"]).hex() for k in plan.fresh],
        "requests": [k["request_id"] for k in plan.fresh],
    }
    _INSERT_AUDIT.insert(
        session,
        [
            {
                "at": plan.now,
                "actor": f"phone:{first['phone_id']}",
                "operator_id": first["operator_id"],
                "action": "key.issue",
                "target": user_id,
                "detail": json.dumps(detail, sort_keys=True),
            }
        ],
    )


def plan_is_current(session: Handle, plan: KeyPlan, phone: PhoneRef) -> bool:
    """In the write transaction: re-read the plan's basis (share-locked); False when
    anything it was derived from has changed since (a concurrent change, cancel,
    suspension, identity change, rotation or another download of this phone's keys):
    the caller writes nothing and plans again."""
    rows = _requests(session, phone, plan.now, locked=True)
    return _basis(rows, VERSION_QUERY.scalar(session)) == plan.basis

