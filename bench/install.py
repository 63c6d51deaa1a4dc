"""Deploy benchmark: ``kagiya install deploy`` vs one ``mpremote cp -r`` of the same bytes.

In one run, on fresh virtual boards (MicroPython unix port on a pty, as in the tests):

* ``deploy_s``   - cold file deploy of the whole firmware (``--files``; empty mpy-cross
  cache: compile, hash, copy, verify), connection included; ``files_redeploy_s`` - the
  same again with nothing changed;
* ``romfs_deploy_s`` - cold deploy to the board's ROMFS partition (the default on a board
  that has one: compile, build the image, write it through ``vfs.rom_ioctl``, verify,
  soft reset), on another fresh board with an empty cache;
* ``redeploy_s`` - the ROMFS deploy again with nothing changed (goal: under 2 s);
* ``raw_cp_s``   - baseline: a single ``mpremote connect PORT fs cp -r`` of the same compiled
  files to another fresh board (no hashing, no verification);
* ``ratio``      - deploy_s / raw_cp_s.

Last line: ``deploy_s=… redeploy_s=… romfs_deploy_s=… files_redeploy_s=… raw_cp_s=…
ratio=…``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kagiya.hil.board import VirtualBoard
from kagiya.tools.install.build import Target, build_image, default_firmware_dir
from kagiya.tools.install.connection import connect
from kagiya.tools.install.deploy import deploy
from kagiya.tools.install.report import Reporter


def _deploy(port: str, cache: Path, *, romfs: bool) -> float:
    t0 = time.perf_counter()
    board = connect(port)
    try:
        deploy(board, default_firmware_dir(), Reporter(as_json=True), cache=cache,
               romfs=romfs)
    finally:
        board.close()
    return time.perf_counter() - t0


def main() -> None:
    """Run the benchmark and print the result line."""
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        cache = tmp / "cache"
        with VirtualBoard(tmp / "a", run_main=False) as a:
            a.wait_booted()
            deploy_s = _deploy(a.port, cache, romfs=False)
            files_redeploy_s = _deploy(a.port, cache, romfs=False)
            board = connect(a.port)
            target = Target.from_mpy(int(board.info()["mpy"]))
            board.close()
        with VirtualBoard(tmp / "c", run_main=False) as c:
            c.wait_booted()
            romfs_deploy_s = _deploy(c.port, tmp / "cache-romfs", romfs=True)
            redeploy_s = _deploy(c.port, tmp / "cache-romfs", romfs=True)
        image = build_image(default_firmware_dir(), target, cache=cache)
        staging = tmp / "staging"
        for path, data in image.files.items():
            dest = staging / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        mpremote = str(Path(sys.executable).parent / "mpremote")
        with VirtualBoard(tmp / "b", run_main=False) as b:
            b.wait_booted()
            top = sorted(os.listdir(staging))
            t0 = time.perf_counter()
            subprocess.run([mpremote, "connect", b.port, "fs", "cp", "-r", *top, ":"],
                           cwd=staging, check=True, capture_output=True, timeout=600)
            raw_cp_s = time.perf_counter() - t0
        total = sum(len(d) for d in image.files.values())
        print(f"files={len(image.files)} bytes={total}")
        print(f"deploy_s={deploy_s:.3f} redeploy_s={redeploy_s:.3f} "
              f"romfs_deploy_s={romfs_deploy_s:.3f} files_redeploy_s={files_redeploy_s:.3f} "
              f"raw_cp_s={raw_cp_s:.3f} ratio={deploy_s / raw_cp_s:.2f}")


if __name__ == "__main__":
    main()
