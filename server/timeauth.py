"""The key server's time authority: it signs only its own, sane, current time.

A lock trusts a time statement from its issuer (protocol §6); a fresh one may even move its
clock backwards. So one wrong statement is an attack on every lock (v1: one far-future
statement made every key ``EXPIRED`` forever). Before anything signs a time, this module
checks the server's own clock:

* **monotonic across restarts**: the newest signed time is kept in ``server_state``
  (``time_hwm``, shared by every process); a clock more than ``TOLERANCE_S`` behind it is a
  fault (the host clock went back, or a restored backup);
* **no jump while running**: each process remembers its first reading of the wall clock
  with ``time.monotonic()``; when the wall clock has moved more than ``TOLERANCE_S`` away
  from the monotonic clock since then, it jumped (an NTP step, a manual change), and
  nothing is signed until the process is restarted on a clock the operator checked.

A refusal is ``ClockFault`` (HTTP 503 ``clock-unreliable``: the server's fault, never the
client's). ``kagiya server admin reset-time-hwm`` clears the high-water mark after a clock
that ran ahead was corrected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from kagiya.server.models import ServerState

if TYPE_CHECKING:
    from kagiya.server.runtime import Runtime
from sqlalchemy import select, update
from sqlalchemy.orm import Session

TOLERANCE_S = 120
STATE_NAME = "time_hwm"


class ClockFault(Exception):
    """The server's clock cannot be trusted to sign a time statement."""


class Anchor:
    """One process's first (wall, monotonic) reading; detects wall-clock jumps."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._first: tuple[int, float] | None = None
        self._lock = threading.Lock()

    def check(self, now: int) -> None:
        """Raise ClockFault if ``now`` drifted from the monotonic clock since the first
        reading by more than the tolerance."""
        mono = self._monotonic()
        with self._lock:
            if self._first is None:
                self._first = (now, mono)
                return
            wall0, mono0 = self._first
        drift = (now - wall0) - (mono - mono0)
        if abs(drift) > TOLERANCE_S:
            raise ClockFault(f"the server clock jumped by {drift:+.0f} s since this process "
                             f"started; restart it once the clock is right")


def anchor_of(rt: Runtime) -> Anchor:
    """The process's Anchor (kept on the Runtime, on its settings' monotonic clock)."""
    anchor: Anchor | None = getattr(rt, "_time_anchor", None)
    if anchor is None:
        anchor = Anchor(rt.settings.monotonic)
        rt._time_anchor = anchor
    return anchor


def signable_now(s: Session, now: int, anchor: Anchor) -> int:
    """``now`` if it is safe to sign (see the module doc), after raising the persisted
    high-water mark to it; raises ClockFault otherwise."""
    anchor.check(now)
    hwm = s.execute(select(ServerState.version).where(ServerState.name == STATE_NAME)
                    ).scalar_one_or_none()
    if hwm is None:
        s.add(ServerState(name=STATE_NAME, version=now))
        return now
    if now < hwm - TOLERANCE_S:
        raise ClockFault(f"the server clock is {hwm - now} s behind the newest time it "
                         f"signed; fix the clock (or run `kagiya server admin "
                         f"reset-time-hwm` if that time was wrong)")
    if now > hwm:
        s.execute(update(ServerState).where(ServerState.name == STATE_NAME,
                                            ServerState.version < now).values(version=now))
    return now


def reset(s: Session) -> int | None:
    """Forget the high-water mark (after a clock that ran ahead was corrected); returns it."""
    hwm = s.execute(select(ServerState.version).where(ServerState.name == STATE_NAME)
                    ).scalar_one_or_none()
    if hwm is not None:
        s.query(ServerState).filter(ServerState.name == STATE_NAME).delete()
    return hwm
