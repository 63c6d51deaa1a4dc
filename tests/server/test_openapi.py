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


def test_every_error_response_is_a_documented_problem() -> None:
    doc = openapi_schema()
    assert "Problem" in doc["components"]["schemas"]  # type: ignore[index]
    for path, ops in doc["paths"].items():  # type: ignore[union-attr]
        for method, op in ops.items():
            responses = op["responses"]
            errors = {s for s in responses if s[:1] in "45"}
            if path != "/v1/health":
                assert {"422", "503"} & errors, (method, path)
            for status in errors:
                content = responses[status]["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)
                assert content["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
            if path.startswith("/v1/") and "security" in op:
                assert "401" in errors, (method, path)


def test_operator_token_lifetime_is_documented() -> None:
    desc = openapi_schema()["components"]["securitySchemes"]["operatorToken"]  # type: ignore[index]
    assert "900" in desc["description"]
