"""My Page, the driver's own account: more passkeys, unlinking an ID provider, contact
details and withdrawal at the end of the contract.

A driver always keeps a way to sign in: the last sign-in method (the last passkey when no ID
is linked, or the only linked ID when there is no passkey) cannot be removed, because losing
every way in is withdrawal (contract portal 第12条1項) and must be asked for as such.

CSRF as on the rest of My Page: ``SameSite=Strict`` session cookie and our ``Origin`` on
every state-changing request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from kagiya.sdk.i18n import N_
from kagiya.server import audit
from kagiya.server.db import transaction
from kagiya.server.deps import Read, UserIdP, Write
from kagiya.server.models import User
from kagiya.server.problems import OPERATOR_ERRORS, ApiError, documented
from kagiya.server.web import account, ceremony, identities, routes_mypage, store
from kagiya.server.web.render import page
from sqlalchemy import func, select
from sqlalchemy.orm import Session

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/v1", tags=["my-page"], responses=documented(*OPERATOR_ERRORS))
ADD_PASSKEY = "passkey-add"
SIGNED_OUT = "signed-out"
LAST_METHOD = "last-sign-in-method"

SIGNED_OUT_TEXT = N_("You are not signed in any more. Sign in again.")
LAST_METHOD_TEXT = N_("This is your last way to sign in. Add a passkey first: without a "
                      "passkey or a linked ID you could not sign in any more, which would "
                      "end your My Page account.")
UNLINKED_TEXT = N_("Your ID is unlinked. It no longer signs you in; your passkeys still do.")
NOT_LINKED_TEXT = N_("No ID of this provider is linked to your account.")
PASSKEY_ADDED = N_("The passkey was added.")
BAD_EMAIL = N_("This e-mail address is not valid. Check it and try again.")
BAD_PHONE = N_("This phone number is not valid. Use digits, spaces, hyphens and a leading +.")
CONTRACT_RUNNING = N_("Your contract still runs: My Page ends with it by itself. To end it "
                      "earlier, contact your operator.")
SENTENCES = {**routes_mypage.SENTENCES, SIGNED_OUT: SIGNED_OUT_TEXT}


def result(request: Request, status: int, code: str, message: str, ok: bool = False) -> Response:
    """A page that says what happened (a refusal carries its stable code)."""
    return page(request, "my_result.html", status=status, code=code, message=message, ok=ok)


def posted(request: Request) -> int | Response:
    """The signed-in driver of a form post from our own pages, or the answer to give."""
    if not ceremony.same_origin(request, ceremony.relying_party(request)):
        return result(request, 403, ceremony.WRONG_ORIGIN, routes_mypage.WRONG_ORIGIN)
    user_pk = routes_mypage._signed_in(request)
    if user_pk is None:
        return RedirectResponse("/my/sign-in", status_code=303)
    return user_pk


def record(s: Session, user_pk: int, now: int, action: str, **detail: object) -> None:
    """Audit a driver's own action (actor ``user:<id>``)."""
    user = s.get(User, user_pk)
    who = user.user_id if user is not None else str(user_pk)
    audit.record(s, now, f"user:{who}", action,
                 operator_id=user.operator_id if user is not None else None, target=who,
                 detail=dict(detail) or None)


def passkey_count(s: Session, user_pk: int) -> int:
    """How many passkeys the driver has."""
    return int(s.scalar(select(func.count()).select_from(store.Passkey)
                        .where(store.Passkey.user_pk == user_pk)) or 0)


# -- another passkey, for a driver who is signed in ------------------------------------------

@router.post("/my/passkeys/add/options")
def add_passkey_options(request: Request) -> Response:
    """``PublicKeyCredentialCreationOptions`` for one more passkey of the signed-in driver."""
    rt = ceremony.runtime_of(request)
    try:
        rp = ceremony.checked_rp(request)
        user_pk = routes_mypage._signed_in(request)
        if user_pk is None:
            raise ceremony.Refused(401, SIGNED_OUT)
        with transaction(rt.sessions) as s:
            user = s.get(User, user_pk)
            assert user is not None
            existing = [p.credential_id for p in store.passkeys_of(s, user_pk)]
            opts = ceremony.creation_options(s, rp, ADD_PASSKEY, rt.now(), user.user_id,
                                             existing, user_pk=user_pk)
    except ceremony.Refused as exc:
        return ceremony.refusal(request, exc, SENTENCES)
    return JSONResponse({"ok": True, "options": opts})


