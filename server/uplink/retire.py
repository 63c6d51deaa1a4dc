"""A decommissioned connected lock (docs/uplink.md, "Decommission over the uplink").

At decommission (``services.locks.decommission``) the server orders the publication of the
lock's decommission update to its retained ``down/decommission`` topic, next to the
revocation update of every key (the retirement's generation floor). The broker account and
the SIM line are kept until the lock proves it applied the decommission: a signed
heartbeat with the ``DECOMMISSIONED`` state bit. Only then does :func:`on_heartbeat`
delete the broker account and cancel the line, so a cancelled line never strands the
decommission (a cancelled line cannot be resumed; a suspended one is resumed for it by the
lifecycle pass). A lock that never comes online again loses both after
``uplink_retire_grace_s`` (:func:`sweep`, every lifecycle pass).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kagiya.sdk.protocol import LockState
from kagiya.server import audit
from kagiya.server.config import Settings
from kagiya.server.models import RETIRED, Lock, LockUplink, SimLine
from kagiya.server.simcontrol.adapter import SimControl
from kagiya.server.simcontrol.lifecycle import LIVE, cancel_line
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

log = logging.getLogger("kagiya.uplink")

#: operator_id -> the operator's SIM control adapter (or None: no contract configured)
SimFor = Callable[[str], SimControl | None]


def _retire(s: Session, settings: Settings, sim_for: SimFor, lock: Lock, now: int,
            actor: str, *, acknowledged: bool) -> None:
    from kagiya.server.services.uplink import drop_account

    cancelled = cancel_line(s, sim_for(lock.operator_id), lock.pk, now, actor,
                            "decommissioned" if acknowledged else "decommission unacknowledged")
    drop_account(s, settings, lock.pk, lock.lock_id)
    audit.record(s, now, actor, "uplink.decommissioned", operator_id=lock.operator_id,
                 target=lock.lock_id,
                 detail={"line_cancelled": cancelled, "acknowledged": acknowledged})


def on_heartbeat(s: Session, settings: Settings, sim_for: SimFor, lock: Lock,
                 st: LockUplink, now: int) -> bool:
    """After a verified heartbeat: if ``lock`` is retired and the heartbeat shows the
    decommission applied, cancel its SIM line (a provider that does not answer leaves it
    ``cancel-pending`` for the lifecycle pass) and delete its broker account; True then."""
    if lock.status != RETIRED or not st.state & LockState.DECOMMISSIONED:
        return False
    _retire(s, settings, sim_for, lock, now, "uplink", acknowledged=True)
    return True


def sweep(sessions: Any, settings: Settings, sim_for: SimFor, now: int) -> int:
    """Retired locks that still have a broker account or a live SIM line
    ``uplink_retire_grace_s`` after their retirement (they never acknowledged): cancel the
    line, delete the account; each lock in its own transaction, claimed with ``FOR UPDATE
    SKIP LOCKED``. Returns how many were retired."""
    from kagiya.server.db import transaction

    cutoff = now - settings.uplink_retire_grace_s
    has_uplink = select(LockUplink.lock_pk).where(LockUplink.lock_pk == Lock.pk).exists()
    has_line = select(SimLine.lock_pk).where(SimLine.lock_pk == Lock.pk,
                                             SimLine.status.in_(LIVE)).exists()
    due = (Lock.status == RETIRED, Lock.retired_at <= cutoff, or_(has_uplink, has_line))
    with transaction(sessions) as s:
        pks = list(s.scalars(select(Lock.pk).where(*due)))
    done = 0
    for pk in pks:
        with transaction(sessions) as s:
            lock = s.scalars(select(Lock).where(Lock.pk == pk, *due)
                             .with_for_update(skip_locked=True)).first()
            if lock is None:
                continue
            _retire(s, settings, sim_for, lock, now, "lifecycle", acknowledged=False)
            done += 1
    return done
