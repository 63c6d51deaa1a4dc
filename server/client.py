"""A small typed HTTP client for the key server: operator, installer and phone APIs.

The phone app (``kagiya.phone``), the installer tools (``kagiya.tools``), the demo, the
benchmarks and the tests import this; ``kagiya.sdk`` does not depend on the server.
:class:`PhoneClient` is the one phone-side HTTP client: the phone app's server port
(``kagiya.phone.server_link``) only translates its errors into the app's.

Every mutating call sends an ``Idempotency-Key`` (a fresh UUID unless you pass one) and is
retried with the same key on a connection error or a 503, so a retry never creates a
duplicate. Errors raise
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kagiya.sdk.credential import credential_cnf
from kagiya.sdk.dpop import HEADER as DPOP_HEADER
from kagiya.sdk.dpop import make_proof
from kagiya.sdk.enrollment import auth_message, enroll_message
from kagiya.sdk.keywrap import new_wrapped_secret


class ApiProblem(Exception):
    """The server refused a call (RFC 9457 problem details)."""

    def __init__(self, status: int, code: str, detail: str, body: dict[str, Any]) -> None:
        self.fields = _offending_fields(body)
        where = f" ({', '.join(self.fields)})" if self.fields else ""
        super().__init__(f"{status} {code}: {detail}{where}")
        self.status = status
        self.code = code
        self.detail = detail
        self.body = body


def _offending_fields(body: dict[str, Any]) -> list[str]:
    """``body.partner_id: Extra inputs are not permitted`` for each schema violation of a
    422 ``invalid-request`` problem (its ``errors``)."""
    out = []
    for err in body.get("errors") or ():
        if isinstance(err, dict):
            loc = ".".join(str(p) for p in err.get("loc", ()))
            out.append(f"{loc}: {err.get('msg', '')}")
    return out


MAX_RETRY_AFTER_S = 30.0  # longer waits are the caller's decision: the problem is raised

Prover = Callable[[str, str, str, int | None], str]
"""Signs a DPoP proof (RFC 9449) with the device key: ``(method, url, token, now) -> header``
(``now`` None: the signer's own clock; else the server time to sign at)."""


def retry_after_s(resp: httpx.Response) -> float | None:
    """The response's ``Retry-After`` in seconds (RFC 9110 §10.2.3, delay-seconds form), or
    None when absent or not a number."""
    raw = resp.headers.get("retry-after", "").strip()
    return float(raw) if raw.isdigit() else None


class _Base:
    def __init__(
        self,
        base_url: str = "",
        *,
        token: str | None = None,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        max_retry_after_s: float = MAX_RETRY_AFTER_S,
    ) -> None:
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self.token = token
        self.retries = retries
        self.sleep = sleep
        self.max_retry_after_s = max_retry_after_s  # a longer Retry-After raises the 429
        self.last_status = 0  # HTTP status of the last answer

    def _reauthenticate(self) -> bool:
        """Get a fresh token after ``token-expired``; False when this client cannot."""
        return False

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
        mutating = method in ("POST", "PATCH", "DELETE", "PUT")
        if mutating and data is None:
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = self.retries if (mutating and data is None) or not mutating else 1
        reauthenticated = False
        attempt = 0
        while True:
            if auth and self.token:
                headers.update(self._auth_headers(method, path, self.token))  # per attempt
            try:
                resp = self.http.request(
                    method, path, json=json, params=clean, data=data, headers=headers
                )
            except httpx.TransportError:
                attempt += 1
                if attempt >= attempts:
                    raise
                self.sleep(0.1 * attempt)
                continue
            if (
                auth
                and resp.status_code == 401
                and not reauthenticated
                and _code(resp) == "token-expired"
                and self._reauthenticate()
            ):
                # refused at authentication, so nothing happened: same request, new token
                reauthenticated = True
                continue
            if resp.status_code in (429, 503) and attempt + 1 < attempts:
                wait = retry_after_s(resp)
                if resp.status_code == 429 and (wait is None or wait > self.max_retry_after_s):
                    break
                attempt += 1
                self.sleep(min(wait if wait is not None else 0.1 * attempt,
                               self.max_retry_after_s))
                continue
            break
        self.last_status = resp.status_code
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"detail": resp.text}
            if not isinstance(body, dict):
                body = {"detail": resp.text[:200]}
            raise ApiProblem(
                resp.status_code, str(body.get("code", "error")), str(body.get("detail", "")), body
            )
        try:
            return resp.json()
        except ValueError:
            raise _bad(resp.status_code, "the answer is not JSON") from None

    def _auth_headers(self, method: str, path: str, token: str) -> dict[str, str]:
        """The headers that authenticate one attempt of a request."""
        return {"Authorization": f"Bearer {token}"}

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


