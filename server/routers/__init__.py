"""The HTTP routers, one per resource. :data:`ROUTERS` is what the app mounts, in order.

Operator API (token from ``POST /v1/oauth/token``): :mod:`.users`, :mod:`.partners`,
:mod:`.locks`, :mod:`.key_requests`, :mod:`.logs`, :mod:`.installer_tokens`,
:mod:`.privacy` (data-subject requests). Installer:
``locks.installer_router``, :mod:`.maintenance`. Phones: :mod:`.phone` (``GET
/v1/phone/keys`` is answered by :mod:`kagiya.server.fastpath` before routing). Public and
OAuth: :mod:`.auth`.
"""

from __future__ import annotations

from fastapi import APIRouter
from kagiya.server.routers import (
    auth,
    installer_tokens,
    key_requests,
    locks,
    logs,
    maintenance,
    partners,
    phone,
    privacy,
    sim,
    uplink,
    users,
)

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    locks.installer_router,
    maintenance.router,
    installer_tokens.router,
    users.router,
    partners.router,
    locks.router,
    key_requests.router,
    logs.router,
    phone.router,
    uplink.router,
    sim.router,
    privacy.router,
)
