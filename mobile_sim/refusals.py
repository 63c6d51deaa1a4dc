"""Plain-words explanations of every protocol refusal (docs/protocol.md §13) for people.

The phone shows ``<plain sentence> [<CODE> <n>]``: the sentence says what happened and what
to do; the code is what support and logs use.
"""

from __future__ import annotations

from kagiya.sdk.errors import ErrorCode, code_name
from kagiya.sdk.i18n import N_, _
from kagiya.sdk.protocol import UNKNOWN_CODE_REMEDY

# the sentence is the code's ``remedy`` in the protocol definition (the gettext msgid)
PLAIN: dict[ErrorCode, str] = {c: c.remedy for c in ErrorCode}


def explain(code: int, detail: str = "") -> str:
    """``"<plain words> [NAME n]"`` for a protocol error code (unknown codes included)."""
    try:
        text = _(PLAIN[ErrorCode(code)])
    except ValueError:
        text = _(UNKNOWN_CODE_REMEDY)
    suffix = f" ({detail})" if detail and code not in PLAIN else ""
    return f"{text}{suffix} [{code_name(code)} {int(code)}]"


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
    """A log record's result in a few words (``done``, ``refused: key expired``, …)."""
    if not code:
        return _(SHORT[ErrorCode.OK])
    try:
        return _(SHORT[ErrorCode(code)])
    except (ValueError, KeyError):
        return _("refused ({name})").format(name=code_name(code))
