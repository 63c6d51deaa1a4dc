"""Kagiya host SDK (``kagiya.sdk``): the protocol library and the BLE client integrators import.

The public surface an app needs is importable from here, like bleak's ``BleakClient`` /
``BleakScanner`` (docs/sdk.md)::

    from kagiya.sdk import DigitalKey, LockClient, Wallet, find_lock, KeyExpiredError

* the client: :func:`find_lock`, :class:`LockClient`, :class:`DigitalKey`, :class:`Wallet`,
  :class:`CommandResult`, :class:`LockLog`;
* the lock's state: :class:`LockState` (bits with readable properties; ``str()`` and
  ``describe()`` give words), :class:`Command`, :class:`Permission`, :class:`ErrorCode`;
* the refusals (:class:`LockRefusedError` and one subclass per refusal an app handles) and
  link faults (:class:`LinkError` and its subclasses, :class:`BleUnavailableError` when
  there is no Bluetooth to use).

Names load on first use, so ``import kagiya.sdk.credential`` (a key server) does not import
the BLE stack. The transport-free modules (``kagiya.sdk.credential``, ``messages``, …) stay
where they are.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module (relative to this package) that defines it
_EXPORTS: dict[str, str] = {
    "find_lock": "client",
    "LockClient": "client",
    "LockLog": "client",
    "DigitalKey": "client_keys",
    "Wallet": "client_keys",
    "CommandResult": "client_session",
    "LockState": "protocol",
    "Command": "protocol",
    "Permission": "protocol",
    "ErrorCode": "protocol",
    "ProtocolError": "errors",
    "LockRefusedError": "client_errors",
    "KeyExpiredError": "client_errors",
    "KeyNotYetValidError": "client_errors",
    "KeyRevokedError": "client_errors",
    "WrongLockError": "client_errors",
    "PermissionDeniedError": "client_errors",
    "LockBusyError": "client_errors",
    "RateLimitedError": "client_errors",
    "VehicleMovingError": "client_errors",
    "PresenceRequiredError": "client_errors",
    "TimeUntrustedError": "client_errors",
    "LinkError": "client_errors",
    "BleUnavailableError": "client_errors",
    "LockNotFoundError": "client_errors",
    "LinkLostError": "client_errors",
    "LockTimeoutError": "client_errors",
    "ReplyNotAuthenticError": "client_errors",
    "UpdateNotAppliedError": "client_errors",
    "CommandOutcomeUnknownError": "client_errors",
}

__all__ = [
    "BleUnavailableError",
    "Command",
    "CommandOutcomeUnknownError",
    "CommandResult",
    "DigitalKey",
    "ErrorCode",
    "KeyExpiredError",
    "KeyNotYetValidError",
    "KeyRevokedError",
    "LinkError",
    "LinkLostError",
    "LockBusyError",
    "LockClient",
    "LockLog",
    "LockNotFoundError",
    "LockRefusedError",
    "LockState",
    "LockTimeoutError",
    "Permission",
    "PermissionDeniedError",
    "PresenceRequiredError",
    "ProtocolError",
    "RateLimitedError",
    "ReplyNotAuthenticError",
    "TimeUntrustedError",
    "UpdateNotAppliedError",
    "VehicleMovingError",
    "Wallet",
    "WrongLockError",
    "find_lock",
]

if TYPE_CHECKING:
    from .client import LockClient, LockLog, find_lock
    from .client_errors import (
        BleUnavailableError,
        CommandOutcomeUnknownError,
        KeyExpiredError,
        KeyNotYetValidError,
        KeyRevokedError,
        LinkError,
        LinkLostError,
        LockBusyError,
        LockNotFoundError,
        LockRefusedError,
        LockTimeoutError,
        PermissionDeniedError,
        PresenceRequiredError,
        RateLimitedError,
        ReplyNotAuthenticError,
        TimeUntrustedError,
        UpdateNotAppliedError,
        VehicleMovingError,
        WrongLockError,
    )
    from .client_keys import DigitalKey, Wallet
    from .client_session import CommandResult
    from .errors import ProtocolError
    from .protocol import Command, ErrorCode, LockState, Permission


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kagiya.sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
