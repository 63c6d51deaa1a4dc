"""How many drivers a vehicle may have: its NOREL care plan (used-car lease terms, 補償内容
「適用人数」): basic (no care) and light up to 2, standard up to 5. A lock without a plan has
no cap. A driver is a user with an active, unexpired key request on the lock."""

from __future__ import annotations

from kagiya.server.models import ACTIVE, KeyRequest, Lock
from kagiya.server.problems import ApiError
from kagiya.server.services.context import Ctx
from sqlalchemy import func, select

DRIVER_CAP = {"basic": 2, "light": 2, "standard": 5}


def drivers(c: Ctx, lock: Lock) -> int:
    """Distinct users holding an active, unexpired key request on ``lock``."""
    n = c.s.scalar(select(func.count(func.distinct(KeyRequest.user_pk))).where(
        KeyRequest.lock_pk == lock.pk, KeyRequest.status == ACTIVE, KeyRequest.exp > c.now))
    return int(n or 0)


def check_driver_cap(c: Ctx, lock: Lock, user_pk: int) -> None:
    """409 ``driver-cap-reached`` when ``user_pk`` would be one driver too many for the
    vehicle's plan (a user who is a driver already may get more key requests)."""
    cap = DRIVER_CAP.get(lock.care_plan or "")
    if cap is None:
        return
    already = c.s.scalar(select(KeyRequest.id).where(
        KeyRequest.lock_pk == lock.pk, KeyRequest.user_pk == user_pk,
        KeyRequest.status == ACTIVE, KeyRequest.exp > c.now).limit(1))
    if already is None and drivers(c, lock) >= cap:
        raise ApiError(409, "driver-cap-reached",
                       f"the {lock.care_plan} plan of this vehicle allows {cap} drivers "
                       "and all are taken; cancel a driver's key request first",
                       extra={"cap": cap})
