"""Protocol error codes (docs/protocol.md §13) and the one exception the SDK raises on bad input.

Every refusal of hostile or invalid bytes anywhere in :mod:`kagiya.sdk` is a
:class:`ProtocolError` carrying one of these codes; nothing else escapes a decoder or verifier.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """The error codes of protocol v1 (docs/protocol.md §13); numbers are wire values."""

    OK = 0
    MALFORMED = 1
    TOO_LARGE = 2
    UNSUPPORTED_VERSION = 3
    UNKNOWN_MESSAGE = 4
    FRAMING = 5
    UNKNOWN_ISSUER = 16
    BAD_SIGNATURE = 17
    WRONG_ALGORITHM = 18
    WRONG_CONTENT_TYPE = 19
    WRONG_LOCK = 20
    NOT_YET_VALID = 21
    EXPIRED = 22
    REVOKED = 23
    PERMISSION_DENIED = 24
    WRONG_RECIPIENT = 25
    BAD_KEY_WRAP = 26
    BAD_PROOF = 27
    STALE_CHALLENGE = 28
    REPLAYED = 29
    KEY_UNKNOWN = 30
    STALE_UPDATE = 31
    RATE_LIMITED = 32
    VEHICLE_MOVING = 33
    BUSY = 34
    NOT_PROVISIONED = 35
    INVALID_CLAIMS = 36
    INTERNAL = 63


class ProtocolError(Exception):
    """A refusal with a protocol error code (§13) and a human-readable detail."""

    code: ErrorCode
    detail: str

    def __init__(self, code: ErrorCode | int, detail: str = "") -> None:
        self.code = ErrorCode(code)
        self.detail = detail
        super().__init__(code, detail)

    def __str__(self) -> str:
        if self.detail:
            return f"{self.code.name} ({int(self.code)}): {self.detail}"
        return f"{self.code.name} ({int(self.code)})"

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.name}, {self.detail!r})"


def code_name(code: int) -> str:
    """The §13 name of ``code``, or ``"E<n>"`` for a number the protocol does not define."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"E{code}"
