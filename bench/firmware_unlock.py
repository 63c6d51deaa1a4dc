"""Benchmark: time inside the lock (message in -> relay action, no BLE) on MicroPython.

Measures, in one run on the unix port of the real interpreter:

* ``warm_ms``: median time of ``Lock.handle`` for an UNLOCK/LOCK with a cached key
  (one HMAC proof check, relay write, log append, reply MAC);
* ``first_use_ms``: median for a first-use command (credential verified with Ed25519,
  K unwrapped with X25519 + HKDF + AES-CCM, cached);
* ``baseline_hmac_ms``: the floor - one raw HMAC-SHA-256 plus one relay write;
* ``heap_peak_kb`` / ``warm_heap_kb``: the free heap a first-use / warm command needs
  to succeed (the rest of the heap is filled with ballast; bisection in 256-byte steps)
  - the peak heap growth including fragmentation, with the GC free to run; and
  ``warm_alloc_kb``: all bytes a warm command allocates (GC disabled: an upper bound);
* ``log_erases_per_cmd`` (goal <= 1) / ``lfs_programmed_kb_per_cmd``: 4 KB block erases
  and bytes programmed per warm command with the state directory on littlefs v2
  (``vfs.VfsLfs2``, ESP32's format: 4 KB blocks) over a counting RAM flash
  (hil/mpy/ramflash.py), the whole command (log append and relay state); baseline in the
  same run: ``ring_erases_per_append``, one append of the former log layout (a 168-byte
  slot overwritten in place in a preallocated 256-slot file) on the same littlefs;
* ``files_heap_kb`` / ``romfs_heap_kb``: heap in use after importing the lock (unix set,
  x64) from ``.mpy`` files vs from the ROMFS image ``kagiya install deploy`` builds
  (``vfs.VfsRom``; goal: ROMFS <= half). The unix port cannot map flash, so the image is
  read into a buffer before the count starts: on a board it is memory-mapped flash;
* ``min_total_heap_kb`` (goal <= 64): the smallest ``-X heapsize`` (2 KB steps) with which
  a freshly booted lock on the 32-bit field layer (``KAGIYA_CRYPTO_PURE=v32``, the unix
  set plus ``_fe_v32``) answers a first-use and then a warm command, loaded from files;
  ``min_total_heap_kb_romfs`` the same from the ROMFS image (heap size minus the image
  buffer). x64 objects are twice an MCU's; the MCU tool gives the 32-bit figure;
* ``mpy_kb``: total size of the unix target's modules (firmware/targets.json) compiled
  with mpy-cross for x64, the build this run imports; ``mpy_kb_esp32``: the esp32
  target's modules compiled for ``-march=xtensawin`` (what goes to an ESP32's flash).

The firmware is imported from the compiled .mpy files of the unix target, as on a
board, so a module the target omits but the lock needs would fail the run. Goals (unix
port): warm < 2 ms, heap < 32 KB, mpy < 64 KB. The last line is ``key=value ...``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kagiya.tools.install.build import MPY_FLAGS, source_name  # noqa: E402

from tests.firmware import peer  # noqa: E402

LIB = ROOT / "firmware" / "lib"
BIN = Path(sys.executable).parent
NONCE = b"\x01" * 16
LOCK_ID = "KGY-BENCH-1"
WARM = 300
FIRST = 12

MEASURE = r"""
import gc, json, time
from kagiya_lock import mac
from kagiya_lock.hal.hal_unix import UnixHAL
from kagiya_lock.lock import Lock

hal = UnixHAL()
lock = Lock(hal)
lock.sessions._rng = lambda n: b"\x01" * n
msgs = json.loads(open("msgs.json").read())
first = [bytes.fromhex(h) for h in msgs["first"]]
warm = [bytes.fromhex(h) for h in msgs["warm"]]
assert lock.handle(1, bytes.fromhex(msgs["hello"]))[0:3] != b"\xa2\x00\x0f"

def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]

def ok(reply):
    return b"\x03\x00" in reply  # key 3 (code) = 0 in the RESULT map

t_first = []
for m in first:
    t = time.ticks_us()
    r = lock.handle(1, m)
    t_first.append(time.ticks_diff(time.ticks_us(), t))
    assert ok(r), r
