"""A throwaway PostgreSQL server on loopback for the tests and the benchmark.

Uses the Debian ``postgresql`` package's binaries (``/usr/lib/postgresql/*/bin``), which
``make test`` installs via tools/sysdeps.sh. The cluster lives in a temporary directory and
is removed on stop. PostgreSQL refuses to run as root, so under root it runs as the
``postgres`` system user (created by the Debian package).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.server.live import free_port


def pg_bin() -> Path | None:
    """Directory of the newest installed PostgreSQL server binaries, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


class TempPostgres:
    """initdb + pg_ctl start in a temp dir; ``url`` for SQLAlchemy; ``stop()`` removes it."""

    def __init__(self) -> None:
        bindir = pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (run `make sysdeps`)")
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="kagiya-pg-"))
        self.port = free_port()
        self._user: list[str] = []
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._user = ["runuser", "-u", "postgres", "--"]
        data = self.dir / "data"
        self._run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "kagiya",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        self._run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=on "
            "-c max_connections=200 -c shared_buffers=64MB",
            "start",
        )
        self.data = data

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self._user, *cmd], check=True, capture_output=True, timeout=120)

    def url(self, db: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3) of database ``db``."""
        return f"postgresql+psycopg://kagiya@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create a database (empty, or a copy of ``template``); returns its URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=kagiya dbname=postgres", autocommit=True
        ) as conn:
            clone = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{clone}')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)
