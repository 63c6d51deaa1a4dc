"""Service admin: the CLI, contract end (proves deletion), migrations match the models."""

from __future__ import annotations

import argparse
import json
import os
import stat

import pytest
from kagiya.server import admin, cli
from kagiya.server.admin import OPERATOR_TABLES
from kagiya.server.db import transaction
from kagiya.server.models import Base, Revocation
from sqlalchemy import func, select

from tests.server.conftest import World
from tests.server.logutil import make_log


def test_end_contract_deletes_all_operator_data(world: World) -> None:
    a, b = world.operator(name="A"), world.operator(name="B")
    for op in (a, b):
        uid, lid, rid, phone = world.setup_key(op)
        phone.sync()
        op.change_key_request(rid, permissions=["doors"])
        phone.sync()
        phone.upload_log(**make_log(world.locks[lid], lid, 3, sub=uid))  # type: ignore[arg-type]
        op.create_partner("P")
        op.create_user(idempotency_key="k1")

    def counts(operator_id: str) -> dict[str, int]:
        with transaction(world.rt.sessions) as s:
            out = {
                t.__tablename__: s.scalar(
                    select(func.count()).select_from(t).where(t.operator_id == operator_id)
                )
                or 0
                for t in OPERATOR_TABLES
            }
            out["revocations"] = s.scalar(select(func.count()).select_from(Revocation)) or 0
            return out

    before = counts(a.operator_id)  # type: ignore[attr-defined]
    assert all(
        before[t] > 0
        for t in (
            "users",
            "locks",
            "key_requests",
            "issued_keys",
            "usage_logs",
            "phones",
            "partners",
            "audit_log",
        )
    )
    deleted = admin.end_contract(world.rt, a.operator_id)  # type: ignore[attr-defined]
    assert deleted["users"] == before["users"] and deleted["usage_logs"] == 3
    after = counts(a.operator_id)  # type: ignore[attr-defined]
    assert {k: v for k, v in after.items() if k != "revocations"} == {
        k: 0 for k in after if k != "revocations"
    }
    assert after["revocations"] == 1  # only B's revocation remains
    r = world.http.get("/v1/users", headers={"Authorization": f"Bearer {a.token}"})
    assert r.status_code == 401
    assert len(b.list_users()["items"]) == 2  # B untouched
    entries = admin.audit_entries(world.rt)
    assert entries[-1]["action"] == "operator.end-contract"


def _cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    p = argparse.ArgumentParser()
    cli.register(p)
    args = p.parse_args(list(argv))
    code = args.handler(args)
    return code, capsys.readouterr().out


def test_admin_cli(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    d = ["--data-dir", str(tmp_path)]
    code, out = _cli(
        "admin",
        "create-operator",
        *d,
        "--name",
        "Acme",
        "--quota",
        "5",
        "--contract-end",
        "2099-01-01",
        capsys=capsys,
    )
    assert code == 0
    new = json.loads(out)
    assert new["client_secret"] and new["client_id"].startswith("kgy_")
    code, out = _cli("admin", "list-operators", *d, capsys=capsys)
    listed = json.loads(out)
    assert (
        listed[0]["quota"] == 5 and "client_secret" not in out and new["client_secret"] not in out
    )
    assert _cli("admin", "suspend-operator", *d, new["client_id"], capsys=capsys)[0] == 0
    assert (
        json.loads(_cli("admin", "list-operators", *d, capsys=capsys)[1])[0]["status"]
        == "suspended"
    )
    assert _cli("admin", "resume-operator", *d, new["operator_id"], capsys=capsys)[0] == 0
    # the secret is stored hashed (checked while the operator exists)
    db = b"".join(p.read_bytes() for p in tmp_path.glob("kagiya.db*"))
    assert new["client_secret"].encode() not in db and b"$argon2id$" in db
    code, kid = _cli("admin", "rotate-issuer-key", *d, capsys=capsys)
    assert code == 0 and len(kid.strip()) == 16
    assert _cli("admin", "end-contract", *d, new["operator_id"], capsys=capsys)[0] == 2
    assert _cli("admin", "end-contract", *d, new["operator_id"], "--yes", capsys=capsys)[0] == 0
    assert json.loads(_cli("admin", "list-operators", *d, capsys=capsys)[1]) == []
    assert _cli("admin", "suspend-operator", *d, "nobody", capsys=capsys)[0] == 2
    # the master key file is private; the secret never reached the database
    db = b"".join(p.read_bytes() for p in tmp_path.glob("kagiya.db*"))
    assert new["client_secret"].encode() not in db
    mode = stat.S_IMODE(os.stat(tmp_path / "master.key").st_mode)
    assert mode == 0o600


def test_migrations_match_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from kagiya.server.db import make_engine
    from kagiya.server.migrate import upgrade

    engine = make_engine(db_url)
    upgrade(engine)
    upgrade(engine)  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
