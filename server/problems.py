"""Errors as RFC 9457 problem details (``application/problem+json``).

Every refusal has a stable machine-readable ``code``; the ``type`` URI is derived from it.
Client mistakes are always 4xx; no handler turns a client mistake into a 5xx.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://kagiya.example/problems/"
log = logging.getLogger("kagiya.server")

_STATUS_CODES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-request",
    429: "rate-limited",
}


class ApiError(Exception):
    """A refusal: HTTP status, stable code, human title and detail."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or code.replace("-", " ")
        self.headers = headers or {}
        self.extra = extra or {}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title or code.replace("-", " "),
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def not_found(what: str) -> ApiError:
    """404 for a resource that does not exist *for this caller* (never says whose it is)."""
    return ApiError(404, "not-found", f"{what} not found")


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        out.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return out


def problem_for(exc: Exception) -> JSONResponse:
    """The problem document for an exception raised while serving a request: the refusal an
    :class:`ApiError` carries, 503 for a database that is unavailable, else 500 (logged)."""
    if isinstance(exc, ApiError):
        return problem(
            exc.status, exc.code, exc.detail, title=exc.title, headers=exc.headers, extra=exc.extra
        )
    if isinstance(exc, OperationalError):
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return problem(
            503, "unavailable", "the database is busy; retry", headers={"Retry-After": "1"}
        )
    log.error("internal error: %s", type(exc).__name__, exc_info=exc)
    return problem(500, "internal", "internal server error")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(ApiError)
    @app.exception_handler(OperationalError)
    @app.exception_handler(Exception)
    async def _raised(_request: Request, exc: Exception) -> JSONResponse:
        return problem_for(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(
            422,
            "invalid-request",
            "the request does not match the schema",
            extra={"errors": _clean_errors(exc.errors())},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, code, str(exc.detail), headers=headers)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for routes that can answer ``statuses`` as problem documents
    (FastAPI's default 422 schema is replaced: every error is ``application/problem+json``)."""
    from kagiya.server.schemas import Problem  # schemas import nothing from here

    return {s: {"model": Problem, "description": _DESCRIPTIONS[s]} for s in statuses}


def problem_media_type(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare every 4xx/5xx response of an OpenAPI document as ``application/problem+json``
    (FastAPI files a response ``model`` under ``application/json``), and 413 ``too-large``
    for every operation that takes a body (:mod:`kagiya.server.bodylimit`)."""
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path in schema.get("paths", {}).values():
        for op in path.values():
            if "requestBody" in op:
                op.setdefault("responses", {}).setdefault("413", {
                    "description": _DESCRIPTIONS[413],
                    "content": {PROBLEM_JSON: {"schema": problem_ref}}})
            for status, resp in op.get("responses", {}).items():
                content = resp.get("content", {})
                if status[:1] in "45" and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
    return schema


_DESCRIPTIONS = {
    400: "the body cannot be parsed (not UTF-8 JSON); OAuth: unsupported grant type",
    401: "no, an invalid or an expired token (code unauthorized / invalid-token / token-expired)",
    403: "not allowed: wrong token kind, suspended operator/user, quota, bad proof",
    404: "not found (another operator's object is not found either)",
    409: "conflicts with the current state (exists, suspended, cancelled, leaked)",
    413: "the request body is too large (code too-large)",
    422: "the request does not match the schema (code invalid-request, with errors) or a rule",
    429: "rate-limited: retry after Retry-After seconds",
    503: "the database is busy: retry after Retry-After seconds",
}
# what an operator/installer route can answer; phones add 429
OPERATOR_ERRORS = (400, 401, 403, 404, 409, 422, 503)
PHONE_ERRORS = (400, 401, 403, 404, 409, 422, 429, 503)
