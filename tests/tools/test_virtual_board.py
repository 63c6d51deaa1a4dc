"""The virtual board behaves like a MicroPython board to mpremote, inside its sandbox."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from kagiya.hil.board import VirtualBoard
from mpremote.transport_serial import SerialTransport


def _transport(board: VirtualBoard) -> SerialTransport:
    t = SerialTransport(board.port, timeout=1)
    t.enter_raw_repl()
    return t


def test_mpremote_command_line_runs_code_on_the_board(board: VirtualBoard) -> None:
    mpremote = Path(sys.executable).parent / "mpremote"
    proc = subprocess.run([str(mpremote), "connect", board.port, "exec", "print(6 * 7)"],
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == b"42"


def test_soft_reset_restarts_the_interpreter_and_runs_boot_py(
        board_factory: Callable[..., VirtualBoard], tmp_path: Path) -> None:
    root = tmp_path / "flash"
    root.mkdir()
    (root / "boot.py").write_text("with open('/boots', 'a') as f:\n    f.write('b')\n")
    (root / "main.py").write_text("open('/main-ran', 'w').close()\n")
    board = board_factory(root)
    assert board.wait_booted()
    t = _transport(board)
    try:
        t.exec("MARK = 1")
        boots, ran = board.boots, (root / "boots").read_text()
        t.enter_raw_repl(soft_reset=True)  # soft reset: a fresh interpreter
        assert board.boots == boots + 1
        assert t.eval("'MARK' in globals()") is False
    finally:
        t.close()
    assert (root / "boots").read_text() == ran + "b"
    assert not (root / "main-ran").exists()  # run_main=False


def test_main_py_runs_at_power_on_unless_disabled(
        board_factory: Callable[..., VirtualBoard], tmp_path: Path) -> None:
    root = tmp_path / "flash"
    root.mkdir()
    (root / "main.py").write_text("open('/main-ran', 'w').close()\n")
    board = board_factory(root, run_main=True)
    assert board.wait_booted()
    t = _transport(board)  # raw-REPL soft reset afterwards does not run main.py again
    t.close()
    assert (root / "main-ran").exists()


def test_ctrl_c_interrupts_running_code_and_the_board_stays_usable(board: VirtualBoard) -> None:
    t = _transport(board)
    try:
        t.exec_raw_no_follow("print('looping')\nwhile True:\n    pass")
        assert t.read_until(1, b"looping\n").endswith(b"looping\n")
        t.serial.write(b"\x03")
        _out, err = t.follow(timeout=10)
        assert b"KeyboardInterrupt" in err
        assert t.eval("1 + 1") == 2
    finally:
        t.close()


@pytest.mark.parametrize("path", [
    "/etc/passwd",
    "../../../../../../../../etc/passwd",
    "/../../../../../../etc/passwd",
    "lib/../../../../../../../etc/passwd",
])
def test_board_code_cannot_read_host_files(board: VirtualBoard, path: str) -> None:
    secret = board.root.parent / "host-secret.txt"
    secret.write_text("host data")
    t = _transport(board)
    try:
        t.exec("open('/inside.txt', 'w').write('board data')")
        probe = (f"try:\n open({path!r}).read()\n print('LEAK')\nexcept OSError:\n print('ok')")
        assert t.exec(probe).strip() == b"ok"
        assert t.exec("try:\n open('../host-secret.txt').read()\n print('LEAK')\n"
                      "except OSError:\n print('ok')").strip() == b"ok"
        # climbing with chdir stops at the board's root
        t.exec("import os\nos.chdir('/lib')\nos.chdir('..')\nos.chdir('..')\nos.chdir('..')")
        assert t.eval("__import__('os').getcwd()") == "/"
        assert "host-secret.txt" not in t.eval("__import__('os').listdir('..')")
        assert t.eval("open('../../inside.txt').read()") == "board data"
        # no way around the sandbox through os/vfs
        assert t.eval("hasattr(__import__('os'), 'system')") is False
        assert t.eval("hasattr(__import__('vfs'), 'VfsPosix')") is False
    finally:
        t.close()
    assert (board.root / "inside.txt").read_text() == "board data"
    assert secret.read_text() == "host data"


def test_files_written_over_mpremote_land_in_the_board_root(board: VirtualBoard) -> None:
    t = _transport(board)
    try:
        t.fs_mkdir("/lib/pkg")
        t.fs_writefile("/lib/pkg/mod.py", b"X = 5\n")
        assert t.eval("__import__('pkg.mod').mod.X") == 5  # /lib is on sys.path
        t.exec("import os\nos.rename('/lib/pkg/mod.py', '/lib/pkg/mod2.py')")
    finally:
        t.close()
    assert (board.root / "lib" / "pkg" / "mod2.py").read_bytes() == b"X = 5\n"


def test_killed_board_disappears_like_an_unplugged_cable(board: VirtualBoard) -> None:
    port = board.port
    board.kill()
    assert not board.running
    with pytest.raises(Exception):  # noqa: B017 - any open/IO error is the point
        SerialTransport(port, timeout=1).enter_raw_repl()


def test_kagiya_lock_board_command_is_registered() -> None:
    from kagiya.tools.cli import build_parser

    args = build_parser().parse_args(["lock", "board", "--root", "flash", "--no-main"])
    assert args.no_main is True
    assert callable(args.handler)


def test_mpremote_interrupts_a_blocking_main_py(
        board_factory: Callable[..., VirtualBoard], tmp_path: Path) -> None:
    root = tmp_path / "flash"
    root.mkdir()
    (root / "main.py").write_text("open('/main-started', 'w').close()\nwhile True:\n    pass\n")
    board = board_factory(root, run_main=True)
    deadline = 200
    while not (root / "main-started").exists() and deadline:
        deadline -= 1
        board.booted.wait(0.05)
    t = _transport(board)  # Ctrl-C stops main.py, then the raw REPL answers
    try:
        assert t.eval("6 * 7") == 42
    finally:
        t.close()
