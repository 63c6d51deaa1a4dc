"""The key-server calls the installer makes, over the typed client ``kagiya.server.client``.

* ``GET /v1/issuer-keys`` (public): the trust anchors — the ``active`` and ``next`` issuer keys;
* ``GET /v1/time`` (when the server offers signed time statements to installers): §6;
* ``POST /v1/install/locks`` (installer or operator token): register a lock;
* ``POST /v1/install/locks/{id}/maintenance``: a maintenance authorisation (#18);
* ``GET``/``DELETE /v1/locks/{id}`` (operator token only): look at / replace a registration.

Failures become :class:`InstallError` with a hint; the bearer token is never printed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from kagiya.server.client import ApiProblem, InstallerClient, OperatorClient
from kagiya.tools.install.errors import InstallError

T = TypeVar("T")


class KeyServer:
    """The installer's view of the key server (one token: installer or operator)."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 10.0,
                 http: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http or httpx.Client(base_url=self.base_url, timeout=timeout)
        self.installer = InstallerClient(self.base_url, token=token, http=self._http)
        self.operator = OperatorClient(self.base_url, token=token, http=self._http)
        self.has_token = bool(token)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _call(self, doing: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except httpx.HTTPError as exc:
            raise InstallError(
                "server-unreachable", f"cannot reach the key server at {self.base_url}",
                "check the --server URL and the network connection, then run the same "
                "command again (finished steps are skipped)",
            ) from exc
        except ApiProblem as exc:
            raise self._fail(exc, doing) from exc

    @staticmethod
    def _fail(exc: ApiProblem, doing: str) -> InstallError:
        if exc.status in (401, 403):
            return InstallError(
                "server-auth", f"the key server refused the token while {doing} ({exc.code})",
                "ask the operator for a fresh installer token and pass it with --operator-token",
            )
        if exc.status >= 500:
            return InstallError("server-unreachable",
                                f"the key server failed while {doing} (HTTP {exc.status})",
                                "try again later; tell the operator if it persists")
        return InstallError("server-refused",
                            f"the key server refused {doing}: {exc.detail} ({exc.code})",
                            "check the values given on the command line")

    def trust_anchors(self) -> list[str]:
        """Hex Ed25519 public keys to install: the active issuer key first, then ``next``."""
        keys = self._call("listing the issuer keys", self.installer.issuer_keys)
        order = {"active": 0, "next": 1}
        chosen = sorted((k for k in keys if k[2] in order), key=lambda k: order[k[2]])
        if not chosen:
            raise InstallError("server-refused", "the key server lists no active issuer key",
                               "ask the operator to check the key server")
        return [k[1].hex() for k in chosen[:4]]

    def maintenance_authorisation(self, lock_id: str, nonce: bytes, scope: list[str],
                                  ttl_s: int) -> bytes:
        """A maintenance authorisation for this operator's ``lock_id`` answering the lock's
        challenge ``nonce`` (``POST /v1/install/locks/{id}/maintenance``)."""
        try:
            out = self._call("asking for a maintenance authorisation",
                             lambda: self.installer.maintenance_authorisation(
                                 lock_id, nonce, scope, ttl_s))
        except InstallError as err:
            if "(not-found)" in err.message:
                raise InstallError(
                    "server-refused",
                    f"the key server has no lock {lock_id} for this token's operator",
                    "check that this is the right vehicle and that the token is from its "
                    "operator") from err
            raise
        return bytes.fromhex(str(out["authorisation"]))

    def time_statement(self) -> bytes | None:
        """A signed time statement, or None when the server offers none to installers."""
        resp = self._call("fetching the time", lambda: self._http.get(
            "/v1/time", headers=self._auth()))
        if resp.status_code != 200:
            return None
        try:
            return bytes.fromhex(resp.json()["time_statement"])
        except (ValueError, KeyError, TypeError):
            return None

    def _auth(self) -> dict[str, str]:
        tok = self.installer.token
        return {"Authorization": f"Bearer {tok}"} if tok else {}

    def get_lock(self, lock_id: str) -> dict[str, Any] | None:
        """The registration of ``lock_id`` if this token may read it (operator), else None."""
        try:
            return self._call("reading the lock", lambda: self.operator.get_lock(lock_id))
        except InstallError as err:
            if err.code in ("server-refused", "server-auth"):
                return None
            raise

    def register_lock(self, lock_id: str, sign_public: str, kex_public: str,
                      vehicle_label: str | None) -> tuple[int, dict[str, Any]]:
        """Register the lock; returns (201, lock) or (409, problem) when the ID exists."""
        try:
            body = self.installer.register_lock(lock_id, bytes.fromhex(sign_public),
                                                bytes.fromhex(kex_public),
                                                vehicle_label=vehicle_label)
        except ApiProblem as exc:
            if exc.status == 409:
                return 409, exc.body
            raise self._fail(exc, f"registering lock {lock_id}") from exc
        except httpx.HTTPError as exc:
            raise InstallError(
                "server-unreachable", f"cannot reach the key server at {self.base_url}",
                "check the --server URL and the network connection, then run the same "
                "command again (finished steps are skipped)",
            ) from exc
        return 201, body

    def replace_identity(self, lock_id: str, sign_public: str,
                         kex_public: str) -> dict[str, Any]:
        """Replace the identity keys of this operator's ``lock_id`` after a re-provisioning
        (``PUT /v1/locks/{id}/identity``): key requests are kept and re-issued to the new
        key; an installer token of the same operator may do it."""
        try:
            return self.installer.replace_lock_identity(
                lock_id, bytes.fromhex(sign_public), bytes.fromhex(kex_public))
        except ApiProblem as exc:
            if exc.status == 404:
                raise InstallError(
                    "lock-taken",
                    f"lock ID {lock_id} is registered to another operator",
                    "choose another --lock-id") from exc
            raise self._fail(exc, f"replacing the identity of {lock_id}") from exc
        except httpx.HTTPError as exc:
            raise InstallError(
                "server-unreachable", f"cannot reach the key server at {self.base_url}",
                "check the --server URL and the network connection, then run the same "
                "command again (finished steps are skipped)",
            ) from exc
