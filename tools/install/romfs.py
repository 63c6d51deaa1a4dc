"""The firmware as a ROMFS image (MicroPython 1.25+ ``vfs.VfsRom``) and its ROM partition.

A board with a ROMFS partition (``vfs.rom_ioctl``) mounts the image at ``/rom`` and finds
modules under ``/rom/lib`` before ``/lib``; ``.mpy`` code is then used in place from
memory-mapped flash instead of being loaded into the heap. :func:`build` packs the
``/lib/...`` files of a board image with mpremote's own ROMFS writer (what
``mpremote romfs build`` uses); :func:`deploy` writes it through the partition calls that
``mpremote romfs deploy`` makes (``vfs.rom_ioctl`` 2-6), over the installer's raw-REPL
connection, skipping the write when the partition already holds the same image.
"""

from __future__ import annotations

import binascii
import hashlib
from typing import Any

from kagiya.tools.install.connection import Board
from kagiya.tools.install.errors import InstallError
from mpremote.romfs import VfsRomWriter

ROM_PREFIX = "/lib/"  # board paths that go into the image (mounted as /rom/lib/...)
HEADER = VfsRomWriter.ROMFS_HEADER
CHUNK = 4096  # bytes per write call (a multiple of every min-write size seen: 4 / 4096)

# One call: does the board have ROMFS partition 0 (a memory-mapped buffer), how big is it,
# and the SHA-256 of its first N bytes (N = the new image's length).
_QUERY = """
import vfs, hashlib, binascii
_r = {'rom': 0}
if hasattr(vfs, 'rom_ioctl') and vfs.rom_ioctl(1) > 0:
    _d = vfs.rom_ioctl(2, 0)
    if not isinstance(_d, int) and not hasattr(_d, 'ioctl'):
        _m = memoryview(_d)
        _r = {'rom': len(_m), 'block': vfs.rom_ioctl(6, 0),
              'sha': binascii.hexlify(hashlib.sha256(_m[:%(n)d]).digest()).decode()}
@@RESULT@@(json.dumps(_r))
"""


def build(files: dict[str, bytes]) -> bytes:
    """A ROMFS image of the ``/lib/...`` entries of ``files`` (board path -> bytes), with
    the directory tree below ``/lib`` (``/rom/lib/kagiya_lock/lock.mpy`` once mounted)."""
    w = VfsRomWriter()
    open_dirs: list[str] = []
    for path in sorted(p for p in files if p.startswith(ROM_PREFIX)):
        parts = path.strip("/").split("/")
        dirs, name = parts[:-1], parts[-1]
        while open_dirs and open_dirs != dirs[:len(open_dirs)]:
            w.closedir()
            open_dirs.pop()
        for d in dirs[len(open_dirs):]:
            w.opendir(d)
            open_dirs.append(d)
        w.mkfile(name, files[path])
    while open_dirs:
        w.closedir()
        open_dirs.pop()
    return bytes(w.finalise())


def query(board: Board, image: bytes) -> dict[str, Any]:
    """``{"rom": partition bytes (0: none usable), "block", "sha"}`` from the board."""
    return board.call(_QUERY % {"n": len(image)}, what="reading the ROMFS partition",
                      timeout=60)


def deploy(board: Board, image: bytes, state: dict[str, Any]) -> bool:
    """Write ``image`` to ROMFS partition 0 unless it holds it already (``state`` from
    :func:`query`); returns True when it wrote. Verified by hashing the partition again.
    The board uses the new image from its next reset."""
    want = hashlib.sha256(image).hexdigest()
    if state.get("sha") == want:
        return False
    size, block = int(state["rom"]), int(state.get("block") or 0)
    if len(image) > size:
        raise InstallError(
            "romfs-full", f"the firmware image ({len(image)} bytes) does not fit the "
            f"board's ROMFS partition ({size} bytes)",
            "flash a MicroPython build with a larger ROMFS partition, or deploy files "
            "with --files")
    what = "writing the ROMFS image"
    board.exec("import vfs\ntry:\n vfs.umount('/rom')\nexcept Exception:\n pass",
               what=what)
    if 0 < block < size:  # prepare (erase) the blocks the image covers, 32 KB per call
        offset = 0
        while offset < len(image):
            n = (min(len(image) - offset, 32768) + block - 1) // block * block
            min_write = board.call(f"@@RESULT@@(json.dumps(vfs.rom_ioctl(3, 0, {offset}, {n})))",
                                   what=what, timeout=60)
            offset += n
    else:
        min_write = board.call(f"@@RESULT@@(json.dumps(vfs.rom_ioctl(3, 0, {len(image)})))",
                               what=what, timeout=60)
    if type(min_write) is not int or min_write < 0:
        raise InstallError("romfs-failed", f"the board refused to erase its ROMFS partition "
                           f"({min_write})", "deploy files with --files")
    chunk = max(CHUNK, min_write)
    board.exec("from binascii import a2b_base64", what=what)
    for offset in range(0, len(image), chunk):
        part = image[offset:offset + chunk]
        part += bytes(-len(part) % max(min_write, 1))
        b64 = binascii.b2a_base64(part, newline=False).decode()
        board.exec(f"vfs.rom_ioctl(4, 0, {offset}, a2b_base64({b64!r}))", what=what)
    board.call("@@RESULT@@(json.dumps(vfs.rom_ioctl(5, 0)))", what=what)
    after = query(board, image)
    if after.get("sha") != want:
        raise InstallError("verify-failed", "the ROMFS partition differs after writing",
                           "run deploy again; if it repeats the board's flash may be failing")
    return True
