"""The firmware's protocol constants are generated from kagiya.sdk.protocol and equal it.

* drift: every committed generated region (firmware modules, docs/protocol.md tables) is
  exactly what ``make protocol`` writes; a hand edit inside a region fails here;
* determinism: running the generator twice changes nothing;
* parity under the real interpreter: every exported code, type, field, kind, UUID and
  limit the firmware has at run time equals the definition;
* no second copy: outside the generated regions, no firmware module assigns a name the
  generator owns or spells a GATT UUID / content type.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

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
from kagiya_lock import ble, cbor, credential, errors, framing, identity, lock, messages
from kagiya_lock import log, proof, revocation
out = {
    "errors": {n: getattr(errors, n) for n in errors.NAMES.values()},
    "names": {str(k): v for k, v in errors.NAMES.items()},
    "types": {n: getattr(messages, n) for n in %(types)r},
    "schema": {str(k): [list(f) for f in v] for k, v in messages.SCHEMA.items()},
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
    "labels": [x.decode() for x in (proof._CMD, proof._RES, log._LOG_LABEL, log._HEAD_LABEL)],
}
print(json.dumps(out))
"""


def test_firmware_values_equal_the_definition_under_micropython() -> None:
    got = run_json(_PARITY % {"types": [t.name for t in P.MessageType]},
                   extra_path=[BLE_SHIM.parent])
    assert got["errors"] == {c.name: c.value for c in P.ErrorCode}
    assert got["names"] == {str(c.value): c.name for c in P.ErrorCode}
    assert got["types"] == {t.name: t.value for t in P.MessageType}
    assert got["schema"] == {
        str(t.value): [[f.key, f.kind.value, int(f.optional)] for f in m.fields]
        for t, m in P.MESSAGES.items()}
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
    assert got["labels"] == [x.decode() for x in (P.LABEL_CMD, P.LABEL_RES, P.LABEL_LOG,
                                                  P.LABEL_HEAD)]


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
