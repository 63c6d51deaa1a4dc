"""Append-only, hash-chained, power-loss-safe usage log (protocol §11), flash-friendly.

Records ``[seq, time, event, code, cti|null, sub|null]`` (deterministic CBOR) are kept in
**segments** of ``SEG`` (16) records. Segment ``n`` (records ``16n+1 .. 16n+16``) is the
directory ``lg<n>`` in the state directory, holding:

* ``h``: ``u32be(keep_from) || u32be(lost) || h_prev (32) || u32be(CRC-32)``, written when
  the segment is started, before its first record: ``h_prev`` is the chain hash before
  the segment's first record, ``keep_from`` the oldest seq kept once this segment
  started, ``lost`` the lost counter from then on (only starting a segment drops old
  records, so ``lost`` is constant within a segment);
* one file per record, named by its index in the segment (``0``-``f``):
  ``record (<= 119 bytes) || u32be(CRC-32 of u32be(seq) || record)``.

Why: littlefs (the ESP32 filesystem) is copy-on-write. The former single ring file
overwritten in place made every append rewrite the file from that block on (6.3 block
erases per append). A file of at most 128 bytes is stored inline in its directory's
metadata log on littlefs, so writing a record file is one metadata commit with no block
erase; an erase happens only when a segment directory is created or its metadata block
is compacted: about 0.1 erases per append (docs/performance.md). On FAT each file takes
one cluster: the log costs up to ``capacity + 32`` clusters there.

Power loss: a record is durable when ``append`` returns (the file is closed). A record
file is created in one littlefs commit (all or nothing); on other filesystems a torn
file fails its CRC and is discarded at boot, with everything after it. Starting a
segment writes its ``h`` (with the new ``keep_from`` and ``lost``) before deleting the
oldest segment, so a cut in the middle never forgets that records were dropped.

Ring: at least ``capacity`` newest records are kept (at most ``capacity + 30``). When a
new segment starts and the rest would still hold ``capacity`` records, the oldest segment
is deleted; its records that no LOG_FETCH returned count in ``lost``, which is covered by
the signed head.
"""

import hashlib
import os

from micropython import const

from kagiya_lock import cbor, ed25519
from kagiya_lock.crc32 import crc32

SEG = const(16)
_REC_MAX = const(119)  # record + CRC <= 123 bytes: inline on littlefs (<= 128)
_H_LEN = const(44)
_PREFIX = "lg"


def _sha256(a, b):
    h = hashlib.sha256(a)
    h.update(b)
    return h.digest()


def _u32(b, at):
    return int.from_bytes(b[at:at + 4], "big")


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def segments(directory):
    """Segment numbers present in ``directory`` (ascending)."""
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    out = [int(n[2:]) for n in names if n.startswith(_PREFIX) and n[2:].isdigit()]
    out.sort()
    return out


def _rmtree_segment(directory, n):
    d = directory + "/" + _PREFIX + str(n)
    try:
        names = os.listdir(d)
    except OSError:
        return
    for name in names:
        try:
            os.remove(d + "/" + name)
        except OSError:
            pass
    try:
        os.rmdir(d)
    except OSError:
        pass


def erase(store):
    """Delete every record of the log in ``store``'s directory (re-provisioning)."""
    for n in segments(store.dir):
        _rmtree_segment(store.dir, n)
    try:
        os.remove(store.path("log.bin"))  # the ring file of firmware before segments
    except OSError:
        pass


