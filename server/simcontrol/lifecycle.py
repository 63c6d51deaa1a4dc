"""The SIM line follows the lease (docs/uplink.md, "SIM line lifecycle").

* :func:`register_line`: a lock registered with a SIM gets its IMEI bound to the line, and
  the line is activated.
* :func:`reconcile_line`, run periodically by every server process (each line is claimed
  with ``FOR UPDATE SKIP LOCKED``):
  - an active line whose lock has had no active key request for ``idle_s`` is suspended
    **only once the lock has acknowledged its latest revocation update** in a signed
    heartbeat (``lock_uplink.acked_version >= locks.revocation_version``), so a suspended
    line never strands a revocation. Until then the suspension waits, and the wait is
    recorded once;
  - a suspended line is resumed as soon as a key request of the lock has started;
  - the session (attached, last attach) and the data usage are observed and recorded.
* :func:`cancel_line`: the line is cancelled through the adapter when the lock is deleted
  (at once) or decommissioned (once its signed heartbeat shows it applied, or after
  ``uplink_retire_grace_s``, see :mod:`kagiya.server.uplink.retire`). A provider that does
  not answer, refuses the contractor's credentials or has no contract configured leaves
  the line ``cancel-pending``, and every lifecycle pass tries again; the line is never
  recorded as cancelled before the provider cancelled it.
* A suspended line of a decommissioned lock is resumed, so the decommission update (and
  the revocation of every key) reaches the lock: a suspended line never strands them.

Every transition is audited and written to ``sim_records``, the operator's own connection
records: the provider discloses no communication records (第31条).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from kagiya.sdk.i18n import N_
from kagiya.server import audit
from kagiya.server.models import (
    ACTIVE,
    RETIRED,
    KeyRequest,
    Lock,
    LockUplink,
    SimLine,
    SimRecord,
)
from kagiya.server.simcontrol.adapter import SimControl, SimControlError
from sqlalchemy import select
from sqlalchemy.orm import Session

log = logging.getLogger("kagiya.server.simcontrol")
SimFor = Callable[[str], SimControl | None]  # operator ID -> its SIM control (or None)
#: to be cancelled; the provider has not confirmed yet (shown in the console: translated)
CANCEL_PENDING = N_("cancel-pending")
#: the lines a lifecycle pass looks at
LIVE = ("active", "suspended", CANCEL_PENDING)


def record(s: Session, line: SimLine, now: int, kind: str, **detail: Any) -> None:
    """Append one connection record of ``line``."""
    s.add(SimRecord(operator_id=line.operator_id, msisdn=line.msisdn, at=now, kind=kind,
                    detail=json.dumps(detail, sort_keys=True)))


def _transition(s: Session, line: SimLine, now: int, actor: str, to: str,
                **detail: Any) -> None:
    line.status = to
    line.changed_at = now
    record(s, line, now, f"line.{to}", **detail)
    audit.record(s, now, actor, f"sim.{to}", operator_id=line.operator_id,
                 target=line.msisdn, detail=detail)


def register_line(s: Session, sim: SimControl, lock: Lock, msisdn: str, imei: str,
                  now: int, actor: str) -> SimLine:
    """Bind ``imei`` to the line ``msisdn`` and activate it for ``lock``."""
    st = sim.register_imei(msisdn, imei)
    if st.status != "active":
        st = sim.activate(msisdn)
    line = SimLine(lock_pk=lock.pk, operator_id=lock.operator_id, msisdn=msisdn, imei=imei,
                   status=st.status, changed_at=now, attached=False, data_bytes=0)
    s.add(line)
    record(s, line, now, "line.active", lock_id=lock.lock_id, imei=imei)
    audit.record(s, now, actor, "sim.active", operator_id=lock.operator_id, target=msisdn,
                 detail={"lock_id": lock.lock_id})
    return line


def _has_started_request(s: Session, lock_pk: int, now: int) -> bool:
    return s.scalar(
        select(KeyRequest.id).where(KeyRequest.lock_pk == lock_pk,
                                    KeyRequest.status == ACTIVE, KeyRequest.nbf <= now,
                                    KeyRequest.exp > now).limit(1)
    ) is not None


def _acknowledged(s: Session, lock: Lock) -> bool:
    up = s.get(LockUplink, lock.pk)
    return up is not None and up.acked_version >= lock.revocation_version


def reconcile_line(s: Session, sim: SimControl, line: SimLine, now: int,
                   idle_s: int) -> str | None:
    """Bring one line in step with its lock's lease; returns the transition made."""
    lock = s.get(Lock, line.lock_pk)
    if lock is None or line.status not in LIVE:
        return None
    if line.status == CANCEL_PENDING:
        return "cancel" if cancel_line(s, sim, lock.pk, now, "lifecycle", "retry") else None
    if lock.status == RETIRED:  # never suspended again: the decommission must arrive
        if line.status == "suspended":
            st = sim.resume(line.msisdn)
            _transition(s, line, now, "lifecycle", st.status,
                        reason="decommission pending")
            return "resume"
        return None
    leased = _has_started_request(s, lock.pk, now)
    if line.status == "suspended":
        if leased:
            st = sim.resume(line.msisdn)
            _transition(s, line, now, "lifecycle", st.status, reason="key request started")
            return "resume"
        return None
    try:
        ses = sim.session(line.msisdn)
        used = sim.usage(line.msisdn)
    except SimControlError as exc:
        if exc.retryable:
            raise
    else:
        if ses.last_attach != line.last_attach or used != line.data_bytes:
            record(s, line, now, "observed", attached=ses.attached,
                   last_attach=ses.last_attach, bytes=used)
        line.attached, line.last_attach, line.data_bytes = ses.attached, ses.last_attach, used
    if leased:
        line.idle_since = None
        return None
    if line.idle_since is None:
        line.idle_since = now
    if now - line.idle_since < idle_s:
        return None
    if not _acknowledged(s, lock):
        if line.changed_at <= line.idle_since:
            record(s, line, now, "suspend.deferred",
                   revocation_version=lock.revocation_version)
            line.changed_at = now  # recorded once per idle period
        return None
    st = sim.suspend(line.msisdn)
    _transition(s, line, now, "lifecycle", st.status, reason="off lease",
                revocation_version=lock.revocation_version)
    return "suspend"


