"""Installer tokens: short-lived bearer tokens that can only register locks."""

from __future__ import annotations

from kagiya.server.models import Token
from kagiya.server.principal import INSTALLER, token_ref
from kagiya.server.schemas import TokenOut
from kagiya.server.secrets_store import new_token, token_hash
from kagiya.server.services.context import Ctx


def create_installer_token(c: Ctx, ttl_s: int) -> TokenOut:
    """Mint an installer token of the caller's operator, valid for ``ttl_s`` seconds (only
    its hash is stored)."""
    tok = new_token()
    hashed = token_hash(tok)
    c.s.add(
        Token(
            token_hash=hashed,
            kind=INSTALLER,
            operator_id=c.operator_id,
            expires_at=c.now + ttl_s,
        )
    )
    # the token's reference: the installer's later actions are audited under it
    c.audit("installer-token.create", token_ref(hashed), ttl_s=ttl_s)
    return TokenOut(access_token=tok, expires_in=ttl_s, scope="install")
