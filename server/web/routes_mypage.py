"""My Page (``/my``): a driver signs in with a passkey and sees their vehicles, keys, usage
history and phones, and can report a lost phone. Server-rendered (Jinja2); the passkey
ceremonies need the browser's WebAuthn API, so they are the page's only JavaScript.

Also the operator's ``POST /v1/users/{user_id}/my-page-invitations``: a one-time link with
which the user registers their first passkey (the account is bound to the operator's user ID
at that moment: one person, one account).

CSRF: the session cookie is ``SameSite=Strict`` and ``HttpOnly``, and every state-changing
request must carry an ``Origin`` equal to the relying party's origin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from kagiya.sdk.i18n import N_
from kagiya.server import audit
from kagiya.server.db import transaction
from kagiya.server.deps import UserIdP, Write
from kagiya.server.models import Operator, User
from kagiya.server.problems import OPERATOR_ERRORS, documented
from kagiya.server.schemas import MyPageInvitationOut
from kagiya.server.web import ceremony, identities, mypage, notices, oidc, store
from kagiya.server.web.render import event_word, page, perm_words
from sqlalchemy.orm import Session

log = logging.getLogger("kagiya.server.web")
router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/v1", tags=["my-page"], responses=documented(*OPERATOR_ERRORS))
SESSION_COOKIE = "kagiya_my"
# which operator's My Page this browser uses (not a secret: it only picks the maintenance
# banner of the pages before sign-in); from ?operator=, an invitation, or a signed-in visit
OPERATOR_COOKIE = "kagiya_my_operator"

NO_PASSKEYS = N_("Passkeys are not available at this address. Open My Page at the address "
                 "your operator gave you.")
BAD_INVITE = N_("This invitation link is not valid any more. Ask your operator for a new one.")
NOT_VERIFIED = N_("The passkey could not be verified. Try again.")
UNKNOWN_PASSKEY = N_("This passkey is not registered for My Page.")
WRONG_ORIGIN = N_("This request did not come from My Page.")
STATUS_WORDS = {"active": N_("active"), "cancelled": N_("cancelled"), "ended": N_("ended"),
                "suspended": N_("suspended")}


SENTENCES = {ceremony.NO_RP: NO_PASSKEYS, ceremony.WRONG_ORIGIN: WRONG_ORIGIN,
             ceremony.INVITATION_INVALID: BAD_INVITE, ceremony.NOT_VERIFIED: NOT_VERIFIED,
             ceremony.REGISTERED: NOT_VERIFIED, ceremony.UNKNOWN: UNKNOWN_PASSKEY}


def _refuse(request: Request, exc: ceremony.Refused) -> JSONResponse:
    return ceremony.refusal(request, exc, SENTENCES)


def _signed_in(request: Request) -> int | None:
    rt = ceremony.runtime_of(request)
    with transaction(rt.sessions) as s:
        return store.session_user(s, request.cookies.get(SESSION_COOKIE), rt.now())


def driver_page(request: Request, render: Callable[[Session, int, int], Response]) -> Response:
    """``render(session, user_pk, now)`` for the signed-in driver, in the same transaction as
    the session lookup; the sign-in page for anyone else."""
    rt = ceremony.runtime_of(request)
    now = rt.now()
    with transaction(rt.sessions) as s:
        user_pk = store.session_user(s, request.cookies.get(SESSION_COOKIE), now)
        if user_pk is None:
            return RedirectResponse("/my/sign-in", status_code=303)
        return render(s, user_pk, now)


def _start_session(request: Request, s: Session, user_pk: int) -> Response:
    token = store.new_session(s, user_pk, ceremony.runtime_of(request).now())
    return ceremony.signed_in(request, SESSION_COOKIE, token, "/my", {"redirect": "/my"})


# -- pages ------------------------------------------------------------------------------------

@router.get("/my")
def my_page(request: Request) -> Response:
    """The driver's page, or the sign-in page."""
    rt = ceremony.runtime_of(request)
    user_pk = _signed_in(request)
    if user_pk is None:
        return RedirectResponse("/my/sign-in", status_code=303)
    with transaction(rt.sessions) as s:
        view = mypage.load(s, user_pk, rt.now())
    if view is None:
        return RedirectResponse("/my/sign-in", status_code=303)
    with transaction(rt.sessions) as s:
        linked = identities.issuers_of(s, user_pk)
        box = notices.inbox(s, user_pk, rt.now())
    return _remember_operator(request, page(
                request, "my.html", me=view, now=rt.now(), perms=perm_words,
                oidc=oidc.provider() is not None, me_issuers=linked,
                passkeys_here=ceremony.relying_party(request) is not None, box=box,
                request_added=request.query_params.get("added") == "passkey",
                request_saved=request.query_params.get("saved") == "contact",
                event=event_word, status_word=lambda w: STATUS_WORDS.get(w, w),
                key_lifetime_days=rt.settings.key_lifetime_s // 86400), view.operator_id)


def _remember_operator(request: Request, resp: Response, operator_id: str | None) -> Response:
    if operator_id and request.cookies.get(OPERATOR_COOKIE) != operator_id:
        resp.set_cookie(OPERATOR_COOKIE, operator_id, max_age=365 * 86400, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/my")
    return resp


def _known_operator(s: Session, request: Request) -> str | None:
    """The operator of the My Page address (``?operator=``), else the one this browser used."""
    for candidate in (request.query_params.get("operator"), request.cookies.get(OPERATOR_COOKIE)):
        if candidate and len(candidate) <= 40 and s.get(Operator, candidate) is not None:
            return candidate
    return None


@router.get("/my/sign-in")
def sign_in_page(request: Request) -> Response:
    """Sign in with a passkey; the operator's maintenance banner (第7条) when the operator is
    known (the operator's My Page address ``/my/sign-in?operator=<id>``, or this browser's
    earlier visit)."""
    rt = ceremony.runtime_of(request)
    with transaction(rt.sessions) as s:
        operator_id = _known_operator(s, request)
        banners = notices.public_maintenance(s, operator_id, rt.now())
        resp = page(request, "sign_in.html",
                    available=ceremony.relying_party(request) is not None,
                    oidc=oidc.provider() is not None, maintenance=banners, now=rt.now())
    return _remember_operator(request, resp, operator_id)


@router.get("/my/welcome")
def welcome_page(request: Request, invite: str = "") -> Response:
    """Create the first passkey from an operator's invitation link."""
    rt = ceremony.runtime_of(request)
    with transaction(rt.sessions) as s:
        user_pk = store.invitation_user(s, invite, rt.now()) if len(invite) <= 100 else None
        user = s.get(User, user_pk) if user_pk is not None else None
        terms = notices.terms_in_force(s, user.operator_id, rt.now()) if user else None
        banners = notices.public_maintenance(s, user.operator_id if user else None, rt.now())
        resp = page(request, "welcome.html", status=200 if user else 410,
                    invite=invite if user else "", terms=terms,
                    available=ceremony.relying_party(request) is not None,
                    oidc=oidc.provider() is not None, maintenance=banners, now=rt.now())
        return _remember_operator(request, resp, user.operator_id if user else None)


# -- passkey ceremonies (JSON, called by the pages' script) -----------------------------------

@router.post("/my/passkeys/options")
def sign_up_options(request: Request, body: ceremony.InviteBody) -> Response:
    """``PublicKeyCredentialCreationOptions`` for the invited user."""
    rt = ceremony.runtime_of(request)
    try:
        rp = ceremony.checked_rp(request)
        with transaction(rt.sessions) as s:
            user_pk = store.invitation_user(s, body.invite, rt.now())
            user = s.get(User, user_pk) if user_pk is not None else None
            if user is None:
                raise ceremony.Refused(410, ceremony.INVITATION_INVALID)
            existing = [p.credential_id for p in store.passkeys_of(s, user.pk)]
            opts = ceremony.creation_options(s, rp, store.SIGN_UP, rt.now(), user.user_id,
                                             existing, user_pk=user.pk)
    except ceremony.Refused as exc:
        return _refuse(request, exc)
    return JSONResponse({"ok": True, "options": opts})


@router.post("/my/passkeys")
def sign_up(request: Request, body: ceremony.SignUpBody) -> Response:
    """Save the new passkey, spend the invitation, sign in."""
    rt = ceremony.runtime_of(request)
    now = rt.now()
    try:
        rp = ceremony.checked_rp(request)
    except ceremony.Refused as exc:
        return _refuse(request, exc)
    with transaction(rt.sessions) as s:  # a refusal commits too: the challenge is spent
        user_pk = store.invitation_user(s, body.invite, now)
        try:
            cid, public_key, count = ceremony.verify_new_passkey(
                s, rp, body.credential, store.SIGN_UP, now,
                bound=lambda ch: user_pk is not None and ch.user_pk == user_pk,
                taken=lambda cid: s.get(store.Passkey, cid) is not None)
        except ceremony.Refused as exc:
            return _refuse(request, exc)
        assert user_pk is not None
        s.add(store.Passkey(credential_id=cid, user_pk=user_pk, public_key=public_key,
                            sign_count=count, created_at=now, last_used_at=now))
        store.use_invitation(s, body.invite)
        user = s.get(User, user_pk)
        assert user is not None
        agreed = notices.accept_terms(s, user_pk, user.operator_id, now)  # 第4条1項
        audit.record(s, now, f"user:{user.user_id}", "mypage.passkey-add",
                     operator_id=user.operator_id, target=user.user_id,
                     detail={"terms": agreed} if agreed else None)
        return _start_session(request, s, user_pk)


@router.post("/my/sign-in/options")
def sign_in_options(request: Request) -> Response:
    """``PublicKeyCredentialRequestOptions`` (discoverable passkeys)."""
    rt = ceremony.runtime_of(request)
    try:
        rp = ceremony.checked_rp(request)
    except ceremony.Refused as exc:
        return _refuse(request, exc)
    with transaction(rt.sessions) as s:
        opts = ceremony.request_options(s, rp, store.SIGN_IN, rt.now())
    return JSONResponse({"ok": True, "options": opts})


@router.post("/my/sign-in")
def sign_in(request: Request, body: ceremony.SignInBody) -> Response:
    """Verify the assertion against the stored passkey and sign in."""
    rt = ceremony.runtime_of(request)
    try:
        rp = ceremony.checked_rp(request)
    except ceremony.Refused as exc:
        return _refuse(request, exc)
    with transaction(rt.sessions) as s:  # a refusal commits too: the challenge is spent
        try:
            key = ceremony.verify_sign_in(s, rp, body.credential, store.SIGN_IN, rt.now(),
                                          lambda cid: s.get(store.Passkey, cid))
        except ceremony.Refused as exc:
            return _refuse(request, exc)
        return _start_session(request, s, key.user_pk)


# -- actions (forms) --------------------------------------------------------------------------

@router.post("/my/phones/{phone_id}/lost")
def phone_lost(request: Request,
               phone_id: Annotated[str, Path(pattern=r"^ph_[0-9a-f]{1,40}$")]) -> Response:
    """"I lost my phone": revoke its keys and tokens at once, then say what happens next."""
    rt = ceremony.runtime_of(request)
    if not ceremony.same_origin(request, ceremony.relying_party(request)):
        return _refuse(request, ceremony.Refused(403, ceremony.WRONG_ORIGIN))
    user_pk = _signed_in(request)
    if user_pk is None:
        return RedirectResponse("/my/sign-in", status_code=303)
    with transaction(rt.sessions) as s:
        done = mypage.report_lost(s, user_pk, phone_id, rt.now())
    if done is None:
        return page(request, "lost.html", status=404, done=None)
    return page(request, "lost.html", done=done)


@router.post("/my/sign-out")
def sign_out(request: Request) -> Response:
    """End this browser's session."""
    rt = ceremony.runtime_of(request)
    if not ceremony.same_origin(request, ceremony.relying_party(request)):
        return _refuse(request, ceremony.Refused(403, ceremony.WRONG_ORIGIN))
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with transaction(rt.sessions) as s:
            store.end_session(s, token)
    resp = RedirectResponse("/my/sign-in", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/my")
    return resp


# -- the operator's invitation ----------------------------------------------------------------

@api.post("/users/{user_id}/my-page-invitations", status_code=201,
          response_model=MyPageInvitationOut)
def create_invitation(request: Request, user_id: UserIdP, op: Write) -> JSONResponse:
    """A one-time link (valid 7 days) with which the user creates their My Page passkey."""
    rp = ceremony.relying_party(request)
    base = rp.origin if rp is not None else f"{request.url.scheme}://{request.url.netloc}"
    return op(lambda c: mypage.create_invitation(c, user_id, base), status=201)
