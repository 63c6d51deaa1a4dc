"""``kagiya phone …``: the phone app simulator on the command line.

Every refusal is one line in plain words followed by its code, e.g.
``refused: This key has expired. Sync while online to get a fresh key. [EXPIRED 22]``.
Exit codes: 0 done, 1 refused by the lock, 2 usage, 3 server unreachable (offline),
4 keystore problem, 5 refused by the phone itself or the server.

With ``--json`` a command prints nothing but one JSON document on stdout:
``{"ok": true, "command": …, …}`` or ``{"ok": false, "error": KIND, "code": …,
"message": …, "exit_status": …}`` (docs/phone.md, "Scripting").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kagiya.phone.app import COMMANDS, PhoneApp, PhoneError
from kagiya.phone.failures import EXIT_PHONE, classify
from kagiya.phone.keystore import ProfileMissing
from kagiya.phone.ports import Offline
from kagiya.phone.profile import DEFAULT_PROFILE, Profile
from kagiya.phone.state import perm_names
from kagiya.sdk.i18n import N_, _, format_time, from_environment, set_language

TRANSPORT_ENV = "KAGIYA_BLE_TRANSPORT"
BLE_COMMANDS = {"unlock", "lock", "status", "drive", "logs"}


def when(t: int) -> str:
    """Unix seconds in the user's time zone (``$KAGIYA_TZ``, default JST), e.g.
    ``2026-12-03 09:30 JST``."""
    return format_time(t)


class Output:
    """What a command tells: lines for people, or one JSON document (``--json``)."""

    def __init__(self, command: str, *, as_json: bool) -> None:
        self.as_json = as_json
        self.doc: dict[str, Any] = {"command": command}

    def say(self, msg: str) -> None:
        """One line for people (suppressed with ``--json``)."""
        if not self.as_json:
            print(msg, flush=True)

    def put(self, **fields: Any) -> None:
        """Fields of the JSON document."""
        self.doc.update(fields)

    def finish(self, status: int = 0) -> int:
        """Print the JSON document (``--json``); returns ``status``."""
        if self.as_json:
            print(json.dumps({"ok": True, **self.doc}, ensure_ascii=False, sort_keys=True),
                  flush=True)
        return status

    def fail(self, kind: str, message: str, exit_status: int,
             code: int | None = None) -> int:
        """Print a failure as JSON (``--json``); returns ``exit_status``."""
        if self.as_json:
            error = {"ok": False, "command": self.doc["command"], "error": kind,
                     "message": message, "exit_status": exit_status}
            if code is not None:
                error["code"] = code
                error["code_name"] = _code_name(code)
            print(json.dumps(error, ensure_ascii=False, sort_keys=True), flush=True)
        return exit_status


def _code_name(code: int) -> str:
    from kagiya.sdk.protocol import ErrorCode

    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


def out_of(args: argparse.Namespace) -> Output:
    """The command's :class:`Output` (made once per run)."""
    out = getattr(args, "_output", None)
    if out is None:
        out = Output(getattr(args, "phone_command", "") or "",
                     as_json=bool(getattr(args, "json", False)))
        args._output = out
    return out


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_app(args: argparse.Namespace) -> PhoneApp:
    """The :class:`PhoneApp` for the common options (``--profile``, ``--home``, …)."""
    passphrase = None
    if getattr(args, "passphrase_file", None):
        passphrase = Path(args.passphrase_file).read_text().strip()
    if getattr(args, "transport", None):
        os.environ[TRANSPORT_ENV] = args.transport
    home = Path(args.home) if getattr(args, "home", None) else None
    return PhoneApp(Profile(args.profile, home=home, passphrase=passphrase))


_PREFIX = {
    "phone": N_("refused by the phone: {message}"),
    "lock": N_("refused: {message}"),
    "server": N_("{message}"),
    "offline": N_("{message}"),
    "ble": N_("{message}"),
    "keystore": N_("{message}"),
}


def guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn every expected failure into one clear line and an exit code (never a traceback),
    in the language of ``--lang`` / ``LANG`` (:mod:`kagiya.phone.failures`)."""

    def run(args: argparse.Namespace) -> int:
        set_language(getattr(args, "lang", None) or from_environment())
        out = out_of(args)
        try:
            return out.finish(fn(args))
        except KeyboardInterrupt:
            _err(_("interrupted"))
            return out.fail("interrupted", _("interrupted"), 130)
        except PhoneError as exc:
            _err(_(_PREFIX["phone"]).format(message=exc))
            return out.fail("phone", str(exc), EXIT_PHONE)
        except Exception as exc:
            command = getattr(args, "phone_command", "")
            failure = classify(exc, ble=command in BLE_COMMANDS, enrolling=command == "enroll")
            if failure is None:
                raise
            _err(_(_PREFIX[failure.kind]).format(message=failure.message))
            if isinstance(exc, ProfileMissing):
                _err("  kagiya phone enroll --code 'kagiya://enroll?…'")
            return out.fail(failure.kind, failure.message, failure.exit_status, failure.code)

    return run


# -- commands ----------------------------------------------------------------------------

def cmd_enroll(args: argparse.Namespace) -> int:
    app = make_app(args)
    out = out_of(args)
    st = app.enroll(args.server, args.code)
    out.put(phone_id=st.phone_id, user_id=st.user_id, server=st.server_url)
    out.say(_("enrolled phone {phone} for user {user} at {server}").format(
        phone=st.phone_id, user=st.user_id, server=st.server_url))
    if not args.no_sync:
        return cmd_sync(args, app)
    return 0


def cmd_sync(args: argparse.Namespace, app: PhoneApp | None = None) -> int:
    app = app or make_app(args)
    out = out_of(args)
    t0 = time.monotonic()
    report = app.sync()
    out.put(sync={"seconds": round(time.monotonic() - t0, 3),
                  "added": [k.key_id_hex for k in report.added],
                  "refreshed": [k.key_id_hex for k in report.refreshed],
                  "removed": [{"key": k.key_id_hex, "lock_id": k.lock_id}
                              for k in report.removed],
                  "revocations": report.revocations,
                  "uploads": {"sent": report.uploads.sent,
                              "remaining": report.uploads.remaining,
                              "rejected": report.uploads.rejected,
                              "errors": list(report.uploads.errors)}})
    out.say(_("synced in {seconds} s: {summary}").format(
        seconds=f"{time.monotonic() - t0:.2f}", summary=report.summary()))
    for k in report.removed:
        out.say("  " + _("key {key} for {lock} was cancelled or changed by the operator and "
                      "removed from this phone").format(key=k.key_id_hex[:8], lock=k.lock_id))
    for e in report.uploads.errors:
        out.say("  " + _("upload: {error}").format(error=e))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    app = make_app(args)
    out = out_of(args)
    st = app.state()
    now = app.now()
    ordered = sorted(st.keys.values(), key=lambda k: (k.lock_id, -k.exp))
    out.put(keys=[{"key": k.key_id_hex, "lock_id": k.lock_id, "status": k.status_at(now),
                   "nbf": k.nbf, "exp": k.exp, "permissions": perm_names(k.permissions),
                   "cancelled": k.cancelled or None} for k in ordered],
            withdrawn=[{"key": w.key_id.hex(),
                        "lock_id": w.lock_id, "reason": w.reason}
                       for w in st.withdrawn if w.key_id not in st.keys],
            usable=st.usable_keys_any(now))
    for k in ordered:
        out.say(f"{k.lock_id:<20} {_(k.status_at(now)):<14} {when(k.nbf)} → {when(k.exp)}  "
             f"{'+'.join(_(p) for p in perm_names(k.permissions)):<15} "
             + _("key {key}").format(key=k.key_id_hex[:8]))
        if k.cancelled:
            out.say(f"{'':<20} {_(k.cancelled)}")
    for w in st.withdrawn:
        if w.key_id not in st.keys:
            out.say(f"{w.lock_id:<20} {_('cancelled'):<14} {_(w.reason)}")
    if not st.usable_keys_any(now):
        out.say(_("no usable key on this phone (run `kagiya phone sync` while online)"))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    app = make_app(args)
    out = out_of(args)
    st = app.state()
    out.put(profile=st.profile, directory=str(app.profile.directory), phone_id=st.phone_id,
            user_id=st.user_id, server=st.server_url, keys=len(st.keys),
            last_sync=st.last_sync or None, last_sync_error=st.last_sync_error or None,
            revocations={k: v.version for k, v in st.revocations.items()},
            time_statement_iat=st.time_statement_iat if st.time_statement else None,
            outbox=len(app.profile.outbox))
    rows = [
        (_("profile"), f"{st.profile} ({app.profile.directory})"),
        (_("phone"), (st.phone_id or _("(not enrolled)")) + "  "
         + _("user {user}").format(user=st.user_id or "-")),
        (_("server"), st.server_url or "-"),
        (_("keys"), str(len(st.keys))),
        (_("last sync"), (when(st.last_sync) if st.last_sync else _("never"))
         + (f"  ({st.last_sync_error})" if st.last_sync_error else "")),
        (_("revocations"),
         ", ".join(f"{k} v{v.version}" for k, v in st.revocations.items()) or "-"),
        (_("time statement"), when(st.time_statement_iat) if st.time_statement else "-"),
        (_("outbox"), _("{n} queued upload(s)").format(n=len(app.profile.outbox))),
    ]
    for label, value in rows:
        out.say(f"{label:<14} {value}")
    return 0


def _run_command(args: argparse.Namespace, command: str) -> int:
    app = make_app(args)
    report = out_of(args)
    t0 = time.monotonic()
    out = asyncio.run(app.run(args.lock_id, command, timeout=args.timeout))
    report.put(lock_id=out.lock_id, action=command, seconds=round(time.monotonic() - t0, 3),
               state=out.state.as_dict(), key=out.key.key_id_hex)
    verbs = {"unlock": N_("unlocked {lock}"), "lock": N_("locked {lock}"),
             "drive-on": N_("drive enabled on {lock}"),
             "drive-off": N_("drive disabled on {lock}"), "status": N_("status of {lock}")}
    report.say(_("{done} in {seconds} s: {state} (key {key})").format(
        done=_(verbs[command]).format(lock=out.lock_id),
        seconds=f"{time.monotonic() - t0:.2f}", state=out.state.describe(),
        key=out.key.key_id_hex[:8]))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    app = make_app(args)
    out = out_of(args)
    if args.lock_id:
        n = asyncio.run(app.collect_logs(args.lock_id, timeout=args.timeout))
        out.put(lock_id=args.lock_id, fetched=n)
        out.say(_("fetched {n} new log record(s) from {lock}; {queued} upload(s) queued").format(
            n=n, lock=args.lock_id, queued=len(app.profile.outbox)))
    if args.no_upload:
        return 0
    out.put(queued=len(app.profile.outbox))
    try:
        rep = app.upload()
    except Offline:
        out.put(offline=True)
        out.say(_("offline: {n} upload(s) stay queued until the next sync").format(
            n=len(app.profile.outbox)))
        return 0
    out.put(uploaded=rep.sent, remaining=rep.remaining, rejected=rep.rejected,
            errors=list(rep.errors))
    out.say(_("uploaded {sent} log batch(es); {remaining} still queued").format(
        sent=rep.sent, remaining=rep.remaining)
        + (_("; {n} refused (kept in outbox/rejected)").format(n=rep.rejected)
           if rep.rejected else ""))
    for e in rep.errors:
        out.say(f"  {e}")
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    app = make_app(args)
    st = app.profile.keystore.restore_previous()
    out = out_of(args)
    out.put(keys=len(st.keys))
    out.say(_("restored the previous good keystore copy: {n} key(s); run `kagiya phone sync` to "
              "download anything newer").format(n=len(st.keys)))
    return 0


def _common(p: argparse.ArgumentParser, *, json_output: bool = True) -> None:
    p.add_argument("--profile", default=os.environ.get("KAGIYA_PHONE_PROFILE", DEFAULT_PROFILE),
                   help="phone profile name (one directory per simulated phone)")
    p.add_argument("--home", help="profiles directory (default $KAGIYA_PHONE_HOME or "
                   "~/.kagiya/phones)")
    p.add_argument("--passphrase-file", help="read the keystore passphrase from this file "
                   "(or set KAGIYA_PHONE_PASSPHRASE); default: a 0600 key file in the profile")
    p.add_argument("--lang", choices=["ja", "en"],
                   help="language of the messages (default: $KAGIYA_LANG or $LANG; English "
                   "when neither names ja or en)")
    if json_output:
        p.add_argument("--json", action="store_true",
                       help="print one JSON document on stdout (for scripts)")


def _ble(p: argparse.ArgumentParser) -> None:
    p.add_argument("lock_id", help="lock ID, e.g. KGY-0001")
    p.add_argument("--timeout", type=float, default=15.0,
                   help="seconds to find the lock, and for each of its answers")
    p.add_argument("--transport", help=f"BLE HCI transport (sets ${TRANSPORT_ENV}); "
                   "default: the SDK's (virtual radio or the system adapter)")


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``kagiya phone`` sub-commands."""
    sub = parser.add_subparsers(dest="phone_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("enroll", help="enroll this phone with the operator's enrollment link "
                       "or code, then sync")
    _common(p)
    p.add_argument("--code", required=True, help="the enrollment link (kagiya://enroll?…, "
                   "carries the server) or a bare one-time code XXXX-XXXX-XXXX")
    p.add_argument("--server", help="key server URL (only with a bare code)")
    p.add_argument("--no-sync", action="store_true", help="do not download keys right away")
    p.set_defaults(handler=guarded(cmd_enroll))

    p = sub.add_parser("sync", help="download keys, revocations, time; upload queued logs")
    _common(p)
    p.set_defaults(handler=guarded(lambda a: cmd_sync(a)))

    p = sub.add_parser("keys", help="list the keys on this phone with their validity")
    _common(p)
    p.set_defaults(handler=guarded(cmd_keys))

    p = sub.add_parser("info", help="show the profile: enrollment, last sync, outbox")
    _common(p)
    p.set_defaults(handler=guarded(cmd_info))

    for name, command, text in (
        ("unlock", "unlock", "unlock the doors"),
        ("lock", "lock", "lock the doors"),
        ("status", "status", "read the lock's state"),
    ):
        p = sub.add_parser(name, help=f"{text} (offline, over BLE)")
        _common(p)
        _ble(p)
        p.set_defaults(handler=guarded(_bind(command)))

    p = sub.add_parser("drive", help="enable or disable motor drive (offline, over BLE)")
    p.add_argument("action", choices=["on", "off"])
    _common(p)
    _ble(p)
    p.set_defaults(handler=guarded(lambda a: _run_command(a, f"drive-{a.action}")))

    p = sub.add_parser("logs", help="fetch the lock's log (queued) and upload queued logs")
    _common(p)
    p.add_argument("lock_id", nargs="?", help="fetch from this lock first (BLE)")
    p.add_argument("--no-upload", action="store_true", help="only fetch and queue")
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--transport", help=f"BLE HCI transport (sets ${TRANSPORT_ENV})")
    p.set_defaults(handler=guarded(cmd_logs))

    p = sub.add_parser("recover", help="restore the previous good keystore copy after damage")
    _common(p)
    p.set_defaults(handler=guarded(cmd_recover))

    _optional(sub, "kagiya.phone.web", "ui")
    _optional(sub, "kagiya.phone.fleet", "fleet")


def _bind(command: str) -> Callable[[argparse.Namespace], int]:
    assert command in COMMANDS
    return lambda a: _run_command(a, command)


def _optional(sub: Any, module_name: str, name: str) -> None:
    """Add a sub-command provided by another module of this package."""
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return
        raise
    p = module.add_parser(sub)
    _common(p, json_output=False)
