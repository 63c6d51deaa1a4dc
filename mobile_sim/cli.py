"""``kagiya phone …``: the phone app simulator on the command line.

Every refusal is one line in plain words followed by its code, e.g.
``refused: This key has expired. Sync while online to get a fresh key. [EXPIRED 22]``.
Exit codes: 0 done, 1 refused by the lock, 2 usage, 3 server unreachable (offline),
4 keystore problem, 5 refused by the phone itself or the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kagiya.phone.app import COMMANDS, PhoneApp, PhoneError
from kagiya.phone.keystore import KeystoreCorrupt, KeystoreLocked, ProfileMissing
from kagiya.phone.ports import Offline, ServerRefused
from kagiya.phone.profile import DEFAULT_PROFILE, Profile
from kagiya.phone.refusals import explain
from kagiya.phone.state import perm_names
from kagiya.phone.verify import DownloadRejected
from kagiya.sdk.client_errors import CommandOutcomeUnknownError, LinkError

EXIT_REFUSED, EXIT_OFFLINE, EXIT_KEYSTORE, EXIT_PHONE = 1, 3, 4, 5
TRANSPORT_ENV = "KAGIYA_BLE_TRANSPORT"


def when(t: int) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM UTC``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _say(msg: str) -> None:
    print(msg, flush=True)


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


def guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn every expected failure into one clear line and an exit code (never a traceback)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ProfileMissing as exc:
            _err(f"error: {exc}; enroll first: kagiya phone enroll --server URL --code CODE")
            return EXIT_PHONE
        except (KeystoreCorrupt, KeystoreLocked) as exc:
            _err(f"keystore problem: {exc}")
            if isinstance(exc, KeystoreCorrupt):
                _err("nothing was changed or deleted; `kagiya phone recover` restores the "
                     "previous good copy (keys downloaded since then must be synced again)")
            return EXIT_KEYSTORE
        except Offline as exc:
            _err(f"offline: the key server cannot be reached ({exc}); everything downloaded "
                 "earlier still works at the vehicle, and queued logs stay queued")
            return EXIT_OFFLINE
        except ServerRefused as exc:
            _err(f"refused by the server: {exc}")
            return EXIT_PHONE
        except PhoneError as exc:
            _err(f"refused by the phone: {exc}")
            return EXIT_PHONE
        except DownloadRejected as exc:
            _err(f"download refused, nothing stored: {exc}")
            return EXIT_PHONE
        except CommandOutcomeUnknownError as exc:
            _err(f"not confirmed: the link to the lock failed after the command was sent "
                 f"({exc}); the lock may or may not have acted — run the command again")
            return EXIT_REFUSED
        except LinkError as exc:
            _err(f"cannot reach the lock: {exc} (is the vehicle in range and Bluetooth on?)")
            return EXIT_REFUSED
        except KeyboardInterrupt:
            _err("interrupted")
            return 130
        except Exception as exc:
            code = getattr(exc, "code", None)
            if isinstance(code, int):
                _err(f"refused: {explain(code, getattr(exc, 'detail', ''))}")
                return EXIT_REFUSED
            if isinstance(exc, TimeoutError | ConnectionError | OSError):
                _err(f"cannot reach the lock: {exc or type(exc).__name__} "
                     "(is the vehicle in range and Bluetooth on?)")
                return EXIT_REFUSED
            raise

    return run


# -- commands ----------------------------------------------------------------------------

def cmd_enroll(args: argparse.Namespace) -> int:
    app = make_app(args)
    st = app.enroll(args.server, args.code)
    _say(f"enrolled phone {st.phone_id} for user {st.user_id} at {st.server_url}")
    if not args.no_sync:
        return cmd_sync(args, app)
    return 0


def cmd_sync(args: argparse.Namespace, app: PhoneApp | None = None) -> int:
    app = app or make_app(args)
    t0 = time.monotonic()
    report = app.sync()
    _say(f"synced in {time.monotonic() - t0:.2f} s: {report.summary()}")
    for k in report.removed:
        _say(f"  key {k.key_id_hex[:8]} for {k.lock_id} was cancelled or changed by the "
             "operator and removed from this phone")
    for e in report.uploads.errors:
        _say(f"  upload: {e}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    app = make_app(args)
    st = app.state()
    now = app.now()
    if not st.keys:
        _say("no keys on this phone (run `kagiya phone sync` while online)")
        return 0
    for k in sorted(st.keys.values(), key=lambda k: (k.lock_id, -k.exp)):
        _say(f"{k.lock_id:<20} {k.status_at(now):<14} {when(k.nbf)} → {when(k.exp)}  "
             f"{'+'.join(perm_names(k.permissions)):<15} key {k.key_id_hex[:8]}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    app = make_app(args)
    st = app.state()
    _say(f"profile      {st.profile} ({app.profile.directory})")
    _say(f"phone        {st.phone_id or '(not enrolled)'}  user {st.user_id or '-'}")
    _say(f"server       {st.server_url or '-'}")
    _say(f"keys         {len(st.keys)}")
    _say(f"last sync    {when(st.last_sync) if st.last_sync else 'never'}"
         + (f"  ({st.last_sync_error})" if st.last_sync_error else ""))
    revs = ", ".join(f"{k} v{v.version}" for k, v in st.revocations.items()) or "-"
    _say(f"revocations  {revs}")
    ts = when(st.time_statement_iat) if st.time_statement else "-"
    _say(f"time stmt    {ts}")
    _say(f"outbox       {len(app.profile.outbox)} queued upload(s)")
    return 0


def _run_command(args: argparse.Namespace, command: str) -> int:
    app = make_app(args)
    t0 = time.monotonic()
    out = asyncio.run(app.run(args.lock_id, command, timeout=args.timeout))
    verbs = {"unlock": "unlocked", "lock": "locked", "drive-on": "drive enabled on",
             "drive-off": "drive disabled on", "status": "status of"}
    _say(f"{verbs[command]} {out.lock_id} in {time.monotonic() - t0:.2f} s: "
         f"{out.state.describe()} (key {out.key.key_id_hex[:8]})")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    app = make_app(args)
    if args.lock_id:
        n = asyncio.run(app.collect_logs(args.lock_id, timeout=args.timeout))
        _say(f"fetched {n} new log record(s) from {args.lock_id}; "
             f"{len(app.profile.outbox)} upload(s) queued")
    if args.no_upload:
        return 0
    try:
        rep = app.upload()
    except Offline:
        _say(f"offline: {len(app.profile.outbox)} upload(s) stay queued until the next sync")
        return 0
    _say(f"uploaded {rep.sent} log batch(es); {rep.remaining} still queued"
         + (f"; {rep.rejected} refused (kept in outbox/rejected)" if rep.rejected else ""))
    for e in rep.errors:
        _say(f"  {e}")
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    app = make_app(args)
    st = app.profile.keystore.restore_previous()
    _say(f"restored the previous good keystore copy: {len(st.keys)} key(s); "
         "run `kagiya phone sync` to download anything newer")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=os.environ.get("KAGIYA_PHONE_PROFILE", DEFAULT_PROFILE),
                   help="phone profile name (one directory per simulated phone)")
    p.add_argument("--home", help="profiles directory (default $KAGIYA_PHONE_HOME or "
                   "~/.kagiya/phones)")
    p.add_argument("--passphrase-file", help="read the keystore passphrase from this file "
                   "(or set KAGIYA_PHONE_PASSPHRASE); default: a 0600 key file in the profile")


def _ble(p: argparse.ArgumentParser) -> None:
    p.add_argument("lock_id", help="lock ID, e.g. KGY-0001")
    p.add_argument("--timeout", type=float, default=15.0,
                   help="seconds to find the lock, and for each of its answers")
    p.add_argument("--transport", help=f"BLE HCI transport (sets ${TRANSPORT_ENV}); "
                   "default: the SDK's (virtual radio or the system adapter)")


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``kagiya phone`` sub-commands."""
    sub = parser.add_subparsers(dest="phone_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("enroll", help="enroll this phone with a one-time code, then sync")
    _common(p)
    p.add_argument("--server", required=True, help="key server URL")
    p.add_argument("--code", required=True, help="one-time enrollment code (XXXX-XXXX-XXXX)")
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
    _common(p)
