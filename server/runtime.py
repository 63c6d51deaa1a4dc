"""The per-process runtime: settings, database, sealer, issuer keys, and the request helper
that wraps every API call in one transaction with authentication and idempotency.

Nothing here keeps request state in memory: tokens, rate counters and idempotency records
live in the database, so any number of processes can serve one deployment.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from kagiya.server import dpop, ratelimit
from kagiya.server.config import Settings
from kagiya.server.db import (
    make_engine,
    make_sessionmaker,
    transaction,
)
from kagiya.server.issuance import Issuer
from kagiya.server.issuer import VERSION_QUERY, IssuerStore, KeySet, version_query
from kagiya.server.migrate import upgrade
from kagiya.server.models import ACTIVE, Idempotency, Operator, Phone, Token, User
from kagiya.server.prepared import Handle, Prepared
from kagiya.server.principal import (
    INSTALLER,
    OPERATOR,
    PHONE,
    OperatorLike,
    OperatorRef,
    PhoneRef,
    Principal,
    UserRef,
    token_ref,
)
from kagiya.server.problems import ApiError
from kagiya.server.revocations import RevocationCache
from kagiya.server.secrets_store import Sealer, load_master_key, token_hash
from pydantic import BaseModel
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

log = logging.getLogger("kagiya.server")
_IDEM_CONTEXT = b"kagiya idempotent response "
_IDEM_SECRET_CONTEXT = b"kagiya idempotent secret "
# top-level fields of a success body that are shown once (installer token, enrollment code):
# kept apart from the stored outcome and replayed only for ``SECRET_REPLAY_S``
SECRET_FIELDS = ("access_token", "code")
SECRET_REPLAY_S = 300
WITHHELD_HEADER = "Kagiya-Secret-Withheld"


# a handler answers a status and a schema model (validated when built) or a plain JSON dict
Handler = Callable[[Session, Principal], tuple[int, BaseModel | dict[str, Any]]]

# one statement, prepared once (no ORM loading)
_AUTH_QUERY = Prepared(
    select(
        Token.kind,
        Token.expires_at,
        Operator.id.label("op_id"),
        Operator.status.label("op_status"),
        Operator.contract_start,
        Operator.contract_end,
        Phone.id.label("phone_id"),
        Phone.user_pk,
        Phone.device_public,
        User.user_id,
        User.status.label("user_status"),
        version_query().label("issuer_version"),
    )
    .join(Operator, Operator.id == Token.operator_id)
    .outerjoin(Phone, Phone.id == Token.phone_id)
    .outerjoin(User, User.pk == Phone.user_pk)
    .where(Token.token_hash == bindparam("token_hash"))
)


class Runtime:
    """Everything one server process shares between requests."""

    def __init__(self, settings: Settings, *, migrate: bool = True) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        if migrate:
            upgrade(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        self.sealer = Sealer(load_master_key(settings.data_dir))
        self.issuer = Issuer(settings, IssuerStore(self.sealer), self.sealer)
        self.revocations = RevocationCache()
        with transaction(self.sessions) as s:
            self.issuer.keys.ensure_active(s, settings.now())

    def now(self) -> int:
        """Current unix time (seconds)."""
        return self.settings.now()

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()

    # --- authentication -------------------------------------------------------------

    def authenticate(
        self,
        session: Handle,
        bearer: str | None,
        kinds: tuple[str, ...],
        proof: dpop.RequestProof | None = None,
    ) -> Principal:
        """Resolve a bearer token to a principal or raise 401/403 problems.

        A phone token is device-bound: the request's DPoP proof must verify under the
        phone's device key (401 ``invalid-dpop-proof``); the caller records
        ``principal.proof_jti`` as used in its write transaction (:func:`dpop.record`)."""
        if not bearer:
            raise ApiError(
                401,
                "unauthorized",
                "a bearer token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        now = self.now()
        # one query: token, operator, phone, user and the issuer key-set version
        hashed = token_hash(bearer)
        row = _AUTH_QUERY.first(session, {"token_hash": hashed})
        if row is None:
            raise ApiError(
                401,
                "invalid-token",
                "the bearer token is not valid",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if row.expires_at <= now:
            raise ApiError(
                401,
                "token-expired",
                "the bearer token has expired",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if row.kind not in kinds:
            raise ApiError(403, "wrong-token-kind", f"a {row.kind} token cannot call this endpoint")
        op = OperatorRef(row.op_id, row.op_status, row.contract_start, row.contract_end)
        check_operator_usable(op, now)
        principal = Principal(
            row.kind, op, issuer_version=row.issuer_version, token_ref=token_ref(hashed)
        )
        if row.kind == PHONE:
            if row.phone_id is None or row.user_pk is None or row.user_status is None:
                raise ApiError(401, "invalid-token", "the bearer token is not valid")
            if row.user_status != ACTIVE:
                raise ApiError(403, "user-suspended", "this user ID is suspended")
            principal.proof_jti = dpop.check(proof, bytes(row.device_public), bearer, now)
            principal.phone = PhoneRef(row.phone_id, row.user_pk, row.op_id)
            principal.user = UserRef(row.user_pk, row.user_id, row.user_status)
        return principal

    def keyset(self, session: Handle, p: Principal | None = None) -> KeySet:
        """The issuer keys, cached while the database's key-set version is unchanged."""
        version = p.issuer_version if p is not None else None
        if version is None:
            version = VERSION_QUERY.scalar(session)
        return self.issuer.keys.snapshot(session, version)

    # --- the request wrapper --------------------------------------------------------

    def call(
        self,
        request: Request,
        bearer: str | None,
        kinds: tuple[str, ...],
        handler: Handler,
        *,
        idempotency_key: str | None = None,
        body: Any = None,
    ) -> JSONResponse:
        """Run ``handler`` in one transaction after authentication.

        With an ``Idempotency-Key`` the first successful outcome is stored (sealed) in the
        same transaction as the change; a retry — even a concurrent one — gets the stored
        outcome back (header ``Idempotent-Replayed: true``) and changes nothing. Reusing a key
        for a different request is refused with 422 ``idempotency-key-reused``.
        """
        fingerprint = _fingerprint(request, body) if idempotency_key else ""
        proof = dpop.RequestProof.from_headers(request.method, request.url.path, request.headers)
        for _attempt in range(3):
            try:
                with transaction(self.sessions) as s:
                    principal = self.authenticate(s, bearer, kinds, proof)
                    if principal.proof_jti is not None:
                        dpop.record(s, principal.proof_jti, self.now())
                    if idempotency_key:
                        stored = self._stored(s, principal, idempotency_key, fingerprint)
                        if stored is not None:
                            return stored
                        marker = Idempotency(
                            scope=principal.scope,
                            key=idempotency_key,
                            operator_id=principal.operator.id,
                            fingerprint=fingerprint,
                            status_code=0,
                            response_sealed=b"",
                            created_at=self.now(),
                        )
                        s.add(marker)
                        s.flush()  # PostgreSQL: a concurrent twin waits here, then conflicts
                    status, result = handler(s, principal)
                    out: dict[str, Any] = (
                        result.model_dump(mode="json") if isinstance(result, BaseModel) else result
                    )
                    if idempotency_key:
                        self._store_outcome(marker, status, out, fingerprint)
                    return JSONResponse(out, status_code=status)
            except IntegrityError as exc:
                if not idempotency_key:
                    raise ApiError(
                        409, "conflict", "the request conflicts with existing data"
                    ) from exc
                log.info("idempotent retry raced; replaying")
        raise ApiError(409, "conflict", "the request conflicts with existing data")

    def _store_outcome(
        self, marker: Idempotency, status: int, out: dict[str, Any], fingerprint: str
    ) -> None:
        """Seal the outcome for replays, a shown secret apart (replayed for minutes only)."""
        secrets = {k: out[k] for k in SECRET_FIELDS if isinstance(out.get(k), str)}
        public = {k: ("" if k in secrets else v) for k, v in out.items()}
        marker.status_code = status
        marker.response_sealed = self.sealer.seal(
            json.dumps(public).encode(), _IDEM_CONTEXT + fingerprint.encode()
        )
        if secrets:
            marker.secret_sealed = self.sealer.seal(
                json.dumps(secrets).encode(), _IDEM_SECRET_CONTEXT + fingerprint.encode()
            )
            marker.secret_until = self.now() + SECRET_REPLAY_S

    def _stored(self, s: Session, p: Principal, key: str, fingerprint: str) -> JSONResponse | None:
        row = s.scalars(
            select(Idempotency).where(Idempotency.scope == p.scope, Idempotency.key == key)
        ).first()
        if row is None:
            return None
        if row.created_at <= self.now() - self.settings.idempotency_ttl_s:
            s.delete(row)  # expired (housekeeping drops it too): this is a new request
            s.flush()
            return None
        if row.fingerprint != fingerprint:
            raise ApiError(
                422,
                "idempotency-key-reused",
                "this Idempotency-Key was used for a different request",
            )
        body = json.loads(
            self.sealer.open(row.response_sealed, _IDEM_CONTEXT + fingerprint.encode())
        )
        headers = {"Idempotent-Replayed": "true"}
        if row.secret_sealed is not None:
            if row.secret_until is not None and row.secret_until > self.now():
                body.update(
                    json.loads(
                        self.sealer.open(
                            row.secret_sealed, _IDEM_SECRET_CONTEXT + fingerprint.encode()
                        )
                    )
                )
            else:  # shown once and the retry window is over: erase it, replay without
                row.secret_sealed = None  # keep secret_until: later replays withhold too
                headers[WITHHELD_HEADER] = "true"
        elif row.secret_until is not None:
            headers[WITHHELD_HEADER] = "true"
        return JSONResponse(body, status_code=row.status_code, headers=headers)

    def limit(self, bucket: str, per_min: int) -> None:
        """Count one attempt against a shared rate limit (429 beyond it)."""
        with transaction(self.sessions) as s:
            ratelimit.hit(s, bucket, per_min, self.now())


def check_operator_usable(op: OperatorLike, now: int) -> None:
    """Refuse a suspended operator or one outside its contract period."""
    if op.status != ACTIVE:
        raise ApiError(403, "operator-suspended", "this operator is suspended")
    if not op.contract_start <= now < op.contract_end:
        raise ApiError(403, "contract-inactive", "the operator's contract is not in effect")


def _fingerprint(request: Request, body: Any) -> str:
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    raw = f"{request.method} {request.url.path}?{request.url.query}\n{canon}"
    return hashlib.sha256(raw.encode()).hexdigest()


__all__ = [
    "INSTALLER",
    "OPERATOR",
    "PHONE",
    "OperatorRef",
    "PhoneRef",
    "Principal",
    "Runtime",
    "UserRef",
    "check_operator_usable",
]
