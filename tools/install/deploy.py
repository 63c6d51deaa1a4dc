"""``kagiya install deploy``: put the (compiled) firmware tree on the board, changed files only.

One raw-REPL call hashes every file of the image on the board (SHA-256, FIPS 180-4) and
lists the files under the directories the firmware owns; only files whose hash differs are
written, each to ``<path>.part`` and renamed into place, so an unplugged cable never leaves
a half-written module; files the firmware no longer has (e.g. a ``.py`` replaced by its
``.mpy``, which it would shadow) are removed; the written files are hashed again to verify.

On a board with a ROMFS partition (MicroPython 1.25+, ``vfs.rom_ioctl``) the compiled
``lib/`` goes there instead, as one ROMFS image (:mod:`kagiya.tools.install.romfs`): the
code then runs in place from flash and does not fill the heap. Only ``boot.py`` and
``main.py`` stay files, the old ``/lib/kagiya_lock`` files are removed, and the board is
soft-reset so it mounts the new image. ``romfs=False`` (``--files``) forces the plain
file deploy, which is also what a board without a ROMFS partition gets.
"""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kagiya.tools.install import romfs as _romfs
from kagiya.tools.install.build import Image, Target, build_image
from kagiya.tools.install.connection import Board
from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.report import Reporter

OWNED_DIRS = ("/lib/kagiya_lock",)  # everything in here comes from firmware/
CHUNK = 2048

_HASH_CODE = """
import os, hashlib, binascii
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(b if n == 512 else b[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
def _walk(d, out):
    try:
        ents = list(os.ilistdir(d))
    except OSError:
        return
    for e in ents:
        p = d + '/' + e[0]
        if e[1] & 0x4000:
            _walk(p, out)
        else:
            out.append(p)
_owned = []
for _d in %(owned)r:
    _walk(_d, _owned)
for _e in os.ilistdir('/'):
    if _e[0].endswith('.part'):
        _owned.append('/' + _e[0])
@@RESULT@@(json.dumps({'hashes': {p: _h(p) for p in %(paths)r}, 'owned': _owned}))
"""


@dataclass
class Plan:
    """What a deploy has to do."""

    write: list[str]
    delete: list[str]
    unchanged: int


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data`` (the hash the board computes too)."""
    return hashlib.sha256(data).hexdigest()


def board_hashes(board: Board, paths: list[str]) -> dict[str, Any]:
    """``{"hashes": {path: hex | None}, "owned": [...]}`` from one call on the board."""
    return board.call(_HASH_CODE % {"owned": OWNED_DIRS, "paths": paths},
                      what="hashing the files on the board", timeout=60)


def plan(image: Image, state: dict[str, Any]) -> Plan:
    """Compare the image with the board's hashes."""
    hashes = state["hashes"]
    write = [p for p, data in image.files.items() if hashes.get(p) != sha256_hex(data)]
    delete = sorted(p for p in state["owned"] if p not in image.files)
    return Plan(write, delete, len(image.files) - len(write))


