"""The phone API: enroll, re-authenticate, download keys / revocations / time, upload logs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from kagiya.server import (
    audit,
    enrollment,
    logs,
    revocations,
    timeauth,
    token_revocation,
)
from kagiya.server.clientaddr import peer_address
from kagiya.server.db import transaction
from kagiya.server.deps import IdemKey, PhoneToken, runtime_of
from kagiya.server.download import PHONES, Ask, download
from kagiya.server.dpop import RequestProof
from kagiya.server.models import (
    ACTIVE,
    RETIRED,
    EnrollmentCode,
    IssuedKey,
    KeyRequest,
    Lock,
    Operator,
    Phone,
    Token,
    User,
)
from kagiya.server.problems import PHONE_ERRORS, ApiError, documented
from kagiya.server.runtime import PHONE, Principal, Runtime, check_operator_usable
from kagiya.server.schemas import (
    DownloadIn,
    EnrollIn,
    LogUploadIn,
    LogUploadOut,
    PhoneTokenIn,
    PhoneTokenOut,
    RevocationsOut,
    SyncOut,
    TimeOut,
)
from kagiya.server.secrets_store import new_id, new_token, token_hash
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

router = APIRouter(prefix="/v1/phone", tags=["phone"], responses=documented(*PHONE_ERRORS))
DpopHeader = Annotated[
    str | None,
    Header(
        alias="DPoP",
        max_length=1024,
        description="RFC 9449 proof signed by the phone's device key (kagiya.sdk.dpop)",
    ),
]


def _client(request: Request) -> str:
    return peer_address(request, runtime_of(request).settings.trusted_proxies)


def _issue_token(s: Session, rt: Runtime, phone: Phone, user: User) -> dict[str, Any]:
    tok = new_token()
    ttl = rt.settings.phone_token_ttl_s
    s.add(
        Token(
            token_hash=token_hash(tok),
            kind=PHONE,
            operator_id=phone.operator_id,
            phone_id=phone.id,
            expires_at=rt.now() + ttl,
        )
    )
    return {
        "access_token": tok,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": "phone",
        "phone_id": phone.id,
        "user_id": user.user_id,
    }


@router.post("/enroll", status_code=201, response_model=PhoneTokenOut)
def enroll(request: Request, body: EnrollIn) -> JSONResponse:
    """Enroll a phone with a one-time code, proving possession of its device key. A refused
    enrollment is audited (``phone.enroll-failed``, for the code's operator when the code is
    known)."""
    rt = runtime_of(request)
    rt.limit(f"enroll:{_client(request)}", rt.settings.enroll_rate_per_min)
    try:
        return _enroll(rt, body)
    except ApiError as exc:
        with transaction(rt.sessions) as s:
            known = s.scalar(
                select(EnrollmentCode.operator_id).where(
                    EnrollmentCode.code_hash == token_hash(body.code)
                )
            )
            audit.record(
                s,
                rt.now(),
                f"address:{_client(request)}",
                "phone.enroll-failed",
                operator_id=known,
                detail={"code": exc.code},
            )
        raise


def _enroll(rt: Runtime, body: EnrollIn) -> JSONResponse:
    device = bytes.fromhex(body.device_public)
    if not enrollment.verify(
        device, bytes.fromhex(body.signature), enrollment.enroll_message(body.code, device)
    ):
        raise ApiError(403, "bad-device-proof", "the signature does not verify under device_public")
    now = rt.now()
    with transaction(rt.sessions) as s:
        code = s.scalars(
            select(EnrollmentCode)
            .where(EnrollmentCode.code_hash == token_hash(body.code))
            .with_for_update()
        ).first()
        if code is None or code.used_at is not None or code.expires_at <= now:
            raise ApiError(
                403, "invalid-enrollment-code", "the enrollment code is unknown, used or expired"
            )
        user = s.get(User, code.user_pk)
        op = s.get(Operator, code.operator_id)
        if user is None or op is None:
            raise ApiError(
                403, "invalid-enrollment-code", "the enrollment code is unknown, used or expired"
            )
        check_operator_usable(op, now)
        if user.status != ACTIVE:
            raise ApiError(403, "user-suspended", "this user ID is suspended")
        if s.scalar(select(Phone.id).where(Phone.device_public == device)) is not None:
            raise ApiError(409, "device-enrolled", "this device key is already enrolled")
        code.used_at = now
        phone = Phone(
            id=new_id("ph"),
            operator_id=op.id,
            user_pk=user.pk,
            device_public=device,
            created_at=now,
        )
        s.add(phone)
        s.flush()
        out = _issue_token(s, rt, phone, user)
        audit.record(
            s, now, f"phone:{phone.id}", "phone.enroll", operator_id=op.id, target=user.user_id
        )
        return JSONResponse(out, status_code=201)


@router.post("/token", response_model=PhoneTokenOut)
def phone_token(request: Request, body: PhoneTokenIn) -> JSONResponse:
    """A fresh token for an enrolled phone (signature by its device key over a timestamp);
    the phone's earlier tokens end."""
    rt = runtime_of(request)
    rt.limit(f"phone-token:{_client(request)}", rt.settings.token_rate_per_min)
    now = rt.now()
    if abs(body.timestamp - now) > enrollment.AUTH_SKEW_S:
        raise ApiError(
            403,
            "stale-timestamp",
            "the timestamp is too far from the server's clock",
            extra={"server_time": now},  # public: a phone whose clock is off signs again
        )
    with transaction(rt.sessions) as s:
        phone = s.get(Phone, body.phone_id)
        if phone is None or not enrollment.verify(
            phone.device_public,
            bytes.fromhex(body.signature),
            enrollment.auth_message(body.phone_id, body.timestamp),
        ):
            raise ApiError(403, "bad-device-proof", "unknown phone or bad signature")
        user = s.get(User, phone.user_pk)
        op = s.get(Operator, phone.operator_id)
        if user is None or op is None:
            raise ApiError(403, "bad-device-proof", "unknown phone or bad signature")
        check_operator_usable(op, now)
        if user.status != ACTIVE:
            raise ApiError(403, "user-suspended", "this user ID is suspended")
        if not enrollment.use_proof(s, phone.id, body.timestamp, now):
            raise ApiError(
                403, "replayed-proof", "this signed timestamp was already used; sign a new one"
            )
        revoked = token_revocation.revoke_phone(s, phone.id)  # a copied older token ends here
        audit.record(
            s,
            now,
            f"phone:{phone.id}",
            "phone.token-refresh",
            operator_id=op.id,
            target=user.user_id,
            detail={"revoked_tokens": revoked},
        )
        return JSONResponse(_issue_token(s, rt, phone, user))


