"""``kagiya lock sim``: run a virtual BLE lock (real firmware, Bumble radio) until stopped.

Works on a fresh directory (deploys the firmware) and on a virtual board the installer
tools deployed and provisioned: the bench's ``bluetooth`` shim is added at every boot
(:func:`kagiya.hil.sim.install_shim`). Ctrl-C, SIGTERM and SIGHUP all shut down cleanly
(the interpreter, then the BLE sidecar); so does a failed boot, which exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """In the ``with`` body the first SIGINT, SIGTERM or SIGHUP sets ``stop`` and raises
    KeyboardInterrupt (as Ctrl-C does); later ones are ignored, so clean-up runs to its end."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            stop.set()
            raise KeyboardInterrupt

    old = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def public_identity(root: Path) -> dict[str, str] | None:
    """The lock ID and public keys (hex) of the virtual lock on ``root``, None when it is
    not provisioned: what an app needs to issue keys for it (``kex_public``) and to verify
    its log (``sign_public``). Read with the firmware's own ``provisioning.identity()``."""
    from kagiya.hil.board import micropython_binary

    code = ("import json\nfrom kagiya_lock import provisioning\n"
            "print(json.dumps(provisioning.identity()))")
    env = dict(os.environ, MICROPYPATH=f"{root / 'lib'}:.frozen", KAGIYA_STATE=str(root))
    out = subprocess.run([micropython_binary(), "-X", "heapsize=4m", "-c", code], env=env,
                         capture_output=True, timeout=120, check=False)
    try:
        ident = json.loads(out.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    if not isinstance(ident, dict):
        return None
    return {k: str(ident[k]) for k in ("lock_id", "sign_public", "kex_public") if k in ident}


def _run(args: argparse.Namespace) -> int:
    from kagiya.hil.sim import BootError, VirtualLock, deploy, provision

    root = Path(args.dir).resolve()
    stop = threading.Event()
    lock: VirtualLock | None = None
    with _stop_on_signals(stop):
        try:
            if args.redeploy or not (root / "main.py").exists():
                deploy(root)
            if args.lock_id and not any(root.glob("identity*")):
                if not args.anchor:
                    print("provisioning needs --anchor (issuer public key, hex)",
                          file=sys.stderr)
                    return 2
                info = provision(root, args.lock_id, [bytes.fromhex(a) for a in args.anchor])
                print(json.dumps({"provisioned": info}), flush=True)
            ident = public_identity(root)
            lock = VirtualLock(root, hci_port=args.hci_port, boot_timeout=args.boot_timeout)
            lock.start()
            print(json.dumps({"state_dir": str(root), "transport": lock.transport,
                              "lock": ident,
                              "control_port": lock.ports["control_port"],
                              "hint": f"export KAGIYA_BLE_TRANSPORT={lock.transport}"}),
                  flush=True)
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        except BootError as exc:
            print(f"kagiya lock sim: {exc}", file=sys.stderr)
            return 1
        finally:
            if lock is not None:
                lock.stop()
    print(json.dumps({"stopped": str(root)}), flush=True)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kagiya lock sim``."""
    p = subparsers.add_parser("sim", help="run a virtual BLE lock (firmware + Bumble radio)")
    p.add_argument("--dir", default="./kagiya-sim-lock",
                   help="board root = the lock's flash / state directory")
    p.add_argument("--lock-id", help="provision with this lock ID if not yet provisioned")
    p.add_argument("--anchor", action="append", default=[],
                   help="issuer Ed25519 public key (hex) to trust; repeatable")
    p.add_argument("--hci-port", type=int, default=0,
                   help="TCP port of the phones' HCI endpoint (0: any free port)")
    p.add_argument("--boot-timeout", type=float, default=30.0,
                   help="seconds to wait for the lock to advertise")
    p.add_argument("--redeploy", action="store_true", help="copy the firmware again")
    p.set_defaults(handler=_run)
