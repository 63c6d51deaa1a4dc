"""`kagiya server run` with an unusable database URL: one line naming the URL (never its
password) and exit status 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.live import free_port


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("bogus://x", "bogus://x"),
        ("not a url", "not a url"[:3]),
        (f"postgresql+psycopg://kagiya:hunter2@127.0.0.1:{free_port()}/db", "kagiya:***@"),
    ],
)
def test_unusable_database_url_is_one_clear_line(url: str, shown: str, tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "kagiya.server", "run", "--db", url, "--data-dir", str(tmp_path),
         "--port", str(free_port())],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.startswith("kagiya server: cannot open the database ")
    assert shown in res.stderr
    assert "hunter2" not in res.stderr + res.stdout
