"""SHA-512 (FIPS 180-4) for the lock: ``sha512(data) -> bytes(64)``.

Uses ``hashlib.sha512`` when the port has it; else the viper compression
(32-bit halves: runs on 32- and 64-bit viper ports); else plain Python.
``BACKEND`` names the path in use ("hashlib", "viper" or "int").
"""

from kagiya_lock import _fe_select

import hashlib

if hasattr(hashlib, "sha512") and not _fe_select.PURE:  # ESP32 and unix have none
    BACKEND = "hashlib"
    _native = getattr(hashlib, "sha512")  # not in every port's stubs either

    def sha512(data):
        """SHA-512 digest (64 bytes) of ``data`` (native hashlib)."""
        return _native(data).digest()

else:
    BACKEND = "int"
    if _fe_select.VIPER:
        try:
            from kagiya_lock._sha512_viper import sha512

            BACKEND = "viper"
        except Exception:  # a port whose viper cannot compile it: stay portable
            pass
    if BACKEND == "int":
        from kagiya_lock._sha512_int import sha512  # noqa: F401
