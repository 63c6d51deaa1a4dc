"""Operator router: data-subject requests (privacy policy §8) and the register of
third-party provisions. Drivers file the requests on My Page; see
:mod:`kagiya.server.services.privacy`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from kagiya.server.deps import Cursor, Limit, Read, UserIdP, Write
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.services import privacy
from kagiya.server.services.privacy import (
    REQUEST_ID,
    AnswerIn,
    Disclosure,
    PrivacyRequestOut,
    PrivacyRequestPage,
    ProvisionIn,
    ProvisionList,
    ProvisionOut,
)

router = APIRouter(prefix="/v1", tags=["privacy"], responses=documented(*OPERATOR_ERRORS))
RequestIdP = Annotated[str, Path(pattern=REQUEST_ID)]


@router.get("/privacy-requests", response_model=PrivacyRequestPage)
def list_requests(
    op: Read,
    *,
    status: Annotated[str | None, Query(pattern="^(received|fulfilled|refused|withdrawn)$")]
    = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> JSONResponse:
    """The data-subject requests drivers filed on My Page (``overdue``: open past
    ``due_at``)."""
    return op(lambda c: privacy.list_page(c, status, cursor, limit))


@router.get("/privacy-requests/{request_id}", response_model=PrivacyRequestOut)
def read_request(request_id: RequestIdP, op: Read) -> JSONResponse:
    """One data-subject request."""
    return op(lambda c: privacy.read(c, request_id))


@router.post("/privacy-requests/{request_id}/fulfil", response_model=PrivacyRequestOut)
def fulfil_request(request_id: RequestIdP, body: AnswerIn, op: Write) -> JSONResponse:
    """Fulfil an open request: a disclosure opens the driver's export on My Page, stop-use
    suspends the user ID, erasure deletes it (as ``DELETE /v1/users/{id}``), a correction
    needs ``answer`` (what was corrected; else 422 ``answer-required``). 409
    ``privacy-request-closed`` once answered, 409 ``user-erased`` when the ID is gone."""
    return op(lambda c: privacy.fulfil(c, request_id, body), body=body)


@router.post("/privacy-requests/{request_id}/refuse", response_model=PrivacyRequestOut)
def refuse_request(request_id: RequestIdP, body: AnswerIn, op: Write) -> JSONResponse:
    """Refuse an open request; ``answer`` (the reason, shown to the driver) is required
    (422 ``answer-required``)."""
    return op(lambda c: privacy.refuse(c, request_id, body), body=body)


@router.post("/users/{user_id}/provisions", status_code=201, response_model=ProvisionOut)
def record_provision(user_id: UserIdP, body: ProvisionIn, op: Write) -> JSONResponse:
    """Record a provision of the user's data to a third party (recipient, day, fields);
    disclosed to the driver with a disclosure request. Kept (pseudonymised) after erasure."""
    return op(lambda c: privacy.record_provision(c, user_id, body), status=201, body=body)


@router.get("/users/{user_id}/provisions", response_model=ProvisionList)
def list_provisions(user_id: UserIdP, op: Read) -> JSONResponse:
    """The user's provision records, newest first."""
    return op(lambda c: privacy.provisions(c, user_id))


@router.get("/users/{user_id}/disclosure", response_model=Disclosure)
def read_disclosure(user_id: UserIdP, op: Read) -> JSONResponse:
    """Everything held about a user ID, as the driver sees it after a disclosure request:
    the export, My Page data (passkeys' dates, linked IDs, contact, terms accepted), their
    requests, the provisions register and the audit entries naming them (for an answer by
    post or mail, privacy policy §8)."""
    return op(lambda c: privacy.disclosure(c, user_id))