def _bad(status: int, detail: str) -> ApiProblem:
    """A success answer this client cannot use (not JSON, a field missing or mistyped)."""
    return ApiProblem(status, "bad-response", f"the key server's answer is unusable: {detail}", {})


def _code(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


# --- operator ---------------------------------------------------------------------------


class OperatorClient(_Base):
    """The operator server's view (OAuth2 client credentials).

    Made with :meth:`login`, it keeps working in a long-running backend: operator tokens
    last 900 s, and a call refused with 401 ``token-expired`` logs in again with the same
    credentials and is sent once more (same ``Idempotency-Key``). 429 and 503 are retried
    after the server's ``Retry-After`` (at most :data:`MAX_RETRY_AFTER_S`)."""

    _credentials: tuple[str, str] | None = None

    @classmethod
    def login(
        cls,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> OperatorClient:
        """Get a bearer token with the client credentials and return a ready client."""
        c = cls(base_url, http=http, sleep=sleep)
        c._credentials = (client_id, client_secret)
        c._login()
        return c

    def _login(self) -> None:
        assert self._credentials is not None
        client_id, client_secret = self._credentials
        tok = self._request(
            "POST",
            "/v1/oauth/token",
            auth=False,
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )
        self.token = tok["access_token"]

    def _reauthenticate(self) -> bool:
        if self._credentials is None:
            return False
        self._login()
        return True

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

    def my_page_invitation(self, user_id: str) -> dict[str, Any]:
        """A one-time My Page link for the user (``url``, ``expires_at``; docs/mypage.md).
        The link is on the address this client talks to: use ``http://localhost:PORT`` or
        the configured web origin, where passkeys work."""
        return self._request("POST", f"/v1/users/{user_id}/my-page-invitations")

    def invite_staff(self, name: str, role: str, partner_id: str | None = None) -> dict[str, Any]:
        """Invite a console staff member (``admin``, ``staff`` or ``partner`` with its
        ``partner_id``): a one-time link (``url``) valid 7 days (docs/console.md)."""
        body: dict[str, Any] = {"name": name, "role": role}
        if partner_id is not None:
            body["partner_id"] = partner_id
        return self._request("POST", "/v1/console/staff", json=body)

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

    def maintenance_authorisation(
        self, lock_id: str, nonce: bytes, scope: list[str] | None = None, ttl_s: int = 600
    ) -> dict[str, Any]:
        """A maintenance authorisation answering the lock's challenge ``nonce``
        (``POST /v1/install/locks/{lock_id}/maintenance``; ``authorisation`` is hex)."""
        return self._request(
            "POST",
            f"/v1/install/locks/{lock_id}/maintenance",
            json={"nonce": nonce.hex(), "scope": scope or ["repl"], "ttl_s": ttl_s},
        )

    def issuer_keys(self) -> list[tuple[bytes, bytes, str]]:
        """``(kid, public_key, state)`` of every issuer key to trust now."""
        keys = self._request("GET", "/v1/issuer-keys", auth=False)["keys"]
        return [(bytes.fromhex(k["kid"]), bytes.fromhex(k["public_key"]), k["state"]) for k in keys]


# --- phone ------------------------------------------------------------------------------


@dataclass
class DownloadedKey:
    """A key as the phone stores it: the credential for the lock and the per-key secret K
    the phone drew and wrapped itself (the server never had it). The phone app's stored key
    (``kagiya.phone.state.StoredKey``) is this plus what the phone learnt about it."""

    key_id: bytes
    lock_id: str
    user_id: str
    nbf: int
    exp: int
    permissions: int
    credential: bytes
    secret: bytes
    request_id: str = ""
    request_version: int = 0

    @classmethod
    def from_download(cls, k: dict[str, Any], secret: bytes, **extra: Any) -> Self:
        """One key of a :meth:`PhoneClient.download` answer (checked by it) with its K."""
        return cls(key_id=bytes.fromhex(k["key_id"]), lock_id=str(k["lock_id"]),
                   user_id=str(k["user_id"]), nbf=int(k["nbf"]), exp=int(k["exp"]),
                   permissions=int(k["permissions"]),
                   credential=bytes.fromhex(k["credential"]), secret=secret,
                   request_id=str(k.get("request_id", "")),
                   request_version=int(k.get("request_version", 0)), **extra)


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
    pending: list[str] = field(default_factory=list)  # request IDs still without a key


def check_download(body: Any) -> dict[str, Any]:
    """``body`` of ``GET``/``POST /v1/phone/keys`` with every field the phone stores checked
    for its type (a malformed answer is :class:`ApiProblem` ``bad-response``)."""
    try:
        for name in ("keys", "revocations", "issuer_keys", "pending"):
            if not isinstance(body.get(name, []), list):
                raise TypeError(f"{name} is not a list")
        int(body["time"]), bytes.fromhex(body["time_statement"])
        for p in body.get("pending", []):
            str(p["request_id"]), bytes.fromhex(p["lock_kex_public"])
        for k in body["keys"]:
            for name in ("key_id", "credential", "lock_kex_public"):
                bytes.fromhex(k[name])
            for name in ("nbf", "exp", "permissions"):
                int(k[name])
            str(k["lock_id"]), str(k["user_id"])
        for r in body["revocations"]:
            bytes.fromhex(r["update"]), int(r["version"]), str(r["lock_id"])
            if r.get("decommission"):
                bytes.fromhex(r["decommission"])
        for i in body.get("issuer_keys", []):
            bytes.fromhex(i["kid"]), bytes.fromhex(i["public_key"]), str(i["state"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad(200, f"download is malformed ({type(exc).__name__}: {exc})") from None
    out: dict[str, Any] = body
    return out


def _device_key(device: Ed25519PrivateKey | bytes) -> Ed25519PrivateKey:
    return (
        device
        if isinstance(device, Ed25519PrivateKey)
        else Ed25519PrivateKey.from_private_bytes(device)
    )


class PhoneClient(_Base):
    """The phone's view: enrolled with its Ed25519 device key. The one phone-side HTTP
    client: tests, benchmarks and the phone app (through ``kagiya.phone.server_link``).

    Every request made with the phone token carries a DPoP proof signed by the device key
    (:mod:`kagiya.sdk.dpop`), or by ``prove`` when the key lives elsewhere (the phone app's
    keystore). A proof refused for the phone's clock (``server_time`` in the problem) is
    signed again on the server's time; an expired token is renewed with the device key when
    this client holds it; 429/503 wait for ``Retry-After`` (at most ``max_retry_after_s``).

    :meth:`sync` is the whole download: the phone draws each key's secret K itself and sends
    only its wrap to the lock; ``key_secrets`` (wrap bytes → K) is where this client keeps
    them — persist it to keep using downloaded keys across instances. The single calls
    (:meth:`download`, :meth:`upload`, :meth:`fresh_time`, :meth:`enroll_signed`,
    :meth:`token_signed`) are for an app that keeps its state itself."""

    phone_id: str = ""
    user_id: str = ""
    _last_auth_ts: int = 0

    def __init__(self, *args: Any, device: Ed25519PrivateKey | bytes | None = None,
                 prove: Prover | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._device = _device_key(device) if device is not None else None
        self.prove = prove
        self.key_secrets: dict[bytes, bytes] = {}
        self.clock_offset = 0  # server time - local time, learnt from a refused proof

    def _auth_headers(self, method: str, path: str, token: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}"}
        url = str(self.http.base_url).rstrip("/") + path
        if self.prove is not None:
            at = int(time.time()) + self.clock_offset if self.clock_offset else None
            headers[DPOP_HEADER] = self.prove(method, url, token, at)
        elif self._device is not None:
            now = int(time.time()) + self.clock_offset
            headers[DPOP_HEADER] = make_proof(
                self._device, method, url, access_token=token, now=now
            )
        return headers

    def _learn_clock(self, exc: ApiProblem) -> bool:
        """True when ``exc`` refused a proof for the phone's clock and it is now corrected."""
        server_time = exc.body.get("server_time")
        clock_codes = ("invalid-dpop-proof", "stale-timestamp")
        if exc.code not in clock_codes or type(server_time) is not int:
            return False
        offset = server_time - int(time.time())
        if abs(offset - self.clock_offset) <= 60:  # not a clock problem: do not loop
            return False
        self.clock_offset = offset  # the phone's clock is off: sign again on server time
        return True

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return super()._request(method, path, **kwargs)
        except ApiProblem as exc:
            if self._learn_clock(exc):
                return super()._request(method, path, **kwargs)
            if exc.code != "token-expired" or self._device is None or not kwargs.get("auth", True):
                raise
            self.refresh_token()  # an expired token: the device key gets a new one
            return super()._request(method, path, **kwargs)

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
        c = cls(base_url, http=http, device=key)
        c.enroll_signed(code, public, key.sign(enroll_message(code, public)))
        return c

    def _took_token(self, out: Any) -> dict[str, Any]:
        """A token answer (``PhoneTokenOut``) checked and taken as this client's token."""
        try:
            phone_id, user_id = str(out["phone_id"]), str(out["user_id"])
            token, expires_in = str(out["access_token"]), int(out["expires_in"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(self.last_status, f"token answer lacks {exc}") from None
        self.token, self.phone_id, self.user_id = token, phone_id, user_id
        return {"phone_id": phone_id, "user_id": user_id, "access_token": token,
                "expires_in": expires_in}

    def enroll_signed(self, code: str, device_public: bytes, signature: bytes
                      ) -> dict[str, Any]:
        """``POST /v1/phone/enroll`` with a signature the caller made over
        :func:`kagiya.sdk.enrollment.enroll_message`; returns and keeps the token
        (``{phone_id, user_id, access_token, expires_in}``)."""
        return self._took_token(_Base._request(self, "POST", "/v1/phone/enroll", auth=False, json={
            "code": code, "device_public": device_public.hex(), "signature": signature.hex()}))

    def token_signed(self, phone_id: str, timestamp: int, signature: bytes) -> dict[str, Any]:
        """``POST /v1/phone/token`` with a signature the caller made over
        :func:`kagiya.sdk.enrollment.auth_message` (each timestamp is accepted once)."""
        return self._took_token(_Base._request(self, "POST", "/v1/phone/token", auth=False, json={
            "phone_id": phone_id, "timestamp": timestamp, "signature": signature.hex()}))

    def refresh_token(
        self, device: Ed25519PrivateKey | bytes | None = None, *, now: int | None = None
    ) -> str:
        """Get a fresh phone token by signing the current time with the device key (each
        signed timestamp is accepted once: a reused one is 403 ``replayed-proof``)."""
        key = _device_key(device) if device is not None else self._device
        if key is None:
            raise ValueError("pass the device key")
        for _attempt in range(2):
            # each signed timestamp is accepted once: never reuse one, even within a second
            ts = (
                max(int(time.time()) + self.clock_offset, self._last_auth_ts + 1)
                if now is None
                else now
            )
            self._last_auth_ts = max(self._last_auth_ts, ts)
            try:
                self.token_signed(self.phone_id, ts, key.sign(auth_message(self.phone_id, ts)))
            except ApiProblem as exc:
                if now is not None or not self._learn_clock(exc):
                    raise
                continue
            return str(self.token)
        raise ApiProblem(403, "stale-timestamp", "the phone's clock cannot be corrected", {})

    def download(self, wraps: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """``GET /v1/phone/keys`` (``POST`` with the phone's ``wraps``, ``[{request_id,
        cnf}]``): keys, pending requests, revocation updates, time statement, issuer keys,
        every field checked (:func:`check_download`)."""
        if wraps:
            return check_download(self._request("POST", "/v1/phone/keys",
                                                json={"wraps": wraps}))
        return check_download(self._request("GET", "/v1/phone/keys"))

    def _wraps(self, out: dict[str, Any]) -> list[dict[str, str]]:
        """Wraps of fresh secrets for every pending request and every key whose K this
        phone does not hold (the phone draws K; only the wrap leaves the phone)."""
        need = {p["request_id"]: p["lock_kex_public"] for p in out["pending"]}
        for k in out["keys"]:
            if credential_cnf(bytes.fromhex(k["credential"])) not in self.key_secrets:
                need[k["request_id"]] = k["lock_kex_public"]
        wraps = []
        for request_id, kex in need.items():
            secret, cnf = new_wrapped_secret(bytes.fromhex(kex))
            self.key_secrets[cnf] = secret  # kept before sending: the answer may be lost
            wraps.append({"request_id": request_id, "cnf": cnf.hex()})
        return wraps

    def sync(self) -> Sync:
        """Download current keys, revocation updates, a time statement and issuer keys.

        For each request without a usable key, draws a secret K, wraps it to the lock's
        X25519 key and sends the wrap (``POST /v1/phone/keys``); the keys answered carry the
        phone's own K (matched by their wrap)."""
        out = self.download()
        for _round in range(2):
            wraps = self._wraps(out)
            if not wraps:
                break
            out = self.download(wraps)
        keys = []
        for k in out["keys"]:
            secret = self.key_secrets.get(credential_cnf(bytes.fromhex(k["credential"])))
            if secret is not None:
                keys.append(DownloadedKey.from_download(k, secret))
        held = {credential_cnf(k.credential) for k in keys}
        for cnf in [c for c in self.key_secrets if c not in held]:
            del self.key_secrets[cnf]  # in place: callers may share the dict
        return Sync(
            keys=keys,
            revocations=[_signed_update(r) for r in out["revocations"]],
            time=out["time"],
            time_statement=bytes.fromhex(out["time_statement"]),
            issuer_keys=[
                (bytes.fromhex(k["kid"]), bytes.fromhex(k["public_key"]), k["state"])
                for k in out["issuer_keys"]
            ],
            pending=[p["request_id"] for p in out["pending"]],
        )

    def revocations(self) -> list[SignedUpdate]:
        """Signed revocation updates for the locks this phone holds keys for."""
        out = self._request("GET", "/v1/phone/revocations")
        return [_signed_update(r) for r in out["revocations"]]

    def time_statement(self) -> bytes:
        """A fresh signed time statement."""
        return bytes.fromhex(self._request("GET", "/v1/phone/time")["time_statement"])

    def fresh_time(self, lock_id: str, nonce: bytes) -> bytes:
        """``GET /v1/time?lock_id=&nonce=``: a fresh time statement for a lock that lost its
        time in a power cut (protocol §6; public, no token)."""
        out = self._request("GET", "/v1/time", auth=False,
                            params={"lock_id": lock_id, "nonce": nonce.hex()})
        try:
            return bytes.fromhex(out["time_statement"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(self.last_status, f"time statement is malformed ({exc})") from None

    def upload(self, payload: dict[str, Any], *, idempotency_key: str | None = None
               ) -> dict[str, Any]:
        """``POST /v1/phone/logs`` with a ``LogUploadIn`` body (hex fields); retrying with
        the same ``idempotency_key`` is harmless. Returns ``LogUploadOut``."""
        out: dict[str, Any] = self._request("POST", "/v1/phone/logs", json=payload,
                                            idempotency_key=idempotency_key)
        return out

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
        return self.upload({
            "lock_id": lock_id,
            "records": [r.hex() for r in records],
            "prev_hash": prev_hash.hex(),
            "head_seq": head_seq,
            "head_hash": head_hash.hex(),
            "lost": lost,
            "head_signature": head_signature.hex(),
        }, idempotency_key=idempotency_key)


def new_device_key() -> bytes:
    """A fresh Ed25519 device key seed (store it in the phone's keystore)."""
    return os.urandom(32)
