"""A deterministic byte generator for golden vectors and reproducible tests.

Bench/test side (``kagiya.hil``), not part of the SDK an app imports.

``DeterministicRng(seed)`` is SHA-256 in counter mode over a label (in the spirit of the
Hash_DRBG of NIST SP 800-90A, without reseeding): output block i is
SHA-256(seed || u64be(i)). It is *not* for production keys: the SDK's functions default to
``os.urandom`` and take an ``rng`` argument only so vectors can be regenerated bit-exactly.
"""

from __future__ import annotations

import hashlib


class DeterministicRng:
    """Callable ``rng(n) -> n bytes``, reproducible from ``seed``."""

    def __init__(self, seed: bytes | str) -> None:
        self._seed = seed.encode() if isinstance(seed, str) else bytes(seed)
        self._counter = 0
        self._buf = b""

    def __call__(self, n: int) -> bytes:
        while len(self._buf) < n:
            block = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
            self._buf += block
        out, self._buf = self._buf[:n], self._buf[n:]
        return out
