"""My Page's data-subject requests (privacy policy §8): ``/my/privacy``.

A signed-in driver asks for disclosure, correction, stop-use or erasure. The request is
verified again at filing: a passkey assertion over a fresh challenge bound to this user
(``verified_by = passkey``), or, without one, a session that began at most
:data:`REAUTH_S` seconds ago (``fresh-sign-in``: a driver who signs in with their ID
provider signs in again). The operator answers in the console or the API
(:mod:`kagiya.server.services.privacy`); a fulfilled disclosure opens here as a readable
page and as JSON.

CSRF as the rest of My Page: ``SameSite=Strict`` session, and every post carries our Origin.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from kagiya.sdk.i18n import N_
from kagiya.server.db import transaction
from kagiya.server.models import User
from kagiya.server.problems import ApiError
from kagiya.server.services import privacy
from kagiya.server.web import ceremony, passkeys, store
from kagiya.server.web.render import event_word, page, perm_words
from kagiya.server.web.routes_mypage import SENTENCES, SESSION_COOKIE
from sqlalchemy.orm import Session

router = APIRouter(include_in_schema=False)
REAUTH = "my-reauth"
REAUTH_S = 300
RequestId = Annotated[str, Path(pattern=privacy.REQUEST_ID)]

KIND_WORDS = {"disclosure": N_("Show me everything you hold about me (disclosure)"),
              "correction": N_("Correct something that is wrong (correction)"),
              "stop-use": N_("Stop using my data (my ID is suspended, my keys stop)"),
              "erasure": N_("Erase my data (my ID and everything about it is deleted)")}
KIND_NAMES = privacy.KIND_NAMES
VERIFIED_WORDS = {"passkey": N_("with a passkey"), "fresh-sign-in": N_("by signing in again")}
STATUS_WORDS = {"received": N_("received"), "fulfilled": N_("done"),
                "refused": N_("refused"), "withdrawn": N_("withdrawn")}
PROBLEMS = {
    "reauth-required": N_("Confirm it is you: use your passkey, or sign in again and send "
                          "the request within 5 minutes."),
    "passkey-other-account": N_("This passkey belongs to another account."),
    "privacy-request-open": N_("You already have an open request of this kind."),
    "privacy-request-closed": N_("This request has already been answered."),
    "detail-required": N_("Say what should be corrected."),
    "invalid-kind": N_("Choose what you are asking for."),
    "not-found": N_("No such request."),
    "disclosure-closed": N_("This disclosure is not available (yet, or any more)."),
}


def _session(request: Request, s: Session, now: int) -> tuple[User, int] | None:
    """The signed-in user and how long ago their session began (seconds)."""
    row = store.live(s, store.WebSession, request.cookies.get(SESSION_COOKIE), now)
    user = s.get(User, row.user_pk) if row is not None else None
    if row is None or user is None:
        return None
    return user, now - (row.expires_at - store.SESSION_TTL_S)


def _page(request: Request, s: Session, user: User, now: int, *, status: int = 200,
          problem: str = "", filed: str = "") -> Response:
    return page(request, "my_privacy.html", status=status, me=user, now=now,
                rows=privacy.requests_of(s, user.pk), kinds=KIND_WORDS, kind_names=KIND_NAMES,
                status_words=STATUS_WORDS, problem=PROBLEMS.get(problem, problem) if problem
                else "", problem_code=problem, filed=filed, due_days=privacy.DUE_DAYS,
                has_passkey=bool(store.passkeys_of(s, user.pk)), reauth_s=REAUTH_S,
                disclosure_open=lambda r: privacy.disclosure_open(r, now),
                disclosure_days=privacy.DISCLOSURE_DAYS)


@router.get("/my/privacy")
def privacy_page(request: Request, filed: str = "") -> Response:
    """The driver's requests and the form to file one."""
    rt = ceremony.runtime_of(request)
    now = rt.now()
    with transaction(rt.sessions) as s:
        me = _session(request, s, now)
        if me is None:
            return RedirectResponse("/my/sign-in", status_code=303)
        return _page(request, s, me[0], now, filed=filed[:44])


@router.post("/my/privacy/options")
def reauth_options(request: Request) -> Response:
    """``PublicKeyCredentialRequestOptions`` to confirm a request with a passkey."""
    rt = ceremony.runtime_of(request)
    try:
        rp = ceremony.checked_rp(request)
    except ceremony.Refused as exc:
        return ceremony.refusal(request, exc, SENTENCES)
    with transaction(rt.sessions) as s:
        me = _session(request, s, rt.now())
        if me is None:
            return ceremony.refusal(request, ceremony.Refused(401, ceremony.UNKNOWN), SENTENCES)
        challenge = store.new_challenge(s, REAUTH, rt.now(), me[0].pk)
        opts = passkeys.authentication_options(
            rp, challenge, [p.credential_id for p in store.passkeys_of(s, me[0].pk)])
    return JSONResponse({"ok": True, "options": opts})


