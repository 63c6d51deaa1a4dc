"""The one exception the SDK raises on bad input, with its §13 error code.

:class:`ErrorCode` (numbers, names and the fault classification) is defined in
:mod:`kagiya.sdk.protocol` and re-exported here.

Every refusal of hostile or invalid bytes anywhere in :mod:`kagiya.sdk` is a
:class:`ProtocolError` carrying one of these codes; nothing else escapes a decoder or verifier.
"""

from __future__ import annotations

from .protocol import ErrorCode

__all__ = ["ErrorCode", "ProtocolError", "code_name"]


class ProtocolError(Exception):
    """A refusal with a protocol error code (§13) and a human-readable detail."""

    code: ErrorCode
    detail: str

    def __init__(self, code: ErrorCode | int, detail: str = "") -> None:
        self.code = ErrorCode(code)
        self.detail = detail
        super().__init__(code, detail)

    @property
    def retryable(self) -> bool:
        """A retry later (new session or counter) can succeed with nothing else changed."""
        return self.code.retryable

    @property
    def may_have_succeeded(self) -> bool:
        """The lock may have acted although it answered this code (never report failure)."""
        return self.code.may_have_succeeded

    @property
    def remedy(self) -> str:
        """The English sentence an app shows a person (the gettext msgid)."""
        return self.code.remedy

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
