"""Run the Alembic migrations (``migrations/``) up to head, safely from many processes.

PostgreSQL: a session advisory lock serialises concurrent starters. SQLite: an exclusive
``fcntl`` lock on a file next to the database does the same.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from alembic import command
from alembic.config import Config
from kagiya.server.db import is_sqlite
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK_ID = 0x6B677931  # "kgy1"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at our scripts and this engine."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (no-op when it is current)."""
    cfg = alembic_config(engine)
    if is_sqlite(str(engine.url)):
        db_path = engine.url.database or ""
        if not db_path or db_path == ":memory:":
            command.upgrade(cfg, "head")
            return
        lock_path = Path(db_path + ".migrate-lock")
        with open(lock_path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                command.upgrade(cfg, "head")
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_ID})
        conn.commit()
        try:
            command.upgrade(cfg, "head")
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_ID})
            conn.commit()
