"""`kagiya server run` with an unusable database URL: one line naming the URL (never its
password) and exit status 2, never a traceback; every refused `kagiya server admin` action
the same way, with its code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kagiya.tools.cli import main

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
    assert res.stderr.startswith(
        "kagiya server: error (database-unusable): cannot open the database ")
    assert shown in res.stderr
    assert "hunter2" not in res.stderr + res.stdout


def _admin(capsys: pytest.CaptureFixture[str], data: Path, action: str, *argv: str
           ) -> tuple[int, str, str]:
    """``kagiya server admin ACTION --data-dir DATA ARGV…`` in this process."""
    try:
        rc = main(["server", "admin", action, "--data-dir", str(data), *argv])
    except SystemExit as exc:
        rc = int(exc.code or 0)
    out = capsys.readouterr()
    return rc, out.out, out.err




@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["create-operator", "--name", "X", "--quota", "3", "--contract-start", "tomorrow"],
         "invalid-date"),
        (["create-operator", "--name", "X", "--quota", "3", "--contract-end", "2026-13-01"],
         "invalid-date"),
        (["create-operator", "--name", "X", "--quota", "-1"], "invalid-quota"),
        (["create-operator", "--name", "", "--quota", "3"], "invalid-name"),
        (["create-operator", "--name", "X", "--quota", "3", "--contract-start", "2027-01-01",
          "--contract-end", "2026-01-01"], "invalid-contract"),
        (["set-quota", "nosuch", "5"], "unknown-operator"),
        (["set-quota", "FIRST", "--", "-5"], "invalid-quota"),
        (["suspend-operator", "nosuch"], "unknown-operator"),
        (["end-contract", "nosuch"], "confirmation-needed"),
        (["end-contract", "nosuch", "--yes"], "unknown-operator"),
    ],
)
def test_refused_admin_action_is_one_line_with_its_code(
    args: list[str], code: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = _admin(capsys, tmp_path, "create-operator", "--name", "First", "--quota", "3")
    assert rc == 0, err
    operator_id = json.loads(out)["operator_id"]
    action, *rest = [operator_id if a == "FIRST" else a for a in args]
    rc, out, err = _admin(capsys, tmp_path, action, *rest)
    assert rc == 2, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kagiya server: error ({code}): "), lines
    rc, out, _err = _admin(capsys, tmp_path, "list-operators")
    assert [o["quota"] for o in json.loads(out)] == [3]  # nothing changed
