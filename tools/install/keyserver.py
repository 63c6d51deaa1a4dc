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
                 http: httpx.Client | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._progress = progress
        # every call has a timeout; each attempt is announced (``progress``) before it is sent,
        # so a slow or hung server is never silence
        self._http = http or httpx.Client(base_url=self.base_url, timeout=timeout,
                                          event_hooks={"request": [self._announce]})
        self.installer = InstallerClient(self.base_url, token=token, http=self._http)
        self.operator = OperatorClient(self.base_url, token=token, http=self._http)
        self.has_token = bool(token)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _announce(self, request: httpx.Request) -> None:
        if self._progress is not None:
            self._progress(f"key server: {request.method} {request.url.path} "
                           f"(timeout {self.timeout:g} s)")

    def health(self) -> None:
        """``GET /v1/health``: the server answers (else ``server-unreachable``)."""
        resp = self._call("checking that it answers", lambda: self._http.get("/v1/health"))
        if resp.status_code != 200:
            raise InstallError("server-unreachable",
                               f"the key server at {self.base_url} is not healthy "
                               f"(HTTP {resp.status_code})",
                               "try again later; tell the operator if it persists")

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

    def operator_id(self) -> str:
        """The operator of the token (what the lock is provisioned for)."""
        return self._call("reading the token's operator", self.installer.operator_id)

    def challenge(self) -> str:
        """A one-time registration challenge (hex) for the board to sign."""
        out = self._call("asking for a registration challenge",
                         self.installer.registration_challenge)
        return str(out["challenge"])

    def _unreachable(self) -> InstallError:
        return InstallError(
            "server-unreachable", f"cannot reach the key server at {self.base_url}",
            "check the --server URL and the network connection, then run the same "
            "command again (finished steps are skipped)",
        )

    def register_lock(self, proof: dict[str, Any], vehicle_label: str | None
                      ) -> tuple[int, dict[str, Any]]:
        """Register the lock with the board's ``proof`` (``registration_proof`` output);
        returns (201, lock), (200, lock) when this identity is already registered, or
        (409, problem) when this operator has the lock ID with another identity (the
        problem carries its ``vehicle_label`` and ``lock_key_id``)."""
        lock_id = str(proof["lock_id"])
        try:
            resp = self.installer.register_lock(
                lock_id, bytes.fromhex(proof["sign_public"]), bytes.fromhex(proof["kex_public"]),
                challenge=proof["challenge"], proof=bytes.fromhex(proof["proof"]),
                vehicle_label=vehicle_label)
        except ApiProblem as exc:
            if exc.status == 409 and exc.code == "lock-registered":
                return 409, exc.body
            raise self._fail(exc, f"registering lock {lock_id}") from exc
        except httpx.HTTPError as exc:
            raise self._unreachable() from exc
        return self.installer.last_status, resp

    def replace_identity(self, proof: dict[str, Any]) -> dict[str, Any]:
        """Give this operator's lock ID the board's new identity (``PUT
        /v1/locks/{id}/identity`` with the board's proof): key requests are kept and
        re-issued to the new key. An installer token cannot do it for a lock in service."""
        lock_id = str(proof["lock_id"])
        try:
            return self.installer.replace_lock_identity(
                lock_id, bytes.fromhex(proof["sign_public"]), bytes.fromhex(proof["kex_public"]),
                challenge=proof["challenge"], proof=bytes.fromhex(proof["proof"]))
        except ApiProblem as exc:
            if exc.code == "lock-in-service":
                raise InstallError(
                    "server-refused",
                    f"lock {lock_id} is in service: an installer token cannot replace its "
                    "identity", "ask the operator to replace it (operator token) or to end "
                    "its key requests first") from exc
            raise self._fail(exc, f"replacing the identity of {lock_id}") from exc
        except httpx.HTTPError as exc:
            raise self._unreachable() from exc
