"""Bearer tokens (RFC 6750 §2.1): the one parser of ``Authorization: Bearer <token>``, used
by the routers' security dependencies and by the download fast path alike."""

from __future__ import annotations

from fastapi.security import HTTPBearer
from starlette.requests import HTTPConnection


def parse_bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization`` header value, or None when there is none, the
    scheme is not ``Bearer`` (case-insensitive) or the token is empty."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class BearerScheme(HTTPBearer):
    """A bearer security scheme: documented in the OpenAPI document under its
    ``scheme_name``, parsed with :func:`parse_bearer`. Never refuses by itself: a missing
    token is refused by authentication (401 ``unauthorized``) like every other refusal."""

    def __init__(self, scheme_name: str, description: str) -> None:
        super().__init__(auto_error=False, scheme_name=scheme_name, description=description)

    async def __call__(self, request: HTTPConnection) -> str | None:  # type: ignore[override]
        """The request's bearer token, or None."""
        return parse_bearer(request.headers.get("authorization"))
