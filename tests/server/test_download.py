"""The key download's consistency: optimistic issuance (plan and sign, then store only if
nothing changed), the event-loop path's hand-off when another writer holds SQLite's turn,
prepared statements, and lookups that stay bounded however many keys a phone was issued."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kagiya.sdk.keys import LockIdentity
from kagiya.server import admin, issuance, revocations
from kagiya.server.client import OperatorClient
from kagiya.server.db import writer_queue
from kagiya.server.download import (
    download_on_loop,
    plan_download,
    store_download,
)
from kagiya.server.models import IssuedKey
from kagiya.server.prepared import Prepared, WriterBusy, tx
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from tests.server.conftest import World, make_world


def _issued(world: World, request_id: str) -> int:
    with world.rt.engine.connect() as c:
        return int(c.scalar(select(func.count()).where(IssuedKey.request_id == request_id)) or 0)


def test_plan_stored_when_nothing_changed(world: World) -> None:
    op = world.operator()
    _uid, _lid, rid, phone = world.setup_key(op)
    got = plan_download(world.rt, world.ask(phone))
    assert len(got.plan.fresh) == 1 and _issued(world, rid) == 0  # planning writes nothing
    assert store_download(world.rt, got)
    assert _issued(world, rid) == 1
    # the stored key is the one the plan answered with, and the next download reuses it
    assert phone.sync().keys[0].key_id.hex() == got.body["keys"][0]["key_id"]


Change = Callable[[World, OperatorClient, str, str, str], object]
STALE: dict[str, Change] = {  # (world, operator, user ID, lock ID, request ID)
    "request changed": lambda w, op, u, lk, r: op.change_key_request(r, permissions=["doors"]),
    "request cancelled": lambda w, op, u, lk, r: op.cancel_key_request(r),
    "user suspended": lambda w, op, u, lk, r: op.suspend_user(u),
    "user deleted": lambda w, op, u, lk, r: op.delete_user(u),
    "lock suspended": lambda w, op, u, lk, r: op.set_lock_status(lk, True),
    # only the signing key changes: the key wrap would still open, yet the replacement
    # revoked everything issued before it
    "lock identity replaced": lambda w, op, u, lk, r: op.replace_simulated_identity(
        LockIdentity.from_private_bytes(os.urandom(32), w.locks[lk].kex_private_bytes), lk
    ),
    "issuer key rotated": lambda w, op, u, lk, r: admin.rotate_issuer_key(w.rt),
}


@pytest.mark.parametrize("change", STALE.values(), ids=list(STALE))
def test_plan_made_stale_is_not_stored(world: World, change: Change) -> None:
    op = world.operator()
    uid, lid, rid, phone = world.setup_key(op)
    got = plan_download(world.rt, world.ask(phone))
    change(world, op, uid, lid, rid)
    assert not store_download(world.rt, got)
    assert _issued(world, rid) == 0  # the key signed from the old state never existed


def test_download_after_a_stale_plan_answers_for_the_new_state(world: World) -> None:
    op = world.operator()
    _uid, _lid, rid, phone = world.setup_key(op)
    got = plan_download(world.rt, world.ask(phone))
    op.change_key_request(rid, permissions=["doors"])
    assert not store_download(world.rt, got)
    key = phone.sync().keys[0]
    assert key.request_version == 2 and key.permissions == 1  # doors only


def test_two_downloads_of_one_phone_store_one_key(world: World) -> None:
    op = world.operator()
    _uid, _lid, rid, phone = world.setup_key(op)
    first = plan_download(world.rt, world.ask(phone))
    second = plan_download(world.rt, world.ask(phone))
    assert store_download(world.rt, first)
    assert not store_download(world.rt, second)  # the phone's newest key changed under it
    assert _issued(world, rid) == 1


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    """The app on SQLite only (the writer's turn and its query plans are SQLite's)."""
    w, rt = make_world(f"sqlite:///{tmp_path / 'kagiya.db'}", tmp_path / "data")
    yield w
    w.http.close()
    rt.close()


def test_busy_writer_hands_the_store_to_a_thread(sqlite_world: World) -> None:
    world = sqlite_world
    op = world.operator()
    _uid, _lid, rid, phone = world.setup_key(op)
    ask = world.ask(phone)  # before another writer takes the turn
    queue = writer_queue(world.rt.engine)
    assert queue is not None
    holder_has_turn, let_go = threading.Event(), threading.Event()

    def other_writer() -> None:
        with queue:
            holder_has_turn.set()
            let_go.wait(10)

    holder = threading.Thread(target=other_writer)
    holder.start()
    holder_has_turn.wait(10)
    with pytest.raises(WriterBusy), tx(world.rt.engine, write=True, wait=False):
        pass
    handed: list[str] = []

    async def blocking(fn: Any, *args: Any) -> Any:
        handed.append(fn.__name__)
        let_go.set()  # the other writer finishes; the store then waits its turn in a thread
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    resp = asyncio.run(download_on_loop(world.rt, ask, blocking))
    holder.join()
    assert resp.status_code == 200 and handed == ["store_download"]
    assert _issued(world, rid) == 1


def test_free_writer_stores_on_the_loop(sqlite_world: World) -> None:
    world = sqlite_world
    op = world.operator()
    _uid, _lid, rid, phone = world.setup_key(op)

    async def blocking(fn: Any, *args: Any) -> Any:
        raise AssertionError(f"{fn.__name__} should not have needed a thread")

    resp = asyncio.run(download_on_loop(world.rt, world.ask(phone), blocking))
    assert resp.status_code == 200 and _issued(world, rid) == 1


def test_prepared_rows_match_sqlalchemy(world: World) -> None:
    op = world.operator()
    _uid, _lid, _rid, phone = world.setup_key(op)
    phone.sync()
    got = plan_download(world.rt, world.ask(phone))
    params = {"phone_id": got.phone.id, "user_pk": got.phone.user_pk, "now": int(world.clock())}
    query = issuance._PLAN_QUERY
    with world.rt.engine.connect() as conn:
        expected = [tuple(r) for r in query.rows(conn, params)]
    with tx(world.rt.engine, write=False) as t:
        rows = query.rows(t, params)
    assert [tuple(r) for r in rows] == expected and len(rows) == 1
    assert rows[0].cti is not None and rows[0].lock_id == expected[0][7]


def test_driver_errors_surface_as_sqlalchemy_errors_and_roll_back(world: World) -> None:
    op = world.operator()
    _uid, _lid, rid, phone = world.setup_key(op)
    phone.sync()
    with world.rt.engine.connect() as conn:
        row = conn.execute(select(IssuedKey.__table__)).mappings().one()
    dup = dict(row)
    fresh = {**dup, "cti": b"\x01" * 16}
    ins = Prepared(insert(IssuedKey))
    with pytest.raises(IntegrityError) as err, tx(world.rt.engine, write=True) as t:
        ins.insert(t, [fresh])  # would be stored …
        ins.insert(t, [dup])  # … but the duplicate key ID fails the transaction
    message = str(err.value)
    assert "issued_keys" in message and "[parameters" not in message  # no key material
    assert repr(dup["credential"])[2:20] not in message
    assert _issued(world, rid) == 1  # rolled back: the first insert is gone too
    # the pooled connection is still usable
    with tx(world.rt.engine, write=False) as t:
        assert len(issuance._PLAN_QUERY.rows(t, {"phone_id": "x", "user_pk": 0, "now": 0})) == 0


def test_download_lookups_stay_bounded(sqlite_world: World) -> None:
    """The newest-key and revoked-key lookups walk an index to the rows they need, so a
    download costs the same however many keys the phone was issued (SQLite's plan)."""
    world = sqlite_world
    dialect = world.rt.engine.dialect

    def plan(prepared: Any) -> str:
        compiled = prepared.stmt.compile(dialect=dialect)
        params = compiled.construct_params({"phone_id": "p", "user_pk": 1, "now": 0})
        args = [params[k] for k in compiled.positiontup]
        with world.rt.engine.connect() as conn:
            raw = conn.connection.driver_connection
            return " | ".join(
                r[3] for r in raw.execute("EXPLAIN QUERY PLAN " + compiled.string, args)
            )

    newest = plan(issuance._PLAN_QUERY)
    assert "ix_issued_keys_newest" in newest and "RIGHT PART OF ORDER BY" not in newest
    assert "ix_issued_keys_phone_revoked" in plan(revocations._PHONE_LOCKS)


def test_nested_write_transaction_fails_at_once_instead_of_hanging(sqlite_world: World) -> None:
    """A transaction opened inside another in one thread would wait for its own turn forever
    (a hung worker); the writer queue refuses it at once and gives the turn back."""
    from kagiya.server.db import transaction

    rt = sqlite_world.rt
    with pytest.raises(RuntimeError, match="nested SQLite write transaction"):
        with transaction(rt.sessions):
            with transaction(rt.sessions):
                pass
    with pytest.raises(RuntimeError, match="nested SQLite write transaction"):
        with tx(rt.engine, write=True), tx(rt.engine, write=True, wait=False):
            pass
    with transaction(rt.sessions):  # the turn was given back
        pass
