"""Notices: the operator publishes (``/v1/notices``, also the console's "Notices" page), the
driver reads them on My Page (``/my/notices``, ``/my/terms``, the banners on ``/my``).

See :mod:`kagiya.server.web.notices` for the kinds and the terms' rules (第7条, 第18条).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from kagiya.server.deps import Read, Write
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.web import notices, routes_mypage
from kagiya.server.web.render import page
from sqlalchemy.orm import Session

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/v1", tags=["my-page"], responses=documented(*OPERATOR_ERRORS))
NoticeIdP = Annotated[str, Path(pattern=r"^nt_[0-9a-f]{1,40}$")]


# -- the operator API -------------------------------------------------------------------------

@api.post("/notices", status_code=201, response_model=notices.NoticeOut)
def publish(body: notices.NoticeIn, op: Write) -> JSONResponse:
    """Publish a notice to every driver (or one user ID), a maintenance window (第7条: shown
    as a banner until it ends) or a terms version with its effective date (第18条: in force
    from that date; never in the past, 422 ``terms-retroactive``; a version once, 409
    ``terms-version-exists``)."""
    return op(lambda c: notices.publish(c, body), status=201, body=body)


@api.get("/notices", response_model=notices.NoticeList)
def list_notices(op: Read, kind: Annotated[
        str | None, Query(pattern="^(notice|maintenance|terms)$")] = None) -> JSONResponse:
    """The operator's notices, newest first (at most 100)."""
    return op(lambda c: notices.listing(c, kind))


@api.post("/notices/{notice_id}/withdraw", response_model=notices.NoticeOut)
def withdraw(notice_id: NoticeIdP, op: Write) -> JSONResponse:
    """Withdraw a notice: drivers no longer see it. Terms in force are replaced by a new
    version instead (409 ``terms-in-force``)."""
    return op(lambda c: notices.withdraw(c, notice_id))


# -- the driver's pages -----------------------------------------------------------------------

@router.get("/my/notices")
def inbox_page(request: Request) -> Response:
    """The driver's notices, unread first marked."""
    return routes_mypage.driver_page(request, lambda s, user_pk, now: page(
        request, "my_notices.html", box=notices.inbox(s, user_pk, now), now=now))


@router.get("/my/notices/{notice_id}")
def notice_page(request: Request, notice_id: str) -> Response:
    """One notice (it is marked read)."""
    def render(s: Session, user_pk: int, now: int) -> Response:
        n = notices.open_notice(s, user_pk, notice_id, now)
        return page(request, "my_notice.html", status=200 if n else 404, n=n, now=now)
    return routes_mypage.driver_page(request, render)


@router.get("/my/terms")
def terms_page(request: Request) -> Response:
    """The terms in force (version, effective date), announced changes, and the version the
    driver agreed to."""
    return routes_mypage.driver_page(request, lambda s, user_pk, now: page(
        request, "my_terms.html", box=notices.inbox(s, user_pk, now), now=now))
