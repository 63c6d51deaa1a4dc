"""The usage log's storage: segments that wear littlefs flash little (issue 18, #2).

Run under the real interpreter on the filesystem the tests use and on a littlefs v2
(``vfs.VfsLfs2``) over a counting RAM flash (hil/mpy/ramflash.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cbor2

from tests.mpy import ROOT, run_json

LOCK_ID = "SEG-LOG-1"
RAMFLASH = ROOT / "hil" / "mpy"

WRAP = """
import json
from kagiya_lock.store import Store
from kagiya_lock.log import Log
st = Store(%(dir)r)
log = Log(st, %(lid)r, %(cap)d)
for i in range(%(n)d):
    log.append(1000 + i, 1, 0, bytes(16), 'user-%%d' %% i)
    if i == %(fetch_at)d:
        recs, prev, more = log.fetch(0, 1 << 20)
        log.mark_fetched(log.head)
a = [log.head, log.oldest, log.lost, log.head_hash.hex()]
log = Log(Store(%(dir)r), %(lid)r, %(cap)d)  # reboot
recs, prev, more = log.fetch(0, 1 << 20)
print(json.dumps({"before": a, "after": [log.head, log.oldest, log.lost, log.head_hash.hex()],
                  "prev": prev.hex(), "records": [r.hex() for r in recs], "more": more}))
"""


def _check_chain(got: dict, h0: bytes | None = None) -> None:
    h = bytes.fromhex(got["prev"])
    if h0 is not None:
        assert h == h0
    for r in got["records"]:
        h = hashlib.sha256(h + bytes.fromhex(r)).digest()
    assert h.hex() == got["after"][3]


def test_ring_wraps_keeps_capacity_and_survives_reboot(tmp_path: Path) -> None:
    got = run_json(WRAP % {"dir": str(tmp_path), "lid": LOCK_ID, "cap": 40, "n": 150,
                           "fetch_at": -1})
    head, oldest, lost, _ = got["after"]
    assert got["before"] == got["after"]  # a reboot recovers exactly the same log
    assert head == 150
    assert 40 <= head - oldest + 1 <= 40 + 30
    assert lost == oldest - 1  # nothing fetched: every dropped record is lost
    recs = [cbor2.loads(bytes.fromhex(r)) for r in got["records"]]
    assert [r[0] for r in recs] == list(range(oldest, head + 1))
    assert not got["more"]
    _check_chain(got)
    # old segments are gone from the flash, not just forgotten
    segs = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("lg"))
    assert len(segs) <= (40 + 30) // 16 + 1, segs


def test_fetched_records_are_not_lost_when_dropped(tmp_path: Path) -> None:
    got = run_json(WRAP % {"dir": str(tmp_path), "lid": LOCK_ID, "cap": 20, "n": 90,
                           "fetch_at": 29})
    _, oldest, lost, _ = got["after"]
    assert oldest > 30  # the fetched ones were dropped too
    assert lost == oldest - 31  # only records 31.. that were never fetched count
    _check_chain(got)


def test_empty_log_and_first_record_chain_from_h0(tmp_path: Path) -> None:
    got = run_json(WRAP % {"dir": str(tmp_path), "lid": LOCK_ID, "cap": 20, "n": 3,
                           "fetch_at": -1})
    assert got["after"][:3] == [3, 1, 0]
    _check_chain(got, hashlib.sha256(b"KGY1-LOG" + LOCK_ID.encode()).digest())


def test_damaged_segment_header_drops_only_what_it_anchors(tmp_path: Path) -> None:
    run_json(WRAP % {"dir": str(tmp_path), "lid": LOCK_ID, "cap": 40, "n": 40,
                     "fetch_at": -1})
    (tmp_path / "lg0" / "h").write_bytes(b"\x00" * 44)  # bad CRC
    got = run_json(WRAP % {"dir": str(tmp_path), "lid": LOCK_ID, "cap": 40, "n": 1,
                           "fetch_at": -1})
    head, oldest, lost, _ = got["after"]
    assert head == 41 and oldest == 17  # segment 0 (1-16) is unusable, 17.. verify
    assert lost == 16  # never fetched: counted, so the signed head tells the server
    _check_chain(got)


LFS_APPENDS = """
import json, os
from ramflash import mount_littlefs
dev = mount_littlefs('/flash')
os.mkdir('/flash/kagiya')
from kagiya_lock.store import Store
from kagiya_lock.log import Log
log = Log(Store('/flash/kagiya'), %(lid)r, 256)
for i in range(300):  # fill the ring past its capacity first
    log.append(1000 + i, 1, 0, bytes(16), 'user-0123456789abcdef')
e0, p0, b0 = dev.counters()
N = 320
for i in range(N):
    log.append(2000 + i, 1, 0, bytes(16), 'user-0123456789abcdef')
e1, p1, b1 = dev.counters()
log = Log(Store('/flash/kagiya'), %(lid)r, 256)
print(json.dumps({"erases": (e1 - e0) / N, "kb": (b1 - b0) / N / 1024, "head": log.head,
                  "lost": log.lost, "oldest": log.oldest}))
"""


def test_append_on_littlefs_costs_far_less_than_one_erase(tmp_path: Path) -> None:
    """The former in-place ring cost 6.3 block erases per append on littlefs."""
    got = run_json(LFS_APPENDS % {"lid": LOCK_ID}, extra_path=[RAMFLASH], heap="8m")
    assert got["head"] == 620 and 256 <= got["head"] - got["oldest"] + 1 <= 286
    assert got["erases"] <= 0.25, got
    assert got["kb"] <= 1.0, got
