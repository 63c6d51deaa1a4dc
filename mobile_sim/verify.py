"""Checking a download before storing it: the phone never carries garbage to a lock.

Every credential, time statement and revocation update from a sync is verified with the
host SDK under the issuer keys (trust anchors) the server lists (protocol §3 steps 1–4,
§6, §7), and each key's signed claims must match the metadata the server sent beside it
(key ID, lock, user, window, permissions). Nothing of a download that fails is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kagiya.sdk import cose
from kagiya.sdk.credential import CT_CWT, MAX_CREDENTIAL, decode_claims_unverified
from kagiya.sdk.errors import ProtocolError
from kagiya.sdk.signed import verify_revocation_update, verify_time_statement


class DownloadRejected(Exception):
    """A downloaded object does not verify (nothing of that sync was stored)."""


def anchors_from(issuer_keys: list[dict[str, Any]]) -> dict[bytes, bytes]:
    """``kid -> Ed25519 public key`` from the server's ``issuer_keys`` list."""
    return {bytes.fromhex(k["kid"]): bytes.fromhex(k["public_key"]) for k in issuer_keys}


def check_key(key: Mapping[str, Any], anchors: Mapping[bytes, bytes]) -> None:
    """Verify a downloaded key's credential and that its claims match the metadata."""
    cred = bytes.fromhex(key["credential"])
    what = f"key {key.get('key_id', '?')[:8]} for {key.get('lock_id', '?')}"
    try:
        cose.verify_sign1(cred, anchors, CT_CWT, MAX_CREDENTIAL)
        claims = decode_claims_unverified(cred)
    except ProtocolError as exc:
        raise DownloadRejected(f"{what}: credential does not verify: {exc}") from exc
    expected = (bytes.fromhex(key["key_id"]), key["lock_id"], key["user_id"], int(key["nbf"]),
                int(key["exp"]), int(key["permissions"]))
    signed = (claims.cti, claims.aud, claims.sub, claims.nbf, claims.exp, int(claims.permissions))
    if signed != expected:
        raise DownloadRejected(f"{what}: signed claims differ from the server's description")


def check_time(statement: bytes, claimed: int, anchors: Mapping[bytes, bytes]) -> None:
    """Verify a time statement and that it states ``claimed``."""
    try:
        t = verify_time_statement(statement, anchors)
    except ProtocolError as exc:
        raise DownloadRejected(f"time statement does not verify: {exc}") from exc
    if t != claimed:
        raise DownloadRejected(f"time statement says {t}, the server said {claimed}")


def check_revocation(update: bytes, lock_id: str, version: int,
                     anchors: Mapping[bytes, bytes]) -> None:
    """Verify a revocation update for ``lock_id`` with ``version``."""
    try:
        rv = verify_revocation_update(update, anchors, lock_id)
    except ProtocolError as exc:
        raise DownloadRejected(f"revocation update for {lock_id} does not verify: {exc}") from exc
    if rv.version != version:
        raise DownloadRejected(f"revocation update for {lock_id} is v{rv.version}, not v{version}")
