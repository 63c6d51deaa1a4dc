"""Fixed-window rate limits kept in the database, so they hold across server processes."""

from __future__ import annotations

from kagiya.server.models import RateCounter
from kagiya.server.problems import ApiError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

WINDOW_S = 60


def hit(session: Session, bucket: str, limit: int, now: int) -> None:
    """Count one attempt in ``bucket``; raise 429 ``rate-limited`` beyond ``limit`` per minute.

    A refused attempt rolls back with the caller's transaction, so it is not counted; the
    counter stays at the limit, so attempts are refused until the window ends.
    """
    window = now - now % WINDOW_S
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(RateCounter).values(bucket=bucket[:120], window=window, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[RateCounter.bucket, RateCounter.window],
        set_={"count": RateCounter.count + 1},
    )
    session.execute(stmt)
    count = session.scalar(
        select(RateCounter.count).where(
            RateCounter.bucket == bucket[:120], RateCounter.window == window
        )
    )
    if count is not None and count > limit:
        retry = WINDOW_S - now % WINDOW_S
        raise ApiError(
            429,
            "rate-limited",
            f"too many attempts; retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )
