"""Exceptions of the BLE client: lock refusals (typed, with the §13 code) and link faults.

A refusal by the lock is a :class:`LockRefusedError` (a :class:`ProtocolError`, so
``err.code`` is the :class:`ErrorCode`), with a subclass for the refusals an app
usually handles on its own. Link faults are :class:`LinkError` subclasses; when a
link fails after a command was sent and before an authenticated reply arrived,
the client raises :class:`CommandOutcomeUnknownError` - never success.
"""

from __future__ import annotations

from .errors import ErrorCode, ProtocolError


class LockRefusedError(ProtocolError):
    """The lock refused the request; ``code`` says why (docs/protocol.md §13)."""

    state: int | None = None


class KeyExpiredError(LockRefusedError):
    """EXPIRED: the key's window has ended."""


class KeyNotYetValidError(LockRefusedError):
    """NOT_YET_VALID: the key's window has not started (or the lock's clock is behind)."""


class KeyRevokedError(LockRefusedError):
    """REVOKED: the key was revoked by a server-signed update."""


class WrongLockError(LockRefusedError):
    """WRONG_LOCK: the key is for another lock."""


class PermissionDeniedError(LockRefusedError):
    """PERMISSION_DENIED: the key lacks the permission for this command."""


class LockBusyError(LockRefusedError):
    """BUSY: a request is still in progress on this connection, or its session reached
    its cap (reconnect)."""


class RateLimitedError(LockRefusedError):
    """RATE_LIMITED: too many authentication failures; retry later."""


class VehicleMovingError(LockRefusedError):
    """VEHICLE_MOVING: drive cannot be disabled while the vehicle moves."""


class PresenceRequiredError(LockRefusedError):
    """PRESENCE_REQUIRED: drive is enabled only with someone in the vehicle: press the
    brake pedal or the start button (within the lock's window, before or after)."""


class TimeUntrustedError(LockRefusedError):
    """TIME_UNTRUSTED: the lock lost its time in a power cut and needs a fresh time
    statement from the key server (the phone must be online once at the vehicle)."""


_BY_CODE: dict[int, type[LockRefusedError]] = {
    ErrorCode.EXPIRED: KeyExpiredError,
    ErrorCode.NOT_YET_VALID: KeyNotYetValidError,
    ErrorCode.REVOKED: KeyRevokedError,
    ErrorCode.WRONG_LOCK: WrongLockError,
    ErrorCode.PERMISSION_DENIED: PermissionDeniedError,
    ErrorCode.BUSY: LockBusyError,
    ErrorCode.RATE_LIMITED: RateLimitedError,
    ErrorCode.VEHICLE_MOVING: VehicleMovingError,
    ErrorCode.PRESENCE_REQUIRED: PresenceRequiredError,
    ErrorCode.TIME_UNTRUSTED: TimeUntrustedError,
}


def refusal(code: int, detail: str = "", state: int | None = None) -> LockRefusedError:
    """The typed exception for a refusal ``code``."""
    try:
        ErrorCode(code)
    except ValueError:
        code = ErrorCode.INTERNAL
    err = _BY_CODE.get(code, LockRefusedError)(code, detail)
    err.state = state
    return err


class LinkError(Exception):
    """The BLE link failed (not found, lost, timed out).

    Classified like a :class:`ProtocolError`: ``retryable`` (a new connection can succeed)
    and ``may_have_succeeded`` (a command may have run: never report it as failed).
    """

    retryable: bool = True
    may_have_succeeded: bool = False


class BleUnavailableError(LinkError):
    """No BLE transport to use: no Bluetooth adapter, Bluetooth turned off, the system's
    Bluetooth service (BlueZ over D-Bus on Linux) not reachable, or the bench transport
    named by ``$KAGIYA_BLE_TRANSPORT`` not installed. Not retryable as it is: the message
    says what to set up."""

    retryable = False


class LockNotFoundError(LinkError):
    """No lock with that lock ID advertised within the timeout."""


class LinkLostError(LinkError):
    """The connection dropped."""


class LockTimeoutError(LinkError):
    """The lock did not answer in time."""


class ReplyNotAuthenticError(LinkError):
    """A reply's MAC did not verify (or did not match the request): not a success."""

    may_have_succeeded = True


class UpdateNotAppliedError(LinkError):
    """The lock's authenticated reply shows it lacks the revocation update this phone
    carries, even after pushing it again (a man in the middle dropping it). The command
    itself may have succeeded; the update is not applied: try again."""


class CommandOutcomeUnknownError(LinkError):
    """The command was sent but no authenticated reply arrived (link lost or timed out).

    The lock may or may not have acted; the phone must not report success. Kagiya's
    commands set a state (doors locked/unlocked, drive on/off), so repeating the command
    on a new connection is safe and tells the outcome.
    """

    may_have_succeeded = True
