"""Engines and sessions for SQLite (WAL, the zero-setup default) and PostgreSQL.

SQLite: WAL journal, ``synchronous=FULL`` (an acknowledged commit survives a crash),
foreign keys on, a busy timeout, and every transaction opened with ``BEGIN IMMEDIATE`` so
concurrent writers queue instead of failing with "database is locked" on lock upgrade.
PostgreSQL: a plain pool (no pre-ping); row locks (``SELECT … FOR UPDATE``) serialise the few
read-then-write paths, so any number of server processes may share one database.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

# SQLite admits one writer at a time and its busy handler waits by sleeping in growing steps
# (up to 100 ms), which makes queued writers slow and latency erratic. Threads of one process
# therefore queue on this lock instead; other processes still meet the busy timeout.
_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def is_sqlite(url: str) -> bool:
    """True for a ``sqlite`` URL."""
    return url.startswith("sqlite")


def normalise_url(url: str) -> str:
    """Map ``postgresql://`` / ``postgres://`` to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """Create the engine for ``url`` with the store-specific settings above."""
    url = normalise_url(url)
    if is_sqlite(url):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        _WRITE_LOCKS[engine] = threading.Lock()
        return engine
    # no pre-ping (a round trip per request): a connection broken by a database restart
    # raises OperationalError (503, the client retries) and SQLAlchemy drops the pool
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (responses are built after it)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception.

    On SQLite, threads of this process take turns (see ``_WRITE_LOCKS``) for the whole
    transaction, as ``BEGIN IMMEDIATE`` would make them anyway.
    """
    bind = factory.kw.get("bind")
    lock = _WRITE_LOCKS.get(bind) if isinstance(bind, Engine) else None
    with lock if lock is not None else nullcontext(), factory() as session, session.begin():
        yield session
