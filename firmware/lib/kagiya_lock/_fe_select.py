"""Pick the arithmetic back ends for the firmware cryptography (internal).

* ``VIPER``: ``micropython.viper`` works on this port. The SHA-512 viper
  compression (:mod:`kagiya_lock._sha512_viper`) only needs 32-bit words, so it
  is used on every viper port (ESP32 included).
* ``FAST``: additionally the machine word has 64 bits (``sys.maxsize``), which
  the viper field code (:mod:`kagiya_lock._fe_viper`, limb products up to 2^63)
  needs: true on the unix port. Otherwise Ed25519/X25519 use the big-integer
  back end :mod:`kagiya_lock._fe_int` (ESP32's 32-bit viper words).

The environment variable ``KAGIYA_CRYPTO_PURE`` forces the fallbacks, so tests
exercise every path on the unix port: ``field`` forces the big-integer field
only (the ESP32 selection), any other non-empty value forces plain Python
everywhere (a port without viper).
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
PURE = bool(_FORCE) and _FORCE != "field"
VIPER = (not PURE) and _has_viper()
FAST = VIPER and not _FORCE and sys.maxsize > (1 << 62)
