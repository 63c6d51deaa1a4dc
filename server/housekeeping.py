"""Housekeeping: drop the rows that no longer matter, so the database does not grow with time
alone.

What goes (all by age; nothing an operator, phone or lock can still use):

- issued keys that expired more than a day ago (a download never hands them out again, and a
  lock refuses them anyway);
- revocation entries whose key has expired (locks drop expired entries themselves);
- bearer tokens that expired more than a day ago;
- enrollment codes past their expiry (used or not) by more than a day;
- idempotency records older than ``idempotency_ttl_s`` (a day: a retry after that is a new
  request, docs/server.md "Errors");
- rate counters of windows that have passed, and used re-authentication proofs that fell
  out of the accepted clock window.

Kept: users, partners, locks, key requests, phones, usage logs and the audit log — the
operator's records, removed only through the API or when its contract ends.

:func:`purge` runs in every server process every ``housekeeping_interval_s`` (10 minutes;
0 turns it off) as a background thread, and as ``kagiya server admin purge`` for cron. The
same thread then runs the withdrawal at contract end (:mod:`kagiya.server.web.contract_end`,
also ``kagiya server admin contract-ends``). Each
table is purged in its own short transaction; running it from several processes at once is
harmless (a row deleted by one is simply not found by the other).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kagiya.server import dpop
from kagiya.server.db import transaction
from kagiya.server.enrollment import AUTH_SKEW_S
from kagiya.server.models import (
    DpopProof,
    EnrollmentCode,
    Idempotency,
    IssuedKey,
    PhoneAuthProof,
    RateCounter,
    RegistrationChallenge,
    Revocation,
    Token,
)
from kagiya.server.ratelimit import WINDOW_S
from kagiya.server.runtime import Runtime
from kagiya.server.web import contract_end
from sqlalchemy import ColumnElement, delete, update

log = logging.getLogger("kagiya.server")
GRACE_S = 86400  # expired rows are kept a day (clock skew, support questions)


def _rules(rt: Runtime, now: int) -> list[tuple[str, Any, ColumnElement[bool]]]:
    return [
        ("issued_keys", IssuedKey, IssuedKey.exp <= now - GRACE_S),
        ("revocations", Revocation, Revocation.exp <= now),
        ("tokens", Token, Token.expires_at <= now - GRACE_S),
        ("enrollment_codes", EnrollmentCode, EnrollmentCode.expires_at <= now - GRACE_S),
        ("idempotency", Idempotency, Idempotency.created_at <= now - rt.settings.idempotency_ttl_s),
        ("rate_counters", RateCounter, RateCounter.window < now - 2 * WINDOW_S),
        ("phone_auth_proofs", PhoneAuthProof, PhoneAuthProof.ts < now - 2 * AUTH_SKEW_S),
        ("dpop_proofs", DpopProof, DpopProof.used_at < now - dpop.EXPIRY_S),
        ("registration_challenges", RegistrationChallenge,
         RegistrationChallenge.expires_at <= now),
    ]


def purge(rt: Runtime, now: int | None = None) -> dict[str, int]:
    """Delete what no longer matters (above); returns the rows deleted per table."""
    now = rt.now() if now is None else now
    out: dict[str, int] = {}
    for name, model, expired in _rules(rt, now):
        with transaction(rt.sessions) as s:
            result: Any = s.execute(delete(model).where(expired))
            out[name] = int(result.rowcount or 0)
    with transaction(rt.sessions) as s:  # shown secrets past their replay window
        result = s.execute(
            update(Idempotency)
            .where(Idempotency.secret_until <= now, Idempotency.secret_sealed.is_not(None))
            .values(secret_sealed=None)
        )
        out["idempotency_secrets"] = int(result.rowcount or 0)
    if any(out.values()):
        log.info("housekeeping: %s", " ".join(f"{k}={v}" for k, v in out.items() if v))
    return out


class Housekeeper:
    """A daemon thread running :func:`purge` every ``interval_s`` until :meth:`stop`."""

    def __init__(self, rt: Runtime, interval_s: float) -> None:
        self._rt = rt
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kagiya-housekeeping", daemon=True)

    def start(self) -> None:
        """Start the thread (the first purge runs one interval after start)."""
        if self._interval > 0:
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                purge(self._rt)
                contract_end.run(self._rt)  # withdrawal at contract end (第12条1項)
            except Exception as exc:  # a busy or restarting database: try again next time
                log.warning("housekeeping failed: %s", type(exc).__name__)

    def stop(self) -> None:
        """Stop the thread (waits for a purge in progress)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
