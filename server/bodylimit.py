"""A ceiling on request bodies (ASGI), in front of every route but the key download (which
has its own, :data:`kagiya.server.fastpath.MAX_BODY`).

Starlette reads a body whole into memory before validation can refuse it, so without a
ceiling one request without a token (``POST /v1/phone/enroll``, ``/v1/oauth/token``) could
make a process hold hundreds of megabytes. A declared ``Content-Length`` above
:data:`MAX_REQUEST_BODY` is refused at once, before anything is read; a chunked body is
read up to the ceiling and then refused. Either way: 413 ``too-large``.
"""

from __future__ import annotations

from typing import Any

from kagiya.server.problems import problem
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: the largest body any route takes: a log page (512 records of 256 bytes, hex) is about
#: 270 KB, a notice (2 x 20,000 characters, JSON-escaped) under 300 KB
MAX_REQUEST_BODY = 1024 * 1024


def _declared(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI wrapper: 413 ``too-large`` for a request body over ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int = MAX_REQUEST_BODY) -> None:
        self.app = app
        self.limit = limit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # ``state``, ``openapi`` … of the FastAPI app

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        resp = problem(413, "too-large", f"the request body exceeds {self.limit} bytes",
                       headers={"Connection": "close"})
        await resp(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared(scope)
        if declared is not None:
            if declared > self.limit:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server holds the client to it
            return
        # no Content-Length (chunked): read up to the ceiling, then hand the body on
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that first gives ``messages``, then the connection's own."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
