"""A decommissioned connected lock (docs/uplink.md, "Decommission over the uplink").

At decommission (``services.locks.decommission``) the server orders the publication of the
lock's decommission update to its retained ``down/decommission`` topic, next to the
revocation update of every key (the retirement's generation floor). The broker account and
the SIM line are kept until the lock proves it applied the decommission: a signed
heartbeat with the ``DECOMMISSIONED`` state bit. Only then does :func:`on_heartbeat`
delete the broker account and cancel the line, so a cancelled line never strands the
decommission (a cancelled line cannot be resumed). A lock that never comes online again
keeps both until the operator deletes the lock or its uplink.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kagiya.sdk.protocol import LockState
from kagiya.server import audit
from kagiya.server.config import Settings
from kagiya.server.models import RETIRED, Lock, LockUplink
from kagiya.server.simcontrol.adapter import SimControl, SimControlError
from kagiya.server.simcontrol.lifecycle import cancel_line
from sqlalchemy.orm import Session

log = logging.getLogger("kagiya.uplink")

#: operator_id -> the operator's SIM control adapter (or None: no contract configured)
SimFor = Callable[[str], SimControl | None]


def on_heartbeat(s: Session, settings: Settings, sim_for: SimFor, lock: Lock,
                 st: LockUplink, now: int) -> bool:
    """After a verified heartbeat: if ``lock`` is retired and the heartbeat shows the
    decommission applied, cancel its SIM line and delete its broker account; True then."""
    if lock.status != RETIRED or not st.state & LockState.DECOMMISSIONED:
        return False
    from kagiya.server.services.uplink import drop_account

    try:
        cancelled = cancel_line(s, sim_for(lock.operator_id), lock.pk, now, "uplink")
    except SimControlError as exc:
        log.warning("uplink: SIM cancel for a decommissioned lock failed (%s)", exc.code)
        if exc.retryable:  # the provider is down: the next heartbeat tries again
            return False
        cancelled = False  # refused for good (e.g. cancelled at the provider already)
    drop_account(s, settings, lock.pk, lock.lock_id)
    audit.record(s, now, "uplink", "uplink.decommissioned", operator_id=lock.operator_id,
                 target=lock.lock_id, detail={"line_cancelled": cancelled})
    return True
