"""Pick the arithmetic back ends for the firmware cryptography (internal).

* ``VIPER``: ``micropython.viper`` works on this port. SHA-512 then uses the
  viper compression (:mod:`kagiya_lock._sha512_viper`, 32-bit halves).
* ``FAST``: Ed25519/X25519 use the viper group code (:mod:`kagiya_lock._fe_viper`);
  otherwise the big-integer back end :mod:`kagiya_lock._fe_int`.
* ``WIDE``: the machine word has 64 bits (``sys.maxsize``; the unix port), so the
  field layer is :mod:`kagiya_lock._fe_v64` (10 limbs of 26 bits); with 32-bit words
  (ESP32) it is :mod:`kagiya_lock._fe_v32` (20 limbs of 13 bits). A board only gets
  its own one (firmware/targets.json).

The environment variable ``KAGIYA_CRYPTO_PURE`` forces the other paths, so the
tests run every one of them on the unix port:

* ``v32``: the 32-bit field layer (what ESP32 selects);
* ``field``: big-integer field, viper SHA-512 (a viper port without the field code);
* any other non-empty value: plain Python everywhere (a port without viper).
"""

import sys


def _forced():
    try:
        import os

        return os.getenv("KAGIYA_CRYPTO_PURE") or ""
    except Exception:  # ports without os.getenv
        return ""


def _has_viper():
    try:
        from kagiya_lock import _fe_probe

        return _fe_probe.probe() == 3
    except Exception:
        return False


_FORCE = _forced()
PURE = _FORCE not in ("", "v32", "field")
VIPER = (not PURE) and _has_viper()
FAST = VIPER and _FORCE in ("", "v32")
WIDE = sys.maxsize > (1 << 62) and _FORCE != "v32"


def curve_backend():
    """The module doing Curve25519 arithmetic: _fe_viper, or _fe_int when FAST is
    off or the viper code cannot be loaded (e.g. no room for native code). A build without
    _fe_int re-raises the viper module's error (MemoryError: the lock cannot boot, it
    never answers a valid key with a wrong code)."""
    failed = None
    if FAST:
        try:
            from kagiya_lock import _fe_viper

            return _fe_viper
        except Exception as exc:  # MemoryError etc. on a small port: stay correct
            failed = exc
    try:
        from kagiya_lock import _fe_int
    except ImportError:  # the unix and esp32 builds omit it (firmware/targets.json)
        raise failed or ImportError("no curve back end")
    return _fe_int
