"""The firmware as a ROMFS image (issue 18 §2): ``kagiya install deploy`` writes the compiled
``lib/`` to the board's ROMFS partition, the virtual board mounts it at ``/rom`` and the lock
runs from it; ``--files`` and boards without a partition get the plain file deploy."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kagiya.hil.board import VirtualBoard
from kagiya.tools.install import connection, romfs

from tests.tools.conftest import Result

Kagiya = Callable[..., Result]
WHERE = ("import os, sys\nfrom kagiya_lock import lock\n"
         "@@RESULT@@(json.dumps({'file': lock.__file__, 'path': sys.path, "
         "'lib': sorted(os.listdir('/lib'))}))")
MPREMOTE = str(Path(sys.executable).parent / "mpremote")


def _board_call(board: VirtualBoard, code: str) -> Any:
    b = connection.connect(board.port)
    try:
        return b.call(code, what="test")
    finally:
        b.close()


def test_deploy_puts_the_firmware_in_romfs_and_the_lock_runs_from_it(
        kagiya: Kagiya, board: VirtualBoard) -> None:
    r = kagiya("install", "deploy", "--port", board.port, "--json")
    assert r.status == 0, r.err
    step = r.json["steps"]["deploy"]
    assert step["romfs"]["written"] is True
    assert step["romfs"]["bytes"] <= step["romfs"]["partition"]
    assert sorted(step["written"]) == ["/boot.py", "/main.py"]  # lib/ is in the image
    assert board.romfs_path.is_file()
    assert not (board.root / "lib" / "kagiya_lock").exists()
    where = _board_call(board, WHERE)
    assert where["file"] == "/rom/lib/kagiya_lock/lock.mpy"
    assert where["path"][:4] == ["", ".frozen", "/rom", "/rom/lib"]
    # the lock works from the image: provision it (a fresh import after the deploy's reset)
    r = kagiya("install", "provision", "--port", board.port, "--lock-id", "CAR-ROM1",
               "--anchor", "11" * 32, "--operator", "op_rom", "--json")
    assert r.status == 0, r.err
    # nothing changed: the image is not written again
    r = kagiya("install", "deploy", "--port", board.port, "--json")
    assert r.status == 0, r.err
    step = r.json["steps"]["deploy"]
    assert step["romfs"]["written"] is False and step["written"] == []
    # mpremote's own query reads the partition the deploy wrote
    q = subprocess.run([MPREMOTE, "connect", board.port, "romfs", "query"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert "ROMFS0 partition has size 131072 bytes" in q.stdout, q.stdout + q.stderr
    assert "Raw contents: d2:cd:31:" in q.stdout and "Not a valid ROMFS" not in q.stdout


def test_files_deploy_empties_the_partition_so_no_old_image_shadows_lib(
        kagiya: Kagiya, board: VirtualBoard) -> None:
    assert kagiya("install", "deploy", "--port", board.port).status == 0
    r = kagiya("install", "deploy", "--port", board.port, "--files", "--json")
    assert r.status == 0, r.err
    assert r.json["steps"]["deploy"]["romfs"] is None
    where = _board_call(board, WHERE)
    assert where["file"] == "/lib/kagiya_lock/lock.mpy"
    assert "kagiya_lock" in where["lib"]
    assert board.romfs_path.read_bytes()[:len(romfs.build({}))] == romfs.build({})


def test_a_board_without_a_romfs_partition_gets_files(
        kagiya: Kagiya, board_factory: Callable[..., VirtualBoard]) -> None:
    board = board_factory(romfs_kb=0)
    r = kagiya("install", "deploy", "--port", board.port, "--json")
    assert r.status == 0, r.err
    assert r.json["steps"]["deploy"]["romfs"] is None
    assert _board_call(board, WHERE)["file"] == "/lib/kagiya_lock/lock.mpy"
    assert not board.romfs_path.exists()


def test_mpremote_romfs_deploy_to_the_virtual_board(
        board: VirtualBoard, tmp_path: Path) -> None:
    """The virtual partition answers mpremote's own ``romfs deploy``; the board mounts the
    image from its next boot."""
    src = tmp_path / "img" / "lib"
    src.mkdir(parents=True)
    (src / "hello_rom.py").write_text("WHO = 'rom'\n")
    p = subprocess.run([MPREMOTE, "connect", board.port, "romfs", "deploy", str(src.parent)],
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0 and "ROMFS image deployed" in p.stdout, p.stdout + p.stderr
    got = _board_call(board, "import hello_rom\n"
                             "@@RESULT@@(json.dumps([hello_rom.WHO, hello_rom.__file__]))")
    assert got == ["rom", "/rom/lib/hello_rom.mpy"]


def test_an_image_larger_than_the_partition_is_refused(
        kagiya: Kagiya, board_factory: Callable[..., VirtualBoard]) -> None:
    board = board_factory(romfs_kb=16)
    r = kagiya("install", "deploy", "--port", board.port, "--json")
    assert r.status != 0
    assert "romfs-full" in r.out + r.err
    assert "--files" in r.out + r.err


def test_unplugged_mid_image_keeps_the_old_partition_then_rerun_completes(
        kagiya: Kagiya, board_factory: Callable[..., VirtualBoard],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The image is kept until its last write is complete (as a board keeps the old one
    until the new one is whole): a cable pulled mid-image leaves no half image mounted."""
    root = tmp_path / "flash"
    board = board_factory(root)
    writes = {"n": 0}
    real_exec = connection.Board.exec

    def exec_then_unplug(self: connection.Board, code: str, **kw: Any) -> str:
        if code.startswith("vfs.rom_ioctl(4,"):
            writes["n"] += 1
            if writes["n"] == 5:
                board.kill()
        return real_exec(self, code, **kw)

    monkeypatch.setattr(connection.Board, "exec", exec_then_unplug)
    r = kagiya("install", "deploy", "--port", board.port, "--json")
    assert r.status == 3 and r.json["error"] == "board-disconnected"
    assert not board.romfs_path.exists()  # nothing was saved
    monkeypatch.setattr(connection.Board, "exec", real_exec)
    replugged = board_factory(root)
    r2 = kagiya("install", "deploy", "--port", replugged.port, "--json")
    assert r2.status == 0, r2.out + r2.err
    assert r2.json["steps"]["deploy"]["romfs"]["written"] is True
    assert _board_call(replugged, WHERE)["file"] == "/rom/lib/kagiya_lock/lock.mpy"