def reconcile(sessions: Any, sim_for: SimFor, now: int, idle_s: int) -> dict[str, int]:
    """One pass over every active or suspended line, each in its own transaction with the
    line claimed (``FOR UPDATE SKIP LOCKED``: one process per line at a time)."""
    from kagiya.server.db import transaction

    out: dict[str, int] = {}
    with transaction(sessions) as s:
        pks = list(s.scalars(select(SimLine.lock_pk).where(SimLine.status.in_(LIVE))))
    for pk in pks:
        try:
            with transaction(sessions) as s:
                line = s.scalars(select(SimLine).where(SimLine.lock_pk == pk)
                                 .with_for_update(skip_locked=True)).first()
                if line is None:
                    continue
                sim = sim_for(line.operator_id)
                if sim is None:
                    continue
                done = reconcile_line(s, sim, line, now, idle_s)
                if done:
                    out[done] = out.get(done, 0) + 1
        except SimControlError as exc:  # the provider is down: next pass
            out["errors"] = out.get("errors", 0) + 1
            log.warning("sim lifecycle: %s", exc.code)
    return out


def cancel_line(s: Session, sim: SimControl | None, lock_pk: int, now: int,
                actor: str, reason: str = "decommissioned") -> bool:
    """Cancel the lock's line through ``sim`` (decommission, deletion); True once the
    provider confirmed it (a line it reports cancelled already counts). Otherwise - no
    contract configured, the provider down or refusing - the line becomes
    ``cancel-pending`` (audited once) and the lifecycle pass tries again."""
    line = s.get(SimLine, lock_pk)
    if line is None or line.status == "cancelled":
        return False
    try:
        if sim is None:
            raise SimControlError("sim-not-configured")
        try:
            sim.cancel(line.msisdn)
        except SimControlError as exc:  # refused: only a line cancelled already is done
            if exc.code != "sim-invalid-transition" or \
                    sim.status(line.msisdn).status != "cancelled":
                raise
    except SimControlError as exc:
        log.warning("sim lifecycle: cancel deferred (%s)", exc.code)
        if line.status != CANCEL_PENDING:
            _transition(s, line, now, actor, CANCEL_PENDING, reason=reason, error=exc.code)
        return False
    _transition(s, line, now, actor, "cancelled", reason=reason)
    return True


class LifecycleThread:
    """Every server process: each ``sim_interval_s`` the retirement sweep
    (:func:`kagiya.server.uplink.retire.sweep`) then :func:`reconcile` (a daemon thread)."""

    def __init__(self, rt: Any) -> None:
        import threading

        from kagiya.server.simcontrol.adapter import sim_for_settings

        self._rt = rt
        self._sim_for = sim_for_settings(rt.settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kagiya-sim", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def run_once(self) -> dict[str, int]:
        """One pass: retire what is past its grace, then bring every line in step."""
        from kagiya.server.uplink import retire

        st, now = self._rt.settings, self._rt.now()
        retired = retire.sweep(self._rt.sessions, st, self._sim_for, now)
        out = reconcile(self._rt.sessions, self._sim_for, now, st.sim_idle_s)
        if retired:
            out["retired"] = retired
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self._rt.settings.sim_interval_s):
            try:
                self.run_once()
            except Exception as exc:  # a busy database: next pass
                log.warning("sim lifecycle failed: %s", type(exc).__name__)

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
