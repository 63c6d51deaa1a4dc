"""Shared FastAPI dependencies of the routers: the runtime, the bearer tokens, the
``Idempotency-Key``, the common path/query parameters and :class:`Operation`, which runs a
service function in one authenticated transaction (:meth:`Runtime.call`).

A route declares what it needs and hands the work to a service function
(:mod:`kagiya.server.services`)::

    @router.post("/users/{user_id}/suspend", response_model=UserOut)
    def suspend_user(user_id: UserIdP, op: Write) -> JSONResponse:
        return op(lambda c: users.suspend(c, user_id))

``Read`` is for calls that change nothing, ``Write`` also takes an ``Idempotency-Key``.
Declare path parameters before ``op`` so the OpenAPI parameter order stays path first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from kagiya.sdk.protocol import LOCK_ID_PATTERN
from kagiya.server.bearer import BearerScheme
from kagiya.server.principal import OPERATOR, Principal
from kagiya.server.problems import ApiError
from kagiya.server.runtime import Runtime
from kagiya.server.services.context import Ctx
from pydantic import BaseModel
from sqlalchemy.orm import Session

MAX_LIMIT = 200
OPS = (OPERATOR,)


def runtime_of(request: Request) -> Runtime:
    """The process runtime (set on ``app.state`` by :func:`kagiya.server.app.build_app`)."""
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]

# --- bearer credentials (one security scheme per token kind, as the OpenAPI shows them) --

operator_bearer = BearerScheme(
    "operatorToken",
    "token from POST /v1/oauth/token (client credentials); it lasts 900 s by default "
    "(see expires_in), then calls are refused with 401 token-expired: get a new one",
)
installer_bearer = BearerScheme("installerToken", "token from POST /v1/installer-tokens")
phone_bearer = BearerScheme(
    "phoneToken", "token from POST /v1/phone/enroll or /v1/phone/token"
)

# the caller's bearer token (None: none given; authentication then refuses with 401)
OperatorToken = Annotated[str | None, Depends(operator_bearer)]
InstallerToken = Annotated[str | None, Depends(installer_bearer)]
PhoneToken = Annotated[str | None, Depends(phone_bearer)]

IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[!-~]{1,128}$",
        description="retries with the same key within a day never repeat the change",
    ),
]

# --- common parameters --------------------------------------------------------------------

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(pattern=r"^[0-9A-Za-z_]{1,64}$")]
UserIdP = Annotated[str, Path(pattern=r"^[!-~]{1,64}$")]
LockIdP = Annotated[str, Path(pattern=f"^{LOCK_ID_PATTERN}$")]
PartnerIdP = Annotated[str, Path(pattern=r"^pt_[0-9a-f]{1,40}$")]
RequestIdP = Annotated[str, Path(pattern=r"^kr_[0-9a-f]{1,40}$")]


def parse_cursor(cursor: str | None) -> int:
    """Numeric keyset cursor (0 = from the start), 422 ``invalid-cursor`` otherwise."""
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 18:
        raise ApiError(422, "invalid-cursor", "cursor is not one this server returned")
    return int(cursor)


def _numeric_cursor(cursor: Cursor = None) -> int:
    return parse_cursor(cursor)


NumericCursor = Annotated[int, Depends(_numeric_cursor)]

# --- running a service function -------------------------------------------------------------

Service = Callable[[Ctx], "BaseModel | tuple[int, BaseModel]"]


class Operation:
    """One API call to be run: request, runtime, caller's token and idempotency key."""

    def __init__(
        self, request: Request, runtime: Runtime, token: str | None, idem: str | None = None
    ) -> None:
        self.request = request
        self.runtime = runtime
        self.token = token
        self.idempotency_key = idem

    def __call__(
        self,
        service: Service,
        *,
        status: int = 200,
        body: BaseModel | None = None,
        kinds: tuple[str, ...] = OPS,
    ) -> JSONResponse:
        """Authenticate (token kinds ``kinds``), then run ``service`` in one transaction and
        answer its schema model with ``status``. ``body`` is the request body, part of the
        idempotency fingerprint (only the fields the caller set)."""
        rt = self.runtime

        def handler(s: Session, p: Principal) -> tuple[int, BaseModel]:
            out = service(Ctx(s, p, rt.now(), rt.settings))
            return out if isinstance(out, tuple) else (status, out)  # (status, model) too

        fields = body.model_dump(mode="json", exclude_unset=True) if body is not None else None
        return rt.call(
            self.request,
            self.token,
            kinds,
            handler,
            idempotency_key=self.idempotency_key,
            body=fields,
        )


def _read(request: Request, runtime: RuntimeDep, token: OperatorToken) -> Operation:
    return Operation(request, runtime, token)


async def refuse_unexpected_body(request: Request) -> None:
    """A route that takes no body refuses one with fields, naming each (422
    ``invalid-request``, like an unknown field in a body model), instead of dropping them:
    ``POST /v1/users {"partner_id": …}`` must not look as if it had done something."""
    raw = (await request.body()).strip()
    if not raw:
        return
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if body == {}:
        return
    if isinstance(body, dict):
        errors = [
            {"loc": ["body", str(k)], "msg": "Extra inputs are not permitted",
             "type": "extra_forbidden"}
            for k in body
        ]
        names = ", ".join(str(k) for k in body)
        detail = f"this call takes no request body; unknown field(s): {names}"
    else:
        errors = [{"loc": ["body"], "msg": "this call takes no request body", "type": "no_body"}]
        detail = "this call takes no request body"
    raise ApiError(422, "invalid-request", detail, extra={"errors": errors})


async def _write(
    request: Request, runtime: RuntimeDep, token: OperatorToken, idem: IdemKey = None
) -> Operation:
    if getattr(request.scope.get("route"), "body_field", None) is None:
        await refuse_unexpected_body(request)
    return Operation(request, runtime, token, idem)


Read = Annotated[Operation, Depends(_read)]
Write = Annotated[Operation, Depends(_write)]

#: ``openapi_extra`` of a route that takes an operator's or an installer's token (the
#: dependency declares one scheme; the operation's ``kinds`` accept both)
EITHER_TOKEN: dict[str, Any] = {"security": [{"operatorToken": []}, {"installerToken": []}]}

__all__ = [
    "EITHER_TOKEN",
    "MAX_LIMIT",
    "Cursor",
    "IdemKey",
    "InstallerToken",
    "Limit",
    "LockIdP",
    "NumericCursor",
    "Operation",
    "OperatorToken",
    "PartnerIdP",
    "PhoneToken",
    "Read",
    "RequestIdP",
    "RuntimeDep",
    "UserIdP",
    "Write",
    "parse_cursor",
    "runtime_of",
]