@router.post("/my/passkeys/add")
def add_passkey(request: Request, body: ceremony.SignInBody) -> Response:
    """Save one more passkey of the signed-in driver (bound to their challenge)."""
    rt = ceremony.runtime_of(request)
    now = rt.now()
    try:
        rp = ceremony.checked_rp(request)
        user_pk = routes_mypage._signed_in(request)
        if user_pk is None:
            raise ceremony.Refused(401, SIGNED_OUT)
    except ceremony.Refused as exc:
        return ceremony.refusal(request, exc, SENTENCES)
    with transaction(rt.sessions) as s:  # a refusal commits too: the challenge is spent
        try:
            cid, public_key, count = ceremony.verify_new_passkey(
                s, rp, body.credential, ADD_PASSKEY, now,
                bound=lambda ch: ch.user_pk == user_pk,
                taken=lambda cid: s.get(store.Passkey, cid) is not None)
        except ceremony.Refused as exc:
            return ceremony.refusal(request, exc, SENTENCES)
        s.add(store.Passkey(credential_id=cid, user_pk=user_pk, public_key=public_key,
                            sign_count=count, created_at=now, last_used_at=now))
        record(s, user_pk, now, "mypage.passkey-add")
    return JSONResponse({"ok": True, "redirect": "/my?added=passkey"})


# -- unlinking an ID provider ----------------------------------------------------------------

@router.post("/my/oidc/unlink")
def unlink(request: Request, issuer: Annotated[str, Form(max_length=255)]) -> Response:
    """Unlink the driver's ID at ``issuer``, unless it is their last way to sign in."""
    rt = ceremony.runtime_of(request)
    who = posted(request)
    if isinstance(who, Response):
        return who
    now = rt.now()
    with transaction(rt.sessions) as s:
        linked = identities.issuers_of(s, who)
        if issuer not in linked:
            return result(request, 404, "oidc-not-linked", NOT_LINKED_TEXT)
        if passkey_count(s, who) == 0 and len(linked) == 1:
            record(s, who, now, "mypage.oidc-unlink-refused", issuer=issuer)
            return result(request, 409, LAST_METHOD, LAST_METHOD_TEXT)
        identities.unlink(s, who, issuer)
        record(s, who, now, "mypage.oidc-unlink", issuer=issuer)
    return result(request, 200, "oidc-unlinked", UNLINKED_TEXT, ok=True)


# -- contact details (第9条5項) ----------------------------------------------------------------

@router.post("/my/contact")
def change_contact(request: Request, email: Annotated[str, Form(max_length=254)] = "",
                   phone: Annotated[str, Form(max_length=32)] = "") -> Response:
    """Save the driver's contact details (the part of the profile they change themselves)."""
    rt = ceremony.runtime_of(request)
    who = posted(request)
    if isinstance(who, Response):
        return who
    try:
        with transaction(rt.sessions) as s:
            account.set_contact(s, who, email, phone, rt.now())
    except ApiError as exc:
        text = BAD_EMAIL if exc.extra.get("field") == "email" else BAD_PHONE
        return result(request, exc.status, exc.code, text)
    return RedirectResponse("/my?saved=contact#contact", status_code=303)


# -- withdrawal at the end of the contract (第12条) --------------------------------------------

@router.post("/my/withdrawal")
def withdraw(request: Request) -> Response:
    """End the driver's My Page account (only once no lease runs: 409 ``contract-running``)."""
    rt = ceremony.runtime_of(request)
    who = posted(request)
    if isinstance(who, Response):
        return who
    now = rt.now()
    try:
        with transaction(rt.sessions) as s:
            user = s.get(User, who)
            assert user is not None
            done = account.withdraw(s, user, now, f"user:{user.user_id}")
    except ApiError as exc:
        return result(request, exc.status, exc.code, CONTRACT_RUNNING)
    resp = page(request, "my_withdrawn.html", done=done)
    resp.delete_cookie(routes_mypage.SESSION_COOKIE, path="/my")
    return resp


# -- the operator's side ---------------------------------------------------------------------

@api.get("/users/{user_id}/contact", response_model=account.ContactOut)
def read_contact(user_id: UserIdP, op: Read) -> JSONResponse:
    """The contact details the driver keeps up to date on My Page (empty when none)."""
    return op(lambda c: account.contact(c, user_id))


@api.post("/users/{user_id}/withdrawal", response_model=account.WithdrawalOut)
def withdraw_user(user_id: UserIdP, op: Write) -> JSONResponse:
    """End the user's My Page account at the end of their contract (第12条1項): keys
    revoked, tokens, phones, enrollment codes, passkeys, sessions, linked IDs and contact
    deleted, the user ID suspended; key requests and usage logs are kept. Refused with 409
    ``contract-running`` while a lease runs (cancel it first)."""
    return op(lambda c: account.withdraw_by_operator(c, user_id))
