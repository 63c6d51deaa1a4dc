"""Operator list pages read one page through an index, however large the fleet.

``GET /v1/locks``, ``/v1/users`` and ``/v1/key-requests`` page one operator's rows in key
order after a cursor. Without the (operator_id, key) indexes of migration 0009 SQLite read
all of the operator's rows and sorted them per page (bench/scale.py measured ~70 ms per
key-requests page at 200,000 requests); the plan of each page query shows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from tests.server.conftest import World, make_world


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    w, rt = make_world(f"sqlite:///{tmp_path / 'kagiya.db'}", tmp_path / "data")
    yield w
    rt.close()


def _plans(world: World, calls: list[tuple[str, Any]]) -> dict[str, str]:
    """The SQLite query plan of each list page's SELECT, by table."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_a: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and " LIMIT " in statement:
            seen.append((statement, params))

    engine = world.rt.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        for _label, call in calls:
            call()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    plans = {}
    with engine.connect() as conn:
        for statement, params in seen:
            head = statement.split("FROM", 1)
            if len(head) < 2:
                continue
            table = head[1].split()[0]
            if table in ("locks", "users", "key_requests"):
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
                plans[table] = "\n".join(str(r[-1]) for r in rows)
    return plans


def test_list_pages_use_the_operator_page_indexes(sqlite_world: World) -> None:
    op = sqlite_world.operator()
    uid = op.create_user()["user_id"]
    lid = sqlite_world.lock(op)
    now = int(sqlite_world.clock())
    req = op.create_key_request(uid, lid, now, now + 86400, ["doors"])
    plans = _plans(sqlite_world, [
        ("locks", lambda: op.list_locks(cursor="1", limit=10)),
        ("users", lambda: op.list_users(cursor="1", limit=10)),
        ("key_requests", lambda: op.list_key_requests(cursor=req["request_id"][:3],
                                                      limit=10)),
    ])
    assert set(plans) == {"locks", "users", "key_requests"}
    for table, plan in plans.items():
        assert f"ix_{table}_operator_page" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("field", ["user_id", "lock_id"])
def test_key_requests_of_one_user_or_lock_do_not_walk_the_operator(
        sqlite_world: World, field: str) -> None:
    op = sqlite_world.operator()
    uid = op.create_user()["user_id"]
    lid = sqlite_world.lock(op)
    now = int(sqlite_world.clock())
    op.create_key_request(uid, lid, now, now + 86400, ["doors"])
    value = uid if field == "user_id" else lid
    plans = _plans(sqlite_world, [
        ("key_requests", lambda: op.list_key_requests(**{field: value}, limit=10)),
    ])
    index = "ix_key_requests_user_page" if field == "user_id" else "ix_key_requests_lock_"
    assert index in plans["key_requests"], plans
    assert "ix_key_requests_operator_page" not in plans["key_requests"], plans
