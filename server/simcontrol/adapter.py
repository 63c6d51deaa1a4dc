"""``SimControl``: the key server's interface to the operator's SIM control service.

The interface has the functions of the service terms that the lock lifecycle needs
(m2m-sim-control-terms 第3条): IMEI registration, activation, status, session monitoring,
data usage, suspension, resumption and cancellation. :class:`HttpSimControl` speaks the
provider's HTTP API with the operator's own contractor credentials (第10条: one contractor
ID and password per contractor). Every failure becomes a :class:`SimControlError` with a
specific code; a provider that does not answer is ``sim-provider-unavailable``, which can be
retried. Credentials are never logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from kagiya.server.config import Settings


class SimControlError(Exception):
    """A refused or failed SIM control call. ``code`` is one of ``sim-unauthorized``,
    ``sim-line-not-found``, ``sim-invalid-transition``, ``sim-provider-unavailable``,
    ``sim-provider-error``; ``retryable`` says whether trying again later can help."""

    def __init__(self, code: str, detail: str = "", *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.retryable = retryable


@dataclass(frozen=True)
class LineStatus:
    """状態取得: the line's status (stock, registered, active, suspended, cancelled)."""

    msisdn: str
    status: str
    imei: str | None
    plan: str


@dataclass(frozen=True)
class LineSession:
    """セッション監視: whether the line is attached now, and its last attach (unix s)."""

    msisdn: str
    attached: bool
    last_attach: int | None


class SimControl(Protocol):
    """What the lifecycle needs from a SIM control service."""

    def register_imei(self, msisdn: str, imei: str) -> LineStatus:
        """Bind the chip SIM's line to the device's IMEI."""
        ...

    def activate(self, msisdn: str) -> LineStatus:
        """Start using a registered line."""
        ...

    def status(self, msisdn: str) -> LineStatus:
        """The line's status."""
        ...

    def session(self, msisdn: str) -> LineSession:
        """The line's session (attached, last attach)."""
        ...

    def usage(self, msisdn: str) -> int:
        """Bytes used by the line."""
        ...

    def suspend(self, msisdn: str) -> LineStatus:
        """Stop the line's communication."""
        ...

    def resume(self, msisdn: str) -> LineStatus:
        """Restart a suspended line."""
        ...

    def cancel(self, msisdn: str) -> LineStatus:
        """Cancel the line (final)."""
        ...


_CODES = {401: "sim-unauthorized", 403: "sim-unauthorized", 404: "sim-line-not-found",
          409: "sim-invalid-transition"}


class HttpSimControl:
    """The provider's HTTP API (the emulator in :mod:`.emulator` speaks the same one)."""

    def __init__(self, base_url: str, contractor_id: str, password: str, *,
                 timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout,
                                  auth=(contractor_id, password), transport=transport)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            r = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise SimControlError("sim-provider-unavailable", type(exc).__name__,
                                  retryable=True) from None
        if r.status_code >= 500:
            raise SimControlError("sim-provider-unavailable", f"HTTP {r.status_code}",
                                  retryable=True)
        if r.status_code >= 400:
            code = _CODES.get(r.status_code, "sim-provider-error")
            try:
                detail = str(r.json().get("detail", {}).get("status", ""))
            except (ValueError, AttributeError):
                detail = ""
            raise SimControlError(code, detail)
        try:
            return r.json()
        except ValueError:
            raise SimControlError("sim-provider-error", "not JSON") from None

    @staticmethod
    def _status(d: Any) -> LineStatus:
        try:
            return LineStatus(str(d["msisdn"]), str(d["status"]), d.get("imei"),
                              str(d.get("plan", "")))
        except (KeyError, TypeError):
            raise SimControlError("sim-provider-error", "bad status") from None

    def register_imei(self, msisdn: str, imei: str) -> LineStatus:
        """チップ SIM IMEI 登録."""
        return self._status(self._call("POST", f"/v1/lines/{msisdn}/imei", {"imei": imei}))

    def activate(self, msisdn: str) -> LineStatus:
        """チップ SIM 利用開始登録."""
        return self._status(self._call("POST", f"/v1/lines/{msisdn}/activate"))

    def status(self, msisdn: str) -> LineStatus:
        """状態取得."""
        return self._status(self._call("GET", f"/v1/lines/{msisdn}"))

    def session(self, msisdn: str) -> LineSession:
        """セッション監視."""
        d = self._call("GET", f"/v1/lines/{msisdn}/session")
        try:
            return LineSession(str(d["msisdn"]), bool(d["attached"]), d.get("last_attach"))
        except (KeyError, TypeError):
            raise SimControlError("sim-provider-error", "bad session") from None

    def usage(self, msisdn: str) -> int:
        """通信量取得 (bytes)."""
        d = self._call("GET", f"/v1/lines/{msisdn}/usage")
        try:
            return int(d["bytes"])
        except (KeyError, TypeError, ValueError):
            raise SimControlError("sim-provider-error", "bad usage") from None

    def suspend(self, msisdn: str) -> LineStatus:
        """通信停止."""
        return self._status(self._call("POST", f"/v1/lines/{msisdn}/suspend"))

    def resume(self, msisdn: str) -> LineStatus:
        """通信再開."""
        return self._status(self._call("POST", f"/v1/lines/{msisdn}/resume"))

    def cancel(self, msisdn: str) -> LineStatus:
        """解約."""
        return self._status(self._call("POST", f"/v1/lines/{msisdn}/cancel"))


def sim_for_settings(settings: Settings) -> Callable[[str], SimControl | None]:
    """``operator_id -> SimControl | None`` from ``sim_contracts_file`` (one contractor
    ID and password per operator, 第10条)."""
    path = Path(settings.sim_contracts_file) if settings.sim_contracts_file else None

    def sim_for(operator_id: str) -> SimControl | None:
        # read at each use: credentials can be rotated without a restart
        try:
            table = json.loads(path.read_text()) if path is not None else {}
        except (OSError, ValueError):
            return None
        c = table.get(operator_id) if isinstance(table, dict) else None
        if c is None:
            return None
        return HttpSimControl(c["url"], c["contractor_id"], c["password"])

    return sim_for
