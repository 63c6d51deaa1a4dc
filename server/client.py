"""A small typed HTTP client for the key server: operator, installer and phone APIs.

The phone app (``kagiya.phone``) and the installer tools (``kagiya.tools``) import this;
``kagiya.sdk`` does not depend on the server. Every mutating call sends an
``Idempotency-Key`` (a fresh UUID unless you pass one) and is retried with the same key on a
connection error or a 503, so a retry never creates a duplicate. Errors raise
:class:`ApiProblem` carrying the server's problem+json ``code``.

Example::

    op = OperatorClient.login("http://127.0.0.1:8080", client_id, client_secret)
    user = op.create_user()["user_id"]
    ch = op.registration_challenge()  # the lock signs it over USB: provisioning.registration_proof
    op.register_lock("CAR-0001", sign_public, kex_public, challenge=ch["challenge"], proof=proof)
    op.create_key_request(user, "CAR-0001", nbf, exp, ["doors", "drive"])
    code = op.enrollment_code(user)["code"]
    phone = PhoneClient.enroll("http://127.0.0.1:8080", code, device_seed)
    keys = phone.sync().keys
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kagiya.sdk.enrollment import auth_message, enroll_message


class ApiProblem(Exception):
    """The server refused a call (RFC 9457 problem details)."""

    def __init__(self, status: int, code: str, detail: str, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.body = body


class _Base:
    def __init__(
        self,
        base_url: str = "",
        *,
        token: str | None = None,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
        retries: int = 3,
    ) -> None:
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self.token = token
        self.retries = retries
        self.last_status = 0  # HTTP status of the last answer

    def close(self) -> None:
        """Close the underlying connection pool."""
        self.http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        auth: bool = True,
    ) -> Any:
        headers: dict[str, str] = {}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        mutating = method in ("POST", "PATCH", "DELETE", "PUT")
        if mutating and data is None:
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = self.retries if (mutating and data is None) or not mutating else 1
        for attempt in range(attempts):
            try:
                resp = self.http.request(
                    method, path, json=json, params=clean, data=data, headers=headers
                )
            except httpx.TransportError:
                if attempt + 1 >= attempts:
                    raise
                time.sleep(0.1 * (attempt + 1))
                continue
            if resp.status_code == 503 and attempt + 1 < attempts:
                time.sleep(0.1 * (attempt + 1))
                continue
            break
        self.last_status = resp.status_code
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"detail": resp.text}
            raise ApiProblem(
                resp.status_code, str(body.get("code", "error")), str(body.get("detail", "")), body
            )
        return resp.json()

    def server_time(self) -> tuple[int, bytes]:
        """``GET /v1/time``: the server's time and a fresh signed time statement (protocol
        §6). Public (no token needed), rate-limited per address."""
        out = self._request("GET", "/v1/time", auth=False)
        return int(out["time"]), bytes.fromhex(out["time_statement"])

    def registration_challenge(self) -> dict[str, Any]:
        """A one-time challenge for the lock to sign (``{challenge, expires_at,
        operator_id}``): registration and identity replacement need the lock's proof."""
        return self._request("POST", "/v1/install/registration-challenge")

    def operator_id(self) -> str:
        """The operator this token belongs to (what a lock is provisioned for)."""
        return str(self._request("GET", "/v1/install/operator")["operator_id"])

    def _lock_body(self, lock_id: str, sign_public: bytes, kex_public: bytes,
                   challenge: str, proof: bytes, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"lock_id": lock_id, "sign_public": sign_public.hex(),
                                "kex_public": kex_public.hex(), "challenge": challenge,
                                "proof": proof.hex()}
        body.update({k: v for k, v in extra.items() if v is not None})
        return body

    def replace_lock_identity(
        self, lock_id: str, sign_public: bytes, kex_public: bytes, *, challenge: str,
        proof: bytes, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Give this operator's re-provisioned ``lock_id`` its new identity keys, with the
        new identity's proof over a :meth:`registration_challenge`; key requests stay and
        are re-issued to the new key (an installer token only for a lock not in service)."""
        body = self._lock_body(lock_id, sign_public, kex_public, challenge, proof)
        del body["lock_id"]
        return self._request(
            "PUT", f"/v1/locks/{lock_id}/identity", idempotency_key=idempotency_key, json=body
        )

    def decommission_lock(self, lock_id: str) -> dict[str, Any]:
        """Retire a lock: every key revoked, the row kept as a tombstone; returns
        ``{lock_id, revocation_version, decommission_update}`` (hex, protocol §7a)."""
        return self._request("POST", f"/v1/locks/{lock_id}/decommission")

    def decommission_update(self, lock_id: str) -> dict[str, Any]:
        """The decommission update of a retired lock again (to carry to the lock)."""
        return self._request("GET", f"/v1/locks/{lock_id}/decommission")

    def replace_simulated_identity(self, identity: Any, lock_id: str,
                                   sign_public: bytes | None = None,
                                   kex_public: bytes | None = None) -> dict[str, Any]:
        """Replace ``lock_id``'s identity by ``identity`` (a
        :class:`kagiya.sdk.keys.LockIdentity` this process holds), proving possession as the
        firmware would; ``sign_public``/``kex_public`` override the keys sent (tests)."""
        from kagiya.sdk.registration import sign_registration

        ch = self.registration_challenge()
        proof = sign_registration(identity, lock_id, ch["operator_id"],
                                  bytes.fromhex(ch["challenge"]))
        return self.replace_lock_identity(
            lock_id, sign_public or identity.sign_public, kex_public or identity.kex_public,
            challenge=ch["challenge"], proof=proof)

    def register_simulated_lock(self, identity: Any, lock_id: str, **extra: Any
                                ) -> dict[str, Any]:
        """Register a lock whose private keys this process holds (a
        :class:`kagiya.sdk.keys.LockIdentity`: tests, simulators, benchmarks): asks for a
        challenge and signs it as the firmware would."""
        from kagiya.sdk.registration import sign_registration

        ch = self.registration_challenge()
        proof = sign_registration(identity, lock_id, ch["operator_id"],
                                  bytes.fromhex(ch["challenge"]))
        return self.register_lock(lock_id, identity.sign_public, identity.kex_public,  # type: ignore[attr-defined]
                                  challenge=ch["challenge"], proof=proof, **extra)


# --- operator ---------------------------------------------------------------------------


class OperatorClient(_Base):
    """The operator server's view (OAuth2 client credentials)."""

    @classmethod
    def login(
        cls, base_url: str, client_id: str, client_secret: str, *, http: httpx.Client | None = None
    ) -> OperatorClient:
        """Get a bearer token with the client credentials and return a ready client."""
        c = cls(base_url, http=http)
        tok = c._request(
            "POST",
            "/v1/oauth/token",
            auth=False,
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )
        c.token = tok["access_token"]
        return c

    # users
    def create_user(self, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Issue a new user ID."""
        return self._request("POST", "/v1/users", idempotency_key=idempotency_key)

    def list_users(
        self, *, status: str | None = None, cursor: str | None = None, limit: int = 50
    ) -> dict[str, Any]:
        """One page of user IDs."""
        return self._request(
            "GET", "/v1/users", params={"status": status, "cursor": cursor, "limit": limit}
        )

    def get_user(self, user_id: str) -> dict[str, Any]:
        """One user ID."""
        return self._request("GET", f"/v1/users/{user_id}")

    def suspend_user(self, user_id: str) -> dict[str, Any]:
        """Suspend a user ID (keys revoked)."""
        return self._request("POST", f"/v1/users/{user_id}/suspend")

    def resume_user(self, user_id: str) -> dict[str, Any]:
        """Resume a user ID."""
        return self._request("POST", f"/v1/users/{user_id}/resume")

    def mark_leaked(self, user_id: str) -> dict[str, Any]:
        """Mark a user ID as leaked (suspended at once, phones removed)."""
        return self._request("POST", f"/v1/users/{user_id}/leaked")

    def delete_user(self, user_id: str) -> dict[str, Any]:
        """Delete a user ID and its data."""
        return self._request("DELETE", f"/v1/users/{user_id}")

    def export_user(self, user_id: str) -> dict[str, Any]:
        """Everything stored about a user ID."""
        return self._request("GET", f"/v1/users/{user_id}/export")

    def enrollment_code(self, user_id: str) -> dict[str, Any]:
        """A one-time enrollment code for the user's phone (``code``, ``expires_at``)."""
        return self._request("POST", f"/v1/users/{user_id}/enrollment-codes")

    # partners
    def create_partner(self, name: str) -> dict[str, Any]:
        """Register a partner business."""
        return self._request("POST", "/v1/partners", json={"name": name})

    def list_partners(self, *, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
        """One page of partners."""
        return self._request("GET", "/v1/partners", params={"cursor": cursor, "limit": limit})

    def set_partner_status(self, partner_id: str, suspended: bool) -> dict[str, Any]:
        """Suspend or resume a partner."""
        action = "suspend" if suspended else "resume"
        return self._request("POST", f"/v1/partners/{partner_id}/{action}")

    def delete_partner(self, partner_id: str) -> dict[str, Any]:
        """Delete a partner."""
        return self._request("DELETE", f"/v1/partners/{partner_id}")

    # locks
    def register_lock(
        self,
        lock_id: str,
        sign_public: bytes,
        kex_public: bytes,
        *,
        challenge: str,
        proof: bytes,
        vehicle_label: str | None = None,
        partner_id: str | None = None,
    ) -> dict[str, Any]:
        """Register a lock with its two public identity keys and its proof of possession
        over a :meth:`registration_challenge` (protocol §5)."""
        body = self._lock_body(lock_id, sign_public, kex_public, challenge, proof,
                               vehicle_label=vehicle_label, partner_id=partner_id)
        return self._request("POST", "/v1/locks", json=body)

    def list_locks(
        self, *, partner_id: str | None = None, cursor: str | None = None, limit: int = 50
    ) -> dict[str, Any]:
        """One page of locks."""
        return self._request(
            "GET", "/v1/locks", params={"partner_id": partner_id, "cursor": cursor, "limit": limit}
        )

    def get_lock(self, lock_id: str) -> dict[str, Any]:
        """One lock."""
        return self._request("GET", f"/v1/locks/{lock_id}")

    def update_lock(self, lock_id: str, **fields: Any) -> dict[str, Any]:
        """Change ``vehicle_label`` and/or ``partner_id``."""
        return self._request("PATCH", f"/v1/locks/{lock_id}", json=fields)

    def set_lock_status(self, lock_id: str, suspended: bool) -> dict[str, Any]:
        """Suspend or resume a lock."""
        action = "suspend" if suspended else "resume"
        return self._request("POST", f"/v1/locks/{lock_id}/{action}")

    def delete_lock(self, lock_id: str) -> dict[str, Any]:
        """Delete a lock and its requests, keys and logs."""
        return self._request("DELETE", f"/v1/locks/{lock_id}")

    def time_statement(self) -> bytes:
        """A fresh signed time statement (``GET /v1/time``)."""
        return self.server_time()[1]

    # key requests
    def create_key_request(
        self,
        user_id: str,
        lock_id: str,
        nbf: int,
        exp: int,
        permissions: list[str],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Request a key (effective when this returns)."""
        return self._request(
            "POST",
            "/v1/key-requests",
            idempotency_key=idempotency_key,
            json={
                "user_id": user_id,
                "lock_id": lock_id,
                "nbf": nbf,
                "exp": exp,
                "permissions": permissions,
            },
        )

    def change_key_request(self, request_id: str, **fields: Any) -> dict[str, Any]:
        """Change ``nbf``, ``exp`` and/or ``permissions`` (re-issues, revokes the old key)."""
        return self._request("PATCH", f"/v1/key-requests/{request_id}", json=fields)

    def cancel_key_request(self, request_id: str) -> dict[str, Any]:
        """Cancel (revokes its keys)."""
        return self._request("POST", f"/v1/key-requests/{request_id}/cancel")

    def get_key_request(self, request_id: str) -> dict[str, Any]:
        """One key request."""
        return self._request("GET", f"/v1/key-requests/{request_id}")

    def list_key_requests(self, **filters: Any) -> dict[str, Any]:
        """One page of key requests (filters: user_id, lock_id, status, cursor, limit)."""
        return self._request("GET", "/v1/key-requests", params=filters)

    # logs, audit, installers
    def logs(self, **filters: Any) -> dict[str, Any]:
        """One page of usage logs (filters: lock_id, user_id, since, until, cursor, limit)."""
        return self._request("GET", "/v1/logs", params=filters)

    def audit(self, *, cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
        """One page of this operator's audit log."""
        return self._request("GET", "/v1/audit", params={"cursor": cursor, "limit": limit})

    def installer_token(self, ttl_s: int = 8 * 3600) -> str:
        """A token for an installer's laptop that can only register locks."""
        return str(
            self._request("POST", "/v1/installer-tokens", json={"ttl_s": ttl_s})["access_token"]
        )


# --- installer --------------------------------------------------------------------------


class InstallerClient(_Base):
    """What the installer tools need: register a lock, read the issuer keys (trust anchors)."""

    def register_lock(
        self,
        lock_id: str,
        sign_public: bytes,
        kex_public: bytes,
        *,
        challenge: str,
        proof: bytes,
        vehicle_label: str | None = None,
    ) -> dict[str, Any]:
        """Register a newly provisioned lock under the token's operator, with its proof of
        possession over a :meth:`registration_challenge` (protocol §5)."""
        body = self._lock_body(lock_id, sign_public, kex_public, challenge, proof,
                               vehicle_label=vehicle_label)
        return self._request("POST", "/v1/install/locks", json=body)

    def time_statement(self) -> bytes:
        """A fresh signed time statement to provision with (``GET /v1/time``)."""
        return self.server_time()[1]

    def issuer_keys(self) -> list[tuple[bytes, bytes, str]]:
        """``(kid, public_key, state)`` of every issuer key to trust now."""
        keys = self._request("GET", "/v1/issuer-keys", auth=False)["keys"]
        return [(bytes.fromhex(k["kid"]), bytes.fromhex(k["public_key"]), k["state"]) for k in keys]


# --- phone ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadedKey:
    """A key as the phone stores it: the credential for the lock and the per-key secret K."""

    request_id: str
    request_version: int
    key_id: bytes
    lock_id: str
    user_id: str
    nbf: int
    exp: int
    permissions: int
    credential: bytes
    secret: bytes


@dataclass(frozen=True)
class SignedUpdate:
    """A signed revocation update for one lock (and its decommission update if retired)."""

    lock_id: str
    version: int
    update: bytes
    decommission: bytes | None = None


def _signed_update(r: dict[str, Any]) -> SignedUpdate:
    dec = r.get("decommission")
    return SignedUpdate(r["lock_id"], r["version"], bytes.fromhex(r["update"]),
                        bytes.fromhex(dec) if dec else None)


@dataclass(frozen=True)
class Sync:
    """What one download returns."""

    keys: list[DownloadedKey]
    revocations: list[SignedUpdate]
    time: int
    time_statement: bytes
    issuer_keys: list[tuple[bytes, bytes, str]]


def _device_key(device: Ed25519PrivateKey | bytes) -> Ed25519PrivateKey:
    return (
        device
        if isinstance(device, Ed25519PrivateKey)
        else Ed25519PrivateKey.from_private_bytes(device)
    )


class PhoneClient(_Base):
    """The phone's view: enrolled with its Ed25519 device key."""

    phone_id: str = ""
    user_id: str = ""
    _device: Ed25519PrivateKey | None = None
    _last_auth_ts: int = 0

    @classmethod
    def enroll(
        cls,
        base_url: str,
        code: str,
        device: Ed25519PrivateKey | bytes,
        *,
        http: httpx.Client | None = None,
    ) -> PhoneClient:
        """Enroll with a one-time code; the device key signs (code || device public)."""
        key = _device_key(device)
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        c = cls(base_url, http=http)
        out = c._request(
            "POST",
            "/v1/phone/enroll",
            auth=False,
            json={
                "code": code,
                "device_public": public.hex(),
                "signature": key.sign(enroll_message(code, public)).hex(),
            },
        )
        c.token, c.phone_id, c.user_id = out["access_token"], out["phone_id"], out["user_id"]
        c._device = key
        return c

    def refresh_token(
        self, device: Ed25519PrivateKey | bytes | None = None, *, now: int | None = None
    ) -> str:
        """Get a fresh phone token by signing the current time with the device key (each
        signed timestamp is accepted once: a reused one is 403 ``replayed-proof``)."""
        key = _device_key(device) if device is not None else self._device
        if key is None:
            raise ValueError("pass the device key")
        # each signed timestamp is accepted once: never reuse one, even within a second
        ts = max(int(time.time()), self._last_auth_ts + 1) if now is None else now
        self._last_auth_ts = max(self._last_auth_ts, ts)
        out = self._request(
            "POST",
            "/v1/phone/token",
            auth=False,
            json={
                "phone_id": self.phone_id,
                "timestamp": ts,
                "signature": key.sign(auth_message(self.phone_id, ts)).hex(),
            },
        )
        self.token = out["access_token"]
        return str(self.token)

    def sync(self) -> Sync:
        """Download current keys, revocation updates, a time statement and issuer keys."""
        out = self._request("GET", "/v1/phone/keys")
        return Sync(
            keys=[
                DownloadedKey(
                    k["request_id"],
                    k["request_version"],
                    bytes.fromhex(k["key_id"]),
                    k["lock_id"],
                    k["user_id"],
                    k["nbf"],
                    k["exp"],
                    k["permissions"],
                    bytes.fromhex(k["credential"]),
                    bytes.fromhex(k["secret"]),
                )
                for k in out["keys"]
            ],
            revocations=[
                _signed_update(r) for r in out["revocations"]
            ],
            time=out["time"],
            time_statement=bytes.fromhex(out["time_statement"]),
            issuer_keys=[
                (bytes.fromhex(k["kid"]), bytes.fromhex(k["public_key"]), k["state"])
                for k in out["issuer_keys"]
            ],
        )

    def revocations(self) -> list[SignedUpdate]:
        """Signed revocation updates for the locks this phone holds keys for."""
        out = self._request("GET", "/v1/phone/revocations")
        return [
            _signed_update(r) for r in out["revocations"]
        ]

    def time_statement(self) -> bytes:
        """A fresh signed time statement."""
        return bytes.fromhex(self._request("GET", "/v1/phone/time")["time_statement"])

    def upload_log(
        self,
        lock_id: str,
        records: list[bytes],
        prev_hash: bytes,
        head_seq: int,
        head_hash: bytes,
        lost: int,
        head_signature: bytes,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Upload a log fetched from a lock (the fields of its LOG reply)."""
        return self._request(
            "POST",
            "/v1/phone/logs",
            idempotency_key=idempotency_key,
            json={
                "lock_id": lock_id,
                "records": [r.hex() for r in records],
                "prev_hash": prev_hash.hex(),
                "head_seq": head_seq,
                "head_hash": head_hash.hex(),
                "lost": lost,
                "head_signature": head_signature.hex(),
            },
        )


def new_device_key() -> bytes:
    """A fresh Ed25519 device key seed (store it in the phone's keystore)."""
    return os.urandom(32)
