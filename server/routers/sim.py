"""SIM lines: ``/v1/locks/{lock_id}/sim`` (service: :mod:`..services.sim`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from kagiya.server.deps import EITHER_TOKEN, LockIdP, Read, Write
from kagiya.server.principal import INSTALLER, OPERATOR
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.services import sim
from kagiya.server.services.sim import SimLineIn, SimLineOut

router = APIRouter(prefix="/v1", tags=["sim"], responses=documented(*OPERATOR_ERRORS))
KINDS = (OPERATOR, INSTALLER)


@router.post("/locks/{lock_id}/sim", status_code=201, response_model=SimLineOut,
             openapi_extra=EITHER_TOKEN)
def register_sim(lock_id: LockIdP, body: SimLineIn, op: Write) -> JSONResponse:
    """Register the lock's SIM: its IMEI bound to the line, the line activated."""
    return op(lambda c: sim.register(c, lock_id, body), status=201, body=body, kinds=KINDS)


@router.get("/locks/{lock_id}/sim", response_model=SimLineOut, openapi_extra=EITHER_TOKEN)
def read_sim(lock_id: LockIdP, op: Read) -> JSONResponse:
    """The lock's SIM line: status, session, data usage, newest connection records."""
    return op(lambda c: sim.read(c, lock_id), kinds=KINDS)