t_warm = []
for m in warm:
    t = time.ticks_us()
    r = lock.handle(1, m)
    t_warm.append(time.ticks_diff(time.ticks_us(), t))
    assert ok(r), r
# allocation of one warm command with the GC off (an upper bound of its heap use)
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
lock.handle(1, bytes.fromhex(msgs["extra"]))
alloc = gc.mem_alloc() - a0
gc.enable()
key = b"k" * 32
t_base = []
for i in range(WARM):
    t = time.ticks_us()
    mac.hmac_sha256(key, b"x" * 80)
    hal.set_relays(i & 1 == 0, False)
    t_base.append(time.ticks_diff(time.ticks_us(), t))
print(json.dumps({"first_us": median(t_first), "warm_us": median(t_warm),
                  "base_us": median(t_base), "alloc": alloc}))
""".replace("WARM", str(WARM))


MINFREE = r"""
import gc, json
from kagiya_lock.hal.hal_unix import UnixHAL
from kagiya_lock.lock import Lock
lock = Lock(UnixHAL())
lock.sessions._rng = lambda n: b"\x01" * n
msgs = json.loads(open("msgs.json").read())
ops = [bytes.fromhex(h) for h in msgs["OP"]]
lock.handle(1, bytes.fromhex(msgs["hello"]))
for m in ops[:-1]:
    lock.handle(1, m)
gc.collect()
# fill the heap (holes included) until only FREE bytes are left; the list of ballast
# blocks is allocated first, so growing it never fails half-way
ballast = [None] * 4096
n = 0
size = 65536
while size >= 16:
    while n < 4096 and gc.mem_free() - FREE > size + 32:
        try:
            ballast[n] = bytearray(size)
        except MemoryError:
            break
        n += 1
    size //= 2
assert gc.mem_free() < FREE + 1024, (gc.mem_free(), FREE)
r = lock.handle(1, ops[-1])
assert b"\x03\x00" in r, r
print(json.dumps(1))
"""


LFS = r"""
import json, os
from ramflash import mount_littlefs
dev = mount_littlefs("/flash")
os.mkdir("/flash/k")
for name in os.listdir("."):  # the provisioned state, onto littlefs
    if name != "msgs.json" and not os.stat(name)[0] & 0x4000:
        with open(name, "rb") as src, open("/flash/k/" + name, "wb") as dst:
            dst.write(src.read())
from kagiya_lock.hal.hal_unix import UnixHAL
from kagiya_lock.lock import Lock
lock = Lock(UnixHAL("/flash/k"))
lock.sessions._rng = lambda n: b"\x01" * n
msgs = json.loads(open("msgs.json").read())
lock.handle(1, bytes.fromhex(msgs["hello"]))
for h in msgs["first"]:
    assert b"\x03\x00" in lock.handle(1, bytes.fromhex(h))
e0, p0, b0 = dev.counters()
warm = msgs["warm"]
for h in warm:
    assert b"\x03\x00" in lock.handle(1, bytes.fromhex(h))
e1, p1, b1 = dev.counters()
# baseline: the former ring, one 168-byte slot overwritten in place per append
with open("/flash/ring.bin", "wb") as f:
    f.write(bytes(168 * 256))
f = open("/flash/ring.bin", "r+b")
r0 = dev.counters()[0]
for i in range(len(warm)):
    f.seek((i % 256) * 168)
    f.write(bytes(168))
    f.flush()
f.close()
r1 = dev.counters()[0]
n = len(warm)
print(json.dumps({"erases": (e1 - e0) / n, "kb": (b1 - b0) / n / 1024,
                  "ring": (r1 - r0) / n}))
"""


# ROMPATH: the ROMFS image (read into a buffer first: it stands for memory-mapped flash,
# so it is not counted) or "" to import the .mpy files on MICROPYPATH
_ROM = r"""
import gc, json, os, sys
if "ROMPATH":  # read in one piece into a buffer of its size: no growing copies
    import vfs
    img = bytearray(os.stat("ROMPATH")[6])
    f = open("ROMPATH", "rb")
    f.readinto(img)
    f.close()