class Log:
    """The usage log; ``head``/``oldest`` are seqs (head 0 = empty)."""

    def __init__(self, store, lock_id, capacity):
        self._store = store
        self._dir = store.dir
        self.capacity = capacity
        self.lock_id = lock_id
        self.h0 = _sha256(b"KGY1-LOG", lock_id.encode())
        self.fetched = store.load("logmeta", 0)
        self._sig_cache = None
        self._recover()

    # -- files --------------------------------------------------------------
    def _seg_dir(self, n):
        return self._dir + "/" + _PREFIX + str(n)

    def _path(self, seq):
        s = seq - 1
        return self._seg_dir(s // SEG) + "/" + "0123456789abcdef"[s % SEG]

    def _record(self, seq):
        """The record ``seq`` from its file, or None when missing or damaged."""
        data = _read(self._path(seq))
        if data is None or len(data) < 5 or len(data) > _REC_MAX + 4:
            return None
        rec = data[:-4]
        if crc32(seq.to_bytes(4, "big") + rec) != _u32(data, len(data) - 4):
            return None
        return rec

    def _header(self, n):
        """(keep_from, lost, h_prev) of segment ``n``, or None."""
        data = _read(self._seg_dir(n) + "/h")
        if data is None or len(data) != _H_LEN or crc32(data[:40]) != _u32(data, 40):
            return None
        return _u32(data, 0), _u32(data, 4), data[8:40]

    def close(self):
        """Nothing stays open between appends (kept for callers of the former ring)."""

    # -- boot ---------------------------------------------------------------
    def _recover(self):
        segs = segments(self._dir)
        self.head = 0
        self.oldest = 1
        self.lost = 0
        self.head_hash = self.h0
        keep_from = 1
        for n in reversed(segs):  # the newest readable header says what was dropped
            hd = self._header(n)
            if hd is not None:
                keep_from = hd[0]
                self.lost = hd[1]
                break
        # the oldest segment from which the chain verifies up to the head
        for n in segs:
            if (n + 1) * SEG < keep_from:
                continue
            if self._chain_from(n, keep_from):
                break
        for n in segs:  # leftovers of a segment deletion cut by a power loss
            if (n + 1) * SEG < self.oldest:
                _rmtree_segment(self._dir, n)
        if self.head == 0:
            self.oldest = 1
            return
        # records that should be held but were destroyed count as lost unless fetched
        first = max(keep_from, self.fetched + 1)
        if self.oldest > first:
            self.lost += self.oldest - first

    def _chain_from(self, n, keep_from):
        """Follow the chain from segment ``n``; True (and the state set) if it starts."""
        hd = self._header(n)
        if hd is None:
            return False
        seq = n * SEG + 1
        h = hd[2]
        start = seq
        head = 0
        while True:
            if (seq - 1) % SEG == 0 and seq != start:
                nxt = self._header((seq - 1) // SEG)
                if nxt is None or nxt[2] != h:
                    break
            rec = self._record(seq)
            if rec is None:
                break
            h = _sha256(h, rec)
            head = seq
            seq += 1
        if head == 0:
            return False
        self.head = head
        self.head_hash = h
        self.oldest = max(start, keep_from)
        return True

    # -- append -------------------------------------------------------------
    def _start_segment(self, seq):
        """Create segment of ``seq`` (dropping the oldest one if the ring allows)."""
        oldest = self.oldest
        lost = self.lost
        drop = []
        while self.head > 0:
            end = ((oldest - 1) // SEG + 1) * SEG  # last seq of the oldest segment
            if self.head - end + 1 < self.capacity:  # the rest + this record: >= cap
                break
            for s in range(oldest, end + 1):
                if s > self.fetched:
                    lost += 1
            drop.append((oldest - 1) // SEG)
            oldest = end + 1
        d = self._seg_dir((seq - 1) // SEG)
        try:
            os.mkdir(d)
        except OSError:  # left by a start cut short
            pass
        body = oldest.to_bytes(4, "big") + lost.to_bytes(4, "big") + self.head_hash
        _write(d + "/h", body + crc32(body).to_bytes(4, "big"))
        for n in drop:
            _rmtree_segment(self._dir, n)
        self.oldest = oldest
        self.lost = lost

    def append(self, time, event, code, cti=None, sub=None):
        """Append a record; durable when this returns. Returns its seq."""
        seq = self.head + 1
        if sub is not None and len(sub) > 64:
            sub = sub[:64]
        rec = cbor.encode([seq, time, event, code, cti, sub])
        if len(rec) > _REC_MAX:  # cannot happen with valid fields; keep the chain intact
            rec = cbor.encode([seq, time, event, code, cti, None])
        if (seq - 1) % SEG == 0:
            self._start_segment(seq)
        _write(self._path(seq), rec + crc32(seq.to_bytes(4, "big") + rec).to_bytes(4, "big"))
        self.head_hash = _sha256(self.head_hash, rec)
        self.head = seq
        if self.oldest > seq:
            self.oldest = seq
        return seq

    def unfetched(self):
        """Records in the ring that no phone has fetched yet."""
        f = self.fetched
        if f < self.oldest - 1:
            f = self.oldest - 1
        return self.head - f

    def head_time(self):
        """Time of the newest record, 0 if none (the clock never resumes below it)."""
        rec = self._record(self.head) if self.head else None
        if rec is None:
            return 0
        v, code = cbor.decode(rec)
        if code or type(v) is not list or len(v) < 2 or type(v[1]) is not int:
            return 0
        return v[1]

    # -- fetch --------------------------------------------------------------
    def _prev_of(self, seq):
        """The chain hash before record ``seq`` (``oldest <= seq <= head``)."""
        n = (seq - 1) // SEG
        hd = self._header(n)
        if hd is None:
            return None
        h = hd[2]
        for s in range(n * SEG + 1, seq):
            rec = self._record(s)
            if rec is None:
                return None
            h = _sha256(h, rec)
        return h

    def fetch(self, from_seq, budget):
        """Records from ``max(from_seq, oldest)`` fitting in ``budget`` encoded bytes.

        Returns (records, prev_hash, more).
        """
        start = from_seq if from_seq > self.oldest else self.oldest
        if self.head == 0 or start > self.head:
            return [], self.head_hash, False
        prev = self._prev_of(start)
        if prev is None:
            return [], self.head_hash, False
        out = []
        used = 0
        s = start
        while s <= self.head:
            rec = self._record(s)
            if rec is None:
                break
            cost = len(rec) + (2 if len(rec) >= 24 else 1)
            if used + cost > budget:
                break
            out.append(rec)
            used += cost
            s += 1
        return out, prev, s <= self.head

    def mark_fetched(self, seq):
        """Records up to ``seq`` were delivered: dropping them no longer counts as lost."""
        if seq > self.fetched:
            self.fetched = seq
            self._store.save("logmeta", seq)

    def head_message(self):
        """The bytes the head signature covers (§11)."""
        lid = self.lock_id.encode()
        return (b"KGY1-HEAD" + bytes((len(lid),)) + lid + self.head.to_bytes(8, "big")
                + self.head_hash + self.lost.to_bytes(4, "big"))

    def head_signature(self, seed):
        """Ed25519 signature of the current head (cached until the head changes)."""
        key = (self.head, self.lost)
        c = self._sig_cache
        if c is not None and c[0] == key:
            return c[1]
        sig = ed25519.sign(seed, self.head_message())
        self._sig_cache = (key, sig)
        return sig
