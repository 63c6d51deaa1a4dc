"""The uplink publication outbox (docs/uplink.md, "Publishing").

A change that must reach a connected lock (a revocation, a decommission) adds an
``uplink_outbox`` row **in its own transaction**, so the change and the order to publish it
commit or roll back together: nothing is published for a change that did not happen, and
nothing that happened is forgotten when a process dies after its commit.

Every server process runs :func:`publish_due`: one transaction claims up to ``batch`` rows
(``DELETE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``; on SQLite the
DELETE takes the single writer's turn), locks the locks' ``lock_uplink`` rows (``FOR
UPDATE``), publishes each lock's *current* object if it is newer than the one recorded as
published, records it, and commits. A process that dies or whose publish fails rolls back:
the rows come back for the next claim. Two processes never publish the same version: the
second one waits on the ``lock_uplink`` row and then finds it already published. Changes
that arrive while a publish is in flight leave a new row, so none is lost; several rows of
one lock are published as one (the newest snapshot supersedes the others).

Only connected locks (those with a ``lock_uplink`` row, created with their broker account)
get rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kagiya.sdk.errors import ProtocolError
from kagiya.server.models import Lock, LockUplink, ServerState, UplinkOutbox
from sqlalchemy import delete, event, insert, literal, select
from sqlalchemy.orm import Session

REVOCATION = "revocation"
DECOMMISSION = "decommission"
#: ``server_state`` rows ``uplink-clear:<lock ID>``: the lock's retained messages are to be
#: removed from the broker (its account was deleted); see :func:`order_clear`
CLEAR_PREFIX = "uplink-clear:"

#: publish(lock_id, kind, payload) -> None; raises when the broker did not take it
Publish = Callable[[str, str, bytes], None]
#: build(session, lock, kind, now) -> (version, BLE message bytes)
Build = Callable[[Session, Any, str, int], tuple[int, bytes]]
#: refused(session, lock, kind, error): ``build`` refused to make the object
Refused = Callable[[Session, Any, str, ProtocolError], None]


_wakers: list[Callable[[], None]] = []


def on_commit(wake: Callable[[], None]) -> None:
    """Call ``wake`` after every commit in this process that enqueued something (the
    process's uplink service then publishes at once instead of at its next poll)."""
    _wakers.append(wake)


def _after_commit(session: Session) -> None:
    if session.info.pop("uplink_enqueued", False):
        for wake in _wakers:
            wake()


event.listen(Session, "after_commit", _after_commit)


def enqueue(session: Session, lock_pks: Iterable[int], kind: str, now: int) -> None:
    """Order the publication of ``kind`` to those of ``lock_pks`` that are connected."""
    pks = sorted(set(lock_pks))
    if not pks:
        return
    session.info["uplink_enqueued"] = True
    session.execute(
        insert(UplinkOutbox).from_select(
            ["lock_pk", "kind", "created_at"],
            select(LockUplink.lock_pk, literal(kind), literal(now)).where(
                LockUplink.lock_pk.in_(pks)
            ),
        )
    )


def pending(session: Session) -> int:
    """Rows waiting to be published (all processes)."""
    return len(session.scalars(select(UplinkOutbox.id)).all())


def publish_due(session: Session, now: int, build: Build, publish: Publish,
                batch: int = 32, refused: Refused | None = None) -> int:
    """Claim and publish up to ``batch`` outbox rows (see the module doc); returns how many
    objects were published. Call inside a transaction; an exception rolls the claim back,
    except a ``ProtocolError`` of ``build`` (an object the lock would refuse, TOO_LARGE):
    retrying cannot help, so its row is consumed and ``refused`` is told (the service
    audits it); the other rows of the claim are published."""
    claim = (
        select(UplinkOutbox.id)
        .order_by(UplinkOutbox.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(
        delete(UplinkOutbox)
        .where(UplinkOutbox.id.in_(claim.scalar_subquery()))
        .returning(UplinkOutbox.lock_pk, UplinkOutbox.kind)
    ).all()
    published = 0
    # per lock the revocation update before the decommission update (the lock refuses
    # revocation updates once decommissioned, so its acknowledged version stays exact)
    for lock_pk, kind in sorted({(r.lock_pk, r.kind) for r in rows},
                                key=lambda r: (r[0], r[1] != REVOCATION)):
        st = session.scalars(
            select(LockUplink).where(LockUplink.lock_pk == lock_pk).with_for_update()
        ).first()
        lock = session.get(Lock, lock_pk)
        if st is None or lock is None:
            continue
        if kind == REVOCATION and lock.revocation_version <= st.published_version:
            continue  # already published by another process (or coalesced)
        try:
            version, message = build(session, lock, kind, now)
        except ProtocolError as e:  # TOO_LARGE: the lock would refuse it, never publish it
            if refused is not None:
                refused(session, lock, kind, e)
            continue
        publish(lock.lock_id, kind, message)
        if kind == REVOCATION:
            st.published_version = version
        published += 1
    session.flush()
    return published


def order_clear(session: Session, lock_id: str, now: int) -> None:
    """Order, in the transaction that deletes the lock's broker account, that its retained
    messages be removed from the broker (every process looks, :func:`clear_due`): a row
    ``uplink-clear:<lock ID>`` in ``server_state``, so the order survives a broker that is
    down and a process that dies."""
    name = CLEAR_PREFIX + lock_id
    if session.get(ServerState, name) is None:
        session.add(ServerState(name=name, version=now))
    session.info["uplink_enqueued"] = True
    session.flush()


def clear_due(session: Session, clear: Callable[[str], None], batch: int = 32) -> int:
    """Claim up to ``batch`` clear orders (``FOR UPDATE SKIP LOCKED``) and call
    ``clear(lock_id)`` for each (it raises when the broker did not take it: the rollback
    keeps the order); an order whose lock ID is connected again (a revived lock with a new
    account) is dropped unpublished: the new lock's own objects own those topics now.
    Returns how many lock IDs were cleared."""
    rows = session.scalars(
        select(ServerState).where(ServerState.name.startswith(CLEAR_PREFIX, autoescape=True))
        .order_by(ServerState.name).limit(batch).with_for_update(skip_locked=True)
    ).all()
    done = 0
    for row in rows:
        lock_id = row.name[len(CLEAR_PREFIX):]
        again = session.scalars(
            select(LockUplink.lock_pk).join(Lock, Lock.pk == LockUplink.lock_pk)
            .where(Lock.lock_id == lock_id)).first()
        if again is None:
            clear(lock_id)
            done += 1
        session.delete(row)
    session.flush()
    return done
