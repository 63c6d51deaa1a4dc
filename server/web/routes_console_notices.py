"""The console's My Page pages: "Notices" (below) and one driver's My Page account
(``/console/users/{user_id}/my-page``: sign-in methods, terms agreed, contact, an invitation
with a QR code, withdrawal at contract end).

"Notices": the operator publishes notices, maintenance windows (第7条)
and terms versions with their effective date (第18条) to its drivers' My Page, and withdraws
them. Every change runs the API's service (:mod:`kagiya.server.web.notices`) as the signed-in
member and is audited; a refusal is the API's problem document. Times are entered and shown
in the user's zone (JST by default).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from kagiya.sdk.i18n import user_zone
from kagiya.server.problems import ApiError
from kagiya.server.services.lease import day_start
from kagiya.server.web import access, account, ceremony, console_mypage, mypage, notices, qr
from kagiya.server.web.access import Member
from kagiya.server.web.routes_console import (
    _act,
    _back,
    _body,
    _day,
    _guarded,
    _read,
    _show,
)
from sqlalchemy.orm import Session

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]


def _moment(value: str, what: str) -> int | None:
    """Unix time of a ``datetime-local`` value (``2026-12-05T09:00``) in the user's zone."""
    if not value:
        return None
    try:
        return int(datetime.fromisoformat(value).replace(tzinfo=user_zone()).timestamp())
    except ValueError:
        raise ApiError(422, "invalid-date", f"{what} must be a date and time") from None


@router.get("/console/notices")
def notices_page(request: Request) -> Response:
    """The operator's notices and the form to publish one."""
    def view(m: Member) -> Response:
        rows = _act(request, m, lambda c: notices.listing(c)).items
        rp = ceremony.relying_party(request)
        base = rp.origin if rp is not None else f"{request.url.scheme}://{request.url.netloc}"
        return _show(request, m, "console_notices.html", rows=rows,
                     my_page_url=f"{base}/my/sign-in?operator={m.operator.id}")
    return _guarded(request, "notices.read", view)


@router.post("/console/notices")
def publish(request: Request, kind: Field, title_ja: Field, body_ja: Field,
            title_en: Field = "", body_en: Field = "", user_id: Field = "",
            shown_from: Field = "", start: Field = "", end: Field = "", effective: Field = "",
            version: Field = "") -> Response:
    """Publish (maintenance: a start and an end; terms: a version and its effective day)."""
    def view(m: Member) -> Response:
        if kind == notices.TERMS:
            starts = day_start(_day(effective, "the effective day")) if effective else None
        else:
            starts = _moment(start if kind == notices.MAINTENANCE else shown_from, "the start")
        body = _body(notices.NoticeIn, kind=kind, title={"ja": title_ja, "en": title_en},
                     body={"ja": body_ja, "en": body_en}, user_id=user_id or None,
                     starts_at=starts, version=version or None,
                     ends_at=_moment(end, "the end") if kind == notices.MAINTENANCE else None)
        _act(request, m, lambda c: notices.publish(c, body))
        return _back("/console/notices")
    return _guarded(request, "notices.write", view, write=True)


@router.post("/console/notices/{notice_id}/withdraw")
def withdraw(request: Request, notice_id: str) -> Response:
    """Withdraw a notice (terms in force stay: 409 ``terms-in-force``)."""
    def view(m: Member) -> Response:
        _act(request, m, lambda c: notices.withdraw(c, notice_id[:40]))
        return _back("/console/notices")
    return _guarded(request, "notices.write", view, write=True)


# -- one driver's My Page account --------------------------------------------------------------

@router.get("/console/users/{user_id}/my-page")
def account_page(request: Request, user_id: str) -> Response:
    """A driver's My Page account: how they sign in, terms agreed, contact, contract."""
    def view(m: Member) -> Response:
        def load(s: Session, now: int) -> console_mypage.Account:
            access.check_user(s, m, user_id[:64])
            return console_mypage.load(s, m, user_id[:64], now)
        return _show(request, m, "console_mypage.html", a=_read(request, load))
    return _guarded(request, "users.read", view)


@router.post("/console/users/{user_id}/my-page/invitation")
def invitation(request: Request, user_id: str) -> Response:
    """A one-time My Page invitation for the driver, with a QR code of its link."""
    def view(m: Member) -> Response:
        rp = ceremony.relying_party(request)
        base = rp.origin if rp is not None else f"{request.url.scheme}://{request.url.netloc}"
        out = _act(request, m, lambda c: mypage.create_invitation(c, user_id, base),
                   lambda s: access.check_user(s, m, user_id))
        return _show(request, m, "console_mypage_invitation.html", inv=out,
                     qr=qr.svg_data_uri(out.url))
    return _guarded(request, "enrollment.create", view, write=True)


@router.post("/console/users/{user_id}/my-page/withdrawal")
def withdrawal(request: Request, user_id: str) -> Response:
    """End the driver's My Page account at contract end (409 ``contract-running``)."""
    def view(m: Member) -> Response:
        _act(request, m, lambda c: account.withdraw_by_operator(c, user_id),
             lambda s: access.check_user(s, m, user_id))
        return _back(f"/console/users/{user_id}/my-page")
    return _guarded(request, "users.write", view, write=True)
