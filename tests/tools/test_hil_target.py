"""``pytest hil --target hw`` without a board refuses clearly instead of skipping all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hw_target_without_a_board_is_a_usage_error() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGIYA_HIL_")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                        "hil/scenarios/test_commands.py", "--target", "hw"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "--target hw: no board attached: set KAGIYA_HIL_PORT" in r.stderr
    env["KAGIYA_HIL_PORT"] = "/dev/kagiya-no-such-port"
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                        "hil/scenarios/test_commands.py", "--target", "hw"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 4 and "does not exist" in r.stderr
