"""Operator router: usage logs and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from kagiya.sdk.protocol import LOCK_ID_PATTERN
from kagiya.server.deps import Limit, NumericCursor, Read
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.schemas import AuditPage, LogPage
from kagiya.server.services import usage_logs

router = APIRouter(prefix="/v1", tags=["operator"], responses=documented(*OPERATOR_ERRORS))


@router.get("/logs", response_model=LogPage)
def list_logs(
    op: Read,
    *,
    lock_id: Annotated[str | None, Query(pattern=f"^{LOCK_ID_PATTERN}$")] = None,
    user_id: Annotated[str | None, Query(pattern=r"^[!-~]{1,64}$")] = None,
    since: Annotated[int | None, Query(ge=0, le=4294967295)] = None,
    until: Annotated[int | None, Query(ge=0, le=4294967295)] = None,
    cursor: NumericCursor,
    limit: Limit = 100,
) -> JSONResponse:
    """Usage logs uploaded by phones, verified and de-duplicated (lock time ``since`` ≤ t <
    ``until``), in the order received."""
    return op(
        lambda c: usage_logs.list_logs(
            c,
            lock_id=lock_id,
            user_id=user_id,
            since=since,
            until=until,
            after=cursor,
            limit=limit,
        )
    )


@router.get("/audit", response_model=AuditPage)
def list_audit(op: Read, cursor: NumericCursor, limit: Limit = 100) -> JSONResponse:
    """This operator's audit log (actions by its servers, installers, phones and the admin)."""
    return op(lambda c: usage_logs.list_audit(c, after=cursor, limit=limit))
