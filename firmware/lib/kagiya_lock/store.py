"""Power-safe small-state files (protocol §12 "Persistence").

Each named object is stored as deterministic CBOR followed by its CRC-32 (u32be) in
``<dir>/<name>``. A save writes ``<name>.new`` completely, moves the current copy to
``<name>.old`` and renames the new file into place; a rename is atomic on POSIX and on
littlefs. A load takes the first copy whose checksum is right, in the order
``<name>``, ``<name>.new`` (a finished write interrupted before its final rename) and
``<name>.old`` (the previous good copy), so after a crash the state is either the old
or the new one, never a mixture.
"""

import os

from kagiya_lock import cbor
from kagiya_lock.crc32 import crc32


def _read(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if len(data) < 5:
        return None
    body = data[:-4]
    if crc32(body) != int.from_bytes(data[-4:], "big"):
        return None
    v, code = cbor.decode(body, max_size=65536)
    if code:
        return None
    return v


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class Store:
    """Atomic, checksummed CBOR objects in one directory."""

    def __init__(self, directory):
        self.dir = directory
        # names whose file and .old copy exist (saved twice by this Store): a save then
        # needs no stat; any other process changing the directory needs a new Store
        self._present = set()

    def path(self, name):
        """Full path of the file ``name`` in the state directory."""
        return self.dir + "/" + name

    def load(self, name, default=None):
        """The last saved object named ``name`` (or ``default`` when none is readable)."""
        p = self.path(name)
        for candidate in (p, p + ".new", p + ".old"):
            v = _read(candidate)
            if v is not None:
                return v
        return default

    def save(self, name, obj):
        """Save ``obj`` atomically; when this returns the new value is durable."""
        p = self.path(name)
        body = cbor.encode(obj)
        with open(p + ".new", "wb") as f:
            f.write(body)
            f.write(crc32(body).to_bytes(4, "big"))
        both = name in self._present  # known: the file and its .old copy exist
        if both or _exists(p):
            if both or _exists(p + ".old"):
                os.remove(p + ".old")  # FAT cannot rename over an existing file
            os.rename(p, p + ".old")
            self._present.add(name)
        os.rename(p + ".new", p)

    def remove(self, name):
        """Delete every copy of ``name`` (used by forced re-provisioning)."""
        p = self.path(name)
        self._present.discard(name)
        for candidate in (p, p + ".new", p + ".old"):
            try:
                os.remove(candidate)
            except OSError:
                pass
