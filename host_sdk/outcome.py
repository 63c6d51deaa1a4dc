"""A usage-log record's result in a few words, for people (phone app, My Page, console).

``outcome(0)`` is "done"; a refusal reads "refused: key cancelled" and so on (the short form
of the code's plain sentence, docs/protocol.md §13). Pages show the code's name beside it for
support (``code_label``).
"""

from __future__ import annotations

from kagiya.sdk.errors import ErrorCode, code_name
from kagiya.sdk.i18n import N_, _

SHORT: dict[ErrorCode, str] = {
    ErrorCode.OK: N_("done"),
    ErrorCode.EXPIRED: N_("refused: key expired"),
    ErrorCode.NOT_YET_VALID: N_("refused: key not valid yet"),
    ErrorCode.REVOKED: N_("refused: key cancelled"),
    ErrorCode.WRONG_LOCK: N_("refused: key for another vehicle"),
    ErrorCode.PERMISSION_DENIED: N_("refused: not allowed by the key"),
    ErrorCode.BAD_SIGNATURE: N_("refused: forged or damaged key"),
    ErrorCode.BAD_PROOF: N_("refused: wrong key secret"),
    ErrorCode.UNKNOWN_ISSUER: N_("refused: key from an untrusted server"),
    ErrorCode.RATE_LIMITED: N_("refused: too many attempts"),
    ErrorCode.REPLAYED: N_("refused: replayed request"),
    ErrorCode.VEHICLE_MOVING: N_("refused: vehicle moving"),
    ErrorCode.WRONG_RECIPIENT: N_("refused: key for a replaced lock"),
}


def outcome(code: int | None) -> str:
    """A log record's result in a few words (``done``, ``refused: key expired``, …) in the
    current language; a code without a short form reads ``refused (NAME)``."""
    if not code:
        return _(SHORT[ErrorCode.OK])
    try:
        return _(SHORT[ErrorCode(code)])
    except (ValueError, KeyError):
        return _("refused ({name})").format(name=code_name(code))


def code_label(code: int | None) -> str:
    """``"REVOKED 23"``: the code as support and the logs name it ("" for success)."""
    return f"{code_name(code)} {int(code)}" if code else ""
