"""Crash injection: kill -9 the MicroPython process at random points during log appends
and state writes, restart, and prove nothing acknowledged was lost.

The children print each acknowledged seq/value after ``append``/``save`` returned; the
test kills them at a random moment (mid-write most of the time, they write in a tight
loop) and then recovers the state in a fresh process.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
from pathlib import Path

from tests.mpy import FIRMWARE_LIB, micropython_binary, run_json

LOCK_ID = "CRASH-1"
CAP = 32

APPENDER = """
import sys
from kagiya_lock.store import Store
from kagiya_lock.log import Log
log = Log(Store(%r), %r, %d)
seq = log.head
while True:
    n = log.head + 1
    s = log.append(n * 10, 1, 0, n.to_bytes(16, 'big'), 'user-%%d' %% n)
    sys.stdout.write('%%d\\n' %% s)
"""

SAVER = """
import sys
from kagiya_lock.store import Store
st = Store(%r)
v = st.load('x', [0])[0]
while True:
    v += 1
    st.save('x', [v, b'payload' * 40])
    sys.stdout.write('%%d\\n' %% v)
"""

READ_LOG = """
import json
from kagiya_lock.store import Store
from kagiya_lock.log import Log
log = Log(Store(%r), %r, %d)
recs, prev, more = log.fetch(0, 1 << 20)
print(json.dumps({"head": log.head, "oldest": log.oldest, "lost": log.lost,
                  "head_hash": log.head_hash.hex(), "prev": prev.hex(),
                  "records": [r.hex() for r in recs]}))
"""


def _run_until_killed(code: str, acks: int) -> int:
    """Run ``code`` in micropython, SIGKILL it after ``acks`` acknowledgements (or a bit
    later); returns the last acknowledged value."""
    env = dict(os.environ, MICROPYPATH=f"{FIRMWARE_LIB}:.frozen")
    proc = subprocess.Popen([micropython_binary(), "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout
    last = -1
    seen = 0
    while seen < acks:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "died")
        last = int(line)
        seen += 1
    proc.send_signal(signal.SIGKILL)
    # everything printed before the kill was acknowledged too
    rest = proc.stdout.read()
    proc.wait()
    for line in rest.splitlines():
        if line.strip().isdigit():
            last = int(line)
    return last


def test_log_appends_survive_kill_9(tmp_path: Path) -> None:
    state = str(tmp_path)
    rng = random.Random(1234)  # noqa: S311 (reproducible kill points)
    h0 = hashlib.sha256(b"KGY1-LOG" + LOCK_ID.encode()).digest()
    for _ in range(12):
        acked = _run_until_killed(APPENDER % (state, LOCK_ID, CAP), rng.randint(1, 80))
        got = run_json(READ_LOG % (state, LOCK_ID, CAP))
        head, oldest = got["head"], got["oldest"]
        assert head >= acked, (head, acked)  # every acknowledged record is there
        # at least CAP newest records are held, at most 30 more (two segments less one)
        assert min(head, CAP) <= head - oldest + 1 <= CAP + 30, (head, oldest)
        records = [bytes.fromhex(r) for r in got["records"]]
        assert len(records) == head - oldest + 1
        # the chain verifies from the stored prev hash to the head hash
        h = bytes.fromhex(got["prev"])
        if oldest == 1:
            assert h == h0
        for i, r in enumerate(records):
            seq = oldest + i
            assert r == _record(seq)
            h = hashlib.sha256(h + r).digest()
        assert h.hex() == got["head_hash"]
        # nothing was fetched, so every overwritten record counts as lost
        assert got["lost"] == oldest - 1


def _record(seq: int) -> bytes:
    import cbor2

    return cbor2.dumps([seq, seq * 10, 1, 0, seq.to_bytes(16, "big"), f"user-{seq}"],
                       canonical=True)


def test_state_writes_are_old_or_new_after_kill_9(tmp_path: Path) -> None:
    state = str(tmp_path)
    rng = random.Random(99)  # noqa: S311 (reproducible kill points)
    for _ in range(12):
        acked = _run_until_killed(SAVER % state, rng.randint(1, 40))
        got = run_json(
            "import json\nfrom kagiya_lock.store import Store\n"
            f"v = Store({state!r}).load('x')\nprint(json.dumps(v[0]))")
        assert got in (acked, acked + 1), (got, acked)


def test_corrupt_state_file_falls_back_to_previous_copy(tmp_path: Path) -> None:
    state = str(tmp_path)
    run_json("import json\nfrom kagiya_lock.store import Store\n"
             f"s = Store({state!r})\ns.save('x', [1])\ns.save('x', [2])\nprint(1)")
    p = tmp_path / "x"
    data = bytearray(p.read_bytes())
    data[0] ^= 0xFF
    p.write_bytes(bytes(data))
    got = run_json("import json\nfrom kagiya_lock.store import Store\n"
                   f"print(json.dumps(Store({state!r}).load('x')))")
    assert got == [1]
    p.write_bytes(b"")
    (tmp_path / "x.old").write_bytes(b"junk")
    got = run_json("import json\nfrom kagiya_lock.store import Store\n"
                   f"print(json.dumps(Store({state!r}).load('x', 'none')))")
    assert got == "none"


def test_torn_log_tail_is_discarded(tmp_path: Path) -> None:
    state = str(tmp_path)
    run_json(f"""
from kagiya_lock.store import Store
from kagiya_lock.log import Log
log = Log(Store({state!r}), {LOCK_ID!r}, 8)
for i in range(5):
    log.append(i, 1, 0)
print(1)""")
    # tear the last record (seq 5): its file cut in half, as a power cut on a filesystem
    # without atomic commits (FAT) can leave it
    p = tmp_path / "lg0" / "4"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    got = run_json(READ_LOG % (state, LOCK_ID, 8))
    assert got["head"] == 4 and got["oldest"] == 1
    h = bytes.fromhex(got["prev"])
    for r in got["records"]:
        h = hashlib.sha256(h + bytes.fromhex(r)).digest()
    assert h.hex() == got["head_hash"]
    # appending again reuses seq 5 and the chain continues
    got2 = run_json(f"""
import json
from kagiya_lock.store import Store
from kagiya_lock.log import Log
log = Log(Store({state!r}), {LOCK_ID!r}, 8)
print(json.dumps(log.append(9, 2, 0)))""")
    assert got2 == 5
    assert json.loads(json.dumps(got2)) == 5
