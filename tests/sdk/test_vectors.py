"""The golden vectors (docs/protocol.md §14): regenerated bit-exactly, and every vector's
``expect`` reached by the host library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kagiya.hil import vectors
from kagiya.sdk import cbor, credential, framing, messages, proof, signed
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import issuer_kid

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
FILES = ("credentials.json", "sessions.json", "messages.json", "framing.json", "signed.json")


def load(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((VECTORS / name).read_text())
    return data


def outcome(fn: Any) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except ProtocolError as e:
        return e.code.name, None


def test_generator_reproduces_checked_in_files(tmp_path: Path) -> None:
    written = vectors.write(tmp_path)
    assert sorted(p.name for p in written) == sorted(FILES)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (VECTORS / name).read_bytes(), (
            f"{name} differs from the generator: run `make vectors` and review the diff")


def test_cli_writes_files(tmp_path: Path) -> None:
    assert vectors.main([str(tmp_path / "out")]) == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == set(FILES)
    assert vectors.main([]) == 2


@pytest.mark.parametrize("v", load("credentials.json"), ids=lambda v: v["name"])
def test_credential_vector(v: dict[str, Any]) -> None:
    pk = bytes.fromhex(v["issuer_public_key"])
    priv = bytes.fromhex(v["lock_private_key"]) if "lock_private_key" in v else None
    got, key = outcome(lambda: credential.verify_credential(
        bytes.fromhex(v["credential"]), {issuer_kid(pk): pk}, v["lock_id"], v["now"],
        operator=v["operator"], revoked=[bytes.fromhex(c) for c in v.get("revoked", [])],
        lock_kex_private=priv))
    assert got == v["expect"]
    assert v["expect"] == "ok" or v["expect"] in ErrorCode.__members__
    if got == "ok":
        assert key.claims.cti.hex() == v["cti"]
        assert int(key.claims.permissions) == v["permissions"]
        if priv is not None:
            assert key.secret.hex() == v["secret"]


def test_credential_vectors_cover_every_step() -> None:
    expects = {v["expect"] for v in load("credentials.json")}
    assert expects >= {"ok", "MALFORMED", "TOO_LARGE", "WRONG_ALGORITHM", "WRONG_CONTENT_TYPE",
                       "UNKNOWN_ISSUER", "BAD_SIGNATURE", "INVALID_CLAIMS", "WRONG_LOCK",
                       "NOT_YET_VALID", "EXPIRED", "REVOKED", "WRONG_RECIPIENT",
                       "BAD_KEY_WRAP"}


def _inputs(i: dict[str, Any]) -> tuple[bytes, bytes, str, bytes]:
    return (bytes.fromhex(i["secret"]), bytes.fromhex(i["nonce"]), i["lock_id"],
            bytes.fromhex(i["cti"]))


@pytest.mark.parametrize("v", load("sessions.json"), ids=lambda v: v["name"])
def test_session_vector(v: dict[str, Any]) -> None:
    if "steps" in v:
        secret, nonce, lock_id, cti = _inputs(v["session"])
        guard = proof.ReplayGuard()
        for step in v["steps"]:
            def attempt(step: dict[str, Any] = step) -> None:
                guard.check(step["counter"])
                if not proof.verify_command_proof(secret, nonce, lock_id, cti,
                                                  v["session"]["command"], step["counter"],
                                                  0, bytes.fromhex(step["proof"])):
                    raise ProtocolError(ErrorCode.BAD_PROOF)
                guard.accept(step["counter"])
            assert outcome(attempt)[0] == step["expect"], step
        return
    i = v["inputs"]
    secret, nonce, lock_id, cti = _inputs(i)
    if "proof" in v:
        ok = proof.verify_command_proof(secret, nonce, lock_id, cti, i["command"],
                                        i["counter"], i["arg"], bytes.fromhex(v["proof"]))
        assert ok == (v["expect"] == "ok")
        if ok:
            assert proof.command_proof(secret, nonce, lock_id, cti, i["command"], i["counter"],
                                       i["arg"]).hex() == v["proof"]
    if "mac" in v:
        body = bytes.fromhex(i["body"])
        assert proof.reply_mac(secret, nonce, lock_id, cti, i["command"], i["counter"],
                               i["code"], body).hex() == v["mac"]
        assert proof.verify_reply_mac(secret, nonce, lock_id, cti, i["command"], i["counter"],
                                      i["code"], body, bytes.fromhex(v["mac"]))
        # the body is the whole reply without its MAC (v2)
        reply = cbor.loads(body)
        assert reply[0] in (4, 9) and 15 not in reply


@pytest.mark.parametrize("v", load("messages.json"), ids=lambda v: v["name"])
def test_message_vector(v: dict[str, Any]) -> None:
    data = bytes.fromhex(v["hex"])
    got, msg = outcome(lambda: messages.decode(data))
    assert got == v["expect"]
    if got == "ok":
        assert int(msg.TYPE) == v["type"]
        fields = {k: vectors._jsonable(x) for k, x in messages.message_fields(msg).items()}
        assert {k: fields[k] for k in v["fields"]} == v["fields"]
        if "unknown_key" not in v["name"] and "nesting" not in v["name"]:
            assert messages.encode(msg) == data


@pytest.mark.parametrize("v", load("framing.json"), ids=lambda v: v["name"])
def test_framing_vector(v: dict[str, Any]) -> None:
    frs = [bytes.fromhex(f) for f in v["fragments"]]
    if "mtu" in v:
        message = bytes.fromhex(v["message"])
        assert framing.fragment(message, v["mtu"]) == frs
        assert all(len(f) <= v["mtu"] - 3 for f in frs)
        r = framing.Reassembler()
        assert [r.feed(f) for f in frs] == [None] * (len(frs) - 1) + [message]
        return
    r = framing.Reassembler()
    codes = []
    for f in frs:
        got, _ = outcome(lambda f=f: r.feed(f))
        codes.append(got)
    assert codes[-1] == v["expect"], codes


@pytest.mark.parametrize("v", load("signed.json"), ids=lambda v: v["name"])
def test_signed_vector(v: dict[str, Any]) -> None:
    pk = bytes.fromhex(v["issuer_public_key"])
    anchors = {issuer_kid(pk): pk}
    data = bytes.fromhex(v["data"])
    if v["kind"] == "time":
        got, t = outcome(lambda: signed.verify_time_statement(data, anchors))
        assert got == v["expect"]
        if got == "ok":
            assert t == v["time"]
        return
    got, upd = outcome(lambda: signed.verify_revocation_update(
        data, anchors, v["lock_id"], operator=v["operator"],
        current_version=v["current_version"]))
    assert got == v["expect"]
    if got == "ok":
        assert upd.version == v["update"]["version"]
        assert [[c.hex(), e] for c, e in upd.entries] == v["update"]["entries"]
