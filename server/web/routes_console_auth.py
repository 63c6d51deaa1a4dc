"""Signing in to the operator console (``/console``): passkeys only, like My Page, with the
shared ceremony code (:mod:`kagiya.server.web.ceremony`) and the staff tables.

Also the operator API's ``POST /v1/console/staff``: the operator (its token) invites a staff
member, typically its first admin; admins invite the rest in the console.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from kagiya.sdk.i18n import N_
from kagiya.server import audit
from kagiya.server.db import transaction
from kagiya.server.deps import Write
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.web import ceremony, console_staff, store
from kagiya.server.web.render import page
from kagiya.server.web.staff_store import (
    STAFF_SIGN_IN,
    STAFF_SIGN_UP,
    StaffInvitation,
    StaffPasskey,
    StaffSession,
    owner,
    passkeys_of,
)

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/v1", tags=["console"], responses=documented(*OPERATOR_ERRORS))
COOKIE = "kagiya_console"
HOME = "/console/users"

SENTENCES = {
    ceremony.NO_RP: N_("Passkeys are not available at this address. Open the console at the "
                       "address of your key server."),
    ceremony.WRONG_ORIGIN: N_("This request did not come from the console."),
    ceremony.INVITATION_INVALID: N_("This invitation link is not valid any more. Ask an "
                                    "administrator for a new one."),
    ceremony.NOT_VERIFIED: N_("The passkey could not be verified. Try again."),
    ceremony.REGISTERED: N_("The passkey could not be verified. Try again."),
    ceremony.UNKNOWN: N_("This passkey is not registered for the console."),
}


def _refuse(request: Request, exc: ceremony.Refused) -> JSONResponse:
    return ceremony.refusal(request, exc, SENTENCES)


def _start(request: Request, s: Any, staff_pk: int) -> JSONResponse:
    token = store.issue(s, StaffSession, ceremony.runtime_of(request).now(), store.SESSION_TTL_S,
                        staff_pk=staff_pk)
    return ceremony.signed_in(request, COOKIE, token, "/console", {"redirect": HOME})


@router.get("/console")
def console_home() -> Response:
    """The console starts at its users page."""
    return RedirectResponse(HOME, status_code=303)


@router.get("/console/sign-in")
def sign_in_page(request: Request) -> Response:
    """Sign in with a passkey."""
    return page(request, "console_sign_in.html",
                available=ceremony.relying_party(request) is not None)


@router.get("/console/welcome")
def welcome_page(request: Request, invite: str = "") -> Response:
    """Create the first passkey from an invitation link."""
    rt = ceremony.runtime_of(request)
    with transaction(rt.sessions) as s:
        member = console_staff.invited(s, invite, rt.now()) if len(invite) <= 100 else None
        name = member.name if member is not None else ""
    return page(request, "console_welcome.html", status=200 if member else 410,
                invite=invite if member else "", name=name,
                available=ceremony.relying_party(request) is not None)


@router.post("/console/passkeys/options")
def sign_up_options(request: Request, body: ceremony.InviteBody) -> Response:
    """``PublicKeyCredentialCreationOptions`` for the invited staff member."""
    rt = ceremony.runtime_of(request)
    try:
        rp = ceremony.checked_rp(request)
        with transaction(rt.sessions) as s:
            member = console_staff.invited(s, body.invite, rt.now())
            if member is None:
                raise ceremony.Refused(410, ceremony.INVITATION_INVALID)
            existing = [p.credential_id for p in passkeys_of(s, member.pk)]
            opts = ceremony.creation_options(s, rp, STAFF_SIGN_UP, rt.now(),
                                             f"{member.name} ({member.operator_id})", existing,
                                             owner=owner(member.pk))
    except ceremony.Refused as exc:
        return _refuse(request, exc)
    return JSONResponse({"ok": True, "options": opts})


@router.post("/console/passkeys")
def sign_up(request: Request, body: ceremony.SignUpBody) -> Response:
    """Save the new passkey, spend the invitation, sign in."""
    rt = ceremony.runtime_of(request)
    now = rt.now()
    try:
        rp = ceremony.checked_rp(request)
    except ceremony.Refused as exc:
        return _refuse(request, exc)
    with transaction(rt.sessions) as s:  # a refusal commits too: the challenge is spent
        member = console_staff.invited(s, body.invite, now)
        try:
            cid, public_key, count = ceremony.verify_new_passkey(
                s, rp, body.credential, STAFF_SIGN_UP, now,
                bound=lambda ch: member is not None and ch.owner == owner(member.pk),
                taken=lambda cid: s.get(StaffPasskey, cid) is not None)
        except ceremony.Refused as exc:
            return _refuse(request, exc)
        assert member is not None
        s.add(StaffPasskey(credential_id=cid, staff_pk=member.pk, public_key=public_key,
                           sign_count=count, created_at=now, last_used_at=now))
        store.drop(s, StaffInvitation, body.invite)
        audit.record(s, now, f"console:{member.operator_id}:staff{member.pk}",
                     "console.passkey-add", operator_id=member.operator_id,
                     target=f"staff{member.pk}")
        return _start(request, s, member.pk)


@router.post("/console/sign-in/options")
def sign_in_options(request: Request) -> Response:
    """``PublicKeyCredentialRequestOptions`` (discoverable passkeys)."""
    rt = ceremony.runtime_of(request)
    try:
        rp = ceremony.checked_rp(request)
    except ceremony.Refused as exc:
        return _refuse(request, exc)
    with transaction(rt.sessions) as s:
        opts = ceremony.request_options(s, rp, STAFF_SIGN_IN, rt.now())
    return JSONResponse({"ok": True, "options": opts})


@router.post("/console/sign-in")
def sign_in(request: Request, body: ceremony.SignInBody) -> Response:
    """Verify the assertion against a staff passkey and sign in (an inactive member or
    operator cannot)."""
    rt = ceremony.runtime_of(request)
    try:
        rp = ceremony.checked_rp(request)
    except ceremony.Refused as exc:
        return _refuse(request, exc)
    with transaction(rt.sessions) as s:
        try:
            key = ceremony.verify_sign_in(s, rp, body.credential, STAFF_SIGN_IN, rt.now(),
                                          lambda cid: s.get(StaffPasskey, cid))
            if console_staff.member_of(s, key.staff_pk, rt.now()) is None:
                raise ceremony.Refused(403, ceremony.UNKNOWN)
        except ceremony.Refused as exc:
            return _refuse(request, exc)
        return _start(request, s, key.staff_pk)


@router.post("/console/sign-out")
def sign_out(request: Request) -> Response:
    """End this browser's console session."""
    rt = ceremony.runtime_of(request)
    if not ceremony.same_origin(request, ceremony.relying_party(request)):
        return _refuse(request, ceremony.Refused(403, ceremony.WRONG_ORIGIN))
    token = request.cookies.get(COOKIE)
    if token:
        with transaction(rt.sessions) as s:
            store.drop(s, StaffSession, token)
    resp = RedirectResponse("/console/sign-in", status_code=303)
    resp.delete_cookie(COOKIE, path="/console")
    return resp


@api.post("/console/staff", status_code=201, response_model=console_staff.StaffInvitationOut)
def invite_staff(request: Request, body: console_staff.StaffIn, op: Write) -> JSONResponse:
    """Invite a console staff member (role ``admin``, ``staff`` or ``partner`` with its
    ``partner_id``): a one-time link, valid 7 days, with which they create a passkey."""
    rp = ceremony.relying_party(request)
    base = rp.origin if rp is not None else f"{request.url.scheme}://{request.url.netloc}"
    return op(lambda c: console_staff.invite(c, body, base), status=201, body=body)
