"""Kagiya's GATT profile (docs/protocol.md §10) and the choice of bleak backend.

On a phone or laptop the SDK uses bleak's platform backend. On the virtual bench (or with
a Bumble-supported USB dongle) set ``KAGIYA_BLE_TRANSPORT`` to a Bumble HCI transport
name, or pass ``backend=bumble_backend(...)``: the SDK code path is the same.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

SERVICE_UUID = "5d1a0001-1c6e-4b8e-9a7a-6b6167697961"
REQUEST_UUID = "5d1a0002-1c6e-4b8e-9a7a-6b6167697961"
RESPONSE_UUID = "5d1a0003-1c6e-4b8e-9a7a-6b6167697961"


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
