"""OpenID Connect sign-in for My Page: the key server as a confidential relying party of the
operator's OpenID provider (authorization code flow with PKCE ``S256``, ``state`` and
``nonce``; the ID token's signature, issuer, audience, expiry and nonce are verified with the
provider's published keys).

Configuration: ``KAGIYA_OIDC_ISSUER`` (the provider's issuer URL), ``KAGIYA_OIDC_CLIENT_ID``
and ``KAGIYA_OIDC_CLIENT_SECRET`` (never logged). Without them, My Page offers passkeys only.

A flow's secrets come from one random value kept in the browser (an ``HttpOnly`` cookie): the
``state`` and ``nonce`` sent to the provider and the PKCE verifier are keyed hashes of it, so
the server stores nothing but a one-use challenge row naming the flow's purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlencode

import httpx

ISSUER_ENV, CLIENT_ID_ENV, CLIENT_SECRET_ENV = (
    "KAGIYA_OIDC_ISSUER", "KAGIYA_OIDC_CLIENT_ID", "KAGIYA_OIDC_CLIENT_SECRET")
TIMEOUT_S = 10.0


class OidcError(Exception):
    """The provider's answer did not verify (the reason is for logs, never a secret)."""


def _b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Flow:
    """One sign-in or link attempt, derived from the browser's random flow secret."""

    secret: str

    @classmethod
    def new(cls) -> Flow:
        """A fresh flow (its secret goes into the browser's cookie only)."""
        return cls(secrets.token_urlsafe(32))

    def _derive(self, label: str) -> str:
        return _b64u(hmac.new(self.secret.encode(), label.encode(), hashlib.sha256).digest())

    @property
    def handle(self) -> bytes:
        """The key of the flow's one-use challenge row on the server."""
        return hashlib.sha256(b"oidc-flow:" + self.secret.encode()).digest()

    @property
    def state(self) -> str:
        """The ``state`` parameter (binds the callback to this browser)."""
        return self._derive("state")

    @property
    def nonce(self) -> str:
        """The ``nonce`` the ID token must carry."""
        return self._derive("nonce")

    @property
    def verifier(self) -> str:
        """The PKCE code verifier."""
        return self._derive("pkce")

    def challenge(self) -> str:
        """The PKCE ``S256`` code challenge."""
        return _b64u(hashlib.sha256(self.verifier.encode()).digest())

    def matches(self, state: str) -> bool:
        """Whether ``state`` from the callback is this flow's (constant-time)."""
        return hmac.compare_digest(self.state.encode(), state.encode())


@dataclass(frozen=True)
class Provider:
    """The configured OpenID provider and this server's client registration at it."""

    issuer: str
    client_id: str
    client_secret: str

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once per process)."""
        return _discovery(self.issuer)

    def authorization_url(self, flow: Flow, redirect_uri: str) -> str:
        """Where the browser goes to sign in at the provider."""
        query = urlencode({
            "response_type": "code", "client_id": self.client_id, "scope": "openid",
            "redirect_uri": redirect_uri, "state": flow.state, "nonce": flow.nonce,
            "code_challenge": flow.challenge(), "code_challenge_method": "S256"})
        return f"{self.metadata()['authorization_endpoint']}?{query}"

    def subject(self, flow: Flow, code: str, redirect_uri: str) -> str:
        """Redeem ``code`` and verify the ID token: the person's ``sub`` at this issuer."""
        meta = self.metadata()
        try:
            r = httpx.post(meta["token_endpoint"], timeout=TIMEOUT_S,
                           auth=(self.client_id, self.client_secret),
                           data={"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": redirect_uri,
                                 "code_verifier": flow.verifier})
        except httpx.HTTPError as exc:
            raise OidcError(f"token endpoint unreachable: {type(exc).__name__}") from exc
        if r.status_code != 200:
            raise OidcError(f"token endpoint refused the code: HTTP {r.status_code}")
        id_token = r.json().get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("no id_token in the token response")
        import jwt  # PyJWT ([server] extra); imported on use so an older venv still serves

        try:
            key = _keys(meta["jwks_uri"]).get_signing_key_from_jwt(id_token)
            claims = jwt.decode(id_token, key.key, algorithms=["RS256", "ES256", "EdDSA"],
                                audience=self.client_id, issuer=self.issuer,
                                options={"require": ["iss", "sub", "aud", "exp", "iat"]})
        except jwt.PyJWTError as exc:
            raise OidcError(f"id_token did not verify: {type(exc).__name__}") from exc
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), flow.nonce.encode()):
            raise OidcError("id_token nonce mismatch")
        sub = claims["sub"]
        if not isinstance(sub, str) or not 0 < len(sub) <= 255:
            raise OidcError("id_token subject unusable")
        return sub


def provider() -> Provider | None:
    """The configured provider, or None when OpenID Connect sign-in is off."""
    issuer = os.environ.get(ISSUER_ENV, "").rstrip("/")
    client_id = os.environ.get(CLIENT_ID_ENV, "")
    secret = os.environ.get(CLIENT_SECRET_ENV, "")
    return Provider(issuer, client_id, secret) if issuer and client_id and secret else None


@cache
def _discovery(issuer: str) -> dict[str, Any]:
    try:
        r = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT_S)
        meta: dict[str, Any] = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        _discovery.cache_clear()
        raise OidcError(f"discovery failed: {type(exc).__name__}") from exc
    if meta.get("issuer") != issuer:
        raise OidcError("discovery names another issuer")
    return meta


@cache
def _keys(jwks_uri: str) -> Any:
    """The provider's signing keys (a ``jwt.PyJWKClient``, which caches them)."""
    import jwt

    return jwt.PyJWKClient(jwks_uri, timeout=int(TIMEOUT_S))
