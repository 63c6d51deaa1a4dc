"""The BLE sidecar of one virtual lock: ``python -m kagiya.hil.vble.sidecar``.

Runs the virtual radio (phones attach over HCI at ``tcp-client:127.0.0.1:<hci>``), the
lock's BLE chip (the MicroPython shim attaches at ``127.0.0.1:<shim>``) and a bench
control endpoint (JSON lines at ``127.0.0.1:<control>``: ``status``, ``drop_links``,
``drop_next_notify``). When ready it prints one JSON line with the three ports and the
phones' transport name, then runs until killed (SIGINT, SIGTERM) or, with
``--exit-with-stdin``, until its standard input closes - the virtual lock keeps that pipe
open, so the sidecar never outlives the process that started it, however that one ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
import threading
from typing import Any

from kagiya.hil.vble.peripheral import Peripheral
from kagiya.hil.vble.radio import Radio, drop_links
from kagiya.sdk.protocol import MessageType


def static_address(seed: str) -> str:
    """A random static device address (two top bits set) derived from ``seed``."""
    b = bytearray(hashlib.sha256(seed.encode()).digest()[:6])
    b[0] |= 0xC0
    return ":".join(f"{x:02X}" for x in b)


async def _control(peripheral: Peripheral, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            req = json.loads(line)
            op = req.get("op")
            out: dict[str, Any]
            if op == "status":
                out = peripheral.status()
            elif op == "drop_links":
                out = {"dropped": drop_links(peripheral.controller)}
            elif op == "drop_next_notify":
                peripheral.drop_next_notify = True
                out = {"armed": True}
            elif op == "drop_next_result":  # only a RESULT, whatever goes out before it
                peripheral.drop_next_notify = MessageType.RESULT
                out = {"armed": True}
            else:
                out = {"error": f"unknown op {op!r}"}
            writer.write((json.dumps(out) + "\n").encode())
            await writer.drain()
    finally:
        writer.close()


def _finish(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _stdin_closed(loop: asyncio.AbstractEventLoop, done: asyncio.Future[None]) -> None:
    """Resolve ``done`` when standard input reaches end of file (runs in a thread)."""
    with contextlib.suppress(OSError):
        while os.read(0, 4096):  # the raw descriptor: no buffer lock held at shutdown
            pass
    loop.call_soon_threadsafe(_finish, done)


async def run(seed: str, hci_port: int = 0, *, exit_with_stdin: bool = False) -> None:
    """Start everything, print the ready line and serve until cancelled (or, with
    ``exit_with_stdin``, until standard input closes)."""
    radio = Radio()
    await radio.start(port=hci_port)
    peripheral = Peripheral(radio, static_address(seed))
    shim_port = await peripheral.start()
    server = await asyncio.start_server(
        lambda r, w: _control(peripheral, r, w), "127.0.0.1", 0)
    ready = {"hci": radio.transport_spec, "hci_port": radio.port, "shim_port": shim_port,
             "control_port": server.sockets[0].getsockname()[1],
             "address": static_address(seed)}
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    if exit_with_stdin:
        threading.Thread(target=_stdin_closed, args=(loop, done), daemon=True).start()
    loop.add_signal_handler(signal.SIGTERM, _finish, done)
    await done


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", default="kagiya-lock", help="seeds the lock's BLE address")
    parser.add_argument("--hci-port", type=int, default=0, help="phones' HCI port (0: any)")
    parser.add_argument("--exit-with-stdin", action="store_true",
                        help="exit when standard input closes (the parent is gone)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args.seed, args.hci_port, exit_with_stdin=args.exit_with_stdin))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
