"""Operator router: user IDs and their enrollment codes."""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from kagiya.server.deps import Limit, NumericCursor, Read, UserIdP, Write
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.schemas import DeletedOut, EnrollmentCodeOut, UserExport, UserOut, UserPage
from kagiya.server.services import users

router = APIRouter(prefix="/v1", tags=["operator"], responses=documented(*OPERATOR_ERRORS))


@router.post("/users", status_code=201, response_model=UserOut)
def create_user(op: Write) -> JSONResponse:
    """Issue a new user ID (refused with 403 ``quota-exceeded`` beyond the contract quota)."""
    return op(users.create, status=201)


@router.get("/users", response_model=UserPage)
def list_users(
    op: Read,
    *,
    status: Annotated[str | None, Query(pattern="^(active|suspended)$")] = None,
    cursor: NumericCursor,
    limit: Limit = 50,
) -> JSONResponse:
    """List the operator's user IDs."""
    return op(lambda c: users.list_page(c, status, cursor, limit))


@router.get("/users/{user_id}", response_model=UserOut)
def read_user(user_id: UserIdP, op: Read) -> JSONResponse:
    """One user ID."""
    return op(lambda c: users.read(c, user_id))


@router.post("/users/{user_id}/suspend", response_model=UserOut)
def suspend_user(user_id: UserIdP, op: Write) -> JSONResponse:
    """Suspend a user ID: its keys are revoked and its phones get nothing until resumed."""
    return op(lambda c: users.suspend(c, user_id))


@router.post("/users/{user_id}/resume", response_model=UserOut)
def resume_user(user_id: UserIdP, op: Write) -> JSONResponse:
    """Resume a suspended user ID (not a leaked one)."""
    return op(lambda c: users.resume(c, user_id))


@router.post("/users/{user_id}/leaked", response_model=UserOut)
def mark_leaked(user_id: UserIdP, op: Write) -> JSONResponse:
    """Mark a user ID as leaked: suspended at once, keys revoked, phones and codes removed."""
    return op(lambda c: users.mark_leaked(c, user_id))


@router.delete("/users/{user_id}", response_model=DeletedOut)
def delete_user(user_id: UserIdP, op: Write) -> JSONResponse:
    """Delete a user ID and all its data (keys are revoked first; logs naming it are deleted)."""
    return op(lambda c: users.delete_user(c, user_id))


@router.get("/users/{user_id}/export", response_model=UserExport)
def export_user(user_id: UserIdP, op: Read) -> JSONResponse:
    """Everything stored about a user ID (for a disclosure request)."""
    return op(lambda c: users.export(c, user_id))


@router.post("/users/{user_id}/enrollment-codes", status_code=201, response_model=EnrollmentCodeOut)
def create_enrollment_code(user_id: UserIdP, op: Write) -> JSONResponse:
    """A one-time code, and the enrollment link carrying it with this server's URL
    (``$KAGIYA_PUBLIC_URL``, else the URL this request came to), for the phone app."""
    base = public_url(op.request)
    return op(lambda c: users.create_enrollment_code(c, user_id, base), status=201)


def public_url(request: Request) -> str:
    """This server's URL for phones: ``$KAGIYA_PUBLIC_URL``, else the URL of ``request``
    (the operator API and the console put it into enrollment links)."""
    return os.environ.get("KAGIYA_PUBLIC_URL", "").rstrip("/") or str(
        request.base_url).rstrip("/")
