"""The lock's persisted identity (protocol §5): lock ID, key pairs and trust anchors.

Stored in the store as ``identity``: ``{"id": lock_id, "sk": Ed25519 seed, "sp": Ed25519
public, "xk": X25519 private, "xp": X25519 public, "an": [issuer public keys]}``.
"""

import hashlib

from micropython import const

MAX_ANCHORS = const(4)


def key_id(public_key):
    """Issuer / lock key ID: the first 8 bytes of SHA-256(public key) (§2)."""
    return hashlib.sha256(public_key).digest()[:8]


def valid_lock_id(lock_id):
    """True for 4-20 characters from A-Z 0-9 '-' (§2)."""
    if type(lock_id) is not str or not 4 <= len(lock_id) <= 20:
        return False
    for ch in lock_id:
        if not ("A" <= ch <= "Z" or "0" <= ch <= "9" or ch == "-"):
            return False
    return True


def load(store):
    """The identity dict, or None when the lock is not provisioned (or it is unreadable)."""
    ident = store.load("identity")
    if type(ident) is not dict:
        return None
    for k in ("sk", "sp", "xk", "xp"):
        v = ident.get(k)
        if type(v) is not bytes or len(v) != 32:
            return None
    an = ident.get("an")
    if not valid_lock_id(ident.get("id")) or type(an) is not list or not an:
        return None
    return ident


def anchors(ident):
    """Trust anchors as a dict issuer kid -> Ed25519 public key."""
    return {key_id(pk): pk for pk in ident["an"]}
