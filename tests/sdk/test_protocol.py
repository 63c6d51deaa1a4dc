"""The protocol definition (kagiya.sdk.protocol) is the only copy on the host side.

Every host-side use resolves to the definition (the SDK's modules re-export it; the server,
phone app and tools derive their tables from it), no host source outside it spells a
protocol constant again, and the classification every app relies on is complete.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import typing
from pathlib import Path

from kagiya.phone import app as phone_app
from kagiya.phone import refusals, state
from kagiya.sdk import ble, cbor, credential, errors, framing, messages, signed
from kagiya.sdk import protocol as P
from kagiya.server import schemas

ROOT = Path(__file__).resolve().parents[2]
HOST = ("host_sdk", "server", "mobile_sim", "tools", "hil", "bench")


def test_sdk_modules_reexport_the_definition() -> None:
    assert errors.ErrorCode is P.ErrorCode
    assert messages.MessageType is P.MessageType
    assert messages.Command is P.Command
    assert messages.LockState is P.LockState
    assert credential.Permission is P.Permission
    assert (ble.SERVICE_UUID, ble.REQUEST_UUID, ble.RESPONSE_UUID) == (
        P.SERVICE_UUID, P.REQUEST_UUID, P.RESPONSE_UUID)
    assert cbor.MAX_MESSAGE == framing.MAX_MESSAGE == signed.MAX_SIGNED == P.MAX_MESSAGE
    assert (cbor.MAX_DEPTH, cbor.MAX_ITEMS, cbor.MAX_TEXT) == (
        P.MAX_DEPTH, P.MAX_ITEMS, P.MAX_TEXT)
    assert credential.MAX_CREDENTIAL == P.MAX_CREDENTIAL
    assert signed.MAX_REVOCATION_ENTRIES == P.MAX_REVOCATION_ENTRIES
    assert framing.REASSEMBLY_TIMEOUT_S * 1000 == P.REASSEMBLY_TIMEOUT_MS
    assert messages.PROTOCOL_VERSION == P.VERSION


def test_message_classes_follow_the_definition() -> None:
    assert set(messages.MESSAGE_CLASSES) == set(P.MESSAGES)
    for mtype, cls in messages.MESSAGE_CLASSES.items():
        names = [f.name for f in P.MESSAGES[mtype].fields]
        assert {f.name for f in dataclasses.fields(cls)} == set(names), cls
        assert [k for k, *_ in cls.FIELDS] == [f.key for f in P.MESSAGES[mtype].fields]
        keys = [f.key for f in P.MESSAGES[mtype].fields]
        assert keys == sorted(set(keys)) and P.KEY_TYPE not in keys


def test_permissions_commands_and_events_of_the_apps_come_from_the_definition() -> None:
    assert schemas.PERM_BITS == {"doors": 1, "drive": 2, "log": 4}
    assert set(typing.get_args(schemas.PermName)) == set(schemas.PERM_BITS)
    assert phone_app.COMMANDS == {c.label: int(c.permission) for c in P.Command if c.session}
    assert phone_app.EVENTS == {int(e): e.label for e in P.LogEvent}
    assert state.perm_names(7) == ["doors", "drive", "log"]
    assert state.perm_names(0) == ["status only"]
    for c in P.Command:
        assert credential.permission_for(c) == c.permission


def test_every_error_code_is_classified() -> None:
    for c in P.ErrorCode:
        assert c.meaning and c.remedy.endswith("."), c
        assert isinstance(c.retryable, bool) and isinstance(c.authenticated, bool)
        assert refusals.explain(c).startswith(c.remedy)
    assert {c for c in P.ErrorCode if c.may_have_succeeded} == {P.ErrorCode.OK,
                                                                  P.ErrorCode.INTERNAL}
    assert refusals.explain(250).startswith(P.UNKNOWN_CODE_REMEDY)
    assert len({c.remedy for c in P.ErrorCode}) == len(P.ErrorCode)  # one msgid per code
    assert set(P.REMEDIES) == {c.remedy for c in P.ErrorCode} | {P.UNKNOWN_CODE_REMEDY}


# Host sources may not spell these again: each must come from kagiya.sdk.protocol.
_SPELLED = (P.SERVICE_UUID[4:], P.REQUEST_UUID[:8], P.RESPONSE_UUID[:8], P.CT_TIME,
            P.CT_REVOCATION, "-65537", "-65538", "-65539", "-65540", f'"{P.UPLINK_PREFIX}',
            f'"{P.UP_HEARTBEAT}"', f'"{P.UP_LOG}"', '("repl", "anchors"', P.LOCK_ID_PATTERN,
            *(f'b"{label.decode()}"' for label in (P.LABEL_CMD, P.LABEL_RES, P.LABEL_LOG,
                                                    P.LABEL_HEAD, P.LABEL_BEAT)))
_VALUE = r"\s*(:[^=]*)?=\s*([-0-9\"']|[({]\s*[-0-9\"'])"
_ASSIGNED = re.compile(
    r"^\s*(MAX_MESSAGE|MAX_CREDENTIAL|MAX_DEPTH|MAX_ITEMS|MAX_TEXT|MAX_REVOCATION_ENTRIES|"
    r"MAX_LIFETIME|CT_CWT|CT_TIME|CT_REVOCATION|KEY_MAC|KEY_TYPE|PROTOCOL_VERSION|PERM_\w+|"
    r"\w*_UUID|COMMANDS|EVENTS|PLAIN|FRAME_FIRST|MIN_MTU|MAX_MTU|ALG_\w+|HDR_\w+|SCOPES|"
    r"CNF_\w+|IV_LEN|SECRET_LEN|TAG_SIGN1|TAG_COSE\w*|CHALLENGE_BYTES|PREFIX|DOWN_\w+|UP_\w+|_UMAX|_BLEN|"
    r"HEARTBEAT_S|MAX_SIZE|\w*_BUDGET|BOUNDS)" + _VALUE)
_CLAIM_KEY = re.compile(r"^\s*(ISS|SUB|AUD|EXP|NBF|IAT|CTI|CNF|KGY_\w+|RV_\w+)\s*=\s*-?[0-9]")
_ENUMS = re.compile(r"^class (\w+)\((IntEnum|IntFlag)\)")


def test_no_host_source_keeps_a_second_copy() -> None:
    offenders = []
    for top in HOST:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == ROOT / "host_sdk" / "protocol.py":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                where = f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                if any(s in line for s in _SPELLED) or _ASSIGNED.match(line) \
                        or _CLAIM_KEY.match(line) or _ENUMS.match(line):
                    offenders.append(where)
    assert offenders == []


def test_refusals_and_link_faults_carry_their_classification() -> None:
    from kagiya.sdk import client_errors as ce

    for c in P.ErrorCode:
        err = ce.refusal(c, "detail")
        assert (err.retryable, err.may_have_succeeded, err.remedy) == (
            c.retryable, c.may_have_succeeded, c.remedy)
    assert ce.refusal(P.ErrorCode.BUSY).retryable
    assert not ce.refusal(P.ErrorCode.REVOKED).retryable
    assert ce.CommandOutcomeUnknownError().may_have_succeeded
    assert ce.ReplyNotAuthenticError().may_have_succeeded
    assert not ce.LockNotFoundError().may_have_succeeded
    assert all(issubclass(k, ce.LinkError) and k.retryable for k in (
        ce.LockNotFoundError, ce.LinkLostError, ce.LockTimeoutError,
        ce.CommandOutcomeUnknownError))


# Numbers as map keys are protocol vocabulary everywhere on the host side except here:
_NUMBERED_MAPS_ALLOWED = {
    "hil/vectors.py",  # the golden vectors state the wire bytes independently, on purpose
    "host_sdk/cbor.py",  # CBOR's own additional-information table (RFC 8949 §3)
    "hil/bumble_backend.py",  # Bluetooth GATT property bits
    "server/problems.py", "server/routers/locks.py",  # HTTP status codes
    "server/simcontrol/adapter.py",  # HTTP status codes of the SIM platform
    "mobile_sim/vault.py",  # the phone vault's own salt (not on the wire)
}


def _int_key(node: ast.AST | None) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


def _private_claim(node: ast.AST) -> bool:
    return isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
        and isinstance(node.operand, ast.Constant) and type(node.operand.value) is int \
        and node.operand.value >= 65537


#: lengths of the definition that no cryptographic size shares (cti and nonce, key ID, IV)
_LENGTHS = {P.CTI_LEN, P.NONCE_LEN, P.KEY_ID_LEN, P.WRAP_IV_LEN}


def _length_check(node: ast.AST) -> bool:
    return isinstance(node, ast.Compare) and isinstance(node.left, ast.Call) \
        and isinstance(node.left.func, ast.Name) and node.left.func.id == "len" \
        and any(isinstance(c, ast.Constant) and c.value in _LENGTHS for c in node.comparators)


def numbered_maps(source: str) -> list[int]:
    """Lines where ``source`` keys a map with a literal number, reads one with
    ``.get(<number>)``, writes a private claim key (-65537 and below) as a number or
    compares a length of the definition (cti, nonce, key ID, IV) with a literal (the
    syntax tree: comments and docstrings do not count)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Dict) and any(_int_key(k) for k in node.keys)) or (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get" and node.args and _int_key(node.args[0])) \
                or _private_claim(node) or _length_check(node):
            out.append(node.lineno)
    return sorted(set(out))


def test_no_host_source_numbers_protocol_maps_by_hand() -> None:
    offenders = []
    for top in HOST:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "host_sdk/protocol.py" or rel in _NUMBERED_MAPS_ALLOWED:
                continue
            text = path.read_text(encoding="utf-8")
            offenders += [f"{rel}:{n}" for n in numbered_maps(text)]
    assert offenders == []


def test_the_host_checks_find_a_reintroduced_copy() -> None:
    # the copies #12's review found: the key wrap's COSE labels, the maintenance payload,
    # the uplink heartbeat and messages, the scopes, the kind bounds, the topic prefix
    assert numbered_maps("cnf = {2: [prot, {5: iv}, ct, [r]]}") == [1]
    assert numbered_maps("who = p.get(2)\nx = 1") == [1]
    assert numbered_maps("x = 1\nif k == -65546:\n    pass") == [2]
    assert numbered_maps("ok = len(cti) == 16 and len(kid) != 8") == [1]
    assert numbered_maps('"""Plaintext: ``{1: 4, -1: K}``."""\n# {1: 2}') == []
    for line in ('SCOPES = ("repl", "anchors", "provision")', "IV_LEN = 13",
                 "_UMAX = {1: 0xFFFF}", 'PREFIX = "kagiya/v1/locks/"', "MAX_SIZE = 1024",
                 "VERIFY_BUDGET = 4"):
        assert _ASSIGNED.match(line) or any(s in line for s in _SPELLED), line


def test_uplink_and_maintenance_vocabulary_comes_from_the_definition() -> None:
    from kagiya.sdk import keywrap, maintenance, registration
    from kagiya.server.uplink import topics
    from kagiya.tools.install import maintenance as install_maintenance

    assert maintenance.SCOPES == install_maintenance.SCOPES == P.MAINTENANCE_SCOPES
    assert set(typing.get_args(schemas.MaintenanceScope)) == set(P.MAINTENANCE_SCOPES)
    assert maintenance.MAX_SIZE == P.MAINTENANCE_MAX_SIZE
    assert topics.PREFIX == P.UPLINK_PREFIX
    assert {topics.DOWN_REVOCATION, topics.DOWN_TIME, topics.DOWN_DECOMMISSION,
            topics.DOWN_RECEIPT} == {P.UPLINK_DOWN + leaf for leaf in P.UPLINK_PUSHED}
    assert (topics.UP_HEARTBEAT, topics.UP_LOG) == (P.UP_HEARTBEAT, P.UP_LOG)
    assert keywrap.CNF_ENCRYPTED_COSE_KEY == P.CNF_ENCRYPTED_KEY
    assert keywrap.IV_LEN == P.WRAP_IV_LEN and keywrap.SECRET_LEN == P.SECRET_LEN
    assert registration.CHALLENGE_BYTES == P.REG_CHALLENGE_LEN
    assert cbor.TAG_COSE_SIGN1 == P.TAG_SIGN1
    assert messages.Challenge.__dataclass_fields__["window_ms"].default == P.CHALLENGE_WINDOW_MS
    assert P.POLICY["window_ms"][0] == P.CHALLENGE_WINDOW_MS


def test_the_prose_that_quotes_budgets_matches_the_definition() -> None:
    # §11, §12 and the threat model (§16) and docs/firmware.md state the budgets in prose;
    # the §15 table is generated, these sentences are checked against the same numbers
    spec = " ".join((ROOT / "docs" / "protocol.md").read_text(encoding="utf-8").split())
    firmware = " ".join((ROOT / "docs" / "firmware.md").read_text(encoding="utf-8").split())
    minutes = P.RECORD_REFILL_MS // 60_000
    for text in (
        f"at most {P.PEER_RECORDS} per connection, at most {P.KEY_RECORDS} proof failures "
        f"per key ID", f"({P.RECORD_BUCKET} records, one more every {minutes} minutes)",
        f"most {P.VERIFY_BUDGET} Ed25519 verifies (credentials, time statements, revocation "
        f"updates) and {P.REFUSAL_BUDGET} refusals",
        f"({P.VERIFY_BUDGET} verifies, {P.REFUSAL_BUDGET} refusals, then `RATE_LIMITED`",
        f"({P.PEER_RECORDS} per connection, {P.KEY_RECORDS} per key ID, a shared bucket of "
        f"{P.RECORD_BUCKET}",
    ):
        assert text in spec, text
    assert f"({P.VERIFY_BUDGET} verifies, {P.REFUSAL_BUDGET} refusals before a proof)" in firmware
    assert f"≤ {P.PEER_RECORDS} per connection and ≤ {P.KEY_RECORDS} per key ID" in firmware
