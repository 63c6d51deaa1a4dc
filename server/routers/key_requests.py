"""Operator router: key requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from kagiya.sdk.protocol import LOCK_ID_PATTERN
from kagiya.server.deps import Cursor, Limit, Read, RequestIdP, Write
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.schemas import KeyRequestIn, KeyRequestOut, KeyRequestPage, KeyRequestPatch
from kagiya.server.services import key_requests

router = APIRouter(prefix="/v1", tags=["operator"], responses=documented(*OPERATOR_ERRORS))


@router.post("/key-requests", status_code=201, response_model=KeyRequestOut)
def create_key_request(body: KeyRequestIn, op: Write) -> JSONResponse:
    """Request a key (effective when stored): the user's phones download it from now on."""
    return op(lambda c: key_requests.create(c, body), status=201, body=body)


@router.get("/key-requests", response_model=KeyRequestPage)
def list_key_requests(
    op: Read,
    user_id: Annotated[str | None, Query(pattern=r"^[!-~]{1,64}$")] = None,
    lock_id: Annotated[str | None, Query(pattern=f"^{LOCK_ID_PATTERN}$")] = None,
    status: Annotated[str | None, Query(pattern="^(active|cancelled)$")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> JSONResponse:
    """List key requests (filter by user, lock, status; ordered by request ID)."""
    return op(
        lambda c: key_requests.list_page(
            c, user_id=user_id, lock_id=lock_id, status=status, after=cursor, limit=limit
        )
    )


@router.get("/key-requests/{request_id}", response_model=KeyRequestOut)
def read_key_request(request_id: RequestIdP, op: Read) -> JSONResponse:
    """One key request."""
    return op(lambda c: key_requests.read(c, request_id))


@router.patch("/key-requests/{request_id}", response_model=KeyRequestOut)
def patch_key_request(request_id: RequestIdP, body: KeyRequestPatch, op: Write) -> JSONResponse:
    """Change the window or permissions: new version, old keys revoked, new key on download."""
    return op(lambda c: key_requests.change(c, request_id, body), body=body)


@router.post("/key-requests/{request_id}/cancel", response_model=KeyRequestOut)
def cancel_key_request(request_id: RequestIdP, op: Write) -> JSONResponse:
    """Cancel: the request's keys are revoked (in the lock's next revocation update)."""
    return op(lambda c: key_requests.cancel(c, request_id))
