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
* ``sys.path`` becomes ``['', '.frozen', '/lib']`` (board paths), then ``/boot.py`` runs and,
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


vfs.umount("/")
vfs.mount(_SandboxVfs(%(root)r), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]
_BANNED = ("system", "putenv", "unsetenv", "mount", "umount", "VfsPosix")
sys.modules["os"] = _shim(os, _BANNED)
sys.modules["vfs"] = _shim(vfs, _BANNED)
del _SandboxVfs, _Shim, _shim, _BANNED, vfs
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


def startup_source(root: str, *, run_main: bool) -> str:
    """MicroPython code that sandboxes the board at host directory ``root`` and boots it."""
    return _TEMPLATE % {
        "root": root,
        "run_main": bool(run_main),
        "sentinel": READY_SENTINEL.decode(),
        "sandboxed": SANDBOX_SENTINEL.decode(),
    }
