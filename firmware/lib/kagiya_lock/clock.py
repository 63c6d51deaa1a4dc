"""The lock's forward-only clock (protocol §12 "Clock").

Lock time = max(rtc, hwm), ``hwm`` a persisted high-water mark raised by accepted time
statements, at least every 60 s by ``tick``, and at boot to the newest log record's time. Time is trusted after provisioning or a
time statement at least as new as everything the lock has seen, until the RTC is found
below ``hwm`` (RTC reset or rollback). Then the RTC is moved up to ``hwm`` (so lock time
keeps advancing from a lower bound of the real time) and the trusted flag is cleared
until the next time statement.
"""

from micropython import const

_PERSIST_MS = const(60000)


class Clock:
    """Forward-only clock over the HAL's RTC, persisted in the store as ``clock``."""

    def __init__(self, hal, store):
        self._hal = hal
        self._store = store
        st = store.load("clock")
        if isinstance(st, list) and len(st) == 2:
            self.hwm, self.trusted = st[0], bool(st[1])
        else:
            self.hwm, self.trusted = 0, False
        self._saved_ms = hal.ticks_ms()
        self.now()  # detects an RTC reset that happened while powered off

    def _save(self):
        self._store.save("clock", [self.hwm, self.trusted])
        self._saved_ms = self._hal.ticks_ms()

    def now(self):
        """Lock time in unix seconds; never below any time this lock has seen."""
        rtc = self._hal.rtc()
        if rtc >= self.hwm:
            return rtc
        # the RTC went below the high-water mark: reset or rollback
        self._hal.set_rtc(self.hwm)
        if self.trusted:
            self.trusted = False
            self._save()
        return self.hwm

    def apply_statement(self, t):
        """Apply a verified time statement ``t``; True if the clock or trust changed.

        A statement older than ``hwm`` (a replay) changes nothing: the clock never moves
        back, and it does not make an untrusted clock trusted again.
        """
        now = self.now()
        changed = False
        if t >= self.hwm and not self.trusted:
            self.trusted = True
            changed = True
        if t > now:
            self._hal.set_rtc(t)
        if t > self.hwm:
            self.hwm = t
            changed = True
        if changed:
            self._save()
        return changed

    def set(self, t):
        """Provisioning: set the time and mark it trusted (never moves ``hwm`` down)."""
        if t > self._hal.rtc():
            self._hal.set_rtc(t)
        if t > self.hwm:
            self.hwm = t
        self.trusted = True
        self._save()

    def observe(self, t):
        """Raise ``hwm`` to a time the lock is known to have used (e.g. its newest log
        record after a power cut between two ``tick`` saves)."""
        if t > self.hwm:
            self.hwm = t
            self._save()
            self.now()

    def tick(self):
        """Housekeeping: persist ``hwm`` = now at least every 60 s."""
        if self._hal.ticks_ms() - self._saved_ms >= _PERSIST_MS:
            n = self.now()
            if n > self.hwm:
                self.hwm = n
            self._save()
