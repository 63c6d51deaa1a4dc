"""Operator router: locks (and the installer's lock registration, same service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from kagiya.server.deps import (
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
from kagiya.server.schemas import DeletedOut, LockIdentityIn, LockIn, LockOut, LockPage, LockPatch
from kagiya.server.services import locks

router = APIRouter(prefix="/v1", tags=["operator"], responses=documented(*OPERATOR_ERRORS))
installer_router = APIRouter(
    prefix="/v1", tags=["installer"], responses=documented(*OPERATOR_ERRORS)
)
OPERATOR_OR_INSTALLER = (OPERATOR, INSTALLER)


@router.post("/locks", status_code=201, response_model=LockOut)
def create_lock(body: LockIn, op: Write) -> JSONResponse:
    """Register a lock (lock ID + its Ed25519 and X25519 public keys, hex)."""
    return op(lambda c: locks.register(c, body), status=201, body=body)


@installer_router.post("/install/locks", status_code=201, response_model=LockOut)
def install_lock(
    request: Request, body: LockIn, runtime: RuntimeDep, token: InstallerToken
) -> JSONResponse:
    """Register a newly provisioned lock under the installer token's operator."""
    op = Operation(request, runtime, token)
    return op(lambda c: locks.register(c, body), status=201, kinds=(INSTALLER, OPERATOR))


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


@router.put("/locks/{lock_id}/identity", response_model=LockOut)
def replace_lock_identity(lock_id: LockIdP, body: LockIdentityIn, op: Write) -> JSONResponse:
    """Replace a re-provisioned lock's identity keys (operator token, or an installer token
    of the same operator). Key requests stay; keys issued so far (wrapped to the old X25519
    key) are revoked and re-issued to the new key on the next download. Usage logs stay
    attributed to the identity that signed them. Audited."""
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
    """Delete a lock with its key requests, keys and logs."""
    return op(lambda c: locks.delete_lock(c, lock_id))
