"""Plain-words explanations of every protocol refusal (docs/protocol.md §13) for people.

The phone shows ``<plain sentence> [<CODE> <n>]``: the sentence says what happened and what
to do; the code is what support and logs use.
"""

from __future__ import annotations

from kagiya.sdk.errors import ErrorCode, code_name
from kagiya.sdk.i18n import _
from kagiya.sdk.outcome import SHORT, outcome
from kagiya.sdk.protocol import UNKNOWN_CODE_REMEDY

__all__ = ["PLAIN", "SHORT", "explain", "outcome"]

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
