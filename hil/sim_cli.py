"""``kagiya lock sim``: run a virtual BLE lock (real firmware, Bumble radio) until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from kagiya.hil.sim import VirtualLock, deploy, provision

    root = Path(args.dir).resolve()
    if args.redeploy or not (root / "main.py").exists():
        deploy(root)
    if args.lock_id and not (root / "identity").exists() and not any(root.glob("identity*")):
        if not args.anchor:
            print("provisioning needs --anchor (issuer public key, hex)")
            return 2
        info = provision(root, args.lock_id, [bytes.fromhex(a) for a in args.anchor])
        print(json.dumps({"provisioned": info}))
    lock = VirtualLock(root, hci_port=args.hci_port).start()
    print(json.dumps({"state_dir": str(root), "transport": lock.transport,
                      "control_port": lock.ports["control_port"],
                      "hint": f"export KAGIYA_BLE_TRANSPORT={lock.transport}"}), flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        lock.stop()
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
    p.add_argument("--redeploy", action="store_true", help="copy the firmware again")
    p.set_defaults(handler=_run)
