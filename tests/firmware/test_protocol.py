"""The firmware's protocol constants are generated from kagiya.sdk.protocol and equal it.

* drift: every committed generated region (firmware modules, docs/protocol.md tables) is
  exactly what ``make protocol`` writes; a hand edit inside a region fails here;
* determinism: running the generator twice changes nothing;
* parity under the real interpreter: every exported code, type, field, kind, UUID and
  limit the firmware has at run time equals the definition (private names, also the
  ``const()`` labels and topics, are inlined: the drift check and the golden vectors,
  which run the proofs and log hashes, cover them);
* no second copy: outside the generated regions, no firmware module assigns a name the
  generator owns or spells a GATT UUID / content type;
* nothing written by hand: outside the generated regions, no firmware module keys a map
  with a literal number, reads one with ``.get(<number>)``, spells a private claim key, a
  protocol string (content type, label, UUID, topic) or a field length of the definition
  (checked on the syntax tree, so comments and docstrings may still quote the spec).
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import cbor2
import pytest
from kagiya.sdk import protocol as P
from kagiya.sdk import protocol_gen as gen

from tests.mpy import FIRMWARE_LIB, ROOT, run_json

FW = FIRMWARE_LIB / "kagiya_lock"
BLE_SHIM = ROOT / "hil" / "vble" / "mpy" / "bluetooth.py"  # ble.py imports ``bluetooth``


def test_committed_files_equal_the_generator_output() -> None:
    for path, render in gen.targets(ROOT).items():
        text = path.read_text(encoding="utf-8")
        assert render(text) == text, f"{path} differs from `make protocol`: run it"


def test_generator_is_deterministic_and_repairs_a_hand_edit(tmp_path: Path) -> None:
    for path in gen.targets(ROOT):
        dest = tmp_path / path.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest)
    errors_py = tmp_path / gen.FIRMWARE / "errors.py"
    errors_py.write_text(errors_py.read_text().replace("BAD_PROOF = const(27)",
                                                       "BAD_PROOF = const(99)"))
    assert gen.generate(tmp_path) == [errors_py]  # the hand edit is detected and repaired
    assert gen.generate(tmp_path) == []  # a second run changes nothing
    for path in gen.targets(ROOT):
        assert (tmp_path / path.relative_to(ROOT)).read_bytes() == path.read_bytes()


def test_generator_refuses_a_file_without_markers(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for path in gen.targets(ROOT):
        dest = tmp_path / path.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest)
    session = tmp_path / gen.FIRMWARE / "session.py"
    session.write_text(session.read_text().replace(gen.END, "# end"))
    assert gen.main([str(tmp_path)]) == 1
    assert "session.py" in capsys.readouterr().err


_PARITY = r"""
import json
from kagiya_lock import ble, cbor, cose, credential, errors, framing, identity, lock, messages
from kagiya_lock import maintenance, policy, ratelimit, revocation, session
out = {
    "budgets": [ratelimit.VERIFY_BUDGET, ratelimit.REFUSAL_BUDGET, ratelimit.BUCKET_SIZE,
                ratelimit.BUCKET_REFILL_MS],
    "policy": {k: list(v) for k, v in policy.BOUNDS.items()},
    "maintenance": [maintenance.CT_MAINTENANCE, maintenance.MAX_LIFETIME,
                    maintenance.CHALLENGE_S, list(maintenance.SCOPES), maintenance.E_MAINTENANCE,
                    maintenance.E_LOCKDOWN, maintenance.E_ANCHORS_CHANGED],
    "links": [session.AUTH_DEADLINE_MS, ble.MAX_CONNECTIONS, ble.PREFERRED_MTU],
    "cose": [cose.ALG_EDDSA, cose.ALG_CCM_16_128_128, cose.ALG_ECDH_ES_HKDF_256],
    "errors": {n: getattr(errors, n) for n in %(errors)r},
    "names": {str(c): errors.name(c) for c in %(codes)r + [6, 39, 255]},
    "types": {n: getattr(messages, n) for n in %(types)r},
    "decoded": [messages.decode(bytes.fromhex(m))[1] for m in %(probes)r],
    "key_mac": messages.KEY_MAC,
    "uuids": [ble.SERVICE_UUID, ble.REQUEST_UUID, ble.RESPONSE_UUID],
    "claims": [credential.ISS, credential.SUB, credential.AUD, credential.EXP, credential.NBF,
               credential.IAT, credential.CTI, credential.CNF, credential.PERM,
               credential.RV],
    "limits": [cbor.MAX_MESSAGE, framing.MAX_MESSAGE, lock.MAX_MESSAGE, cbor.MAX_DEPTH,
               cbor.MAX_ITEMS, cbor.MAX_TEXT, credential.MAX_CREDENTIAL,
               credential.MAX_LIFETIME, revocation.MAX_ENTRIES, identity.MAX_ANCHORS,
               framing.TIMEOUT_MS],
    "version": lock.VERSION,
    "ct": [lock.CT_TIME, revocation.CT_REVOCATION, credential.CT_CWT],
}
print(json.dumps(out))
"""


_VALID = {P.Kind.U8: 1, P.Kind.U16: 1, P.Kind.U32: 1, P.Kind.U64: 1, P.Kind.B16: bytes(16),
          P.Kind.B32: bytes(32), P.Kind.B64: bytes(64), P.Kind.BYTES: b"",
          P.Kind.KEY: bytes(32), P.Kind.TEXT: "x", P.Kind.LOCK_ID: "KGY-1",
          P.Kind.BOOL: True, P.Kind.UINTS: [2], P.Kind.BLOBS: [b""],
          P.Kind.COMMAND: min(P.SESSION_COMMANDS)}


def _schema_probes() -> list[tuple[str, int]]:
    """(CBOR hex, expected code) pairs that exercise every entry of messages' _SCHEMA:
    each type with all its fields (OK), each field missing (MALFORMED, OK if optional),
    each field mistyped (MALFORMED) and the unused type numbers (UNKNOWN_MESSAGE)."""
    out = []
    for t, m in P.MESSAGES.items():
        full = {P.KEY_TYPE: t.value, **{f.key: _VALID[f.kind] for f in m.fields}}
        out.append((full, P.ErrorCode.OK))
        for f in m.fields:
            out.append(({k: v for k, v in full.items() if k != f.key},
                        P.ErrorCode.OK if f.optional else P.ErrorCode.MALFORMED))
            out.append(({**full, f.key: None}, P.ErrorCode.MALFORMED))
    used = {t.value for t in P.MESSAGES}
    out += [({P.KEY_TYPE: t}, P.ErrorCode.UNKNOWN_MESSAGE) for t in range(-1, 40)
            if t not in used]
    return [(cbor2.dumps(m).hex(), int(code)) for m, code in out]


def test_firmware_values_equal_the_definition_under_micropython() -> None:
    probes = _schema_probes()
    got = run_json(_PARITY % {"types": [t.name for t in P.MessageType],
                              "errors": [c.name for c in P.ErrorCode],
                              "codes": [c.value for c in P.ErrorCode],
                              "probes": [m for m, _ in probes]},
                   extra_path=[BLE_SHIM.parent])
    assert got["errors"] == {c.name: c.value for c in P.ErrorCode}
    assert got["names"] == {**{str(c.value): c.name for c in P.ErrorCode},
                            "6": "E6", "39": "E39", "255": "E255"}
    assert got["types"] == {t.name: t.value for t in P.MessageType}
    assert got["decoded"] == [code for _, code in probes]  # messages' _SCHEMA is §9's table
    assert got["key_mac"] == P.KEY_MAC
    assert got["uuids"] == [P.SERVICE_UUID, P.REQUEST_UUID, P.RESPONSE_UUID]
    assert got["claims"] == [int(c) for c in (
        P.Claim.ISS, P.Claim.SUB, P.Claim.AUD, P.Claim.EXP, P.Claim.NBF, P.Claim.IAT,
        P.Claim.CTI, P.Claim.CNF, P.Claim.KGY_PERM, P.Claim.KGY_RV)]
    assert got["limits"] == [P.MAX_MESSAGE] * 3 + [
        P.MAX_DEPTH, P.MAX_ITEMS, P.MAX_TEXT, P.MAX_CREDENTIAL, P.MAX_LIFETIME_S,
        P.MAX_REVOCATION_ENTRIES, P.MAX_TRUST_ANCHORS, P.REASSEMBLY_TIMEOUT_MS]
    assert got["version"] == P.VERSION
    assert got["ct"] == [P.CT_TIME, P.CT_REVOCATION, P.CT_CWT]
    assert got["budgets"] == [P.VERIFY_BUDGET, P.REFUSAL_BUDGET, P.RECORD_BUCKET,
                              P.RECORD_REFILL_MS]
    assert got["policy"] == {k: list(v) for k, v in P.POLICY.items()}
    assert got["maintenance"] == [
        P.CT_MAINTENANCE, P.MAINTENANCE_MAX_LIFETIME_S, P.MAINTENANCE_CHALLENGE_S,
        list(P.MAINTENANCE_SCOPES), P.LogEvent.MAINTENANCE, P.LogEvent.LOCKDOWN,
        P.LogEvent.ANCHORS_CHANGED]
    assert got["links"] == [P.AUTH_DEADLINE_MS, P.MAX_CONNECTIONS, P.MAX_MTU]
    assert got["cose"] == [P.ALG_EDDSA, P.ALG_AES_CCM_16_128_128, P.ALG_ECDH_ES_HKDF_256]


def _outside_generated(text: str) -> str:
    """``text`` without its generated region."""
    i = text.find(gen.BEGIN)
    if i < 0:
        return text
    return text[:i] + text[text.index(gen.END, i):]


def _assigned(line: str) -> str | None:
    m = re.match(r"(\w+) = ", line)
    return m.group(1) if m else None


def test_no_firmware_module_keeps_its_own_copy() -> None:
    exported = {_assigned(line) for b in gen.FIRMWARE_BLOCKS.values() for line in b()}
    everywhere = {n for n in exported if n and not n.startswith("_")} - {
        t.name for t in P.MessageType}  # framing.ERROR is a reassembler status
    spelled = [P.SERVICE_UUID[4:], P.CT_TIME, P.CT_REVOCATION] + [
        f'b"{x.decode()}"' for x in (P.LABEL_CMD, P.LABEL_RES, P.LABEL_LOG, P.LABEL_HEAD,
                                     P.LABEL_BEAT)]
    offenders = []
    for path in sorted(FW.rglob("*.py")):
        block = gen.FIRMWARE_BLOCKS.get(path.name, list)
        own = {_assigned(line) for line in block()} - {None}
        for line in _outside_generated(path.read_text(encoding="utf-8")).splitlines():
            name = _assigned(line)
            if name and (name in own or name in everywhere):
                offenders.append(f"{path.name}: {line}")
            offenders += [f"{path.name}: {line}" for s in spelled if s in line]
    assert offenders == []


# modules of the cryptographic primitives: their numbers are the algorithms', not the protocol's
_PRIMITIVES = ("_fe_", "_sha512", "aesccm", "crc32", "ed25519", "hkdf", "mac", "sha512",
               "x25519")
#: byte lengths the definition fixes (nonce, cti, key ID, key wrap IV, keys and MACs)
_LENGTHS = {P.NONCE_LEN, P.CTI_LEN, P.KEY_ID_LEN, P.WRAP_IV_LEN, P.SECRET_LEN,
            P.REG_CHALLENGE_LEN, *P.KIND_LEN.values()}
_STRINGS = (P.SERVICE_UUID[8:], P.CT_TIME, P.CT_REVOCATION, P.CT_MAINTENANCE,
            P.CT_DECOMMISSION, P.CT_LOG_RECEIPT, P.UPLINK_PREFIX, P.UP_HEARTBEAT, P.UP_LOG,
            "/" + P.UPLINK_DOWN, *(x.decode() for x in (
                P.LABEL_CMD, P.LABEL_RES, P.LABEL_LOG, P.LABEL_HEAD, P.LABEL_BEAT, P.LABEL_REG)))


def _int(node: ast.AST) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _int(node.operand)
        return None if v is None else -v
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _callee(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def hand_written(source: str) -> list[tuple[int, str]]:
    """(line, what) for every protocol number or string ``source`` writes by hand outside
    its generated region."""
    lines = source.splitlines()
    begin = next((n for n, line in enumerate(lines, 1) if line == gen.BEGIN), 0)
    end = next((n for n, line in enumerate(lines, 1) if line == gen.END), 0)
    tree = ast.parse(source)
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)
                  and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}
    out = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if begin <= line <= end:
            continue
        if isinstance(node, ast.Dict) and any(k is not None and _int(k) is not None
                                              for k in node.keys):
            out.append((line, "a map with literal number keys"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "get" and node.args and _int(node.args[0]) is not None:
            out.append((line, f".get({_int(node.args[0])})"))
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Call) \
                and isinstance(node.left.func, ast.Name) and node.left.func.id == "len" \
                and any(_int(c) in _LENGTHS for c in node.comparators):
            out.append((line, "a protocol length compared by hand"))
        elif isinstance(node, ast.Call) and len(node.args) == 1 \
                and _int(node.args[0]) == P.NONCE_LEN \
                and _callee(node).lstrip("_") in ("rng", "random", "urandom"):
            out.append((line, "a nonce length drawn by hand"))
        elif (v := _int(node)) is not None and v <= -65537 and isinstance(node, ast.UnaryOp):
            out.append((line, f"private claim key {v}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str | bytes) \
                and id(node) not in docstrings:
            text = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
            out += [(line, f"protocol string {s!r}") for s in _STRINGS if s in text]
    return sorted(set(out))


def _protocol_modules() -> list[Path]:
    return [p for p in sorted(FW.rglob("*.py")) if not p.name.startswith(_PRIMITIVES)]


def test_no_firmware_module_writes_protocol_vocabulary_by_hand() -> None:
    offenders = [f"{p.name}:{n}: {what}" for p in _protocol_modules()
                 for n, what in hand_written(p.read_text(encoding="utf-8"))]
    assert offenders == []


@pytest.mark.parametrize("line, what", [
    ("x = m.get(3)", ".get(3)"),
    ("body = cbor.encode({1: lock_id, 2: now})", "a map with literal number keys"),
    ("ok = len(nonce) != 16", "a protocol length compared by hand"),
    ("n = self._rng(16)", "a nonce length drawn by hand"),
    ("OP = -65541", "private claim key -65541"),
    ("t = b'kagiya/v1/locks/' + lid", "protocol string 'kagiya/v1/locks/'"),
    ("CT = 'application/kgy-time+cbor'", "protocol string 'application/kgy-time+cbor'"),
])
def test_the_vocabulary_check_finds_a_reintroduced_copy(line: str, what: str) -> None:
    # the residuals #12's review found (uplink keys, maintenance payload keys, cose lengths,
    # session nonces, hand-written claim keys, topics), each re-introduced in a module body
    src = (FW / "session.py").read_text(encoding="utf-8") + "\n\ndef _f():\n    " + line + "\n"
    assert [w for _, w in hand_written(src)] == [what]
