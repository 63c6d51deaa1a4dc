"""Authentication-failure rate limiting (protocol §12 "Rate limiting").

Failures (BAD_SIGNATURE, BAD_PROOF, BAD_KEY_WRAP, UNKNOWN_ISSUER) are counted across
connections. From the 5th consecutive failure on, credential and proof checks are refused
for 2^(n-5) s after the n-th failure, at most 60 s; an accepted proof resets the count.
"""

from micropython import const

from kagiya_lock import errors

_FREE = const(4)  # failures allowed before the first block (the 5th starts one)
_CAP_S = const(60)

COUNTED = (errors.BAD_SIGNATURE, errors.BAD_PROOF, errors.BAD_KEY_WRAP, errors.UNKNOWN_ISSUER)


class RateLimiter:
    """Counts consecutive authentication failures; time is the HAL's ticks_ms."""

    def __init__(self):
        self.failures = 0
        self.until_ms = 0

    def blocked(self, now_ms):
        """True while checks must be refused with RATE_LIMITED."""
        return self.failures > _FREE and now_ms < self.until_ms

    def record(self, code, now_ms):
        """Count ``code`` if it is an authentication failure."""
        if code not in COUNTED:
            return
        self.failures += 1
        if self.failures > _FREE:
            e = self.failures - _FREE - 1
            self.until_ms = now_ms + (_CAP_S if e >= 6 else min(1 << e, _CAP_S)) * 1000

    def success(self):
        """An accepted proof: reset the count."""
        self.failures = 0
        self.until_ms = 0
