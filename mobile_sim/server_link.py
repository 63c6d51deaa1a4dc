"""The key server's phone API (docs/server.md) as the app's :class:`ServerPort`.

Every HTTP call goes through the one phone-side client, :class:`kagiya.server.client.
PhoneClient` (``POST /v1/phone/enroll``, ``POST /v1/phone/token``, ``GET``/``POST
/v1/phone/keys``, ``POST /v1/phone/logs``, ``GET /v1/time``): its retries with the same
``Idempotency-Key``, its ``Retry-After`` handling (a 429 or 503 asking for at most
:data:`MAX_RETRY_AFTER_S` is waited out; RFC 9110 §10.2.3), its DPoP proofs re-signed on the
server's time when the phone's clock is off, and its checks of every answer. This adapter
only binds the app's token and proof signer to each call and translates the outcome into
the app's terms: network failures, timeouts and 5xx are :class:`Offline` (retry later);
401 is :class:`TokenRejected`; any other refusal, and an unusable answer
(``bad-response``), is :class:`ServerRefused` with the problem+json ``code`` (RFC 9457).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from kagiya.server.client import ApiProblem, PhoneClient

DEFAULT_TIMEOUT = 10.0
MAX_RETRY_AFTER_S = 5.0  # a phone waits out a short pause only; longer is ServerRefused 429


class HttpServerLink:
    """A :class:`~kagiya.phone.ports.ServerPort` over :class:`PhoneClient`."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = client or httpx.Client(base_url=self.base_url, timeout=timeout)
        self._sleep = sleep  # how a Retry-After pause is waited out
        self._clock_offset = 0  # server time - phone time, learnt from a refused proof

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    @contextmanager
    def _phone(self, token: str | None = None,
               prove: Prover | None = None) -> Iterator[PhoneClient]:
        """A :class:`PhoneClient` on this link's connections for one call, its outcome in
        the app's terms."""
        api = PhoneClient(self.base_url, http=self._http, token=token, prove=prove,
                          sleep=self._sleep, max_retry_after_s=MAX_RETRY_AFTER_S)
        api.clock_offset = self._clock_offset
        try:
            yield api
        except httpx.HTTPError as exc:
            raise Offline(f"{self.base_url} unreachable ({type(exc).__name__})") from exc
        except ApiProblem as exc:
            if exc.status >= 500:
                raise Offline(f"{self.base_url} answered {exc.status}") from exc
            if exc.status == 401:
                rejected = TokenRejected(exc.status, exc.code, exc.detail)
                got = exc.body.get("server_time")
                rejected.server_time = got if type(got) is int else None
                raise rejected from exc
            raise ServerRefused(exc.status, exc.code, exc.detail) from exc
        finally:
            self._clock_offset = api.clock_offset

    @staticmethod
    def _enrolled(doc: dict[str, Any]) -> Enrolled:
        return Enrolled(doc["phone_id"], doc["user_id"], doc["access_token"], doc["expires_in"])

    def enroll(self, code: str, device_public: bytes, signature: bytes) -> Enrolled:
        """``POST /v1/phone/enroll``."""
        with self._phone() as api:
            return self._enrolled(api.enroll_signed(code, device_public, signature))

    def phone_token(self, phone_id: str, timestamp: int, signature: bytes) -> Enrolled:
        """``POST /v1/phone/token``."""
        with self._phone() as api:
            return self._enrolled(api.token_signed(phone_id, timestamp, signature))

    def sync(self, token: str, prove: Prover,
             wraps: list[dict[str, str]] | None = None) -> SyncBundle:
        """``GET /v1/phone/keys`` (``POST`` with the phone's ``wraps``): keys, pending
        requests, revocation updates, time statement, issuer keys."""
        with self._phone(token, prove) as api:
            body = api.download(wraps)
        return SyncBundle(
            keys=[dict(k) for k in body["keys"]],
            revocations=[dict(r) for r in body["revocations"]],
            time=int(body["time"]),
            time_statement=bytes.fromhex(body["time_statement"]),
            issuer_keys=[dict(k) for k in body.get("issuer_keys", [])],
            pending=[dict(p) for p in body.get("pending", [])],
        )

    def fresh_time(self, lock_id: str, nonce: bytes) -> bytes:
        """``GET /v1/time?lock_id=&nonce=``: a fresh time statement for a lock that lost its
        time in a power cut (protocol §6; public, no token)."""
        with self._phone() as api:
            return api.fresh_time(lock_id, nonce)

    def upload_log(self, token: str, payload: dict[str, Any], prove: Prover,
                   idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/phone/logs`` (idempotent with the outbox item's name as key)."""
        with self._phone(token, prove) as api:
            return api.upload(payload, idempotency_key=idempotency_key)
