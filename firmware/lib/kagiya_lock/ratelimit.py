"""Limits on what a peer without a valid proof can make the lock do (protocol §12).

Nothing here is global, so no stranger's failures can block a peer that presents a valid
proof: the owner's first attempt succeeds whatever others sent.

* **Per connection** (``Peer``): until a connection has had a proof accepted it may cause
  at most ``VERIFY_BUDGET`` Ed25519 verifies (credentials, time statements, revocation
  updates) and ``REFUSAL_BUDGET`` refusals; past either, its requests get
  ``RATE_LIMITED`` and the BLE layer drops the link (``Peer.exhausted``). An authenticated
  connection is accountable and not limited.
* **Per key ID** (``KeyFailures``): proof failures against one key ID are counted (bounded
  table) so the refusal records they cause can be throttled. The check itself is never
  refused: an HMAC costs microseconds, the key's 256-bit secret cannot be guessed, and a
  block would let anyone who sniffed a key ID lock its owner out.
* **Unauthenticated records** (``Bucket``): a token bucket over the log records and state
  writes that unauthenticated peers trigger, so the flash writes a stranger can cause per
  hour are bounded (docs/firmware.md "Flash wear").
"""

from micropython import const

VERIFY_BUDGET = const(4)
REFUSAL_BUDGET = const(8)
_MAX_PEERS = const(8)
_MAX_KEYS = const(16)
BUCKET_SIZE = const(16)
BUCKET_REFILL_MS = const(300000)  # one record per 5 min: at most 16 + 12 per hour


class Peer:
    """What one connection has spent before authenticating."""

    __slots__ = ("verifies", "refusals", "records", "authenticated")

    def __init__(self):
        self.verifies = 0
        self.refusals = 0
        self.records = 0
        self.authenticated = False

    def exhausted(self):
        """True when this unauthenticated connection has used up its budget."""
        return not self.authenticated and (self.verifies >= VERIFY_BUDGET
                                           or self.refusals >= REFUSAL_BUDGET)

    def may_verify(self):
        """True if one more Ed25519 verify is allowed for this connection."""
        return self.authenticated or self.verifies < VERIFY_BUDGET


class Peers:
    """Per-connection budgets (bounded: the oldest entry goes when full)."""

    def __init__(self):
        self.by_conn = {}

    def get(self, conn):
        """The budget of ``conn`` (created on first use)."""
        p = self.by_conn.get(conn)
        if p is None:
            if len(self.by_conn) >= _MAX_PEERS:
                for c in self.by_conn:
                    del self.by_conn[c]
                    break
            p = self.by_conn[conn] = Peer()
        return p

    def end(self, conn):
        """The connection went away."""
        self.by_conn.pop(conn, None)


class KeyFailures:
    """Proof failures per key ID (bounded; used to throttle refusal records)."""

    def __init__(self):
        self.counts = {}

    def add(self, cti):
        """Count one failure against ``cti``; returns the count so far."""
        c = self.counts
        n = c.get(cti, 0) + 1
        if n == 1 and len(c) >= _MAX_KEYS:
            for k in c:
                del c[k]
                break
        c[cti] = n
        return n

    def clear(self, cti):
        """An accepted proof for ``cti``: its count starts again."""
        self.counts.pop(cti, None)


class Bucket:
    """Token bucket over ticks_ms: ``take`` is True while a token is left."""

    def __init__(self, size=BUCKET_SIZE, refill_ms=BUCKET_REFILL_MS):
        self.size = size
        self.refill_ms = refill_ms
        self.tokens = size
        self._at = None

    def take(self, now_ms):
        """Spend one token if there is one."""
        if self._at is None:
            self._at = now_ms
        gained = (now_ms - self._at) // self.refill_ms
        if gained > 0:
            self.tokens = min(self.size, self.tokens + gained)
            self._at += gained * self.refill_ms
        if self.tokens <= 0:
            return False
        self.tokens -= 1
        return True
