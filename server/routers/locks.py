"""Operator router: locks (and the installer's lock registration, same service)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from kagiya.server.deps import (
    EITHER_TOKEN,
    InstallerToken,
    Limit,
    LockIdP,
    NumericCursor,
    Operation,
    Read,
    RuntimeDep,
    Write,
)
from kagiya.server.models import ACTIVE, SUSPENDED
from kagiya.server.principal import INSTALLER, OPERATOR
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.schemas import (
    DecommissionOut,
    DeletedOut,
    LockIdentityIn,
    LockIn,
    LockOut,
    LockPage,
    LockPatch,
    OperatorIdOut,
    RegistrationChallengeOut,
)
from kagiya.server.services import locks

router = APIRouter(prefix="/v1", tags=["operator"], responses=documented(*OPERATOR_ERRORS))
installer_router = APIRouter(
    prefix="/v1", tags=["installer"], responses=documented(*OPERATOR_ERRORS)
)
OPERATOR_OR_INSTALLER = (OPERATOR, INSTALLER)


_REGISTERED: dict[int | str, dict[str, Any]] = {
    200: {"model": LockOut, "description": "this identity is already registered"}}


@router.post("/locks", status_code=201, response_model=LockOut, responses=_REGISTERED)
def create_lock(body: LockIn, op: Write) -> JSONResponse:
    """Register a lock: lock ID, its Ed25519 and X25519 public keys and its proof of
    possession over a registration challenge (protocol §5). Lock IDs are per operator."""
    return op(lambda c: locks.register(c, body), body=body)


@installer_router.post("/install/locks", status_code=201, response_model=LockOut,
                       responses=_REGISTERED, openapi_extra=EITHER_TOKEN)
def install_lock(
    request: Request, body: LockIn, runtime: RuntimeDep, token: InstallerToken
) -> JSONResponse:
    """Register a newly provisioned lock under the installer token's operator (with the
    lock's proof of possession, as ``POST /v1/locks``)."""
    op = Operation(request, runtime, token)
    return op(lambda c: locks.register(c, body), kinds=(INSTALLER, OPERATOR))


@installer_router.post("/install/registration-challenge", status_code=201,
                       response_model=RegistrationChallengeOut, openapi_extra=EITHER_TOKEN)
def registration_challenge(request: Request, runtime: RuntimeDep,
                           token: InstallerToken) -> JSONResponse:
    """A one-time 32-byte challenge (10 minutes) for the lock to sign over USB at
    registration or identity replacement (protocol §5)."""
    op = Operation(request, runtime, token)
    return op(locks.challenge, status=201, kinds=(INSTALLER, OPERATOR))


@installer_router.get("/install/operator", response_model=OperatorIdOut,
                      openapi_extra=EITHER_TOKEN)
def token_operator(request: Request, runtime: RuntimeDep, token: InstallerToken) -> JSONResponse:
    """The operator of this installer or operator token: what a lock is provisioned for."""
    op = Operation(request, runtime, token)
    return op(locks.operator, kinds=(INSTALLER, OPERATOR))


@router.get("/locks", response_model=LockPage)
def list_locks(
    op: Read,
    *,
    partner_id: Annotated[str | None, Query(pattern=r"^[a-z]{2}_[0-9a-f]{1,40}$")] = None,
    cursor: NumericCursor,
    limit: Limit = 50,
) -> JSONResponse:
    """List locks, optionally of one partner."""
    return op(lambda c: locks.list_page(c, partner_id, cursor, limit))


@router.get("/locks/{lock_id}", response_model=LockOut)
def read_lock(lock_id: LockIdP, op: Read) -> JSONResponse:
    """One lock."""
    return op(lambda c: locks.read(c, lock_id))


@router.patch("/locks/{lock_id}", response_model=LockOut)
def patch_lock(lock_id: LockIdP, body: LockPatch, op: Write) -> JSONResponse:
    """Change a lock's vehicle label or partner."""
    return op(lambda c: locks.update(c, lock_id, body), body=body)


@router.put("/locks/{lock_id}/identity", response_model=LockOut, openapi_extra=EITHER_TOKEN)
def replace_lock_identity(lock_id: LockIdP, body: LockIdentityIn, op: Write) -> JSONResponse:
    """Replace a re-provisioned lock's identity keys, with the new identity's proof of
    possession (operator token; an installer token only for a lock not in service). Key
    requests stay; keys issued so far (wrapped to the old X25519 key) are revoked and
    re-issued to the new key on the next download. Usage logs stay attributed to the
    identity that signed them. Audited."""
    return op(
        lambda c: locks.replace_identity(c, lock_id, body),
        body=body,
        kinds=OPERATOR_OR_INSTALLER,
    )


@router.post("/locks/{lock_id}/suspend", response_model=LockOut)
def suspend_lock(lock_id: LockIdP, op: Write) -> JSONResponse:
    """Suspend a lock: its keys are revoked and no new ones issued."""
    return op(lambda c: locks.set_status(c, lock_id, SUSPENDED))


@router.post("/locks/{lock_id}/resume", response_model=LockOut)
def resume_lock(lock_id: LockIdP, op: Write) -> JSONResponse:
    """Resume a lock."""
    return op(lambda c: locks.set_status(c, lock_id, ACTIVE))


@router.delete("/locks/{lock_id}", response_model=DeletedOut)
def delete_lock(lock_id: LockIdP, op: Write) -> JSONResponse:
    """Delete a lock: every key is revoked first, its key requests cancelled, its usage logs
    deleted; the lock ID stays as a tombstone (revocation versions continue if it is
    registered again) and phones that held keys carry its decommission update."""
    return op(lambda c: locks.delete_lock(c, lock_id))


@router.post("/locks/{lock_id}/decommission", response_model=DecommissionOut,
             openapi_extra=EITHER_TOKEN)
def decommission_lock(lock_id: LockIdP, op: Write) -> JSONResponse:
    """Retire a lock (operator token, or an installer token for a lock not in service):
    every key revoked, key requests cancelled, the ID kept as a tombstone; returns the signed
    decommission update (protocol §7a) to carry to the lock over BLE or USB."""
    return op(lambda c: locks.decommission(c, lock_id, op.runtime.keyset(c.s)),
              kinds=OPERATOR_OR_INSTALLER)


@router.get("/locks/{lock_id}/decommission", response_model=DecommissionOut,
            openapi_extra=EITHER_TOKEN)
def read_decommission(lock_id: LockIdP, op: Read) -> JSONResponse:
    """The decommission update of a retired lock again (404 while it is in service)."""
    return op(lambda c: locks.decommission_again(c, lock_id, op.runtime.keyset(c.s)),
              kinds=OPERATOR_OR_INSTALLER)
