"""Kagiya's GATT profile (docs/protocol.md §10) and the choice of bleak backend.

On a phone or laptop the SDK uses bleak's platform backend. On the virtual bench (or with
a Bumble-supported USB dongle) set ``KAGIYA_BLE_TRANSPORT`` to a Bumble HCI transport
name, or pass ``backend=bumble_backend(...)``: the SDK code path is the same.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from .protocol import REQUEST_UUID, RESPONSE_UUID, SERVICE_UUID

__all__ = ["REQUEST_UUID", "RESPONSE_UUID", "SERVICE_UUID", "Backend", "default_backend"]


class Backend(NamedTuple):
    """bleak backend classes (``None``: bleak's platform backend)."""

    scanner: Any = None
    client: Any = None


def default_backend() -> Backend:
    """Bumble on ``$KAGIYA_BLE_TRANSPORT`` when set, else bleak's platform backend."""
    spec = os.environ.get("KAGIYA_BLE_TRANSPORT")
    if not spec:
        return Backend()
    from .bumble_backend import bumble_backend

    return Backend(*bumble_backend(spec))