def _parents(paths: list[str]) -> list[str]:
    dirs: set[str] = set()
    for p in paths:
        parts = p.split("/")[1:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/" + "/".join(parts[:i]))
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def _write_file(board: Board, path: str, data: bytes, advance: Any) -> None:
    part = path + ".part"
    board.exec(f"import binascii\n_f = open({part!r}, 'wb')", what=f"writing {path}")
    for i in range(0, len(data), CHUNK):
        chunk = data[i:i + CHUNK]
        b64 = binascii.b2a_base64(chunk, newline=False).decode()
        board.exec(f"_f.write(binascii.a2b_base64({b64!r}))", what=f"writing {path}")
        advance(len(chunk))
    board.exec(
        "_f.close()\nimport os\n"
        f"try:\n os.remove({path!r})\nexcept OSError:\n pass\n"
        f"os.rename({part!r}, {path!r})",
        what=f"writing {path}",
    )


def free_space_check(board: Board, image: Image, todo: Plan) -> None:
    """Refuse before writing when the files cannot fit on the board's flash."""
    need = sum(len(image.files[p]) for p in todo.write)
    free = int(board.info().get("free", -1))
    if free >= 0 and need > free:
        raise InstallError(
            "flash-full",
            f"the firmware needs {need // 1024 + 1} KiB but the board has {free // 1024} KiB free",
            "erase the board by flashing MicroPython again (`kagiya install flash --erase`) "
            "or remove old files with `mpremote rm`",
        )


def deploy(board: Board, firmware: Path, rep: Reporter, *, compile_mpy: bool = True,
           cache: Path | None = None, connected: bool = False,
           romfs: bool = True) -> dict[str, Any]:
    """Bring the board's copy of ``firmware`` up to date; returns what was done
    (``connected``: also the MQTT uplink, docs/uplink.md; ``romfs``: use the board's
    ROMFS partition when it has one)."""
    info = board.info()
    target = Target.from_mpy(int(info.get("mpy") or 0)) if compile_mpy else None
    if target is not None and target.mpy_version == 0:
        raise InstallError("incompatible-micropython",
                           "the board does not report its .mpy version",
                           "deploy sources with --no-compile")
    image = build_image(firmware, target, cache=cache, connected=connected)
    for note in image.notes:
        rep.say(f"[yellow]![/yellow] {note}")
    rom: dict[str, Any] = {}
    use_rom = romfs and target is not None
    # a file deploy empties the partition: an old image would shadow /lib (/rom/lib first)
    rom_image = _romfs.build(image.files if use_rom else {})
    state = _romfs.query(board, rom_image)
    if state.get("rom"):
        rom = {"bytes": len(rom_image), "partition": state["rom"],
               "written": _romfs.deploy(board, rom_image, state)}
        if use_rom:
            image = Image({p: d for p, d in image.files.items()
                           if not p.startswith(_romfs.ROM_PREFIX)}, image.notes)
    paths = sorted(image.files)
    todo = plan(image, board_hashes(board, paths))
    free_space_check(board, image, todo)
    if todo.delete:
        board.exec("import os\n" + "".join(
            f"try:\n os.remove({p!r})\nexcept OSError:\n pass\n" for p in todo.delete),
            what="removing stale files")
    if todo.write:
        dirs = _parents(todo.write)
        board.exec("import os\n" + "".join(
            f"try:\n os.mkdir({d!r})\nexcept OSError:\n pass\n" for d in dirs),
            what="creating folders")
        total = sum(len(image.files[p]) for p in todo.write)
        with rep.progress("deploying", total) as advance:
            for p in todo.write:
                _write_file(board, p, image.files[p], advance)
        after = board_hashes(board, todo.write)["hashes"]
        bad = [p for p in todo.write if after.get(p) != sha256_hex(image.files[p])]
        if bad:
            raise InstallError("verify-failed",
                               f"{len(bad)} file(s) differ after copying: {', '.join(bad[:3])}",
                               "run deploy again; if it repeats the board's flash may be failing")
    if rom.get("written"):
        board.soft_reset()  # mount the new image before the next step imports the lock
    result = {
        "romfs": rom if use_rom and rom else None,
        "written": todo.write, "deleted": todo.delete, "unchanged": todo.unchanged,
        "bytes": sum(len(image.files[p]) for p in todo.write),
        "compiled_for": (f"mpy v{target.mpy_version}.{target.mpy_sub} {target.arch or 'bytecode'}"
                         if target else "source"),
        "micropython": ".".join(str(v) for v in info.get("version", [])),
    }
    where = ""
    if use_rom and rom:
        where = (f"ROMFS image {rom['bytes']} bytes "
                 f"{'written' if rom['written'] else 'unchanged'}; ")
    rep.done("deploy", result,
             f"{where}{len(todo.write)} file(s) written ({result['bytes']} bytes), "
             f"{todo.unchanged} unchanged, {len(todo.delete)} removed; verified")
    return result
