"""SIM lines of connected locks (docs/uplink.md, "SIM line lifecycle").

* :func:`register`: the lock's chip SIM - its IMEI is bound to the line and the line
  activated at the operator's SIM control service, with the operator's own contractor
  credentials (``sim_contracts_file``);
* :func:`read`: the line's status, session (attached, last attach), data usage and the
  newest of the operator's own connection records.
"""

from __future__ import annotations

import json
from typing import Any

from kagiya.server.models import SimLine, SimRecord
from kagiya.server.problems import ApiError
from kagiya.server.services.context import Ctx
from kagiya.server.services.lookup import get_lock
from kagiya.server.simcontrol.adapter import SimControlError, sim_for_settings
from kagiya.server.simcontrol.lifecycle import register_line
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session


class SimLineIn(BaseModel):
    """A chip SIM built into the lock: its line number and the device's IMEI."""

    msisdn: str = Field(pattern=r"^[0-9]{10,15}$")
    imei: str = Field(pattern=r"^[0-9]{15}$")


class SimRecordOut(BaseModel):
    """One of the operator's own connection records."""

    at: int
    kind: str
    detail: dict[str, Any]


class SimLineOut(BaseModel):
    """A lock's SIM line as the key server last saw it."""

    lock_id: str
    msisdn: str
    imei: str
    status: str
    idle_since: int | None
    attached: bool
    last_attach: int | None
    data_bytes: int
    records: list[SimRecordOut]


def _problem(exc: SimControlError) -> ApiError:
    if exc.retryable:
        return ApiError(503, exc.code, "the SIM control service did not answer; try again")
    return ApiError(404 if exc.code == "sim-line-not-found" else 409, exc.code,
                    f"the SIM control service refused: {exc.code}")


def _out(s: Session, lock_id: str, line: SimLine) -> SimLineOut:
    records = s.scalars(select(SimRecord).where(SimRecord.msisdn == line.msisdn,
                                                SimRecord.operator_id == line.operator_id)
                        .order_by(SimRecord.id.desc()).limit(20))
    return SimLineOut(
        lock_id=lock_id, msisdn=line.msisdn, imei=line.imei, status=line.status,
        idle_since=line.idle_since, attached=line.attached, last_attach=line.last_attach,
        data_bytes=line.data_bytes,
        records=[SimRecordOut(at=r.at, kind=r.kind, detail=json.loads(r.detail or "{}"))
                 for r in records])


def register(c: Ctx, lock_id: str, body: SimLineIn) -> SimLineOut:
    """Register the lock's SIM: IMEI bound to the line, line activated, audited."""
    lk = get_lock(c, lock_id, lock=True)
    old = c.s.get(SimLine, lk.pk)
    if old is not None and old.status != "cancelled":
        raise ApiError(409, "sim-already-registered", "this lock already has a SIM line")
    if old is not None:  # a revived lock ID: its cancelled line (final) makes way; the
        c.s.delete(old)  # connection records of that line stay (sim_records)
        c.s.flush()
    if c.s.scalar(select(SimLine.lock_pk).where(SimLine.msisdn == body.msisdn)) is not None:
        raise ApiError(409, "sim-line-in-use", "this line belongs to another lock")
    sim = sim_for_settings(c.settings)(lk.operator_id)
    if sim is None:
        raise ApiError(409, "sim-not-configured", "no SIM control contract is configured "
                       "for this operator (KAGIYA_SIM_CONTRACTS_FILE)")
    try:
        line = register_line(c.s, sim, lk, body.msisdn, body.imei, c.now, c.p.actor)
    except SimControlError as exc:
        raise _problem(exc) from None
    c.s.flush()
    return _out(c.s, lk.lock_id, line)


def read(c: Ctx, lock_id: str) -> SimLineOut:
    """The lock's SIM line, or 404 when it has none."""
    lk = get_lock(c, lock_id)
    line = c.s.get(SimLine, lk.pk)
    if line is None:
        raise ApiError(404, "not-found", "this lock has no SIM line")
    return _out(c.s, lk.lock_id, line)
