"""The MicroPython start-up code of a virtual board (runs inside ``micropython -i -c``).

It turns the unix port into something that looks like a board to mpremote:

* the host filesystem is replaced by a sandbox VFS rooted at the board's directory (its
  "flash"): every path is normalised lexically (``..`` cannot climb above ``/``) and the
  sandbox keeps its own working directory, so the process never resolves a relative
  path against the host. ``vfs.VfsPosix(root)`` alone is not enough: it passes relative
  paths and ``..`` straight to the host;
* ``os`` and ``vfs`` are replaced by copies without ``system``/``putenv``/``unsetenv``/
  ``mount``/``umount``/``VfsPosix``, so board code cannot unmount the sandbox or run host
  commands;
* a **ROMFS partition** (MicroPython 1.25+, as on an ESP32 build with one): ``vfs.rom_ioctl``
  serves partition 0, a host file outside the board directory (``<root>.romfs``, erased
  flash reads ``0xff``) held in a ``bytearray``. A valid image is mounted at ``/rom``
  (``vfs.VfsRom``) at every boot; writes (``mpremote romfs deploy``'s calls 3-5) go to a
  copy that is saved at the end and mounted from the next boot on, as on a board. The unix
  port cannot map flash, so the partition sits in the GC heap (``partition_kb``);
* ``sys.path`` becomes ``['', '.frozen', '/rom', '/rom/lib', '/lib']`` (board paths, as
  MicroPython 1.25+ on an ESP32), then ``/boot.py`` runs and,
  after a power-on or a soft reset in the friendly REPL, ``/main.py`` (unless disabled) — as
  MicroPython does on an ESP32. A soft reset in the raw REPL skips ``main.py``, also as on a
  real board.

The source is a template: :func:`startup_source` fills in the root and the flags.
"""

from __future__ import annotations

# printed once the sandbox is in place: only then does the launcher pass the client's bytes
# (so no Ctrl-C can interrupt the sandbox set-up and leave an unsandboxed REPL)
SANDBOX_SENTINEL = b"\x1b[kagiya-vb-sandboxed]"
# printed after boot.py/main.py (the launcher strips it and marks the board booted)
READY_SENTINEL = b"\x1b[kagiya-vb-ready]"

_TEMPLATE = r'''
import sys, os, vfs


class _SandboxVfs:
    def __init__(self, root):
        # no root given to VfsPosix: its rename() mixes up the two rooted paths
        self._fs = vfs.VfsPosix()
        self._root = root.rstrip("/")
        self._cwd = "/"

    def _p(self, path):
        if not path.startswith("/"):
            path = self._cwd + "/" + path
        parts = []
        for part in path.split("/"):
            if part == "" or part == ".":
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
        return self._root + "/" + "/".join(parts)

    def _board(self, path):
        return self._p(path)[len(self._root):]

    def mount(self, readonly, mkfs):
        pass

    def umount(self):
        pass

    def open(self, path, mode):
        return self._fs.open(self._p(path), mode)

    def ilistdir(self, path):
        return self._fs.ilistdir(self._p(path))

    def chdir(self, path):
        p = self._p(path)
        if not self._fs.stat(p)[0] & 0x4000:
            raise OSError(20)  # ENOTDIR
        self._cwd = self._board(path)

    def getcwd(self):
        return self._cwd

    def mkdir(self, path):
        self._fs.mkdir(self._p(path))

    def remove(self, path):
        self._fs.remove(self._p(path))

    def rename(self, old, new):
        self._fs.rename(self._p(old), self._p(new))

    def rmdir(self, path):
        self._fs.rmdir(self._p(path))

    def stat(self, path):
        return self._fs.stat(self._p(path))

    def statvfs(self, path):
        return self._fs.statvfs(self._p(path))


class _Shim:
    pass


def _shim(mod, banned):
    s = _Shim()
    for name in dir(mod):
        if name not in banned and not name.startswith("__"):
            setattr(s, name, getattr(mod, name))
    s.__name__ = mod.__name__
    return s


class _Rom:
    # ROMFS partition 0: vfs.rom_ioctl(op, ...) as the MicroPython ports implement it
    def __init__(self, path, size):
        self._host = vfs.VfsPosix()
        self._path = path
        self.flash = bytearray(b"\xff" * size)
        self._new = None
        try:
            with self._host.open(path, "rb") as f:
                f.readinto(self.flash)
        except OSError:
            pass

    def ioctl(self, op, rom_id=0, *args):
        if op == 1:
            return 1
        if rom_id != 0:
            return -19  # ENODEV
        if op == 2:  # the partition's memory
            return memoryview(self._new if self._new is not None else self.flash)
        if op == 3:  # prepare (erase) [offset, length] or length; min write size
            if self._new is None:
                self._new = bytearray(self.flash)
            off, n = (args[0], args[1]) if len(args) > 1 else (0, args[0])
            if off < 0 or n < 0 or off + n > len(self._new):
                return -22  # EINVAL
            self._new[off:off + n] = b"\xff" * n
            return 4
        if op == 4:  # write
            off, buf = args[0], args[1]
            if self._new is None or off < 0 or off + len(buf) > len(self._new):
                return -22
            self._new[off:off + len(buf)] = buf
            return 0
        if op == 5:  # complete: saved; mounted from the next boot
            if self._new is not None:
                with self._host.open(self._path + ".part", "wb") as f:
                    f.write(self._new)
                self._host.rename(self._path + ".part", self._path)
            return 0
        if op == 6:  # block size
            return 4096
        return -22


vfs.umount("/")
vfs.mount(_SandboxVfs(%(root)r), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/rom", "/rom/lib", "/lib"]
_BANNED = ("system", "putenv", "unsetenv", "mount", "umount", "VfsPosix")
_vfs = _shim(vfs, _BANNED)
if %(romfs_size)d:
    _rom = _Rom(%(romfs_path)r, %(romfs_size)d)
    _vfs.rom_ioctl = _rom.ioctl
    if _rom.flash[:3] == b"\xd2\xcd\x31":
        vfs.mount(vfs.VfsRom(memoryview(_rom.flash)), "/rom")
    del _rom
sys.modules["os"] = _shim(os, _BANNED)
sys.modules["vfs"] = _vfs
del _SandboxVfs, _Shim, _shim, _BANNED, _Rom, _vfs, vfs
sys.stdout.write(%(sandboxed)r)


def _run(path):
    try:
        os.stat(path)
    except OSError:
        return
    try:
        with open(path) as f:
            src = f.read()
        exec(src, {"__name__": "__main__", "__file__": path})
    except SystemExit:
        pass
    except BaseException as e:
        sys.print_exception(e)


try:
    _run("/boot.py")
    if %(run_main)r:
        _run("/main.py")
finally:
    sys.stdout.write(%(sentinel)r)
del _run
del os, sys
'''


def startup_source(root: str, *, run_main: bool, romfs_path: str = "",
                   romfs_size: int = 0) -> str:
    """MicroPython code that sandboxes the board at host directory ``root`` and boots it;
    ``romfs_size`` > 0 gives it a ROMFS partition of that size kept in ``romfs_path``."""
    return _TEMPLATE % {
        "root": root,
        "romfs_path": romfs_path,
        "romfs_size": int(romfs_size),
        "run_main": bool(run_main),
        "sentinel": READY_SENTINEL.decode(),
        "sandboxed": SANDBOX_SENTINEL.decode(),
    }
