"""My Page's OpenID Connect sign-in (``/my/oidc/...``), next to passkeys.

A signed-in driver links their account at the operator's OpenID provider once (``link``);
afterwards that identity signs them in (``sign-in``). An identity nobody linked signs nobody
in, and an identity linked to one user cannot be linked to another (one person, one account).

The flow cookie is ``SameSite=Lax`` (the provider's redirect back is a cross-site top-level
navigation) and only lives for the flow; the session cookie stays ``Strict``, so a successful
sign-in answers with a page that continues to ``/my`` from this site.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from kagiya.sdk.i18n import N_
from kagiya.server import audit
from kagiya.server.db import transaction
from kagiya.server.models import User
from kagiya.server.web import ceremony, identities, notices, oidc, routes_mypage, store
from kagiya.server.web.render import page
from sqlalchemy import delete
from sqlalchemy.orm import Session

log = logging.getLogger("kagiya.server.web")
router = APIRouter(include_in_schema=False)
FLOW_COOKIE, FLOW_PATH = "kagiya_oidc", "/my/oidc"
LINK, SIGN_IN, INVITE = "oidc-link", "oidc-sign-in", "oidc-invite"
PURPOSES = {"link": LINK, "sign-in": SIGN_IN, "invite": INVITE}

NOT_CONFIGURED = N_("Sign-in with an ID provider is not set up on this server.")
FLOW_INVALID = N_("This sign-in attempt is not valid any more. Start again from My Page.")
NOT_VERIFIED = N_("The ID provider's answer could not be verified. Try again.")
NOT_LINKED = N_("No My Page account is linked to this ID. Sign in with your passkey once and "
                "link the ID on My Page.")
LINKED_ELSEWHERE = N_("This ID is linked to another My Page account, or your account is "
                      "linked to another ID at this provider. One person, one account.")
LINKED = N_("Your ID is linked. From now on you can sign in with it.")


def _refused(request: Request, status: int, code: str, message: str) -> Response:
    return page(request, "oidc.html", status=status, code=code, message=message, ok=False)


def _redirect_uri(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}{FLOW_PATH}/callback"


@router.get("/my/oidc/start")
def start(request: Request, purpose: Annotated[str, Query(pattern="^(link|sign-in|invite)$")],
          invite: Annotated[str, Query(max_length=100)] = "") -> Response:
    """Send the browser to the provider (``link`` needs a signed-in driver, ``invite`` an
    operator's unspent invitation: the ID then completes the registration instead of a
    passkey)."""
    op = oidc.provider()
    if op is None:
        return _refused(request, 404, "oidc-not-configured", NOT_CONFIGURED)
    user_pk = None
    if purpose == "link":
        user_pk = routes_mypage._signed_in(request)
        if user_pk is None:
            return RedirectResponse("/my/sign-in", status_code=303)
    rt = ceremony.runtime_of(request)
    if purpose == "invite":
        with transaction(rt.sessions) as s:
            user_pk = store.invitation_user(s, invite, rt.now())
        if user_pk is None:
            return _refused(request, 410, "invitation-invalid", routes_mypage.BAD_INVITE)
    flow = oidc.Flow.new()
    try:
        target = op.authorization_url(flow, _redirect_uri(request))
    except oidc.OidcError as exc:
        log.warning("my page oidc: %s", exc)
        return _refused(request, 502, "oidc-provider-unreachable", NOT_VERIFIED)
    with transaction(rt.sessions) as s:  # one use, keyed by the flow (not by a value of its own)
        s.add(store.Challenge(challenge=flow.handle, purpose=PURPOSES[purpose], user_pk=user_pk,
                              expires_at=rt.now() + store.CHALLENGE_TTL_S))
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(FLOW_COOKIE, flow.secret, max_age=store.CHALLENGE_TTL_S, httponly=True,
                    samesite="lax", secure=request.url.scheme == "https", path=FLOW_PATH)
    return resp


@router.get("/my/oidc/callback")
def callback(request: Request, state: str = "", code: str = "") -> Response:
    """The provider's answer: link the identity, or sign its driver in."""
    op = oidc.provider()
    if op is None:
        return _refused(request, 404, "oidc-not-configured", NOT_CONFIGURED)
    secret = request.cookies.get(FLOW_COOKIE, "")
    flow = oidc.Flow(secret)
    if not secret or len(secret) > 100 or not state or len(state) > 100 or not flow.matches(state):
        return _refused(request, 400, "oidc-flow-invalid", FLOW_INVALID)
    rt = ceremony.runtime_of(request)
    now = rt.now()
    with transaction(rt.sessions) as s:
        row = s.get(store.Challenge, flow.handle)
        purpose = row.purpose if row is not None else ""
        taken = store.take_challenge(s, flow.handle, purpose, now)
        if taken is None or purpose not in PURPOSES.values():
            return _refused(request, 400, "oidc-flow-invalid", FLOW_INVALID)
        user_pk = taken.user_pk
    if not code or len(code) > 2000:
        return _refused(request, 400, "oidc-not-verified", NOT_VERIFIED)
    try:
        subject = op.subject(flow, code, _redirect_uri(request))
    except oidc.OidcError as exc:
        log.info("my page oidc: %s", exc)
        return _refused(request, 400, "oidc-not-verified", NOT_VERIFIED)
    with transaction(rt.sessions) as s:
        if purpose == LINK and user_pk is not None:
            return _link(request, s, user_pk, op.issuer, subject, now)
        if purpose == INVITE and user_pk is not None:  # registration by the ID (第4条)
            refused = _link(request, s, user_pk, op.issuer, subject, now)
            if refused.status_code != 200:
                return refused
            s.execute(delete(store.Invitation).where(store.Invitation.user_pk == user_pk))
            invited = s.get(User, user_pk)
            if invited is not None:  # registering, the driver agrees to the terms (第4条1項)
                notices.accept_terms(s, user_pk, invited.operator_id, now)
        owner = identities.user_of(s, op.issuer, subject)
        if owner is None:
            return _refused(request, 403, "oidc-not-linked", NOT_LINKED)
        token = store.new_session(s, owner, now)
        _audit(s, owner, now, "mypage.oidc-sign-in", op.issuer)
    resp = page(request, "oidc.html", ok=True, signed_in=True, message="")
    resp.set_cookie(routes_mypage.SESSION_COOKIE, token, max_age=store.SESSION_TTL_S,
                    httponly=True, samesite="strict", secure=request.url.scheme == "https",
                    path="/my")
    resp.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return resp


def _link(request: Request, s: Session, user_pk: int, issuer: str, subject: str,
          now: int) -> Response:
    try:
        if identities.link(s, user_pk, issuer, subject, now):
            _audit(s, user_pk, now, "mypage.oidc-link", issuer)
    except identities.AlreadyLinked:
        _audit(s, user_pk, now, "mypage.oidc-link-refused", issuer)
        return _refused(request, 409, "oidc-linked-elsewhere", LINKED_ELSEWHERE)
    resp = page(request, "oidc.html", ok=True, signed_in=False, message=LINKED)
    resp.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return resp


def _audit(s: Session, user_pk: int, now: int, action: str, issuer: str) -> None:
    user = s.get(User, user_pk)
    who = user.user_id if user is not None else str(user_pk)
    audit.record(s, now, f"user:{who}", action,
                 operator_id=user.operator_id if user is not None else None, target=who,
                 detail={"issuer": issuer})
