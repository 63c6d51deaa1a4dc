"""Fixed-window rate limits kept in the database, so they hold across server processes."""

from __future__ import annotations

from kagiya.server.models import RateCounter
from kagiya.server.problems import ApiError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

WINDOW_S = 60


def _refuse(now: int) -> ApiError:
    retry = WINDOW_S - now % WINDOW_S
    return ApiError(
        429,
        "rate-limited",
        f"too many attempts; retry in {retry} s",
        headers={"Retry-After": str(retry)},
    )


def count(session: Session, bucket: str, now: int) -> None:
    """Count one event in ``bucket`` (e.g. a failed login), refusing nothing."""
    window = now - now % WINDOW_S
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(RateCounter).values(bucket=bucket[:120], window=window, count=1)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[RateCounter.bucket, RateCounter.window],
            set_={"count": RateCounter.count + 1},
        )
    )


def check(session: Session, bucket: str, limit: int, now: int) -> None:
    """429 ``rate-limited`` when ``bucket`` already holds ``limit`` events this window
    (counts nothing: :func:`count` does, e.g. only for failed attempts)."""
    window = now - now % WINDOW_S
    got = session.scalar(
        select(RateCounter.count).where(
            RateCounter.bucket == bucket[:120], RateCounter.window == window
        )
    )
    if got is not None and got >= limit:
        raise _refuse(now)


def hit(session: Session, bucket: str, limit: int, now: int) -> None:
    """Count one attempt in ``bucket``; raise 429 ``rate-limited`` beyond ``limit`` per minute.

    A refused attempt rolls back with the caller's transaction, so it is not counted; the
    counter stays at the limit, so attempts are refused until the window ends.
    """
    count(session, bucket, now)
    check(session, bucket, limit + 1, now)
