"""Installer router: maintenance authorisations for locked-down locks (issue #18)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from kagiya.server.deps import EITHER_TOKEN, InstallerToken, LockIdP, Operation, RuntimeDep
from kagiya.server.principal import INSTALLER, OPERATOR
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.schemas import MaintenanceIn, MaintenanceOut
from kagiya.server.services import maintenance

router = APIRouter(prefix="/v1", tags=["installer"], responses=documented(*OPERATOR_ERRORS))


@router.post("/install/locks/{lock_id}/maintenance", status_code=201,
             response_model=MaintenanceOut, openapi_extra=EITHER_TOKEN)
def authorise_maintenance(
    lock_id: LockIdP, request: Request, body: MaintenanceIn, runtime: RuntimeDep,
    token: InstallerToken,
) -> JSONResponse:
    """Sign a maintenance authorisation for one of the token's operator's locks: it answers
    the lock's current one-use challenge (``nonce``), names the installer's token, lasts at
    most 900 s and opens the scopes asked for (``repl``: the serial REPL of a locked-down
    lock; ``anchors``: adding or removing a trust anchor; ``provision``: re-provisioning).
    Audited. Another operator's lock is 404 ``not-found`` like an unknown one; a suspended
    lock is 409 ``lock-suspended``."""
    op = Operation(request, runtime, token)
    return op(
        lambda c: maintenance.authorise(c, runtime.keyset(c.s, c.p).active, lock_id, body),
        status=201, kinds=(INSTALLER, OPERATOR),
    )
