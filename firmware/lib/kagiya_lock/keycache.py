"""Cache of verified keys (protocol §12 "Key cache").

After a first-use verification the lock keeps ``cti -> (K, exp, sub, perm)``: at most 16
entries, least recently used evicted, expired and revoked entries dropped, persisted in
the store as ``keycache`` (saved when the set of keys changes; the LRU order is saved
with it).
"""

from micropython import const

_MAX = const(16)


class KeyCache:
    """Bounded LRU map of verified keys; entries are lists [cti, K, exp, sub, perm]."""

    def __init__(self, store):
        self._store = store
        self.entries = []
        saved = store.load("keycache")
        if isinstance(saved, list):
            for e in saved[-_MAX:]:
                if isinstance(e, list) and len(e) == 5:
                    self.entries.append(e)

    def _save(self):
        self._store.save("keycache", self.entries)

    def get(self, cti, now):
        """The entry for ``cti`` (made most recent) or None; drops it if expired."""
        ents = self.entries
        for i in range(len(ents)):
            e = ents[i]
            if e[0] == cti:
                if now >= e[2]:
                    del ents[i]
                    self._save()
                    return None
                if i != len(ents) - 1:
                    del ents[i]
                    ents.append(e)
                return e
        return None

    def put(self, cti, key, exp, sub, perm, now):
        """Insert a verified key, evicting expired entries and then the LRU one."""
        ents = [e for e in self.entries if e[0] != cti and e[2] > now]
        while len(ents) >= _MAX:
            ents.pop(0)
        ents.append([cti, key, exp, sub, perm])
        self.entries = ents
        self._save()

    def evict(self, ctis):
        """Drop every entry whose cti is in ``ctis`` (revocation)."""
        ents = [e for e in self.entries if e[0] not in ctis]
        if len(ents) != len(self.entries):
            self.entries = ents
            self._save()

    def __len__(self):
        return len(self.entries)
