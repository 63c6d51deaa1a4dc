"""Passkey ceremonies over HTTP, shared by My Page (drivers) and the operator console (staff).

A surface (:mod:`~kagiya.server.web.routes_mypage`, :mod:`~kagiya.server.web.routes_console_auth`)
keeps its own tables and sentences; this module holds what both do the same way: finding the
relying party, the ``Origin`` check (CSRF), the one-use challenges, verifying a new passkey and
a sign-in (:mod:`kagiya.server.web.passkeys`), the refusal JSON and the session cookie.
A refusal is :class:`Refused` with a stable ``code``; the surface turns it into its sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from kagiya.sdk.i18n import _, language
from kagiya.server.web import passkeys, store
from kagiya.server.web.render import request_language
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from kagiya.server.runtime import Runtime

log = logging.getLogger("kagiya.server.web")

NO_RP, WRONG_ORIGIN = "no-passkeys-here", "wrong-origin"
INVITATION_INVALID, NOT_VERIFIED = "invitation-invalid", "passkey-not-verified"
UNKNOWN, REGISTERED = "passkey-unknown", "passkey-registered"


class Refused(Exception):
    """A refused ceremony or form: HTTP status and a stable code (the surface's sentence)."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


class StoredPasskey(Protocol):
    """What :func:`verify_sign_in` reads and updates of a stored credential."""

    public_key: bytes
    sign_count: int
    last_used_at: int


P = TypeVar("P", bound=StoredPasskey)


def relying_party(request: Request) -> passkeys.RelyingParty | None:
    """The relying party this request is served as (None: no passkeys at this address)."""
    return passkeys.relying_party(request.url.scheme, request.headers.get("host", ""))


def same_origin(request: Request, rp: passkeys.RelyingParty | None) -> bool:
    """Did a state-changing request come from our own pages (its ``Origin``)?"""
    return rp is not None and request.headers.get("origin") == rp.origin


def checked_rp(request: Request) -> passkeys.RelyingParty:
    """The relying party of a ceremony or form post; :class:`Refused` 403 otherwise."""
    rp = relying_party(request)
    if rp is None:
        raise Refused(403, NO_RP)
    if not same_origin(request, rp):
        raise Refused(403, WRONG_ORIGIN)
    return rp


def refusal(request: Request, exc: Refused, sentences: Mapping[str, str]) -> JSONResponse:
    """The JSON a page's script shows: ``{ok: false, code, message}`` in the user's language."""
    with language(request_language(request)):
        text = _(sentences.get(exc.code, sentences.get("", exc.code)))
    # the wire code of "no relying party here" stays the historic ``wrong-origin``
    code = WRONG_ORIGIN if exc.code == NO_RP else exc.code
    return JSONResponse({"ok": False, "code": code, "message": text}, status_code=exc.status)


def creation_options(s: Session, rp: passkeys.RelyingParty, purpose: str, now: int, name: str,
                     existing: list[bytes], *, user_pk: int | None = None,
                     owner: str | None = None) -> dict[str, Any]:
    """Options for ``navigator.credentials.create``, with a fresh challenge bound to the
    account (``user_pk`` or ``owner``)."""
    challenge = store.new_challenge(s, purpose, now, user_pk, owner)
    return passkeys.registration_options(rp, challenge, name.encode(), name, existing)


def verify_new_passkey(s: Session, rp: passkeys.RelyingParty, credential: dict[str, Any],
                       purpose: str, now: int, bound: Callable[[store.Challenge], bool],
                       taken: Callable[[bytes], bool]) -> tuple[bytes, bytes, int]:
    """``(credential_id, public_key, sign_count)`` of a new passkey whose challenge was for
    this account (``bound``) and whose ID is not registered yet (``taken``)."""
    try:
        challenge = store.take_challenge(s, passkeys.client_challenge(credential), purpose, now)
        if challenge is None or not bound(challenge):
            raise Refused(410, INVITATION_INVALID)
        cid, public_key, count = passkeys.verify_registration(rp, credential,
                                                              challenge.challenge)
    except passkeys.PasskeyError as exc:
        log.info("passkey: %s", exc)
        raise Refused(400, NOT_VERIFIED) from exc
    if taken(cid):  # one credential, one account
        raise Refused(409, REGISTERED)
    return cid, public_key, count


def request_options(s: Session, rp: passkeys.RelyingParty, purpose: str,
                    now: int) -> dict[str, Any]:
    """Options for ``navigator.credentials.get`` (discoverable passkeys: no name typed)."""
    return passkeys.authentication_options(rp, store.new_challenge(s, purpose, now))


def verify_sign_in(s: Session, rp: passkeys.RelyingParty, credential: dict[str, Any],
                   purpose: str, now: int, find: Callable[[bytes], P | None]) -> P:
    """The stored passkey (``find`` by credential ID) that signed this fresh challenge; its
    counter and last use are updated. :class:`Refused` otherwise."""
    try:
        challenge = store.take_challenge(s, passkeys.client_challenge(credential), purpose, now)
        key = find(passkeys.credential_id(credential))
        if challenge is None:
            raise Refused(400, NOT_VERIFIED)
        if key is None:
            raise Refused(403, UNKNOWN)
        key.sign_count = passkeys.verify_authentication(
            rp, credential, challenge.challenge, key.public_key, key.sign_count)
    except passkeys.PasskeyError as exc:
        log.info("passkey: %s", exc)
        raise Refused(400, NOT_VERIFIED) from exc
    key.last_used_at = now
    return key


def signed_in(request: Request, cookie: str, token: str, path: str,
              body: dict[str, Any]) -> JSONResponse:
    """``{ok: true, …}`` setting the session cookie (HttpOnly, SameSite=Strict, Secure over
    HTTPS, scoped to ``path``)."""
    resp = JSONResponse({"ok": True, **body})
    resp.set_cookie(cookie, token, max_age=store.SESSION_TTL_S, httponly=True,
                    samesite="strict", secure=request.url.scheme == "https", path=path)
    return resp


# -- the request bodies and runtime shared by My Page's and the console's passkey routes --


class InviteBody(BaseModel):
    """Sign-up: the invitation token (from the link)."""

    invite: str = Field(min_length=10, max_length=100)


class SignUpBody(InviteBody):
    """Sign-up: the new credential."""

    credential: dict[str, Any]


class SignInBody(BaseModel):
    """Sign-in: the assertion."""

    credential: dict[str, Any]


def runtime_of(request: Request) -> Runtime:
    """The server runtime serving ``request``."""
    rt: Runtime = request.app.state.runtime
    return rt
