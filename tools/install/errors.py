"""Installer failures: a stable code, what went wrong, and what the installer should do.

Every failure the tools know about becomes an :class:`InstallError`; the CLI prints the
message and the hint (or a JSON object with ``--json``) and exits with the code's status.
"""

from __future__ import annotations

# code -> process exit status (grouped: 2 usage, 3 board/port, 4 image, 5 server, 6 test)
EXIT_STATUS: dict[str, int] = {
    "usage": 2,
    "uplink-needs-connected": 2,
    "no-board": 3,
    "wrong-port": 3,
    "port-busy": 3,
    "port-permission": 3,
    "board-not-responding": 3,
    "board-disconnected": 3,
    "board-error": 3,
    "firmware-missing": 3,
    "flash-full": 3,
    "romfs-full": 3,
    "romfs-failed": 3,
    "verify-failed": 3,
    "incompatible-micropython": 4,
    "image-invalid": 4,
    "wrong-chip": 4,
    "flash-failed": 4,
    "harden-failed": 4,
    "already-provisioned": 5,
    "not-provisioned": 5,
    "provision-refused": 5,
    "locked-down": 5,
    "maintenance-refused": 5,
    "wrong-lock": 5,
    "server-unreachable": 6,
    "server-auth": 6,
    "server-refused": 6,
    "lock-taken": 6,
    "lock-registered": 6,
    "selftest-failed": 7,
}


class InstallError(Exception):
    """A failed installer step with an actionable hint; never carries secrets."""

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    @property
    def exit_status(self) -> int:
        """The process exit status for this failure (always non-zero)."""
        return EXIT_STATUS.get(self.code, 1)

    def as_dict(self) -> dict[str, str]:
        """The failure as a JSON-ready object."""
        return {"error": self.code, "message": self.message, "hint": self.hint}
