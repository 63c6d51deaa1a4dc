"""Kagiya's GATT profile (docs/protocol.md §10) and the choice of bleak backend.

On a phone or laptop the SDK uses bleak's platform backend. On the virtual bench (or with
a Bumble-supported USB dongle) set ``KAGIYA_BLE_TRANSPORT`` to a Bumble HCI transport
name, or pass ``backend=bumble_backend(...)``: the SDK code path is the same.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from bleak.exc import BleakError

from .client_errors import BleUnavailableError
from .protocol import REQUEST_UUID, RESPONSE_UUID, SERVICE_UUID

__all__ = ["REQUEST_UUID", "RESPONSE_UUID", "SERVICE_UUID", "Backend", "default_backend",
           "unavailable"]


class Backend(NamedTuple):
    """bleak backend classes (``None``: bleak's platform backend)."""

    scanner: Any = None
    client: Any = None


_SETUP = ("on a phone or laptop: a Bluetooth adapter, switched on, with the system's "
          "Bluetooth service running (Linux: bluetoothd and D-Bus); on the virtual bench: "
          "set KAGIYA_BLE_TRANSPORT to the transport `kagiya lock sim` prints")
# what bleak's backends say when there is no usable adapter (not a lock or link fault)
_NO_ADAPTER = ("no bluetooth adapter", "adapter", "turned off", "powered off", "not ready",
               "org.bluez", "serviceunknown", "bluetooth is not", "unsupported")


def default_backend() -> Backend:
    """Bumble on ``$KAGIYA_BLE_TRANSPORT`` when set, else bleak's platform backend.

    Raises :class:`BleUnavailableError` when the variable names a Bumble transport but
    Bumble (``kagiya[bench]``) is not installed."""
    spec = os.environ.get("KAGIYA_BLE_TRANSPORT")
    if not spec:
        return Backend()
    try:
        from kagiya.hil.bumble_backend import bumble_backend
    except ModuleNotFoundError as exc:
        raise BleUnavailableError(
            f"KAGIYA_BLE_TRANSPORT={spec} needs Bumble ({exc.name} is not installed): "
            "pip install 'kagiya[bench]', or unset it to use the platform's Bluetooth"
        ) from exc
    return Backend(*bumble_backend(spec))


def unavailable(exc: BaseException) -> BleUnavailableError | None:
    """The :class:`BleUnavailableError` for a failure that means "no BLE transport here"
    (no D-Bus socket, no adapter, Bluetooth off), or None for other failures."""
    if isinstance(exc, BleUnavailableError):
        return exc
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError, PermissionError)):
        reason = f"the system's Bluetooth service is not reachable ({exc})"
    elif isinstance(exc, BleakError) and any(w in str(exc).lower() for w in _NO_ADAPTER):
        reason = str(exc) or type(exc).__name__
    else:
        return None
    err = BleUnavailableError(f"no Bluetooth LE transport: {reason}; {_SETUP}")
    err.__cause__ = exc
    return err