gc.collect()
a0 = gc.mem_alloc()
if "ROMPATH":
    vfs.mount(vfs.VfsRom(img), "/rom")
    sys.path.insert(0, "/rom/lib")
"""

HEAP_USE = _ROM + r"""
from kagiya_lock.hal.hal_unix import UnixHAL
from kagiya_lock.lock import Lock
gc.collect()
a1 = gc.mem_alloc()
lock = Lock(UnixHAL())
gc.collect()
print(json.dumps({"import": a1 - a0, "boot": gc.mem_alloc() - a0}))
"""

STORY = r"""
import gc
f = open("story.json")  # the three messages, before the lock: only their bytes stay
m = [bytes.fromhex(h) for h in __import__("json").loads(f.read())]
f.close()
""" + _ROM + r"""
from kagiya_lock.hal.hal_unix import UnixHAL
from kagiya_lock.lock import Lock
lock = Lock(UnixHAL())
lock.sessions._rng = lambda n: b"\x01" * n
lock.handle(1, m[0])
r1 = lock.handle(1, m[1])
r2 = lock.handle(1, m[2])
print(json.dumps(b"\x03\x00" in r1 and b"\x03\x00" in r2))
"""


def min_total_heap(path: Path, state: Path, rom: Path | None) -> int:
    """Smallest ``-X heapsize`` (bytes, 2 KB steps; with ``rom``: minus the image buffer)
    with which a booted lock answers a first-use then a warm command (``story.json``) on
    the 32-bit field layer; every try starts from a copy of the provisioned state."""

    extra = rom.stat().st_size + 64 if rom else 0  # the image buffer (bytes header, blocks)
    code = STORY.replace("ROMPATH", str(rom) if rom else "")
    lo, hi = 16 << 10, 1 << 20
    while hi - lo > 2048:
        mid = (lo + hi) // 2 // 2048 * 2048
        trial = state.parent / "trial"
        shutil.rmtree(trial, ignore_errors=True)
        shutil.copytree(state, trial)
        env = dict(os.environ, MICROPYPATH=f"{path}:.frozen" if not rom else ".frozen",
                   KAGIYA_STATE=str(trial), KAGIYA_CRYPTO_PURE="v32")
        p = subprocess.run([str(BIN / "micropython"), "-X", f"heapsize={mid + extra}", "-c",
                            code], capture_output=True, cwd=trial, env=env, check=False,
                           timeout=600)
        if p.returncode == 0 and p.stdout.strip().endswith(b"true"):
            hi = mid
        else:
            lo = mid
    return hi


def rom_image(mpy: Path, out: Path) -> Path:
    """The ROMFS image of the compiled set ``mpy`` (a lib/ folder), as deploy builds it."""
    from kagiya.tools.install import romfs

    files = {"/lib/" + f.relative_to(mpy).as_posix(): f.read_bytes()
             for f in sorted(mpy.rglob("*.mpy"))}
    out.write_bytes(romfs.build(files))
    return out


def min_free(op: str, path: Path, state: Path) -> int:
    """Smallest free heap (bytes, 256-byte steps) with which the last command of ``op``
    succeeds: the rest of the heap is filled with ballast after the earlier commands.
    The state directory is copied so every try starts alike."""
    lo, hi = 0, 1 << 20
    while hi - lo > 256:
        mid = (lo + hi) // 2
        trial = state.parent / "trial"
        shutil.rmtree(trial, ignore_errors=True)
        shutil.copytree(state, trial)
        env = dict(os.environ, MICROPYPATH=f"{path}:.frozen", KAGIYA_STATE=str(trial))
        code = MINFREE.replace("OP", op).replace("FREE", str(mid))
        p = subprocess.run([str(BIN / "micropython"), "-X", "heapsize=4m", "-c", code],
                           capture_output=True, cwd=trial, env=env, check=False,
                           timeout=600)
        if p.returncode == 0 and p.stdout.strip().endswith(b"1"):
            hi = mid
        else:
            lo = mid
    return hi


CRYPTO = ("__init__", "sha512", "ed25519", "x25519", "hkdf", "mac", "aesccm")
TARGETS = ROOT / "firmware" / "targets.json"


def is_crypto(py: Path) -> bool:
    """True for the cryptography modules (primitives and their back ends)."""
    return py.stem in CRYPTO or py.stem.startswith(("_fe", "_sha512"))


def target_modules(target: str) -> list[Path]:
    """The lib/ modules a plain (not connected) board of ``target`` gets
    (firmware/targets.json; the ``installer`` files never go to a board)."""
    doc = json.loads(TARGETS.read_text())
    spec = doc["targets"][target]
    omit = {ROOT / "firmware" / p
            for p in [*spec["omit"], *doc.get("connected", ()), *doc.get("installer", ())]}
    return [py for py in sorted((LIB / "kagiya_lock").rglob("*.py")) if py not in omit]


def compile_mpy(out: Path, target: str) -> tuple[int, int]:
    """Compile ``target``'s modules with mpy-cross for its arch into ``out``;
    returns (total bytes, bytes of the non-crypto lock core)."""
    arch = json.loads(TARGETS.read_text())["targets"][target]["arch"]
    total = 0
    core = 0
    for py in target_modules(target):
        dest = out / py.relative_to(LIB).with_suffix(".mpy")
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(BIN / "mpy-cross"), *MPY_FLAGS, f"-march={arch}", "-o", str(dest), "-s",
                        source_name(py.relative_to(LIB).as_posix()), str(py)], check=True)
        total += dest.stat().st_size
        if not is_crypto(py):
            core += dest.stat().st_size
    return total, core


def mpy_run(code: str, path: Path, state: Path, extra: Path | None = None) -> dict:
    """Run ``code`` under micropython with ``path`` (and ``extra``) as the library path."""
    lib = f"{path}:{extra}" if extra else str(path)
    env = dict(os.environ, MICROPYPATH=f"{lib}:.frozen", KAGIYA_STATE=str(state))
    p = subprocess.run([str(BIN / "micropython"), "-X", "heapsize=4m", "-c", code],
                       capture_output=True, cwd=state, env=env, check=False, timeout=600)
    if p.returncode:
        raise SystemExit(p.stderr.decode() + p.stdout.decode())
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    """Run the benchmark and print the ``key=value`` line."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        state = work / "state"
        state.mkdir()
        mpy_dir = work / "mpy"
        # the unix target's file set, compiled as for a unix board: what runs here
        mpy_bytes, core_bytes = compile_mpy(mpy_dir, "unix")
        esp32_bytes, esp32_core = compile_mpy(work / "mpy-esp32", "esp32")
        issuer = peer.Issuer()
        now = int(time.time())
        info = mpy_run(
            "import json\nfrom kagiya_lock import provisioning\n"
            f"print(json.dumps(provisioning.provision({LOCK_ID!r}, "
            f"[{issuer.public.hex()!r}], {now}, operator={peer.OPERATOR!r})))", mpy_dir,
            state)
        kex = bytes.fromhex(info["kex_public"])
        keys = [peer.issue(issuer, LOCK_ID, kex, nbf=now - 60, exp=now + 86400)
                for _ in range(FIRST)]
        c = 0
        first = []
        for k in keys:
            c += 1
            first.append(peer.command(k, NONCE, LOCK_ID, 1 + c % 2, c,
                                      with_credential=True).hex())
        warm = []
        for _ in range(WARM):
            c += 1
            warm.append(peer.command(keys[-1], NONCE, LOCK_ID, 1 + c % 2, c).hex())
        extra = peer.command(keys[-1], NONCE, LOCK_ID, 1, c + 1).hex()
        (state / "msgs.json").write_text(json.dumps(
            {"hello": peer.hello().hex(), "first": first, "warm": warm, "extra": extra,
             "one_first": first[:1], "second_first": first[:2],
             "one_warm": first[-1:] + warm[:1]}))
        (state / "story.json").write_text(json.dumps([peer.hello().hex(), first[-1],
                                                      warm[0]]))
        img = rom_image(mpy_dir, work / "unix.romfs")
        heap_files = mpy_run(HEAP_USE.replace("ROMPATH", ""), mpy_dir, state)
        heap_rom = mpy_run(HEAP_USE.replace("ROMPATH", str(img)), work / "none", state)
        v32 = work / "mpy-v32"  # the unix set with the 32-bit field layer (what ESP32 runs)
        shutil.copytree(mpy_dir, v32)
        subprocess.run([str(BIN / "mpy-cross"), *MPY_FLAGS, "-march=x64", "-o",
                        str(v32 / "kagiya_lock" / "_fe_v32.mpy"), "-s",
                        "kagiya_lock._fe_v32", str(LIB / "kagiya_lock" / "_fe_v32.py")],
                       check=True)
        min_heap_files = min_total_heap(v32, state, None)
        min_heap_rom = min_total_heap(v32, state, rom_image(v32, work / "v32.romfs"))
        peak_first = min_free("one_first", mpy_dir, state)
        peak_second = min_free("second_first", mpy_dir, state)
        peak_warm = min_free("one_warm", mpy_dir, state)
        lfs = mpy_run(LFS, mpy_dir, state, ROOT / "hil" / "mpy")
        r = mpy_run(MEASURE, mpy_dir, state)
    warm_ms = r["warm_us"] / 1000
    base_ms = r["base_us"] / 1000
    print(f"# warm unlock (cached key), median of {WARM}: {warm_ms:.3f} ms")
    print(f"# first-use unlock, median of {FIRST}: {r['first_us'] / 1000:.3f} ms")
    print(f"# baseline: one HMAC-SHA-256 + relay write: {base_ms:.3f} ms")
    print(f"# free heap a command needs (rest filled with ballast): first use "
          f"{peak_first / 1024:.1f} KB (a later one {peak_second / 1024:.1f} KB), "
          f"warm {peak_warm / 1024:.1f} KB")
    print(f"# bytes allocated by one warm command (GC off): {r['alloc'] / 1024:.1f} KB")
    print(f"# firmware .mpy (firmware/targets.json): unix target (x64) "
          f"{mpy_bytes / 1024:.1f} KB, of which lock core (no crypto) "
          f"{core_bytes / 1024:.1f} KB; esp32 target (xtensawin) {esp32_bytes / 1024:.1f} KB"
          f", core {esp32_core / 1024:.1f} KB")
    print(f"# heap in use after importing the lock (x64): files "
          f"{heap_files['import'] / 1024:.1f} KB, ROMFS image {heap_rom['import'] / 1024:.1f}"
          f" KB; after Lock(hal): {heap_files['boot'] / 1024:.1f} / "
          f"{heap_rom['boot'] / 1024:.1f} KB")
    print(f"# smallest total heap for first use + warm, 32-bit field layer (x64 objects): "
          f"files {min_heap_files / 1024:.0f} KB, ROMFS {min_heap_rom / 1024:.0f} KB "
          "(+ the image buffer)")
    print(f"# littlefs (4 KB blocks), per warm command: {lfs['erases']:.3f} erases, "
          f"{lfs['kb']:.2f} KB programmed; former ring layout: {lfs['ring']:.2f} erases "
          "per append")
    print(f"warm_ms={warm_ms:.3f} first_use_ms={r['first_us'] / 1000:.3f} "
          f"heap_peak_kb={peak_first / 1024:.1f} warm_heap_kb={peak_warm / 1024:.1f} "
          f"warm_alloc_kb={r['alloc'] / 1024:.1f} mpy_kb={mpy_bytes / 1024:.1f} "
          f"mpy_kb_esp32={esp32_bytes / 1024:.1f} "
          f"core_mpy_kb={core_bytes / 1024:.1f} baseline_hmac_ms={base_ms:.3f} "
          f"ratio={warm_ms / base_ms:.2f} log_erases_per_cmd={lfs['erases']:.3f} "
          f"lfs_programmed_kb_per_cmd={lfs['kb']:.2f} "
          f"ring_erases_per_append={lfs['ring']:.2f} "
          f"files_heap_kb={heap_files['import'] / 1024:.1f} "
          f"romfs_heap_kb={heap_rom['import'] / 1024:.1f} "
          f"min_total_heap_kb={min_heap_files / 1024:.0f} "
          f"min_total_heap_kb_romfs={min_heap_rom / 1024:.0f}")


if __name__ == "__main__":
    main()
