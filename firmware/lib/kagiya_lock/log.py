"""Append-only, hash-chained, power-loss-safe usage log (protocol §11).

Records ``[seq, time, event, code, cti|null, sub|null]`` (deterministic CBOR) live in a
ring of ``capacity`` fixed-size slots in the file ``log.bin``:

    slot = u32be(seq) || u32be(lost) || u8(len) || record (<= 119 bytes, zero padded)
           || h_{seq-1} (32) || u32be(CRC-32 of everything before) || 4 zero bytes

Each slot carries the chain hash before its record and the ``lost`` counter after its
append, so one slot write is the whole append (a single small write, flushed before
``append`` returns: an acknowledged record is never lost). At boot the newest slot with
a valid CRC is the head; a torn (half-written) slot fails its CRC and is discarded; the
run of older slots whose chain links verify gives the oldest record still held.

Ring full: the oldest record is overwritten; if it had never been returned by a
LOG_FETCH, ``lost`` increases. ``lost`` is covered by the signed head.
"""

import hashlib

from micropython import const

from kagiya_lock import cbor, ed25519
from kagiya_lock.crc32 import crc32

SLOT = const(168)
_REC_MAX = const(119)
_OFF_LEN = const(8)
_OFF_REC = const(9)
_OFF_HASH = const(128)
_OFF_CRC = const(160)
_END_CRC = const(164)
_FILE = "log.bin"


def _sha256(a, b):
    h = hashlib.sha256(a)
    h.update(b)
    return h.digest()


class Log:
    """The usage log ring; ``head``/``oldest`` are seqs (head 0 = empty)."""

    def __init__(self, store, lock_id, capacity):
        self._store = store
        self.capacity = capacity
        self.lock_id = lock_id
        self._path = store.path(_FILE)
        self._buf = bytearray(SLOT)
        self._mv = memoryview(self._buf)
        self.h0 = _sha256(b"KGY1-LOG", lock_id.encode())
        self.fetched = store.load("logmeta", 0)
        self._sig_cache = None
        self._open()
        self._recover()

    # -- file -------------------------------------------------------------
    def _open(self):
        try:
            self._f = open(self._path, "r+b")
            return
        except OSError:
            pass
        with open(self._path, "wb") as f:
            zero = bytes(SLOT)
            for _ in range(self.capacity):
                f.write(zero)
        self._f = open(self._path, "r+b")

    def close(self):
        """Close the ring file."""
        try:
            self._f.close()
        except Exception:
            pass

    def _read_slot(self, idx):
        """Read slot ``idx`` into the buffer; returns its seq, or 0 if invalid."""
        f = self._f
        f.seek(idx * SLOT)
        buf = self._buf
        if f.readinto(buf) != SLOT:
            return 0
        if crc32(self._mv[:_OFF_CRC]) != int.from_bytes(buf[_OFF_CRC:_END_CRC], "big"):
            return 0
        n = buf[_OFF_LEN]
        if n == 0 or n > _REC_MAX:
            return 0
        seq = int.from_bytes(buf[0:4], "big")
        if seq == 0 or (seq - 1) % self.capacity != idx:
            return 0
        return seq

    def _slot_record(self):
        n = self._buf[_OFF_LEN]
        return bytes(self._buf[_OFF_REC:_OFF_REC + n])

    def _slot_prev(self):
        return bytes(self._buf[_OFF_HASH:_OFF_HASH + 32])

    def _recover(self):
        cap = self.capacity
        head = 0
        head_idx = -1
        for i in range(cap):
            s = self._read_slot(i)
            if s > head:
                head = s
                head_idx = i
        self.head = head
        self.lost = 0
        if head == 0:
            self.oldest = 1
            self.head_hash = self.h0
            return
        self._read_slot(head_idx)
        self.lost = int.from_bytes(self._buf[4:8], "big")
        prev = self._slot_prev()
        self.head_hash = _sha256(prev, self._slot_record())
        # walk back while the chain links verify
        oldest = head
        while oldest > 1 and head - oldest + 1 < cap:
            s = oldest - 1
            if self._read_slot((s - 1) % cap) != s:
                break
            if _sha256(self._slot_prev(), self._slot_record()) != prev:
                break
            prev = self._slot_prev()
            oldest = s
        self.oldest = oldest
        # records that should still be in the ring but were destroyed (a torn write over
        # the oldest slot, a corrupt slot) count as lost unless they had been fetched
        first = max(1, head - cap + 1, self.fetched + 1)
        if oldest > first:
            self.lost += oldest - first

    # -- append -----------------------------------------------------------
    def append(self, time, event, code, cti=None, sub=None):
        """Append a record; durable when this returns. Returns its seq."""
        seq = self.head + 1
        if sub is not None and len(sub) > 64:
            sub = sub[:64]
        rec = cbor.encode([seq, time, event, code, cti, sub])
        if len(rec) > _REC_MAX:  # cannot happen with valid fields; keep the chain intact
            rec = cbor.encode([seq, time, event, code, cti, None])
        cap = self.capacity
        if self.head - self.oldest + 1 >= cap and self.head > 0:
            if self.oldest > self.fetched:
                self.lost += 1
            self.oldest += 1
        buf = self._buf
        buf[0:4] = seq.to_bytes(4, "big")
        buf[4:8] = self.lost.to_bytes(4, "big")
        buf[_OFF_LEN] = len(rec)
        end = _OFF_REC + len(rec)
        buf[_OFF_REC:end] = rec
        for i in range(end, _OFF_HASH):
            buf[i] = 0
        buf[_OFF_HASH:_OFF_CRC] = self.head_hash
        buf[_OFF_CRC:_END_CRC] = crc32(self._mv[:_OFF_CRC]).to_bytes(4, "big")
        f = self._f
        f.seek(((seq - 1) % cap) * SLOT)
        f.write(buf)
        f.flush()
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
        if self.head == 0 or self._read_slot((self.head - 1) % self.capacity) != self.head:
            return 0
        rec, code = cbor.decode(self._slot_record())
        if code or type(rec) is not list or len(rec) < 2 or type(rec[1]) is not int:
            return 0
        return rec[1]

    # -- fetch ------------------------------------------------------------
    def fetch(self, from_seq, budget):
        """Records from ``max(from_seq, oldest)`` fitting in ``budget`` encoded bytes.

        Returns (records, prev_hash, more).
        """
        start = from_seq if from_seq > self.oldest else self.oldest
        if self.head == 0 or start > self.head:
            return [], self.head_hash, False
        cap = self.capacity
        out = []
        used = 0
        prev = None
        s = start
        while s <= self.head:
            if self._read_slot((s - 1) % cap) != s:
                break
            rec = self._slot_record()
            cost = len(rec) + (2 if len(rec) >= 24 else 1)
            if used + cost > budget:
                break
            if prev is None:
                prev = self._slot_prev()
            out.append(rec)
            used += cost
            s += 1
        if prev is None:
            prev = self._slot_prev() if self._read_slot((start - 1) % cap) == start \
                else self.head_hash
        return out, prev, s <= self.head

    def mark_fetched(self, seq):
        """Records up to ``seq`` were delivered: overwriting them no longer counts as lost."""
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
