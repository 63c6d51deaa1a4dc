"""The outbox: queued uploads survive restarts, go out in order, and are never lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from kagiya.phone.outbox import OutboxItem, PermanentRejection
from kagiya.phone.profile import Profile


def _profile(tmp_path: Path) -> Profile:
    p = Profile("ph", home=tmp_path)
    p.keystore.create("ph")
    return p


def test_items_survive_restart_and_keep_order(tmp_path: Path) -> None:
    p = _profile(tmp_path)
    for i in range(5):
        p.outbox.put("log", {"lock_id": "LOCK-1", "n": i, "blob": bytes([i]) * 8})
    again = Profile("ph", home=tmp_path)  # a new process
    assert [it.payload["n"] for it in again.outbox.items()] == [0, 1, 2, 3, 4]
    assert all(b"\x03" * 8 not in f.read_bytes() for f in again.outbox.directory.glob("*.kgy"))


def test_offline_flush_keeps_everything_then_delivers(tmp_path: Path) -> None:
    p = _profile(tmp_path)
    for i in range(3):
        p.outbox.put("log", {"n": i})

    def offline(_item: OutboxItem) -> None:
        raise ConnectionError("server unreachable")

    rep = p.outbox.flush(offline)
    assert (rep.sent, rep.remaining) == (0, 3)
    assert "server unreachable" in rep.errors[0]
    assert next(iter(p.outbox.items())).attempts == 1

    seen: list[int] = []
    rep = Profile("ph", home=tmp_path).outbox.flush(lambda it: seen.append(it.payload["n"]))
    assert seen == [0, 1, 2]
    assert (rep.sent, rep.remaining) == (3, 0)


def test_partial_failure_stops_in_order(tmp_path: Path) -> None:
    p = _profile(tmp_path)
    for i in range(4):
        p.outbox.put("log", {"n": i})
    sent: list[int] = []

    def flaky(item: OutboxItem) -> None:
        if item.payload["n"] == 2:
            raise TimeoutError("timed out")
        sent.append(item.payload["n"])

    rep = p.outbox.flush(flaky)
    assert sent == [0, 1]
    assert [it.payload["n"] for it in p.outbox.items()] == [2, 3]
    assert rep.remaining == 2


def test_permanent_rejection_is_set_aside_not_deleted(tmp_path: Path) -> None:
    p = _profile(tmp_path)
    p.outbox.put("log", {"n": 0})
    p.outbox.put("log", {"n": 1})

    def refuse_first(item: OutboxItem) -> None:
        if item.payload["n"] == 0:
            raise PermanentRejection("log-invalid: head signature does not verify")

    rep = p.outbox.flush(refuse_first)
    assert (rep.sent, rep.rejected, rep.remaining) == (1, 1, 0)
    assert len(p.outbox.rejected()) == 1


def test_damaged_item_is_reported_and_kept(tmp_path: Path) -> None:
    p = _profile(tmp_path)
    p.outbox.put("log", {"n": 0})
    p.outbox.put("log", {"n": 1})
    first = sorted(p.outbox.directory.glob("*.kgy"))[0]
    first.write_bytes(first.read_bytes()[:30])
    seen: list[int] = []
    rep = p.outbox.flush(lambda it: seen.append(it.payload["n"]))
    assert seen == [1]
    assert first.exists() and rep.remaining == 1
    assert "truncated" in rep.errors[0]


def test_bad_profile_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="profile name"):
        Profile("../etc", home=tmp_path)
