"""OAuth2 client credentials (RFC 6749 §4.4) for operators, public keys, time, health."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from kagiya.sdk.credential import is_lock_id
from kagiya.sdk.protocol import NONCE_LEN
from kagiya.server import audit, ratelimit, timeauth
from kagiya.server.clientaddr import peer_address
from kagiya.server.db import transaction
from kagiya.server.deps import runtime_of
from kagiya.server.models import Operator, Token
from kagiya.server.problems import ApiError, documented
from kagiya.server.runtime import OPERATOR, check_operator_usable
from kagiya.server.schemas import IssuerKeysOut, TimeOut, TokenOut
from kagiya.server.secrets_store import DUMMY_HASH, new_token, token_hash, verify_secret
from sqlalchemy import select

router = APIRouter(prefix="/v1", tags=["auth"])


def _invalid_client() -> ApiError:
    return ApiError(
        401,
        "invalid-client",
        "unknown client or wrong secret",
        headers={"WWW-Authenticate": 'Basic realm="kagiya"'},
        extra={"error": "invalid_client"},
    )


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_client() from None
    cid, sep, secret = raw.partition(":")
    if not sep:
        raise _invalid_client()
    return cid, secret


@router.post(
    "/oauth/token", response_model=TokenOut, responses=documented(400, 401, 403, 422, 429, 503)
)
def token(
    request: Request,
    grant_type: Annotated[str, Form(max_length=64)],
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
    scope: Annotated[str | None, Form(max_length=64)] = None,
) -> JSONResponse:
    """Exchange operator client credentials (form fields or HTTP Basic) for a bearer token."""
    rt = runtime_of(request)
    if grant_type != "client_credentials":
        raise ApiError(
            400,
            "unsupported-grant-type",
            "only client_credentials is supported",
            extra={"error": "unsupported_grant_type"},
        )
    basic = _basic(request)
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or client_secret is None:
        raise _invalid_client()
    host = peer_address(request, rt.settings.trusted_proxies)
    rt.limit(f"token-ip:{host}", rt.settings.token_rate_per_min)
    # wrong secrets count per client ID *and* address: guesses from one address never lock
    # the real client out on another (a client secret is 256 bits: guessing it from many
    # addresses is hopeless, and each failure is audited for the operator)
    failures = f"token-fail:{host}:{client_id}"
    with transaction(rt.sessions) as s:
        ratelimit.check(s, failures, rt.settings.token_failures_per_min, rt.now())
        found = s.execute(
            select(Operator.id, Operator.secret_hash).where(Operator.client_id == client_id)
        ).first()
    # the slow hash runs outside every transaction (and for an unknown ID too: no oracle)
    ok = verify_secret(found.secret_hash if found else DUMMY_HASH, client_secret)
    if found is None or not ok:
        with transaction(rt.sessions) as s:
            ratelimit.count(s, failures, rt.now())
            audit.record(
                s,
                rt.now(),
                f"address:{host}",
                "token.failed",
                operator_id=found.id if found else None,
                target=client_id[:64],
                detail={"reason": "wrong secret" if found else "unknown client"},
            )
        raise _invalid_client()
    with transaction(rt.sessions) as s:
        op = s.get(Operator, found.id)
        if op is None:
            raise _invalid_client()
        now = rt.now()
        check_operator_usable(op, now)
        tok = new_token()
        ttl = rt.settings.operator_token_ttl_s
        s.add(
            Token(
                token_hash=token_hash(tok), kind=OPERATOR, operator_id=op.id, expires_at=now + ttl
            )
        )
        audit.record(s, now, f"operator:{op.id}", "token.issue", operator_id=op.id)
        return JSONResponse(
            {"access_token": tok, "token_type": "Bearer", "expires_in": ttl, "scope": "operator"},
            headers={"Cache-Control": "no-store"},
        )


@router.get(
    "/issuer-keys", response_model=IssuerKeysOut, tags=["public"], responses=documented(503)
)
def issuer_keys(request: Request) -> JSONResponse:
    """The issuer public keys locks should trust now (public data, no authentication)."""
    rt = runtime_of(request)
    with transaction(rt.sessions) as s:
        return JSONResponse({"keys": rt.keyset(s).listed(rt.now())})


@router.get(
    "/time", response_model=TimeOut, tags=["public"], responses=documented(422, 429, 503)
)
def public_time(request: Request, lock_id: str | None = None,
                nonce: str | None = None) -> JSONResponse:
    """A signed time statement (protocol §6, hex) for phones, installers and tools.

    Without parameters a *plain* statement (a lower bound any lock may raise its clock
    to). With ``lock_id`` and ``nonce`` (32 hex digits: the lock's current session nonce,
    or the one ``provisioning.time_nonce()`` printed over USB) a *fresh* statement bound
    to that lock and nonce, which the lock takes as its current time - also backwards, the
    recovery after a power cut or a wrong future time. Public: it states only the server's
    own time, and the server signs only a time it can vouch for (422 ``invalid-time-request``
    for a bad lock ID or nonce; 503 ``clock-unreliable`` when its clock went back or jumped;
    429 ``rate-limited`` per address, a statement costs a signature)."""
    rt = runtime_of(request)
    host = peer_address(request, rt.settings.trusted_proxies)
    if (lock_id is None) != (nonce is None) or (lock_id is not None and (
            not is_lock_id(lock_id) or not _is_nonce(nonce))):
        raise ApiError(422, "invalid-time-request",
                       "give both lock_id (a lock ID) and nonce (32 hex digits), or neither")
    rt.limit(f"time:{host}", rt.settings.time_rate_per_min)
    with transaction(rt.sessions) as s:
        t = timeauth.signable_or_503(s, rt)
        stmt = timeauth.sign(rt.keyset(s).active, t, lock_id=lock_id,
                             nonce=bytes.fromhex(nonce) if nonce else None)
        return JSONResponse({"time": t.time, "time_statement": stmt.hex()},
                            headers={"Cache-Control": "no-store"})


def _is_nonce(v: str | None) -> bool:
    try:
        return v is not None and len(bytes.fromhex(v)) == NONCE_LEN
    except ValueError:
        return False


@router.get("/health", tags=["public"])
def health() -> dict[str, str]:
    """Liveness probe."""
    return {"status": "ok"}
