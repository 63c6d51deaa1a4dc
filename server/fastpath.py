"""The key-download hot path as a plain ASGI wrapper around the FastAPI app.

``GET`` / ``POST /v1/phone/keys`` is the request every phone makes before going offline, and the one
the key server must serve at scale (docs/performance.md, "Key server"). Profiling showed
the framework layers around it — middleware stack, routing over every route, dependency
injection and the threadpool hand-off — costing about as much CPU as the download itself.
This wrapper answers exactly that method and path directly with
:mod:`kagiya.server.download` (the same code the FastAPI route calls): on SQLite on the
event loop, handing a step to a thread only when it would wait for another writer; on
PostgreSQL in a worker thread. Refusals are the same problem+json documents
(:mod:`kagiya.server.problems`); everything else goes to the FastAPI app unchanged, which
also still documents the route in the OpenAPI schema.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.responses import JSONResponse
from kagiya.server.bearer import parse_bearer
from kagiya.server.db import is_sqlite
from kagiya.server.download import Ask, download, download_on_loop
from kagiya.server.dpop import RequestProof
from kagiya.server.problems import ApiError, problem_for
from kagiya.server.runtime import Runtime
from kagiya.server.schemas import DownloadIn
from pydantic import ValidationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/v1/phone/keys"  # documented in the OpenAPI by the phone router's route of that path
# Download threads (measured with bench/server.py on 2 cores). SQLite: only stores that
# would wait for the writer's turn, which admits one writer at a time anyway. PostgreSQL runs
# transactions concurrently; beyond a few threads they only contend for the GIL.
_SQLITE_THREADS = 1
_PG_THREADS = 4
# a thread inside a transaction gives up the GIL at every database call; the default 5 ms
# switch interval then lets the event loop and other threads hold it for long stretches of
# that transaction. Process-wide, so set once at startup (:func:`configure_process`).
SWITCH_INTERVAL_S = 0.001


def configure_process() -> None:
    """Process-wide interpreter settings of a serving key-server process (run at startup by
    :func:`kagiya.server.app.serving_app`, not as a side effect of building anything)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


MAX_BODY = 64 * 1024  # 64 wraps of at most 256 bytes, hex, with room to spare


def _headers(scope: Scope) -> tuple[str | None, str | None]:
    """The bearer token and the DPoP proof of a request."""
    bearer = proof = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization" and bearer is None:
            bearer = parse_bearer(value.decode("latin-1"))
        elif name == b"dpop":
            proof = value.decode("latin-1")
    return bearer, proof


async def _body(receive: Receive) -> bytes | None:
    """The request body, or None when it is larger than :data:`MAX_BODY`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _ask(scope: Scope, body: bytes | None) -> Ask:
    """The download request; :class:`ApiError` 413/422 for a body that is not a
    :class:`DownloadIn` (the same refusal FastAPI's validation gives)."""
    bearer, header = _headers(scope)
    wraps: dict[str, bytes] = {}
    if scope["method"] == "POST":
        if body is None:
            raise ApiError(413, "too-large", f"the request body exceeds {MAX_BODY} bytes")
        try:
            wraps = DownloadIn.model_validate_json(body).by_request()
        except ValidationError as exc:
            raise ApiError(
                422, "invalid-request", "the request body is not valid",
                extra={"errors": exc.errors(include_url=False, include_context=False,
                                            include_input=False)},
            ) from None
    return Ask(bearer, RequestProof(scope["method"], PATH, header), wraps)


class DownloadFastPath:
    """ASGI app: ``GET /v1/phone/keys`` served directly, everything else by ``app``."""

    def __init__(self, app: ASGIApp, runtime: Runtime, *, threads: int | None = None) -> None:
        self.app = app
        self.runtime = runtime
        # SQLite: the download runs on the event loop and a thread only takes a store that
        # would wait for another writer; PostgreSQL: the whole download runs in a thread
        self._on_loop = is_sqlite(str(runtime.engine.url))
        if threads is None:
            threads = _SQLITE_THREADS if self._on_loop else _PG_THREADS
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="kagiya-download")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # ``state``, ``openapi`` … of the FastAPI app

    def _blocking(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        return asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _serve(self, scope: Scope, body: bytes | None) -> JSONResponse:
        try:
            ask = _ask(scope, body)
            if self._on_loop:
                return await download_on_loop(self.runtime, ask, self._blocking)
            return await self._blocking(download, self.runtime, ask)
        except Exception as exc:
            return problem_for(exc)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] not in ("GET", "POST")
        ):
            await self.app(scope, receive, send)
            return
        body = await _body(receive) if scope["method"] == "POST" else b""
        resp = await self._serve(scope, body)
        await send(
            {"type": "http.response.start", "status": resp.status_code, "headers": resp.raw_headers}
        )
        await send({"type": "http.response.body", "body": resp.body})

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=False)
