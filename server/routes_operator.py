"""The operator API: users, partners, locks, key requests, enrollment codes, logs, audit.

Every call runs in one transaction (:meth:`Runtime.call`); every mutating call accepts an
``Idempotency-Key``; every lookup is scoped to the calling operator, so another operator's
objects are simply "not found".
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from kagiya.server import audit
from kagiya.server.issuance import revoke_where
from kagiya.server.lockkeys import usable_lock_keys
from kagiya.server.models import (
    ACTIVE,
    CANCELLED,
    SUSPENDED,
    AuditEntry,
    EnrollmentCode,
    IssuedKey,
    KeyRequest,
    Lock,
    Operator,
    Partner,
    Phone,
    Token,
    UsageLog,
    User,
)
from kagiya.server.problems import ApiError
from kagiya.server.runtime import INSTALLER, OPERATOR, Principal, Runtime
from kagiya.server.schemas import (
    AuditPage,
    DeletedOut,
    EnrollmentCodeOut,
    InstallerTokenIn,
    KeyRequestIn,
    KeyRequestOut,
    KeyRequestPage,
    KeyRequestPatch,
    LockIdentityIn,
    LockIn,
    LockOut,
    LockPage,
    LockPatch,
    LogPage,
    PartnerIn,
    PartnerOut,
    PartnerPage,
    TokenOut,
    UserExport,
    UserOut,
    UserPage,
    perm_bits,
)
from kagiya.server.secrets_store import (
    new_enrollment_code,
    new_id,
    new_token,
    new_user_id,
    token_hash,
)
from kagiya.server.views import (
    MAX_LIMIT,
    get_lock,
    get_partner,
    get_request,
    get_user,
    lock_json,
    log_json,
    parse_cursor,
    partner_json,
    request_json,
    user_json,
)
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

router = APIRouter(prefix="/v1", tags=["operator"])
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="operatorToken",
    description="token from POST /v1/oauth/token (client credentials)",
)

Cred = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[!-~]{1,128}$",
        description="retries with the same key within a day never repeat the change",
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(pattern=r"^[0-9A-Za-z_]{1,64}$")]
UserIdP = Annotated[str, Path(pattern=r"^[!-~]{1,64}$")]
LockIdP = Annotated[str, Path(pattern=r"^[A-Z0-9-]{4,20}$")]
PartnerIdP = Annotated[str, Path(pattern=r"^pt_[0-9a-f]{1,40}$")]
RequestIdP = Annotated[str, Path(pattern=r"^kr_[0-9a-f]{1,40}$")]
OPS = (OPERATOR,)


def rt_of(request: Request) -> Runtime:
    """The process runtime."""
    return request.app.state.runtime


def _tok(cred: HTTPAuthorizationCredentials | None) -> str | None:
    return cred.credentials if cred is not None else None


def _body(model: Any) -> Any:
    return model.model_dump(mode="json", exclude_unset=True) if model is not None else None


def _op_call(
    request: Request,
    cred: Any,
    fn: Any,
    idem: str | None = None,
    body: Any = None,
    kinds: tuple[str, ...] = OPS,
) -> JSONResponse:
    return rt_of(request).call(
        request, _tok(cred), kinds, fn, idempotency_key=idem, body=_body(body)
    )


def _audit(s: Session, rt: Runtime, p: Principal, action: str, target: str, **detail: Any) -> None:
    audit.record(
        s, rt.now(), p.actor, action, operator_id=p.operator.id, target=target, detail=detail
    )


# --- installer tokens -------------------------------------------------------------------


@router.post("/installer-tokens", status_code=201, response_model=TokenOut)
def create_installer_token(
    request: Request, cred: Cred, idem: IdemKey = None, body: InstallerTokenIn | None = None
) -> JSONResponse:
    """Mint a short-lived token for an installer: it can only register locks."""
    rt = rt_of(request)
    ttl = body.ttl_s if body is not None else rt.settings.installer_token_max_ttl_s

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        tok = new_token()
        s.add(
            Token(
                token_hash=token_hash(tok),
                kind=INSTALLER,
                operator_id=p.operator.id,
                expires_at=rt.now() + ttl,
            )
        )
        _audit(s, rt, p, "installer-token.create", "", ttl_s=ttl)
        return 201, {
            "access_token": tok,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": "install",
        }

    return _op_call(request, cred, run, idem, body)


# --- users ------------------------------------------------------------------------------


@router.post("/users", status_code=201, response_model=UserOut)
def create_user(request: Request, cred: Cred, idem: IdemKey = None) -> JSONResponse:
    """Issue a new user ID (refused with 403 ``quota-exceeded`` beyond the contract quota)."""
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        op = s.scalars(select(Operator).where(Operator.id == p.operator.id).with_for_update()).one()
        used = s.scalar(select(func.count()).select_from(User).where(User.operator_id == op.id))
        if (used or 0) >= op.quota:
            raise ApiError(
                403, "quota-exceeded", f"the contract allows {op.quota} user IDs and all are in use"
            )
        u = User(
            user_id=new_user_id(),
            operator_id=op.id,
            status=ACTIVE,
            leaked=False,
            created_at=rt.now(),
        )
        s.add(u)
        s.flush()
        _audit(s, rt, p, "user.create", u.user_id)
        return 201, user_json(u)

    return _op_call(request, cred, run, idem)


@router.get("/users", response_model=UserPage)
def list_users(
    request: Request,
    cred: Cred,
    status: Annotated[str | None, Query(pattern="^(active|suspended)$")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> JSONResponse:
    """List the operator's user IDs."""
    after = parse_cursor(cursor)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        q = select(User).where(User.operator_id == p.operator.id, User.pk > after)
        if status:
            q = q.where(User.status == status)
        rows = s.scalars(q.order_by(User.pk).limit(limit + 1)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return 200, {
            "items": [user_json(u) for u in rows],
            "next_cursor": str(rows[-1].pk) if more else None,
        }

    return _op_call(request, cred, run)


@router.get("/users/{user_id}", response_model=UserOut)
def read_user(request: Request, cred: Cred, user_id: UserIdP) -> JSONResponse:
    """One user ID."""
    return _op_call(request, cred, lambda s, p: (200, user_json(get_user(s, p, user_id))))


def _user_keys(user: User) -> Any:
    return IssuedKey.request_id.in_(select(KeyRequest.id).where(KeyRequest.user_pk == user.pk))


def _set_user_status(
    request: Request,
    cred: Any,
    user_id: UserIdP,
    idem: str | None,
    status: str,
    leaked: bool = False,
) -> JSONResponse:
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        u = get_user(s, p, user_id, lock=True)
        if status == ACTIVE and u.leaked:
            raise ApiError(
                409, "user-leaked", "a leaked user ID cannot be resumed; issue a new user ID"
            )
        u.status = status
        revoked = 0
        if status == SUSPENDED:
            revoked = revoke_where(s, rt.now(), _user_keys(u))
        if leaked:
            u.leaked = True
            s.execute(delete(Phone).where(Phone.user_pk == u.pk))
            s.execute(delete(EnrollmentCode).where(EnrollmentCode.user_pk == u.pk))
        action = "user.leaked" if leaked else f"user.{'resume' if status == ACTIVE else 'suspend'}"
        _audit(s, rt, p, action, u.user_id, revoked_keys=revoked)
        return 200, user_json(u)

    return _op_call(request, cred, run, idem)


@router.post("/users/{user_id}/suspend", response_model=UserOut)
def suspend_user(
    request: Request, cred: Cred, user_id: UserIdP, idem: IdemKey = None
) -> JSONResponse:
    """Suspend a user ID: its keys are revoked and its phones get nothing until resumed."""
    return _set_user_status(request, cred, user_id, idem, SUSPENDED)


@router.post("/users/{user_id}/resume", response_model=UserOut)
def resume_user(
    request: Request, cred: Cred, user_id: UserIdP, idem: IdemKey = None
) -> JSONResponse:
    """Resume a suspended user ID (not a leaked one)."""
    return _set_user_status(request, cred, user_id, idem, ACTIVE)


@router.post("/users/{user_id}/leaked", response_model=UserOut)
def mark_leaked(
    request: Request, cred: Cred, user_id: UserIdP, idem: IdemKey = None
) -> JSONResponse:
    """Mark a user ID as leaked: suspended at once, keys revoked, phones and codes removed."""
    return _set_user_status(request, cred, user_id, idem, SUSPENDED, leaked=True)


@router.delete("/users/{user_id}", response_model=DeletedOut)
def delete_user(
    request: Request, cred: Cred, user_id: UserIdP, idem: IdemKey = None
) -> JSONResponse:
    """Delete a user ID and all its data (keys are revoked first; logs naming it are deleted)."""
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        u = get_user(s, p, user_id, lock=True)
        revoked = revoke_where(s, rt.now(), _user_keys(u))
        s.execute(
            delete(UsageLog).where(UsageLog.operator_id == p.operator.id, UsageLog.sub == u.user_id)
        )
        s.execute(delete(IssuedKey).where(_user_keys(u)))
        s.execute(delete(KeyRequest).where(KeyRequest.user_pk == u.pk))
        s.execute(delete(Phone).where(Phone.user_pk == u.pk))
        s.execute(delete(EnrollmentCode).where(EnrollmentCode.user_pk == u.pk))
        s.delete(u)
        _audit(s, rt, p, "user.delete", user_id, revoked_keys=revoked)
        return 200, {"deleted": user_id}

    return _op_call(request, cred, run, idem)


@router.get("/users/{user_id}/export", response_model=UserExport)
def export_user(request: Request, cred: Cred, user_id: UserIdP) -> JSONResponse:
    """Everything stored about a user ID (for a disclosure request)."""

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        u = get_user(s, p, user_id)
        reqs = s.execute(
            select(KeyRequest, Lock.lock_id)
            .join(Lock, Lock.pk == KeyRequest.lock_pk)
            .where(KeyRequest.user_pk == u.pk)
            .order_by(KeyRequest.id)
        ).all()
        phones = s.scalars(select(Phone).where(Phone.user_pk == u.pk).order_by(Phone.id)).all()
        keys = s.scalars(select(IssuedKey).where(_user_keys(u)).order_by(IssuedKey.iat)).all()
        logs = s.execute(
            select(UsageLog, Lock.lock_id)
            .join(Lock, Lock.pk == UsageLog.lock_pk)
            .where(UsageLog.operator_id == p.operator.id, UsageLog.sub == u.user_id)
            .order_by(UsageLog.id)
        ).all()
        return 200, {
            "user": user_json(u),
            "key_requests": [request_json(r, u.user_id, lid) for r, lid in reqs],
            "phones": [
                {
                    "phone_id": ph.id,
                    "device_public": ph.device_public.hex(),
                    "created_at": ph.created_at,
                }
                for ph in phones
            ],
            "issued_keys": [
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
            "usage_logs": [log_json(row, lid) for row, lid in logs],
        }

    return _op_call(request, cred, run)


@router.post("/users/{user_id}/enrollment-codes", status_code=201, response_model=EnrollmentCodeOut)
def create_enrollment_code(
    request: Request, cred: Cred, user_id: UserIdP, idem: IdemKey = None
) -> JSONResponse:
    """A one-time code the user types into (or scans with) the phone app to enroll it."""
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        u = get_user(s, p, user_id)
        if u.status != ACTIVE:
            raise ApiError(409, "user-suspended", "this user ID is suspended")
        code = new_enrollment_code()
        exp = rt.now() + rt.settings.enrollment_code_ttl_s
        s.add(
            EnrollmentCode(
                code_hash=token_hash(code), operator_id=p.operator.id, user_pk=u.pk, expires_at=exp
            )
        )
        _audit(s, rt, p, "enrollment-code.create", u.user_id)
        return 201, {"code": code, "user_id": u.user_id, "expires_at": exp}

    return _op_call(request, cred, run, idem)


# --- partners ---------------------------------------------------------------------------


@router.post("/partners", status_code=201, response_model=PartnerOut)
def create_partner(
    request: Request, cred: Cred, body: PartnerIn, idem: IdemKey = None
) -> JSONResponse:
    """Register a partner business."""
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        pt = Partner(
            id=new_id("pt"),
            operator_id=p.operator.id,
            name=body.name,
            status=ACTIVE,
            created_at=rt.now(),
        )
        s.add(pt)
        _audit(s, rt, p, "partner.create", pt.id)
        return 201, partner_json(pt)

    return _op_call(request, cred, run, idem, body)


@router.get("/partners", response_model=PartnerPage)
def list_partners(
    request: Request, cred: Cred, cursor: Cursor = None, limit: Limit = 50
) -> JSONResponse:
    """List partners (ordered by ID)."""

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        q = select(Partner).where(Partner.operator_id == p.operator.id)
        if cursor:
            q = q.where(Partner.id > cursor)
        rows = s.scalars(q.order_by(Partner.id).limit(limit + 1)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return 200, {
            "items": [partner_json(x) for x in rows],
            "next_cursor": rows[-1].id if more else None,
        }

    return _op_call(request, cred, run)


@router.get("/partners/{partner_id}", response_model=PartnerOut)
def read_partner(request: Request, cred: Cred, partner_id: PartnerIdP) -> JSONResponse:
    """One partner."""
    return _op_call(request, cred, lambda s, p: (200, partner_json(get_partner(s, p, partner_id))))


def _partner_locks(pt: Partner) -> Any:
    return IssuedKey.lock_pk.in_(select(Lock.pk).where(Lock.partner_id == pt.id))


def _set_partner_status(
    request: Request, cred: Any, partner_id: PartnerIdP, idem: str | None, status: str
) -> JSONResponse:
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        pt = get_partner(s, p, partner_id, lock=True)
        pt.status = status
        revoked = 0
        if status == SUSPENDED:
            s.execute(select(Lock.pk).where(Lock.partner_id == pt.id).with_for_update()).all()
            revoked = revoke_where(s, rt.now(), _partner_locks(pt))
        _audit(
            s,
            rt,
            p,
            f"partner.{'resume' if status == ACTIVE else 'suspend'}",
            pt.id,
            revoked_keys=revoked,
        )
        return 200, partner_json(pt)

    return _op_call(request, cred, run, idem)


@router.post("/partners/{partner_id}/suspend", response_model=PartnerOut)
def suspend_partner(
    request: Request, cred: Cred, partner_id: PartnerIdP, idem: IdemKey = None
) -> JSONResponse:
    """Suspend a partner: keys for its locks are revoked and no new ones issued."""
    return _set_partner_status(request, cred, partner_id, idem, SUSPENDED)


@router.post("/partners/{partner_id}/resume", response_model=PartnerOut)
def resume_partner(
    request: Request, cred: Cred, partner_id: PartnerIdP, idem: IdemKey = None
) -> JSONResponse:
    """Resume a partner."""
    return _set_partner_status(request, cred, partner_id, idem, ACTIVE)


@router.delete("/partners/{partner_id}", response_model=DeletedOut)
def delete_partner(
    request: Request, cred: Cred, partner_id: PartnerIdP, idem: IdemKey = None
) -> JSONResponse:
    """Delete a partner (its locks stay, detached from it)."""
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        pt = get_partner(s, p, partner_id, lock=True)
        s.execute(update(Lock).where(Lock.partner_id == pt.id).values(partner_id=None))
        s.delete(pt)
        _audit(s, rt, p, "partner.delete", partner_id)
        return 200, {"deleted": partner_id}

    return _op_call(request, cred, run, idem)


# --- locks ------------------------------------------------------------------------------


def check_lock_keys(sign_public: str, kex_public: str) -> None:
    """Refuse (422 ``invalid-lock-keys``) keys a lock cannot have made: a low-order X25519
    key, a non-canonical, off-curve or small-order Ed25519 key, or the same key twice
    (:mod:`kagiya.server.lockkeys`)."""
    if not usable_lock_keys(bytes.fromhex(sign_public), bytes.fromhex(kex_public)):
        raise ApiError(
            422,
            "invalid-lock-keys",
            "sign_public must be a usable Ed25519 key and kex_public a usable X25519 key "
            "(distinct, not of small order)",
        )


def register_lock(
    s: Session, rt: Runtime, p: Principal, body: LockIn
) -> tuple[int, dict[str, Any]]:
    """Create a lock row for ``p``'s operator (shared by operator and installer endpoints)."""
    if body.partner_id is not None:
        get_partner(s, p, body.partner_id)
    if s.scalar(select(Lock.pk).where(Lock.lock_id == body.lock_id)) is not None:
        raise ApiError(409, "lock-exists", f"lock ID {body.lock_id} is already registered")
    check_lock_keys(body.sign_public, body.kex_public)
    lk = Lock(
        lock_id=body.lock_id,
        operator_id=p.operator.id,
        partner_id=body.partner_id,
        sign_public=bytes.fromhex(body.sign_public),
        kex_public=bytes.fromhex(body.kex_public),
        vehicle_label=body.vehicle_label or "",
        status=ACTIVE,
        revocation_version=0,
        incarnation=secrets.randbits(62),
        created_at=rt.now(),
    )
    s.add(lk)
    s.flush()
    _audit(s, rt, p, "lock.register", lk.lock_id)
    return 201, lock_json(lk)


@router.post("/locks", status_code=201, response_model=LockOut)
def create_lock(request: Request, cred: Cred, body: LockIn, idem: IdemKey = None) -> JSONResponse:
    """Register a lock (lock ID + its Ed25519 and X25519 public keys, hex)."""
    rt = rt_of(request)
    return _op_call(request, cred, lambda s, p: register_lock(s, rt, p, body), idem, body)


@router.get("/locks", response_model=LockPage)
def list_locks(
    request: Request,
    cred: Cred,
    partner_id: Annotated[str | None, Query(pattern=r"^[a-z]{2}_[0-9a-f]{1,40}$")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> JSONResponse:
    """List locks, optionally of one partner."""
    after = parse_cursor(cursor)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        q = select(Lock).where(Lock.operator_id == p.operator.id, Lock.pk > after)
        if partner_id:
            q = q.where(Lock.partner_id == partner_id)
        rows = s.scalars(q.order_by(Lock.pk).limit(limit + 1)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return 200, {
            "items": [lock_json(x) for x in rows],
            "next_cursor": str(rows[-1].pk) if more else None,
        }

    return _op_call(request, cred, run)


@router.get("/locks/{lock_id}", response_model=LockOut)
def read_lock(request: Request, cred: Cred, lock_id: LockIdP) -> JSONResponse:
    """One lock."""
    return _op_call(request, cred, lambda s, p: (200, lock_json(get_lock(s, p, lock_id))))


@router.patch("/locks/{lock_id}", response_model=LockOut)
def patch_lock(
    request: Request, cred: Cred, lock_id: LockIdP, body: LockPatch, idem: IdemKey = None
) -> JSONResponse:
    """Change a lock's vehicle label or partner."""
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        lk = get_lock(s, p, lock_id, lock=True)
        fields = body.model_fields_set
        if "partner_id" in fields:
            if body.partner_id is not None:
                get_partner(s, p, body.partner_id)
            lk.partner_id = body.partner_id
        if "vehicle_label" in fields:
            lk.vehicle_label = body.vehicle_label or ""
        _audit(s, rt, p, "lock.update", lk.lock_id, fields=sorted(fields))
        return 200, lock_json(lk)

    return _op_call(request, cred, run, idem, body)


@router.put("/locks/{lock_id}/identity", response_model=LockOut)
def replace_lock_identity(
    request: Request, cred: Cred, lock_id: LockIdP, body: LockIdentityIn, idem: IdemKey = None
) -> JSONResponse:
    """Replace a re-provisioned lock's identity keys (operator token, or an installer token
    of the same operator). Key requests stay; keys issued so far (wrapped to the old X25519
    key) are revoked and re-issued to the new key on the next download. Usage logs stay
    attributed to the identity that signed them. Audited."""
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        lk = get_lock(s, p, lock_id, lock=True)
        sign, kex = bytes.fromhex(body.sign_public), bytes.fromhex(body.kex_public)
        check_lock_keys(body.sign_public, body.kex_public)
        if lk.sign_public == sign and lk.kex_public == kex:
            return 200, lock_json(lk)  # already this identity: nothing to do
        now = rt.now()
        old_key_id = lock_json(lk)["lock_key_id"]
        revoked = revoke_where(s, now, IssuedKey.lock_pk == lk.pk)
        s.refresh(lk)
        lk.sign_public, lk.kex_public = sign, kex
        lk.incarnation = secrets.randbits(62)
        lk.identity_changed_at = now
        out = lock_json(lk)
        _audit(
            s,
            rt,
            p,
            "lock.identity-replace",
            lk.lock_id,
            old_lock_key_id=old_key_id,
            new_lock_key_id=out["lock_key_id"],
            revoked_keys=revoked,
        )
        return 200, out

    return _op_call(request, cred, run, idem, body, kinds=(OPERATOR, INSTALLER))


def _set_lock_status(
    request: Request, cred: Any, lock_id: LockIdP, idem: str | None, status: str
) -> JSONResponse:
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        lk = get_lock(s, p, lock_id, lock=True)
        lk.status = status
        revoked = 0
        if status == SUSPENDED:
            revoked = revoke_where(s, rt.now(), IssuedKey.lock_pk == lk.pk)
            s.refresh(lk)
        _audit(
            s,
            rt,
            p,
            f"lock.{'resume' if status == ACTIVE else 'suspend'}",
            lk.lock_id,
            revoked_keys=revoked,
        )
        return 200, lock_json(lk)

    return _op_call(request, cred, run, idem)


@router.post("/locks/{lock_id}/suspend", response_model=LockOut)
def suspend_lock(
    request: Request, cred: Cred, lock_id: LockIdP, idem: IdemKey = None
) -> JSONResponse:
    """Suspend a lock: its keys are revoked and no new ones issued."""
    return _set_lock_status(request, cred, lock_id, idem, SUSPENDED)


@router.post("/locks/{lock_id}/resume", response_model=LockOut)
def resume_lock(
    request: Request, cred: Cred, lock_id: LockIdP, idem: IdemKey = None
) -> JSONResponse:
    """Resume a lock."""
    return _set_lock_status(request, cred, lock_id, idem, ACTIVE)


@router.delete("/locks/{lock_id}", response_model=DeletedOut)
def delete_lock(
    request: Request, cred: Cred, lock_id: LockIdP, idem: IdemKey = None
) -> JSONResponse:
    """Delete a lock with its key requests, keys and logs."""
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        lk = get_lock(s, p, lock_id, lock=True)
        s.execute(delete(UsageLog).where(UsageLog.lock_pk == lk.pk))
        s.execute(delete(IssuedKey).where(IssuedKey.lock_pk == lk.pk))
        s.execute(delete(KeyRequest).where(KeyRequest.lock_pk == lk.pk))
        s.delete(lk)
        _audit(s, rt, p, "lock.delete", lock_id)
        return 200, {"deleted": lock_id}

    return _op_call(request, cred, run, idem)


# --- key requests -----------------------------------------------------------------------


def _check_window(rt: Runtime, nbf: int, exp: int) -> None:
    if exp <= nbf:
        raise ApiError(422, "invalid-window", "exp must be after nbf")
    if exp <= rt.now():
        raise ApiError(422, "invalid-window", "the window has already ended")
    if exp - nbf > rt.settings.max_window_s:
        raise ApiError(
            422, "invalid-window", f"the window may be at most {rt.settings.max_window_s} s long"
        )


@router.post("/key-requests", status_code=201, response_model=KeyRequestOut)
def create_key_request(
    request: Request, cred: Cred, body: KeyRequestIn, idem: IdemKey = None
) -> JSONResponse:
    """Request a key (effective when stored): the user's phones download it from now on."""
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        _check_window(rt, body.nbf, body.exp)
        u = get_user(s, p, body.user_id)
        lk = get_lock(s, p, body.lock_id)
        if u.status != ACTIVE:
            raise ApiError(409, "user-suspended", "this user ID is suspended")
        if lk.status != ACTIVE:
            raise ApiError(409, "lock-suspended", "this lock is suspended")
        now = rt.now()
        r = KeyRequest(
            id=new_id("kr"),
            operator_id=p.operator.id,
            user_pk=u.pk,
            lock_pk=lk.pk,
            nbf=body.nbf,
            exp=body.exp,
            permissions=perm_bits(body.permissions),
            version=1,
            status=ACTIVE,
            created_at=now,
            updated_at=now,
        )
        s.add(r)
        s.flush()
        _audit(s, rt, p, "key-request.create", r.id, user_id=u.user_id, lock_id=lk.lock_id)
        return 201, request_json(r, u.user_id, lk.lock_id)

    return _op_call(request, cred, run, idem, body)


def _request_out(s: Session, r: KeyRequest) -> dict[str, Any]:
    uid = s.scalar(select(User.user_id).where(User.pk == r.user_pk)) or ""
    lid = s.scalar(select(Lock.lock_id).where(Lock.pk == r.lock_pk)) or ""
    return request_json(r, uid, lid)


@router.get("/key-requests", response_model=KeyRequestPage)
def list_key_requests(
    request: Request,
    cred: Cred,
    user_id: Annotated[str | None, Query(pattern=r"^[!-~]{1,64}$")] = None,
    lock_id: Annotated[str | None, Query(pattern=r"^[A-Z0-9-]{4,20}$")] = None,
    status: Annotated[str | None, Query(pattern="^(active|cancelled)$")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> JSONResponse:
    """List key requests (filter by user, lock, status; ordered by request ID)."""

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        q = (
            select(KeyRequest, User.user_id, Lock.lock_id)
            .join(User, User.pk == KeyRequest.user_pk)
            .join(Lock, Lock.pk == KeyRequest.lock_pk)
            .where(KeyRequest.operator_id == p.operator.id)
        )
        if user_id:
            q = q.where(User.user_id == user_id)
        if lock_id:
            q = q.where(Lock.lock_id == lock_id)
        if status:
            q = q.where(KeyRequest.status == status)
        if cursor:
            q = q.where(KeyRequest.id > cursor)
        rows = s.execute(q.order_by(KeyRequest.id).limit(limit + 1)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return 200, {
            "items": [request_json(r, uid, lid) for r, uid, lid in rows],
            "next_cursor": rows[-1][0].id if more else None,
        }

    return _op_call(request, cred, run)


@router.get("/key-requests/{request_id}", response_model=KeyRequestOut)
def read_key_request(request: Request, cred: Cred, request_id: RequestIdP) -> JSONResponse:
    """One key request."""
    return _op_call(
        request, cred, lambda s, p: (200, _request_out(s, get_request(s, p, request_id)))
    )


@router.patch("/key-requests/{request_id}", response_model=KeyRequestOut)
def patch_key_request(
    request: Request,
    cred: Cred,
    request_id: RequestIdP,
    body: KeyRequestPatch,
    idem: IdemKey = None,
) -> JSONResponse:
    """Change the window or permissions: new version, old keys revoked, new key on download."""
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        r = get_request(s, p, request_id, lock=True)
        if r.status != ACTIVE:
            raise ApiError(409, "request-cancelled", "a cancelled key request cannot be changed")
        fields = {f for f in body.model_fields_set if getattr(body, f) is not None}
        if not fields:
            raise ApiError(422, "nothing-to-change", "give nbf, exp or permissions")
        nbf = body.nbf if body.nbf is not None else r.nbf
        exp = body.exp if body.exp is not None else r.exp
        _check_window(rt, nbf, exp)
        r.nbf, r.exp = nbf, exp
        if body.permissions is not None:
            r.permissions = perm_bits(body.permissions)
        r.version += 1
        r.updated_at = rt.now()
        revoked = revoke_where(s, rt.now(), IssuedKey.request_id == r.id)
        _audit(
            s,
            rt,
            p,
            "key-request.change",
            r.id,
            fields=sorted(fields),
            revoked_keys=revoked,
            version=r.version,
        )
        return 200, _request_out(s, r)

    return _op_call(request, cred, run, idem, body)


@router.post("/key-requests/{request_id}/cancel", response_model=KeyRequestOut)
def cancel_key_request(
    request: Request, cred: Cred, request_id: RequestIdP, idem: IdemKey = None
) -> JSONResponse:
    """Cancel: the request's keys are revoked (in the lock's next revocation update)."""
    rt = rt_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        r = get_request(s, p, request_id, lock=True)
        revoked = 0
        if r.status != CANCELLED:
            r.status = CANCELLED
            r.updated_at = rt.now()
            revoked = revoke_where(s, rt.now(), IssuedKey.request_id == r.id)
            _audit(s, rt, p, "key-request.cancel", r.id, revoked_keys=revoked)
        return 200, _request_out(s, r)

    return _op_call(request, cred, run, idem)


# --- usage logs and audit ---------------------------------------------------------------


@router.get("/logs", response_model=LogPage)
def list_logs(
    request: Request,
    cred: Cred,
    lock_id: Annotated[str | None, Query(pattern=r"^[A-Z0-9-]{4,20}$")] = None,
    user_id: Annotated[str | None, Query(pattern=r"^[!-~]{1,64}$")] = None,
    since: Annotated[int | None, Query(ge=0, le=4294967295)] = None,
    until: Annotated[int | None, Query(ge=0, le=4294967295)] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> JSONResponse:
    """Usage logs uploaded by phones, verified and de-duplicated (lock time ``since`` ≤ t <
    ``until``), in the order received."""
    after = parse_cursor(cursor)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        q = (
            select(UsageLog, Lock.lock_id)
            .join(Lock, Lock.pk == UsageLog.lock_pk)
            .where(UsageLog.operator_id == p.operator.id, UsageLog.id > after)
        )
        if lock_id:
            q = q.where(Lock.lock_id == lock_id)
        if user_id:
            q = q.where(UsageLog.sub == user_id)
        if since is not None:
            q = q.where(UsageLog.time >= since)
        if until is not None:
            q = q.where(UsageLog.time < until)
        rows = s.execute(q.order_by(UsageLog.id).limit(limit + 1)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return 200, {
            "items": [log_json(r, lid) for r, lid in rows],
            "next_cursor": str(rows[-1][0].id) if more else None,
        }

    return _op_call(request, cred, run)


@router.get("/audit", response_model=AuditPage)
def list_audit(
    request: Request, cred: Cred, cursor: Cursor = None, limit: Limit = 100
) -> JSONResponse:
    """This operator's audit log (actions by its servers, installers, phones and the admin)."""
    after = parse_cursor(cursor)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        rows = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.operator_id == p.operator.id, AuditEntry.id > after)
            .order_by(AuditEntry.id)
            .limit(limit + 1)
        ).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return 200, {
            "items": [
                {
                    "at": a.at,
                    "actor": a.actor,
                    "action": a.action,
                    "target": a.target,
                    "detail": a.detail,
                }
                for a in rows
            ],
            "next_cursor": str(rows[-1].id) if more else None,
        }

    return _op_call(request, cred, run)


__all__ = ["register_lock", "router"]
