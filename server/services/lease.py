"""Lease-term presets of the used-car lease plan: the 1-year plan runs 360 days and the
2-year plan 710 days, counted from the delivery day (納車日を含む) in Japan's time zone.
A key request for a lease starts at 00:00 of the delivery day and ends after the last day."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from kagiya.sdk.i18n import user_zone

LEASE_DAYS = (360, 710)


def lease_window(delivery: date, days: int, tz: str | None = None) -> tuple[int, int]:
    """``(nbf, exp)`` of a ``days``-day lease whose first day is ``delivery`` in the user's
    zone (``tz``, else ``$KAGIYA_TZ``, else JST)."""
    if days not in LEASE_DAYS:
        raise ValueError(f"a lease runs {' or '.join(map(str, LEASE_DAYS))} days")
    start = datetime.combine(delivery, time(0), tzinfo=user_zone(tz))
    return int(start.timestamp()), int((start + timedelta(days=days)).timestamp())


def day_start(day: date, after: int = 0, tz: str | None = None) -> int:
    """Unix time of 00:00 ``after`` days after ``day`` in the user's zone (``after=1``: the
    end of ``day``)."""
    start = datetime.combine(day + timedelta(days=after), time(0), tzinfo=user_zone(tz))
    return int(start.timestamp())
