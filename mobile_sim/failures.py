"""What went wrong, in the same plain words on every front end (CLI, web UI).

:func:`classify` turns any exception a use case raises into a :class:`Failure`: a kind, one
sentence in the current language (:mod:`kagiya.sdk.i18n`), the CLI exit status and the web
UI's HTTP status. A failure of the Bluetooth stack itself (radio gone, adapter missing, an
unexpected error inside the stack) during a session with the vehicle reads exactly like "out
of range": the driver can do the same about both, and never sees an HTTP status or a trace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kagiya.phone.app import PhoneError
from kagiya.phone.keystore import KeystoreCorrupt, KeystoreLocked, ProfileMissing
from kagiya.phone.ports import Offline, ServerRefused
from kagiya.phone.refusals import explain
from kagiya.phone.verify import DownloadRejected
from kagiya.sdk.client_errors import (
    CommandOutcomeUnknownError,
    LinkError,
    ReplyNotAuthenticError,
    UpdateNotAppliedError,
)
from kagiya.sdk.i18n import N_, _

log = logging.getLogger("kagiya.phone")

EXIT_REFUSED, EXIT_OFFLINE, EXIT_KEYSTORE, EXIT_PHONE = 1, 3, 4, 5

CANNOT_REACH = N_("Cannot reach the vehicle. Is it in range, and is Bluetooth on?")
OFFLINE = N_("Offline — the key server cannot be reached. Keys still work at the vehicle; "
             "queued logs go out at the next sync.")
OFFLINE_ENROLL = N_("The key server cannot be reached. Enrolling needs a network connection: "
                    "try again when online.")
NOT_CONFIRMED = N_("Not confirmed: the link failed after the command was sent, so the lock "
                   "may or may not have acted. Try again.")
NOT_AUTHENTIC = N_("Not confirmed: the lock's reply failed its check (interference, or someone "
                   "tampering with the link), so the lock may or may not have acted. Try "
                   "again next to the vehicle.")
NOT_APPLIED = N_("The lock did not take the cancellation update this phone carries (someone may "
                 "be interfering with the link). Try again next to the vehicle.")
NOT_ENROLLED = N_("This phone is not enrolled yet. Enroll it with the code from your operator.")


@dataclass(frozen=True)
class Failure:
    """One failure for people: ``kind`` (offline, lock, ble, phone, server, keystore)."""

    kind: str
    message: str
    exit_status: int
    http_status: int
    code: int | None = None  # protocol error code of a lock refusal

    @property
    def neutral(self) -> bool:
        """Offline is normal underground: shown as information, not as an error."""
        return self.kind == "offline"


def classify(exc: BaseException, *, ble: bool = False,
             enrolling: bool = False) -> Failure | None:
    """The failure ``exc`` stands for, or None for a programming error outside a BLE session.

    ``ble``: the exception came out of a session with the vehicle, so an unexpected error is
    the Bluetooth stack's (logged with its trace, shown as "cannot reach the vehicle").
    ``enrolling``: there are no keys yet, so "offline" cannot promise that keys still work.
    """
    if isinstance(exc, KeystoreCorrupt):
        return Failure("keystore", _("Keystore problem: {detail}. Nothing was changed or "
                                     "deleted; `kagiya phone recover` restores the previous "
                                     "good copy.").format(detail=exc), EXIT_KEYSTORE, 500)
    if isinstance(exc, KeystoreLocked):
        return Failure("keystore", _("Keystore problem: {detail}.").format(detail=exc),
                       EXIT_KEYSTORE, 500)
    if isinstance(exc, PhoneError):
        return Failure("phone", str(exc), EXIT_PHONE, 409)
    if isinstance(exc, ProfileMissing):
        return Failure("phone", _(NOT_ENROLLED), EXIT_PHONE, 409)
    if isinstance(exc, Offline):
        log.info("offline: %s", exc)
        return Failure("offline", _(OFFLINE_ENROLL if enrolling else OFFLINE), EXIT_OFFLINE, 503)
    if isinstance(exc, ServerRefused):
        return Failure("server", _("Refused by the server: {detail} [{code}]").format(
            detail=_(exc.detail), code=exc.code), EXIT_PHONE, 409)
    if isinstance(exc, DownloadRejected):
        return Failure("phone", _("Download refused, nothing stored: {detail}").format(
            detail=exc), EXIT_PHONE, 409)
    code = getattr(exc, "code", None)
    if isinstance(code, int) and not isinstance(exc, OSError):
        return Failure("lock", explain(code, getattr(exc, "detail", "")), EXIT_REFUSED, 409,
                       code)
    if isinstance(exc, CommandOutcomeUnknownError):
        return Failure("ble", _(NOT_CONFIRMED), EXIT_REFUSED, 504)
    if isinstance(exc, ReplyNotAuthenticError):
        return Failure("ble", _(NOT_AUTHENTIC), EXIT_REFUSED, 502)
    if isinstance(exc, UpdateNotAppliedError):
        return Failure("ble", _(NOT_APPLIED), EXIT_REFUSED, 502)
    if isinstance(exc, LinkError | TimeoutError | ConnectionError | OSError):
        log.info("cannot reach the vehicle: %r", exc)
        return Failure("ble", _(CANNOT_REACH), EXIT_REFUSED, 504)
    if ble and isinstance(exc, Exception):
        log.warning("the Bluetooth stack failed", exc_info=exc)
        return Failure("ble", _(CANNOT_REACH), EXIT_REFUSED, 504)
    return None
