"""Revocation list of the lock (protocol §7), persisted in the store as ``revocation``.

An update is a full snapshot ``{3: lock_id, 6: iat, -65539: version, -65540: [[cti, exp]]}``
applied only when its version is newer than the lock's (rollback protection).
"""

from micropython import const

from kagiya_lock import errors

CT_REVOCATION = "application/kgy-revocation+cbor"
MAX_ENTRIES = const(64)
_VERSION = const(-65539)
_ENTRIES = const(-65540)


class Revocations:
    """The current version and the set of revoked key IDs (with their expiry)."""

    def __init__(self, store):
        self._store = store
        self.version = 0
        self.entries = {}
        st = store.load("revocation")
        if isinstance(st, list) and len(st) == 2 and isinstance(st[1], list):
            self.version = st[0]
            for e in st[1]:
                self.entries[e[0]] = e[1]

    def __contains__(self, cti):
        return cti in self.entries

    def apply(self, p, lock_id, now):
        """Apply a verified update payload ``p``; returns (code, revoked_ctis)."""
        if type(p) is not dict:
            return errors.MALFORMED, None
        aud = p.get(3)
        iat = p.get(6)
        version = p.get(_VERSION)
        lst = p.get(_ENTRIES)
        if type(aud) is not str or type(iat) is not int or iat < 0:
            return errors.MALFORMED, None
        if type(version) is not int or version < 1 or type(lst) is not list:
            return errors.MALFORMED, None
        for e in lst:
            if type(e) is not list or len(e) != 2 or type(e[0]) is not bytes:
                return errors.MALFORMED, None
            if len(e[0]) != 16 or type(e[1]) is not int or e[1] < 0:
                return errors.MALFORMED, None
        if len(lst) > MAX_ENTRIES:
            return errors.TOO_LARGE, None
        if aud != lock_id:
            return errors.WRONG_LOCK, None
        if version <= self.version:
            return errors.STALE_UPDATE, None
        entries = {}
        for cti, exp in lst:
            if exp > now:
                entries[cti] = exp
        self.version = version
        self.entries = entries
        self._save()
        return errors.OK, entries


    def _save(self):
        self._store.save("revocation",
                         [self.version, [[c, e] for c, e in self.entries.items()]])
