"""Protocol error codes (docs/protocol.md §13) as small ints."""

from micropython import const

OK = const(0)
MALFORMED = const(1)
TOO_LARGE = const(2)
UNSUPPORTED_VERSION = const(3)
UNKNOWN_MESSAGE = const(4)
FRAMING = const(5)
UNKNOWN_ISSUER = const(16)
BAD_SIGNATURE = const(17)
WRONG_ALGORITHM = const(18)
WRONG_CONTENT_TYPE = const(19)
WRONG_LOCK = const(20)
NOT_YET_VALID = const(21)
EXPIRED = const(22)
REVOKED = const(23)
PERMISSION_DENIED = const(24)
WRONG_RECIPIENT = const(25)
BAD_KEY_WRAP = const(26)
BAD_PROOF = const(27)
STALE_CHALLENGE = const(28)
REPLAYED = const(29)
KEY_UNKNOWN = const(30)
STALE_UPDATE = const(31)
RATE_LIMITED = const(32)
VEHICLE_MOVING = const(33)
BUSY = const(34)
NOT_PROVISIONED = const(35)
INVALID_CLAIMS = const(36)
INTERNAL = const(63)

NAMES = {
    0: "OK", 1: "MALFORMED", 2: "TOO_LARGE", 3: "UNSUPPORTED_VERSION", 4: "UNKNOWN_MESSAGE",
    5: "FRAMING", 16: "UNKNOWN_ISSUER", 17: "BAD_SIGNATURE", 18: "WRONG_ALGORITHM",
    19: "WRONG_CONTENT_TYPE", 20: "WRONG_LOCK", 21: "NOT_YET_VALID", 22: "EXPIRED",
    23: "REVOKED", 24: "PERMISSION_DENIED", 25: "WRONG_RECIPIENT", 26: "BAD_KEY_WRAP",
    27: "BAD_PROOF", 28: "STALE_CHALLENGE", 29: "REPLAYED", 30: "KEY_UNKNOWN",
    31: "STALE_UPDATE", 32: "RATE_LIMITED", 33: "VEHICLE_MOVING", 34: "BUSY",
    35: "NOT_PROVISIONED", 36: "INVALID_CLAIMS", 63: "INTERNAL",
}


def name(code):
    """The §13 name of ``code`` (``"E<n>"`` for an unknown code)."""
    return NAMES.get(code, "E%d" % code)
