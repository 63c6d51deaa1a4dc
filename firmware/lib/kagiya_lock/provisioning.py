"""Provisioning over the USB raw REPL (installer tools call these and print JSON).

``provision`` generates the lock identity on the lock itself with ``os.urandom`` (private
keys never leave it), installs 1-4 trust anchors, sets the trusted time and logs event 35.
Reset the board (or call ``Lock.load``) afterwards so a running lock picks it up.
"""

import os

from kagiya_lock import cbor, cose, ed25519, errors, x25519
from kagiya_lock import identity as _id
from kagiya_lock.clock import Clock
from kagiya_lock.log import Log
from kagiya_lock.store import Store

_STATE_FILES = ("identity", "clock", "revocation", "keycache", "relays", "logmeta")


def _hal(hal):
    if hal is not None:
        return hal
    from kagiya_lock import hal as _h

    return _h.default()


def _hex(b):
    return "".join("%02x" % x for x in b)


def _anchor(a):
    pk = bytes.fromhex(a) if type(a) is str else bytes(a)
    if len(pk) != 32:
        raise ValueError("trust anchor must be a 32-byte Ed25519 public key (hex)")
    return pk


def _summary(ident):
    return {"lock_id": ident["id"], "sign_public": _hex(ident["sp"]),
            "kex_public": _hex(ident["xp"]), "provisioned": True}


def _statement_time(pks, statement):
    """Verify a time statement against the new anchors; its time (raises ValueError)."""
    anchors = {_id.key_id(pk): pk for pk in pks}
    payload, code = cose.verify_signed(statement, anchors, "application/kgy-time+cbor", 2048)
    if code:
        raise ValueError("time statement refused: " + errors.name(code))
    p, code = cbor.decode(payload)
    t = p.get(6) if not code and type(p) is dict else None
    if type(t) is not int or t < 0:
        raise ValueError("time statement refused: MALFORMED")
    return t


def provision(lock_id, anchors, now, time_statement=None, force=False, hal=None):
    """Give the lock its identity; returns the public summary (see module doc).

    Returns ``{"error": "ALREADY_PROVISIONED"}`` when already provisioned and not
    ``force``; raises ValueError on an invalid lock ID, anchor list or time statement.
    ``force`` wipes every piece of state (keys, cache, revocations, clock, log).
    """
    hal = _hal(hal)
    store = Store(hal.state_dir)
    if _id.load(store) is not None and not force:
        return {"error": "ALREADY_PROVISIONED"}
    if not _id.valid_lock_id(lock_id):
        raise ValueError("lock ID must be 4-20 characters from A-Z 0-9 -")
    if not anchors or len(anchors) > _id.MAX_ANCHORS:
        raise ValueError("1 to 4 trust anchors are required")
    pks = [_anchor(a) for a in anchors]
    t = _statement_time(pks, time_statement) if time_statement is not None else None
    if force:
        for name in _STATE_FILES:
            store.remove(name)
        try:
            os.remove(store.path("log.bin"))
        except OSError:
            pass
    sk = os.urandom(32)
    xk = os.urandom(32)
    ident = {"id": lock_id, "sk": sk, "sp": ed25519.public_key(sk), "xk": xk,
             "xp": x25519.public_key(xk), "an": pks}
    clock = Clock(hal, store)
    clock.set(int(now))
    if t is not None:
        clock.apply_statement(t)
    store.save("identity", ident)
    log = Log(store, lock_id, hal.log_capacity)
    log.append(clock.now(), 35, errors.OK)
    log.close()
    return _summary(ident)


def identity(hal=None):
    """Public identity: lock ID, public keys (hex), anchors (hex); None if unprovisioned."""
    ident = _id.load(Store(_hal(hal).state_dir))
    if ident is None:
        return None
    out = _summary(ident)
    out["anchors"] = [_hex(pk) for pk in ident["an"]]
    return out


def set_time(now, hal=None):
    """Installer sets the time: lock time becomes at least ``now`` and trusted."""
    hal = _hal(hal)
    clock = Clock(hal, Store(hal.state_dir))
    clock.set(int(now))
    return {"time": clock.now(), "trusted": clock.trusted}


def add_anchor(public_key_hex, hal=None):
    """Install one more trust anchor (issuer key rotation); at most 4."""
    hal = _hal(hal)
    store = Store(hal.state_dir)
    ident = _id.load(store)
    if ident is None:
        return {"error": "NOT_PROVISIONED"}
    pk = _anchor(public_key_hex)
    if pk not in ident["an"]:
        if len(ident["an"]) >= _id.MAX_ANCHORS:
            return {"error": "TOO_MANY_ANCHORS"}
        ident["an"].append(pk)
        store.save("identity", ident)
    return {"anchors": [_hex(p) for p in ident["an"]]}
