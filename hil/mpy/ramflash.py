# mypy: ignore-errors
"""A counting RAM flash for the unix port: the block device littlefs sees on an ESP32.

``RamFlash(block_size, blocks)`` implements MicroPython's extended block protocol
(``readblocks``/``writeblocks`` with an offset, ``ioctl`` erase), like ``esp32.Partition``:
``writeblocks`` without an offset erases the block first, an erase sets it to 0xFF and
a program can only clear bits (NOR flash). It counts erases, program operations and
bytes programmed, so tests and benchmarks measure flash wear of the lock's storage on a
real ``vfs.VfsLfs2``. ``mount_littlefs(path)`` formats one and mounts it at ``path``.

Bench and tests only (it lives on MICROPYPATH there, never on a board).
"""

import vfs


class RamFlash:
    """NOR-like flash in RAM with erase/program counters."""

    def __init__(self, block_size=4096, blocks=256):
        self.block_size = block_size
        self.blocks = blocks
        self.data = bytearray(block_size * blocks)  # littlefs erases before it programs
        self.erases = 0
        self.programs = 0
        self.programmed = 0

    def readblocks(self, block, buf, offset=0):
        a = block * self.block_size + offset
        buf[:] = self.data[a:a + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            self._erase(block)
            offset = 0
        a = block * self.block_size + offset
        d = self.data
        for i in range(len(buf)):
            d[a + i] &= buf[i]
        self.programs += 1
        self.programmed += len(buf)

    def _erase(self, block):
        self.erases += 1
        a = block * self.block_size
        self.data[a:a + self.block_size] = b"\xff" * self.block_size

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.blocks
        if op == 5:  # block size
            return self.block_size
        if op == 6:  # erase
            self._erase(arg)
            return 0
        return None

    def counters(self):
        """(erases, programs, bytes programmed) so far."""
        return self.erases, self.programs, self.programmed


def mount_littlefs(path, block_size=4096, blocks=256):
    """Format a RamFlash with littlefs v2 (ESP32's defaults) and mount it at ``path``."""
    dev = RamFlash(block_size, blocks)
    vfs.VfsLfs2.mkfs(dev)
    vfs.mount(vfs.VfsLfs2(dev), path)
    return dev
