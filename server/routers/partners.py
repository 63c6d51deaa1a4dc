"""Operator router: partners."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from kagiya.server.deps import Cursor, Limit, PartnerIdP, Read, Write
from kagiya.server.models import ACTIVE, SUSPENDED
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.schemas import DeletedOut, PartnerIn, PartnerOut, PartnerPage
from kagiya.server.services import partners

router = APIRouter(prefix="/v1", tags=["operator"], responses=documented(*OPERATOR_ERRORS))


@router.post("/partners", status_code=201, response_model=PartnerOut)
def create_partner(body: PartnerIn, op: Write) -> JSONResponse:
    """Register a partner business."""
    return op(lambda c: partners.create(c, body), status=201, body=body)


@router.get("/partners", response_model=PartnerPage)
def list_partners(op: Read, cursor: Cursor = None, limit: Limit = 50) -> JSONResponse:
    """List partners (ordered by ID)."""
    return op(lambda c: partners.list_page(c, cursor, limit))


@router.get("/partners/{partner_id}", response_model=PartnerOut)
def read_partner(partner_id: PartnerIdP, op: Read) -> JSONResponse:
    """One partner."""
    return op(lambda c: partners.read(c, partner_id))


@router.post("/partners/{partner_id}/suspend", response_model=PartnerOut)
def suspend_partner(partner_id: PartnerIdP, op: Write) -> JSONResponse:
    """Suspend a partner: keys for its locks are revoked and no new ones issued."""
    return op(lambda c: partners.set_status(c, partner_id, SUSPENDED))


@router.post("/partners/{partner_id}/resume", response_model=PartnerOut)
def resume_partner(partner_id: PartnerIdP, op: Write) -> JSONResponse:
    """Resume a partner."""
    return op(lambda c: partners.set_status(c, partner_id, ACTIVE))


@router.delete("/partners/{partner_id}", response_model=DeletedOut)
def delete_partner(partner_id: PartnerIdP, op: Write) -> JSONResponse:
    """Delete a partner (its locks stay, detached from it)."""
    return op(lambda c: partners.delete_partner(c, partner_id))
