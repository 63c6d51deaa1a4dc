"""Prepared statements for the hot path: a Core statement compiled once per dialect and run
on the driver's cursor inside a :class:`Tx`.

On the key download SQLAlchemy's per-execution work (cache key, compiled-cache lookup,
execution context, result set-up, pool events) cost more CPU than the database itself
(docs/performance.md, "Key server"). A :class:`Prepared` keeps the statement written in Core
— one definition, rendered by the dialect — and skips that work when it runs in a
:class:`Tx` from :func:`tx`. Given a ``Session`` or ``Connection`` instead it is an ordinary
SQLAlchemy execution, so the same statement serves every path.

What a prepared statement may use: result values as the driver returns them (integers,
strings, bytes; the hot queries select no booleans), named bind parameters, no expanding
``IN`` lists and no post-compile parameters (refused when compiled). Driver errors are raised
as SQLAlchemy's exception classes (``IntegrityError``, ``OperationalError`` …) with the
parameters hidden, exactly as the ordinary path raises them.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeAlias

from kagiya.server.db import conn_of, writer_queue
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import Compiled


class Tx:
    """One transaction on a pooled driver connection (see :func:`tx`)."""

    def __init__(self, dbapi_conn: Any, dialect: Dialect) -> None:
        self.dbapi_conn = dbapi_conn
        self.dialect = dialect
        self.cursor = dbapi_conn.cursor()

    def run(self, sql: str, args: Any, *, fetch: bool = False, many: bool = False) -> list[Any]:
        """Execute rendered SQL; returns the result rows when ``fetch``."""
        cur = self.cursor
        try:
            if many:
                cur.executemany(sql, args)
                return []
            cur.execute(sql, args)
            return cur.fetchall() if fetch else []
        except self.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(sql, exc, self.dialect) from exc

    def commit(self) -> None:
        """Commit the transaction."""
        try:
            self.dbapi_conn.commit()
        except self.dialect.loaded_dbapi.Error as exc:
            raise _wrapped("COMMIT", exc, self.dialect) from exc


Handle: TypeAlias = Session | Connection | Tx  # what the hot-path helpers accept


def _wrapped(sql: str, exc: Exception, dialect: Dialect) -> StatementError:
    return DBAPIError.instance(
        sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
    )


class _Rendered:
    """A statement rendered for one dialect: SQL text, argument order and fixed values."""

    def __init__(self, compiled: Compiled, positional: bool) -> None:
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("post-compile parameters cannot be prepared")
        self.sql = compiled.string
        binds = getattr(compiled, "binds", {})
        self.fixed = {k: b.value for k, b in binds.items() if not b.required}
        order = getattr(compiled, "positiontup", None)
        self.order: list[str] | None = list(order) if positional and order is not None else None

    def args(self, params: Mapping[str, Any]) -> Any:
        merged = {**self.fixed, **params}
        return merged if self.order is None else [merged[k] for k in self.order]


class Prepared:
    """A Core statement, rendered once per dialect and run on a :class:`Tx`'s cursor."""

    def __init__(self, stmt: Executable) -> None:
        self.stmt = stmt
        keys = getattr(stmt, "selected_columns", None)
        self._row: Any = (
            namedtuple("Row", list(keys.keys()), rename=True) if keys is not None else None
        )
        self._rendered: dict[tuple[str, tuple[str, ...]], _Rendered] = {}

    def _render(self, dialect: Dialect, columns: tuple[str, ...] = ()) -> _Rendered:
        key = (dialect.name, columns)
        got = self._rendered.get(key)
        if got is None:
            compiled = self.stmt.compile(  # type: ignore[attr-defined]
                dialect=dialect, column_keys=list(columns) or None
            )
            got = _Rendered(compiled, dialect.positional)
            self._rendered[key] = got
        return got

    def rows(self, db: Handle, params: Mapping[str, Any] | None = None) -> list[Any]:
        """All result rows (attribute access by column name)."""
        params = params or {}
        if not isinstance(db, Tx):
            return list(conn_of(db).execute(self.stmt, dict(params)))
        r = self._render(db.dialect)
        got = db.run(r.sql, r.args(params), fetch=True)
        make: Any = self._row._make if self._row is not None else tuple
        return [make(t) for t in got]

    def first(self, db: Handle, params: Mapping[str, Any] | None = None) -> Any:
        """The first row, or None."""
        rows = self.rows(db, params)
        return rows[0] if rows else None

    def scalar(self, db: Handle, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.first(db, params)
        return None if row is None else row[0]

    def execute(self, db: Handle, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows (an ``UPDATE`` or ``DELETE``)."""
        params = params or {}
        if not isinstance(db, Tx):
            conn_of(db).execute(self.stmt, dict(params))
            return
        r = self._render(db.dialect)
        db.run(r.sql, r.args(params))

    def insert(self, db: Handle, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run an ``INSERT`` for each of ``rows`` (all with the same keys)."""
        if not rows:
            return
        if not isinstance(db, Tx):
            conn_of(db).execute(self.stmt, [dict(r) for r in rows])
            return
        r = self._render(db.dialect, tuple(rows[0]))
        db.run(r.sql, [r.args(row) for row in rows], many=True)


class WriterBusy(Exception):
    """The SQLite writer's turn is taken and the caller asked not to wait."""


@contextmanager
def tx(engine: Engine, *, write: bool, wait: bool = True) -> Iterator[Tx]:
    """One transaction on a pooled driver connection: committed on success, rolled back on
    any exception. ``write`` takes the SQLite writer's turn (``BEGIN IMMEDIATE`` behind the
    :class:`~kagiya.server.db.WriterQueue`) — or, with ``wait=False``, raises
    :class:`WriterBusy` at once if another writer holds it; a read runs on a WAL snapshot
    alongside the writer. On PostgreSQL both are plain transactions. A connection the driver
    reports broken is dropped from the pool."""
    fairy = engine.raw_connection()  # check-out and check-in stay outside the writer's turn
    try:
        queue = writer_queue(engine) if write else None
        if queue is not None and not queue.acquire(wait=wait):
            raise WriterBusy
        try:
            t = Tx(fairy.driver_connection, engine.dialect)
            if engine.dialect.name == "sqlite":
                t.run("BEGIN IMMEDIATE" if write else "BEGIN", ())
            try:
                yield t
                t.commit()
            except BaseException as exc:
                _rollback(fairy, exc, engine.dialect)
                raise
            finally:
                with suppress(Exception):  # the connection may have been invalidated
                    t.cursor.close()
        finally:
            if queue is not None:
                queue.release()
    finally:
        fairy.close()


def _rollback(fairy: Any, exc: BaseException, dialect: Dialect) -> None:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, dialect.loaded_dbapi.Error) and dialect.is_disconnect(
        orig, fairy.dbapi_connection, None
    ):
        fairy.invalidate(orig)
        return
    try:
        fairy.driver_connection.rollback()
    except dialect.loaded_dbapi.Error as err:  # the connection is unusable: drop it
        fairy.invalidate(err)
