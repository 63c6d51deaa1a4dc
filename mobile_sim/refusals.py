"""Plain-words explanations of every protocol refusal (docs/protocol.md §13) for people.

The phone shows ``<plain sentence> [<CODE> <n>]``: the sentence says what happened and what
to do; the code is what support and logs use.
"""

from __future__ import annotations

from kagiya.sdk.errors import ErrorCode, code_name

PLAIN: dict[ErrorCode, str] = {
    ErrorCode.OK: "Done.",
    ErrorCode.MALFORMED: "The lock could not read the request (malformed message). Update the app.",
    ErrorCode.TOO_LARGE: "The request was too large for the lock.",
    ErrorCode.UNSUPPORTED_VERSION: "This lock speaks a protocol version this app does not. "
    "Update the app or the lock firmware.",
    ErrorCode.UNKNOWN_MESSAGE: "The lock does not know this request.",
    ErrorCode.FRAMING: "The Bluetooth transfer was garbled. Try again.",
    ErrorCode.UNKNOWN_ISSUER: "The lock does not trust the server that issued this key. "
    "The lock may belong to another operator or need its trust anchors updated.",
    ErrorCode.BAD_SIGNATURE: "The key's signature is invalid; it was damaged or forged. "
    "Sync to download it again.",
    ErrorCode.WRONG_ALGORITHM: "The key uses an algorithm the lock refuses.",
    ErrorCode.WRONG_CONTENT_TYPE: "The lock was sent the wrong kind of signed object.",
    ErrorCode.WRONG_LOCK: "This key is for a different vehicle's lock.",
    ErrorCode.NOT_YET_VALID: "This key is not valid yet; its validity window has not started "
    "(or the lock's clock is behind — sync to carry a fresh time statement).",
    ErrorCode.EXPIRED: "This key has expired. Sync while online to get a fresh key.",
    ErrorCode.REVOKED: "This key was cancelled by the operator and no longer opens the vehicle.",
    ErrorCode.PERMISSION_DENIED: "This key does not allow that action.",
    ErrorCode.WRONG_RECIPIENT: "This key was issued for another lock device "
    "(the lock was replaced or re-provisioned). Sync to get a new key.",
    ErrorCode.BAD_KEY_WRAP: "The lock could not unwrap this key's secret. Sync to get a new key.",
    ErrorCode.BAD_PROOF: "The lock rejected the phone's proof; the stored key secret does not "
    "match. Sync to download the key again.",
    ErrorCode.STALE_CHALLENGE: "The Bluetooth session with the lock expired. Try again.",
    ErrorCode.REPLAYED: "The lock saw this request before (replay). Try again.",
    ErrorCode.KEY_UNKNOWN: "The lock does not know this key yet.",
    ErrorCode.STALE_UPDATE: "The lock already has this revocation update or a newer one.",
    ErrorCode.RATE_LIMITED: "Too many failed attempts at this lock; wait up to a minute and "
    "try again.",
    ErrorCode.VEHICLE_MOVING: "Drive cannot be disabled while the vehicle is moving.",
    ErrorCode.BUSY: "The lock is busy with another phone. Try again in a moment.",
    ErrorCode.NOT_PROVISIONED: "The lock is not set up yet; an installer must provision it.",
    ErrorCode.INVALID_CLAIMS: "The key's validity window is inconsistent; sync to get a new key.",
    ErrorCode.INTERNAL: "The lock had an internal error; it stays usable. Try again.",
}


def explain(code: int, detail: str = "") -> str:
    """``"<plain words> [NAME n]"`` for a protocol error code (unknown codes included)."""
    try:
        text = PLAIN[ErrorCode(code)]
    except ValueError:
        text = "The lock refused with an error this app does not know."
    suffix = f" ({detail})" if detail and code not in PLAIN else ""
    return f"{text}{suffix} [{code_name(code)} {int(code)}]"
