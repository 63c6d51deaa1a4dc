"""Engines and sessions for SQLite (WAL, the zero-setup default) and PostgreSQL.

SQLite: WAL journal, ``synchronous=FULL`` (an acknowledged commit survives a crash),
foreign keys on, a busy timeout, and every transaction opened with ``BEGIN IMMEDIATE`` so
concurrent writers queue instead of failing with "database is locked" on lock upgrade.
PostgreSQL: a plain pool (no pre-ping); row locks (``SELECT … FOR UPDATE``) serialise the few
read-then-write paths, so any number of server processes may share one database.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

Db = Session | Connection  # what the hot-path helpers accept


class WriterQueue:
    """Turns for SQLite writers: threads of this process queue on a lock, then the holder
    takes an exclusive ``flock`` on ``<db>.write-lock`` so processes queue in the kernel.

    SQLite admits one writer at a time and its busy handler waits by sleeping in growing
    steps (up to 100 ms), which made queued writers slow and tail latency erratic; a
    blocking lock hands over at once. The busy timeout stays as the last resort (a writer
    that does not use this queue, such as the ``sqlite3`` shell).
    """

    def __init__(self, db_path: str) -> None:
        self._thread_lock = threading.Lock()
        self._path = db_path + ".write-lock" if db_path and db_path != ":memory:" else ""
        self._fd: int | None = None
        self._owner: int | None = None  # the thread holding the turn

    def acquire(self, *, wait: bool) -> bool:
        """Take the turn; with ``wait=False`` only if it is free now (returns False if not).

        A thread that already holds the turn (a transaction opened inside another) gets a
        ``RuntimeError`` at once: waiting for itself would hang the worker forever.
        """
        if self._owner == threading.get_ident():
            raise RuntimeError("nested SQLite write transaction in one thread: it would wait "
                               "for itself; pass the open session down instead")
        if not self._thread_lock.acquire(blocking=wait):
            return False
        self._owner = threading.get_ident()
        if not self._path:
            return True
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._owner = None
            self._thread_lock.release()
            return False
        except BaseException:
            self._owner = None
            self._thread_lock.release()
            raise
        return True

    def release(self) -> None:
        """Give the turn back."""
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._owner = None
            self._thread_lock.release()

    def __enter__(self) -> None:
        self.acquire(wait=True)

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_WRITE_QUEUES: weakref.WeakKeyDictionary[Engine, WriterQueue] = weakref.WeakKeyDictionary()


def writer_queue(engine: Engine) -> WriterQueue | None:
    """The SQLite writer queue of ``engine`` (None for PostgreSQL)."""
    return _WRITE_QUEUES.get(engine)


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

        _WRITE_QUEUES[engine] = WriterQueue(path)
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

    On SQLite, writers take turns (:class:`WriterQueue`) for the whole transaction, as
    ``BEGIN IMMEDIATE`` would make them anyway.
    """
    bind = factory.kw.get("bind")
    queue = writer_queue(bind) if isinstance(bind, Engine) else None
    with queue if queue is not None else nullcontext(), factory() as session, session.begin():
        yield session


def conn_of(db: Db) -> Connection:
    """The connection of a session's current transaction, or the connection itself."""
    return db.connection() if isinstance(db, Session) else db
