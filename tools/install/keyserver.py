"""The key-server calls the installer makes (HTTP API of docs/server.md).

* ``GET /v1/issuer-keys`` (public): the trust anchors — the ``active`` and ``next`` issuer keys;
* ``GET /v1/time`` (public, when the server offers it): a signed time statement (§6);
* ``POST /v1/install/locks`` (installer or operator token): register a lock;
* ``GET``/``DELETE /v1/locks/{id}`` (operator token): look at / remove a registration.

Failures become :class:`InstallError` with a hint; the bearer token is never printed.
"""

from __future__ import annotations

from typing import Any

import httpx

from kagiya.tools.install.errors import InstallError


class KeyServer:
    """A small synchronous client for the installer's key-server calls."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout,
                                  transport=transport)
        self.has_token = bool(token)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise InstallError(
                "server-unreachable", f"cannot reach the key server at {self.base_url}",
                "check the --server URL and the network connection, then run the same "
                "command again (finished steps are skipped)",
            ) from exc

    @staticmethod
    def _problem(resp: httpx.Response) -> tuple[str, str]:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        return str(body.get("code", "")), str(body.get("detail", resp.reason_phrase))

    def _fail(self, resp: httpx.Response, doing: str) -> InstallError:
        code, detail = self._problem(resp)
        if resp.status_code in (401, 403):
            return InstallError(
                "server-auth", f"the key server refused the token while {doing} ({detail})",
                "ask the operator for a fresh installer token and pass it with --operator-token",
            )
        if resp.status_code >= 500:
            return InstallError("server-unreachable",
                                f"the key server failed while {doing} (HTTP {resp.status_code})",
                                "try again later; tell the operator if it persists")
        return InstallError("server-refused",
                            f"the key server refused {doing}: {detail} ({code or resp.status_code})",
                            "check the values given on the command line")

    def trust_anchors(self) -> list[str]:
        """Hex Ed25519 public keys to install: the active issuer key first, then ``next``."""
        resp = self._request("GET", "/v1/issuer-keys")
        if resp.status_code != 200:
            raise self._fail(resp, "listing the issuer keys")
        keys = resp.json().get("keys", [])
        order = {"active": 0, "next": 1}
        chosen = sorted((k for k in keys if k.get("state") in order),
                        key=lambda k: order[k["state"]])
        if not chosen:
            raise InstallError("server-refused", "the key server lists no active issuer key",
                               "ask the operator to check the key server")
        return [str(k["public_key"]) for k in chosen[:4]]

    def time_statement(self) -> bytes | None:
        """A signed time statement, or None when the server does not offer one to installers."""
        for path in ("/v1/time", "/v1/phone/time"):
            resp = self._request("GET", path)
            if resp.status_code == 200:
                return bytes.fromhex(resp.json()["time_statement"])
        return None

    def get_lock(self, lock_id: str) -> dict[str, Any] | None:
        """The registration of ``lock_id`` visible to this token, or None."""
        resp = self._request("GET", f"/v1/locks/{lock_id}")
        if resp.status_code == 200:
            data = resp.json()
            return data if isinstance(data, dict) else None
        return None

    def register_lock(self, lock_id: str, sign_public: str, kex_public: str,
                      vehicle_label: str | None) -> tuple[int, dict[str, Any]]:
        """POST the lock; returns (HTTP status, body): 201 created, 409 the ID exists."""
        body: dict[str, Any] = {"lock_id": lock_id, "sign_public": sign_public,
                                "kex_public": kex_public}
        if vehicle_label:
            body["vehicle_label"] = vehicle_label
        resp = self._request("POST", "/v1/install/locks", json=body)
        if resp.status_code in (201, 409):
            return resp.status_code, resp.json()
        raise self._fail(resp, f"registering lock {lock_id}")

    def delete_lock(self, lock_id: str) -> None:
        """Remove a registration of this operator (needs an operator token)."""
        resp = self._request("DELETE", f"/v1/locks/{lock_id}")
        if resp.status_code not in (200, 204, 404):
            raise self._fail(resp, f"removing the old registration of {lock_id}")
