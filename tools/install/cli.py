"""``kagiya install {flash,deploy,provision,register,uplink,selftest,lockdown,maintenance,
anchors,decommission,harden,all}``: flow.

Each step can run alone; ``all`` runs deploy → provision → register → selftest → lockdown
over one board connection (flash first when ``--image`` is given; ``--no-lockdown`` skips
the lockdown, with a warning). Every step is idempotent, so after
a failure the same command picks up where it stopped. Exit status 0 on success, the failure's
status otherwise (see :mod:`kagiya.tools.install.errors`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kagiya.sdk.protocol import HEARTBEAT_S
from kagiya.tools.install import (
    build,
    connection,
    decommission,
    deploy,
    flash,
    harden,
    lockdown,
    maintenance,
    preflight,
    provision,
    registration,
    selftest,
    uplink,
)
from kagiya.tools.install.connection import Board, connect
from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.keyserver import KeyServer
from kagiya.tools.install.report import Reporter

TOKEN_ENV = "KAGIYA_OPERATOR_TOKEN"  # noqa: S105 - a variable name


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--port", default=os.environ.get("KAGIYA_PORT", ""),
                   help="the board's serial port, e.g. /dev/ttyUSB0 (or $KAGIYA_PORT; "
                   "`kagiya install ports` lists them)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for the board to answer (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")


def _server(p: argparse.ArgumentParser, *, token: bool) -> None:
    p.add_argument("--server", default=os.environ.get("KAGIYA_SERVER", ""),
                   help="key server base URL, e.g. https://keys.example.com (or $KAGIYA_SERVER)")
    p.add_argument("--server-timeout", type=float, default=10.0,
                   help="seconds to wait for each key server answer (default 10)")
    if token:
        p.add_argument("--operator-token", default=None,
                       help=f"installer or operator bearer token (better: set ${TOKEN_ENV})")


def _deploy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--firmware-dir", type=Path, default=None,
                   help="the firmware tree to deploy (default: the one shipped with kagiya, "
                   "or $KAGIYA_FIRMWARE_DIR)")
    p.add_argument("--no-compile", action="store_true",
                   help="copy .py sources instead of compiling them with mpy-cross")
    p.add_argument("--connected", action="store_true",
                   help="a connected build: also deploy the MQTT uplink (docs/uplink.md)")
    p.add_argument("--files", action="store_true",
                   help="deploy lib/ as files even when the board has a ROMFS partition "
                   "(by default the compiled lib/ goes there as one image, run in place)")


def _provision_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lock-id", default=None, help="the lock ID (4-20 characters A-Z 0-9 -)")
    p.add_argument("--anchor", action="append", default=[], metavar="HEX",
                   help="issuer public key to trust (repeatable; default: fetched from --server)")
    p.add_argument("--operator", default=None, metavar="OPERATOR_ID",
                   help="the operator the lock belongs to (default: the token's operator)")
    p.add_argument("--force", action="store_true",
                   help="re-provision a provisioned board (new identity, state wiped); "
                   "its server registration is replaced only with --replace")


def _replace_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--replace", default=None, metavar="LOCK_ID",
                   help="replace this operator's registration of LOCK_ID (made with another "
                   "identity) by this board: name the lock to confirm")


def register(parser: argparse.ArgumentParser) -> None:
    """Add the installer steps under ``kagiya install``."""
    sub = parser.add_subparsers(dest="install_step", metavar="STEP", required=True)

    p = sub.add_parser("flash", help="write a MicroPython build to an ESP32 (esptool)")
    _common(p)
    p.add_argument("--image", type=Path, required=True, help="MicroPython firmware .bin")
    p.add_argument("--erase", action="store_true", help="erase the whole flash first")
    p.add_argument("-b", "--baud", type=int, default=460800, help="flashing baud rate")
    p.set_defaults(handler=_cmd_flash)

    p = sub.add_parser("ports", help="list the serial ports a board may be on (like "
                                     "`mpremote devs`)")
    p.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")
    p.set_defaults(handler=_cmd_ports)

    p = sub.add_parser("deploy", help="compile firmware/ and copy changed files to the board")
    _common(p)
    _deploy_args(p)
    p.set_defaults(handler=_cmd_deploy)

    p = sub.add_parser("provision", help="generate the lock identity on the board, set anchors "
                                         "and clock")
    _common(p)
    _server(p, token=True)
    _provision_args(p)
    p.set_defaults(handler=_cmd_provision)

    p = sub.add_parser("register", help="register the provisioned lock with the key server")
    _common(p)
    _server(p, token=True)
    p.add_argument("--vehicle-label", default=None, help="label of the vehicle (e.g. plate)")
    _replace_arg(p)
    p.set_defaults(handler=_cmd_register)

    p = sub.add_parser("uplink", help="give a connected lock its MQTT broker account "
                                      "(docs/uplink.md)")
    _common(p)
    _server(p, token=True)
    _uplink_args(p, required=True)
    p.set_defaults(handler=_cmd_uplink)

    p = sub.add_parser("selftest", help="run the firmware self-test and print a report")
    _common(p)
    p.set_defaults(handler=_cmd_selftest)

    p = sub.add_parser("lockdown", help="close the lock's serial REPL from its next reset on")
    _common(p)
    p.set_defaults(handler=_cmd_lockdown)

    p = sub.add_parser("maintenance", help="open an authorised maintenance (the key server "
                                           "signs it for your token): re-opens the REPL")
    _common(p)
    _server(p, token=True)
    _maintenance_args(p)
    p.add_argument("--scope", action="append", choices=maintenance.SCOPES, default=None,
                   help="what to allow (repeatable): repl (default), anchors, provision")
    p.set_defaults(handler=_cmd_maintenance)

    p = sub.add_parser("anchors", help="add or remove trust anchors (opens a maintenance "
                                       "with scope anchors first)")
    _common(p)
    _server(p, token=True)
    _maintenance_args(p)
    p.add_argument("--add", action="append", default=[], metavar="HEX",
                   help="issuer public key to trust as well (repeatable)")
    p.add_argument("--remove", action="append", default=[], metavar="HEX",
                   help="issuer public key to trust no more (repeatable)")
    p.set_defaults(handler=_cmd_anchors)

    p = sub.add_parser("harden", help="ESP32 flash encryption (release mode) + secure boot "
                                      "v2: prints the plan; --burn-efuses PORT:CHIP applies it")
    _common(p)
    p.add_argument("--chip", default="esp32", choices=harden.CHIPS, help="the board's chip")
    p.add_argument("--keys", type=Path, required=True,
                   help="directory of the operator's secure boot signing key (created if "
                   "missing; keep it offline and backed up)")
    p.add_argument("--burn-efuses", default=None, metavar="PORT:CHIP",
                   help="apply the plan: IRREVERSIBLE eFuse burns; must name --port and --chip")
    p.add_argument("--virt-efuses", type=Path, default=None, metavar="FILE",
                   help="use espefuse's virtual eFuses in FILE instead of a chip (tests)")
    for name in harden.OFFSETS:
        p.add_argument(f"--{name}", type=Path, default=None,
                       help=f"{name} image of a secure-boot build to sign, encrypt and write")
    p.add_argument("--keep-flash-key", action="store_true",
                   help="keep the board's flash encryption key in --keys (default: deleted "
                   "once burnt)")
    p.set_defaults(handler=_cmd_harden)

    p = sub.add_parser("decommission", help="retire the lock: the key server revokes its keys, "
                                            "the lock refuses every key (--erase wipes it)")
    _common(p)
    _server(p, token=True)
    _maintenance_args(p)
    p.add_argument("--erase", action="store_true",
                   help="then erase the board's identity, keys, cache and log (disposal)")
    p.set_defaults(handler=_cmd_decommission)

    p = sub.add_parser("all", help="deploy, provision, register and self-test (flash with --image)")
    _common(p)
    _server(p, token=True)
    _deploy_args(p)
    _provision_args(p)
    _replace_arg(p)
    p.add_argument("--vehicle-label", default=None, help="label of the vehicle (e.g. plate)")
    p.add_argument("--image", type=Path, default=None,
                   help="also flash this MicroPython .bin first")
    p.add_argument("--erase", action="store_true", help="erase the flash before flashing")
    p.add_argument("-b", "--baud", type=int, default=460800, help="flashing baud rate")
    p.add_argument("--lockdown", action="store_true", help=argparse.SUPPRESS)  # the default
    p.add_argument("--no-lockdown", action="store_true",
                   help="leave the serial REPL open (bench work only: anyone with a USB "
                   "cable can then read the lock's keys and change it)")
    _uplink_args(p, required=False)
    p.set_defaults(handler=_cmd_all)


def _uplink_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--mqtt-ca", type=Path, required=required,
                   help="PEM file of the CA that signed the broker's certificate"
                   + ("" if required else " (with --connected: also give the lock its "
                      "broker account, before lockdown)"))
    p.add_argument("--mqtt-host", default=None,
                   help="broker address as the lock reaches it (default: the server's)")
    p.add_argument("--mqtt-server-name", default=None,
                   help="TLS server name of the broker (default: the address)")
    p.add_argument("--heartbeat", type=int, default=HEARTBEAT_S,
                   help="heartbeat interval, seconds")


def _maintenance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lock-id", default=None,
                   help="refuse unless the lock on the cable has this lock ID")
    p.add_argument("--ttl", type=int, default=600,
                   help="seconds the authorisation stays valid (60-900, default 600)")


# ------------------------------------------------------------------ helpers
def _run(args: argparse.Namespace, body: Any) -> int:
    rep = Reporter(as_json=args.json)
    try:
        body(rep)
    except InstallError as err:
        return rep.fail(err)
    except KeyboardInterrupt:
        return rep.fail(InstallError("usage", "interrupted", "run the same command again"))
    return rep.finish()


def _need_server(args: argparse.Namespace, rep: Reporter, *, token: bool) -> KeyServer:
    """The key server, checked before the board is touched (pre-flight): the lock ID's
    format, that the server answers, and - with a token - that it accepts the token."""
    if not args.server:
        raise InstallError("usage", "no key server given", "pass --server URL")
    tok = getattr(args, "operator_token", None) or os.environ.get(TOKEN_ENV)
    if token and not tok:
        raise InstallError("usage", "no operator token given",
                           f"set ${TOKEN_ENV} (or pass --operator-token)")
    preflight.check_lock_id(getattr(args, "lock_id", None))
    server = KeyServer(args.server, tok if token else None,
                       timeout=getattr(args, "server_timeout", 10.0), progress=rep.say)
    try:
        preflight.check_server(server, rep, token=token)
    except InstallError:
        server.close()
        raise
    return server


def _open(args: argparse.Namespace) -> Board:
    return connect(args.port, timeout=args.timeout)


def _firmware_dir(args: argparse.Namespace) -> Path:
    return getattr(args, "firmware_dir", None) or build.default_firmware_dir()


def _do_provision(board: Board, args: argparse.Namespace, rep: Reporter,
                  server: KeyServer | None) -> dict[str, Any]:
    anchors = list(args.anchor)
    statement = None
    operator = args.operator
    if server is not None:
        if not anchors:
            anchors = server.trust_anchors()
        statement = server.time_statement()
        if operator is None and server.has_token:
            operator = server.operator_id()
    return provision.provision(board, rep, lock_id=args.lock_id, anchors=anchors,
                               time_statement=statement, force=args.force, operator=operator)


# ------------------------------------------------------------------ steps
def _cmd_flash(args: argparse.Namespace) -> int:
    return _run(args, lambda rep: flash.flash(args.port, args.image, rep, erase=args.erase,
                                              baud=args.baud))


def _cmd_ports(args: argparse.Namespace) -> int:
    ports = connection.port_details()
    if args.json:
        print(json.dumps({"ok": True, "ports": ports}, sort_keys=True))
        return 0
    for p in ports:
        print(" ".join(str(p[k] or "-") for k in ("device", "serial_number", "vid_pid",
                                                   "manufacturer", "description")))
    if not ports:
        print("no serial ports found: plug the board in (a virtual board's pty is printed by "
              "`kagiya lock board`)", file=sys.stderr)
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    def body(rep: Reporter) -> None:
        board = _open(args)
        try:
            deploy.deploy(board, _firmware_dir(args), rep, compile_mpy=not args.no_compile,
                          connected=args.connected, romfs=not args.files)
        finally:
            board.close()
    return _run(args, body)


def _cmd_provision(args: argparse.Namespace) -> int:
    def body(rep: Reporter) -> None:
        preflight.check_lock_id(args.lock_id)
        server = _need_server(args, rep, token=False) if args.server else None
        if server is not None:  # a token, when given, names the lock's operator
            server = KeyServer(args.server, getattr(args, "operator_token", None)
                               or os.environ.get(TOKEN_ENV))
        board = _open(args)
        try:
            _do_provision(board, args, rep, server)
        finally:
            board.close()
    return _run(args, body)


def _cmd_register(args: argparse.Namespace) -> int:
    def body(rep: Reporter) -> None:
        server = _need_server(args, rep, token=True)
        board = _open(args)
        try:
            ident = provision.read_identity(board)
            if ident is None:
                raise InstallError("not-provisioned", "the lock is not provisioned yet",
                                   "run `kagiya install provision` first")
            registration.register(board, server, ident, rep, vehicle_label=args.vehicle_label,
                                  replace=args.replace)
        finally:
            board.close()
            server.close()
    return _run(args, body)


def _cmd_uplink(args: argparse.Namespace) -> int:
    def body(rep: Reporter) -> None:
        ca = uplink.load_ca(args.mqtt_ca)
        server = _need_server(args, rep, token=True)
        board = _open(args)
        try:
            ident = provision.read_identity(board)
            if ident is None:
                raise InstallError("not-provisioned", "the lock is not provisioned yet",
                                   "run `kagiya install provision` first")
            uplink.provision_uplink(board, server, str(ident["lock_id"]), ca, rep,
                                    host=args.mqtt_host, server_name=args.mqtt_server_name,
                                    heartbeat_s=args.heartbeat)
        finally:
            board.close()
            server.close()
    return _run(args, body)


def _board_step(args: argparse.Namespace, step: Callable[[Any, Reporter], Any]) -> int:
    """Run one installer step that needs only the board, closing the board afterwards."""
    def body(rep: Reporter) -> None:
        board = _open(args)
        try:
            step(board, rep)
        finally:
            board.close()
    return _run(args, body)


def _cmd_selftest(args: argparse.Namespace) -> int:
    return _board_step(args, lambda board, rep: selftest.selftest(
        board, rep, firmware=_firmware_dir(args)))


def _cmd_lockdown(args: argparse.Namespace) -> int:
    return _board_step(args, lockdown.lockdown)


def _open_maintenance(args: argparse.Namespace, rep: Reporter, server: KeyServer,
                      scope: list[str]) -> dict[str, Any]:
    return maintenance.open_maintenance(args.port, server, rep, scope=scope, ttl_s=args.ttl,
                                        lock_id=args.lock_id, timeout=args.timeout)


def _cmd_maintenance(args: argparse.Namespace) -> int:
    def body(rep: Reporter) -> None:
        server = _need_server(args, rep, token=True)
        try:
            _open_maintenance(args, rep, server, args.scope or ["repl"])
        finally:
            server.close()
    return _run(args, body)


def _cmd_anchors(args: argparse.Namespace) -> int:
    def body(rep: Reporter) -> None:
        if not args.add and not args.remove:
            raise InstallError("usage", "no anchor to add or remove", "pass --add/--remove HEX")
        server = _need_server(args, rep, token=True)
        try:
            _open_maintenance(args, rep, server, ["repl", "anchors"])
        finally:
            server.close()
        board = _open(args)
        try:
            maintenance.change_anchors(board, rep, add=args.add, remove=args.remove)
        finally:
            board.close()
    return _run(args, body)


def _cmd_harden(args: argparse.Namespace) -> int:
    def body(rep: Reporter) -> None:
        if not args.port:
            raise InstallError("usage", "no port given", "pass --port (the board's USB port)")
        images = {n: getattr(args, n) for n in harden.OFFSETS if getattr(args, n) is not None}
        target = harden.Target(args.chip, args.port, args.virt_efuses)
        harden.harden(target, args.keys, rep, confirm=args.burn_efuses, images=images,
                      keep_flash_key=args.keep_flash_key)
    return _run(args, body)


def _cmd_decommission(args: argparse.Namespace) -> int:
    def body(rep: Reporter) -> None:
        server = _need_server(args, rep, token=True)
        try:  # a locked-down lock opens its REPL first; an open one is used as it is
            maintenance.open_maintenance(args.port, server, rep, scope=["repl"],
                                         ttl_s=args.ttl, lock_id=args.lock_id,
                                         timeout=args.timeout, repl_fallback=False)
            board = _open(args)
            try:
                decommission.decommission(board, server, rep, lock_id=args.lock_id,
                                          erase=args.erase)
            finally:
                board.close()
        finally:
            server.close()
    return _run(args, body)


LOCKDOWN_SKIPPED = ("lockdown skipped (--no-lockdown): the serial REPL stays open, so anyone "
                    "with a USB cable can read this lock's keys and change it; run `kagiya "
                    "install lockdown` before the vehicle leaves the bench")


def _cmd_all(args: argparse.Namespace) -> int:
    def body(rep: Reporter) -> None:
        ca = None
        if args.mqtt_ca is not None:  # checked before anything changes on the board
            if not args.connected:
                raise InstallError("uplink-needs-connected",
                                   "--mqtt-ca gives a lock its broker account, but this is "
                                   "a plain build", "add --connected")
            ca = uplink.load_ca(args.mqtt_ca)
        server = _need_server(args, rep, token=True)
        try:
            if args.image is not None:
                flash.flash(args.port, args.image, rep, erase=args.erase, baud=args.baud)
            board = _open(args)
            try:
                deploy.deploy(board, _firmware_dir(args), rep,
                              compile_mpy=not args.no_compile, connected=args.connected,
                              romfs=not args.files)
                ident = _do_provision(board, args, rep, server)
                registration.register(board, server, ident, rep,
                                      vehicle_label=args.vehicle_label, replace=args.replace)
                if ca is not None:  # the broker account, made right after registration
                    uplink.provision_uplink(board, server, str(ident["lock_id"]), ca, rep,
                                            host=args.mqtt_host,
                                            server_name=args.mqtt_server_name,
                                            heartbeat_s=args.heartbeat)
                selftest.selftest(board, rep, firmware=_firmware_dir(args))
                if args.no_lockdown:
                    rep.warn("lockdown", LOCKDOWN_SKIPPED)
                else:
                    lockdown.lockdown(board, rep)
            finally:
                board.close()
        finally:
            server.close()
    return _run(args, body)
