"""Withdrawal at contract end by itself (contract portal 第12条1項; kagiya.server.web.
contract_end), with a clock the test moves (SQLite and PostgreSQL): the driver is told when
the last lease ended and when the account closes, a renewal within the grace period cancels
it, after the grace the account ends as a withdrawal does (audited), and a resumed ID is not
withdrawn again for its old contract."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from kagiya.sdk.i18n import format_time
from kagiya.server import cli
from kagiya.server.client import OperatorClient
from kagiya.server.db import transaction
from kagiya.server.models import Phone, User
from kagiya.server.web import contract_end, notices
from sqlalchemy import func, select

from tests.server.conftest import World

DAY = 86400
GRACE = 30 * DAY  # the default


def _pk(world: World, user_id: str) -> int:
    with transaction(world.rt.sessions) as s:
        return int(s.scalars(select(User.pk).where(User.user_id == user_id)).one())


def _inbox(world: World, user_id: str) -> list[notices.Notice]:
    pk = _pk(world, user_id)
    with transaction(world.rt.sessions) as s:
        box = notices.inbox(s, pk, int(world.clock()))
        for i in box.items:
            s.expunge(i.notice)
        return [i.notice for i in box.items]


def _run(world: World) -> dict[str, list[str]]:
    return contract_end.run(world.rt).as_dict()


def _audit(op: OperatorClient, action: str) -> list[dict[str, Any]]:
    return [{**a, "detail": json.loads(a["detail"] or "{}")}
            for a in op.audit(limit=200)["items"] if a["action"] == action]


def test_notice_then_withdrawal_after_the_grace(world: World) -> None:
    op = world.operator()
    alice, lock, _rid, phone = world.setup_key(op, days=30)
    phone.sync()
    never = op.create_user()["user_id"]  # issued, no lease yet: never touched
    bob = op.create_user()["user_id"]  # a 360-day lease that runs on
    now = int(world.clock())
    op.create_key_request(bob, lock, now - 60, now + 360 * DAY, ["doors"])
    assert _run(world) == {"renewed": [], "noticed": [], "withdrawn": []}

    world.clock.advance(31 * DAY)  # Alice's lease ended a day ago
    assert _run(world) == {"renewed": [], "noticed": [alice], "withdrawn": []}
    assert _run(world)["noticed"] == []  # once per contract end
    [told] = _inbox(world, alice)
    assert told.title_ja == "ご契約が終了しました" and told.title_en == "Your contract has ended"
    closes = format_time(int(world.clock()) + GRACE)  # in JST, in both languages
    assert f"closes on {closes}" in told.body_en and closes in told.body_ja
    assert told.ends_at == int(world.clock()) + GRACE
    assert _inbox(world, bob) == [] and _inbox(world, never) == []
    [entry] = _audit(op, "mypage.contract-end-notice")
    assert entry["actor"] == "system:contract-end" and entry["target"] == alice
    assert entry["detail"]["closes_at"] == int(world.clock()) + GRACE

    world.clock.advance(GRACE - 60)  # not yet
    assert _run(world)["withdrawn"] == []
    world.clock.advance(60)
    assert _run(world) == {"renewed": [], "noticed": [], "withdrawn": [alice]}
    assert op._request("GET", f"/v1/users/{alice}")["status"] == "suspended"
    assert op._request("GET", f"/v1/users/{bob}")["status"] == "active"
    assert op._request("GET", f"/v1/users/{never}")["status"] == "active"
    pk = _pk(world, alice)
    with transaction(world.rt.sessions) as s:
        assert s.scalar(select(func.count()).select_from(Phone)
                        .where(Phone.user_pk == pk)) == 0
    [entry] = _audit(op, "mypage.withdrawal")
    assert entry["actor"] == "system:contract-end" and entry["target"] == alice
    assert entry["detail"]["reason"] == "contract-end"
    assert _run(world) == {"renewed": [], "noticed": [], "withdrawn": []}

    # the operator resumes the ID for a new contract: not withdrawn again for the old one
    op.resume_user(alice)
    world.clock.advance(GRACE + DAY)
    assert _run(world) == {"renewed": [], "noticed": [], "withdrawn": []}
    assert op._request("GET", f"/v1/users/{alice}")["status"] == "active"
    # its new lease ends in turn: a new notice, a new grace period
    now = int(world.clock())
    op.create_key_request(alice, lock, now - 60, now + 10 * DAY, ["doors"])
    world.clock.advance(10 * DAY)
    assert _run(world)["noticed"] == [alice]


def test_renewal_within_the_grace_cancels_it(world: World) -> None:
    op = world.operator()
    alice, lock, request_id, _phone = world.setup_key(op, days=30)
    op.cancel_key_request(request_id)  # the contract ended early: its end is the cancel
    assert _run(world)["noticed"] == [alice]
    world.clock.advance(20 * DAY)
    now = int(world.clock())
    op.create_key_request(alice, lock, now - 60, now + 360 * DAY, ["doors"])  # renewed
    assert _run(world) == {"renewed": [alice], "noticed": [], "withdrawn": []}
    assert _inbox(world, alice) == []  # the closing notice is withdrawn
    [entry] = _audit(op, "mypage.withdrawal-cancelled")
    assert entry["target"] == alice and entry["detail"] == {"reason": "renewed"}
    world.clock.advance(GRACE)
    assert _run(world) == {"renewed": [], "noticed": [], "withdrawn": []}
    assert op._request("GET", f"/v1/users/{alice}")["status"] == "active"


def test_own_withdrawal_closes_it_and_off_switch(world: World) -> None:
    op = world.operator()
    alice, _lock, request_id, _phone = world.setup_key(op, days=30)
    carol, _lock2, carol_req, _p2 = world.setup_key(op, days=30)
    op.cancel_key_request(request_id)
    op._request("POST", f"/v1/users/{alice}/withdrawal")  # before any notice
    op.resume_user(alice)
    world.clock.advance(GRACE + DAY)
    assert _run(world)["noticed"] == [carol]  # Alice's contract end was answered already
    assert _run(world)["withdrawn"] == []

    world.rt.settings = world.rt.settings.with_(contract_end_grace_s=-1)  # off
    world.clock.advance(GRACE + DAY)
    assert _run(world) == {"renewed": [], "noticed": [], "withdrawn": []}
    assert op.get_key_request(carol_req)["request_id"] == carol_req


def test_admin_contract_ends_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = argparse.ArgumentParser()
    cli.register(p)
    args = p.parse_args(["admin", "contract-ends", "--data-dir", str(tmp_path)])
    assert args.handler(args) == 0
    assert json.loads(capsys.readouterr().out) == {"renewed": [], "noticed": [],
                                                   "withdrawn": []}
