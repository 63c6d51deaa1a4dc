"""``kagiya lock board``: run a virtual board and print the pty path mpremote connects to."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``board`` to the ``kagiya lock`` sub-commands."""
    p = subparsers.add_parser(
        "board",
        help="run a virtual board (MicroPython unix port on a pty) until interrupted",
        description="Start a virtual board whose flash is DIR and print its serial port "
        "path; `mpremote connect PORT` and `kagiya install … --port PORT` talk to it.",
    )
    p.add_argument("--root", type=Path, default=Path("kagiya-board"),
                   help="the board's flash directory (created if missing; default ./kagiya-board)")
    p.add_argument("--no-main", action="store_true",
                   help="do not run /main.py at boot (keeps the REPL free for the installer)")
    p.add_argument("--json", action="store_true", help="print the port as a JSON object")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from kagiya.hil.board import VirtualBoard

    board = VirtualBoard(args.root, run_main=not args.no_main)
    try:
        port = board.start()
    except (OSError, RuntimeError) as exc:
        print(f"error: cannot start the virtual board: {exc}", file=sys.stderr)
        return 1

    def _stop(signum: int, frame: FrameType | None) -> None:
        board.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    if args.json:
        print(json.dumps({"port": port, "root": str(board.root)}), flush=True)
    else:
        print(f"virtual board on {port} (flash: {board.root}); Ctrl-C to power off", flush=True)
    board.wait()
    return 0
