"""Operator router: installer tokens."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from kagiya.server.deps import Write
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.schemas import InstallerTokenIn, TokenOut
from kagiya.server.services import tokens

router = APIRouter(prefix="/v1", tags=["operator"], responses=documented(*OPERATOR_ERRORS))


@router.post("/installer-tokens", status_code=201, response_model=TokenOut)
def create_installer_token(op: Write, body: InstallerTokenIn | None = None) -> JSONResponse:
    """Mint a short-lived token for an installer: it can only register locks."""
    ttl = body.ttl_s if body is not None else op.runtime.settings.installer_token_max_ttl_s
    return op(lambda c: tokens.create_installer_token(c, ttl), status=201, body=body)
