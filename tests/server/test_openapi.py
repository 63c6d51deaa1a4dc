"""docs/openapi.json is the served schema (regenerate: see docs/server.md)."""

from __future__ import annotations

import json
from pathlib import Path

from kagiya.server.app import openapi_schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_checked_in_openapi_matches_the_app() -> None:
    assert json.loads(DOC.read_text()) == json.loads(json.dumps(openapi_schema())), (
        "regenerate docs/openapi.json: python -m kagiya.server openapi > docs/openapi.json"
    )


def test_no_admin_surface_over_http() -> None:
    paths = openapi_schema()["paths"]
    assert not any("admin" in p or "operators" in p for p in paths)  # type: ignore[union-attr]
