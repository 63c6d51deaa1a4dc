"""Run code under the real MicroPython interpreter (unix port) from pytest.

The firmware is never tested only under CPython: every firmware test goes through here.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from kagiya.hil.board import micropython_binary

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE_LIB = ROOT / "firmware" / "lib"


def run(
    code: str,
    *,
    cwd: Path | None = None,
    extra_path: list[Path] | None = None,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = 300,
    heap: str = "4m",
) -> subprocess.CompletedProcess[bytes]:
    """Run ``code`` in a fresh ``micropython`` process with the firmware lib on its path."""
    paths = [str(p) for p in (extra_path or [])] + [str(FIRMWARE_LIB), ".frozen"]
    full_env = dict(os.environ)
    full_env["MICROPYPATH"] = ":".join(paths)
    full_env.update(env or {})
    return subprocess.run(
        [micropython_binary(), "-X", f"heapsize={heap}", "-c", code],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def run_json(code: str, **kwargs: Any) -> Any:
    """Run ``code`` (which must ``print`` one JSON document last) and return it decoded.

    Raises AssertionError with the interpreter's stderr when the process fails.
    """
    proc = run(code, **kwargs)
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        raise AssertionError(
            f"micropython exited {proc.returncode}\nstdout:\n{out}\nstderr:\n"
            f"{proc.stderr.decode(errors='replace')}"
        )
    last = out.strip().splitlines()[-1] if out.strip() else ""
    return json.loads(last)
