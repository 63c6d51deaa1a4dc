"""The console's data-subject requests (``/console/privacy``) and each user's register of
third-party provisions (``/console/users/{user_id}/provisions``), for admins and staff.

Answers run the API's service functions (:mod:`kagiya.server.services.privacy`) as the
signed-in member, audited as ``console:<operator>:staff<pk>``; refusals are the API's
problem documents (:mod:`kagiya.server.web.routes_console`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response
from kagiya.server.deps import UserIdP
from kagiya.server.services import privacy
from kagiya.server.web import access
from kagiya.server.web.access import Member
from kagiya.server.web.routes_console import Field, _act, _back, _body, _guarded, _read, _show
from kagiya.server.web.routes_privacy import KIND_NAMES, STATUS_WORDS, VERIFIED_WORDS

router = APIRouter(include_in_schema=False)
RequestId = Annotated[str, Path(pattern=privacy.REQUEST_ID)]
STATUSES = ("received", "fulfilled", "refused", "withdrawn")


@router.get("/console/privacy")
def privacy_page(request: Request, status: str = "") -> Response:
    """Data-subject requests: open ones by deadline first (overdue marked)."""
    def view(m: Member) -> Response:
        rows = _read(request, lambda s, now: privacy.queue(
            s, m.operator.id, now, status if status in STATUSES else ""))
        return _show(request, m, "console_privacy.html", rows=rows, kind_names=KIND_NAMES,
                     status_words=STATUS_WORDS, verified_words=VERIFIED_WORDS,
                     statuses=STATUSES, f={"status": status})
    return _guarded(request, "privacy.read", view)


@router.post("/console/privacy/{request_id}/{action}")
def answer(request: Request, request_id: RequestId,
           action: Annotated[str, Path(pattern="^(fulfil|refuse)$")],
           answer: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """Fulfil (through the export/suspend/delete paths) or refuse a request."""
    service = privacy.fulfil if action == "fulfil" else privacy.refuse

    def view(m: Member) -> Response:
        body = _body(privacy.AnswerIn, answer=answer)
        _act(request, m, lambda c: service(c, request_id, body))
        return _back("/console/privacy")
    return _guarded(request, "privacy.write", view, write=True)


@router.get("/console/users/{user_id}/provisions")
def provisions_page(request: Request, user_id: UserIdP) -> Response:
    """A user's register of third-party provisions, and the form to record one."""
    def view(m: Member) -> Response:
        out = _act(request, m, lambda c: privacy.provisions(c, user_id),
                   lambda s: access.check_user(s, m, user_id))
        return _show(request, m, "console_provisions.html", user_id=user_id, rows=out.items)
    return _guarded(request, "privacy.read", view)


@router.post("/console/users/{user_id}/provisions")
def record_provision(request: Request, user_id: UserIdP, recipient: Field = "",
                     fields: Field = "", provided_on: Field = "",
                     purpose: Field = "") -> Response:
    """Record a provision (fields separated by commas)."""
    def view(m: Member) -> Response:
        names = [f.strip() for f in fields.replace("、", ",").split(",") if f.strip()]
        body = _body(privacy.ProvisionIn, recipient=recipient, fields=names,
                     provided_on=provided_on, purpose=purpose)
        _act(request, m, lambda c: privacy.record_provision(c, user_id, body),
             lambda s: access.check_user(s, m, user_id))
        return _back(f"/console/users/{user_id}/provisions")
    return _guarded(request, "privacy.write", view, write=True)