def _verified(request: Request, s: Session, user: User, age: int, assertion: str,
              now: int) -> str:
    """How this filing was verified (``passkey`` or ``fresh-sign-in``), else 401."""
    if assertion:
        rp = ceremony.checked_rp(request)
        try:
            credential: Any = json.loads(assertion)
        except ValueError:
            credential = None
        if not isinstance(credential, dict):
            raise ceremony.Refused(400, ceremony.NOT_VERIFIED)
        key = ceremony.verify_sign_in(s, rp, credential, REAUTH, now,
                                      lambda cid: s.get(store.Passkey, cid))
        if key.user_pk != user.pk:
            raise ceremony.Refused(403, "passkey-other-account")
        return "passkey"
    if age <= REAUTH_S:
        return "fresh-sign-in"
    raise ceremony.Refused(401, "reauth-required")


@router.post("/my/privacy/requests")
def file_request(request: Request, kind: Annotated[str, Form(max_length=16)] = "",
                 detail: Annotated[str, Form(max_length=1000)] = "",
                 assertion: Annotated[str, Form(max_length=8000)] = "") -> Response:
    """File a request (verified again: passkey, or a sign-in of the last 5 minutes)."""
    rt = ceremony.runtime_of(request)
    now = rt.now()
    if not ceremony.same_origin(request, ceremony.relying_party(request)):
        return ceremony.refusal(request, ceremony.Refused(403, ceremony.WRONG_ORIGIN), SENTENCES)
    with transaction(rt.sessions) as s:  # a refused assertion still spends its challenge
        me = _session(request, s, now)
        if me is None:
            return RedirectResponse("/my/sign-in", status_code=303)
        user, age = me
        try:
            how = _verified(request, s, user, age, assertion, now)
            req = privacy.file_request(s, user, kind, detail, how, now)
        except ceremony.Refused as exc:
            return _page(request, s, user, now, status=exc.status, problem=exc.code)
        except ApiError as exc:
            return _page(request, s, user, now, status=exc.status, problem=exc.code)
        return RedirectResponse(f"/my/privacy?filed={req.id}", status_code=303)


@router.post("/my/privacy/requests/{request_id}/withdraw")
def withdraw(request: Request, request_id: RequestId) -> Response:
    """Withdraw an open request."""
    rt = ceremony.runtime_of(request)
    now = rt.now()
    if not ceremony.same_origin(request, ceremony.relying_party(request)):
        return ceremony.refusal(request, ceremony.Refused(403, ceremony.WRONG_ORIGIN), SENTENCES)
    with transaction(rt.sessions) as s:
        me = _session(request, s, now)
        if me is None:
            return RedirectResponse("/my/sign-in", status_code=303)
        try:
            privacy.withdraw(s, me[0], request_id, now)
        except ApiError as exc:
            return _page(request, s, me[0], now, status=exc.status, problem=exc.code)
        return RedirectResponse("/my/privacy", status_code=303)


def _disclosure(request: Request, request_id: str
                ) -> tuple[privacy.Disclosure | None, Response | None]:
    rt = ceremony.runtime_of(request)
    now = rt.now()
    with transaction(rt.sessions) as s:
        me = _session(request, s, now)
        if me is None:
            return None, RedirectResponse("/my/sign-in", status_code=303)
        user = me[0]
        req = privacy.own_request(s, user.pk, request_id)
        if req is None or not privacy.disclosure_open(req, now):
            code = "not-found" if req is None else "disclosure-closed"
            return None, _page(request, s, user, now, status=404 if req is None else 409,
                               problem=code)
        out = privacy.disclosure(privacy.driver_ctx(s, user, now, rt.settings), user.user_id)
    return out, None


@router.get("/my/privacy/requests/{request_id}/disclosure")
def disclosure_page(request: Request, request_id: RequestId) -> Response:
    """The disclosure as a readable page."""
    out, refused = _disclosure(request, request_id)
    if out is None:
        assert refused is not None
        return refused
    return page(request, "my_disclosure.html", d=out, request_id=request_id,
                perms=perm_words, event=event_word, kind_names=KIND_NAMES,
                status_words=STATUS_WORDS)


@router.get("/my/privacy/requests/{request_id}/disclosure.json")
def disclosure_json(request: Request, request_id: RequestId) -> Response:
    """The disclosure as JSON (a download)."""
    out, refused = _disclosure(request, request_id)
    if out is None:
        assert refused is not None
        return refused
    return JSONResponse(out.model_dump(mode="json"), headers={
        "Content-Disposition": f'attachment; filename="kagiya-disclosure-{request_id}.json"',
        "Cache-Control": "no-store"})
