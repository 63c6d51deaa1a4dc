"""Schema-driven fuzz (schemathesis) of every endpoint of a running server: zero 5xx, and
every answer conforms to docs/openapi.json (documented status code, content type and schema).

Bounded to a few examples per operation (a few hundred requests in all) to keep the suite
quick; run once with an operator token and once with a phone token on the phone endpoints.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kagiya.server.client import OperatorClient, PhoneClient, new_device_key

from tests.server.live import LiveServer
from tests.server.test_live import _setup

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


def _run(url: str, token: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            "--max-examples",
            "4",
            "--seed",
            "7261",
            "--no-shrink",
            "--phases",
            "examples,fuzzing",
            "-H",
            f"Authorization: Bearer {token}",
            "--request-timeout",
            "20",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
        cwd=cwd,  # schemathesis keeps a cache directory in its working directory
    )


def test_fuzz_every_endpoint_no_5xx_and_conformant(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    new, _now = _setup(db_url, data)
    srv = LiveServer(db_url, data)
    try:
        op = OperatorClient.login(srv.url, new.client_id, new.client_secret)
        uid = op.create_user()["user_id"]
        phone = PhoneClient.enroll(srv.url, op.enrollment_code(uid)["code"], new_device_key())
        res = _run(srv.url, str(op.token), tmp_path)
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
        res = _run(srv.url, str(phone.token), tmp_path, "--include-path-regex", "^/v1/phone")
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    finally:
        srv.stop()
