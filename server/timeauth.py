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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kagiya.sdk.keys import IssuerKey
from kagiya.sdk.signed import sign_time_statement
from kagiya.server.models import ServerState
from kagiya.server.prepared import Handle, Prepared, Tx, conn_of
from kagiya.server.problems import ApiError
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from kagiya.server.runtime import Runtime

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


@dataclass(frozen=True)
class Vouched:
    """A time this server checked it may sign, made only by :func:`vouch` (so a statement
    cannot be signed for a time that skipped the check); ``hwm`` is the high-water mark
    read at the check (None before the first statement)."""

    time: int
    hwm: int | None


_HWM = Prepared(select(ServerState.version).where(ServerState.name == STATE_NAME))
# the first mark: concurrent first writers must not collide (PostgreSQL: a unique violation
# is a 409 to a phone), so the insert does nothing on conflict and the raise below follows
_HWM_INSERT = {name: Prepared(mod.insert(ServerState).on_conflict_do_nothing(
    index_elements=[ServerState.name])) for name, mod in (("postgresql", postgresql),
                                                           ("sqlite", sqlite))}
_HWM_RAISE = Prepared(update(ServerState).where(
    ServerState.name == STATE_NAME, ServerState.version < bindparam("now")
).values(version=bindparam("now")))


def vouch(db: Handle, now: int, anchor: Anchor) -> Vouched:
    """Check (read only) that ``now`` is safe to sign (see the module doc); raises
    ClockFault otherwise. The caller records it with :func:`record` in a write."""
    anchor.check(now)
    hwm = _HWM.scalar(db)
    if hwm is not None and now < hwm - TOLERANCE_S:
        raise ClockFault(f"the server clock is {hwm - now} s behind the newest time it "
                         f"signed; fix the clock (or run `kagiya server admin "
                         f"reset-time-hwm` if that time was wrong)")
    return Vouched(now, hwm)


def record(db: Handle, t: Vouched) -> None:
    """Raise the persisted high-water mark to ``t`` (a write; nothing when it is there)."""
    if t.hwm is None:
        dialect = db.dialect if isinstance(db, Tx) else conn_of(db).dialect
        _HWM_INSERT[dialect.name].insert(db, [{"name": STATE_NAME, "version": t.time}])
        _HWM_RAISE.execute(db, {"now": t.time})  # if another process was first
    elif t.time > t.hwm:
        _HWM_RAISE.execute(db, {"now": t.time})


def signable_now(db: Handle, now: int, anchor: Anchor) -> Vouched:
    """:func:`vouch` and :func:`record` in one (write) transaction."""
    t = vouch(db, now, anchor)
    record(db, t)
    return t


def _api_error(e: ClockFault) -> ApiError:
    return ApiError(503, "clock-unreliable", str(e), headers={"Retry-After": "60"})


def vouch_or_503(db: Handle, rt: Runtime) -> Vouched:
    """:func:`vouch` for the runtime's current time; a fault is 503 ``clock-unreliable``."""
    try:
        return vouch(db, rt.now(), anchor_of(rt))
    except ClockFault as e:
        raise _api_error(e) from None


def signable_or_503(db: Handle, rt: Runtime) -> Vouched:
    """:func:`signable_now` for the runtime's current time; a fault is 503
    ``clock-unreliable`` (the server's fault, never the client's)."""
    try:
        return signable_now(db, rt.now(), anchor_of(rt))
    except ClockFault as e:
        raise _api_error(e) from None


def sign(signer: IssuerKey, t: Vouched, *, lock_id: str | None = None,
         nonce: bytes | None = None) -> bytes:
    """The time statement for ``t`` (protocol §6): the one place the server signs a time
    (a test fails if any other server module calls ``sign_time_statement``)."""
    return sign_time_statement(signer, t.time, lock_id=lock_id, nonce=nonce)


def reset(s: Session) -> int | None:
    """Forget the high-water mark (after a clock that ran ahead was corrected); returns it."""
    hwm = s.execute(select(ServerState.version).where(ServerState.name == STATE_NAME)
                    ).scalar_one_or_none()
    if hwm is not None:
        s.query(ServerState).filter(ServerState.name == STATE_NAME).delete()
    return hwm
