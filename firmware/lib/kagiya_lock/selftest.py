"""Installer self-test: ``run() -> {"ok": bool, "checks": [{"name", "ok", "detail"}]}``.

Known-answer tests of every crypto primitive (FIPS 180-4, RFC 8032 §7.1, RFC 7748 §5.2,
RFC 4231, RFC 3610), a storage write/read, the relay outputs toggled in a safe order
(doors first; drive only while the vehicle is not moving; every output restored) and a
clock sanity check.
"""

from kagiya_lock import aesccm, ed25519, hkdf, mac, sha512, x25519
from kagiya_lock.clock import Clock
from kagiya_lock.store import Store

_H = bytes.fromhex
_MIN_TIME = 1704067200  # 2024-01-01: an RTC below this was never set


def _kat_sha512():
    return sha512.sha512(b"abc") == _H(
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")


def _kat_ed25519():
    seed = _H("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    pk = _H("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = _H("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
             "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    bad = sig[:63] + bytes((sig[63] ^ 1,))
    return (ed25519.public_key(seed) == pk and ed25519.sign(seed, b"") == sig
            and ed25519.verify(pk, b"", sig) and not ed25519.verify(pk, b"", bad))


def _kat_x25519():
    return x25519.x25519(
        _H("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
        _H("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"),
    ) == _H("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")


def _kat_hmac_hkdf():
    ok = mac.hmac_sha256(b"Jefe", b"what do ya want for nothing?") == _H(
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    # RFC 5869 A.1
    okm = hkdf.hkdf_sha256(_H("0b" * 22), _H("000102030405060708090a0b0c"),
                           _H("f0f1f2f3f4f5f6f7f8f9"), 42)
    return ok and okm == _H("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                            "34007208d5b887185865")


def _kat_aesccm():
    # RFC 3610 packet vector #1 (8-byte tag)
    key = _H("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf")
    nonce = _H("00000003020100a0a1a2a3a4a5")
    aad = _H("0001020304050607")
    pt = _H("08090a0b0c0d0e0f101112131415161718191a1b1c1d1e")
    ct = _H("588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0")
    return (aesccm.encrypt(key, nonce, pt, aad, 8) == ct
            and aesccm.decrypt(key, nonce, ct, aad, 8) == pt
            and aesccm.decrypt(key, nonce, ct[:-1] + b"\x00", aad, 8) is None)


def _storage(store):
    probe = {"selftest": [1, b"\x00\xff", "ok"]}
    store.save("selftest", probe)
    back = store.load("selftest")
    store.remove("selftest")
    return back == probe


def _relays(hal, store):
    saved = store.load("relays")
    doors, drive = (bool(saved[0]), bool(saved[1])) if type(saved) is list else (True, False)
    steps = ["doors"]
    hal.set_relays(not doors, drive)
    hal.set_relays(doors, drive)
    if hal.moving():
        steps.append("drive skipped: vehicle moving")
    else:
        hal.set_relays(doors, not drive)
        hal.set_relays(doors, drive)
        steps.append("drive")
    return True, ", ".join(steps) + " toggled and restored"


def _clock(hal, store):
    clock = Clock(hal, store)
    now = clock.now()
    ok = now >= _MIN_TIME and now >= clock.hwm
    return ok, "time=%d hwm=%d trusted=%s" % (now, clock.hwm, clock.trusted)


def run(hal=None):
    """Run every check; never raises (a failing check reports its exception)."""
    if hal is None:
        from kagiya_lock import hal as _h

        hal = _h.default()
    store = Store(hal.state_dir)
    checks = []

    def check(name, fn):
        try:
            r = fn()
            ok, detail = r if type(r) is tuple else (bool(r), "")
        except Exception as e:  # report, never crash the installer's session
            ok, detail = False, repr(e)
        checks.append({"name": name, "ok": ok, "detail": detail})

    check("sha512", _kat_sha512)
    check("ed25519", _kat_ed25519)
    check("x25519", _kat_x25519)
    check("hmac_hkdf", _kat_hmac_hkdf)
    check("aes_ccm", _kat_aesccm)
    check("storage", lambda: _storage(store))
    check("relays", lambda: _relays(hal, store))
    check("clock", lambda: _clock(hal, store))
    return {"ok": all(c["ok"] for c in checks), "checks": checks}
