"""Passkeys (WebAuthn Level 3) for My Page, with the ``webauthn`` package (py_webauthn).

The relying party is the configured web origin (``KAGIYA_WEB_ORIGIN``, e.g.
``https://keys.example.jp``; its host is the RP ID). Without it, a request from
``http://localhost:<port>`` is served as its own origin (development and the tests, where
Chromium's virtual authenticator runs); any other origin gets no passkey ceremony at all.
User verification is required; attestation is not requested (``none``: we trust the account
binding through the operator's invitation, not the authenticator's make).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

RP_NAME = "Kagiya"
ORIGIN_ENV = "KAGIYA_WEB_ORIGIN"


class PasskeyError(Exception):
    """A ceremony that did not verify (the reason is for logs, never secret)."""


@dataclass(frozen=True)
class RelyingParty:
    """Who the passkeys are for."""

    origin: str
    rp_id: str


def relying_party(scheme: str, host_header: str) -> RelyingParty | None:
    """The configured origin, else a localhost request's own origin, else None."""
    configured = os.environ.get(ORIGIN_ENV, "").rstrip("/")
    if configured:
        host = urlsplit(configured).hostname or ""
        return RelyingParty(configured, host)
    host = host_header.rsplit(":", 1)[0] if not host_header.startswith("[") else ""
    if host == "localhost" and scheme in ("http", "https"):
        return RelyingParty(f"{scheme}://{host_header}", "localhost")
    return None


def registration_options(rp: RelyingParty, challenge: bytes, user_handle: bytes, name: str,
                         existing: list[bytes]) -> dict[str, Any]:
    """``PublicKeyCredentialCreationOptions`` as JSON for ``navigator.credentials.create``."""
    opts = generate_registration_options(
        rp_id=rp.rp_id, rp_name=RP_NAME, user_id=user_handle, user_name=name,
        user_display_name=name, challenge=challenge,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in existing],
    )
    out: dict[str, Any] = json.loads(options_to_json(opts))
    return out


def authentication_options(rp: RelyingParty, challenge: bytes,
                           allow: list[bytes] | None = None) -> dict[str, Any]:
    """``PublicKeyCredentialRequestOptions`` (discoverable credentials: no user typed;
    ``allow``: only these credentials, to confirm a signed-in user)."""
    opts = generate_authentication_options(
        rp_id=rp.rp_id, challenge=challenge,
        user_verification=UserVerificationRequirement.REQUIRED,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in allow or []])
    out: dict[str, Any] = json.loads(options_to_json(opts))
    return out


def client_challenge(credential: dict[str, Any]) -> bytes:
    """The challenge the browser signed (from ``clientDataJSON``), to find the ceremony."""
    try:
        raw = base64url_to_bytes(credential["response"]["clientDataJSON"])
        return base64url_to_bytes(json.loads(raw)["challenge"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PasskeyError("malformed credential") from exc


def credential_id(credential: dict[str, Any]) -> bytes:
    """The credential's raw ID."""
    try:
        return base64url_to_bytes(str(credential["rawId"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise PasskeyError("malformed credential") from exc


def verify_registration(rp: RelyingParty, credential: dict[str, Any],
                        challenge: bytes) -> tuple[bytes, bytes, int]:
    """``(credential_id, COSE public key, sign_count)`` of a verified new passkey."""
    try:
        v = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp.rp_id,
            expected_origin=rp.origin, require_user_verification=True)
    except (InvalidRegistrationResponse, KeyError, TypeError, ValueError) as exc:
        raise PasskeyError(f"registration did not verify: {type(exc).__name__}") from exc
    return v.credential_id, v.credential_public_key, v.sign_count


def verify_authentication(rp: RelyingParty, credential: dict[str, Any], challenge: bytes,
                          public_key: bytes, sign_count: int) -> int:
    """The new signature counter of a verified sign-in (a counter that went backwards — a
    cloned authenticator — is refused by the library)."""
    try:
        v = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp.rp_id,
            expected_origin=rp.origin, credential_public_key=public_key,
            credential_current_sign_count=sign_count, require_user_verification=True)
    except (InvalidAuthenticationResponse, KeyError, TypeError, ValueError) as exc:
        raise PasskeyError(f"sign-in did not verify: {type(exc).__name__}") from exc
    return int(v.new_sign_count)
