"""The key server's phone API over HTTPS/JSON (docs/server.md), as a :class:`ServerPort`.

Written directly on ``httpx`` against the documented endpoints so an integrator sees every
request a phone makes: ``POST /v1/phone/enroll``, ``POST /v1/phone/token``,
``GET /v1/phone/keys``, ``POST /v1/phone/logs``. Network failures, timeouts and 5xx are
:class:`Offline` (retry later); 401 is :class:`TokenRejected`; any other refusal is
:class:`ServerRefused` with the problem+json ``code`` (RFC 9457). A 429 asking for a short
pause (``Retry-After`` ≤ 5 s, RFC 9110 §10.2.3) is retried a few times, as a phone should.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from kagiya.phone.ports import (
    Enrolled,
    Offline,
    Prover,
    ServerRefused,
    SyncBundle,
    TokenRejected,
)

DEFAULT_TIMEOUT = 10.0
RATE_LIMIT_RETRIES = 3
MAX_RETRY_AFTER_S = 5.0


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds to wait on a 429 when the server asks for a short pause, else None."""
    try:
        wait = float(resp.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return wait if 0 <= wait <= MAX_RETRY_AFTER_S else None


def _bad(status: int, detail: str) -> ServerRefused:
    return ServerRefused(status, "bad-response", f"the key server's answer is unusable: {detail}")


class HttpServerLink:
    """A :class:`~kagiya.phone.ports.ServerPort` over HTTP."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _call(self, method: str, path: str, *, token: str | None = None,
              json: Any = None, headers: dict[str, str] | None = None,
              params: dict[str, str] | None = None,
              prove: Prover | None = None) -> Any:
        try:
            return self._call_once(method, path, token=token, json=json, headers=headers,
                                   params=params, prove=prove)
        except TokenRejected as exc:
            # a proof refused for the phone's clock: sign once more at the server's time
            if exc.code != "invalid-dpop-proof" or exc.server_time is None or prove is None:
                raise
            return self._call_once(method, path, token=token, json=json, headers=headers,
                                   params=params, prove=prove, at=exc.server_time)

    def _call_once(self, method: str, path: str, *, token: str | None, json: Any,
                   headers: dict[str, str] | None, prove: Prover | None,
                   params: dict[str, str] | None = None, at: int | None = None) -> Any:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            if token and prove is not None:  # a proof is single-use: one per attempt
                hdrs["DPoP"] = prove(method, self.base_url + path, token, at)
            try:
                resp = self._client.request(method, path, json=json, headers=hdrs,
                                            params=params)
            except httpx.HTTPError as exc:
                raise Offline(f"{self.base_url} unreachable ({type(exc).__name__})") from exc
            wait = _retry_after(resp)
            if resp.status_code != 429 or wait is None or attempt == RATE_LIMIT_RETRIES:
                break
            time.sleep(wait)
        if resp.status_code >= 500:
            raise Offline(f"{self.base_url} answered {resp.status_code}")
        if resp.status_code >= 400:
            server_time = None
            try:
                body = resp.json()
                code, detail = str(body.get("code", "error")), str(body.get("detail", ""))
                got = body.get("server_time")
                server_time = got if type(got) is int else None
            except (ValueError, AttributeError):
                code, detail = "error", resp.text[:200]
            if resp.status_code == 401:
                rejected = TokenRejected(resp.status_code, code, detail)
                rejected.server_time = server_time
                raise rejected
            raise ServerRefused(resp.status_code, code, detail)
        try:
            return resp.json()
        except ValueError:
            raise _bad(resp.status_code, "the answer is not JSON") from None

    @staticmethod
    def _enrolled(body: dict[str, Any]) -> Enrolled:
        try:
            return Enrolled(str(body["phone_id"]), str(body["user_id"]),
                            str(body["access_token"]), int(body["expires_in"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(200, f"token answer lacks {exc}") from None

    def enroll(self, code: str, device_public: bytes, signature: bytes) -> Enrolled:
        """``POST /v1/phone/enroll``."""
        body = {"code": code, "device_public": device_public.hex(), "signature": signature.hex()}
        return self._enrolled(self._call("POST", "/v1/phone/enroll", json=body))

    def phone_token(self, phone_id: str, timestamp: int, signature: bytes) -> Enrolled:
        """``POST /v1/phone/token``."""
        body = {"phone_id": phone_id, "timestamp": timestamp, "signature": signature.hex()}
        return self._enrolled(self._call("POST", "/v1/phone/token", json=body))

    def sync(self, token: str, prove: Prover,
             wraps: list[dict[str, str]] | None = None) -> SyncBundle:
        """``GET /v1/phone/keys`` (``POST`` with the phone's ``wraps``): keys, pending
        requests, revocation updates, time statement, issuer keys."""
        if wraps:
            body = self._call("POST", "/v1/phone/keys", token=token, json={"wraps": wraps},
                              prove=prove)
        else:
            body = self._call("GET", "/v1/phone/keys", token=token, prove=prove)
        try:
            bundle = SyncBundle(
                keys=[dict(k) for k in body["keys"]],
                revocations=[dict(r) for r in body["revocations"]],
                time=int(body["time"]),
                time_statement=bytes.fromhex(body["time_statement"]),
                issuer_keys=[dict(k) for k in body.get("issuer_keys", [])],
                pending=[dict(p) for p in body.get("pending", [])],
            )
            for p in bundle.pending:
                str(p["request_id"]), bytes.fromhex(p["lock_kex_public"])
            for k in bundle.keys:  # every field the phone stores, with its type
                for name in ("key_id", "credential", "lock_kex_public"):
                    bytes.fromhex(k[name])
                for name in ("nbf", "exp", "permissions"):
                    int(k[name])
                str(k["lock_id"]), str(k["user_id"])
            for r in bundle.revocations:
                bytes.fromhex(r["update"]), int(r["version"]), str(r["lock_id"])
            for i in bundle.issuer_keys:
                bytes.fromhex(i["kid"]), bytes.fromhex(i["public_key"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _bad(200, f"download is malformed ({type(exc).__name__}: {exc})") from None
        return bundle

    def fresh_time(self, lock_id: str, nonce: bytes) -> bytes:
        """``GET /v1/time?lock_id=&nonce=``: a fresh time statement for a lock that lost its
        time in a power cut (protocol §6; public, no token)."""
        body = self._call("GET", "/v1/time", params={"lock_id": lock_id, "nonce": nonce.hex()})
        try:
            return bytes.fromhex(body["time_statement"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(200, f"time statement is malformed ({exc})") from None

    def upload_log(self, token: str, payload: dict[str, Any], prove: Prover,
                   idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/phone/logs`` (idempotent with the outbox item's name as key)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        out: dict[str, Any] = self._call("POST", "/v1/phone/logs", token=token, json=payload,
                                         headers=headers, prove=prove)
        return out
