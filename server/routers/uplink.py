"""Connected locks: ``/v1/locks/{lock_id}/uplink`` (service: :mod:`..services.uplink`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from kagiya.server.deps import EITHER_TOKEN, LockIdP, Read
from kagiya.server.principal import INSTALLER, OPERATOR
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.services import uplink
from kagiya.server.services.uplink import UplinkAccountOut, UplinkStatusOut

router = APIRouter(prefix="/v1", tags=["uplink"], responses=documented(*OPERATOR_ERRORS))
KINDS = (OPERATOR, INSTALLER)


@router.post("/locks/{lock_id}/uplink", status_code=201, response_model=UplinkAccountOut,
             openapi_extra=EITHER_TOKEN)
def connect_lock(lock_id: LockIdP, op: Read) -> JSONResponse:
    """Make a lock a connected lock: a new broker account, its password shown once
    (no Idempotency-Key: a retry draws a new password; none is stored)."""
    return op(lambda c: uplink.connect(c, lock_id), status=201, kinds=KINDS)


@router.get("/locks/{lock_id}/uplink", response_model=UplinkStatusOut,
            openapi_extra=EITHER_TOKEN)
def read_uplink(lock_id: LockIdP, op: Read) -> JSONResponse:
    """A connected lock's last online time and acknowledged revocation version."""
    return op(lambda c: uplink.status(c, lock_id), kinds=KINDS)


@router.delete("/locks/{lock_id}/uplink", response_model=UplinkStatusOut)
def disconnect_lock(lock_id: LockIdP, op: Read) -> JSONResponse:
    """Delete a lock's broker account: it can no longer connect (BLE keeps working)."""
    return op(lambda c: uplink.disconnect(c, lock_id))