def _ask(request: Request, token: str | None, body: DownloadIn) -> Ask:
    proof = RequestProof.from_headers(request.method, request.url.path, request.headers)
    return Ask(token, proof, body.by_request())


@router.get("/keys", response_model=SyncOut)
def download_keys(request: Request, token: PhoneToken, dpop: DpopHeader = None) -> JSONResponse:
    """The phone's current keys (a credential per active request with a usable key, re-issued
    when near expiry), the requests ``pending`` a wrap of the phone's own secret, the
    revocation updates for its locks, a fresh time statement and the issuer keys."""
    return download(runtime_of(request), _ask(request, token, DownloadIn()))


@router.post("/keys", response_model=SyncOut)
def download_keys_with_wraps(
    request: Request, token: PhoneToken, body: DownloadIn, dpop: DpopHeader = None
) -> JSONResponse:
    """As ``GET``, signing a new key around each wrap sent (the phone drew its secret K and
    wrapped it to the lock, protocol §4; the server checks the wrap's form, 422
    ``invalid-key-wrap``, and never learns K). A wrap for a lock key the lock no longer has
    leaves that request pending with the new key."""
    return download(runtime_of(request), _ask(request, token, body))


@router.get("/revocations", response_model=RevocationsOut)
def download_revocations(
    request: Request, token: PhoneToken, dpop: DpopHeader = None
) -> JSONResponse:
    """Signed revocation updates for the locks this phone holds (or held) keys for."""
    rt = runtime_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        assert p.phone is not None
        now = rt.now()
        ks = rt.keyset(s, p)
        return 200, {
            "revocations": revocations.updates_for_phone(s, p.phone, now, ks, rt.revocations)
        }

    return rt.call(request, token, PHONES, run)


@router.get("/time", response_model=TimeOut)
def download_time(request: Request, token: PhoneToken, dpop: DpopHeader = None) -> JSONResponse:
    """A fresh signed time statement."""
    rt = runtime_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        t = timeauth.signable_or_503(s, rt)
        return 200, {"time": t.time,
                     "time_statement": timeauth.sign(rt.keyset(s, p).active, t).hex()}

    return rt.call(request, token, PHONES, run)


@router.post("/logs", response_model=LogUploadOut)
def upload_logs(
    request: Request,
    token: PhoneToken,
    body: LogUploadIn,
    idem: IdemKey = None,
    dpop: DpopHeader = None,
) -> JSONResponse:
    """Upload a log fetched from a lock: verified against the lock's key and hash chain,
    de-duplicated by (lock, seq); retrying is harmless."""
    rt = runtime_of(request)

    def run(s: Session, p: Principal) -> tuple[int, dict[str, Any]]:
        assert p.phone is not None and p.user is not None
        lock = s.scalars(
            select(Lock).where(Lock.lock_id == body.lock_id, Lock.operator_id == p.operator.id,
                               Lock.status != RETIRED)
        ).first()
        holds = lock is not None and s.scalar(
            select(Lock.pk).where(
                Lock.pk == lock.pk,
                or_(
                    Lock.pk.in_(select(KeyRequest.lock_pk).where(KeyRequest.user_pk == p.user.pk)),
                    Lock.pk.in_(select(IssuedKey.lock_pk).where(IssuedKey.phone_id == p.phone.id)),
                ),
            )
        )
        if lock is None or not holds:
            raise ApiError(404, "not-found", "lock not found")
        outcome = logs.ingest(s, lock, body, rt.now())
        audit.record(
            s,
            rt.now(),
            p.actor,
            "log.upload",
            operator_id=p.operator.id,
            target=lock.lock_id,
            detail={
                "accepted": outcome.accepted,
                "duplicates": outcome.duplicates,
                "head_seq": body.head_seq,
                "lost": body.lost,
                "missing": outcome.missing,
            },
        )
        if outcome.conflicts:
            audit.record(
                s,
                rt.now(),
                p.actor,
                "log.conflict",
                operator_id=p.operator.id,
                target=lock.lock_id,
                detail={"seqs": outcome.conflicts[:32]},
            )
        return 200, {
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "conflicts": outcome.conflicts,
            "head_seq": body.head_seq,
            "lost": outcome.lost,
            "missing": outcome.missing,
            "receipt": logs.receipt(lock, outcome, rt.keyset(s), rt.now()),
        }

    return rt.call(
        request, token, PHONES, run, idempotency_key=idem, body=body.model_dump(mode="json")
    )
