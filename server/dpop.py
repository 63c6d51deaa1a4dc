"""The server's side of device-bound phone requests (RFC 9449 as the model).

A phone token alone is not enough: every request made with it carries a proof signed by the
phone's device key (:mod:`kagiya.sdk.dpop` defines and checks the format). This module reads
the proof off the request, turns a bad one into a specific refusal, and keeps each accepted
proof's ``jti`` in ``dpop_proofs`` so it is accepted once on every server process.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from kagiya.sdk.dpop import HEADER, SKEW_S, ProofError, verify_proof
from kagiya.server.models import DpopProof
from kagiya.server.prepared import Handle, Prepared
from kagiya.server.problems import ApiError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

__all__ = ["HEADER", "SKEW_S", "RequestProof", "check", "record"]

_CHALLENGE = {"WWW-Authenticate": 'DPoP algs="EdDSA", error="invalid_dpop_proof"'}


@dataclass(frozen=True)
class RequestProof:
    """What a proof must match: the request's method and path and its ``DPoP`` header."""

    method: str
    path: str
    header: str | None

    @classmethod
    def from_headers(cls, method: str, path: str, headers: Any) -> RequestProof:
        """From a Starlette ``Headers`` mapping (or any case-insensitive mapping)."""
        return cls(method, path, headers.get(HEADER.lower()))


def check(proof: RequestProof | None, device_public: bytes, bearer: str, now: int) -> str:
    """Verify ``proof`` for a request made with ``bearer`` by the phone whose device key is
    ``device_public``; returns the scoped ``jti`` hash to :func:`record`.
    401 ``invalid-dpop-proof`` (missing, malformed, wrong key, method, path, token or time),
    with ``server_time`` so a phone whose clock is off can sign again."""
    try:
        got = verify_proof(
            None if proof is None else proof.header,
            device_public=device_public,
            method="" if proof is None else proof.method,
            path="" if proof is None else proof.path,
            access_token=bearer,
            now=now,
        )
    except ProofError as exc:
        # the server's time is public (GET /v1/time): a phone with a wrong clock corrects it
        raise ApiError(
            401, "invalid-dpop-proof", str(exc), headers=_CHALLENGE, extra={"server_time": now}
        ) from None
    return hashlib.sha256(bytes(device_public) + got.jti.encode("ascii")).hexdigest()


def _insert(dialect: Any) -> Any:
    return (
        dialect.insert(DpopProof)
        .on_conflict_do_nothing(index_elements=[DpopProof.jti_hash])
        .returning(DpopProof.jti_hash)
    )


_RECORD = {"postgresql": Prepared(_insert(postgresql)), "sqlite": Prepared(_insert(sqlite))}


def record(db: Handle, jti_hash: str, now: int) -> None:
    """Mark a checked proof used, in the request's write transaction; 401 ``replayed-proof``
    if it was used before (on PostgreSQL a concurrent twin waits on the key, then fails)."""
    dialect = db.get_bind().dialect if isinstance(db, Session) else db.dialect
    stmt = _RECORD[dialect.name]
    if stmt.first(db, {"jti_hash": jti_hash, "used_at": now}) is None:
        raise ApiError(
            401, "replayed-proof", "this DPoP proof was already used; sign a new one",
            headers=_CHALLENGE,
        )


EXPIRY_S = 2 * SKEW_S  # a proof older than this is refused as stale anyway
